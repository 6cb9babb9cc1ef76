"""Builds the FriendGraph gRPC server."""

from common.server import BuiltServer, build_grpc_server, register
from social_svc.config import SocialConfig
from stepboard.v1 import social_pb2, social_pb2_grpc


class FriendGraphServicer(social_pb2_grpc.FriendGraphServicer):
    """Placeholder until the friend graph lands: every RPC answers UNIMPLEMENTED."""


def build_server(config: SocialConfig) -> BuiltServer:
    """The social server with health and reflection, bound but not started."""
    servicer = FriendGraphServicer()
    return build_grpc_server(
        config.server,
        [register(social_pb2, social_pb2_grpc, "FriendGraph", servicer)],
    )
