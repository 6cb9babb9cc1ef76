"""social_svc's graph cache as both services see it: its settings, its Redis keys and the
form of its entries.

social_svc owns the cache (``social_svc/cache.py``): it fills entries and invalidates
them. rank_svc only reads it (``rank_svc/social_client.py``): the generation of a user's
friend list, a token social_svc replaces after every change to that list, tells a rank
process whether the list it holds is still current; and a list or profile already cached
is read straight from Redis, so a rank process that does not hold a user's list yet needs
no call to social_svc for it. Both read the same settings and this module's key and
value forms, so they agree on them.
"""

import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from common.settings import default, read
from stepboard.v1 import social_pb2

FRIENDS, PROFILE = "friends", "profile"


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


def encode_profile(profile: social_pb2.Profile | None) -> bytes:
    """The cached form of a user's profile; empty for a user known to have none, so unknown
    users stay off MySQL too."""
    return b"" if profile is None else profile.SerializeToString()


def decode_profile(value: bytes) -> social_pb2.Profile | None:
    """The profile of a cached value (``None``: the user has none)."""
    return social_pb2.Profile.FromString(value) if value else None
