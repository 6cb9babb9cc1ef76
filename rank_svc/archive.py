"""``python -m rank_svc.archive``: writes closed days' final counts to the MySQL day archive.

A day is *closed* once no report can change it: its end at UTC-12, plus the late window
(``STEPBOARD_LATE_DAYS``), plus :data:`CLOSE_MARGIN_S` for a lagging consumer. Looping (no
arguments), every ``STEPBOARD_ARCHIVE_INTERVAL_S`` the job archives each closed day whose
board exists for an hour more (:data:`EXPIRY_MARGIN_S`) and that is not archived yet, then
drops the monthly partitions older than ``STEPBOARD_ARCHIVE_RETENTION_MONTHS``. ``--day
YYYY-MM-DD`` archives one closed day once (again if it already is), with a progress bar on
a terminal; ``migrate`` only applies the schema (:mod:`rank_svc.archive_schema`), which
the other two also do first.

A day's rows are the board's members in the design's order (score descending, then user id
ascending): each board shard is read in chunks of :data:`CHUNK` by ``ZRANGE ... REV``, with
its runs of equal scores put in user-id order (Redis orders them as strings), and the
shards are merged page by page (:func:`merged_pages`); a row's global rank is its place in
that order. Rows go to the user's archive shard in batches of :data:`BATCH`, each
committed, written by as many background threads as there are archive shards while the next
batches are read (at most :data:`PENDING_WRITES` per shard wait). A batch is written by
``LOAD DATA LOCAL INFILE ... IGNORE`` from a temporary file; if some of its rows were there
already (a rerun), the load skips them and the batch is then upserted by multi-row ``INSERT
... ON DUPLICATE KEY UPDATE``, so a row that differs is corrected. A shard that refuses
``LOAD DATA LOCAL`` (``local_infile`` off on the server, or a pool opened without it) is
written by the upsert alone, with a warning logged once. Once every row is in, the day is
marked in ``archived_days`` on every shard. So rerunning a day rewrites identical rows and
changes nothing, a crash midway leaves the day unmarked and the next round redoes it, and a
marked day is final.
"""

import argparse
import itertools
import logging
import sys
import tempfile
import threading
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple, TypeVar

import pymysql
from prometheus_client import Counter, Gauge

from common.errors import InvalidArgument
from common.lifecycle import stop_on_signals
from common.metrics import serve_metrics
from common.mysql_pools import MySQLSettings, ShardPools, migrate_shards
from common.progress import Progress
from common.redis_clients import create_redis
from common.report_rules import DAY_SPAN, day_start_s, parse_day, readable_days
from common.runtime import load
from common.sharding import shard_of
from rank_svc.archive_schema import (
    drop_partitions_before,
    ensure_partitions,
    migrate,
    month_start,
    retention_cutoff,
)
from rank_svc.board_format import decode_scores
from rank_svc.board_readers import BoardReader
from rank_svc.config import ArchiveConfig

log = logging.getLogger(__name__)

CHUNK = 10_000  # board members read per ZRANGE ... REV
# Rows per write to one archive shard: small enough that the writes start early and little
# is left to write after the last read (20,000 did better than 10,000 and 50,000 in the
# bench), and below 65,535, where a load's warning count saturates (every duplicate it
# skips warns once, and the count is checked).
BATCH = 20_000
PENDING_WRITES = 2  # batches read and not written yet, per archive shard
# The server's refusal of LOAD DATA LOCAL: MariaDB's, older servers', MySQL 8's.
LOCAL_INFILE_REFUSED = frozenset({4166, 1148, 3948})
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
_LOAD = (
    "LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE day_steps"
    " FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n'"
    " (user_id, day, steps, reached_at, global_rank)"
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


# One board member as read: ``(-score, user_id)``, so that tuple order is the design's order.
Member = tuple[int, int]


def read_page(client: Any, key: str, start: int, stop: int) -> list[Member]:
    """Members ``start`` to ``stop`` of the sorted set ``key`` by descending score, as
    :data:`Member` tuples. Asked as a raw ``ZRANGE ... REV WITHSCORES``: redis-py's
    ``zrevrange`` turns each RESP3 score to text and back for its legacy reply shape. The
    reply is ``[member, score]`` pairs on RESP3, flat on RESP2."""
    reply = client.execute_command("ZRANGE", key, start, stop, "REV", "WITHSCORES")
    if reply and not isinstance(reply[0], list):
        reply = zip(reply[::2], reply[1::2], strict=True)
    return [(-int(float(score)), int(member)) for member, score in reply]


def shard_pages(reader: BoardReader, day: date, shard: int, chunk: int) -> Iterator[list[Member]]:
    """The members of one board shard of ``day`` in the design's order, a page at a time,
    read ``chunk`` at a time. Redis orders equal scores by member string, so each chunk's
    last run of equal scores waits for the next chunk, which may continue it, before being
    sorted by id."""
    key = reader.board_key(day, shard)
    pending: list[Member] = []
    start = 0
    while True:
        page = read_page(reader.client, key, start, start + chunk - 1)
        start += len(page)
        rows = pending + page
        rows.sort()
        if len(page) < chunk:
            if rows:
                yield rows
            return
        cut = bisect_left(rows, (rows[-1][0],))  # where the last run of equal scores starts
        pending = rows[cut:]
        if cut:
            yield rows[:cut]


def merged_pages(streams: Sequence[Iterator[list[Member]]]) -> Iterator[list[Member]]:
    """The members of every stream of pages (each in order) in one order, a page at a time.
    Every member up to the smallest last member buffered from a stream not yet exhausted is
    already buffered (a stream's later members come after its last), so those are taken
    from every buffer and sorted together (runs of a few sorted lists: a C-speed merge)."""
    buffers: list[list[Member]] = [[] for _ in streams]
    taken = [0] * len(streams)  # how much of each buffer was yielded
    live = set(range(len(streams)))  # the streams not exhausted yet
    while True:
        for index in list(live):
            if taken[index] == len(buffers[index]):
                buffers[index], taken[index] = next(streams[index], []), 0
                if not buffers[index]:
                    live.remove(index)
        if not live and all(t == len(b) for t, b in zip(taken, buffers, strict=True)):
            return
        bound = min((buffers[index][-1] for index in live), default=None)
        page: list[Member] = []
        for index, buffer in enumerate(buffers):
            cut = len(buffer) if bound is None else bisect_right(buffer, bound, taken[index])
            page += buffer[taken[index]:cut]
            taken[index] = cut
        page.sort()
        yield page


def ranked_pages(reader: BoardReader, day: date, chunk: int = CHUNK) -> Iterator[list[tuple]]:
    """Every member of ``day``'s board with their global rank, in rank order, a page at a
    time: the fields of :class:`DayRow` as plain tuples (cheaper by the million)."""
    streams = [shard_pages(reader, day, shard, chunk) for shard in range(reader.settings.shards)]
    rank = 0
    for page in merged_pages(streams):
        decoded = decode_scores(day, [-negated for negated, _ in page])
        yield [(user_id, steps, reached_at_s, place)
               for place, (_, user_id), (steps, reached_at_s)
               in zip(itertools.count(rank + 1), page, decoded, strict=False)]
        rank += len(page)


def ranked_rows(reader: BoardReader, day: date, chunk: int = CHUNK) -> Iterator[DayRow]:
    """Every member of ``day``'s board with their global rank, in rank order."""
    for page in ranked_pages(reader, day, chunk):
        yield from map(DayRow._make, page)


def _upsert(cur: Any, day: date, batch: Sequence[tuple]) -> int:
    """Writes ``batch`` (:class:`DayRow`'s fields) of ``day`` by multi-row ``INSERT ... ON
    DUPLICATE KEY UPDATE`` (pymysql joins an ``executemany`` of an INSERT into few
    statements); returns its affected-row count."""
    return cur.executemany(_INSERT, [(user, day, *rest) for user, *rest in batch])


def _load(cur: Any, day: date, batch: Sequence[tuple]) -> int:
    """Writes ``batch`` (:class:`DayRow`'s fields) of ``day`` by ``LOAD DATA LOCAL INFILE
    ... IGNORE`` from a temporary file; returns the affected-row count. The load skips a row
    already there, warning once for each; if it skipped any, the batch is then upserted, so
    a row that differs is corrected and only a changed row adds to the count (2). Any other
    warning (a value the load would have mangled) fails the write: the transaction, not
    committed yet, is rolled back."""
    text = "".join(f"{user}\t{day}\t{steps}\t{reached_at}\t{rank}\n"
                   for user, steps, reached_at, rank in batch)
    with tempfile.NamedTemporaryFile("w", prefix="stepboard-archive-", suffix=".tsv") as file:
        file.write(text)
        file.flush()
        affected = cur.execute(_LOAD, (file.name,))
    skipped = len(batch) - affected
    if cur.warning_count != skipped:
        raise RuntimeError(f"LOAD DATA into day_steps: {cur.warning_count} warnings for "
                           f"{skipped} rows already there: {cur.connection.show_warnings()[:3]}")
    if skipped:
        affected += _upsert(cur, day, batch)
    return affected


class _Writes:
    """Batches written by as many background threads as archive shards (shards on separate
    servers load in parallel) while the next are read; at most :data:`PENDING_WRITES` per
    shard wait, and a write's result is collected in submission order. Metrics and the
    progress bar move, and a write's error is raised, in the reading thread."""

    def __init__(self, write: Callable[[int, Sequence[tuple]], int], shards: int,
                 progress: Progress | None) -> None:
        self._write = write
        self._progress = progress
        self._executor = ThreadPoolExecutor(shards, thread_name_prefix="archive-write")
        self._limit = PENDING_WRITES * shards
        self._pending: deque[tuple[int, Future[int]]] = deque()
        self._affected = 0

    def __enter__(self) -> "_Writes":
        return self

    def __exit__(self, *exc_info: object) -> None:
        # After an error, the pending writes are cancelled or awaited, never left running.
        self._executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, index: int, batch: Sequence[tuple]) -> None:
        """Queues ``batch`` for shard ``index``, first waiting for the oldest if too many
        wait."""
        self._pending.append((len(batch), self._executor.submit(self._write, index, batch)))
        while len(self._pending) > self._limit:
            self._collect()

    def finish(self) -> int:
        """Waits for every write; returns their affected-row count."""
        while self._pending:
            self._collect()
        return self._affected

    def _collect(self) -> None:
        rows, future = self._pending.popleft()
        self._affected += future.result()
        ROWS.inc(rows)
        if self._progress is not None:
            self._progress.advance(rows)


class Archiver:
    """Archives days from the boards into the archive shards."""

    def __init__(self, reader: BoardReader, pools: ShardPools, chunk: int = CHUNK,
                 batch: int = BATCH) -> None:
        self.reader = reader
        self.pools = pools
        self.chunk = chunk
        self.batch = batch
        self.last_day: date | None = None
        self._refused: set[int] = set()  # shards that refused LOAD DATA LOCAL
        self._refusing = threading.Lock()

    def archive_day(self, day: date, progress: Progress | None = None) -> int:
        """Writes ``day``'s rows and marks it archived on every shard; returns MySQL's
        affected-row count of the rows (an insert counts 1, a changed row 2, an identical
        row 0: so 0 when the day is rerun)."""
        self.add_partitions(day)
        batches: list[list[tuple]] = [[] for _ in self.pools.pools]
        users = [0] * len(self.pools.pools)
        total = 0
        write = partial(self._write, day=day)
        with _Writes(write, len(self.pools.pools), progress) as writes:
            for page in ranked_pages(self.reader, day, self.chunk):
                total += len(page)
                for index, row in zip(self._physical_indexes(page), page, strict=True):
                    batches[index].append(row)
                for index, batch in enumerate(batches):
                    while len(batch) >= self.batch:
                        users[index] += self.batch
                        writes.submit(index, batch[:self.batch])
                        batch = batches[index] = batch[self.batch:]
            for index, batch in enumerate(batches):
                if batch:
                    users[index] += len(batch)
                    writes.submit(index, batch)
            affected = writes.finish()
        for index in range(len(self.pools.pools)):
            self._run(index, lambda cur, i=index: cur.execute(_MARK, (day, users[i], total)))
        log.info("day archived", extra={"day": day.isoformat(), "rows": total,
                                        "affected": affected})
        return affected

    def _physical_indexes(self, page: Sequence[tuple]) -> list[int]:
        """The archive shard of each row's user (:meth:`ShardPools.physical_index`, with the
        lookups hoisted out of the loop: this runs once per archived row)."""
        shard_map, logical = self.pools.settings.shard_map, self.pools.settings.logical_shards
        return [shard_map[shard_of(row[0], logical)] for row in page]

    def _write(self, index: int, batch: Sequence[tuple], day: date) -> int:
        """Writes one batch of ``day``'s rows (:class:`DayRow`'s fields) to shard ``index``
        and commits; returns its affected-row count.
        By ``LOAD DATA LOCAL`` unless the shard refused it once (then by upsert, with a
        warning logged that once)."""
        if index not in self._refused:
            try:
                return self._run(index, lambda cur: _load(cur, day, batch))
            except pymysql.err.OperationalError as error:
                if error.args[0] not in LOCAL_INFILE_REFUSED:
                    raise
                with self._refusing:  # two writes to the shard may be refused at once
                    first = index not in self._refused
                    self._refused.add(index)
                if first:
                    log.warning("archive shard %d refuses LOAD DATA LOCAL INFILE (%s): writing"
                                " its rows by INSERT, several times slower", index,
                                error.args[1])
        return self._run(index, lambda cur: _upsert(cur, day, batch))

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
    pools = ShardPools(config.archive, local_infile=True)
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
