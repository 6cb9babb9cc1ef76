"""GetHistory: one user's days, from the day archive where archived, else from the boards.

A day marked in the archive (:mod:`rank_svc.archive`) is final: it is served from there,
with the global rank at close, even while its board still exists, so a day's answer does
not depend on the range asked. Every other day is read from its board while the board may
exist (:func:`common.report_rules.readable_days`), without a rank. A day that is neither
(its board expired before it was archived: the archive job is behind, or there is no
archive) fails the call with ``UNAVAILABLE`` rather than being listed as 0 steps.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import pymysql

from common.errors import InvalidArgument, Unavailable
from common.mysql_pools import ShardAccess
from common.report_rules import parse_day, readable_days
from rank_svc.archive_schema import retention_cutoff
from rank_svc.board_format import decode_score
from rank_svc.board_readers import BoardReader

MAX_DAYS = 62
# Longest wait for a free archive connection before UNAVAILABLE.
ARCHIVE_POOL_WAIT_S = 1.0
# MySQL's error for a table that does not exist: the archive job has not migrated yet.
_NO_SUCH_TABLE = 1146


class HistoryDay(NamedTuple):
    """One day of a user's history (``reached_at_s`` 0 and ``steps`` 0: no report;
    ``global_rank`` 0 unless archived)."""

    day: date
    steps: int
    reached_at_s: int
    global_rank: int
    archived: bool


class ArchiveReader:
    """Reads one user's archived days from their archive shard."""

    def __init__(self, access: ShardAccess) -> None:
        self.access = access

    def days(self, user_id: int, first: date, last: date) -> dict[date, HistoryDay]:
        """The archived days from ``first`` to ``last`` with the user's row (0 steps, no
        rank, on a day they did not report): one query on the user's shard."""
        shard = self.access.pools.physical_index(user_id)
        try:
            with self.access.cursor(shard) as cur:
                cur.execute(
                    "SELECT a.day, s.steps, s.reached_at, s.global_rank FROM archived_days a"
                    " LEFT JOIN day_steps s ON s.user_id = %s AND s.day = a.day"
                    " WHERE a.day BETWEEN %s AND %s",
                    (user_id, first, last),
                )
                rows = cur.fetchall()
        except pymysql.err.ProgrammingError as error:
            if error.args[0] != _NO_SUCH_TABLE:
                raise
            raise Unavailable(
                f"archive shard {shard} has no tables yet (python -m rank_svc.archive migrate)"
            ) from error
        return {
            day: HistoryDay(day, steps or 0, reached_at or 0, rank or 0, True)
            for day, steps, reached_at, rank in rows
        }


class History:
    """Answers GetHistory from the boards and the archive (None: no archive configured)."""

    def __init__(
        self, store: BoardReader, archive: ArchiveReader | None, retention_months: int
    ) -> None:
        self._store = store
        self._archive = archive
        self._retention_months = retention_months

    def days(
        self, user_id: int, from_text: str, to_text: str, now_s: float
    ) -> list[HistoryDay]:
        """Every day from ``from_text`` to ``to_text`` (at most :data:`MAX_DAYS`), oldest
        first; ``InvalidArgument`` naming the field for a bad request."""
        first, last = self._range(user_id, from_text, to_text, now_s)
        oldest_live, _ = readable_days(now_s, self._store.settings.retention_days)
        found = {} if self._archive is None else self._archive.days(user_id, first, last)
        wanted = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        missing = [day for day in wanted if day < oldest_live and day not in found]
        if missing:
            raise Unavailable(self._why_missing(missing))
        live = [day for day in wanted if day not in found]
        if live:
            for day, score in zip(live, self._store.user_scores(user_id, live), strict=True):
                steps, reached = (0, 0) if score is None else decode_score(day, score)
                found[day] = HistoryDay(day, steps, reached, 0, False)
        return [found[day] for day in wanted]

    def _range(
        self, user_id: int, from_text: str, to_text: str, now_s: float
    ) -> tuple[date, date]:
        """The validated range: real dates, in order, at most :data:`MAX_DAYS`, begun
        somewhere, and (with an archive) not older than its retention."""
        if user_id <= 0:
            raise InvalidArgument("user_id", f"must be > 0, got {user_id}")
        first = parse_day(from_text, "from_day")
        last = parse_day(to_text, "to_day")
        if last < first:
            raise InvalidArgument("to_day", f"{last} is before from_day {first}")
        if (last - first).days + 1 > MAX_DAYS:
            raise InvalidArgument(
                "to_day", f"at most {MAX_DAYS} days per call, asked {(last - first).days + 1}"
            )
        _, newest = readable_days(now_s, self._store.settings.retention_days)
        if last > newest:
            raise InvalidArgument("to_day", f"{last} has not begun anywhere (newest {newest})")
        if self._archive is not None:
            cutoff = retention_cutoff(datetime.fromtimestamp(now_s, UTC).date(),
                                      self._retention_months)
            if first < cutoff:
                raise InvalidArgument(
                    "from_day", f"{first} is older than the archive keeps (oldest {cutoff})"
                )
        return first, last

    def _why_missing(self, missing: Sequence[date]) -> str:
        span = f"{missing[0]} to {missing[-1]}"
        if self._archive is None:
            return (f"days {span} are only in the day archive, which is not configured "
                    "(STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS)")
        return f"days {span} have no board any more and are not archived yet: retry later"
