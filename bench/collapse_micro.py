"""``python -m bench.collapse_micro``: records/s of the consumer's decode + validate +
max-merge step (:func:`rank_svc.records.collapse`) on one core, without Kafka or Redis:
the consumer's Python work per record, measured alone."""

import time
from datetime import UTC, datetime

from bench.config import bench_day
from bench.reports import day_reports
from common.reports import ValidationSettings
from rank_svc import records


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
    """Prints the rate over 200,000 records of a realistic day."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    data = day_reports(bench_day(), 100_000, 2)
    messages = [FakeMessage(k, v, i, now_ms) for i, (k, v) in enumerate(data)]
    print(f"collapse: {rate(messages):,.0f} records/s on one core")


if __name__ == "__main__":
    main()
