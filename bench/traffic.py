"""A realistic day of step reports, and the raw confluent-kafka producer loop.

Each user lives in a time zone (most at UTC+8, the rest spread from UTC-8 to UTC+9) and
reports ``reports_per_user`` times during their local day at times drawn from a daily
activity pattern (commute peaks at 8:00 and 18:30, lunch at 12:30); the cumulative count
rises to a log-normal day total (median about 6,500 steps, capped at the 100,000 limit).
Reports are produced in time order, like a day's traffic.
"""

import time
import uuid
from datetime import UTC, date, datetime

import numpy as np
from confluent_kafka import Producer

from bench.progress import Progress
from common.kafka_clients import KafkaSettings, producer_config
from common.record_format import Record, batch_key
from common.report_rules import day_start
from stepboard.v1 import ingest_pb2

ZONES = np.array([8, -8, -5, 0, 1, 3, 5, 9])
ZONE_WEIGHTS = np.array([0.6, 0.06, 0.08, 0.06, 0.08, 0.04, 0.04, 0.04])


def day_records(day: date, users: int, per_user: int, per_record: int,
                seed: int = 11) -> list[Record]:
    """Every user's reports for ``day`` in time order, as the records ingest writes for
    them: ``per_record`` 1 as ``ReportSteps`` writes them (unkeyed), more as
    ``ReportStepsBatch`` does (keyed by the record's first user)."""
    rng = np.random.default_rng(seed)
    n = users * per_user
    user = np.repeat(np.arange(1, users + 1), per_user)
    zone = rng.choice(ZONES, size=users, p=ZONE_WEIGHTS)
    total = np.minimum(100_000, rng.lognormal(np.log(6500), 0.55, size=users)).astype(np.int64)
    peak = rng.choice(3, size=n, p=[0.35, 0.25, 0.4])
    centre, spread = np.array([8.0, 12.5, 18.5])[peak], np.array([1.2, 0.8, 1.8])[peak]
    hour = np.clip(rng.normal(centre, spread), 0.1, 23.9)
    local_s = (hour * 3600).astype(np.int64).reshape(users, per_user)
    local_s.sort(axis=1)
    share = np.sort(rng.uniform(0.2, 1.0, size=(users, per_user)), axis=1)
    share[:, -1] = 1.0
    steps = (share * total[:, None]).astype(np.int64).ravel()
    midnight_utc = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    measured = (midnight_utc - zone[:, None] * 3600 + local_s).ravel()
    latest = int(time.time()) - 60
    earliest = int(day_start(day).timestamp())
    measured = np.clip(measured, earliest, latest)
    order = np.argsort(measured, kind="stable")
    day_text = day.isoformat()
    out: list[Record] = []
    bar = Progress("generate reports", n, "reports")
    record = ingest_pb2.ReportStepsBatchRequest()
    for done, i in enumerate(order.tolist()):
        report = record.reports.add(user_id=int(user[i]), day=day_text, steps=int(steps[i]),
                                    report_id=uuid.uuid4().hex)
        report.measured_at.seconds = int(measured[i])
        if len(record.reports) == per_record or done == n - 1:
            key = None if per_record == 1 else batch_key(record.reports[0])
            out.append((key, record.SerializeToString(deterministic=True)))
            record = ingest_pb2.ReportStepsBatchRequest()
        if done % 50_000 == 0:
            bar.update(done)
    bar.update(n)
    bar.finish()
    return out


def raw_produce(env: dict[str, str], records: list[Record]) -> dict:
    """A bare produce loop to the reports topic with ingest's producer settings
    (idempotent, ``acks=all``); returns acknowledged records per second.

    Records go to the partitions in turn: a day of ingest traffic spreads evenly, but a
    burst of unkeyed records produced within a second does not (the client sticks to a
    partition for a while: 23k-60k per partition of 300k), and a backlog skewed that way
    would time the busiest consumer, not the group."""
    settings = KafkaSettings.from_env(env)
    producer = Producer(producer_config(settings))
    partitions = len(producer.list_topics(settings.topic, timeout=10)
                     .topics[settings.topic].partitions)
    acked = [0, 0]

    def delivered(error, _message):
        acked[0 if error is None else 1] += 1

    bar = Progress("raw producer loop", len(records), "records")
    started = time.monotonic()
    for index, (key, value) in enumerate(records):
        while True:
            try:
                producer.produce(settings.topic, key=key, value=value,
                                 partition=index % partitions, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        if index % 1000 == 0:
            producer.poll(0)
            if index % 50_000 == 0:
                bar.update(acked[0])
    producer.flush(120)
    seconds = time.monotonic() - started
    bar.update(acked[0])
    bar.finish()
    return {"records": len(records), "acked": acked[0], "failed": acked[1],
            "seconds": round(seconds, 2), "acked_per_s": round(acked[0] / seconds)}


def batch_request(day: date, users: int, size: int, seed: int) -> bytes:
    """A serialized ReportStepsBatchRequest of ``size`` valid reports for random users."""
    rng = np.random.default_rng(seed)
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    request = ingest_pb2.ReportStepsBatchRequest()
    for user, steps, second in zip(rng.integers(1, users + 1, size).tolist(),
                                   rng.integers(100, 20_000, size).tolist(),
                                   rng.integers(6 * 3600, 20 * 3600, size).tolist(), strict=True):
        r = request.reports.add(user_id=user, day=day.isoformat(), steps=steps,
                                report_id=uuid.uuid4().hex)
        r.measured_at.seconds = min(midnight + second, int(time.time()) - 60)
    return request.SerializeToString()
