"""Restores the week and month boards (window boards) from the day archive and the day boards.

The consumer's apply script keeps, for each user and window, total = the sum of the
window's daily counts and reached = the latest of their ``reached_at``: whenever a day rises
by ``b - a`` the window rises by ``b - a`` in the same script. A day whose board has expired
(older than ``STEPBOARD_BOARD_RETENTION_DAYS``, :func:`common.report_rules.readable_days`)
no longer changes: the consumer drops its reports and its value stays frozen in the window,
and in the day archive (:mod:`rank_svc.archive`). So a window is restored, per user, as

    (the user's archived days among the window's expired ones: sum of steps, latest
    reached_at, aggregated by MySQL) + (the user's score on the board of each of the
    window's days still kept, read inside the script)

by :meth:`rank_svc.board_writer.BoardWriter.recompute_window`, atomically per batch of
users. Kept days are read from their boards and never from the archive: after Redis lost
data the consumers' replay raises those boards again and adds what they gain to the
windows, so counting them from the archive too would count them twice. Each later apply
keeps the entry exact, so a restore needs no pause of the consumers and may run while they
replay; rerunning it changes nothing.

The users of a window on one board shard are those with archived rows in its expired days,
the members of its kept days' boards and the members of its board (who leave it if they
have neither). A window with an expired day that is not archived (the archive job was
behind or down, or there is no archive) cannot be restored: it is left as it is, which
keeps whatever it still holds, and reported (:class:`Restored.missing`, an ERROR naming the
days). Used by ``rebuild`` (:mod:`rank_svc.rebuild`) and by the consumer after Redis lost
data (:class:`BackgroundRestore`).
"""

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import NamedTuple

from prometheus_client import Counter

from common.mysql_pools import MySQLSettings, ShardPools
from common.report_rules import MONTH, WEEK, Window, readable_days, retained_days, window_of
from rank_svc.archive import Archiver
from rank_svc.board_readers import BoardReader
from rank_svc.board_writer import BoardWriter, days_of

log = logging.getLogger(__name__)

# Users per script call: a month's call reads about 32 scores per user, a few ms of Redis.
BATCH = 250
# Longest wait between retries of a background restore that failed.
MAX_RETRY_WAIT_S = 60.0

RESTORES = Counter(
    "stepboard_consumer_window_restores_total",
    "Restores of the week and month boards after Redis lost data, by outcome: done, "
    "incomplete (windows with expired days the archive lacks were left alone), failed "
    "(retried).",
    ["outcome"],
)


class Restored(NamedTuple):
    """What restoring one window did: entries changed, users looked at, and the window's
    expired days that are not archived (then nothing was written)."""

    window: Window
    changed: int
    users: int
    missing: list[date]


def restorable_windows(now_s: float, retention_days: int) -> list[Window]:
    """Every week and month whose board may exist at Unix time ``now_s`` and that has
    begun, oldest first."""
    kept = retained_days(Window(WEEK, date.min, date.min), retention_days)
    oldest, newest = readable_days(now_s, kept)
    windows = {window_of(day, period) for day in days_of(Window(WEEK, oldest, newest))
               for period in (WEEK, MONTH)}
    return sorted(windows, key=lambda w: (w.first, w.period))


def split_days(window: Window, now_s: float, retention_days: int) -> tuple[list[date], list[date]]:
    """The days of ``window`` whose boards have expired at ``now_s`` (only in the archive)
    and those whose boards may exist (kept; later days have not begun)."""
    oldest, newest = readable_days(now_s, retention_days)
    days = list(days_of(window))
    return [d for d in days if d < oldest], [d for d in days if oldest <= d <= newest]


class WindowRestorer:
    """Restores window boards through a board writer, with the archive (None: none
    configured, so only windows with no expired day can be restored)."""

    def __init__(self, writer: BoardWriter, archiver: Archiver | None) -> None:
        self.writer = writer
        self.archiver = archiver

    def restore_all(self, windows: Iterable[Window]) -> list[Restored]:
        """Restores each of ``windows``; one that cannot be is logged as an ERROR."""
        done = []
        for window in windows:
            restored = self.restore(window)
            if restored.missing:
                self._report(restored)
            done.append(restored)
        return done

    def restore(self, window: Window) -> Restored:
        """Restores ``window`` on every board shard. Redone if a day's board expired
        meanwhile (the day then counts from the archive)."""
        retention = self.writer.settings.retention_days
        while True:
            started = time.time()
            expired, kept = split_days(window, started, retention)
            archived: dict[int, tuple[int, int]] = {}
            if expired:
                missing = self._unarchived(expired)
                if missing:
                    return Restored(window, 0, 0, missing)
                archived = self.archiver.totals(expired[0], expired[-1])
            by_shard: dict[int, list[int]] = defaultdict(list)
            for user in archived:
                by_shard[self.writer.shard(user)].append(user)
            changed = users = 0
            for shard in range(self.writer.settings.shards):
                shard_changed, shard_users = self._restore_shard(
                    window, shard, kept, archived, by_shard[shard])
                changed, users = changed + shard_changed, users + shard_users
            if split_days(window, time.time(), retention)[0] == expired:
                log.info("window board restored", extra={
                    "window": window.label, "users": users, "changed": changed,
                    "archived_days": len(expired), "seconds": round(time.time() - started, 3)})
                return Restored(window, changed, users, [])

    def _unarchived(self, days: list[date]) -> list[date]:
        """Which of ``days`` are not marked archived on every archive shard (all of them
        without an archive)."""
        if self.archiver is None:
            return days
        marked = self.archiver.archived(days[0])
        return [day for day in days if day not in marked]

    def _restore_shard(
        self, window: Window, shard: int, kept: list[date],
        archived: dict[int, tuple[int, int]], archived_here: list[int],
    ) -> tuple[int, int]:
        """Recomputes every user of ``window`` on ``shard`` in batches (``archived_here``:
        the users of ``archived`` on this shard); returns (entries changed, users)."""
        users = set(archived_here)
        for board in (window, *kept):
            users.update(self._members(self.writer.board_key(board, shard)))
        ordered = sorted(users)
        changed = 0
        for first in range(0, len(ordered), BATCH):
            batch = [(user, *archived.get(user, (0, 0))) for user in ordered[first:first + BATCH]]
            changed += self.writer.recompute_window(window, shard, kept, batch)
        return changed, len(ordered)

    def _members(self, key: str) -> Iterator[int]:
        """Every member of a board shard, in one ``ZRANGE`` (a consistent snapshot however
        the consumers change the board meanwhile; a read by rank in pages could skip a
        member whose neighbour moved)."""
        return (int(member) for member in self.writer.client.zrange(key, 0, -1))

    def _report(self, restored: Restored) -> None:
        days = [day.isoformat() for day in restored.missing]
        if self.archiver is None:
            why = "no day archive is configured (STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS)"
        else:
            why = "they are not archived"
        log.error(f"window board {restored.window.label} not restored: days whose boards "
                  f"have expired are needed and {why}; it keeps what it holds",
                  extra={"window": restored.window.label, "days": days})


@contextmanager
def restorer_for(writer: BoardWriter, archive: MySQLSettings | None) -> Iterator[WindowRestorer]:
    """A restorer writing through ``writer`` and reading the archive shards of ``archive``
    (None: no archive), whose connections close when the block ends."""
    pools = ShardPools(archive) if archive is not None else None
    try:
        archiver = None if pools is None else Archiver(
            BoardReader(writer.client, writer.settings), pools)
        yield WindowRestorer(writer, archiver)
    finally:
        if pools is not None:
            pools.close()


class BackgroundRestore:
    """The consumer's restore of every window after Redis lost data: in a thread, so
    consumption goes on; at most one runs, and a request during a run reruns it once that
    run ends (a restore is idempotent and safe beside the consumers' writes). A run that
    fails (Redis or the archive down) is counted and retried with backoff."""

    def __init__(self, restorer: WindowRestorer, stop: threading.Event) -> None:
        self.restorer = restorer
        self.stop = stop
        self._lock = threading.Lock()
        self._pending = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Asks for a restore of every window whose board may exist."""
        with self._lock:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="window-restore",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        wait_s = 1.0
        while not self.stop.is_set():
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                self._pending = False
            try:
                settings = self.restorer.writer.settings
                windows = restorable_windows(time.time(), settings.retention_days)
                done = self.restorer.restore_all(
                    window for window in windows if not self.stop.is_set())
            except Exception:
                RESTORES.labels("failed").inc()
                log.exception("window restore failed; retrying", extra={"in_s": wait_s})
                with self._lock:
                    self._pending = True
                self.stop.wait(wait_s)
                wait_s = min(wait_s * 2, MAX_RETRY_WAIT_S)
                continue
            left = [r.window.label for r in done if r.missing]
            RESTORES.labels("incomplete" if left else "done").inc()
            log.info("window boards restored", extra={"windows": len(done), "left": left})
        with self._lock:
            self._thread = None

