"""Configuration of the social server."""

from collections.abc import Mapping
from dataclasses import dataclass

from common.config import env_bool, env_float, env_int, env_str
from common.mysql_pools import MySQLSettings
from common.redis_clients import RedisSettings
from common.server import ServerSettings


@dataclass(frozen=True)
class CacheSettings:
    """The Redis cache of friend lists and profiles shared by every social_svc replica."""

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


@dataclass(frozen=True)
class SocialConfig:
    """Everything ``python -m social_svc`` reads from the environment."""

    server: ServerSettings
    mysql: MySQLSettings
    cache: CacheSettings
    redis: RedisSettings | None
    pool_wait_s: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SocialConfig":
        """Reads the server (default port 50052), MySQL shard, cache and Redis settings.

        Redis settings are required only while the cache is enabled.
        """
        cache = CacheSettings.from_env(env)
        return cls(
            server=ServerSettings.from_env(env, default_port=50052, default_metrics_port=9102),
            mysql=MySQLSettings.from_env(env),
            cache=cache,
            redis=RedisSettings.from_env(env) if cache.enabled else None,
            pool_wait_s=env_float(env, "SOCIAL_POOL_WAIT_S", 1.0),
        )
