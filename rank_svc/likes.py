"""Likes in Redis: how the consumer applies them and how the ranking server reads them.

A like is a state per (day, liked user, liker), set by ``StepIngest.Like`` records on the
reports topic and applied by the board consumer in log order. Both keys of a day's likes
live in the *liked* user's board shard (same hash tag, same Cluster node), so the board
writer applies a shard's likes in the very script that advances the shard's watermarks
(:data:`APPLY_LUA`, spliced into :mod:`rank_svc.board_writer`'s script): a Redis that lost
likes lost the watermarks with them, and the consumer's replay restores both. Keys::

    {ns}:likes:{shard}:{day}            hash: "<liked>" -> how many like them,
                                              "by:<liker>" -> ",<liked>,<liked>,": whom
                                              of this shard the liker likes
    {ns}:likers:{shard}:{day}:<liked>   sorted set: liker -> when liked (Unix ms)

Both expire with the day's board. A change of a day's counts bumps its board's version
(so a cached global top is built again). A ranking reads its users' counts and the
caller's ``by:`` field with one ``HMGET`` per shard (:meth:`LikeReader.commands`), sent
with its score reads: the ids go out in the wire form the friend list already holds, and
one ``by:`` field per shard makes ``liked_by_me`` cost nothing per friend. ``ListLikes``
pages the sorted set newest first (:meth:`LikeReader.page`).
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import NamedTuple

from common.redis_clients import RedisClient
from common.sharding import shard_of
from rank_svc.board_format import expire_at
from rank_svc.board_readers import Command, Members, bulk, command

# How a batch's ops on one (day, liked, liker) collapse (:func:`fold`), as the script reads
# them: an unlike; a like that keeps an earlier like's time; a like after an unlike in the
# same batch, whose time replaces any earlier one (the like was taken back in between).
UNLIKE, LIKE, RELIKE = 0, 1, 2


class LikeOp(NamedTuple):
    """The collapsed change of one like: ``mode`` (above) and its accept time (Unix ms)."""

    mode: int
    at_ms: int


LikeId = tuple[date, int, int]  # (day, liked, liker)

# KEYS from 2, ARGV right after the watermark head (n_partitions, then 3 per partition);
# leaves `a` and `k` past what it read. ARGV: n_days, then per day: expire_at, n_liked,
# then per liked user: the user, n_ops, then (liker, mode, at_ms) per op. KEYS per day:
# its count hash, the day board's version key, then each liked user's likers set. A like
# that exists stays as it is under LIKE (one like per liker: a repeat changes nothing, its
# time included). A day whose counts changed bumps its board's version, so a cached global
# top (rank_svc.top_cache), which shows counts, is built again.
APPLY_LUA = """
local a, k = 2 + 3 * n, 2
local n_like_days = tonumber(ARGV[a])
a = a + 1
for _ = 1, n_like_days do
  local counts, version = KEYS[k], KEYS[k + 1]
  local likes_expire_at, n_liked = ARGV[a], tonumber(ARGV[a + 1])
  local counted = false
  k, a = k + 2, a + 2
  for _ = 1, n_liked do
    local likers, liked, n_ops = KEYS[k], ARGV[a], tonumber(ARGV[a + 1])
    k, a = k + 1, a + 2
    local delta = 0
    for i = a, a + 3 * n_ops - 1, 3 do
      local liker, mode, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
      local by = 'by:' .. liker
      if mode == '0' then
        if redis.call('ZREM', likers, liker) == 1 then
          delta = delta - 1
          local liked_ids = redis.call('HGET', counts, by) or ','
          local rest = string.gsub(liked_ids, ',' .. liked .. ',', ',', 1)
          if rest == ',' then
            redis.call('HDEL', counts, by)
          else
            redis.call('HSET', counts, by, rest)
          end
        end
      else
        local added
        if mode == '1' then
          added = redis.call('ZADD', likers, 'NX', at, liker)
        else
          added = redis.call('ZADD', likers, at, liker)
        end
        if added == 1 then
          delta = delta + 1
          redis.call('HSET', counts, by, (redis.call('HGET', counts, by) or ',') .. liked .. ',')
        end
      end
    end
    a = a + 3 * n_ops
    if delta ~= 0 then
      counted = true
      if redis.call('HINCRBY', counts, liked, delta) <= 0 then redis.call('HDEL', counts, liked) end
    end
    redis.call('EXPIREAT', likers, likes_expire_at)
  end
  redis.call('EXPIREAT', counts, likes_expire_at)
  if counted then
    redis.call('INCR', version)
    redis.call('EXPIREAT', version, likes_expire_at)
  end
end
"""


def fold(ops: dict[LikeId, LikeOp], like: LikeId, liked: bool, at_ms: int) -> None:
    """Folds one like or unlike (in log order) into a batch's ``ops``: the result, applied
    once, leaves the like as applying every op in turn would."""
    if not liked:
        ops[like] = LikeOp(UNLIKE, at_ms)
        return
    before = ops.get(like)
    if before is None:
        ops[like] = LikeOp(LIKE, at_ms)
    elif before.mode == UNLIKE:
        ops[like] = LikeOp(RELIKE, at_ms)


class LikeKeys:
    """The Redis keys of the likes of one board namespace."""

    def __init__(self, namespace: str, shards: int) -> None:
        self.namespace = namespace
        self.shards = shards

    def shard(self, liked_id: int) -> int:
        """The board shard of the liked user, which holds their likes."""
        return shard_of(liked_id, self.shards)

    def counts_key(self, day: date, shard: int) -> str:
        """The hash of like counts (and who liked whom) of ``shard`` on ``day``."""
        return f"{self.namespace}:likes:{{{shard}}}:{day.isoformat()}"

    def likers_key(self, day: date, liked_id: int) -> str:
        """The sorted set of who liked ``liked_id`` on ``day``, scored by when (ms)."""
        shard = self.shard(liked_id)
        return f"{self.namespace}:likers:{{{shard}}}:{day.isoformat()}:{liked_id}"


def by_shard(
    keys: LikeKeys, ops: Mapping[LikeId, LikeOp]
) -> dict[int, dict[date, dict[int, list]]]:
    """``ops`` grouped as the script takes them: shard → day → liked → flat op args."""
    grouped: dict[int, dict[date, dict[int, list]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for (day, liked, liker), (mode, at_ms) in ops.items():
        grouped[keys.shard(liked)][day][liked].extend((liker, mode, at_ms))
    return grouped


def script_part(
    keys: LikeKeys, days: Mapping[date, Mapping[int, list]], retention_days: int,
    version_key: Callable[[date, int], str],
) -> tuple[list[str], list]:
    """The KEYS and ARGV :data:`APPLY_LUA` reads for one shard's ``days`` (from
    :func:`by_shard`; empty: ``([], [0])``); ``version_key``: a day board's version key
    of a shard."""
    script_keys: list[str] = []
    args: list = [len(days)]
    for day, liked_users in sorted(days.items()):
        shard = keys.shard(next(iter(liked_users)))
        script_keys += [keys.counts_key(day, shard), version_key(day, shard)]
        args += [expire_at(day, retention_days), len(liked_users)]
        for liked, ops in liked_users.items():
            script_keys.append(keys.likers_key(day, liked))
            args += [liked, len(ops) // 3, *ops]
    return script_keys, args


class Liker(NamedTuple):
    """One like of a listing: who, and when (Unix ms)."""

    user_id: int
    at_ms: int


class LikersPage(NamedTuple):
    """One page of a listing, newest first, whether more follow, and the total."""

    likers: list[Liker]
    more: bool
    total: int


def _newest_first(liker: Liker) -> tuple[int, int]:
    return (-liker.at_ms, liker.user_id)


class LikeReader:
    """Reads like counts and listings through one Redis client."""

    def __init__(self, client: RedisClient, keys: LikeKeys) -> None:
        self.client = client
        self.keys = keys

    def commands(self, day: date, members: Members, viewer: int | None) -> list[Command]:
        """One ``HMGET`` per shard of ``members``: each member's count on ``day`` and, with a
        ``viewer``, the shard's ``by:<viewer>`` field (:meth:`decode` reads the replies). The
        ids go out as ``members`` already holds them in wire form."""
        by = [] if viewer is None else [b"by:%d" % viewer]
        by_wire = b"".join(bulk(field) for field in by)
        found, start, id_at = [], 0, 0
        for shard, count, end in zip(members.shards, members.counts, members.ends, strict=True):
            fields = (*members.ids[id_at:id_at + count], *by)
            key = self.keys.counts_key(day, shard).encode()
            found.append(command(b"HMGET", key, members.wire[start:end] + by_wire, fields,
                                 len(fields)))
            start, id_at = end, id_at + count
        return found

    @staticmethod
    def decode(members: Members, replies: Sequence[list], viewer: int | None) -> "LikeCounts":
        """The counts and the viewer's likes from :meth:`commands`' replies."""
        counts: dict[int, bytes | None] = {}
        mine: set[int] = set()
        id_at = 0
        for count, values in zip(members.counts, replies, strict=True):
            # ``values`` ends with the ``by:`` field when there is a viewer
            counts.update(zip(members.ids[id_at:id_at + count], values, strict=False))
            if viewer is not None and values[count]:
                mine.update(int(liked) for liked in values[count].split(b",") if liked)
            id_at += count
        return LikeCounts(counts, mine)

    def counts(self, day: date, user_ids: Iterable[int], viewer: int | None) -> "LikeCounts":
        """How many like each user's entry on ``day`` and whom of them ``viewer`` (None:
        nobody) likes; one ``HMGET`` per shard, in one round trip."""
        members = Members(user_ids, self.keys.shards)
        if not members.ids:
            return LikeCounts({}, set())
        pipe = self.client.pipeline(transaction=False)
        for found in self.commands(day, members, viewer):
            pipe.execute_command(*found.args)
        return self.decode(members, pipe.execute(), viewer)

    def page(
        self, day: date, liked_id: int, size: int, after: Liker | None
    ) -> LikersPage:
        """Up to ``size`` likers of ``liked_id`` on ``day`` that come after ``after`` (None:
        from the newest), newest first, equal times by id ascending.

        Redis orders equal scores by member bytes, not by id, so where the page's cut falls
        inside a run of equal times that whole run is read and sorted here (as the global
        top does)."""
        key = self.keys.likers_key(day, liked_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(key)
        if after is None:
            pipe.zrevrangebyscore(key, "+inf", "-inf", start=0, num=size + 1, withscores=True)
        else:
            pipe.zrangebyscore(key, after.at_ms, after.at_ms, withscores=True)
            pipe.zrevrangebyscore(key, f"({after.at_ms}", "-inf", start=0, num=size + 1,
                                  withscores=True)
        total, *replies = pipe.execute()
        rows = [Liker(int(m), int(s)) for m, s in replies[-1]]
        candidates = [] if after is None else [
            liker for liker in (Liker(int(m), int(s)) for m, s in replies[0])
            if liker.user_id > after.user_id
        ]
        if len(rows) > size and rows[size].at_ms == rows[size - 1].at_ms:
            cut = rows[size].at_ms
            tied = self.client.zrangebyscore(key, cut, cut, withscores=True)
            rows = [r for r in rows if r.at_ms != cut] + [Liker(int(m), int(s)) for m, s in tied]
        candidates = sorted(candidates + rows, key=_newest_first)
        return LikersPage(candidates[:size], len(candidates) > size, int(total))


class LikeCounts:
    """Read like counts (raw, converted when asked) and the users a viewer likes."""

    __slots__ = ("_counts", "_mine")

    def __init__(self, counts: Mapping[int, bytes | None], mine: set[int]) -> None:
        self._counts = counts
        self._mine = mine

    def of(self, user_id: int) -> tuple[int, bool]:
        """``(likes, liked_by_me)`` of ``user_id``'s entry (0, False if not read)."""
        count = self._counts.get(user_id)
        return (0 if count is None else int(count)), user_id in self._mine


def fill_likes(
    reader: LikeReader, day: date, entries: Sequence, viewer: int | None,
    found: LikeCounts | None = None,
) -> None:
    """Sets ``likes`` and ``liked_by_me`` (for ``viewer``) on each of ``entries``
    (``RankEntry`` messages): from ``found`` (read with the ranking's scores) when given,
    else from one read."""
    if found is None:
        found = reader.counts(day, [entry.user_id for entry in entries], viewer)
    for entry in entries:
        entry.likes, entry.liked_by_me = found.of(entry.user_id)
