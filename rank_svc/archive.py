"""``python -m rank_svc.archive``: writes closed days' final counts to the MySQL day archive.

A day is *closed* once no report can change it: its end at UTC-12, plus the late window
(``STEPBOARD_LATE_DAYS``), plus :data:`CLOSE_MARGIN_S` for a lagging consumer. Looping (no
arguments), every ``STEPBOARD_ARCHIVE_INTERVAL_S`` the job archives each closed day whose
board exists for an hour more (:data:`EXPIRY_MARGIN_S`) and that is not archived yet, then
drops the monthly partitions older than ``STEPBOARD_ARCHIVE_RETENTION_MONTHS``. ``--day
YYYY-MM-DD`` archives one closed day once (again if it already is), with a progress bar on
a terminal; ``migrate`` only applies the schema (:mod:`rank_svc.archive_schema`), which
the other two also do first.

A day's rows are the board's members in the design's order (score descending, then user
id ascending): each board shard is read in chunks of :data:`CHUNK` by ``ZREVRANGE``, with
its runs of equal scores put in user-id order (Redis orders them as strings), and the
shards are merged with ``heapq.merge``; a row's global rank is its place in that order.
Rows go to the user's archive shard in multi-row ``INSERT ... ON DUPLICATE KEY UPDATE``
batches of :data:`CHUNK`, each committed; once every row is in, the day is marked in
``archived_days`` on every shard. So rerunning a day rewrites identical rows and changes
nothing, a crash midway leaves the day unmarked and the next round redoes it, and a
marked day is final.
"""

import argparse
import heapq
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from prometheus_client import Counter, Gauge

from common.errors import InvalidArgument
from common.lifecycle import stop_on_signals
from common.metrics import serve_metrics
from common.mysql_pools import MySQLSettings, ShardPools, migrate_shards
from common.progress import Progress
from common.redis_clients import create_redis
from common.report_rules import DAY_SPAN, day_start_s, parse_day, readable_days
from common.runtime import load
from rank_svc.archive_schema import (
    drop_partitions_before,
    ensure_partitions,
    migrate,
    month_start,
    retention_cutoff,
)
from rank_svc.board_format import Row, decode_scores, sort_key
from rank_svc.board_readers import BoardReader
from rank_svc.config import ArchiveConfig

log = logging.getLogger(__name__)

CHUNK = 5000  # board members read per ZREVRANGE, and rows per INSERT
# A consumer this far behind still lands a closed day's last reports before it is archived.
CLOSE_MARGIN_S = 3600
# A board expiring within this long is not archived: it could vanish while being read.
EXPIRY_MARGIN_S = 3600
_DAY_SPAN_S = int(DAY_SPAN.total_seconds())
T = TypeVar("T")

ROWS = Counter("stepboard_archive_rows_total", "Rows written to the day archive.")
DAYS = Counter("stepboard_archive_days_total", "Days archived.")
LAST_DAY = Gauge(
    "stepboard_archive_last_day_timestamp_seconds", "00:00 UTC of the newest day archived."
)
ERRORS = Counter("stepboard_archive_errors_total", "Archive rounds that failed.")

_INSERT = (
    "INSERT INTO day_steps (user_id, day, steps, reached_at, global_rank)"
    " VALUES (%s, %s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE steps = VALUES(steps), reached_at = VALUES(reached_at),"
    " global_rank = VALUES(global_rank)"
)
_MARK = (
    "INSERT INTO archived_days (day, users, participants) VALUES (%s, %s, %s)"
    " ON DUPLICATE KEY UPDATE users = VALUES(users), participants = VALUES(participants)"
)


class DayRow(NamedTuple):
    """One user's final count of a day, as archived."""

    user_id: int
    steps: int
    reached_at_s: int
    global_rank: int


def is_closed(day: date, now_s: float, late_days: int) -> bool:
    """Whether no report can change ``day`` any more at Unix time ``now_s``."""
    closes_at = day_start_s(day) + _DAY_SPAN_S + late_days * 86400 + CLOSE_MARGIN_S
    return now_s >= closes_at


def oldest_archivable(now_s: float, retention_days: int) -> date:
    """The oldest day whose board still exists at ``now_s`` and for :data:`EXPIRY_MARGIN_S`
    more."""
    return readable_days(now_s + EXPIRY_MARGIN_S, retention_days)[0]


def closed_days(now_s: float, late_days: int, retention_days: int) -> list[date]:
    """The closed days whose board exists for a while yet at ``now_s``, oldest first."""
    day = oldest_archivable(now_s, retention_days)
    days = []
    while is_closed(day, now_s, late_days):
        days.append(day)
        day += timedelta(days=1)
    return days


def shard_rows(reader: BoardReader, day: date, shard: int, chunk: int) -> Iterator[Row]:
    """The members of one board shard of ``day`` in the design's order, read ``chunk`` at a
    time. Redis orders equal scores by member string, so each chunk's last run of equal
    scores waits for the next chunk, which may continue it, before being sorted by id."""
    key = reader.board_key(day, shard)
    pending: list[Row] = []
    start = 0
    while True:
        page = reader.client.zrevrange(key, start, start + chunk - 1, withscores=True)
        start += len(page)
        rows = pending + [Row(int(member), int(score)) for member, score in page]
        if len(page) < chunk:
            yield from sorted(rows, key=sort_key)
            return
        cut = rows[-1].score
        pending = [row for row in rows if row.score == cut]
        yield from sorted((row for row in rows if row.score > cut), key=sort_key)


def ranked_rows(reader: BoardReader, day: date, chunk: int = CHUNK) -> Iterator[DayRow]:
    """Every member of ``day``'s board with their global rank, in rank order."""
    streams = [shard_rows(reader, day, shard, chunk) for shard in range(reader.settings.shards)]
    merged = heapq.merge(*streams, key=sort_key)
    for rank, row in enumerate(merged, 1):
        steps, reached_at_s = decode_scores(day, [row.score])[0]
        yield DayRow(row.user_id, steps, reached_at_s, rank)


class Archiver:
    """Archives days from the boards into the archive shards."""

    def __init__(self, reader: BoardReader, pools: ShardPools, chunk: int = CHUNK) -> None:
        self.reader = reader
        self.pools = pools
        self.chunk = chunk
        self.last_day: date | None = None

    def archive_day(self, day: date, progress: Progress | None = None) -> int:
        """Writes ``day``'s rows and marks it archived on every shard; returns MySQL's
        affected-row count of the rows (an insert counts 1, a changed row 2, an identical
        row 0: so 0 when the day is rerun)."""
        self.add_partitions(day)
        batches: list[list[tuple]] = [[] for _ in self.pools.pools]
        users = [0] * len(self.pools.pools)
        affected = total = 0
        for row in ranked_rows(self.reader, day, self.chunk):
            index = self.pools.physical_index(row.user_id)
            batches[index].append((row.user_id, day, *row[1:]))
            users[index] += 1
            total += 1
            if len(batches[index]) >= self.chunk:
                affected += self._write(index, batches[index], progress)
                batches[index] = []
        for index, batch in enumerate(batches):
            if batch:
                affected += self._write(index, batch, progress)
        for index in range(len(self.pools.pools)):
            self._run(index, lambda cur, i=index: cur.execute(_MARK, (day, users[i], total)))
        log.info("day archived", extra={"day": day.isoformat(), "rows": total,
                                        "affected": affected})
        return affected

    def _write(self, index: int, batch: Sequence[tuple], progress: Progress | None) -> int:
        """Writes one batch to shard ``index`` in one multi-row statement (pymysql joins an
        ``executemany`` of an INSERT into one); returns its affected-row count."""
        affected = self._run(index, lambda cur: cur.executemany(_INSERT, batch))
        ROWS.inc(len(batch))
        if progress is not None:
            progress.advance(len(batch))
        return affected

    def _run(self, index: int, action: Callable[[Any], T]) -> T:
        """Runs ``action(cursor)`` on shard ``index`` and commits; returns its result."""
        conn = self.pools.pools[index].connection()
        try:
            with conn.cursor() as cur:
                result = action(cur)
            conn.commit()
            return result
        finally:
            conn.close()

    def add_partitions(self, through: date) -> None:
        """Adds the monthly partitions up to ``through``'s month on every shard."""
        for index in range(len(self.pools.pools)):
            self._run(index, lambda cur: ensure_partitions(cur, through))

    def archived(self, since: date) -> set[date]:
        """The days from ``since`` marked archived on every shard."""
        found: list[set[date]] = []
        for index in range(len(self.pools.pools)):
            def days(cur) -> set[date]:
                cur.execute("SELECT day FROM archived_days WHERE day >= %s", (since,))
                return {row[0] for row in cur.fetchall()}
            found.append(self._run(index, days))
        return set.intersection(*found)

    def totals(self, first: date, last: date) -> dict[int, tuple[int, int]]:
        """Per user with a row from ``first`` to ``last``: the sum of their steps and their
        latest ``reached_at`` over those days, aggregated by each shard (what a window
        board holds of days whose boards are gone)."""
        found: dict[int, tuple[int, int]] = {}
        for index in range(len(self.pools.pools)):
            def rows(cur) -> tuple:
                cur.execute("SELECT user_id, SUM(steps), MAX(reached_at) FROM day_steps"
                            " WHERE day BETWEEN %s AND %s GROUP BY user_id", (first, last))
                return cur.fetchall()
            found.update((user, (int(steps), reached)) for user, steps, reached in
                         self._run(index, rows))
        return found

    def drop_old(self, today: date, months: int) -> list[str]:
        """Drops the partitions (and forgets the archived days) before the retention cutoff
        on every shard; returns the partitions dropped, per shard in shard order."""
        cutoff = retention_cutoff(today, months)
        dropped: list[str] = []
        for index in range(len(self.pools.pools)):
            dropped += self._run(index, lambda cur: drop_partitions_before(cur, cutoff))
        return dropped

    def run_once(self, now_s: float, late_days: int, retention_months: int) -> list[date]:
        """Archives every closed day not archived yet, then applies retention; returns the
        days archived."""
        today = datetime.fromtimestamp(now_s, UTC).date()
        self.add_partitions(month_start(today, 1))
        days = closed_days(now_s, late_days, self.reader.settings.retention_days)
        done = self.archived(days[0]) if days else set()
        self._newest(done)  # a restarted job reports what earlier runs archived
        archived = []
        for day in days:
            if day in done:
                continue
            self.archive_day(day)
            DAYS.inc()
            self._newest([day])
            archived.append(day)
        self.drop_old(today, retention_months)
        return archived

    def _newest(self, days: Iterable[date]) -> None:
        """Moves the last-archived-day gauge to the newest of ``days`` if it is later."""
        newest = max(days, default=None)
        if newest is not None and (self.last_day is None or newest > self.last_day):
            self.last_day = newest
            LAST_DAY.set(datetime(newest.year, newest.month, newest.day, tzinfo=UTC).timestamp())

    def run(self, stop: threading.Event, late_days: int, interval_s: float,
            retention_months: int) -> None:
        """Rounds every ``interval_s`` until ``stop`` is set; a failed round (Redis or
        MySQL down) is logged and counted, and the next round retries."""
        while not stop.is_set():
            try:
                self.run_once(time.time(), late_days, retention_months)
            except Exception:
                ERRORS.inc()
                log.exception("archive round failed")
            stop.wait(interval_s)


def archive_one(archiver: Archiver, text: str, late_days: int) -> int:
    """``--day``: archives one closed day whose board still exists, with a progress bar on
    a terminal; returns the affected-row count. An open or expired day is refused."""
    try:
        day = parse_day(text, "--day")
    except InvalidArgument as error:
        raise SystemExit(str(error)) from None
    now_s = time.time()
    if not is_closed(day, now_s, late_days):
        raise SystemExit(f"--day: {day} is not closed yet (late window "
                         f"STEPBOARD_LATE_DAYS={late_days} plus {CLOSE_MARGIN_S} s)")
    oldest = oldest_archivable(now_s, archiver.reader.settings.retention_days)
    if day < oldest:
        raise SystemExit(f"--day: the board of {day} has expired or is about to "
                         f"(oldest archivable: {oldest})")
    progress = None
    if sys.stderr.isatty():
        progress = Progress(f"archive {day}", archiver.reader.participants(day), "rows")
    affected = archiver.archive_day(day, progress)
    if progress is not None:
        progress.finish()
    return affected


def main(argv: Sequence[str]) -> None:
    """``migrate``, ``--day YYYY-MM-DD`` once, or the loop until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m rank_svc.archive")
    parser.add_argument("command", nargs="?", choices=("migrate",))
    parser.add_argument("--day", help="archive this closed day once (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        # Only the archive shards: a migration needs no Redis.
        migrate_shards(load("rank_svc.archive",
                            lambda env: MySQLSettings.from_env(env, "ARCHIVE_")), migrate)
        return
    config = load("rank_svc.archive", ArchiveConfig.from_env)
    client = create_redis(config.redis)
    pools = ShardPools(config.archive)
    migrate(pools)  # idempotent: a deployment needs no separate migration step
    archiver = Archiver(BoardReader(client, config.board), pools)
    try:
        if args.day is not None:
            affected = archive_one(archiver, args.day, config.late_days)
            print(f"archived {args.day}: {affected} rows affected")
            return
        serve_metrics(config.metrics_port)
        archiver.run(stop_on_signals(), config.late_days, config.interval_s,
                     config.retention_months)
    finally:
        pools.close()
        client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
