"""``python -m bench.collapse_micro``: records/s of the consumer's decode + validate +
max-merge step (:func:`rank_svc.records.collapse`) on one core, with and without the
per-day caches of ``day_start_s`` / ``expire_at`` (the py-spy hotspot of the consumer)."""

import time
from datetime import UTC, datetime

from bench.config import bench_day
from bench.reports import day_reports
from common import reports
from common.reports import ValidationSettings
from rank_svc import board, records


class FakeMessage:
    """What ``collapse`` reads from a confluent-kafka message."""

    def __init__(self, key: bytes, value: bytes, offset: int, millis: int) -> None:
        self._key, self._value, self._offset, self._millis = key, value, offset, millis

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, self._millis


def rate(messages, rounds: int = 3) -> float:
    """Best records/s of ``collapse`` over batches of 5000."""
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for first in range(0, len(messages), 5000):
            records.collapse(messages[first:first + 5000], ValidationSettings(), 3)
        best = max(best, len(messages) / (time.perf_counter() - started))
    return best


def main() -> None:
    """Prints both rates."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    data = day_reports(bench_day(), 100_000, 2)
    messages = [FakeMessage(k, v, i, now_ms) for i, (k, v) in enumerate(data)]
    cached = rate(messages)
    board.day_start_s = reports.day_start_s = reports.day_start_s.__wrapped__
    board.expire_at = board.expire_at.__wrapped__
    uncached = rate(messages)
    print(f"collapse: {cached:,.0f} records/s with the caches, {uncached:,.0f} without "
          f"({cached / uncached:.2f}x)")


if __name__ == "__main__":
    main()
