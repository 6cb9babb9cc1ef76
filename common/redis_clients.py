"""Redis settings and the one client factory: standalone, Sentinel or Cluster by config."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.retry import Retry
from redis.sentinel import Sentinel

from common.config import ConfigError, env_choice, env_float, env_list, env_str, host_port

RedisClient = redis.Redis | RedisCluster
# What a Redis call raises when the server is unreachable, slow or refuses: callers that can
# do without Redis (a cache) catch these and carry on.
REDIS_ERRORS = (redis.exceptions.RedisError, OSError)


@dataclass(frozen=True)
class RedisSettings:
    """How to reach Redis. ``mode`` picks which of the address settings is used."""

    mode: str = "standalone"
    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "mymaster"
    cluster_nodes: tuple[tuple[str, int], ...] = ()
    password: str = ""
    socket_timeout_s: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RedisSettings":
        """Reads ``STEPBOARD_REDIS_*``; the address for the chosen mode is required."""
        mode = env_choice(env, "REDIS_MODE", ("standalone", "sentinel", "cluster"), "standalone")
        settings = cls(
            mode=mode,
            url=env_str(env, "REDIS_URL", "") if mode != "standalone"
            else env_str(env, "REDIS_URL"),
            sentinels=tuple(
                host_port(env, "REDIS_SENTINELS", item)
                for item in env_list(env, "REDIS_SENTINELS", ())
            ),
            sentinel_master=env_str(env, "REDIS_SENTINEL_MASTER", "mymaster"),
            cluster_nodes=tuple(
                host_port(env, "REDIS_CLUSTER_NODES", item)
                for item in env_list(env, "REDIS_CLUSTER_NODES", ())
            ),
            password=env_str(env, "REDIS_PASSWORD", ""),
            socket_timeout_s=env_float(env, "REDIS_SOCKET_TIMEOUT_S", 2.0),
        )
        if mode == "sentinel" and not settings.sentinels:
            raise ConfigError("STEPBOARD_REDIS_SENTINELS is required when REDIS_MODE=sentinel")
        if mode == "cluster" and not settings.cluster_nodes:
            raise ConfigError("STEPBOARD_REDIS_CLUSTER_NODES is required when REDIS_MODE=cluster")
        return settings


def create_redis(settings: RedisSettings) -> RedisClient:
    """One client per process; commands fail fast (bounded timeouts, few retries)."""
    common = {
        "password": settings.password or None,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.01), retries=2),
        "health_check_interval": 30,
    }
    if settings.mode == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.cluster_nodes],
            **common,
        )
    if settings.mode == "sentinel":
        sentinel = Sentinel(
            list(settings.sentinels),
            socket_timeout=settings.socket_timeout_s,
            sentinel_kwargs={"password": settings.password or None},
        )
        return sentinel.master_for(settings.sentinel_master, **common)
    return redis.Redis.from_url(settings.url, **common)


def mget(client: RedisClient, keys: list[str]) -> list[bytes | None]:
    """The values of ``keys`` in one ``MGET``; a Cluster splits it by slot."""
    if isinstance(client, RedisCluster):
        return client.mget_nonatomic(keys)
    return client.mget(keys)


def run_scripts(client: RedisClient, script: Script, calls: Sequence[tuple[list, list]]) -> list:
    """``script``'s replies for each ``(keys, args)``: pipelined (one round trip) on a
    single server; one call each on a Cluster, whose client refuses scripts in pipelines."""
    if isinstance(client, RedisCluster):
        return [script(keys=keys, args=args) for keys, args in calls]
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        script(keys=keys, args=args, client=pipe)
    return pipe.execute()
