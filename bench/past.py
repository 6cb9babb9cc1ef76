"""Past days of a run: seeded boards, the day archive's throughput against ``LOAD DATA``.

The bench day's board is written by the consumer (the backlog phase); the
``HISTORY_DAYS - 1`` days before it are seeded here through ``BoardWriter.apply``, the
script the consumer runs, so their week and month boards are raised exactly as the
consumer raises them. Every seeded user reports on a day with probability
``REPORT_SHARE`` (a log-normal total, the last report between 06:00 and 22:00 UTC); the
newest archived day holds every user of the graph. The archive databases
(``config.archive_dbs``) are recreated empty by every run, before its services start.
"""

import math
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.config import ARCHIVED_DAYS, HISTORY_DAYS, HISTORY_USERS, REPORT_SHARE, Context
from bench.dataset import connect, friend_lists
from common.mysql_pools import MySQLSettings, ShardPools
from common.progress import Progress
from rank_svc.archive import Archiver, ranked_rows
from rank_svc.archive_schema import migrate
from rank_svc.board_format import encode_score
from rank_svc.board_readers import BoardReader

APPLY_PAIRS = 20_000  # (day, user) scores per BoardWriter.apply call while seeding
LOADED_TABLE = "day_steps_load"  # LOAD DATA's copy of day_steps, beside it on each shard


def history_range(ctx: Context) -> list[date]:
    """The ``HISTORY_DAYS`` days ending on the bench day, oldest first."""
    return [ctx.day - timedelta(days=k) for k in range(HISTORY_DAYS - 1, -1, -1)]


def archived_days(ctx: Context) -> list[date]:
    """The older ``ARCHIVED_DAYS`` days of the history range, oldest first."""
    return history_range(ctx)[:ARCHIVED_DAYS]


def full_day(ctx: Context) -> date:
    """The seeded day that holds every user: the newest archived day."""
    return archived_days(ctx)[-1]


def reset_archive(ctx: Context) -> None:
    """The run's archive shards, dropped, recreated and migrated (empty)."""
    with connect() as conn, conn.cursor() as cur:
        for db in ctx.archive_dbs:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
            cur.execute(f"CREATE DATABASE {db}")
    pools = ShardPools(MySQLSettings.from_env(ctx.env, "ARCHIVE_"))
    try:
        migrate(pools)
    finally:
        pools.close()


def _day_scores(day: date, users: np.ndarray, share: float, rng: np.random.Generator) -> dict:
    """``(day, user) → score`` of a ``share`` of ``users``, drawn, who report on ``day``."""
    users = users[rng.random(users.size) < share]
    totals = np.minimum(100_000, rng.lognormal(math.log(6500), 0.55, users.size)).astype(int)
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    reached = midnight + rng.integers(6 * 3600, 22 * 3600, users.size)
    return {(day, user): encode_score(day, steps, second) for user, steps, second in
            zip(users.tolist(), totals.tolist(), reached.tolist(), strict=True)}


def seed(state) -> dict:
    """Seeds the days before the bench day (see the module docstring); picks
    ``state.history_users``. Returns the pairs written and the apply rate."""
    ctx = state.ctx
    rng = np.random.default_rng(31)
    ranked = [user for user, _ in state.users_at.get("200", [])]
    friends = {u for members in friend_lists(ctx, ranked).values() for u in members}
    state.history_users = rng.choice(
        np.arange(1, ctx.scale.users + 1), min(HISTORY_USERS, ctx.scale.users),
        replace=False).tolist()
    some = np.array(sorted(friends | set(state.history_users)), dtype=np.int64)
    everyone = np.arange(1, ctx.scale.users + 1, dtype=np.int64)
    days = history_range(ctx)[:-1]
    pairs = 0
    started = time.monotonic()
    bar = Progress("seed past days", len(days), "days")
    for day in days:
        full = day == full_day(ctx)
        scores = _day_scores(day, everyone if full else some, 1.0 if full else REPORT_SHARE, rng)
        items = list(scores.items())
        for first in range(0, len(items), APPLY_PAIRS):
            state.store.apply(dict(items[first:first + APPLY_PAIRS]), {})
        pairs += len(items)
        bar.advance(1)
    bar.finish()
    seconds = time.monotonic() - started
    return {"days": len(days), "pairs": pairs, "users_each_day": int(some.size),
            "full_day": full_day(ctx).isoformat(), "full_day_users": int(everyone.size),
            "seconds": round(seconds, 2), "pairs_per_s": round(pairs / seconds)}


def _archiver(state) -> Archiver:
    ctx = state.ctx
    return Archiver(BoardReader(state.redis, state.store.settings),
                    ShardPools(MySQLSettings.from_env(ctx.env, "ARCHIVE_"), local_infile=True))


def _server_variables() -> dict[str, str]:
    """What decides how ``LOAD DATA`` may read a file on this MariaDB."""
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW VARIABLES WHERE Variable_name IN ('local_infile', 'secure_file_priv')")
        return {name: value for name, value in cur.fetchall()}


def _count(db: str, table: str, day: date) -> int:
    with connect(db) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table} WHERE day = %s", (day,))
        return cur.fetchone()[0]


def archive(state) -> dict:
    """The newest archived day (every user) archived by :class:`rank_svc.archive.Archiver`
    into the empty archive shards, then the same rows, in the same order per shard,
    loaded by ``LOAD DATA LOCAL INFILE`` into a copy of the table (``CREATE TABLE ...
    LIKE``: same columns, key and partitions) on the same shards. Each is timed alone:
    the archive from the first board read to the day's marks, ``LOAD DATA`` its
    statements only (the files are written before). The archive's board side alone (its
    ``ranked_rows``: the shards read and merged in rank order) is timed too, as the part
    of the archive's time that is not MySQL's."""
    ctx, day = state.ctx, full_day(state.ctx)
    archiver = _archiver(state)
    try:
        archiver.add_partitions(day)  # the table's DDL, outside both timings
        participants = state.store.participants(day)
        bar = Progress(f"archive {day}", participants, "rows")
        started = time.monotonic()
        archiver.archive_day(day, bar)
        archive_s = time.monotonic() - started
        bar.finish()
        started = time.monotonic()
        rows = list(ranked_rows(archiver.reader, day))  # the archive's board side alone
        read_s = time.monotonic() - started
        per_shard: list[list[str]] = [[] for _ in ctx.archive_dbs]
        for row in rows:
            per_shard[archiver.pools.physical_index(row.user_id)].append(
                f"{row.user_id}\t{day}\t{row.steps}\t{row.reached_at_s}\t{row.global_rank}\n")
    finally:
        archiver.pools.close()
    archived = sum(_count(db, "day_steps", day) for db in ctx.archive_dbs)
    load_s = 0.0
    with tempfile.TemporaryDirectory(prefix="stepboard-bench-") as tmp:
        for db, lines in zip(ctx.archive_dbs, per_shard, strict=True):
            path = Path(tmp) / f"{db}.tsv"
            path.write_text("".join(lines))
            with connect(db) as conn, conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {LOADED_TABLE}")
                cur.execute(f"CREATE TABLE {LOADED_TABLE} LIKE day_steps")
                started = time.monotonic()
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {LOADED_TABLE} FIELDS TERMINATED BY"
                    " '\\t' LINES TERMINATED BY '\\n'"
                    " (user_id, day, steps, reached_at, global_rank)", (str(path),))
                load_s += time.monotonic() - started
    loaded = sum(_count(db, LOADED_TABLE, day) for db in ctx.archive_dbs)
    for db in ctx.archive_dbs:
        with connect(db) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE {LOADED_TABLE}")
    return {"day": day.isoformat(), "participants": participants,
            "archive": {"rows": archived, "seconds": round(archive_s, 2),
                        "rows_per_s": round(archived / archive_s),
                        "board_read_seconds": round(read_s, 2)},
            "load_data": {"rows": loaded, "seconds": round(load_s, 2),
                          "rows_per_s": round(loaded / load_s),
                          "method": "LOAD DATA LOCAL INFILE (pymysql local_infile=True)",
                          "server": _server_variables()}}


def archive_older(state) -> dict:
    """Archives the archived days not archived yet (untimed): the history's older half."""
    days = archived_days(state.ctx)
    archiver = _archiver(state)
    try:
        done = archiver.archived(days[0])
        todo = [day for day in days if day not in done]
        for day in todo:
            archiver.archive_day(day)
    finally:
        archiver.pools.close()
    return {"archived": [day.isoformat() for day in todo]}
