"""social_svc's graph cache as both services see it: its settings and its Redis keys.

social_svc owns the cache (``social_svc/cache.py``). rank_svc reads one kind of key too:
the generation of a user's friend list, a token social_svc replaces after every change to
that list, so a rank process can tell whether the list it holds is still current without
fetching it again (``rank_svc/social_client.py``). Both read the same settings, so they
agree on the keys.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from common.config import env_bool, env_float, env_int, env_str

FRIENDS, PROFILE = "friends", "profile"


@dataclass(frozen=True)
class CacheSettings:
    """The Redis cache of friend lists and profiles shared by every social_svc replica
    (rank_svc reads ``enabled``, ``namespace`` and ``ttl_s`` to check friend lists)."""

    enabled: bool = True
    namespace: str = "sg"
    ttl_s: float = 300.0
    max_friends: int = 10_000
    retry_s: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "CacheSettings":
        """Reads ``STEPBOARD_SOCIAL_CACHE``, ``_CACHE_NAMESPACE``, ``_CACHE_TTL_S``,
        ``_CACHE_MAX_FRIENDS`` and ``_CACHE_RETRY_S``."""
        return cls(
            enabled=env_bool(env, "SOCIAL_CACHE", True),
            namespace=env_str(env, "SOCIAL_CACHE_NAMESPACE", "sg"),
            ttl_s=env_float(env, "SOCIAL_CACHE_TTL_S", 300.0, minimum=1.0),
            max_friends=env_int(env, "SOCIAL_CACHE_MAX_FRIENDS", 10_000, 0, 1_000_000),
            retry_s=env_float(env, "SOCIAL_CACHE_RETRY_S", 2.0),
        )


def entry_key(namespace: str, kind: str, user_id: int) -> str:
    """The cached ``kind`` (``FRIENDS`` or ``PROFILE``) of ``user_id``; the hash tag keeps
    an entry and its generation in one Redis Cluster slot."""
    return f"{namespace}:{kind}:{{{user_id}}}"


def generation_key(namespace: str, kind: str, user_id: int) -> str:
    """The generation of ``entry_key``: replaced after every change of the entry's data."""
    return entry_key(namespace, kind, user_id) + ":gen"
