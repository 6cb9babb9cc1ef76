"""Faults under steady ingest; after healing the board must equal what the ledger implies.

Consumers (kill -9, rebalance), Redis (restart without persistence, Sentinel failover, a
slow and flaky link to the consumer), Kafka (kill -9 and restart).
"""

import signal
import time
from collections.abc import Iterator

import pytest

from tests.chaos.load import DEADLINE_S
from tests.chaos.scenario import run_under_ingest
from tests.chaos.sentinel import SentinelRedis
from tests.fault_proxy import FaultProxy
from tests.faults import kill_component, start_infra
from tests.processes import stop_process
from tests.write_path import WritePath

FAULT_S = 4.0


@pytest.fixture
def path() -> Iterator[WritePath]:
    """A private write path on the stack's standalone Redis."""
    write_path = WritePath({})
    yield write_path
    write_path.close()


def test_consumer_kill_9_under_ingest(path):
    victim = path.start_consumer()

    def fault() -> None:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        time.sleep(FAULT_S)

    outcome = run_under_ingest("consumer kill -9", path, fault, path.start_consumer)
    assert outcome.verdict.clean, outcome
    assert outcome.refused == {}


def test_consumer_rebalance_one_added_one_removed_under_ingest(path):
    first = path.start_consumer()

    def fault() -> None:
        path.start_consumer()
        time.sleep(FAULT_S)

    outcome = run_under_ingest("consumer rebalance (one added, one removed)", path, fault,
                               lambda: stop_process(first))
    assert outcome.verdict.clean, outcome
    assert outcome.refused == {}
    assert all(c.poll() is None for c in path.consumers if c is not first)


def test_redis_restarted_without_persistence_under_ingest(path):
    consumer = path.start_consumer()

    def fault() -> None:
        kill_component("redis")
        time.sleep(FAULT_S)

    outcome = run_under_ingest("redis kill -9 and restart (no persistence)", path, fault,
                               start_infra, consumer=consumer)
    assert outcome.verdict.clean, outcome
    assert outcome.refused == {}
    assert outcome.replayed


def test_flaky_slow_redis_link_of_the_consumer(path):
    proxy = FaultProxy(("127.0.0.1", 16379))
    path.start_consumer(STEPBOARD_REDIS_URL=f"redis://{proxy.address}/0")

    def fault() -> None:
        proxy.set_latency(0.3)
        for _ in range(8):
            proxy.drop_connections()
            time.sleep(0.5)
        proxy.refuse(True)
        proxy.drop_connections()
        time.sleep(2)

    try:
        outcome = run_under_ingest("consumer's redis link: latency, drops, refused", path,
                                   fault, proxy.heal)
    finally:
        proxy.close()
    assert outcome.verdict.clean, outcome
    assert outcome.refused == {}


def test_kafka_broker_kill_9_and_restart_under_ingest(path):
    path.start_consumer()

    def fault() -> None:
        kill_component("kafka")
        time.sleep(FAULT_S)

    outcome = run_under_ingest("kafka broker kill -9 and restart", path, fault, start_infra)
    assert outcome.verdict.clean, outcome
    # Refused while the broker was away, and only ever as UNAVAILABLE within the deadline.
    assert set(outcome.refused) == {"UNAVAILABLE"}, outcome
    assert outcome.slowest_call_s < DEADLINE_S + 0.5, outcome


@pytest.fixture
def sentinel() -> Iterator[SentinelRedis]:
    """A private master, two replicas and three Sentinels."""
    deployment = SentinelRedis()
    yield deployment
    deployment.close()


def test_sentinel_failover_under_ingest(sentinel):
    path = WritePath(sentinel.env)
    try:
        consumer = path.start_consumer()
        killed = []

        def fault() -> None:
            killed.append(sentinel.kill_master())

        def heal() -> None:
            sentinel.wait_failover(killed[0])

        outcome = run_under_ingest("redis sentinel failover (master kill -9)", path, fault,
                                   heal, consumer=consumer)
    finally:
        path.close()
    assert outcome.verdict.clean, outcome
    assert outcome.refused == {}
