"""The bench day's likes: seeded as the consumer applies them, and their Redis bytes.

The likes are folded (:func:`rank_svc.likes.fold`) and written through
``BoardWriter.apply(scores, watermarks, like_ops)``, the script the consumer runs, so
their keys are exactly the consumer's (:class:`rank_svc.likes.LikeKeys`). Which users are
liked and by whom: ``bench.config``'s ``LIKED_SHARE``, ``LIKERS_PER_LIKED`` and
``CALLER_LIKE_SHARE``.
"""

import math
from datetime import UTC, datetime

import numpy as np

from bench.config import CALLER_LIKE_SHARE, LIKED_SHARE, LIKERS_PER_LIKED
from bench.dataset import friend_lists
from rank_svc.likes import LikeId, LikeOp, fold

APPLY_OPS = 20_000  # like ops per BoardWriter.apply call


def _noon_ms(state) -> int:
    day = state.ctx.day
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()) * 1000


def seed(state, callers: list[int]) -> dict:
    """Likes of the bench day for the rankings of ``callers`` (see the module docstring);
    returns how many users are liked, by how many likes, and how many are the callers'."""
    ctx = state.ctx
    rng = np.random.default_rng(41)
    lists = friend_lists(ctx, callers)
    shown = np.array(sorted({u for members in lists.values() for u in members}), np.int64)
    liked = rng.choice(shown, math.ceil(shown.size * LIKED_SHARE), replace=False)
    noon = _noon_ms(state)
    ops: dict[LikeId, LikeOp] = {}
    for user in liked.tolist():
        count = 1 + int(rng.poisson(LIKERS_PER_LIKED - 1))
        for liker in rng.integers(1, ctx.scale.users + 1, count).tolist():
            fold(ops, (ctx.day, user, liker), True, noon + int(rng.integers(0, 3_600_000)))
    liked_set = set(liked.tolist())
    by_callers = 0
    for caller, members in lists.items():
        for friend in members[1:]:
            if friend in liked_set and rng.random() < CALLER_LIKE_SHARE:
                fold(ops, (ctx.day, friend, caller), True, noon + int(rng.integers(0, 3_600_000)))
                by_callers += 1
    items = list(ops.items())
    for first in range(0, len(items), APPLY_OPS):
        state.store.apply({}, {}, dict(items[first:first + APPLY_OPS]))
    return {"users_shown": int(shown.size), "users_liked": len(liked_set),
            "likes_sent": len(ops), "likes_by_callers": by_callers}


def memory(state) -> dict:
    """Redis bytes per like of the bench day: ``MEMORY USAGE … SAMPLES 0`` (exact) of every
    shard's count hash and of every liked user's likers sorted set, over the likes stored
    (the members of those sorted sets). The keys are found by ``SCAN`` of the run's
    namespace (standalone Redis)."""
    ctx, keys = state.ctx, state.store.like_keys
    day = ctx.day.isoformat()
    likers = list(state.redis.scan_iter(match=f"{keys.namespace}:likers:*:{day}:*",
                                        count=1000))
    counts = [keys.counts_key(ctx.day, shard) for shard in range(ctx.scale.board_shards)]
    pipe = state.redis.pipeline(transaction=False)
    for key in (*counts, *likers):
        pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
    for key in likers:
        pipe.zcard(key)
    replies = pipe.execute()
    count_bytes = sum(r or 0 for r in replies[:len(counts)])
    liker_bytes = sum(r or 0 for r in replies[len(counts):len(counts) + len(likers)])
    stored = sum(replies[len(counts) + len(likers):])
    return {"likes": stored, "liked_users": len(likers), "count_hash_bytes": count_bytes,
            "likers_set_bytes": liker_bytes,
            "bytes_per_like": round((count_bytes + liker_bytes) / max(stored, 1), 1)}
