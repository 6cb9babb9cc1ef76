"""The write path end to end: StepIngest → Kafka → consumer process → Redis → Ranking."""

import random
import signal
import threading
import time

import grpc
import pytest
from confluent_kafka import Consumer, Producer

from common.kafka_clients import producer_config
from common.record_format import REPORTS_PER_RECORD, encode_reports
from common.report_rules import day_start
from rank_svc.board_format import encode_score
from rank_svc.top_cache import RECHECK_S
from stepboard.v1 import ingest_pb2, ranking_pb2
from tests.board_store import BoardStore
from tests.harness import log_tail, report, today, wait_until
from tests.model import BoardModel
from tests.write_path import WritePath


def send_batches(path, reports, size=200):
    """Sends reports with ReportStepsBatch; every one must be accepted."""
    for first in range(0, len(reports), size):
        chunk = reports[first:first + size]
        reply = path.ingest.ReportStepsBatch(
            ingest_pb2.ReportStepsBatchRequest(reports=chunk), timeout=30
        )
        assert reply.accepted == len(chunk), [r.message for r in reply.results if r.code]


def send_rows(path, rows, size=200) -> BoardModel:
    """Sends ``(day, user, steps, second)`` rows in batches; returns the model of them."""
    model = BoardModel()
    model.add_all(rows)
    send_batches(path, [report(u, d, s, t) for d, u, s, t in rows], size)
    return model


def random_reports(rng, day, users, count):
    """Reports with repeated users, tied steps and tied seconds, in random order."""
    rows = [
        (day, rng.randint(1, users), rng.choice([0, 100, 250, 250, 5000, rng.randint(0, 99_999)]),
         rng.choice([30, 30, 31, rng.randint(0, 40_000)]))
        for _ in range(count)
    ]
    rows += rng.sample(rows, len(rows) // 5)  # duplicates: redelivered reports
    rng.shuffle(rows)
    return rows


def test_report_steps_then_global_rank(write_path):
    day = today()
    write_path.start_consumer()
    reply = write_path.ingest.ReportSteps(
        ingest_pb2.ReportStepsRequest(report=report(42, day, 8000, 3600, "r-1")), timeout=10
    )
    assert reply.report_id == "r-1"
    request = ranking_pb2.GetGlobalRankRequest(user_id=42, day=day.isoformat())

    def rank():
        try:
            return write_path.ranking.GetGlobalRank(request, timeout=5)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            return None

    found = wait_until(rank, 30)
    assert (found.entry.rank, found.entry.steps, found.total_participants) == (1, 8000, 1)
    assert found.entry.reached_at.seconds == int(day_start(day).timestamp()) + 3600


def test_model_equality_with_duplicates_reordering_and_ties(write_path):
    rng = random.Random(7)
    day = today()
    rows = random_reports(rng, day, users=150, count=1500)
    model = send_rows(write_path, rows)
    write_path.start_consumer()
    start_s = int(day_start(day).timestamp())
    wait_until(lambda: write_path.matches(model, day, start_s), 60)
    for user_id in rng.sample(sorted({u for _, u, _, _ in rows}), 30):
        reply = write_path.ranking.GetGlobalRank(
            ranking_pb2.GetGlobalRankRequest(user_id=user_id, day=day.isoformat()), timeout=5
        )
        assert reply.entry.rank == model.rank_of(day, user_id)
        assert reply.total_participants == len(model.ranking(day))
    top = write_path.ranking.GetGlobalTop(
        ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=10), timeout=5
    )
    assert [e.user_id for e in top.entries] == [u for u, _, _ in model.ranking(day)[:10]]
    assert [e.rank for e in top.entries] == list(range(1, 11))


def test_consumer_killed_mid_backlog_then_restarted(write_path):
    rng = random.Random(11)
    day = today()
    rows = random_reports(rng, day, users=3000, count=20_000)
    model = send_rows(write_path, rows, size=100)  # 200 records, a few per batch
    first = write_path.start_consumer()
    wait_until(lambda: write_path.store.participants(day) > 0, 60, 0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert not write_path.matches(model, day, int(day_start(day).timestamp()))
    write_path.start_consumer()
    wait_until(lambda: write_path.matches(model, day, int(day_start(day).timestamp())), 90)


def test_survivor_takes_over_when_one_of_two_consumers_dies(write_path):
    rng = random.Random(13)
    day = today()
    start_s = int(day_start(day).timestamp())
    survivor = write_path.start_consumer()
    victim = write_path.start_consumer()
    rows = random_reports(rng, day, users=2000, count=6000)
    model = BoardModel()
    model.add_all(rows)
    half = len(rows) // 2
    send_batches(write_path, [report(u, d, s, t) for d, u, s, t in rows[:half]])
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    send_batches(write_path, [report(u, d, s, t) for d, u, s, t in rows[half:]])
    wait_until(lambda: write_path.matches(model, day, start_s), 90)
    assert survivor.poll() is None


def test_a_consumer_whose_group_join_gets_nowhere_replaces_itself(write_path):
    """A member that gets no assignment while the broker answers replaces its Kafka
    consumer after STEPBOARD_CONSUMER_REJOIN_S. Here the join is blocked by a foreign member
    holding the group with an assignment protocol ours does not offer; once it leaves, the
    writer joins and applies what was acknowledged meanwhile."""
    blocker = Consumer({
        "bootstrap.servers": write_path.kafka.bootstrap,
        "group.id": write_path.env["STEPBOARD_CONSUMER_GROUP"],
        "partition.assignment.strategy": "cooperative-sticky",
    })
    joined = []
    blocker.subscribe([write_path.topic], on_assign=lambda _c, parts: joined.append(parts))
    wait_until(lambda: blocker.poll(0.1) is None and bool(joined), 30)
    consumer = write_path.start_consumer(STEPBOARD_CONSUMER_REJOIN_S="2")
    day = today()
    write_path.ingest.ReportSteps(
        ingest_pb2.ReportStepsRequest(report=report(7, day, 700, 5)), timeout=10
    )
    try:
        wait_until(lambda: "replacing the Kafka consumer" in consumer.log_path.read_text(), 30)
    except AssertionError:
        raise AssertionError(log_tail(consumer.log_path)) from None
    finally:
        blocker.close()
    wait_until(lambda: write_path.store.scores(day, [7])[7] is not None, 60)


def test_flushall_during_steady_ingest_heals_within_60_s(write_path):
    rng = random.Random(17)
    day = today()
    start_s = int(day_start(day).timestamp())
    write_path.start_consumer()
    model = BoardModel()
    stop = threading.Event()

    def steady_ingest():
        while not stop.is_set():
            rows = random_reports(rng, day, users=500, count=100)
            send_batches(write_path, [report(u, d, s, t) for d, u, s, t in rows])
            model.add_all(rows)
            time.sleep(0.05)

    sender = threading.Thread(target=steady_ingest)
    sender.start()
    try:
        wait_until(lambda: write_path.store.participants(day) > 100, 30)
        for node in getattr(write_path.redis, "get_primaries", lambda: [None])():
            kwargs = {"target_nodes": node} if node is not None else {}
            write_path.redis.flushall(**kwargs)
        time.sleep(3)
    finally:
        stop.set()
        sender.join(30)
    healed = time.monotonic()
    wait_until(lambda: write_path.matches(model, day, start_s), 60)
    assert time.monotonic() - healed < 60


def test_poison_records_go_to_the_dead_letter_topic(write_path):
    day = today()
    producer = Producer(producer_config(write_path.kafka))
    bad_report = report(5, day, 10, 10)
    bad_report.steps = -3
    mixed = encode_reports([report(6, day, 66, 10), bad_report])
    for value in [
        b"\xff\x00 not a protobuf",
        ingest_pb2.StepReport(steps=5).SerializeToString(),  # decodes, holds no report
        mixed,
    ]:
        producer.produce(write_path.topic, value=value, partition=0)
    assert producer.flush(30) == 0
    write_path.start_consumer()
    good = ingest_pb2.ReportStepsRequest(report=report(9, day, 777, 100))
    write_path.ingest.ReportSteps(good, timeout=10)
    dead = write_path.read_topic(write_path.dlq_topic, 3)
    letters = sorted((dict(m.headers())["error"].decode(), m.value()) for m in dead)
    assert [reason.split(":")[0] for reason, _ in letters] == [
        "invalid report [1]", "undecodable record", "undecodable record"
    ]
    assert letters[0][0].startswith("invalid report [1]: steps: must be between 0 and")
    assert letters[0][1] == encode_reports([bad_report])  # the bad report alone, replayable
    assert "no reports" in letters[2][0]
    start = int(day_start(day).timestamp())
    wait_until(lambda: write_path.board(day) == [(9, 777, start + 100), (6, 66, start + 10)], 30)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("user_id", {"user_id": 0}),
        ("day", {"day": "2026-13-01"}),
        ("day", {"day": "1999-01-01"}),
        ("steps", {"steps": 100_001}),
        ("steps", {"steps": -1}),
        ("measured_at", {"measured_at": None}),
        ("report_id", {"report_id": "r" * 200}),
    ],
)
def test_invalid_reports_are_rejected_naming_the_field_and_write_nothing(
    write_path, field, change
):
    bad = report(3, today(), 100, 100)
    for name, value in change.items():
        if value is None:
            bad.ClearField(name)
        else:
            setattr(bad, name, value)
    with pytest.raises(grpc.RpcError) as raised:
        write_path.ingest.ReportSteps(ingest_pb2.ReportStepsRequest(report=bad), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(f"report.{field}: ")

    good = report(4, today(), 100, 100)
    reply = write_path.ingest.ReportStepsBatch(
        ingest_pb2.ReportStepsBatchRequest(reports=[good, bad]), timeout=10
    )
    assert (reply.accepted, reply.rejected) == (1, 1)
    assert reply.results[0].code == 0
    assert reply.results[1].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert reply.results[1].message.startswith(f"reports[1].{field}: ")
    assert write_path.log_end(write_path.topic) == 1


def test_missing_report_and_batch_bounds(write_path):
    with pytest.raises(grpc.RpcError) as raised:
        write_path.ingest.ReportSteps(ingest_pb2.ReportStepsRequest(), timeout=10)
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "report: is required"
    )
    for reports, words in [([], "must not be empty"),
                           ([report(1, today(), 1, 1)] * 1001, "at most 1000")]:
        with pytest.raises(grpc.RpcError) as raised:
            write_path.ingest.ReportStepsBatch(
                ingest_pb2.ReportStepsBatchRequest(reports=reports), timeout=10
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith("reports: ")
        assert words in raised.value.details()
    assert write_path.log_end(write_path.topic) == 0


def test_a_batch_is_one_record_and_identical_records_are_each_acknowledged():
    """A batch's reports travel as one record, up to REPORTS_PER_RECORD per record.
    A batch of byte-identical halves (same report ids) gives two identical records, each
    acknowledged on its own and in the log."""
    path = WritePath({"STEPBOARD_MAX_BATCH": str(2 * REPORTS_PER_RECORD)})
    try:
        day = today()
        half = [report(5 + i % 7, day, 500 + i, 5, report_id=f"r{i}")
                for i in range(REPORTS_PER_RECORD)]
        reply = path.ingest.ReportStepsBatch(
            ingest_pb2.ReportStepsBatchRequest(reports=half + half), timeout=10
        )
        assert (reply.accepted, reply.rejected) == (2 * REPORTS_PER_RECORD, 0)
        assert [r.report_id for r in reply.results] == [r.report_id for r in half + half]
        path.ingest.ReportStepsBatch(
            ingest_pb2.ReportStepsBatchRequest(reports=half[:3]), timeout=10
        )
        assert path.log_end(path.topic) == 3
    finally:
        path.close()


def test_a_deadline_shorter_than_the_acknowledgement_is_deadline_exceeded():
    """With the broker up, a call whose deadline ends before the broker acknowledged its
    report answers DEADLINE_EXCEEDED (or OK), never UNAVAILABLE, which says a dependency
    is down (the broker-down case: tests/integration/test_write_path_faults.py)."""
    path = WritePath({})
    try:
        day = today()
        codes = []
        for user_id in range(1, 41):
            request = ingest_pb2.ReportStepsRequest(report=report(user_id, day, 10, 5))
            try:
                path.ingest.ReportSteps(request, timeout=0.001 * (1 + user_id % 5))
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}, codes
    finally:
        path.close()


def test_global_reads_validate_their_arguments(write_path):
    day = today().isoformat()
    cases = [
        (write_path.ranking.GetGlobalTop, ranking_pb2.GetGlobalTopRequest(day=day, limit=1001),
         grpc.StatusCode.INVALID_ARGUMENT, "limit: "),
        (write_path.ranking.GetGlobalTop, ranking_pb2.GetGlobalTopRequest(day="tomorrow"),
         grpc.StatusCode.INVALID_ARGUMENT, "day: "),
        (write_path.ranking.GetGlobalRank, ranking_pb2.GetGlobalRankRequest(day=day),
         grpc.StatusCode.INVALID_ARGUMENT, "user_id: "),
        (write_path.ranking.GetGlobalRank, ranking_pb2.GetGlobalRankRequest(user_id=5, day=day),
         grpc.StatusCode.NOT_FOUND, "user 5 has no report"),
    ]
    for call, request, code, prefix in cases:
        with pytest.raises(grpc.RpcError) as raised:
            call(request, timeout=5)
        assert raised.value.code() == code
        assert raised.value.details().startswith(prefix)
    empty = write_path.ranking.GetGlobalTop(ranking_pb2.GetGlobalTopRequest(day=day), timeout=5)
    assert (list(empty.entries), empty.total_participants) == ([], 0)


def test_global_top_shows_every_write_within_the_recheck_interval(write_path):
    """GetGlobalTop answers are cached per board version: each write and a rebuild's swap
    must show in the first answer once the cache's recheck interval has passed, never an
    older cached one."""
    day = today()
    start_s = int(day_start(day).timestamp())
    staging = BoardStore(write_path.redis, write_path.store.settings, staging=True)

    def top() -> list[tuple[int, int]]:
        time.sleep(RECHECK_S)
        reply = write_path.ranking.GetGlobalTop(
            ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=3), timeout=5
        )
        return [(e.user_id, e.steps) for e in reply.entries]

    assert top() == []
    for steps in (100, 200, 300):
        write_path.store.apply({(day, steps): encode_score(day, steps, start_s + 60)}, {})
        assert top()[0] == (steps, steps)
    assert top() == [(300, 300), (200, 200), (100, 100)]
    staging.apply({(day, 7): encode_score(day, 50, start_s + 60)}, {})
    staging.move_day(day, write_path.store)
    assert top() == [(7, 50)]
