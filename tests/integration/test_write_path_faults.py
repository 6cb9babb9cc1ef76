"""The write path under faults: broker down, ingest SIGTERM under load, on-demand rebuild."""

import random
import signal
import threading
import time

import grpc
import pytest

from common.report_rules import day_start
from rank_svc.board_format import decode_score
from stepboard.v1 import ingest_pb2, ingest_pb2_grpc
from tests.faults import kill_component, start_infra
from tests.harness import free_port, report, start_process, today, wait_until
from tests.integration.test_write_path import random_reports, send_rows
from tests.model import BoardModel


def holds(path, model: BoardModel, day) -> bool:
    """Every user of ``model`` is on the board with exactly the model's entry."""
    start_s = int(day_start(day).timestamp())
    expected = {u: (s, start_s + t) for u, s, t in model.ranking(day)}
    stored = path.store.scores(day, expected)
    return all(
        stored[u] is not None and decode_score(day, stored[u]) == entry
        for u, entry in expected.items()
    )


def test_broker_down_gives_unavailable_within_the_deadline_and_loses_nothing(write_path):
    day = today()
    write_path.start_consumer()
    model = BoardModel()
    for user_id in range(1, 51):
        write_path.ingest.ReportSteps(
            ingest_pb2.ReportStepsRequest(report=report(user_id, day, user_id * 10, 5)), timeout=10
        )
        model.add(day, user_id, user_id * 10, 5)
    kill_component("kafka")
    try:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as raised:
            write_path.ingest.ReportSteps(
                ingest_pb2.ReportStepsRequest(report=report(1000, day, 1, 1)), timeout=2
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 2.0
    finally:
        start_infra()

    def accepted_again():
        try:
            write_path.ingest.ReportSteps(
                ingest_pb2.ReportStepsRequest(report=report(51, day, 510, 5)), timeout=5
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            return False
        return True

    wait_until(accepted_again, 90, 1.0)
    model.add(day, 51, 510, 5)
    wait_until(lambda: holds(write_path, model, day), 90)


def test_sigterm_of_ingest_under_load_keeps_every_acknowledged_report(write_path):
    day = today()
    port = free_port()
    ingest = start_process("ingest_svc", write_path.env | {"STEPBOARD_GRPC_PORT": str(port)})
    write_path.consumers.append(ingest)  # stopped with the path if this test fails
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = ingest_pb2_grpc.StepIngestStub(channel)
    acknowledged = BoardModel()
    lock = threading.Lock()
    sent = []

    def load(worker: int):
        for n in range(100_000):
            user_id = worker * 1_000_000 + n + 1
            try:
                stub.ReportSteps(
                    ingest_pb2.ReportStepsRequest(report=report(user_id, day, n % 90_000, 9)),
                    timeout=5,
                )
            except grpc.RpcError:
                return
            with lock:
                acknowledged.add(day, user_id, n % 90_000, 9)
                sent.append(user_id)

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    wait_until(lambda: len(sent) > 200, 30, 0.05)
    ingest.send_signal(signal.SIGTERM)
    assert ingest.wait(30) == 0
    for worker in workers:
        worker.join(30)
    write_path.start_consumer()
    wait_until(lambda: holds(write_path, acknowledged, day), 90)


def test_rebuild_restores_one_day_exactly(write_path):
    rng = random.Random(23)
    day = today()
    rows = random_reports(rng, day, users=400, count=2000)
    model = send_rows(write_path, rows)
    write_path.start_consumer()
    start_s = int(day_start(day).timestamp())
    wait_until(lambda: write_path.matches(model, day, start_s), 60)

    store = write_path.store
    store.client.delete(store.board_key(day, 0))
    store.client.zadd(store.board_key(day, 1), {"999999": 1})
    assert not write_path.matches(model, day, start_s)
    rebuild = start_process(
        "rank_svc.consumer", write_path.env, "rebuild", "--day", day.isoformat()
    )
    write_path.consumers.append(rebuild)
    assert rebuild.wait(120) == 0
    assert write_path.matches(model, day, start_s)
