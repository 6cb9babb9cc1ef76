"""Validation of step reports: the rules of docs/design.md, shared by ingest and the consumer.

A report's ``day`` is a local date; the instants that belong to it in some time zone span
from 00:00 at UTC+14 (:func:`day_start`) to 24:00 at UTC-12, 50 hours later.

Every report of the write path passes here twice: ingest judges it with its settings when
the call arrives; the consumer judges it again with the widest limits ingest can be given
(:data:`RECORD_LIMITS`) at that same instant, so it refuses only what no ingest could have
accepted. Times are Unix seconds and the date arithmetic is cached: this is the hot path of
both.
"""

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from common.errors import InvalidArgument
from common.settings import default, read, setting
from stepboard.v1 import ingest_pb2

DAY_SPAN = timedelta(hours=50)
_DAY_SPAN_S = int(DAY_SPAN.total_seconds())
_EARLIEST_OFFSET = timedelta(hours=14)
_EARLIEST_OFFSET_S = int(_EARLIEST_OFFSET.total_seconds())
_LATEST_OFFSET_S = 12 * 3600
# From 00:00 UTC of a day to its end in the last time zone (24:00 at UTC-12).
_DAY_END_S = _DAY_SPAN_S - _EARLIEST_OFFSET_S
_EPOCH = date(1970, 1, 1)
_DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
# The largest values the settings accept (declared in common.settings).
MAX_STEPS_LIMIT = setting("MAX_STEPS_PER_DAY").maximum
MAX_REPORT_ID_CHARS = 128
MAX_LATE_DAYS = setting("LATE_DAYS").maximum
MAX_CLOCK_SKEW_S = setting("CLOCK_SKEW_S").maximum


@dataclass(frozen=True)
class ValidationSettings:
    """Limits applied to every report."""

    max_steps_per_day: int = default("MAX_STEPS_PER_DAY")
    late_days: int = default("LATE_DAYS")
    clock_skew_s: int = default("CLOCK_SKEW_S")
    max_batch: int = default("MAX_BATCH")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ValidationSettings":
        """Reads ``STEPBOARD_MAX_STEPS_PER_DAY``, ``_LATE_DAYS``, ``_CLOCK_SKEW_S``, ``_MAX_BATCH``.
        """
        return cls(
            max_steps_per_day=read(env, "MAX_STEPS_PER_DAY"),
            late_days=read(env, "LATE_DAYS"),
            clock_skew_s=read(env, "CLOCK_SKEW_S"),
            max_batch=read(env, "MAX_BATCH"),
        )


# The widest limits ingest accepts a configuration of: a report ingest accepted at some
# instant passes them at that instant whatever its settings were, so the consumer refuses
# only records no ingest produced (nor one with a lowered late window or step cap).
RECORD_LIMITS = ValidationSettings(
    max_steps_per_day=MAX_STEPS_LIMIT, late_days=MAX_LATE_DAYS, clock_skew_s=MAX_CLOCK_SKEW_S
)


class ValidReport(NamedTuple):
    """A report that passed validation, in the units the boards use."""

    user_id: int
    day: date
    steps: int
    measured_at_s: int  # Unix seconds, truncated to the second


def day_start(day: date) -> datetime:
    """The earliest instant of ``day`` in any time zone: 00:00 at UTC+14."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - _EARLIEST_OFFSET


@functools.lru_cache(maxsize=256)
def day_start_s(day: date) -> int:
    """:func:`day_start` as Unix seconds; cached because the write path needs it per record."""
    return int(day_start(day).timestamp())


@functools.lru_cache(maxsize=1024)
def _day_of(text: str) -> date:
    """``text`` as a date; ValueError with the reason if it is not one (only days are cached)."""
    if not _DAY_PATTERN.fullmatch(text):
        raise ValueError(f"must be a date as YYYY-MM-DD, got {text[:32]!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None


def parse_day(text: str, field: str = "day") -> date:
    """A ``YYYY-MM-DD`` string as a date, or ``InvalidArgument`` naming ``field``."""
    try:
        return _day_of(text)
    except ValueError as error:
        raise InvalidArgument(field, str(error)) from None


@functools.lru_cache(maxsize=1024)
def _epoch_day(days: int) -> date:
    return _EPOCH + timedelta(days=days)


def accepted_days(now_s: float, late_days: int) -> tuple[date, date]:
    """The oldest and newest day a report may carry at Unix time ``now_s``.

    The newest is today at UTC+14; the oldest is today at UTC-12 minus the late window.
    """
    return _accepted_days(int(now_s), late_days)


@functools.lru_cache(maxsize=64)
def _accepted_days(now: int, late_days: int) -> tuple[date, date]:
    newest = _epoch_day((now + _EARLIEST_OFFSET_S) // 86400)
    oldest = _epoch_day((now - _LATEST_OFFSET_S) // 86400 - late_days)
    return oldest, newest


def readable_days(now_s: float, retention_days: int) -> tuple[date, date]:
    """The oldest and newest day whose board may exist at Unix time ``now_s``.

    The newest has begun at UTC+14 (as in :func:`accepted_days`). The oldest is the first
    whose board has not expired: a board expires ``retention_days`` after its day ended
    at UTC-12 (``rank_svc.board_format.expire_at``, a whole second), and Redis drops a key only
    once that instant has passed.
    """
    now = math.ceil(now_s)
    oldest = _epoch_day(-((_DAY_END_S - now) // 86400) - retention_days)
    return oldest, _epoch_day((math.floor(now_s) + _EARLIEST_OFFSET_S) // 86400)


DAY, WEEK, MONTH = "day", "week", "month"


class Window(NamedTuple):
    """The days one ranking covers: a day, the ISO week (Monday to Sunday) of a day, or the
    calendar month of a day. Its board starts at :func:`day_start` of ``first``."""

    period: str  # DAY, WEEK or MONTH
    first: date
    last: date

    @property
    def label(self) -> str:
        """How keys and page tokens name it: ``2026-12-03``, ``2026-W49`` or ``2026-12``."""
        if self.period == WEEK:
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.period == MONTH:
            return f"{self.first.year}-{self.first.month:02d}"
        return self.first.isoformat()


@functools.lru_cache(maxsize=1024)
def window_of(day: date, period: str) -> Window:
    """The window of ``period`` that holds ``day``."""
    if period == WEEK:
        first = day - timedelta(days=day.weekday())
        return Window(WEEK, first, first + timedelta(days=6))
    if period == MONTH:
        first = day.replace(day=1)
        following = (first + timedelta(days=31)).replace(day=1)
        return Window(MONTH, first, following - timedelta(days=1))
    return Window(DAY, day, day)


def retained_days(window: Window, retention_days: int) -> int:
    """How many days after its last day ended (at UTC-12) the board of ``window`` lives.

    A day's board lives ``retention_days``. A week's or month's lives the late window of
    :data:`RECORD_LIMITS` longer: the consumer applies whatever some ingest accepted, up to
    that many days late, so that is the late window the window boards must outlast."""
    return retention_days + (0 if window.period == DAY else RECORD_LIMITS.late_days)


def check_readable(window: Window, now_s: float, retention_days: int) -> None:
    """``InvalidArgument`` naming ``day`` unless the board of ``window`` may exist at Unix
    time ``now_s``: its first day has begun at UTC+14 and its board has not expired."""
    oldest, newest = readable_days(now_s, retained_days(window, retention_days))
    if oldest <= window.last and window.first <= newest:
        return
    if window.period == DAY:
        raise InvalidArgument(
            "day", f"{window.first} has no board: readable days are {oldest} to {newest}"
        )
    raise InvalidArgument(
        "day", f"the {window.period} {window.label} has no board: readable {window.period}s "
        f"end on {oldest} or later and begin on {newest} or earlier"
    )


def accepted_day(text: str, now_s: float, late_days: int, field: str) -> date:
    """``text`` as a day a report (or a like) may carry at Unix time ``now_s``, or
    ``InvalidArgument`` naming ``field`` with the accepted days."""
    day = parse_day(text, field)
    oldest, newest = accepted_days(now_s, late_days)
    if day > newest:
        raise InvalidArgument(field, f"{day} is in the future (latest accepted {newest})")
    if day < oldest:
        raise InvalidArgument(
            field, f"{day} is older than the late window (oldest accepted {oldest})"
        )
    return day


def validate_report(
    report: ingest_pb2.StepReport,
    now_s: float,
    settings: ValidationSettings,
    prefix: str = "",
) -> ValidReport:
    """Checks one report against every rule; the error names the first bad field.

    ``now_s`` is the Unix time the report was accepted (ingest's clock when the call
    arrived; the consumer passes the record's timestamp, which ingest sets to that time).
    ``prefix`` is prepended to field names, such as ``"reports[3]."`` in a batch.
    """
    user_id, steps = report.user_id, report.steps
    if user_id <= 0:
        raise InvalidArgument(prefix + "user_id", f"must be > 0, got {user_id}")
    day = accepted_day(report.day, now_s, settings.late_days, prefix + "day")
    if not 0 <= steps <= settings.max_steps_per_day:
        raise InvalidArgument(
            prefix + "steps", f"must be between 0 and {settings.max_steps_per_day}, got {steps}"
        )
    if not report.HasField("measured_at"):
        raise InvalidArgument(prefix + "measured_at", "is required")
    measured = report.measured_at
    seconds, nanos = measured.seconds, measured.nanos
    if not 0 <= nanos < 1_000_000_000:
        raise InvalidArgument(prefix + "measured_at", f"nanos out of range: {nanos}")
    start = day_start_s(day)
    if not start <= seconds < start + _DAY_SPAN_S:
        raise InvalidArgument(
            prefix + "measured_at", f"is outside {day} in every time zone (UTC-12 to UTC+14)"
        )
    if seconds > now_s + settings.clock_skew_s:
        raise InvalidArgument(prefix + "measured_at", "is in the future")
    if len(report.report_id) > MAX_REPORT_ID_CHARS:
        raise InvalidArgument(
            prefix + "report_id", f"must be at most {MAX_REPORT_ID_CHARS} characters"
        )
    return ValidReport(user_id, day, steps, seconds)
