"""Precomputed rankings of hot users (huge friend lists), stored in Redis.

Per user and board (a day, a week or a month): a list of ``"user_id:score"`` rows in
ranking order (score empty for a friend without a report) and a meta hash (``computed_at``,
``total``, ``me`` = the user's index, ``generation`` = the generation of the friend list it
was computed from, in social_svc's cache, ``view`` = the owner's view generation it was
filtered under (``rank_svc/privacy_filter.py``: a page is served only while it is the
current one), ``token`` = the fencing token of the computation
published, ``fence`` = the last token handed out). Both keys share a hash tag with that
generation's key (:func:`common.social_cache_format.user_tag`), so a refresh swaps them
atomically and a page is read together with the list's current generation in one script
call, even on Redis Cluster: a ranking computed before the list last changed is told apart
from a current one.

Precompute replicas may compute one ranking at once (a lock expired mid-refresh, a replica
paused): each computation takes a token (:meth:`HotRankings.fence`) before it reads the
friend list, writes its rows to a staging list of its own, and is published only if no
computation with a later token was published first. Readers so always see the rows of one
computation, never an older one after a newer one. The token lives in the meta hash, so
it expires with the ranking it fences.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from common.redis_clients import RedisClient
from common.report_rules import Window
from common.social_cache_format import user_tag
from rank_svc.board_format import Row, as_window, expire_at

_CHUNK = 10_000
# A staging list outlives its last write by this much: long enough to publish it, short
# enough that a replica dying mid-refresh leaves nothing behind for long.
_STAGING_TTL_S = 600

# KEYS: staging list, live list, meta. ARGV: computed_at, total, me, expire_at, generation,
# token, view generation. Returns 1 if published, 0 if a computation with a later token was
# published first (the staging list is then dropped).
_PUBLISH_LUA = """
if tonumber(redis.call('HGET', KEYS[3], 'token') or '0') >= tonumber(ARGV[6]) then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[3], 'computed_at', ARGV[1], 'total', ARGV[2], 'me', ARGV[3],
           'generation', ARGV[5], 'token', ARGV[6], 'view', ARGV[7])
redis.call('EXPIREAT', KEYS[2], ARGV[4])
redis.call('EXPIREAT', KEYS[3], ARGV[4])
return 1
"""

# KEYS: live list, meta, and optionally the friend list's generation key. ARGV: start (-1:
# the caller's own page), size. Returns nil when nothing is precomputed, else {computed_at,
# total, me, start, me_row, rows, current, first_row, view}: current is 1 unless the list's
# generation moved since the ranking was computed (no generation key given: 1); first_row
# is the ranking's rank-1 row (its champion), whatever page is read; view is the view
# generation the ranking was filtered under.
_PAGE_LUA = """
local meta = redis.call('HMGET', KEYS[2], 'computed_at', 'total', 'me', 'generation', 'view')
if not meta[1] then return nil end
local size, start, me = tonumber(ARGV[2]), tonumber(ARGV[1]), tonumber(meta[3])
if start < 0 then start = me - me % size end
local rows = redis.call('LRANGE', KEYS[1], start, start + size - 1)
local current = 1
if KEYS[3] and (redis.call('GET', KEYS[3]) or '') ~= (meta[4] or '') then current = 0 end
return {meta[1], meta[2], meta[3], start, redis.call('LINDEX', KEYS[1], me), rows, current,
        redis.call('LINDEX', KEYS[1], 0), meta[5] or ''}
"""


@dataclass(frozen=True)
class HotPage:
    """One page of a precomputed ranking."""

    computed_at_s: int
    total: int
    my_index: int
    start: int
    me: Row
    rows: list[Row]
    current: bool  # computed from the friend list as it is now (see the module docstring)
    first: Row  # the ranking's rank-1 row, whatever page this is
    view_generation: bytes  # the owner's view generation it was filtered under


def _pack(row: Row) -> str:
    return f"{row.user_id}:{'' if row.score is None else row.score}"


def _unpack(text: bytes | str) -> Row:
    user, _, score = (text.decode() if isinstance(text, bytes) else text).partition(":")
    return Row(int(user), int(score) if score else None)


class HotRankings:
    """Reads and writes precomputed rankings."""

    def __init__(self, client: RedisClient, namespace: str, retention_days: int) -> None:
        self.client = client
        self.namespace = namespace
        self.retention_days = retention_days
        self._publish = client.register_script(_PUBLISH_LUA)
        self._page = client.register_script(_PAGE_LUA)

    def _keys(self, user_id: int, day: date | Window) -> tuple[str, str, str]:
        tag = f"{self.namespace}:hot:{user_tag(user_id)}:{as_window(day).label}"
        return f"{tag}:new", f"{tag}:rows", f"{tag}:meta"

    def fence(self, user_id: int, days: Sequence[date | Window]) -> list[int]:
        """A fencing token for a new computation of each of the user's rankings of
        ``days``: later than every token handed out before (one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            meta = self._keys(user_id, day)[2]
            pipe.hincrby(meta, "fence", 1)
            pipe.expireat(meta, expire_at(day, self.retention_days))
        return pipe.execute()[::2]

    def save(
        self, user_id: int, day: date | Window, rows: list[Row], computed_at_s: int,
        generation: bytes | None, token: int, view_generation: bytes = b"",
    ) -> bool:
        """Replaces the user's ranking of ``day`` with ``rows`` (which include the user),
        computed from the friend list of ``generation`` (read before the list was) under
        ``token`` (:meth:`fence`, taken before that), without the users hidden from the
        owner under ``view_generation`` (empty: never served); returns False, replacing nothing, if
        a computation with a later token was published first."""
        prefix, live, meta = self._keys(user_id, day)
        staging = f"{prefix}:{token}"
        me = next(i for i, row in enumerate(rows) if row.user_id == user_id)
        for first in range(0, len(rows), _CHUNK):
            pipe = self.client.pipeline(transaction=False)
            pipe.rpush(staging, *(_pack(r) for r in rows[first:first + _CHUNK]))
            pipe.expire(staging, _STAGING_TTL_S)
            pipe.execute()
        return bool(self._publish(
            keys=[staging, live, meta],
            args=[computed_at_s, len(rows), me, expire_at(day, self.retention_days),
                  generation or b"", token, view_generation],
        ))

    def page(
        self, user_id: int, day: date | Window, start: int | None, size: int,
        generation_key: str | None,
    ) -> HotPage | None:
        """A page from ``start`` (None: the caller's own page), or None if not precomputed;
        checked against the friend list's current generation at ``generation_key`` (None:
        not checked)."""
        _, live, meta = self._keys(user_id, day)
        keys = [live, meta] if generation_key is None else [live, meta, generation_key]
        found = self._page(keys=keys, args=[-1 if start is None else start, size])
        if found is None:
            return None
        computed_at, total, me, first, me_row, rows, current, first_row, view = found
        return HotPage(
            computed_at_s=int(computed_at),
            total=int(total),
            my_index=int(me),
            start=int(first),
            me=_unpack(me_row),
            rows=[_unpack(r) for r in rows],
            current=bool(current),
            first=_unpack(first_row),
            view_generation=view,
        )
