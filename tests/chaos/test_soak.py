"""Soak: steady mixed load (reports, friend rankings, global reads) on real service processes.

No call may fail, the board must equal the ledger afterwards, and no process may grow its
RSS by more than ``RSS_GROWTH_BOUND_MB`` after warm-up. ``STEPBOARD_SOAK_SECONDS`` sets
the duration (``make soak``: 600; ``make chaos``: the short default).
"""

import os
import random
import threading
import time

import grpc
import pytest

from common.report_rules import day_start
from stepboard.v1 import ingest_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.chaos.ledger import Ledger, record_result
from tests.chaos.load import DEADLINE_S, SteadyIngest
from tests.harness import free_port, start_process
from tests.integration.test_friend_ranking import populate
from tests.processes import stop_process
from tests.write_path import WritePath

SOAK_SECONDS = float(os.environ.get("STEPBOARD_SOAK_SECONDS", "60"))
WARM_UP_S = min(60.0, SOAK_SECONDS / 4)
RSS_GROWTH_BOUND_MB = 50
READERS = 2


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from ``/proc``."""
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - read once
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def serve(path: WritePath, module: str) -> tuple:
    """``module`` as a real process on a free port of this path; ``(process, channel)``."""
    port = free_port()
    process = start_process(module, path.env | {"STEPBOARD_GRPC_PORT": str(port)})
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    return process, channel


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 300)
def test_soak_mixed_load():
    path = WritePath({}, own_social=True)
    ingest, ingest_channel = serve(path, "ingest_svc")
    rank, rank_channel = serve(path, "rank_svc")
    try:
        friends, model, day = populate(path, random.Random(61), users=300)
        consumer = path.consumers[0]
        processes = {"ingest_svc": ingest, "rank_svc": rank, "social_svc": path.social_process,
                     "rank_svc.consumer": consumer}
        ledger = Ledger(day)
        start_s = int(day_start(day).timestamp())
        for (_, user), (steps, second) in model.best.items():
            ledger.record_sent([(user, steps, second)])
            ledger.record_ok([(user, steps, second)])
        ranking = ranking_pb2_grpc.RankingStub(rank_channel)
        read_errors: list[str] = []
        reads = [0]
        stop = threading.Event()
        graph_users = sorted(friends)

        def read_loop(rng: random.Random) -> None:
            while not stop.is_set():
                try:
                    ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
                        user_id=rng.choice(graph_users), day=day.isoformat(), page_size=50),
                        timeout=DEADLINE_S)
                    ranking.GetGlobalTop(ranking_pb2.GetGlobalTopRequest(
                        day=day.isoformat(), limit=100), timeout=DEADLINE_S)
                    ranking.GetGlobalRank(ranking_pb2.GetGlobalRankRequest(
                        user_id=rng.choice(graph_users), day=day.isoformat()), timeout=DEADLINE_S)
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:  # a user with no report
                        read_errors.append(f"{error.code().name}: {error.details()}")
                reads[0] += 3
                time.sleep(0.01)

        readers = [threading.Thread(target=read_loop, args=(random.Random(n),))
                   for n in range(READERS)]
        stub = ingest_pb2_grpc.StepIngestStub(ingest_channel)
        samples: dict[str, list[float]] = {name: [] for name in processes}
        started = time.monotonic()
        with SteadyIngest(stub, ledger, range(1, 200_001), threads=2, batch=100,
                          pause_s=0.05) as load:
            for reader in readers:
                reader.start()
            warm: dict[str, float] = {}
            while time.monotonic() - started < SOAK_SECONDS:
                time.sleep(5)
                for name, process in processes.items():
                    assert process.poll() is None, f"{name} exited"
                    samples[name].append(rss_mb(process.pid))
                if not warm and time.monotonic() - started >= WARM_UP_S:
                    warm = {name: values[-1] for name, values in samples.items()}
            stop.set()
            for reader in readers:
                reader.join(DEADLINE_S * 3 + 5)
        verdict, converge_s = ledger.converge(path, start_s, 120)
    finally:
        for process in (ingest, rank):
            stop_process(process)
        ingest_channel.close()
        rank_channel.close()
        path.close()

    growth = {name: round(samples[name][-1] - warm[name], 1) for name in samples}
    record_result(
        "soak", seconds=SOAK_SECONDS, warm_up_s=WARM_UP_S, ingest_calls=load.calls,
        reads=reads[0], read_errors=len(read_errors), refused=dict(ledger.refused),
        verdict=verdict, converge_s=round(converge_s, 1),
        rss_after_warm_up_mb={n: round(v, 1) for n, v in warm.items()},
        rss_end_mb={n: round(v[-1], 1) for n, v in samples.items()},
        rss_growth_mb=growth,
    )
    assert read_errors == [], read_errors[:5]
    assert ledger.refused == {}
    assert verdict.clean, verdict
    assert all(g < RSS_GROWTH_BOUND_MB for g in growth.values()), growth
