"""The board writer and the ranking server refuse a Redis that may evict keys.

A board key expires and its watermark does not: a Redis allowed to evict under memory
pressure can drop a board and keep the watermark saying it is complete, and no replay
would ever run. So ``python -m rank_svc.consumer`` and ``python -m rank_svc`` check
``maxmemory-policy`` at start (``common.redis_clients.require_noeviction``), read from
``INFO memory`` of every server they write to, and exit unless it is ``noeviction``, or
warn and run with ``STEPBOARD_REDIS_ALLOW_EVICTION=true``.

Real processes from this tree run against redis-servers of the test's own (no
persistence, free ports, stopped by pid) and against the stack's Redis."""

import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator

import grpc
import pytest
import redis

from common.redis_clients import RedisSettings, create_redis, require_noeviction
from tests.chaos.sentinel import MASTER_NAME, SentinelRedis
from tests.harness import (
    LOG_DIR,
    free_port,
    log_tail,
    service_env,
    start_process,
    unique,
    wait_until,
)
from tests.processes import start_logged, stop_process
from tests.stack import REDIS_DEPLOYMENTS, ROOT, local_env

EXIT_S = 30.0  # a process that has not exited by then runs despite its Redis
OVERRIDE = "STEPBOARD_REDIS_ALLOW_EVICTION"


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def private_redis(*options: str) -> Iterator[int]:
    """The port of a new redis-server with these ``options``, no persistence."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sb-evict-") as folder:
        process = start_logged(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", folder, *options],
            os.environ, LOG_DIR / f"{unique('redis')}.log", ROOT,
        )
        try:
            wait_until(lambda: _answers(port), 10, 0.05)
            yield port
        finally:
            stop_process(process, 10)


@contextlib.contextmanager
def private_cluster(policies: list[str]) -> Iterator[list[int]]:
    """Ports of a new Redis Cluster with one primary per policy, the slots split evenly."""
    # Each bus gets a port of its own: by default it is the port + 10000, beyond 65535 for a
    # high ephemeral port.
    buses = [free_port() for _ in policies]
    with contextlib.ExitStack() as servers:
        ports = [
            servers.enter_context(private_redis(
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(bus), "--maxmemory-policy", policy))
            for policy, bus in zip(policies, buses, strict=True)
        ]
        nodes = [redis.Redis(port=port, socket_timeout=2) for port in ports]
        share = 16384 // len(nodes)
        for index, node in enumerate(nodes):
            last = 16383 if index == len(nodes) - 1 else (index + 1) * share - 1
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
            if index:
                nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", ports[index],
                                         buses[index])
        wait_until(lambda: all(node.cluster("INFO")["cluster_state"] == "ok"
                               and int(node.cluster("INFO")["cluster_known_nodes"]) == len(nodes)
                               for node in nodes), 30)
        yield ports


def run_against(module: str, port: int, topic: str, **settings: str) -> subprocess.Popen:
    """``module`` (the board writer or the ranking server) from this tree, with its Redis at
    ``port`` and a topic and group nobody else uses."""
    env = service_env(
        STEPBOARD_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        STEPBOARD_GRPC_PORT=str(free_port()),
        STEPBOARD_KAFKA_TOPIC=topic,
        STEPBOARD_CONSUMER_GROUP=unique("evict"),
        **settings,
    )
    process = start_process(module, env)
    process.grpc_port = int(env["STEPBOARD_GRPC_PORT"])
    return process


def assert_runs(module: str, process: subprocess.Popen) -> None:
    """The consumer got its partition, or the ranking server answers, and neither exited."""
    if module == "rank_svc":
        with grpc.insecure_channel(f"127.0.0.1:{process.grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=EXIT_S)
    else:
        wait_until(lambda: process.poll() is not None or '"assigned"' in
                   process.log_path.read_text(errors="replace"), EXIT_S)
    assert process.poll() is None, log_tail(process.log_path)


MODULES = ["rank_svc.consumer", "rank_svc"]
STACK_REDIS_PORT = 16379


@pytest.mark.parametrize("module", MODULES)
def test_a_redis_that_may_evict_keys_stops_the_process_at_start(module, fresh_topic):
    with private_redis("--maxmemory-policy", "allkeys-lru") as port:
        process = run_against(module, port, fresh_topic)
        try:
            process.wait(EXIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{module} runs on an allkeys-lru Redis: "
                        f"{log_tail(process.log_path, 5)}")
        finally:
            stop_process(process)
        said = process.log_path.read_text(errors="replace")
        assert process.returncode == 2, said
        line = next(line for line in said.splitlines() if "maxmemory-policy" in line)
        assert f"127.0.0.1:{port} has allkeys-lru" in line, line
        assert "must be noeviction" in line and OVERRIDE in line, line
        assert '"level": "ERROR"' in line, line


@pytest.mark.parametrize("module", MODULES)
def test_the_override_runs_it_with_a_warning(module, fresh_topic):
    with private_redis("--maxmemory-policy", "volatile-ttl") as port:
        process = run_against(module, port, fresh_topic, **{OVERRIDE: "true"})
        try:
            assert_runs(module, process)
        finally:
            stop_process(process)
        warned = [line for line in process.log_path.read_text().splitlines()
                  if "maxmemory-policy" in line]
        assert len(warned) == 1 and '"level": "WARNING"' in warned[0], warned
        assert "volatile-ttl" in warned[0]


@pytest.mark.parametrize("module", MODULES)
def test_the_stacks_redis_evicts_nothing_and_the_process_runs(module, fresh_topic):
    process = run_against(module, STACK_REDIS_PORT, fresh_topic)
    try:
        assert_runs(module, process)
    finally:
        stop_process(process)
    assert "maxmemory-policy" not in process.log_path.read_text()


@pytest.mark.parametrize("deployment", sorted(REDIS_DEPLOYMENTS))
def test_every_server_of_the_stack_runs_with_noeviction(deployment, caplog):
    client = create_redis(RedisSettings.from_env(local_env() | REDIS_DEPLOYMENTS[deployment]))
    try:
        with caplog.at_level(logging.WARNING, "common.redis_clients"):
            require_noeviction(client, allow_eviction=False)
    finally:
        client.close()
    assert not caplog.records


def check(settings: RedisSettings, allow: bool = False) -> int | None:
    """The exit status ``require_noeviction`` stops with, ``None`` if it returns."""
    client = create_redis(settings)
    try:
        require_noeviction(client, allow)
    except SystemExit as stopped:
        return stopped.code
    finally:
        client.close()
    return None


def standalone(port: int) -> RedisSettings:
    return RedisSettings(url=f"redis://127.0.0.1:{port}/0")


def test_the_policy_is_read_without_config_as_on_a_managed_redis(caplog):
    with private_redis("--maxmemory-policy", "allkeys-random",
                       "--rename-command", "CONFIG", "") as port:
        with pytest.raises(redis.ResponseError, match="unknown command"):
            redis.Redis(port=port).config_get("maxmemory-policy")
        assert check(standalone(port)) == 2
    assert f"127.0.0.1:{port} has allkeys-random" in caplog.records[-1].getMessage()


def test_a_policy_that_cannot_be_read_stops_it_unless_overridden(caplog):
    with private_redis("--rename-command", "INFO", "") as port:
        assert check(standalone(port)) == 2
        assert caplog.records[-1].levelname == "ERROR"
        message = caplog.records[-1].getMessage()
        assert message.startswith("could not verify Redis's maxmemory-policy"), message
        assert OVERRIDE in message
        assert check(standalone(port), allow=True) is None
        assert caplog.records[-1].levelname == "WARNING"


def test_every_cluster_primary_is_checked(caplog):
    with private_cluster(["noeviction", "allkeys-lfu"]) as (first, second):
        assert check(RedisSettings(mode="cluster", cluster_nodes=(("127.0.0.1", first),))) == 2
    message = caplog.records[-1].getMessage()
    assert f"127.0.0.1:{second} has allkeys-lfu" in message, message
    assert f"127.0.0.1:{first}" not in message, message


def test_the_master_a_sentinel_names_is_checked(caplog):
    deployment = SentinelRedis()
    try:
        settings = RedisSettings.from_env(deployment.env)
        assert check(settings) is None
        master = redis.Redis(port=deployment.master_port())
        master.config_set("maxmemory-policy", "volatile-lru")
        assert check(settings) == 2
    finally:
        deployment.close()
    message = caplog.records[-1].getMessage()
    assert f"the master of {MASTER_NAME} has volatile-lru" in message, message
