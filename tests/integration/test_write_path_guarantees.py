"""What the write path promises past the happy path: what ingest acknowledged is applied,
dead letters are never skipped, self-healing keeps its check after a rewind, and a replay
that Kafka can no longer serve in full says so.

Each test runs its own consumer (a process from this tree, or an in-process
``BoardConsumer``) on a private topic, group and board namespace (:mod:`tests.write_path`).
"""

import json
import signal
import threading
import time
from datetime import date, timedelta

import grpc
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from common.kafka_clients import consumer_config, producer_config
from common.record_format import decode_reports, encode_reports
from common.report_rules import ValidationSettings, accepted_days
from ingest_svc.producer import ReportProducer
from ingest_svc.servicer import StepIngestServicer
from rank_svc.config import ConsumerConfig
from rank_svc.consumed_batch import UNDECODABLE_RECORD, DeadLetter
from rank_svc.consumer import BoardConsumer, DeadLetters
from stepboard.v1 import ingest_pb2
from tests.harness import (
    create_topics,
    delete_topics,
    free_port,
    metric,
    report,
    start_process,
    today,
    wait_until,
)
from tests.write_path import WritePath

EPOCH = date(1970, 1, 1)


def produce(path: WritePath, values: list[bytes], partition: int) -> None:
    """Appends record values to one partition of the path's reports topic."""
    producer = Producer(producer_config(path.kafka))
    for value in values:
        producer.produce(path.topic, value=value, partition=partition)
    assert producer.flush(30) == 0


def on_board(path: WritePath, day: date, users: list[int]) -> set[int]:
    """Which of ``users`` have an entry on ``day``'s board."""
    return {u for u, score in path.store.scores(day, users).items() if score is not None}


def committed(path: WritePath, partition: int) -> int:
    """The offset the path's consumer group committed for ``partition`` (-1001: none)."""
    probe = Consumer(consumer_config(path.kafka, path.env["STEPBOARD_CONSUMER_GROUP"]))
    try:
        (found,) = probe.committed([TopicPartition(path.topic, partition)], timeout=10)
        return found.offset
    finally:
        probe.close()


def log_entries(process, level: str) -> list[dict]:
    """The JSON log lines of ``process`` at ``level``."""
    lines = process.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if entry.get("level") == level]


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
            producer, ValidationSettings(late_days=1), 10.0, path.social,
            clock=lambda: accepted_at_s,
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


# -- dead letters -----------------------------------------------------------------------

def test_a_partition_waits_at_a_dead_letter_until_the_dead_letter_topic_stores_it():
    """With the dead-letter topic gone (and topic auto-creation off) the partition of a
    poison record stops there (offset and board), the other partitions go on, and once the
    topic is back the letter is stored and the partition catches up."""
    path = WritePath({})
    dlq_exists = True
    try:
        delete_topics(path.kafka.bootstrap, [path.dlq_topic])
        dlq_exists = False
        day = today()
        produce(path, [encode_reports([report(1, day, 10, 5)]), b"\xff\x00 poison",
                       encode_reports([report(2, day, 20, 5)])], partition=0)
        produce(path, [encode_reports([report(3, day, 30, 5)])], partition=1)
        port = free_port()
        consumer = path.start_consumer(STEPBOARD_METRICS_PORT=str(port),
                                       STEPBOARD_KAFKA_DELIVERY_TIMEOUT_S="2")
        wait_until(lambda: on_board(path, day, [1, 2, 3]) >= {1, 3}, 30)
        wait_until(lambda: committed(path, 1) == 1, 30)
        held = "stepboard_consumer_held_partitions"
        wait_until(lambda: metric(port, held) == 1, 30, 0.05)
        time.sleep(6)  # an auto-commit interval (5 s): the offset stays at the poison record
        assert committed(path, 0) == 1
        assert on_board(path, day, [2]) == set()
        assert metric(port, "stepboard_consumer_dead_letter_failures_total") >= 1
        assert any(e["msg"].startswith("partitions held") for e in log_entries(consumer, "ERROR"))

        create_topics(path.kafka.bootstrap, {path.dlq_topic: 1})
        dlq_exists = True
        wait_until(lambda: committed(path, 0) == 3, 60)
        assert on_board(path, day, [2]) == {2}
        (letter,) = path.read_topic(path.dlq_topic, 1)
        assert letter.value() == b"\xff\x00 poison"
        assert dict(letter.headers())["source"] == f"{path.topic}/0/1".encode()
        wait_until(lambda: metric(port, held) == 0, 30)
    finally:
        if not dlq_exists:
            create_topics(path.kafka.bootstrap, {path.dlq_topic: 1})  # for close()
        path.close()


def test_a_dead_letter_the_client_refuses_to_queue_is_reported_not_raised():
    """A letter larger than the producer's message.max.bytes (the reports topic holds
    records up to the broker's larger limit) makes produce() raise: send() reports the
    record as not stored instead of crashing the writer or skipping it."""
    path = WritePath({})
    producer = Producer(producer_config(path.kafka))
    try:
        produce(path, [b"\xff\x00 poison"], partition=2)
        (source,) = path.read_topic(path.topic, 1)
        letters = DeadLetters(producer, path.dlq_topic, 2)
        too_big = DeadLetter(source, b"x" * 1_100_000, "undecodable record", UNDECODABLE_RECORD)
        assert letters.send([too_big]) == {2: 0}
        assert path.log_end(path.dlq_topic) == 0
    finally:
        producer.flush(10)
        path.close()


# -- self-healing -----------------------------------------------------------------------

def drive(consumer: BoardConsumer, until, timeout_s: float = 30) -> None:
    """Runs the consume → process step of an in-process writer until ``until()``."""
    def step():
        messages = consumer.consumer.consume(100, timeout=0.5)
        if messages:
            consumer.process(messages)
        return until()

    wait_until(step, timeout_s, 0)


def set_watermarks(path: WritePath, partition: int, offset: int) -> None:
    """Puts every shard's applied watermark of ``partition`` at ``offset``, as a Redis
    restored from an older snapshot would have it."""
    for shard in range(path.store.settings.shards):
        path.redis.hset(path.store.watermark_key(shard), str(partition), offset)


def test_a_second_loss_before_the_first_write_after_a_rewind_is_noticed():
    """Redis goes back to an older watermark (the writer rewinds there), then loses
    everything before the writer's next write: that write must notice it too."""
    path = WritePath({})
    stop = threading.Event()
    producer = Producer(producer_config(path.kafka))
    config = ConsumerConfig.from_env(path.env)
    writer = BoardConsumer(config, path.store, DeadLetters(producer, path.dlq_topic, 10), stop)
    try:
        day = today()
        users = list(range(1, 11))
        produce(path, [encode_reports([report(u, day, u, 5)]) for u in users], partition=0)
        drive(writer, lambda: writer.applied.get(0) == 9)
        set_watermarks(path, 0, 4)  # first loss: back to offset 4
        writer.check_idle()  # refused: the writer rewinds partition 0 to offset 5
        path.drop_keys()  # second loss, before the next write
        drive(writer, lambda: writer.applied.get(0) == 9 and on_board(path, day, users))
        assert on_board(path, day, users) == set(users)
    finally:
        writer.consumer.close()
        producer.flush(10)
        path.close()


def delete_records_before(path: WritePath, partition: int, offset: int) -> None:
    """Deletes the records of ``partition`` below ``offset`` (as retention would)."""
    admin = AdminClient({"bootstrap.servers": path.kafka.bootstrap})
    for future in admin.delete_records([TopicPartition(path.topic, partition, offset)]).values():
        future.result(30)


def gaps(process) -> list[tuple[int, int, int]]:
    """(partition, needed offset, log start offset) of each replay gap ``process`` logged."""
    return [(e["partition"], e["needed_offset"], e["log_start_offset"])
            for e in log_entries(process, "ERROR") if "needed_offset" in e]


def test_a_replay_that_needs_deleted_records_says_so():
    """Records the boards need are deleted from Kafka, then Redis loses data: the rewind at
    assignment, the rewind while running and a rebuild each log an ERROR naming the
    partition, the offset needed and the first one Kafka still has."""
    path = WritePath({})
    try:
        day = today()
        users = list(range(1, 11))
        produce(path, [encode_reports([report(u, day, u, 5)]) for u in users], partition=0)
        first = path.start_consumer()
        wait_until(lambda: on_board(path, day, users) == set(users), 30)
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        assert committed(path, 0) == 10
        delete_records_before(path, 0, 5)
        path.drop_keys()  # Redis lost everything: the replay needs offset 0

        second = path.start_consumer()
        wait_until(lambda: gaps(second) == [(0, 0, 5)], 30)
        wait_until(lambda: on_board(path, day, users) == set(range(6, 11)), 30)
        set_watermarks(path, 0, 2)  # Redis back at offset 2: the replay needs offset 3
        wait_until(lambda: gaps(second) == [(0, 0, 5), (0, 3, 5)], 30)

        rebuild = start_process("rank_svc.consumer", path.env, "rebuild", "--day",
                                day.isoformat())
        path.consumers.append(rebuild)
        assert rebuild.wait(120) == 0
        assert gaps(rebuild) == [(0, 4, 5)]  # the record before the day's first kept one
    finally:
        path.close()
