"""The board writer: max-merges scores into the daily boards and keeps the watermarks.

The writer updates the boards and the applied watermarks of a shard in one Lua script, so
a Redis that lost data (flush, restart without persistence, failover) also lost the
matching watermarks, and the next write notices it (:meth:`BoardWriter.apply`). Keys and
scores: :mod:`rank_svc.board_format`.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date

from common.redis_clients import RedisClient, run_scripts
from rank_svc.board_format import BoardKeys, BoardSettings, expire_at

# KEYS[1]: the shard's watermark hash; KEYS[2..]: (board key, its version key) per day.
# ARGV: n_partitions, then (partition, expected, new) per partition, then per board key:
# expire_at, n_pairs, score1, member1, ... Returns the partitions whose watermark was
# missing or behind `expected` (and then writes nothing), else an empty list.
_APPLY_LUA = """
local n = tonumber(ARGV[1])
local lost = {}
for i = 0, n - 1 do
  local p, expected = ARGV[2 + 3 * i], tonumber(ARGV[3 + 3 * i])
  if expected >= 0 then
    local w = redis.call('HGET', KEYS[1], p)
    if (not w) or tonumber(w) < expected then lost[#lost + 1] = p end
  end
end
if #lost > 0 then return lost end
local a = 2 + 3 * n
for k = 2, #KEYS, 2 do
  local expire_at, npairs = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  -- at most 1000 pairs per ZADD: Lua's unpack() has a small stack limit
  for first = 0, npairs - 1, 1000 do
    local last = math.min(first + 1000, npairs) - 1
    redis.call('ZADD', KEYS[k], 'GT', unpack(ARGV, a + 2 * first, a + 2 * last + 1))
  end
  a = a + 2 * npairs
  redis.call('EXPIREAT', KEYS[k], expire_at)
  redis.call('INCR', KEYS[k + 1])
  redis.call('EXPIREAT', KEYS[k + 1], expire_at)
end
for i = 0, n - 1 do
  local p, new = ARGV[2 + 3 * i], tonumber(ARGV[4 + 3 * i])
  local w = redis.call('HGET', KEYS[1], p)
  if (not w) or tonumber(w) < new then redis.call('HSET', KEYS[1], p, new) end
end
return lost
"""


class BoardWriter(BoardKeys):
    """Writes the sharded daily boards and their watermarks through one Redis client."""

    def __init__(
        self, client: RedisClient, settings: BoardSettings, topic: str = "", staging: bool = False
    ) -> None:
        """``staging`` writers use separate board keys, for building a day off to the side."""
        BoardKeys.__init__(self, settings, topic, staging)
        self.client = client
        self._apply = client.register_script(_APPLY_LUA)

    def apply(
        self,
        scores: Mapping[tuple[date, int], int],
        watermarks: Mapping[int, tuple[int, int]],
    ) -> set[int]:
        """Max-merges ``(day, user) → score`` and advances the watermarks of every shard.

        ``watermarks`` maps each Kafka partition of the batch to ``(expected, new)``:
        ``expected`` is the last offset this writer knows it applied (-1: unknown), ``new``
        the last offset of the batch. A shard whose watermark is missing or behind
        ``expected`` lost data: nothing is written there and the partition is returned, so
        the caller replays it. All shards go in one pipeline (one round trip standalone).
        """
        by_shard: dict[int, dict[date, list]] = defaultdict(lambda: defaultdict(list))
        for (day, user_id), score in scores.items():
            by_shard[self.shard(user_id)][day].extend((score, user_id))
        head = [len(watermarks)]
        for partition, (expected, new) in sorted(watermarks.items()):
            head += [partition, expected, new]
        calls = []
        for shard in range(self.settings.shards):
            days = by_shard.get(shard, {})
            keys = [self.watermark_key(shard)]
            args = list(head)
            for day, pairs in sorted(days.items()):
                keys += [self.board_key(day, shard), self.version_key(day, shard)]
                args += [expire_at(day, self.settings.retention_days), len(pairs) // 2, *pairs]
            calls.append((keys, args))
        lost: set[int] = set()
        for result in run_scripts(self.client, self._apply, calls):
            lost.update(int(p) for p in result)
        return lost

    def watermarks(self, partitions: Iterable[int]) -> dict[int, int | None]:
        """Per partition, the lowest applied offset over all shards (None: missing somewhere)."""
        partitions = list(partitions)
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.settings.shards):
            pipe.hmget(self.watermark_key(shard), partitions)
        lowest: dict[int, int | None] = dict.fromkeys(partitions, None)
        seen_all = dict.fromkeys(partitions, True)
        for values in pipe.execute():
            for partition, value in zip(partitions, values, strict=True):
                if value is None:
                    seen_all[partition] = False
                    continue
                current = lowest[partition]
                lowest[partition] = int(value) if current is None else min(current, int(value))
        return {p: lowest[p] if seen_all[p] else None for p in partitions}

    def drop_day(self, day: date) -> None:
        """Deletes every shard of ``day``'s board (and the shards' versions)."""
        for shard in range(self.settings.shards):
            self.client.delete(self.board_key(day, shard), self.version_key(day, shard))

    def move_day(self, day: date, target: BoardKeys) -> None:
        """Replaces ``target``'s board of ``day`` with this store's, shard by shard.

        Both keys of a shard share a hash tag, so each ``RENAME`` is atomic even in Cluster.
        The target's versions are bumped so cached answers about the old board go.
        """
        expires = expire_at(day, target.settings.retention_days)
        for shard in range(self.settings.shards):
            source, destination = self.board_key(day, shard), target.board_key(day, shard)
            if self.client.exists(source):
                self.client.rename(source, destination)
            else:
                self.client.delete(destination)
            version = target.version_key(day, shard)
            self.client.incr(version)
            self.client.expireat(version, expires)
