"""Week and month boards restored after Redis lost data, and by ``rebuild``, from the day
archive (days whose boards expired) and the Kafka log (days still kept), against the
reference model: every user's totals and reached times, the global top, sampled global
ranks and a friend ranking, on standalone and Cluster.

Days whose boards have expired but whose week or month board lives on come from time
passing: the reports are applied by a consumer keeping boards 40 days, the closed days are
archived, then the consumers keep them only a few days (as if those days had passed), so
the older days of the windows exist only in the archive and in the window boards.
"""

import random
import time
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest

from common.mysql_pools import ShardPools
from common.report_rules import MONTH, WEEK, Window, day_start_s, readable_days, window_of
from rank_svc.archive import Archiver
from rank_svc.archive_schema import migrate
from rank_svc.board_format import encode_score
from rank_svc.board_readers import BoardReader
from stepboard.v1 import social_pb2
from tests.harness import start_process, today, wait_until
from tests.integration.test_windows import (
    LATE,
    USERS,
    check_window,
    random_rows,
    snapshot,
    windows_of,
)
from tests.integration.test_write_path import send_rows
from tests.model import BoardModel
from tests.processes import stop_process
from tests.social_support import STACK_MARIADB, ShardDatabases, fresh_user_base
from tests.stack import REDIS_DEPLOYMENTS
from tests.write_path import WritePath


def short_retention(now_s: float) -> int:
    """Board retention (days) under which the oldest kept day is neither a Monday nor a
    1st, so its week and its month each hold expired and kept days."""
    for retention in range(2, 9):
        oldest = readable_days(now_s, retention)[0]
        if oldest.weekday() != 0 and oldest.day != 1:
            return retention
    raise AssertionError("some retention of 2 to 8 days qualifies")


@pytest.fixture
def archive_dbs() -> Iterator[ShardDatabases]:
    """Two private, migrated archive shards on the stack's MariaDB."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB], "ARCHIVE_", migrate)
    yield databases
    databases.drop()


@pytest.fixture(params=sorted(REDIS_DEPLOYMENTS))
def archived_path(request, archive_dbs) -> Iterator[WritePath]:
    """A write path accepting reports 30 days late, with the private archive."""
    path = WritePath(REDIS_DEPLOYMENTS[request.param] | LATE | {
        "STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS": archive_dbs.dsns})
    yield path
    path.close()


def windows_match(path: WritePath, model: BoardModel, windows: list[Window],
                  friends: dict) -> bool:
    """Whether every window's views equal the model's (see test_windows.check_window)."""
    try:
        for window in windows:
            check_window(path, model, window, friends)
    except (AssertionError, grpc.RpcError):  # NOT_FOUND: a user not on the board yet
        return False
    return True


def rebuild(path: WritePath, retention: int, *args: str) -> tuple[int, str]:
    """Runs ``python -m rank_svc.consumer rebuild *args``; its exit status and log."""
    process = start_process("rank_svc.consumer", path.env | {
        "STEPBOARD_BOARD_RETENTION_DAYS": str(retention)}, "rebuild", *args)
    path.consumers.append(process)
    status = process.wait(180)
    return status, process.log_path.read_text()


def test_windows_are_restored_from_the_archive_and_the_log(archived_path, archive_dbs):
    path = archived_path
    rng = random.Random(2205)
    now_s = time.time()
    retention = short_retention(now_s)
    oldest_kept = readable_days(now_s, retention)[0]
    days = [oldest_kept - timedelta(days=10) + timedelta(days=i)
            for i in range((today() - oldest_kept).days + 10)]
    base = fresh_user_base()
    friends = {base + 1: {base + 2, base + 3, base + 5, base + 8, base + 13, base + USERS + 1}}
    for friend in friends[base + 1]:
        path.social.AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=base + 1, friend_id=friend), timeout=10)
    rows = random_rows(rng, days, base)
    model = send_rows(path, rows)
    first = path.start_consumer()
    for day in days:
        wait_until(lambda d=day: path.matches(model, d, day_start_s(d)), 90)
    windows = windows_of(days)
    mixed = [w for w in windows if w.first < oldest_kept <= w.last]
    assert {w.period for w in mixed} == {WEEK, MONTH}
    assert windows_match(path, model, windows, friends)

    # The archive job archives every closed day (an empty one too): here every day of the
    # windows a restore covers, up to the oldest kept one (so that a day expiring during
    # the test is archived as well).
    pools = ShardPools(archive_dbs.settings())
    archiver = Archiver(BoardReader(path.redis, path.store.settings), pools)
    oldest_window_day = readable_days(now_s, retention + 30)[0]  # window boards: 30 more
    day = min(window_of(oldest_window_day, period).first for period in (WEEK, MONTH))
    while day <= oldest_kept:
        archiver.archive_day(day)
        day += timedelta(days=1)
    pools.close()
    stop_process(first)
    path.consumers.remove(first)

    # (a) Consumers keeping boards `retention` days; Redis loses everything mid-week.
    short = {"STEPBOARD_BOARD_RETENTION_DAYS": str(retention)}
    consumer = path.start_consumer(**short)
    time.sleep(3)
    path.drop_keys()
    kept = [day for day in days if day > oldest_kept]
    later = random_rows(rng, kept, base)[:400]
    send_rows(path, later)
    model.add_all(later)
    for day in kept:
        wait_until(lambda d=day: path.matches(model, d, day_start_s(d)), 90)
    wait_until(lambda: windows_match(path, model, windows, friends), 90, 0.5)
    log = consumer.log_path.read_text()
    assert "window boards restored" in log
    assert "not restored" not in log

    # (b) A bad record applied to a kept day raised the day and its week and month:
    # rebuilding the day from the log restores the three.
    bad_day, victim = kept[-1], base + 4
    path.store.apply({(bad_day, victim): encode_score(bad_day, 99_999, day_start_s(bad_day))},
                     {})
    assert not windows_match(path, model, [window_of(bad_day, WEEK)], friends)
    status, log = rebuild(path, retention, "--day", bad_day.isoformat())
    assert status == 0, log[-3000:]
    assert path.matches(model, bad_day, day_start_s(bad_day))
    assert windows_match(path, model, windows, friends)

    # (c) A window board shard lost, another member changed: rebuild --windows.
    damaged = mixed[0]
    path.redis.delete(path.store.board_key(damaged, path.store.shard(base + 1)))
    path.redis.zadd(path.store.board_key(damaged, path.store.shard(base + 2)),
                    {str(base + 2): 1})
    assert not windows_match(path, model, [damaged], friends)
    status, log = rebuild(path, retention, "--windows")
    assert status == 0, log[-3000:]
    assert windows_match(path, model, windows, friends)
    before = {window: snapshot(path, window) for window in windows}
    status, _ = rebuild(path, retention, "--windows")
    assert status == 0
    assert {window: snapshot(path, window) for window in windows} == before  # idempotent


def test_a_window_with_an_expired_day_not_archived_is_left_alone_and_reported(archive_dbs):
    path = WritePath(LATE | {"STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS": archive_dbs.dsns})
    try:
        now_s = time.time()
        retention = short_retention(now_s)
        oldest_kept = readable_days(now_s, retention)[0]
        expired = oldest_kept - timedelta(days=1)
        base = fresh_user_base()
        model = send_rows(path, [(expired, base + 1, 500, 60), (oldest_kept, base + 1, 70, 90),
                                 (oldest_kept, base + 2, 900, 30)])
        path.start_consumer()
        wait_until(lambda: path.matches(model, oldest_kept, day_start_s(oldest_kept)), 90)
        week = window_of(oldest_kept, WEEK)
        for shard in range(path.store.settings.shards):  # a window that lost its board
            path.redis.zadd(path.store.board_key(week, shard), {str(base + 9): 5})
        damaged = snapshot(path, week)

        status, log = rebuild(path, retention, "--windows")
        assert status == 1
        assert f"window board {week.label} not restored" in log
        assert expired.isoformat() in log and "not archived" in log
        assert snapshot(path, week) == damaged  # nothing written

        without = path.env | {"STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS": ""}
        process = start_process("rank_svc.consumer", without | {
            "STEPBOARD_BOARD_RETENTION_DAYS": str(retention)}, "rebuild", "--windows")
        path.consumers.append(process)
        assert process.wait(180) == 1
        assert "STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS" in process.log_path.read_text()
    finally:
        path.close()
