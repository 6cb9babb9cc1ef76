"""Builds the StepIngest gRPC server."""

import grpc

from common.server import BuiltServer, build_grpc_server, register
from ingest_svc.config import IngestConfig
from ingest_svc.producer import ReportProducer
from ingest_svc.servicer import StepIngestServicer
from stepboard.v1 import ingest_pb2, ingest_pb2_grpc, social_pb2_grpc


def build_server(
    config: IngestConfig, producer: ReportProducer, social: grpc.Channel
) -> BuiltServer:
    """The ingest server with health and reflection, bound but not started; ``social``:
    the channel to social_svc, where ``Like`` checks friendships."""
    servicer = StepIngestServicer(
        producer, config.validation, config.kafka.delivery_timeout_s,
        social_pb2_grpc.FriendGraphStub(social),
    )
    return build_grpc_server(
        config.server, [register(ingest_pb2, ingest_pb2_grpc, "StepIngest", servicer)]
    )
