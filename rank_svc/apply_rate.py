"""The board consumer's controlled apply rate: a token bucket of reports.

A write storm then waits in Kafka instead of taking Redis and CPU from the readers
(``STEPBOARD_CONSUMER_MAX_REPORTS_PER_S``); its cost is lag, ``excess / rate`` seconds.
The bucket holds up to ``burst`` reports and fills at ``per_s``; it starts full. The
consumer cuts each batch it read to what the bucket holds (every report and every like
counts one), gives the rest back to Kafka and charges what it applies; a single record
beyond the bucket (a record holds up to a whole ``ReportStepsBatch``) is applied and
takes the bucket below zero, a debt paid by waiting before the next read. So over any
stretch the writer applies at most ``burst + per_s * seconds`` reports, plus such a
record. Pure logic: the clock is passed in.
"""

import math

# While throttled, the consumer reads as soon as the bucket holds this long's worth of
# reports: small batches a few times a second rather than one large batch after a long wait.
READ_EVERY_S = 0.1


class ApplyRate:
    """A token bucket of ``burst`` reports refilled at ``per_s`` reports per second."""

    def __init__(self, per_s: float, burst: int, now: float) -> None:
        """``per_s`` > 0 and ``burst`` >= 1; ``now``: a monotonic clock reading."""
        if per_s <= 0 or burst < 1:
            raise ValueError(f"need per_s > 0 and burst >= 1, got {per_s}, {burst}")
        self.per_s = per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at = now
        # The smallest read worth its round trip while throttled (at most the burst).
        self.quantum = min(burst, max(1, math.ceil(per_s * READ_EVERY_S)))

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_s)
        self._at = max(self._at, now)

    def available(self, now: float) -> int:
        """Whole reports the bucket allows now (0 while in debt)."""
        self._refill(now)
        return max(0, math.floor(self._tokens))

    def wait_s(self, now: float) -> float:
        """Seconds until the bucket holds a :attr:`quantum` of reports (0: read now)."""
        self._refill(now)
        return max(0.0, (self.quantum - self._tokens) / self.per_s)

    def take(self, reports: int, now: float) -> None:
        """Charges a batch of ``reports`` about to be applied (possibly past zero: a
        debt)."""
        self._refill(now)
        self._tokens -= reports
