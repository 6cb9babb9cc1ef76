"""Configuration of the social server."""

from collections.abc import Mapping
from dataclasses import dataclass

from common.mysql_pools import MySQLSettings
from common.redis_clients import RedisSettings
from common.server import ServerSettings
from common.settings import default, read
from common.social_cache_format import CacheSettings


@dataclass(frozen=True)
class SocialConfig:
    """Everything ``python -m social_svc`` reads from the environment."""

    server: ServerSettings
    mysql: MySQLSettings
    cache: CacheSettings
    redis: RedisSettings | None
    pool_wait_s: float = default("SOCIAL_POOL_WAIT_S")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SocialConfig":
        """Reads the server, MySQL shard, cache and Redis settings.

        Redis settings are required only while the cache is enabled.
        """
        cache = CacheSettings.from_env(env)
        return cls(
            server=ServerSettings.from_env(env, "social"),
            mysql=MySQLSettings.from_env(env),
            cache=cache,
            redis=RedisSettings.from_env(env) if cache.enabled else None,
            pool_wait_s=read(env, "SOCIAL_POOL_WAIT_S"),
        )
