"""The board consumer held to ``STEPBOARD_CONSUMER_MAX_REPORTS_PER_S``: a burst of reports
waits in Kafka and is applied in full, no faster than the rate allows beyond its bucket
(the bucket alone: tests/unit/test_apply_rate.py). A consumer process from this tree on a
private topic, group and board namespace (:mod:`tests.write_path`)."""

import os
import time

from confluent_kafka import Producer

from common.kafka_clients import producer_config
from common.record_format import encode_reports
from common.report_rules import day_start
from stepboard.v1 import ingest_pb2
from tests.harness import free_port, metric, report, today, wait_until
from tests.model import BoardModel
from tests.write_path import WritePath

RATE = 200  # reports per second
BURST = 200
REPORTS = 1800
PER_RECORD = 10  # reports per record, as a ReportStepsBatch call of 10 writes them
NICE = 5


def test_a_burst_waits_in_kafka_and_is_applied_in_full_at_the_configured_rate():
    metrics_port = free_port()
    path = WritePath({
        "STEPBOARD_CONSUMER_MAX_REPORTS_PER_S": str(RATE),
        "STEPBOARD_CONSUMER_BURST_REPORTS": str(BURST),
        "STEPBOARD_CONSUMER_NICE": str(NICE),
        "STEPBOARD_METRICS_PORT": str(metrics_port),
    })
    day, model = today(), BoardModel()
    try:
        consumer = path.start_consumer()
        # One report first: the consumer has joined and applies before the burst is sent.
        path.ingest.ReportSteps(
            ingest_pb2.ReportStepsRequest(report=report(1, day, 10, 30)), timeout=10)
        model.add(day, 1, 10, 30)
        wait_until(lambda: path.store.participants(day) == 1, timeout_s=30, interval_s=0.05)
        time.sleep(1.0)  # the bucket refills to its burst

        # The burst lands at once (a consume could take all of it): produced straight to
        # the topic, in records of PER_RECORD reports (the warm-up's record held one).
        producer = Producer(producer_config(path.kafka))
        sent = time.monotonic()
        for start in range(2, REPORTS + 2, PER_RECORD):
            batch = [report(user, day, 1000 + user, 60 + user)
                     for user in range(start, start + PER_RECORD)]
            producer.produce(path.topic, value=encode_reports(batch))
            model.add_all((day, r.user_id, r.steps, 60 + r.user_id) for r in batch)
        assert producer.flush(30) == 0
        wait_until(lambda: path.store.participants(day) == REPORTS + 1, timeout_s=30,
                   interval_s=0.05)
        elapsed = time.monotonic() - sent

        assert path.matches(model, day, int(day_start(day).timestamp()))  # none lost
        # At most the bucket at once, then the rate (0.9: a generous bound, not a timing).
        assert elapsed >= (REPORTS - BURST) / RATE * 0.9, elapsed
        assert metric(metrics_port, "stepboard_consumer_throttled_seconds_total") > 0
        assert os.getpriority(os.PRIO_PROCESS, consumer.pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
    finally:
        path.close()
