"""How the daily boards are stored in Redis: their settings, keys and score encoding.

The board writer (:mod:`rank_svc.board_writer`), the readers (:mod:`rank_svc.board_readers`)
and the hot-user rankings (:mod:`rank_svc.hot_rankings`) all go through this module, so
they agree on the format. One board per day is split into ``shards`` sorted sets by
:func:`common.sharding.shard_of`; members are decimal user ids, scores pack steps and the
time the count was reached so that a higher score is a better rank and ``ZADD GT`` is the
max-merge of docs/design.md::

    score = steps * 2**18 + (2**18 - 1 - s),  s = measured_at - day_start(day) in seconds

The week and month boards (*window boards*, :class:`common.report_rules.Window`) rank by
the window's total, the sum of the user's daily maxima, and then by when the total was
reached, the latest ``reached_at`` of those days::

    score = total * 2**22 + (2**22 - 1 - s),  s = reached_at - day_start(first day)

A month spans at most 31 days + 26 hours < 2**22 s, and a total of at most 31 days of
``STEPBOARD_MAX_STEPS_PER_DAY`` (≤ 69,273,666) stays below 2**31: 31 + 22 = 53 bits, exact
in a double (and in Redis's and Lua's numbers).

Equal scores are ordered by user id ascending (:func:`sort_key`), in Python: Redis orders
ties lexicographically, which is not numeric order.

Every function that takes a ``board`` takes a day (a date) or a :class:`Window`.

Each shard also holds an *applied watermark* hash (Kafka partition → last applied offset,
:meth:`BoardKeys.watermark_key`) and, per day, a version counter bumped by every change
(:meth:`BoardKeys.version_key`).
"""

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from common.report_rules import (
    DAY,
    DAY_SPAN,
    MONTH,
    WEEK,
    Window,
    day_start,
    day_start_s,
    retained_days,
)
from common.settings import default, read
from common.sharding import shard_of

TIME_BITS = 18
TIME_SLOTS = 1 << TIME_BITS
WINDOW_TIME_BITS = 22
WINDOW_TIME_SLOTS = 1 << WINDOW_TIME_BITS
# Key prefixes of (board, version) per period: "board" and "boardv" for days.
_PREFIXES = {DAY: ("board", "boardv"), WEEK: ("wboard", "wboardv"), MONTH: ("mboard", "mboardv")}


@dataclass(frozen=True)
class BoardSettings:
    """How boards are split and how long they live."""

    shards: int = default("BOARD_SHARDS")
    retention_days: int = default("BOARD_RETENTION_DAYS")
    namespace: str = default("BOARD_NAMESPACE")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BoardSettings":
        """Reads ``STEPBOARD_BOARD_SHARDS``, ``_BOARD_RETENTION_DAYS``, ``_BOARD_NAMESPACE``."""
        return cls(
            shards=read(env, "BOARD_SHARDS"),
            retention_days=read(env, "BOARD_RETENTION_DAYS"),
            namespace=read(env, "BOARD_NAMESPACE"),
        )


def encode_score(day: date, steps: int, measured_at_s: int) -> int:
    """The board score of ``steps`` reached at Unix second ``measured_at_s`` on ``day``."""
    elapsed = measured_at_s - day_start_s(day)
    return steps * TIME_SLOTS + (TIME_SLOTS - 1 - elapsed)


def encode_window_score(window: Window, total: int, reached_at_s: int) -> int:
    """The window-board score of ``total`` steps reached at Unix second ``reached_at_s``."""
    elapsed = reached_at_s - day_start_s(window.first)
    return total * WINDOW_TIME_SLOTS + (WINDOW_TIME_SLOTS - 1 - elapsed)


def as_window(board: date | Window) -> Window:
    """``board`` as a window (a day is the window of one day)."""
    return board if isinstance(board, Window) else Window(DAY, board, board)


def _slots(window: Window) -> int:
    return TIME_SLOTS if window.period == DAY else WINDOW_TIME_SLOTS


def decode_score(board: date | Window, score: float) -> tuple[int, int]:
    """``(steps, reached_at_s)`` from a score of ``board``."""
    return decode_scores(board, [score])[0]


def decode_scores(board: date | Window, scores: Iterable[float]) -> list[tuple[int, int]]:
    """:func:`decode_score` of each of ``scores``, with the board's arithmetic done once (a
    ranking page decodes up to hundreds)."""
    window = as_window(board)
    slots = _slots(window)
    last_second = day_start_s(window.first) + slots - 1
    decoded = []
    for score in scores:
        steps, rest = divmod(int(score), slots)
        decoded.append((steps, last_second - rest))
    return decoded


@functools.lru_cache(maxsize=256)
def expire_at(board: date | Window, retention_days: int) -> int:
    """Unix time when ``board`` may go: the end of its last day in the last time zone plus
    :func:`common.report_rules.retained_days` (the retention; for a window, plus the late
    window)."""
    window = as_window(board)
    kept = timedelta(days=retained_days(window, retention_days))
    return int((day_start(window.last) + DAY_SPAN + kept).timestamp())


class Row(NamedTuple):
    """One member of a ranking: a user and their board score (None: no report)."""

    user_id: int
    score: int | None


def sort_key(row: Row) -> tuple[int, int]:
    """The design's order among users with a report: higher score first, then lower user id."""
    return (-row.score, row.user_id)


class BoardKeys:
    """The Redis keys of the boards of one namespace (and, for watermarks, one topic)."""

    def __init__(self, settings: BoardSettings, topic: str = "", staging: bool = False) -> None:
        """``staging`` keys are separate board keys, for building a day off to the side."""
        self.settings = settings
        self.topic = topic
        self._suffix = ":staging" if staging else ""

    def board_key(self, board: date | Window, shard: int) -> str:
        """The sorted set of ``board`` for ``shard``; the hash tag keeps a shard on one node
        (its day and window boards included)."""
        return self._key(board, shard, 0)

    def version_key(self, board: date | Window, shard: int) -> str:
        """A counter bumped by every change to ``board`` for ``shard``, so readers can tell
        whether a board changed without reading it."""
        return self._key(board, shard, 1)

    def _key(self, board: date | Window, shard: int, which: int) -> str:
        window = as_window(board)
        kind = _PREFIXES[window.period][which]
        return f"{self.settings.namespace}:{kind}:{{{shard}}}:{window.label}{self._suffix}"

    def watermark_key(self, shard: int) -> str:
        """The applied-offset hash of ``shard`` for the configured topic."""
        return f"{self.settings.namespace}:applied:{{{shard}}}:{self.topic}"

    def shard(self, user_id: int) -> int:
        """The board shard of ``user_id``."""
        return shard_of(user_id, self.settings.shards)
