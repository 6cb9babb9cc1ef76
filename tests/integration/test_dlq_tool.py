"""``python -m rank_svc.dlq``: a poisoned record is dead-lettered by a real consumer, found
by ``inspect``, then, its cause fixed, replayed to the board by ``replay``.

The story: a producer whose clock was two days behind stamped a record holding today's
report. At that stamp the report's day is in the future, so the consumer (which judges a
report at its record's stamp) parks it on the dead-letter topic. The clock is fixed; the
operator replays the letter with ``--restamp``, the consumer judges it at the replay
instant and the steps reach the board. Beside it sits an undecodable record, which the
filters keep out of the replay.
"""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from confluent_kafka import Producer

from common.kafka_clients import producer_config
from common.record_format import encode_reports
from rank_svc.dlq import UNREADABLE
from tests.harness import report, today, wait_until
from tests.stack import REDIS_DEPLOYMENTS, ROOT
from tests.write_path import WritePath

USER = 912_345
STEPS = 4321
DAY_MS = 86_400_000
FUTURE = "is in the future"
GARBAGE = b"\xff\x00 not a report"


@pytest.fixture(scope="module")
def poisoned() -> Iterator[WritePath]:
    """A private write path whose dead-letter topic holds the skewed report (stamped two
    days back, with a trace header) and an undecodable record (stamped now)."""
    path = WritePath(REDIS_DEPLOYMENTS["standalone"])
    producer = Producer(producer_config(path.kafka))
    now_ms = int(time.time() * 1000)
    producer.produce(
        path.topic, value=encode_reports([report(USER, today(), STEPS, 60)]),
        key=str(USER).encode(), timestamp=now_ms - 2 * DAY_MS, partition=0,
        headers=[("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
    )
    producer.produce(path.topic, value=GARBAGE, timestamp=now_ms, partition=1)
    assert producer.flush(10) == 0
    path.start_consumer()
    wait_until(lambda: path.log_end(path.dlq_topic) == 2, 30)
    yield path
    path.close()


def dlq(
    path: WritePath, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Runs the tool from this tree against the path's topics (``env``: overrides)."""
    return subprocess.run(
        [sys.executable, "-m", "rank_svc.dlq", *args], env=path.env | (env or {}), cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )


def test_inspect_filters_by_reason_time_and_partition(poisoned: WritePath) -> None:
    shown = dlq(poisoned, "inspect", "--reason", FUTURE)
    assert shown.returncode == 0, shown.stderr
    (line,) = shown.stdout.splitlines()
    partition, offset, stamp, reason, key, value = line.split("\t")
    assert (partition, offset in ("0", "1"), key) == ("0", True, str(USER))
    # The source record's stamp, kept by the letter.
    assert abs(datetime.fromisoformat(stamp).timestamp() - (time.time() - 2 * 86400)) < 600
    assert reason.startswith("invalid report [0]: day") and FUTURE in reason
    assert value == f"report user={USER} day='{today().isoformat()}' steps={STEPS}"

    rows = [json.loads(row) for row in dlq(poisoned, "inspect", "--json").stdout.splitlines()]
    assert sorted(row["reason"].split(":")[0] for row in rows) == [
        "invalid report [0]", "undecodable record"]
    undecodable = next(row for row in rows if row["reason"].startswith("undecodable"))
    assert undecodable["value"] == f"{len(GARBAGE)} bytes: {GARBAGE.hex()}"
    assert undecodable["key"] is None

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 3600))
    recent = dlq(poisoned, "inspect", "--json", "--since", since).stdout.splitlines()
    assert [json.loads(row)["reason"].split(":")[0] for row in recent] == ["undecodable record"]
    assert dlq(poisoned, "inspect", "--until", since).stdout.count(FUTURE) == 1
    assert dlq(poisoned, "inspect", "--partition", "1").stdout == ""

    bad = dlq(poisoned, "inspect", "--since", "yesterday")
    assert bad.returncode == 2 and "not an ISO-8601 date or time" in bad.stderr


def test_replay_puts_the_fixed_record_on_the_board(poisoned: WritePath) -> None:
    assert poisoned.board(today()) == []
    # Replayed as it was, it is judged at its old stamp again, and parked again.
    again = dlq(poisoned, "replay", "--reason", FUTURE)
    assert again.returncode == 0, again.stderr
    assert "replayed 1 of 1" in again.stderr
    wait_until(lambda: poisoned.log_end(poisoned.dlq_topic) == 3, 30)
    assert poisoned.board(today()) == []

    # Both letters of the report match now: replaying a report twice is harmless.
    before = poisoned.log_end(poisoned.topic)
    dry = dlq(poisoned, "replay", "--reason", FUTURE, "--restamp", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would send ") and dry.stdout.count("would send") == 2
    assert dry.stdout.count('"headers": ["traceparent"]') == 2
    assert "2 dead letters would be replayed" in dry.stderr
    assert poisoned.log_end(poisoned.topic) == before

    done = dlq(poisoned, "replay", "--reason", FUTURE, "--restamp")
    assert done.returncode == 0, done.stderr
    assert f"replayed 2 of 2 dead letters to {poisoned.topic}" in done.stderr
    assert poisoned.log_end(poisoned.topic) == before + 2
    entries = wait_until(lambda: poisoned.board(today()), 30)
    assert [(user, steps) for user, steps, _ in entries] == [(USER, STEPS)]

    recent_ms = (time.time() - 3600) * 1000
    replayed = [m for m in poisoned.read_topic(poisoned.topic, before + 2)
                if m.key() == str(USER).encode() and m.timestamp()[1] > recent_ms]
    assert [[name for name, _ in m.headers()] for m in replayed] == [["traceparent"]] * 2
    assert poisoned.log_end(poisoned.dlq_topic) == 3  # judged valid: not parked again


def test_unreadable_topic_exits_3(poisoned: WritePath) -> None:
    gone = dlq(poisoned, "inspect", "--timeout", "5",
               env={"STEPBOARD_KAFKA_DLQ_TOPIC": "no-such-topic-dlq"})
    assert gone.returncode == UNREADABLE, gone.stderr
    assert "cannot read no-such-topic-dlq" in gone.stderr
