"""Every method of stepboard.v1 has a default deadline in the client package's table, and a
call made through the client without a timeout gets it."""

import re
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from stepboard_client import Client
from stepboard_client.client import _DefaultDeadline
from stepboard_client.config import DEADLINES


def proto_methods() -> set[str]:
    """Every method of every service of the protos, as gRPC names it."""
    return {
        f"/{service.full_name}/{method.name}"
        for module in (ingest_pb2, ranking_pb2, social_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_every_method_of_the_protos_has_a_default_deadline():
    assert proto_methods() - DEADLINES.keys() == set()


def test_the_table_names_only_methods_of_the_protos():
    assert DEADLINES.keys() - proto_methods() == set()


@pytest.mark.parametrize("method", sorted(DEADLINES))
def test_deadlines_are_positive_and_bounded(method):
    assert 0 < DEADLINES[method] <= 60


class _Details:
    """The fields of grpc.ClientCallDetails that the interceptor reads and replaces."""

    def __init__(self, method: str, timeout: float | None) -> None:
        self.method, self.timeout = method, timeout

    def _replace(self, timeout: float) -> "_Details":
        return _Details(self.method, timeout)


def test_a_call_without_timeout_gets_its_methods_deadline():
    seen = []
    _DefaultDeadline().intercept_unary_unary(
        lambda details, _request: seen.append(details.timeout),
        _Details("/stepboard.v1.Ranking/GetHistory", None), request=None,
    )
    assert seen == [DEADLINES["/stepboard.v1.Ranking/GetHistory"]]


def test_a_call_with_its_own_timeout_keeps_it():
    seen = []
    _DefaultDeadline().intercept_unary_stream(
        lambda details, _request: seen.append(details.timeout),
        _Details("/stepboard.v1.FriendGraph/StreamFriends", 0.25), request=None,
    )
    assert seen == [0.25]


def test_docs_clients_lists_the_deadline_table():
    """docs/clients.md's table is the one the client applies."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "clients.md").read_text()
    rows = re.findall(r"^\| `(stepboard\.v1\.\w+/\w+)` \| ([\d.]+) \|$", text, re.M)
    assert {f"/{method}": float(seconds) for method, seconds in rows} == DEADLINES


def test_a_client_call_to_a_hung_server_ends_at_its_default_deadline():
    """A real channel: the Client's call without timeout is cut at the method's deadline."""
    release = threading.Event()

    def hang(request, context):
        release.wait(30)
        return ranking_pb2.GetGlobalRankResponse()

    handler = grpc.method_handlers_generic_handler("stepboard.v1.Ranking", {
        "GetGlobalRank": grpc.unary_unary_rpc_method_handler(
            hang, ranking_pb2.GetGlobalRankRequest.FromString,
            ranking_pb2.GetGlobalRankResponse.SerializeToString),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    target = f"127.0.0.1:{port}"
    started = time.monotonic()
    try:
        with Client(target, target, target) as client, pytest.raises(grpc.RpcError) as error:
            client.global_rank(1, "2026-05-04")
    finally:
        release.set()
        server.stop(None)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < DEADLINES["/stepboard.v1.Ranking/GetGlobalRank"] + 2
