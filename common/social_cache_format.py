"""social_svc's Redis cache of friend lists and profiles, as both services see it: its
settings, its keys, the form of its entries, and the read-only view rank_svc has of it.

Who writes: social_svc alone (``social_svc/cache.py`` fills entries and, after every change
of a user's data, replaces the entry's generation and deletes the entry in one script;
``social_svc/graph.py`` encodes the entries). Who reads: social_svc itself, and rank_svc
through :class:`SocialCache` (``rank_svc/social_client.py``: friend lists and profiles;
``rank_svc/precompute.py``: generations) and :func:`user_tag` (``rank_svc/hot_rankings.py``
keeps a precomputed ranking in the slot of its owner's entries). The generation of a
user's friend list, a token replaced after every change to that list, tells a rank process
whether the list it holds is still current; a list or profile already cached is read
straight from Redis, so a rank process that does not hold a user's list yet needs no call
to social_svc for it. Everything either service knows of the cache's keys and values is in
this module, so they agree on them.
"""

import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from prometheus_client import Counter

from common.redis_clients import RedisClient, mget
from common.settings import default, read
from common.tracing import REDIS, span
from stepboard.v1 import social_pb2

FRIENDS, PROFILE = "friends", "profile"
# Privacy (social_svc/privacy.py): the set of users who left the rankings, one entry under
# the pseudo user EVERYONE; and per viewer, the users who hide from them (``VIEW``), whose
# generation also moves when a friend of the viewer leaves or joins the rankings.
OPTED_OUT, VIEW = "optout", "view"
EVERYONE = 0


@dataclass(frozen=True)
class CacheSettings:
    """The Redis cache of friend lists and profiles shared by every social_svc replica
    (rank_svc reads ``enabled``, ``namespace`` and ``ttl_s`` to check friend lists)."""

    enabled: bool = default("SOCIAL_CACHE")
    namespace: str = default("SOCIAL_CACHE_NAMESPACE")
    ttl_s: float = default("SOCIAL_CACHE_TTL_S")
    max_friends: int = default("SOCIAL_CACHE_MAX_FRIENDS")
    retry_s: float = default("SOCIAL_CACHE_RETRY_S")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "CacheSettings":
        """Reads ``STEPBOARD_SOCIAL_CACHE``, ``_CACHE_NAMESPACE``, ``_CACHE_TTL_S``,
        ``_CACHE_MAX_FRIENDS`` and ``_CACHE_RETRY_S``."""
        return cls(
            enabled=read(env, "SOCIAL_CACHE"),
            namespace=read(env, "SOCIAL_CACHE_NAMESPACE"),
            ttl_s=read(env, "SOCIAL_CACHE_TTL_S"),
            max_friends=read(env, "SOCIAL_CACHE_MAX_FRIENDS"),
            retry_s=read(env, "SOCIAL_CACHE_RETRY_S"),
        )


def user_tag(user_id: int) -> str:
    """The Redis Cluster hash tag of ``user_id``'s keys: an entry, its generation, and any
    other key that must be read in one script with them (a precomputed ranking,
    ``rank_svc/hot_rankings.py``) share one slot."""
    return f"{{{user_id}}}"


def entry_key(namespace: str, kind: str, user_id: int) -> str:
    """The cached ``kind`` (``FRIENDS`` or ``PROFILE``) of ``user_id``, tagged
    :func:`user_tag`."""
    return f"{namespace}:{kind}:{user_tag(user_id)}"


def generation_key(namespace: str, kind: str, user_id: int) -> str:
    """The generation of ``entry_key``: replaced after every change of the entry's data."""
    return entry_key(namespace, kind, user_id) + ":gen"


_LIST, _LARGE = b"L", b"H"


class FriendList(NamedTuple):
    """A cached friend list: all ids ascending, or only the count of a list too long to
    cache (``ids`` is ``None``)."""

    count: int
    ids: Sequence[int] | None


def encode_friends(friends: FriendList) -> bytes:
    """The cached form of a friend list: ``L`` and the ids as little-endian int64s, or
    ``H`` and the count of a list too long to cache."""
    if friends.ids is None:
        return _LARGE + str(friends.count).encode()
    packed = array("q", friends.ids)
    if sys.byteorder != "little":
        packed.byteswap()
    return _LIST + packed.tobytes()


def decode_friends(value: bytes) -> FriendList:
    """The friend list of a cached value."""
    if value[:1] == _LARGE:
        return FriendList(int(value[1:]), None)
    packed = array("q")
    packed.frombytes(value[1:])
    if sys.byteorder != "little":
        packed.byteswap()
    return FriendList(len(packed), packed)


def encode_ids(ids: Sequence[int]) -> bytes:
    """The cached form of a set of user ids (ascending): as a friend list."""
    return encode_friends(FriendList(len(ids), ids))


def decode_ids(value: bytes) -> Sequence[int]:
    """The ids of a value :func:`encode_ids` made."""
    return decode_friends(value).ids or ()


def encode_profile(profile: social_pb2.Profile | None) -> bytes:
    """The cached form of a user's profile; empty for a user known to have none, so unknown
    users stay off MySQL too."""
    return b"" if profile is None else profile.SerializeToString()


def decode_profile(value: bytes) -> social_pb2.Profile | None:
    """The profile of a cached value (``None``: the user has none).

    One format for every version of ``Profile``: an entry cached by a social_svc that
    predates a field (``cover_url``) decodes with that field empty, which it was then, and a
    reader that predates it skips it; so entries need no version, and replicas of both
    versions share them during an upgrade (``docs/design.md``, Redis keys)."""
    return social_pb2.Profile.FromString(value) if value else None


class SocialCache:
    """The cache read only, as rank_svc reads it: social_svc alone fills and invalidates it.

    ``reads`` counts the lookups of lists and profiles by ``kind`` and ``result`` (hit;
    miss: the caller asks social_svc)."""

    def __init__(self, client: RedisClient, namespace: str, reads: Counter) -> None:
        self._client = client
        self._namespace = namespace
        self._counts = {(kind, result): reads.labels(kind, result)
                        for kind in (FRIENDS, PROFILE) for result in ("hit", "miss")}

    def generation_key(self, user_id: int) -> str:
        """The Redis key of ``user_id``'s friend-list generation."""
        return generation_key(self._namespace, FRIENDS, user_id)

    def generations(self, user_ids: Sequence[int]) -> list[bytes | None]:
        """The current generations of ``user_ids``' friend lists (None: unchanged for a
        long time), in one ``MGET``."""
        return mget(self._client, [self.generation_key(u) for u in user_ids])

    def view_generations(self, user_ids: Sequence[int]) -> list[bytes | None]:
        """The current view generations of ``user_ids`` (``VIEW``), in one ``MGET``."""
        return mget(self._client, [generation_key(self._namespace, VIEW, u) for u in user_ids])

    def friends(self, user_id: int) -> tuple[bytes | None, FriendList | None]:
        """The current generation of ``user_id``'s list (None: unchanged for a long time)
        and the cached list (None: not cached), in one ``MGET``: both keys share a hash
        slot, and social_svc replaces a generation and drops its entry in one script, so a
        list read here is never older than the generation read with it."""
        with span("redis read friends", REDIS):
            generation, value = self._client.mget(
                [self.generation_key(user_id), entry_key(self._namespace, FRIENDS, user_id)]
            )
        self._counts[FRIENDS, "miss" if value is None else "hit"].inc()
        return generation, None if value is None else decode_friends(value)

    def privacy_keys(self, kind: str, user_id: int) -> list[str]:
        """The generation key, then the entry key, of a privacy entry (``OPTED_OUT`` of
        ``EVERYONE``, or ``VIEW`` of a viewer): read in this order (one slot, so one node of
        a Cluster), a present entry is never older than the generation read before it
        (social_svc replaces a generation and drops its entry in one script)."""
        return [generation_key(self._namespace, kind, user_id),
                entry_key(self._namespace, kind, user_id)]

    def profile_key(self, user_id: int) -> str:
        """The Redis key of ``user_id``'s cached profile (a caller may read it with its own
        reads and give the value to :meth:`profiles_of`)."""
        return entry_key(self._namespace, PROFILE, user_id)

    def profiles(self, user_ids: Sequence[int]) -> dict[int, social_pb2.Profile | None]:
        """The cached profiles among ``user_ids`` (None: the user is known to have none);
        users not in the cache are left out."""
        with span("redis read profiles", REDIS):
            values = mget(self._client, [self.profile_key(u) for u in user_ids])
        return self.profiles_of(user_ids, values)

    def profiles_of(
        self, user_ids: Sequence[int], values: Sequence[bytes | None],
    ) -> dict[int, social_pb2.Profile | None]:
        """:meth:`profiles` from ``values``, those of the users' :meth:`profile_key`."""
        found = {user_id: decode_profile(value)
                 for user_id, value in zip(user_ids, values, strict=True) if value is not None}
        self._counts[PROFILE, "hit"].inc(len(found))
        self._counts[PROFILE, "miss"].inc(len(user_ids) - len(found))
        return found
