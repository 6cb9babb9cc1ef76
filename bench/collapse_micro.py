"""``python -m bench.collapse_micro``: reports/s of the consumer's decode + validate +
max-merge step (:func:`rank_svc.records.collapse`) on one core, without Kafka or Redis:
the consumer's Python work per report, measured alone."""

import time
from datetime import UTC, datetime

from bench.config import bench_day
from bench.reports import day_reports
from common.reports import ValidationSettings
from rank_svc import records


class FakeMessage:
    """What ``collapse`` reads from a confluent-kafka message (partition 0)."""

    def __init__(self, value: bytes | None, offset: int, millis: int) -> None:
        self._value, self._offset, self._millis = value, offset, millis

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, self._millis


def rate(messages: list[FakeMessage], reports: int, rounds: int = 3) -> float:
    """Best reports/s of ``collapse`` over batches of 5 records."""
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for first in range(0, len(messages), 5):
            records.collapse(messages[first:first + 5], ValidationSettings(), 3)
        best = max(best, reports / (time.perf_counter() - started))
    return best


def main() -> None:
    """Prints the rate over 200,000 reports of a realistic day."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    values = day_reports(bench_day(), 100_000, 2).records
    messages = [FakeMessage(v, i, now_ms) for i, v in enumerate(values)]
    print(f"collapse: {rate(messages, 200_000):,.0f} reports/s on one core")


if __name__ == "__main__":
    main()
