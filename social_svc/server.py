"""Builds the FriendGraph gRPC server and the clients it runs on."""

from dataclasses import dataclass

from common.mysql_pools import ShardAccess, ShardPools
from common.redis_clients import RedisClient, create_redis
from common.server import BuiltServer, build_grpc_server, register
from social_svc.cache import GraphCache
from social_svc.config import SocialConfig
from social_svc.graph import SocialGraph
from social_svc.privacy import Privacy, PrivacyStore
from social_svc.servicer import FriendGraphServicer
from social_svc.store import GraphStore
from stepboard.v1 import social_pb2, social_pb2_grpc


@dataclass
class SocialDeps:
    """The clients a social server runs on: MySQL shard pools and (optionally) Redis."""

    pools: ShardPools
    redis: RedisClient | None

    @classmethod
    def open(cls, config: SocialConfig) -> "SocialDeps":
        """Pools for every physical shard, and a Redis client when the cache is enabled.

        Nothing connects yet: a shard or Redis that is down fails calls, not the start.
        """
        # Redis is only a cache here: it may take half of what is left of a call's
        # deadline, so MySQL can still answer when it hangs.
        redis = (create_redis(config.redis, deadline_share=0.5) if config.redis is not None
                 else None)
        return cls(ShardPools(config.mysql), redis)

    def close(self) -> None:
        """Closes the pools and the Redis client."""
        self.pools.close()
        if self.redis is not None:
            self.redis.close()


def build_graph(config: SocialConfig, deps: SocialDeps) -> tuple[SocialGraph, Privacy]:
    """The cached graph and privacy settings over ``deps``."""
    access = ShardAccess(deps.pools, config.pool_wait_s)
    cache = GraphCache(deps.redis, config.cache) if deps.redis is not None else None
    graph = SocialGraph(GraphStore(access), cache, config.cache.max_friends)
    return graph, Privacy(PrivacyStore(access), cache, graph)


def build_server(config: SocialConfig, deps: SocialDeps) -> BuiltServer:
    """The social server with health and reflection, bound but not started."""
    servicer = FriendGraphServicer(*build_graph(config, deps))
    return build_grpc_server(
        config.server, [register(social_pb2, social_pb2_grpc, "FriendGraph", servicer)]
    )
