"""An independent reference model of the boards, written from docs/design.md's semantics.

It never computes a score: it keeps, per (day, user), the highest step count and the
earliest second that count was reported at, and orders by (steps desc, second asc, id asc).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date


@dataclass
class BoardModel:
    """Max-merge of cumulative daily counts, as a plain dictionary."""

    best: dict[tuple[date, int], tuple[int, int]] = field(default_factory=dict)

    def add(self, day: date, user_id: int, steps: int, second: int) -> None:
        """Applies one report (``second``: when it was measured, in whole seconds)."""
        current = self.best.get((day, user_id))
        if current is None or steps > current[0] or (steps == current[0] and second < current[1]):
            self.best[(day, user_id)] = (steps, second)

    def add_all(self, reports: Iterable[tuple[date, int, int, int]]) -> None:
        """Applies ``(day, user, steps, second)`` reports in order."""
        for day, user_id, steps, second in reports:
            self.add(day, user_id, steps, second)

    def ranking(self, day: date) -> list[tuple[int, int, int]]:
        """``(user_id, steps, second)`` of everyone who reported on ``day``, best first."""
        rows = [(u, s, t) for (d, u), (s, t) in self.best.items() if d == day]
        return sorted(rows, key=lambda row: (-row[1], row[2], row[0]))

    def rank_of(self, day: date, user_id: int) -> int | None:
        """1-based global rank of ``user_id`` on ``day``; None if they did not report."""
        for position, row in enumerate(self.ranking(day), 1):
            if row[0] == user_id:
                return position
        return None

    def window_ranking(
        self, first: date, last: date, day_start_s: Callable[[date], int]
    ) -> list[tuple[int, int, int]]:
        """``(user_id, total, reached)`` of everyone who reported on a day from ``first`` to
        ``last``, best first: ``total`` sums their daily maxima, ``reached`` is the latest
        of those days' seconds, as a Unix time (``day_start_s``: a day's first second)."""
        totals: dict[int, list[int]] = {}
        for (day, user_id), (steps, second) in self.best.items():
            if first <= day <= last:
                entry = totals.setdefault(user_id, [0, 0])
                entry[0] += steps
                entry[1] = max(entry[1], day_start_s(day) + second)
        rows = [(u, total, reached) for u, (total, reached) in totals.items()]
        return sorted(rows, key=lambda row: (-row[1], row[2], row[0]))
