"""Builds the Ranking gRPC server."""

from common.server import BuiltServer, build_grpc_server, register
from rank_svc.board import BoardStore
from rank_svc.config import RankConfig
from rank_svc.servicer import RankingServicer
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc


def build_server(config: RankConfig, store: BoardStore) -> BuiltServer:
    """The ranking server with health and reflection, bound but not started."""
    servicer = RankingServicer(store)
    return build_grpc_server(
        config.server, [register(ranking_pb2, ranking_pb2_grpc, "Ranking", servicer)]
    )
