"""Load that spreads over social_svc replicas (docs/deploy.md, "Scaling").

Two social_svc processes listen on the same port of two loopback addresses (127.0.0.2
and 127.0.0.3), as two pods behind a headless Service would on theirs, and one rank_svc
process dials both through the target ``ipv4:127.0.0.2:PORT,127.0.0.3:PORT``: the name
a ``dns:///`` target resolves to, without a DNS record, through the same channel and
service config (common/channels.py). Rankings must spread over both, and stopping one of
them (SIGTERM: a drain; SIGKILL: calls in flight cut off) must lose no ranking call.

rank_svc runs with social_svc's cache off, no fresh-list reuse and no stale fallback, so
every ranking reads its friend list from social_svc and a failed read fails the ranking.
"""

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.channels import ChannelSettings, create_channel
from common.server import ServerSettings, build_grpc_server, drain
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2, social_pb2_grpc
from tests.harness import free_port, samples, service_env, start_process, today, wait_until
from tests.processes import stop_process
from tests.social_support import (
    STACK_MARIADB,
    ShardDatabases,
    SocialServer,
    fresh_user_base,
    upsert_request,
)
from tests.stack import ROOT

HOSTS = ("127.0.0.2", "127.0.0.3")
VIEWERS = 40
FRIENDS = 3
LIST_FRIENDS = "ListFriends"  # of stepboard.v1.FriendGraph
CALL_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def graph() -> Iterator[tuple[ShardDatabases, dict[int, set[int]]]]:
    """Fresh shard databases holding viewers with friends and profiles; viewer -> friends."""
    databases = ShardDatabases([STACK_MARIADB])
    writer = SocialServer(databases, "spread")
    base = fresh_user_base()
    viewers = {}
    try:
        for index in range(VIEWERS):
            viewer = base + index * (FRIENDS + 1)
            friends = {viewer + offset for offset in range(1, FRIENDS + 1)}
            for user in (viewer, *friends):
                writer.stub.UpsertProfile(
                    upsert_request(user_id=user, nickname=f"u{user}"), timeout=10
                )
            for friend in friends:
                writer.stub.AddFriendship(
                    social_pb2.AddFriendshipRequest(user_id=viewer, friend_id=friend),
                    timeout=10,
                )
            viewers[viewer] = friends
    finally:
        writer.close()
    yield databases, viewers
    databases.drop()


@contextlib.contextmanager
def social_pair(
    databases: ShardDatabases, **settings: str
) -> Iterator[tuple[dict[str, tuple[subprocess.Popen, int]], int]]:
    """Two social_svc processes on one port of 127.0.0.2 and 127.0.0.3 (host -> process
    and metrics port), and that port."""
    port = free_port()
    processes = {}
    try:
        for host in HOSTS:
            metrics_port = free_port()
            env = service_env(
                STEPBOARD_MYSQL_SHARD_DSNS=databases.dsns, STEPBOARD_GRPC_HOST=host,
                STEPBOARD_GRPC_PORT=str(port), STEPBOARD_METRICS_PORT=str(metrics_port),
                STEPBOARD_SOCIAL_CACHE="false", STEPBOARD_GRACE_SECONDS="5", **settings,
            )
            processes[host] = (start_process("social_svc", env), metrics_port)
        for host, (process, _) in processes.items():
            with grpc.insecure_channel(f"{host}:{port}") as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=30)
                except grpc.FutureTimeoutError:
                    raise AssertionError(
                        f"social_svc on {host}:{port} did not start: {process.log_path}"
                    ) from None
        for host, (process, _) in processes.items():  # the other one may answer for it
            assert process.poll() is None, f"social_svc on {host} exited: {process.log_path}"
        yield processes, port
    finally:
        for process, _ in processes.values():
            stop_process(process)


@contextlib.contextmanager
def rank_dialing(port: int) -> Iterator[ranking_pb2_grpc.RankingStub]:
    """A rank_svc process whose friend lists come from both social processes, every time."""
    rank_port = free_port()
    process = start_process("rank_svc", service_env(
        STEPBOARD_GRPC_PORT=str(rank_port),
        STEPBOARD_SOCIAL_ADDR=f"ipv4:{HOSTS[0]}:{port},{HOSTS[1]}:{port}",
        STEPBOARD_SOCIAL_CACHE="false", STEPBOARD_FRIENDS_FRESH_S="0",
        STEPBOARD_FRIENDS_STALE_S="0",
    ))
    channel = grpc.insecure_channel(f"127.0.0.1:{rank_port}")
    try:
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            raise AssertionError(f"rank_svc did not start: {process.log_path}") from None
        yield ranking_pb2_grpc.RankingStub(channel)
    finally:
        channel.close()
        stop_process(process)


def served(metrics_port: int, method: str = LIST_FRIENDS) -> int:
    """How many ``method`` calls one social process answered OK, whoever called (its
    metrics endpoint)."""
    return int(sum(
        value for labels, value in samples(metrics_port, "grpc_server_handled_total").items()
        if {("grpc_method", method), ("grpc_code", "OK")} <= labels
    ))


def rank_once(
    ranking: ranking_pb2_grpc.RankingStub, viewer: int, friends: set[int]
) -> str | None:
    """One ranking of ``viewer``; None if it is right, else what was wrong."""
    try:
        reply = ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(
                user_id=viewer, day=today().isoformat(), page_size=100
            ),
            timeout=CALL_TIMEOUT_S,
        )
    except grpc.RpcError as error:
        return f"{viewer}: {error.code().name} {error.details()}"
    got = {entry.user_id for entry in reply.entries}
    if got != {viewer, *friends} or reply.stale_friends:
        return f"{viewer}: entries {sorted(got)}, stale {reply.stale_friends}"
    return None


class Load:
    """Threads calling rankings of the viewers round and round until stopped, keeping
    every wrong answer or error."""

    def __init__(self, ranking: ranking_pb2_grpc.RankingStub, viewers: dict[int, set[int]],
                 threads: int = 4) -> None:
        self.calls = 0
        self.failures: list[str] = []
        self._ranking = ranking
        self._viewers = list(viewers.items())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, offset: int) -> None:
        index = offset
        while not self._stop.is_set():
            viewer, friends = self._viewers[index % len(self._viewers)]
            failure = rank_once(self._ranking, viewer, friends)
            with self._lock:
                self.calls += 1
                if failure:
                    self.failures.append(failure)
            index += 1

    def stop(self) -> None:
        """Stops calling and waits for the calls in flight."""
        self._stop.set()
        for thread in self._threads:
            thread.join(CALL_TIMEOUT_S + 5)


def test_rankings_spread_over_both_social_replicas(graph):
    databases, viewers = graph
    with social_pair(databases) as (socials, port), rank_dialing(port) as ranking:
        failures = [rank_once(ranking, v, friends) for v, friends in viewers.items()]
        assert [f for f in failures if f] == []
        counts = {host: served(metrics) for host, (_, metrics) in socials.items()}
    assert sum(counts.values()) >= VIEWERS, counts
    assert min(counts.values()) >= VIEWERS // 4, f"one social replica got (nearly) all: {counts}"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_losing_a_social_replica_loses_no_ranking_call(graph, how):
    """SIGTERM drains the replica; SIGKILL first freezes it (SIGSTOP) so that calls are
    surely in flight on it, then kills it, cutting them off."""
    databases, viewers = graph
    with social_pair(databases) as (socials, port), rank_dialing(port) as ranking:
        victim, survivor_metrics = socials[HOSTS[0]][0], socials[HOSTS[1]][1]
        load = Load(ranking, viewers)
        try:
            wait_until(lambda: load.calls >= 40, timeout_s=30, interval_s=0.05)
            if how == "SIGTERM":
                victim.send_signal(signal.SIGTERM)
            else:
                victim.send_signal(signal.SIGSTOP)
                time.sleep(0.5)  # calls reach the frozen replica and wait there
                victim.send_signal(signal.SIGKILL)
            victim.wait(30)
            stopped_at, survivor_before = load.calls, served(survivor_metrics)
            wait_until(lambda: load.calls >= stopped_at + 200, timeout_s=60, interval_s=0.05)
        finally:
            load.stop()
        survivor_after = served(survivor_metrics)
    assert load.failures == [], f"{len(load.failures)} of {load.calls} calls failed"
    assert survivor_after >= survivor_before + 200, (survivor_before, survivor_after)


def test_servers_recycle_connections_and_calls_keep_succeeding(graph):
    """A social_svc with a one-second connection age closes its clients' connections
    (GOAWAY); a client of create_channel reconnects and none of its calls fails."""
    databases, viewers = graph
    viewer, friends = next(iter(viewers.items()))
    with social_pair(databases, STEPBOARD_MAX_CONNECTION_AGE_S="1",
                     STEPBOARD_MAX_CONNECTION_AGE_GRACE_S="1") as (_, port):
        states: list[grpc.ChannelConnectivity] = []
        record = states.append
        channel = create_channel(f"{HOSTS[0]}:{port}", ChannelSettings())
        channel.subscribe(record, try_to_connect=True)
        stub = social_pb2_grpc.FriendGraphStub(channel)
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                page = stub.ListFriends(
                    social_pb2.ListFriendsRequest(user_id=viewer, page_size=100), timeout=5
                )
                assert set(page.friend_ids) == friends
                time.sleep(0.05)
        finally:
            channel.unsubscribe(record)
            channel.close()
    ready = states.index(grpc.ChannelConnectivity.READY)
    assert grpc.ChannelConnectivity.READY in states[ready + 1:] and len(states) > ready + 2, (
        f"the connection was never closed and reopened: {states}"
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Path:
    """A CA and a server certificate for localhost and 127.0.0.1, from stack/tls.sh."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", str(ROOT / "stack" / "tls.sh"), str(directory)], check=True,
                   capture_output=True)
    return directory


@pytest.mark.parametrize(("target", "server_name", "verifies"), [
    ("dns:///localhost:{port}", "", True),  # the name dialed is the name checked
    ("ipv4:127.0.0.2:{port},127.0.0.3:{port}", "", False),  # no such name in the certificate
    ("ipv4:127.0.0.2:{port},127.0.0.3:{port}", "localhost", True),  # the override, for all
])
def test_tls_checks_the_dialed_name_or_the_override_on_every_address(
    graph, tls, target, server_name, verifies
):
    """Over TLS, a ``dns:///`` target's host (a headless Service's name) must be in the
    server certificate, unless STEPBOARD_CLIENT_TLS_SERVER_NAME names one that is; the
    certificate of stack/tls.sh holds localhost and 127.0.0.1."""
    databases, viewers = graph
    viewer, friends = next(iter(viewers.items()))
    social = SocialServer(databases, "spread", STEPBOARD_TLS_CERT_FILE=str(tls / "server.pem"),
                          STEPBOARD_TLS_KEY_FILE=str(tls / "server-key.pem"))
    settings = ChannelSettings(ca_file=str(tls / "ca.pem"), server_name=server_name)
    try:
        with create_channel(target.format(port=social.built.port), settings) as channel:
            stub = social_pb2_grpc.FriendGraphStub(channel)
            request = social_pb2.ListFriendsRequest(user_id=viewer, page_size=100)
            if verifies:
                assert set(stub.ListFriends(request, timeout=10).friend_ids) == friends
            else:
                with pytest.raises(grpc.RpcError) as failed:
                    stub.ListFriends(request, timeout=10)
                assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        social.close()


def test_a_drain_tells_watching_clients_before_the_server_stops():
    """On SIGTERM (drain) a server whose health a client of create_channel watches still
    answers for a moment, NOT_SERVING, while that client already sends it nothing."""
    settings = ServerSettings(grpc_port=0, metrics_port=None, grpc_host="127.0.0.1",
                              grace_seconds=4)
    built = build_grpc_server(settings, [])
    built.server.start()
    watching = create_channel(f"127.0.0.1:{built.port}", ChannelSettings())
    plain = grpc.insecure_channel(f"127.0.0.1:{built.port}")

    def check(channel: grpc.Channel) -> int:
        request = health_pb2.HealthCheckRequest()
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=2).status

    try:
        assert check(watching) == health_pb2.HealthCheckResponse.SERVING
        wait_until(lambda: built.health.watched, timeout_s=5, interval_s=0.05)
        drainer = threading.Thread(target=drain, args=(built, settings))
        drainer.start()
        time.sleep(0.3)
        assert check(plain) == health_pb2.HealthCheckResponse.NOT_SERVING  # still answers
        with pytest.raises(grpc.RpcError) as turned_away:
            check(watching)
        assert turned_away.value.code() == grpc.StatusCode.UNAVAILABLE
        drainer.join(10)
    finally:
        watching.close()
        plain.close()
        built.server.stop(None)
