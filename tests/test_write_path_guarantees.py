"""What the write path promises past the happy path: what ingest acknowledged is applied.

Each test runs its own services from this tree on a private topic, group and board
namespace (:mod:`tests.write_path`).
"""

import time
from datetime import date, timedelta

import grpc

from common.report_records import decode_reports, encode_reports
from common.reports import ValidationSettings, accepted_days
from ingest_svc.producer import ReportProducer
from ingest_svc.servicer import StepIngestServicer
from stepboard.v1 import ingest_pb2
from tests.harness import free_port, report, start_process, today, wait_until
from tests.write_path import WritePath

EPOCH = date(1970, 1, 1)


def on_board(path: WritePath, day: date, users: list[int]) -> set[int]:
    """Which of ``users`` have an entry on ``day``'s board."""
    return {u for u, score in path.store.scores(day, users).items() if score is not None}


# -- what ingest acknowledged is applied ------------------------------------------------

def test_a_report_accepted_just_before_its_day_closes_is_applied_not_dead_lettered():
    """Ingest accepts a report for the oldest accepted day in the last millisecond of that
    day's late window; by the consumer's clock the window has closed when it reads it."""
    path = WritePath({})
    producer = ReportProducer(path.kafka)
    try:
        oldest_now, _ = accepted_days(time.time(), 1)
        day = oldest_now - timedelta(days=1)
        # The last instant at which `day` is still the oldest accepted day (late_days=1).
        closes_s = ((day - EPOCH).days + 2) * 86400 + 12 * 3600
        accepted_at_s = closes_s - 0.001
        assert accepted_days(accepted_at_s, 1)[0] == day < accepted_days(closes_s, 1)[0]
        ingest = StepIngestServicer(
            producer, ValidationSettings(late_days=1), 10.0, clock=lambda: accepted_at_s
        )
        ingest.ReportSteps(ingest_pb2.ReportStepsRequest(report=report(8, day, 800, 60)), None)
        path.start_consumer()
        wait_until(lambda: on_board(path, day, [8]), 30)
        assert path.log_end(path.dlq_topic) == 0
    finally:
        producer.close()
        path.close()


def test_a_consumer_with_a_lower_step_cap_and_late_window_applies_what_ingest_accepted():
    """A replay after STEPBOARD_MAX_STEPS_PER_DAY or STEPBOARD_LATE_DAYS was lowered applies
    the reports ingest accepted under the settings it had."""
    path = WritePath({})
    try:
        day = today()
        oldest, _ = accepted_days(time.time(), 1)
        path.ingest.ReportStepsBatch(ingest_pb2.ReportStepsBatchRequest(
            reports=[report(1, day, 90_000, 60), report(2, oldest, 50, 60)]), timeout=10)
        path.start_consumer(STEPBOARD_MAX_STEPS_PER_DAY="1000", STEPBOARD_LATE_DAYS="0")
        wait_until(lambda: on_board(path, day, [1]) and on_board(path, oldest, [2]), 30)
        assert path.log_end(path.dlq_topic) == 0
    finally:
        path.close()


# -- unknown fields ---------------------------------------------------------------------

def varint(value: int) -> bytes:
    """``value`` as a protobuf varint."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def with_unknown_field(message: bytes, size: int) -> bytes:
    """``message`` followed by a length-delimited field number 1000 of ``size`` bytes,
    which no message of the API has."""
    return message + varint(1000 << 3 | 2) + varint(size) + b"u" * size


def embedded(field: int, message: bytes) -> bytes:
    """``message`` as length-delimited field ``field`` of an enclosing message."""
    return varint(field << 3 | 2) + varint(len(message)) + message


def test_unknown_fields_are_dropped_before_a_report_reaches_kafka():
    """A request with large unknown fields (beside and inside its reports) is accepted, and
    its record holds only the fields the schema knows."""
    path = WritePath({})
    port = free_port()
    ingest = start_process("ingest_svc", path.env | {"STEPBOARD_GRPC_PORT": str(port)})
    path.consumers.append(ingest)  # stopped with the path
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        day = today()
        single, pair = report(1, day, 10, 5, "one"), [report(2, day, 20, 5, "two"),
                                                      report(3, day, 30, 5, "three")]
        half_mib = 512 * 1024
        calls = [
            ("ReportSteps", ingest_pb2.ReportStepsResponse,
             embedded(1, with_unknown_field(single.SerializeToString(), half_mib))),
            ("ReportStepsBatch", ingest_pb2.ReportStepsBatchResponse,
             b"".join(embedded(1, with_unknown_field(r.SerializeToString(), half_mib))
                      for r in pair)),
        ]
        replies = []
        for method, reply_type, body in calls:
            call = channel.unary_unary(f"/stepboard.v1.StepIngest/{method}",
                                       request_serializer=None,
                                       response_deserializer=reply_type.FromString)
            replies.append(call(with_unknown_field(body, 2 * half_mib), timeout=10))
        assert replies[0].report_id == "one"
        assert [(r.code, r.report_id) for r in replies[1].results] == [(0, "two"), (0, "three")]
        records = path.read_topic(path.topic, 2)
        values = sorted((m.value() for m in records), key=len)
        assert values == [encode_reports([single]), encode_reports(pair)]
        assert [list(decode_reports(v)) for v in values] == [[single], pair]
    finally:
        channel.close()
        path.close()
