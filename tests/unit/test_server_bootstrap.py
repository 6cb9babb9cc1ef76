"""The shared server bootstrap: error mapping, bearer auth, metrics, graceful drain.

(tests/unit/test_authz.py covers the policy; tests/integration/test_authorization.py
covers callers and their methods against the real services.)"""

import ctypes
import logging
import os
import signal
import threading
import time
from typing import ClassVar

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from common.authz import Policy
from common.channels import ChannelSettings, create_channel
from common.errors import InvalidArgument, NotFound, ResourceExhausted, Unavailable
from common.server import ServerSettings, build_grpc_server, drain, register
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc
from tests.harness import free_port, start_process, wait_until
from tests.processes import stop_process

GLOBAL_RANK = "/stepboard.v1.Ranking/GetGlobalRank"


class ScriptedRanking(ranking_pb2_grpc.RankingServicer):
    """Raises the exception chosen by the request's user id; user 0 answers slowly."""

    failures: ClassVar[dict[int, Exception]] = {
        1: InvalidArgument("day", "not a date"),
        2: NotFound("no report"),
        3: Unavailable("redis down"),
        4: ResourceExhausted("queue full"),
        5: redis.exceptions.ConnectionError("refused"),
        6: ZeroDivisionError("bug"),
    }

    def GetGlobalRank(self, request, context):
        if request.user_id in self.failures:
            raise self.failures[request.user_id]
        time.sleep(1.0)
        return ranking_pb2.GetGlobalRankResponse(total_participants=7)


def start(**settings):
    built = build_grpc_server(
        ServerSettings(grpc_port=0, metrics_port=None, grace_seconds=5, **settings),
        [register(ranking_pb2, ranking_pb2_grpc, "Ranking", ScriptedRanking())],
    )
    built.server.start()
    return built


@pytest.fixture
def server():
    built = start()
    yield built
    built.server.stop(None)


def stub_for(port: int) -> ranking_pb2_grpc.RankingStub:
    return ranking_pb2_grpc.RankingStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


@pytest.mark.parametrize(
    ("user_id", "code", "details"),
    [
        (1, grpc.StatusCode.INVALID_ARGUMENT, "day: not a date"),
        (2, grpc.StatusCode.NOT_FOUND, "no report"),
        (3, grpc.StatusCode.UNAVAILABLE, "redis down"),
        (4, grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"),
        (5, grpc.StatusCode.UNAVAILABLE, "dependency unavailable: ConnectionError"),
        (6, grpc.StatusCode.INTERNAL, "internal error"),
    ],
)
def test_domain_errors_map_to_status_codes(server, user_id, code, details):
    with pytest.raises(grpc.RpcError) as raised:
        stub_for(server.port).GetGlobalRank(
            ranking_pb2.GetGlobalRankRequest(user_id=user_id), timeout=5
        )
    assert raised.value.code() == code
    assert raised.value.details() == details


def test_requests_are_counted_by_method_code_and_caller(server):
    method = {"grpc_type": "unary", "grpc_service": "stepboard.v1.Ranking",
              "grpc_method": "GetGlobalRank"}

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, method | labels) or 0.0

    def counts() -> tuple[float, float, float]:
        return (
            sample("grpc_server_started_total"),
            sample("grpc_server_handled_total", grpc_code="NOT_FOUND", caller="anonymous"),
            sample("grpc_server_handling_seconds_count", caller="anonymous"),
        )

    before = counts()
    with pytest.raises(grpc.RpcError):
        stub_for(server.port).GetGlobalRank(ranking_pb2.GetGlobalRankRequest(user_id=2))
    assert counts() == tuple(count + 1 for count in before)


def test_calls_on_a_service_channel_are_counted_by_the_client(server):
    """create_channel's channels count and time each call when it completes, blocking or
    not (a future's code is known only later)."""
    labels = {"grpc_type": "unary", "grpc_service": "stepboard.v1.Ranking",
              "grpc_method": "GetGlobalRank"}

    def counts() -> tuple[float, float]:
        handled = labels | {"grpc_code": "NOT_FOUND"}
        return (REGISTRY.get_sample_value("grpc_client_handled_total", handled) or 0.0,
                REGISTRY.get_sample_value("grpc_client_handling_seconds_count", labels) or 0.0)

    before = counts()
    with create_channel(f"127.0.0.1:{server.port}", ChannelSettings(token="t")) as channel:
        stub = ranking_pb2_grpc.RankingStub(channel)
        request = ranking_pb2.GetGlobalRankRequest(user_id=2)
        with pytest.raises(grpc.RpcError):
            stub.GetGlobalRank(request, timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.GetGlobalRank.future(request, timeout=5).result()
    # a future's callbacks may run just after its result is in
    wait_until(lambda: counts() == (before[0] + 2, before[1] + 2), 5, 0.01)


def test_bearer_token_required_except_for_health():
    built = start(
        auth_tokens={"s3cret": "app-backend"},
        auth_policy=Policy.parse('{"app-backend": ["stepboard.v1.Ranking/*"]}', "test"),
    )
    try:
        stub = stub_for(built.port)
        request = ranking_pb2.GetGlobalRankRequest(user_id=2)
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", "s3cret")]):
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetGlobalRank(request, metadata=metadata, timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetGlobalRank(request, metadata=[("authorization", "Bearer s3cret")], timeout=5)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        channel = grpc.insecure_channel(f"127.0.0.1:{built.port}")
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        built.server.stop(None)


def test_drain_finishes_in_flight_rpcs_then_closes_clients():
    built = start()
    stub = stub_for(built.port)
    future = stub.GetGlobalRank.future(ranking_pb2.GetGlobalRankRequest(user_id=99), timeout=10)
    time.sleep(0.3)
    closed = []
    settings = ServerSettings(0, None, grace_seconds=5)
    drainer = threading.Thread(target=drain, args=(built, settings, [lambda: closed.append(1)]))
    drainer.start()
    time.sleep(0.1)
    status = built.health.Check(health_pb2.HealthCheckRequest(), None).status
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert future.result().total_participants == 7
    drainer.join(10)
    assert closed == [1]


def test_sigterm_taken_by_another_thread_still_stops_a_server(env):
    """The kernel may hand a process's SIGTERM to any of its threads; the server still
    drains and exits 0 (a CI run once saw ingest ignore SIGTERM for minutes while its main
    thread sat in a bare ``wait()``: Python runs handlers only in the main thread)."""
    port = free_port()
    ingest = start_process("ingest_svc", env | {"STEPBOARD_GRPC_PORT": str(port),
                                                "STEPBOARD_METRICS_PORT": "0"})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        other = next(tid for tid in _threads(ingest.pid)
                     if tid != ingest.pid and not _blocks_sigterm(ingest.pid, tid))
        assert ctypes.CDLL(None, use_errno=True).tgkill(ingest.pid, other, signal.SIGTERM) == 0
        assert ingest.wait(30) == 0
    finally:
        stop_process(ingest)  # only if the test failed: the ingest has exited otherwise


def _threads(pid: int) -> list[int]:
    return sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task"))


def _blocks_sigterm(pid: int, tid: int) -> bool:
    with open(f"/proc/{pid}/task/{tid}/status") as status:
        mask = next(line.split()[1] for line in status if line.startswith("SigBlk:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize(("mode", "logged"), [
    ("failed", ["NOT_FOUND"]), ("all", ["OK", "NOT_FOUND"]), ("off", []),
])
def test_the_access_log_writes_the_calls_its_mode_asks_for(caplog, mode, logged):
    built = start(access_log=mode)
    caplog.set_level(logging.INFO, logger="stepboard.access")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        with pytest.raises(grpc.RpcError):
            stub_for(built.port).GetGlobalRank(ranking_pb2.GetGlobalRankRequest(user_id=2))
    finally:
        built.server.stop(None)
    lines = [r for r in caplog.records if r.name == "stepboard.access"]
    assert [r.code for r in lines] == logged
    assert all(r.caller == "anonymous" and r.duration_ms >= 0 for r in lines)
