"""Redis settings and the one client factory: standalone, Sentinel or Cluster by config."""

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from common import call_deadline
from common.config import ConfigError, host_port
from common.errors import DeadlineExceeded
from common.settings import default, read
from common.store_tls import StoreTls

RedisClient = redis.Redis | RedisCluster
# What a Redis call raises when the server is unreachable, slow or refuses: callers that can
# do without Redis (a cache) catch these and carry on.
REDIS_ERRORS = (redis.exceptions.RedisError, OSError)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedisSettings:
    """How to reach Redis. ``mode`` picks which of the address settings is used;
    ``allow_eviction`` lets a process run on a Redis that may evict keys
    (:func:`require_noeviction`); ``tls`` applies to whichever servers the mode reaches."""

    mode: str = default("REDIS_MODE")
    url: str = default("REDIS_URL")
    sentinels: tuple[tuple[str, int], ...] = default("REDIS_SENTINELS")
    sentinel_master: str = default("REDIS_SENTINEL_MASTER")
    cluster_nodes: tuple[tuple[str, int], ...] = default("REDIS_CLUSTER_NODES")
    username: str = default("REDIS_USERNAME")
    password: str = default("REDIS_PASSWORD")
    tls: StoreTls = field(default_factory=lambda: StoreTls.off("REDIS"))
    socket_timeout_s: float = default("REDIS_SOCKET_TIMEOUT_S")
    allow_eviction: bool = default("REDIS_ALLOW_EVICTION")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RedisSettings":
        """Reads ``STEPBOARD_REDIS_*``; the address for the chosen mode is required. In
        standalone mode a ``rediss://`` URL turns TLS on, and ``STEPBOARD_REDIS_TLS`` with
        a ``redis://`` one is refused (the URL would say plaintext)."""
        mode = read(env, "REDIS_MODE")
        url = read(env, "REDIS_URL", required=mode == "standalone")
        rediss = mode == "standalone" and url.startswith("rediss://")
        settings = cls(
            mode=mode,
            url=url,
            sentinels=tuple(
                host_port(env, "REDIS_SENTINELS", item)
                for item in read(env, "REDIS_SENTINELS")
            ),
            sentinel_master=read(env, "REDIS_SENTINEL_MASTER"),
            cluster_nodes=tuple(
                host_port(env, "REDIS_CLUSTER_NODES", item)
                for item in read(env, "REDIS_CLUSTER_NODES")
            ),
            username=read(env, "REDIS_USERNAME"),
            password=read(env, "REDIS_PASSWORD"),
            tls=StoreTls.from_env(env, "REDIS", implied=rediss),
            socket_timeout_s=read(env, "REDIS_SOCKET_TIMEOUT_S"),
            allow_eviction=read(env, "REDIS_ALLOW_EVICTION"),
        )
        if mode == "sentinel" and not settings.sentinels:
            raise ConfigError("STEPBOARD_REDIS_SENTINELS is required when REDIS_MODE=sentinel")
        if mode == "cluster" and not settings.cluster_nodes:
            raise ConfigError("STEPBOARD_REDIS_CLUSTER_NODES is required when REDIS_MODE=cluster")
        if mode == "standalone" and settings.tls.enabled and not rediss:
            raise ConfigError("STEPBOARD_REDIS_URL: use a rediss:// URL with "
                              "STEPBOARD_REDIS_TLS=true")
        return settings


class _DeadlineBound:
    """Mixed into a redis-py connection class: a reply is awaited at most until the
    deadline of the gRPC call being served (:mod:`common.call_deadline`; ``_deadline_share``
    of what is left of it), not for the whole socket timeout, and a wait the deadline cut
    short raises ``DeadlineExceeded``.

    A connection whose exchange ends early is closed before the error leaves it, whatever
    the error, so its pool never hands it out half done: with replies still to come (the
    next command would read them as its own), or with its handshake cut short (``connect``
    sends ``HELLO`` and the rest through these methods, but closes the connection only
    after redis-py's own errors; one left without ``HELLO`` speaks RESP2 to a RESP3
    parser). A command refused before it is sent, or answered by an error reply (read
    whole), leaves nothing unread: that connection stays open."""

    _deadline_share = 1.0

    def connect(self) -> None:
        try:
            super().connect()
        except BaseException:
            self.disconnect()
            raise

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if call_deadline.wait_s(self.socket_timeout, self._deadline_share)[0] <= 0:
            raise DeadlineExceeded("the call's deadline passed before Redis was asked")
        try:
            super().send_packed_command(command, check_health)
        except DeadlineExceeded:  # a reconnection or health check it ran first was cut short
            self.disconnect()
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        wait, by_deadline = call_deadline.wait_s(self.socket_timeout, self._deadline_share)
        if by_deadline:  # redis-py's own per-read timeout; the socket keeps its own
            kwargs["timeout"] = max(wait, 0.0)  # 0: only what already arrived is read
        try:
            return super().read_response(*args, **kwargs)
        except redis.exceptions.ResponseError:
            raise
        except redis.exceptions.TimeoutError:
            self.disconnect()
            if not by_deadline:
                raise
            raise DeadlineExceeded("Redis did not answer within the call's deadline") from None
        except BaseException:
            self.disconnect()
            raise


@functools.cache
def _deadline_bound(connection_class: type, share: float) -> type:
    """``connection_class`` with :class:`_DeadlineBound` mixed in, waiting ``share`` of
    what is left of a call's deadline."""
    return type(f"DeadlineBound{connection_class.__name__}", (_DeadlineBound, connection_class),
                {"_deadline_share": share})


def create_redis(settings: RedisSettings, deadline_share: float = 1.0) -> RedisClient:
    """One client per process; commands fail fast: a reply is awaited for the socket timeout
    at most, and never past the deadline of the gRPC call being served (``deadline_share``
    of what is left of it: a cache takes less, so its fallback can still answer). Only a
    refused or broken connection is retried, twice: a Redis that did not answer in time is
    not asked again (a hung server would otherwise hold the call for three timeouts).
    ``settings.tls`` secures the connections to every server, Sentinels included."""
    common = {
        "username": settings.username or None,
        "password": settings.password or None,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.01), retries=2,
                       supported_errors=(redis.exceptions.ConnectionError,)),
        "health_check_interval": 30,
        **_tls_options(settings.tls),
    }
    if settings.mode == "cluster":
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.cluster_nodes],
            ssl=settings.tls.enabled, **common,
        )
        _bind_cluster_nodes(cluster, deadline_share)
        return cluster
    if settings.mode == "sentinel":
        sentinel = Sentinel(
            list(settings.sentinels),
            socket_timeout=settings.socket_timeout_s,
            sentinel_kwargs={"password": settings.password or None,
                             "ssl": settings.tls.enabled, **_tls_options(settings.tls)},
        )
        client = sentinel.master_for(settings.sentinel_master, ssl=settings.tls.enabled,
                                     **common)
    else:  # a rediss:// URL picks redis-py's TLS connections itself
        client = redis.Redis.from_url(settings.url, **common)
    _bind_pool(client.connection_pool, deadline_share)
    return client


def _tls_options(tls: StoreTls) -> dict[str, Any]:
    """redis-py's ``ssl_*`` arguments for ``tls``: none when it is off."""
    if not tls.enabled:
        return {}
    return {
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": tls.ca_file or None,
        "ssl_certfile": tls.cert_file or None,
        "ssl_keyfile": tls.key_file or None,
        "ssl_check_hostname": tls.verify_hostname,
    }


def _bind_pool(pool: redis.ConnectionPool, share: float) -> None:
    """Makes every connection ``pool`` opens from now on wait no longer than ``share`` of
    what is left of the call's deadline; those it opened before are dropped from it."""
    pool.disconnect()
    pool.reset()
    pool.connection_class = _deadline_bound(pool.connection_class, share)


def _bind_cluster_nodes(cluster: RedisCluster, share: float) -> None:
    """:func:`_bind_pool` for each node's pool, and for the nodes the cluster client finds
    later (its node clients take no connection class of their own)."""
    for node in cluster.get_nodes():
        _bind_pool(node.redis_connection.connection_pool, share)
    manager = cluster.nodes_manager
    create_node = manager.create_redis_node

    def create_bound_node(host: str, port: int, **kwargs: Any) -> redis.Redis:
        node = create_node(host, port, **kwargs)
        _bind_pool(node.connection_pool, share)
        return node

    manager.create_redis_node = create_bound_node


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


def require_noeviction(client: RedisClient, allow_eviction: bool) -> None:
    """Stops the process (exit status 2, an error log naming the setting) unless every
    Redis server ``client`` uses runs with ``maxmemory-policy noeviction``.

    A board key expires and its shard's watermark does not, so a server that may evict keys
    under memory pressure can drop a board and keep the watermark saying it is complete: the
    consumer then never replays it, and rankings are silently short. The policy is read from
    ``INFO memory`` (a managed Redis that disables ``CONFIG`` still answers it) of every
    primary of a Cluster, of the master a Sentinel names, or of the one server; a policy
    that cannot be read stops the process too. ``allow_eviction``
    (``STEPBOARD_REDIS_ALLOW_EVICTION``) turns either into a warning, for operators who
    know their Redis never fills up."""
    try:
        wrong = {
            server: policy for server, policy in _eviction_policies(client).items()
            if policy != "noeviction"
        }
    except (*REDIS_ERRORS, KeyError) as error:
        problem = f"could not verify Redis's maxmemory-policy ({type(error).__name__}: {error})"
    else:
        if not wrong:
            return
        found = ", ".join(f"{server} has {policy}" for server, policy in sorted(wrong.items()))
        problem = f"Redis maxmemory-policy must be noeviction: {found}"
    message = (f"{problem}; boards expire but their watermarks do not, so an evicted board "
               "would never be replayed. Set maxmemory-policy noeviction, or "
               "STEPBOARD_REDIS_ALLOW_EVICTION=true to run anyway")
    if allow_eviction:
        log.warning(message)
        return
    log.error(message)
    raise SystemExit(2)


def _eviction_policies(client: RedisClient) -> dict[str, str]:
    """``maxmemory_policy`` of ``INFO memory`` by server: each primary of a Cluster, else
    the one server the client talks to."""
    if isinstance(client, RedisCluster):
        return {
            node.name: client.info("memory", target_nodes=node)["maxmemory_policy"]
            for node in client.get_primaries()
        }
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        server = f"the master of {pool.service_name}"
    else:
        server = f"{pool.connection_kwargs.get('host')}:{pool.connection_kwargs.get('port')}"
    return {server: client.info("memory")["maxmemory_policy"]}
