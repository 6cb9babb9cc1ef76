"""The ``leaderboard`` package from PyPI (Redis sorted sets) on the same Redis and data:
global rank (``rank_for``) and a 200-member friend list (``ranked_in_list``)."""

import random
import time

import numpy as np
from leaderboard.leaderboard import Leaderboard
from redis import Redis
from redis.client import Pipeline

from bench.progress import Progress


class _LegacyPipeline(Pipeline):
    """``zadd(name, member, score)`` as the package (written for redis-py 2) calls it."""

    def zadd(self, name, *args, **kwargs):
        if len(args) == 2 and not kwargs:
            return super().zadd(name, {args[0]: args[1]})
        return super().zadd(name, *args, **kwargs)


class LegacyRedis(Redis):
    """redis-py 5 with the redis-py 2 ``zadd`` signature the package 3.7.3 uses."""

    def zadd(self, name, *args, **kwargs):
        if len(args) == 2 and not kwargs:
            return super().zadd(name, {args[0]: args[1]})
        return super().zadd(name, *args, **kwargs)

    def pipeline(self, transaction=True, shard_hint=None):
        return _LegacyPipeline(self.connection_pool, self.response_callbacks, transaction,
                               shard_hint)


def _timed(fn, users, duration_s: float) -> tuple[dict, np.ndarray]:
    rng = random.Random(5)
    latencies = []
    end = time.monotonic() + duration_s
    started = time.monotonic()
    while time.monotonic() < end:
        t = time.monotonic()
        fn(rng.choice(users))
        latencies.append(time.monotonic() - t)
    seconds = time.monotonic() - started
    lat = np.array(latencies) * 1000
    return {"tool": "in-process (1 thread)", "calls": len(lat), "seconds": round(seconds, 2),
            "rps": round(len(lat) / seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3)}, lat


def run(state, rows: list[tuple[int, int]], friend_lists: dict[int, list[int]]) -> dict:
    """Loads ``rows`` into a Leaderboard, then times both questions."""
    ctx = state.ctx
    connection = LegacyRedis(host="127.0.0.1", port=ctx.redis_port, db=0)
    board = Leaderboard(f"{ctx.namespace}:lib", redis_connection=connection, page_size=50)
    board.delete_leaderboard()
    bar = Progress("leaderboard: load", len(rows), "members")
    started = time.monotonic()
    for first in range(0, len(rows), 10_000):
        chunk = rows[first:first + 10_000]
        board.rank_members([x for u, s in chunk for x in (str(u), s)])
        bar.advance(len(chunk))
    load_s = bar.finish()
    users = [str(u) for u, _ in rows]
    out = {"members": len(rows), "load_seconds": round(load_s, 2)}
    result, lat = _timed(board.rank_for, users, ctx.scale.duration_s)
    out["global_rank"] = result
    state.keep("leaderboard lib rank_for", lat)
    lists = [[str(f) for f in friends] for friends in friend_lists.values()]
    result, lat = _timed(lambda members: board.ranked_in_list(members), lists,
                         ctx.scale.duration_s)
    out["friend_list_200"] = result | {"list_sizes": sorted({len(x) for x in lists})[:5]}
    state.keep("leaderboard lib ranked_in_list 200", lat)
    board.delete_leaderboard()
    connection.close()
    del started
    return out
