"""Builds the Ranking gRPC server."""

import grpc

from common.mysql_pools import ShardAccess, ShardPools
from common.redis_clients import RedisClient
from common.server import BuiltServer, build_grpc_server, register
from common.social_cache_format import SocialCache
from rank_svc.board_readers import BoardReader
from rank_svc.config import RankConfig
from rank_svc.history import ARCHIVE_POOL_WAIT_S, ArchiveReader, History
from rank_svc.hot_rankings import HotRankings
from rank_svc.likes import LikeKeys, LikeReader
from rank_svc.privacy_filter import PrivacySource
from rank_svc.servicer import RankingServicer, bounded_members
from rank_svc.social_client import SOCIAL_CACHE_READS, FriendSource, ProfileSource
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2_grpc


def build_server(
    config: RankConfig, client: RedisClient, social: grpc.Channel,
    archive: ShardPools | None = None,
) -> BuiltServer:
    """The ranking server with health and reflection, bound but not started; ``archive``:
    the day archive's shards GetHistory reads (None: boards only)."""
    stub = social_pb2_grpc.FriendGraphStub(social)
    store = BoardReader(client, config.board)
    social_cache = config.social_cache
    if social_cache.enabled:  # checked lists live as long as social_svc's own copies would
        shared = SocialCache(client, social_cache.namespace, SOCIAL_CACHE_READS)
        lifetime_s = social_cache.ttl_s
    else:
        shared, lifetime_s = None, config.friends_fresh_s
    live_limit = config.live_max_users
    servicer = RankingServicer(
        store,
        HotRankings(client, config.board.namespace, config.board.retention_days),
        FriendSource(
            stub,
            lifetime_s=lifetime_s,
            stale_s=config.friends_stale_s,
            max_users=config.friends_cached_users,
            max_ids=config.friends_cached_ids,
            # a longer list cannot be ranked per call: it is refused, never kept
            max_cached_list=live_limit,
            prepare=bounded_members(store.members, live_limit),
            social_cache=shared,
        ),
        ProfileSource(stub, shared),
        config.hot.threshold,
        live_limit=live_limit,
        max_age_s=config.hot.max_age_s,
        history=History(
            store,
            None if archive is None else ArchiveReader(ShardAccess(archive, ARCHIVE_POOL_WAIT_S)),
            config.archive_retention_months,
        ),
        likes=LikeReader(client, LikeKeys(config.board.namespace, config.board.shards)),
        privacy=PrivacySource(stub, client, shared, store.members),
    )
    return build_grpc_server(
        config.server, [register(ranking_pb2, ranking_pb2_grpc, "Ranking", servicer)]
    )
