"""The Redis cache of friend lists and profiles, in front of the MySQL shards.

Every entry has a generation next to it (keys and value forms: ``common/social_cache_format.py``).
A writer, after its MySQL commit, replaces the generation with a new random token and
deletes the entry, both in one script, so no reader ever sees the old entry beside the new
generation (rank_svc reads the two together and keeps a list under that generation). A
reader that missed remembers the generation it saw and fills the entry only if the
generation is still the same (one script), so a fill computed from rows read before a
concurrent write can never overwrite the invalidation. Replicas share Redis, so a change
made through one is seen by all at once.

Redis is optional: when it fails, reads go to MySQL and the cache is skipped for a few
seconds (instead of paying a timeout on every call). A read gets half of what is left of
the call's deadline (``common.call_deadline``); one that used it up goes to MySQL for that
call. Invalidations are always attempted, whatever the caller's deadline.

A generation is a random token rather than a counter because a generation expires (it
outlives entries only by a TTL): a counter recreated after its expiry starts again at 1, so
a reader holding "1" from before (rank_svc keeps friend lists by their generation) could
not tell the list had changed twice since.
"""

import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from prometheus_client import Counter

from common import call_deadline
from common.errors import DeadlineExceeded, Unavailable
from common.redis_clients import REDIS_ERRORS, RedisClient, mget, run_scripts
from common.social_cache_format import CacheSettings, entry_key, generation_key

log = logging.getLogger(__name__)

CACHE_LOOKUPS = Counter(
    "stepboard_social_cache_lookups_total",
    "Friend list and profile cache lookups, by kind and result (hit, miss, unavailable).",
    ["kind", "result"],
)

# KEYS: the entry, its generation. ARGV: the generation the filler saw, the value, the TTL.
_FILL_LUA = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# KEYS: the entry, its generation. ARGV: the new generation, its TTL.
_INVALIDATE_LUA = """
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""
# KEYS: the entry, its generation. ARGV: a new generation, its TTL. Returns {generation,
# entry or nil}; gives the entry a generation if it had none, and keeps the generation
# alive for its TTL from now, so it outlives any entry filled under it.
_CURRENT_LUA = """
local generation = redis.call('GET', KEYS[2])
if generation then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  generation = ARGV[1]
  redis.call('SET', KEYS[2], generation, 'PX', ARGV[2])
end
return {generation, redis.call('GET', KEYS[1])}
"""


class Entry(NamedTuple):
    """A cache lookup: the value (``None`` on a miss) and, on a miss, the generation to
    fill with."""

    value: bytes | None
    generation: bytes


class GraphCache:
    """Friend lists and profiles by user, under ``settings.namespace``."""

    def __init__(self, client: RedisClient, settings: CacheSettings) -> None:
        self._client = client
        self._settings = settings
        self._ttl_ms = int(settings.ttl_s * 1000)
        self._fill = client.register_script(_FILL_LUA)
        self._invalidate = client.register_script(_INVALIDATE_LUA)
        self._current = client.register_script(_CURRENT_LUA)
        self._skip_until = 0.0

    def _keys(self, kind: str, user_id: int) -> list[str]:
        """A script's keys for one entry: the entry, then its generation."""
        namespace = self._settings.namespace
        return [entry_key(namespace, kind, user_id), generation_key(namespace, kind, user_id)]

    def _failed(self, action: str, error: Exception) -> None:
        self._skip_until = time.monotonic() + self._settings.retry_s
        log.warning("cache %s failed, using MySQL: %s", action, error)

    def lookup(self, kind: str, user_ids: Sequence[int]) -> list[Entry] | None:
        """Entries of ``user_ids`` in order, or ``None`` when the cache is unavailable.

        One ``MGET`` of the entries, then one of the generations of the misses only: a hit
        needs none, and a generation read after the miss still guards the fill, since it
        is read before the MySQL rows. (A pipeline of a ``GET`` per entry and per
        generation took 1.1-1.3 ms of CPU for a page's 50 profiles, the two ``MGET``s
        0.11-0.14 ms.)
        """
        if time.monotonic() < self._skip_until:
            CACHE_LOOKUPS.labels(kind, "unavailable").inc(len(user_ids))
            return None
        namespace = self._settings.namespace
        try:
            values = mget(self._client, [entry_key(namespace, kind, u) for u in user_ids])
            missed = [i for i, value in enumerate(values) if value is None]
            generations = mget(
                self._client, [generation_key(namespace, kind, user_ids[i]) for i in missed]
            ) if missed else []
        except REDIS_ERRORS as error:
            self._failed("lookup", error)
            CACHE_LOOKUPS.labels(kind, "unavailable").inc(len(user_ids))
            return None
        except DeadlineExceeded:  # Redis used up its share: MySQL answers this call
            CACHE_LOOKUPS.labels(kind, "unavailable").inc(len(user_ids))
            return None
        entries = [Entry(value, b"") for value in values]
        for i, generation in zip(missed, generations, strict=True):
            entries[i] = Entry(None, generation or b"")
        CACHE_LOOKUPS.labels(kind, "hit").inc(len(entries) - len(missed))
        CACHE_LOOKUPS.labels(kind, "miss").inc(len(missed))
        return entries

    def fill(self, kind: str, items: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Stores ``(user_id, generation seen, value)`` items whose generation is unchanged."""
        if time.monotonic() < self._skip_until:
            return
        calls = [(self._keys(kind, user_id), [generation, value, self._ttl_ms])
                 for user_id, generation, value in items]
        try:
            run_scripts(self._client, self._fill, calls)
        except REDIS_ERRORS as error:
            self._failed("fill", error)
        except DeadlineExceeded:  # not filled: the next reader fills it
            pass

    def current(self, kind: str, user_id: int) -> Entry:
        """The entry of ``user_id`` (``value`` None on a miss) and its generation, which
        always exists afterwards (a fresh one if it had none): rank_svc holds privacy
        entries by a generation that must move on every change, and after a cache wipe.
        Redis errors are raised (privacy entries have no MySQL fallback for rank_svc)."""
        generation, value = self._current(
            keys=self._keys(kind, user_id), args=[secrets.token_hex(8), 2 * self._ttl_ms]
        )
        return Entry(value, generation)

    def invalidate(self, kind: str, user_ids: Iterable[int], required: bool = False) -> None:
        """Drops the entries of ``user_ids`` and gives them new generations (after a write).

        A failure is logged, and raised as ``Unavailable`` only when ``required`` (a
        privacy change: the caller is told to retry, which invalidates again); otherwise
        not: the write is committed, and the entry expires within the TTL at the latest.
        """
        # The new generation outlives any entry filled before the change, so the fill
        # guard keeps working.
        calls = [(self._keys(kind, user_id), [secrets.token_hex(8), 2 * self._ttl_ms])
                 for user_id in user_ids]
        try:
            with call_deadline.detached():  # the write is committed: never cut this short
                run_scripts(self._client, self._invalidate, calls)
        except REDIS_ERRORS as error:
            self._failed("invalidation", error)
            if required:
                raise Unavailable(
                    f"the change is stored but the cache could not be updated ({error}): retry"
                ) from error
