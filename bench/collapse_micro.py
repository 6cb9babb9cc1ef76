"""``python -m bench.collapse_micro``: reports/s of the consumer's decode + validate +
max-merge step (:func:`rank_svc.consumed_batch.collapse`) on one core, without Kafka or
Redis: the consumer's Python work per report, measured alone."""

import time
from datetime import UTC, datetime

from bench.config import bench_day
from bench.traffic import day_records
from common.record_format import REPORTS_PER_RECORD
from rank_svc.consumed_batch import collapse
from tests.fake_message import FakeMessage


def rate(messages: list[FakeMessage], reports: int, rounds: int = 3) -> float:
    """Best reports/s of ``collapse`` over batches of about 5,000 reports."""
    per_batch = max(1, 5000 * len(messages) // reports)
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for first in range(0, len(messages), per_batch):
            collapse(messages[first:first + per_batch], 3)
        best = max(best, reports / (time.perf_counter() - started))
    return best


def main() -> None:
    """Prints the rate over 200,000 reports of a realistic day, in either record shape."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for per_record in (1, REPORTS_PER_RECORD):
        found = day_records(bench_day(), 100_000, 2, per_record)
        messages = [FakeMessage(value, i, now_ms) for i, (_, value) in enumerate(found)]
        print(f"collapse, {per_record:,} per record: {rate(messages, 200_000):,.0f} reports/s "
              "on one core")


if __name__ == "__main__":
    main()
