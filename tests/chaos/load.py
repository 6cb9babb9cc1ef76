"""Steady ingest for chaos tests: batches of reports sent in a loop, each outcome in a ledger."""

import random
import threading
import time

import grpc

from stepboard.v1 import ingest_pb2, ingest_pb2_grpc
from tests.chaos.ledger import Ledger
from tests.harness import report

DEADLINE_S = 3.0
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class SteadyIngest:
    """Threads sending ``ReportStepsBatch`` of ``batch`` reports every ``pause_s``."""

    def __init__(
        self,
        stub: ingest_pb2_grpc.StepIngestStub,
        ledger: Ledger,
        users: range,
        threads: int = 2,
        batch: int = 50,
        pause_s: float = 0.02,
        seed: int = 1,
    ) -> None:
        self.stub = stub
        self.ledger = ledger
        self.users = users
        self.batch = batch
        self.pause_s = pause_s
        self.calls = 0
        self.slowest_s = 0.0
        self.last_error_at: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(random.Random(seed * 1000 + n),), daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> "SteadyIngest":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stops sending and waits for the calls in flight."""
        self._stop.set()
        for thread in self._threads:
            thread.join(DEADLINE_S + 10)

    def wait_acknowledged(self, count: int, timeout_s: float = 30) -> None:
        """Blocks until the ledger holds at least ``count`` acknowledged reports."""
        deadline = time.monotonic() + timeout_s
        while self.ledger.acknowledged_count < count:
            assert time.monotonic() < deadline, f"fewer than {count} reports acknowledged"
            time.sleep(0.05)

    def _run(self, rng: random.Random) -> None:
        day = self.ledger.day
        while not self._stop.is_set():
            rows = [
                (rng.choice(self.users), rng.randint(0, 99_999), rng.randint(0, 40_000))
                for _ in range(self.batch)
            ]
            self.ledger.record_sent(rows)
            request = ingest_pb2.ReportStepsBatchRequest(
                reports=[report(u, day, s, t) for u, s, t in rows]
            )
            started = time.monotonic()
            try:
                reply = self.stub.ReportStepsBatch(request, timeout=DEADLINE_S)
            except grpc.RpcError as error:
                self.ledger.record_refused(error.code().name, len(rows))
                self._note(started, failed=True)
            else:
                ok = [row for row, result in zip(rows, reply.results, strict=True)
                      if result.code == 0]
                self.ledger.record_ok(ok)
                for result in reply.results:
                    if result.code:
                        self.ledger.record_refused(CODE_NAMES[result.code], 1)
                self._note(started, failed=len(ok) < len(rows))
            time.sleep(self.pause_s)

    def _note(self, started: float, failed: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.calls += 1
            self.slowest_s = max(self.slowest_s, now - started)
            if failed:
                self.last_error_at = now
