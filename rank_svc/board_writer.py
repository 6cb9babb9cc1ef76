"""The board writer: max-merges scores into the daily boards, keeps the week and month
boards in step with them, and keeps the watermarks; it also sets window entries from their
days when the windows are restored (:meth:`BoardWriter.recompute_window`, used by
:mod:`rank_svc.window_restore`).

The writer updates the boards, the likes (:mod:`rank_svc.likes`) and the applied
watermarks of a shard in one Lua script, so a Redis that lost data (flush, restart without
persistence, failover) also lost the matching watermarks, and the next write notices it
(:meth:`BoardWriter.apply`). Keys and scores: :mod:`rank_svc.board_format`.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta

from common.redis_clients import RedisClient, run_scripts
from common.report_rules import MONTH, WEEK, Window, day_start_s, window_of
from rank_svc import likes
from rank_svc.board_format import BoardKeys, BoardSettings, expire_at

# KEYS[1]: the shard's watermark hash; then the shard's likes (rank_svc.likes); then per
# window: its board, its version key and the board key of each of its days; then per day:
# (board key, its version key).
# ARGV: n_partitions, then (partition, expected, new) per partition; the likes; n_windows,
# then per window: expire_at, start second, n_days, the start second of each of its days; then per
# day: expire_at, start second, its week's and its month's window (1-based, 0: none),
# n_pairs, score1, member1, ... Returns the partitions whose watermark was missing or
# behind `expected` (and then writes nothing), else an empty list.
#
# A pair that does not raise its day's score changes nothing. One that does raises the
# user's week and month totals by the steps it added; their reached time becomes the later
# of theirs and the day's new one, except when the day held the window's reached time and
# now reached its count earlier: then it is the latest of the window's days (rescanned).
# The score arithmetic and the board bookkeeping both scripts share: a day score's steps and
# second, a window score, and what every change of a board does to its expiry and version.
_SCORES_LUA = """
-- board_format.TIME_SLOTS and WINDOW_TIME_SLOTS
local DAY_SLOTS, WINDOW_SLOTS = 2 ^ 18, 2 ^ 22
local function day_parts(score, start)
  local rest = score % DAY_SLOTS
  return (score - rest) / DAY_SLOTS, start + DAY_SLOTS - 1 - rest
end
local function window_score(total, reached, start)
  return total * WINDOW_SLOTS + (WINDOW_SLOTS - 1 - (reached - start))
end
local function changed_board(key, version, expire_at)
  redis.call('EXPIREAT', key, expire_at)
  redis.call('INCR', version)
  redis.call('EXPIREAT', version, expire_at)
end
"""

# The watermark check that comes first: a lost shard writes nothing.
_CHECK_LUA = """
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
"""
# The boards (after the shard's likes, rank_svc.likes.APPLY_LUA, which sets `a` and `k`).
_BOARDS_LUA = """
local windows, n_windows = {}, tonumber(ARGV[a])
a = a + 1
for w = 1, n_windows do
  local window = {key = KEYS[k], version = KEYS[k + 1], expire_at = ARGV[a],
                  start = tonumber(ARGV[a + 1]), days = {}, touched = false}
  local n_days = tonumber(ARGV[a + 2])
  a, k = a + 3, k + 2
  for d = 1, n_days do
    window.days[d] = {key = KEYS[k], start = tonumber(ARGV[a])}
    a, k = a + 1, k + 1
  end
  windows[w] = window
end
local function latest_reached(window, user)
  local latest = 0
  for _, day in ipairs(window.days) do
    local score = redis.call('ZSCORE', day.key, user)
    if score then
      local _, reached = day_parts(tonumber(score), day.start)
      latest = math.max(latest, reached)
    end
  end
  return latest
end
local function raise(window, user, added, day_was_reached, day_reached)
  local total, reached = added, day_reached
  local old = redis.call('ZSCORE', window.key, user)
  if old then
    old = tonumber(old)
    local rest = old % WINDOW_SLOTS
    local was_reached = window.start + WINDOW_SLOTS - 1 - rest
    total = (old - rest) / WINDOW_SLOTS + added
    if day_was_reached == was_reached and day_reached < was_reached then
      reached = latest_reached(window, user)
    else
      reached = math.max(was_reached, day_reached)
    end
  end
  local score = window_score(total, reached, window.start)
  redis.call('ZADD', window.key, string.format('%.0f', score), user)
  window.touched = true
end
for d = k, #KEYS, 2 do
  local expire_at, start = ARGV[a], tonumber(ARGV[a + 1])
  local week, month = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local n_pairs = tonumber(ARGV[a + 4])
  a = a + 5
  local changed = false
  for i = a, a + 2 * n_pairs - 1, 2 do
    local score, user = tonumber(ARGV[i]), ARGV[i + 1]
    local old = redis.call('ZSCORE', KEYS[d], user)
    if (not old) or score > tonumber(old) then
      redis.call('ZADD', KEYS[d], ARGV[i], user)
      changed = true
      local steps, reached = day_parts(score, start)
      local old_steps, old_reached = 0, -1
      if old then old_steps, old_reached = day_parts(tonumber(old), start) end
      for _, w in ipairs({week, month}) do
        if w > 0 then raise(windows[w], user, steps - old_steps, old_reached, reached) end
      end
    end
  end
  a = a + 2 * n_pairs
  if changed then changed_board(KEYS[d], KEYS[d + 1], expire_at) end
end
for _, window in ipairs(windows) do
  if window.touched then changed_board(window.key, window.version, window.expire_at) end
end
for i = 0, n - 1 do
  local p, new = ARGV[2 + 3 * i], tonumber(ARGV[4 + 3 * i])
  local w = redis.call('HGET', KEYS[1], p)
  if (not w) or tonumber(w) < new then redis.call('HSET', KEYS[1], p, new) end
end
return lost
"""
_APPLY_LUA = _SCORES_LUA + _CHECK_LUA + likes.APPLY_LUA + _BOARDS_LUA


# KEYS: a window's board, its version key, then the board of each of the window's days
# still kept (see BoardWriter.recompute_window). ARGV: the window's expire_at and start
# second, the start second of each of those days, then per user: user, total and reached
# second of the user's archived days (0 0: none). Returns how many users' entries changed.
_RECOMPUTE_LUA = _SCORES_LUA + """
local expire_at, start = ARGV[1], tonumber(ARGV[2])
local n_days = #KEYS - 2
local changed = 0
for i = 3 + n_days, #ARGV, 3 do
  local user = ARGV[i]
  local total, reached = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local present = reached > 0
  for d = 1, n_days do
    local score = redis.call('ZSCORE', KEYS[2 + d], user)
    if score then
      local steps, at = day_parts(tonumber(score), tonumber(ARGV[2 + d]))
      total, reached, present = total + steps, math.max(reached, at), true
    end
  end
  local old = redis.call('ZSCORE', KEYS[1], user)
  if present then
    local score = window_score(total, reached, start)
    if (not old) or tonumber(old) ~= score then
      redis.call('ZADD', KEYS[1], string.format('%.0f', score), user)
      changed = changed + 1
    end
  elseif old then
    redis.call('ZREM', KEYS[1], user)
    changed = changed + 1
  end
end
if changed > 0 then changed_board(KEYS[1], KEYS[2], expire_at) end
return changed
"""


def days_of(window: Window) -> Iterable[date]:
    """Every day of ``window``, first to last."""
    for offset in range((window.last - window.first).days + 1):
        yield window.first + timedelta(days=offset)


class BoardWriter(BoardKeys):
    """Writes the sharded daily boards and their watermarks through one Redis client."""

    def __init__(
        self, client: RedisClient, settings: BoardSettings, topic: str = "", staging: bool = False
    ) -> None:
        """``staging`` writers use separate board keys, for building a day off to the side,
        and leave the week and month boards alone (a staging day starts empty, so what it
        adds is not what the live windows lack); they write likes to the live keys."""
        BoardKeys.__init__(self, settings, topic, staging)
        self.client = client
        self._windows = not staging
        self._apply = client.register_script(_APPLY_LUA)
        self._recompute = client.register_script(_RECOMPUTE_LUA)
        # Likes have no staging keys: a rebuild replays them into the live ones (see
        # rank_svc.rebuild), whose changes bump the live boards' versions.
        self.like_keys = likes.LikeKeys(settings.namespace, settings.shards)
        self._live_version_key = BoardKeys(settings, topic).version_key

    def apply(
        self,
        scores: Mapping[tuple[date, int], int],
        watermarks: Mapping[int, tuple[int, int]],
        like_ops: Mapping[likes.LikeId, likes.LikeOp] | None = None,
    ) -> set[int]:
        """Max-merges ``(day, user) → score``, raises the week and month totals by what the
        days gained, and advances the watermarks of every shard, each shard in one script.

        ``watermarks`` maps each Kafka partition of the batch to ``(expected, new)``:
        ``expected`` is the last offset this writer knows it applied (-1: unknown), ``new``
        the last offset of the batch. A shard whose watermark is missing or behind
        ``expected`` lost data: nothing is written there and the partition is returned, so
        the caller replays it. All shards go in one pipeline (one round trip standalone).
        ``like_ops`` (:mod:`rank_svc.likes`) are applied in the liked user's shard, in the
        same script as its watermarks, so they are refused and replayed alike.
        """
        likes_of = likes.by_shard(self.like_keys, like_ops or {})
        by_shard: dict[int, dict[date, list]] = defaultdict(lambda: defaultdict(list))
        for (day, user_id), score in scores.items():
            by_shard[self.shard(user_id)][day].extend((score, user_id))
        head = [len(watermarks)]
        for partition, (expected, new) in sorted(watermarks.items()):
            head += [partition, expected, new]
        calls = []
        for shard in range(self.settings.shards):
            days = sorted(by_shard.get(shard, {}).items())
            windows = self._windows_of([day for day, _ in days])
            like_keys, like_args = likes.script_part(
                self.like_keys, likes_of.get(shard, {}), self.settings.retention_days,
                self._live_version_key,
            )
            keys = [self.watermark_key(shard), *like_keys]
            args = [*head, *like_args, len(windows)]
            for window in windows:
                keys += [self.board_key(window, shard), self.version_key(window, shard)]
                window_days = list(days_of(window))
                keys += [self.board_key(day, shard) for day in window_days]
                args += [expire_at(window, self.settings.retention_days),
                         day_start_s(window.first), len(window_days),
                         *(day_start_s(day) for day in window_days)]
            for day, pairs in days:
                keys += [self.board_key(day, shard), self.version_key(day, shard)]
                args += [expire_at(day, self.settings.retention_days), day_start_s(day),
                         *self._window_numbers(day, windows), len(pairs) // 2, *pairs]
            calls.append((keys, args))
        lost: set[int] = set()
        for result in run_scripts(self.client, self._apply, calls):
            lost.update(int(p) for p in result)
        return lost

    def recompute_window(
        self,
        window: Window,
        shard: int,
        kept_days: Sequence[date],
        users: Iterable[tuple[int, int, int]],
    ) -> int:
        """Sets each user's entry on ``shard``'s board of ``window`` to what the window's days
        hold, in one script, so atomically with respect to :meth:`apply`.

        ``users`` are ``(user, total, reached_at_s)``: the sum of the user's steps and their
        latest ``reached_at`` over the window's days whose boards are gone (``0, 0``: none);
        the script adds the user's score on the board of each of ``kept_days``. A user with
        neither leaves the window's board. Every later :meth:`apply` raises the window by
        what a day gains, so the entry stays exact. Returns how many entries changed (none:
        neither the board's version nor its expiry is touched)."""
        keys = [self.board_key(window, shard), self.version_key(window, shard),
                *(self.board_key(day, shard) for day in kept_days)]
        args = [expire_at(window, self.settings.retention_days), day_start_s(window.first),
                *(day_start_s(day) for day in kept_days)]
        for user, total, reached_at_s in users:
            args += [user, total, reached_at_s]
        return int(self._recompute(keys=keys, args=args))

    def _windows_of(self, days: Iterable[date]) -> list[Window]:
        """The week and month windows of ``days`` (none for a staging writer)."""
        if not self._windows:
            return []
        return list(dict.fromkeys(
            window_of(day, period) for day in days for period in (WEEK, MONTH)
        ))

    def _window_numbers(self, day: date, windows: list[Window]) -> list[int]:
        """The script's numbers (1-based in ``windows``, 0: none) of ``day``'s week and month."""
        if not windows:
            return [0, 0]
        return [windows.index(window_of(day, period)) + 1 for period in (WEEK, MONTH)]

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
