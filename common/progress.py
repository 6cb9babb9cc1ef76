"""A one-line progress bar on stderr for long jobs (the bulk loader, the benchmark)."""

import sys
import threading
import time


class Progress:
    """``[#####     ] 50.0% 5/10 unit 1.2 s``, redrawn at most twice a second."""

    def __init__(self, label: str, total: float, unit: str = "") -> None:
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.done = 0.0
        self._start = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()

    def update(self, done: float) -> None:
        """Sets how much is done."""
        with self._lock:
            self.done = done
            self._redraw()

    def advance(self, amount: float) -> None:
        """Counts ``amount`` more done (safe from several threads)."""
        with self._lock:
            self.done += amount
            self._redraw()

    def _redraw(self) -> None:
        now = time.monotonic()
        if now - self._drawn >= 0.5 or self.done >= self.total:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        share = min(self.done / self.total, 1.0)
        sys.stderr.write(
            f"\r  {self.label:<28} [{'#' * int(share * 30):<30}] {share:6.1%} "
            f"{self.done:,.0f}/{self.total:,.0f} {self.unit} {now - self._start:6.1f} s"
        )
        sys.stderr.flush()

    def finish(self) -> float:
        """Ends the line; returns the elapsed seconds."""
        with self._lock:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
        return time.monotonic() - self._start
