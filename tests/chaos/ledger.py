"""The ledger of a chaos test: every report that was sent, and which ones got OK.

After healing, the board must be explained by the ledger. With max-merge the board holds,
per user, the best of some set of stored reports; every acknowledged report is stored and
a report that got an error may or may not have been (a timeout after the broker wrote it),
so per user the board entry must be one of the reports sent for that user and at least as
good as the best acknowledged one. "Lost": a user whose board entry is missing or worse than
the ledger's acknowledged best. "Invented": an entry no report sent for that user explains,
or a user on the board the ledger never sent.
"""

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date

from rank_svc.board_format import decode_score
from tests.model import BoardModel
from tests.stack import ROOT
from tests.write_path import WritePath

RESULTS_FILE = ROOT / ".stack" / "logs" / "chaos-results.json"


def _better(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether ``(steps, second)`` entry ``a`` ranks above ``b`` (more steps, then earlier)."""
    return (a[0], -a[1]) > (b[0], -b[1])


@dataclass
class Verdict:
    """How the board compares with the ledger for one day."""

    acknowledged: int
    lost: int
    invented: int

    @property
    def clean(self) -> bool:
        """Nothing acknowledged lost, nothing invented."""
        return self.lost == 0 and self.invented == 0


@dataclass
class Ledger:
    """Thread-safe record of sent and acknowledged reports (all for one day)."""

    day: date
    acknowledged: BoardModel = field(default_factory=BoardModel)
    sent: dict[int, set[tuple[int, int]]] = field(default_factory=dict)
    acknowledged_count: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_sent(self, rows: list[tuple[int, int, int]]) -> None:
        """``(user, steps, second)`` rows about to be sent (before the answer is known)."""
        with self._lock:
            for user_id, steps, second in rows:
                self.sent.setdefault(user_id, set()).add((steps, second))

    def record_ok(self, rows: list[tuple[int, int, int]]) -> None:
        """Rows that got OK."""
        with self._lock:
            self.acknowledged_count += len(rows)
            for user_id, steps, second in rows:
                self.acknowledged.add(self.day, user_id, steps, second)

    def record_refused(self, code: str, count: int) -> None:
        """``count`` reports answered with error ``code`` (a status code name)."""
        with self._lock:
            self.refused[code] = self.refused.get(code, 0) + count

    def verdict(self, path: WritePath, day_start_s: int) -> Verdict:
        """Compares the board of ``path`` (read from Redis) with the ledger."""
        with self._lock:
            sent = {u: set(entries) for u, entries in self.sent.items()}
            best = {(u, s, t) for u, s, t in self.acknowledged.ranking(self.day)}
            count = self.acknowledged_count
        acked = {u: (s, t) for u, s, t in best}
        stored = path.store.scores(self.day, sorted(sent))
        lost = invented = 0
        on_board = 0
        for user_id, entries in sent.items():
            score = stored[user_id]
            entry = None
            if score is not None:
                on_board += 1
                steps, reached = decode_score(self.day, score)
                entry = (steps, reached - day_start_s)
                if entry not in entries:
                    invented += 1
            target = acked.get(user_id)
            if target is not None and (entry is None or _better(target, entry)):
                lost += 1
        invented += max(0, path.store.participants(self.day) - on_board)
        return Verdict(count, lost, invented)

    def converge(
        self, path: WritePath, day_start_s: int, timeout_s: float
    ) -> tuple[Verdict, float]:
        """Polls until the board is clean; returns the last verdict and how long it took."""
        started = time.monotonic()
        while True:
            verdict = self.verdict(path, day_start_s)
            took = time.monotonic() - started
            if verdict.clean or took > timeout_s:
                return verdict, took
            time.sleep(0.25)


def record_result(fault: str, **figures) -> None:
    """Merges one fault's figures into ``.stack/logs/chaos-results.json`` and prints them."""
    figures = {k: asdict(v) if hasattr(v, "__dataclass_fields__") else v
               for k, v in figures.items()}
    figures["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}
    results[fault] = figures
    RESULTS_FILE.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\n[chaos] {fault}: {json.dumps(figures, sort_keys=True)}")
