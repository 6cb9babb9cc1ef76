"""The servers started by the local stack answer health SERVING and list their services."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.stack import SERVERS


def list_services(channel: grpc.Channel) -> set[str]:
    """Service names the server reports through server reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    return {s.name for s in response.list_services_response.service}


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_stack_server_is_serving_and_reflects(name):
    port, service = SERVERS[name]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for checked in ("", service):
            reply = health.Check(health_pb2.HealthCheckRequest(service=checked), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert {service, "grpc.health.v1.Health"} <= list_services(channel)
