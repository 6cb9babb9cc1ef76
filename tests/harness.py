"""Helpers for tests that run real processes against the real local stack."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from confluent_kafka.admin import AdminClient, NewTopic
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client.parser import text_string_to_metric_families

from common.report_rules import day_start
from stepboard.v1 import ingest_pb2
from tests.processes import start_logged
from tests.stack import ROOT, local_env

T = TypeVar("T")
LOG_DIR = ROOT / ".stack" / "logs" / "tests"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], T], timeout_s: float, interval_s: float = 0.2) -> T:
    """Polls ``check`` until it returns something truthy; fails with its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout_s} s (last value {value!r})"
            return value
        time.sleep(interval_s)


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def service_env(**overrides: str) -> dict[str, str]:
    """Environment for a service process: the stack's settings, metrics off, overrides."""
    env = dict(os.environ) | local_env() | {"STEPBOARD_METRICS_PORT": "0"}
    return env | overrides


def start_process(module: str, env: dict[str, str], *args: str) -> subprocess.Popen:
    """Starts ``python -m module`` with its output in ``.stack/logs/tests/`` (the path is
    the process's ``log_path`` attribute)."""
    path = LOG_DIR / f"{unique(module)}.log"
    process = start_logged([sys.executable, "-m", module, *args], env, path, ROOT)
    process.log_path = path
    return process


def today() -> date:
    """The current UTC date (always inside the accepted window)."""
    return datetime.now(UTC).date()


def report(
    user_id: int, day: date, steps: int, second: int, report_id: str = ""
) -> ingest_pb2.StepReport:
    """A report measured ``second`` seconds after ``day`` began at UTC+14."""
    measured = day_start(day) + timedelta(seconds=second)
    return ingest_pb2.StepReport(
        user_id=user_id,
        day=day.isoformat(),
        steps=steps,
        measured_at=Timestamp(seconds=int(measured.timestamp())),
        report_id=report_id,
    )


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for assertion messages."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    """Creates topics and waits until every partition has a leader (usable right away)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in partitions.items()]
    )
    for future in created.values():
        future.result(30)

    def led() -> bool:
        topics = admin.list_topics(timeout=10).topics
        return all(
            name in topics
            and len(topics[name].partitions) == count
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name, count in partitions.items()
        )

    wait_until(led, 30, 0.1)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Deletes topics and waits for the broker to confirm."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names).values():
        future.result(30)


def scrape(port: int) -> str:
    """The exposition text of a process's metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def samples(port: int, name: str) -> dict[frozenset, float]:
    """Labels (as a set of pairs) -> value of every sample named ``name`` on a process's
    metrics endpoint."""
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(scrape(port))
        for s in family.samples if s.name == name
    }


def metric(port: int, name: str) -> float | None:
    """The value of an unlabelled metric on a process's metrics endpoint (None: absent)."""
    return samples(port, name).get(frozenset())
