"""The day archive (``python -m rank_svc.archive``) and GetHistory, on the stack's Redis and
MariaDB: boards written with the project's writer in a private namespace, archived into
private archive databases.
"""

import logging
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta

import grpc
import pytest

from common.errors import Unavailable
from common.mysql_pools import ShardAccess, ShardPools
from common.redis_clients import RedisSettings, create_redis
from common.report_rules import day_start_s, readable_days
from rank_svc.archive import Archiver, closed_days
from rank_svc.archive_schema import migrate, month_start, partition_name
from rank_svc.board_format import BoardSettings, decode_score, encode_score
from rank_svc.board_readers import BoardReader
from rank_svc.config import RankConfig
from rank_svc.history import ArchiveReader
from rank_svc.server import build_server
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc
from tests.board_store import BoardStore
from tests.harness import (
    free_port,
    metric,
    service_env,
    start_process,
    today,
    unique,
    wait_until,
)
from tests.processes import stop_process
from tests.social_support import STACK_MARIADB, ShardDatabases, fresh_user_base
from tests.stack import REDIS_DEPLOYMENTS, ROOT

SHARDS = 4


@pytest.fixture
def archive_dbs() -> Iterator[ShardDatabases]:
    """Two private, migrated archive shards on the stack's MariaDB."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB], "ARCHIVE_", migrate)
    yield databases
    databases.drop()


@pytest.fixture
def pools(archive_dbs: ShardDatabases) -> Iterator[ShardPools]:
    shard_pools = ShardPools(archive_dbs.settings(), local_infile=True)
    yield shard_pools
    shard_pools.close()


class Boards(BoardStore):
    """A private board namespace on one Redis deployment, and that deployment's settings
    (``env``) for the processes and servers a test starts."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        settings = BoardSettings(shards=SHARDS, retention_days=40, namespace=unique("arch"))
        BoardStore.__init__(self, create_redis(RedisSettings.from_env(service_env(**env))),
                            settings)

    def service_env(self, **overrides: str) -> dict[str, str]:
        """A process's environment on these boards' Redis and namespace (boards of 40
        days, unless overridden)."""
        return service_env(**self.env, STEPBOARD_BOARD_NAMESPACE=self.settings.namespace,
                           STEPBOARD_BOARD_SHARDS=str(SHARDS),
                           STEPBOARD_BOARD_RETENTION_DAYS="40") | overrides


    def delete(self) -> None:
        """Deletes the namespace's keys and closes the client."""
        keys = list(self.client.scan_iter(match=f"{self.settings.namespace}:*", count=1000))
        for key in keys:  # one at a time: a Cluster refuses multi-key deletes across slots
            self.client.delete(key)
        self.client.close()


@pytest.fixture(params=sorted(REDIS_DEPLOYMENTS))
def boards(request) -> Iterator[Boards]:
    """A private board namespace, on each Redis deployment; deleted afterwards."""
    store = Boards(REDIS_DEPLOYMENTS[request.param])
    yield store
    store.delete()


@pytest.fixture
def standalone_boards() -> Iterator[Boards]:
    """A private board namespace on the standalone Redis (a measurement needs one)."""
    store = Boards(REDIS_DEPLOYMENTS["standalone"])
    yield store
    store.delete()


def write_day(boards: Boards, day: date, counts: dict[int, tuple[int, int]]) -> None:
    """Writes ``user → (steps, seconds after the day's start)`` to ``day``'s board."""
    items = [((day, user), encode_score(day, steps, day_start_s(day) + second))
             for user, (steps, second) in counts.items()]
    for first in range(0, len(items), 20_000):
        boards.apply(dict(items[first:first + 20_000]), {})


def expected_rows(day: date, counts: dict[int, tuple[int, int]]) -> set[tuple]:
    """The archive rows of ``counts``: the design's order, rank = place in it."""
    scores = {user: encode_score(day, steps, day_start_s(day) + s)
              for user, (steps, s) in counts.items()}
    ordered = sorted(scores, key=lambda user: (-scores[user], user))
    return {(user, day, *decode_score(day, scores[user]), rank)
            for rank, user in enumerate(ordered, 1)}


def archive_rows(dbs: ShardDatabases, day: date) -> set[tuple]:
    return set(dbs.query_all(
        "SELECT user_id, day, steps, reached_at, global_rank FROM day_steps WHERE day = %s",
        (day,)))


def checksums(dbs: ShardDatabases) -> list[tuple]:
    return [dbs.query(i, "CHECKSUM TABLE day_steps, archived_days") for i in range(2)]


def tied_counts(base: int, users: int, seed: int) -> dict[int, tuple[int, int]]:
    """Random counts with many exact ties (same steps, same second) across shards."""
    rng = random.Random(seed)
    return {base + i: (rng.choice([0, 500, 500, 1200, rng.randrange(10_000)]),
                       rng.choice([60, 60, rng.randrange(80_000)]))
            for i in range(users)}


def test_an_archived_day_equals_its_board_with_exact_ties_and_a_rerun_changes_nothing(
    boards, archive_dbs, pools
):
    day = today() - timedelta(days=5)
    counts = tied_counts(fresh_user_base(), 1500, seed=1)
    write_day(boards, day, counts)
    # Chunks of 7: runs of equal scores straddle the chunk boundaries of every shard;
    # batches of 40: many loads per archive shard, several in flight at once.
    archiver = Archiver(BoardReader(boards.client, boards.settings), pools, chunk=7, batch=40)

    assert archiver.archive_day(day) == len(counts)  # one insert each
    assert archive_rows(archive_dbs, day) == expected_rows(day, counts)
    marks = archive_dbs.query_all("SELECT day, participants FROM archived_days")
    assert marks == [(day, len(counts)), (day, len(counts))]
    before = checksums(archive_dbs)

    assert archiver.archive_day(day) == 0  # every row identical: nothing affected
    assert checksums(archive_dbs) == before


def test_a_rerun_corrects_a_row_that_differs_and_adds_a_missing_one(boards, archive_dbs, pools):
    """A rerun's loads skip the rows already there; the upsert that follows fixes those
    that differ (2 affected each), and a row lost since is inserted again (1)."""
    day = today() - timedelta(days=5)
    counts = tied_counts(fresh_user_base(), 300, seed=4)
    write_day(boards, day, counts)
    archiver = Archiver(BoardReader(boards.client, boards.settings), pools, batch=50)
    assert archiver.archive_day(day) == len(counts)
    first, second = sorted(counts)[:2]
    for user, statement in ((first, "UPDATE day_steps SET steps = steps + 1, global_rank = 0"
                                    " WHERE user_id = %s AND day = %s"),
                            (second, "DELETE FROM day_steps WHERE user_id = %s AND day = %s")):
        for shard in range(2):
            archive_dbs.query(shard, statement, (user, day))

    assert archiver.archive_day(day) == 2 + 1
    assert archive_rows(archive_dbs, day) == expected_rows(day, counts)


def test_a_shard_refusing_load_data_local_is_written_by_insert(
    boards, archive_dbs, caplog
):
    """Pools opened without ``local_infile``: the server refuses ``LOAD DATA LOCAL``, the
    archive warns once per shard and writes the same rows by upsert."""
    day = today() - timedelta(days=5)
    counts = tied_counts(fresh_user_base(), 300, seed=5)
    write_day(boards, day, counts)
    no_infile = ShardPools(archive_dbs.settings())
    try:
        archiver = Archiver(BoardReader(boards.client, boards.settings), no_infile, batch=50)
        with caplog.at_level(logging.WARNING, "rank_svc.archive"):
            assert archiver.archive_day(day) == len(counts)
            assert archiver.archive_day(day) == 0
    finally:
        no_infile.close()
    assert archive_rows(archive_dbs, day) == expected_rows(day, counts)
    refusals = [r.getMessage() for r in caplog.records if "LOAD DATA LOCAL" in r.getMessage()]
    assert len(refusals) == 2, refusals  # once per archive shard


def test_the_one_shot_command_archives_a_closed_day_and_refuses_an_open_one(
    boards, archive_dbs
):
    day = today() - timedelta(days=3)
    counts = tied_counts(fresh_user_base(), 300, seed=2)
    write_day(boards, day, counts)
    env = boards.service_env(
        STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS=archive_dbs.dsns, STEPBOARD_LATE_DAYS="0"
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rank_svc.archive", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    assert run("migrate").returncode == 0  # already migrated: a no-op
    done = run("--day", day.isoformat())
    assert done.returncode == 0, done.stderr
    assert f"archived {day}: {len(counts)} rows affected" in done.stdout
    assert archive_rows(archive_dbs, day) == expected_rows(day, counts)
    refused = run("--day", today().isoformat())
    assert refused.returncode != 0
    assert "is not closed yet" in refused.stderr
    assert "--day: must be a date" in run("--day", "yesterday").stderr


def test_the_loop_archives_each_closed_day_once_and_redoes_an_unfinished_one(
    boards, archive_dbs, pools
):
    now_s = time.time()
    late_days = 35  # closed and still on a board (40 days): a handful of days
    days = closed_days(now_s, late_days, boards.settings.retention_days)
    assert 1 <= len(days) <= 10
    counts = tied_counts(fresh_user_base(), 50, seed=3)
    write_day(boards, days[-1], counts)
    archiver = Archiver(BoardReader(boards.client, boards.settings), pools)

    assert archiver.run_once(now_s, late_days, 13) == days
    assert archive_rows(archive_dbs, days[-1]) == expected_rows(days[-1], counts)
    assert archiver.run_once(now_s, late_days, 13) == []
    # A crash before the last shard was marked: the day is redone, nothing else.
    archive_dbs.query(1, "DELETE FROM archived_days WHERE day = %s", (days[-1],))
    assert archiver.run_once(now_s, late_days, 13) == [days[-1]]
    assert archive_rows(archive_dbs, days[-1]) == expected_rows(days[-1], counts)


def test_the_looping_job_archives_closed_days_and_counts_them(boards, archive_dbs):
    late_days = 30  # the largest late window: a board of 40 days has a handful closed
    days = closed_days(time.time(), late_days, boards.settings.retention_days)
    counts = tied_counts(fresh_user_base(), 30, seed=7)
    write_day(boards, days[-1], counts)
    port = free_port()
    job = start_process("rank_svc.archive", boards.service_env(
        STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS=archive_dbs.dsns,
        STEPBOARD_LATE_DAYS=str(late_days),
        STEPBOARD_ARCHIVE_INTERVAL_S="1",
        STEPBOARD_METRICS_PORT=str(port),
    ))
    try:
        wait_until(lambda: archive_rows(archive_dbs, days[-1]), 60)
        wait_until(lambda: metric(port, "stepboard_archive_days_total") == len(days), 30)
        newest = day_start_s(days[-1]) + 14 * 3600  # 00:00 UTC
        assert metric(port, "stepboard_archive_last_day_timestamp_seconds") == newest
        assert metric(port, "stepboard_archive_rows_total") == len(counts)
        assert metric(port, "stepboard_archive_errors_total") == 0
    finally:
        assert stop_process(job) == 0, job.log_path.read_text()[-2000:]
    assert archive_rows(archive_dbs, days[-1]) == expected_rows(days[-1], counts)


def partitions(dbs: ShardDatabases, shard: int) -> list[str]:
    return [name for (name,) in dbs.query(
        shard, "SELECT PARTITION_NAME FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA ="
        " DATABASE() AND TABLE_NAME = 'day_steps' ORDER BY PARTITION_ORDINAL_POSITION")]


def test_retention_drops_whole_months_of_partitions(boards, archive_dbs, pools):
    day = today() - timedelta(days=2)
    write_day(boards, day, tied_counts(fresh_user_base(), 40, seed=4))
    archiver = Archiver(BoardReader(boards.client, boards.settings), pools)
    archiver.archive_day(day)
    this_month = month_start(today())
    later = [partition_name(month_start(today(), k)) for k in (1, 2, 3)]
    archiver.add_partitions(month_start(today(), 3))
    assert partitions(archive_dbs, 0)[-4:] == [partition_name(this_month), *later]

    # Thirteen months kept, seen 14 months on: every month up to the next one goes.
    dropped = archiver.drop_old(month_start(today(), 13 + 1), 13)
    assert partition_name(this_month) in dropped
    for shard in range(2):
        assert partitions(archive_dbs, shard) == later[1:]
    assert archive_rows(archive_dbs, day) == set()
    assert archive_dbs.query_all("SELECT day FROM archived_days") == []


class RankServer:
    """An in-process ranking server of the private namespace whose boards it reads live
    ``retention_days``; reading the archive at ``archive_dsns`` ("": without one)."""

    def __init__(self, boards: Boards, retention_days: int,
                 archive_dsns: str, retention_months: int = 13) -> None:
        env = boards.service_env(
            STEPBOARD_BOARD_RETENTION_DAYS=str(retention_days),
            STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS=archive_dsns,
            STEPBOARD_ARCHIVE_RETENTION_MONTHS=str(retention_months),
            STEPBOARD_GRPC_PORT="0",
        )
        self.config = RankConfig.from_env(env)
        self.pools = ShardPools(self.config.archive) if archive_dsns else None
        self.social = grpc.insecure_channel("127.0.0.1:1")  # GetHistory never calls it
        self.built = build_server(self.config, boards.client, self.social, self.pools)
        self.built.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.built.port}")
        self.stub = ranking_pb2_grpc.RankingStub(self.channel)

    def history(
        self, user_id: int, first: date | str, last: date | str
    ) -> ranking_pb2.GetHistoryResponse:
        return self.stub.GetHistory(ranking_pb2.GetHistoryRequest(
            user_id=user_id, from_day=str(first), to_day=str(last)), timeout=10)

    def close(self) -> None:
        self.channel.close()
        self.built.server.stop(0)
        self.social.close()
        if self.pools:
            self.pools.close()


@pytest.fixture
def servers() -> Iterator[list[RankServer]]:
    started: list[RankServer] = []
    yield started
    for server in started:
        server.close()


def error_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_history_is_continuous_across_the_archive_seam(boards, archive_dbs, pools, servers):
    server = RankServer(boards, retention_days=5, archive_dsns=archive_dbs.dsns)
    servers.append(server)
    oldest_live, newest = readable_days(time.time(), 5)
    first = oldest_live - timedelta(days=4)
    days = [first + timedelta(days=i) for i in range((newest - first).days + 1)]
    base = fresh_user_base()
    me = base + 7
    others = tied_counts(base + 100, 200, seed=5)
    no_report = {oldest_live - timedelta(days=2), oldest_live + timedelta(days=2)}
    mine = {day: (1000 + 10 * i, 3600 + i) for i, day in enumerate(days)
            if day not in no_report}
    for day in days:
        write_day(boards, day, others | ({me: mine[day]} if day in mine else {}))
    archiver = Archiver(BoardReader(boards.client, boards.settings), pools)
    archived = [day for day in days if day <= oldest_live + timedelta(days=1)]
    for day in archived:
        archiver.archive_day(day)
    ranks = {day: next(r[-1] for r in expected_rows(day, others | {me: mine[day]})
                       if r[0] == me) for day in archived if day in mine}
    # A late change of an archived day's board is not what history shows: archived is final.
    write_day(boards, oldest_live + timedelta(days=1), {me: (99_999, 7200)})

    reply = server.history(me, first, newest)

    assert [d.day for d in reply.days] == [str(day) for day in days]  # no gap at the seam
    for day, got in zip(days, reply.days, strict=True):
        steps, second = mine.get(day, (0, None))
        assert got.steps == steps, day
        assert got.HasField("reached_at") == (second is not None), day
        if second is not None:
            assert got.reached_at.seconds == day_start_s(day) + second
        assert got.archived == (day in archived), day
        assert got.global_rank == ranks.get(day, 0), day
    assert any(d.global_rank > 1 for d in reply.days)

    # The day before: board expired (for this server) and not archived.
    missing = error_of(lambda: server.history(me, first - timedelta(days=1), first))
    assert missing.code() == grpc.StatusCode.UNAVAILABLE
    assert "not archived yet" in missing.details()

    boards_only = RankServer(boards, retention_days=5, archive_dsns="")
    servers.append(boards_only)
    live = boards_only.history(me, oldest_live, newest)
    on_boards = mine | {oldest_live + timedelta(days=1): (99_999, 7200)}
    assert [d.steps for d in live.days] == [on_boards.get(day, (0, 0))[0] for day in days[4:]]
    assert not any(d.archived or d.global_rank for d in live.days)
    unavailable = error_of(lambda: boards_only.history(me, first, newest))
    assert unavailable.code() == grpc.StatusCode.UNAVAILABLE
    assert "STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS" in unavailable.details()


def test_history_validation_names_the_field(boards, archive_dbs, servers):
    server = RankServer(boards, retention_days=5, archive_dsns=archive_dbs.dsns, retention_months=1)
    servers.append(server)
    day = today()
    cases = [
        ((0, day, day), "user_id: must be > 0"),
        ((1, "2026-02-30", day), "from_day: '2026-02-30' is not a real date"),
        ((1, day, "tomorrow"), "to_day: must be a date"),
        ((1, day, day - timedelta(days=1)), "to_day: "),
        ((1, day - timedelta(days=62), day), "to_day: at most 62 days per call, asked 63"),
        ((1, day, day + timedelta(days=3)), "to_day: "),
        ((1, month_start(day) - timedelta(days=1), day), "from_day: "),
    ]
    for (user, first, last), message in cases:
        error = error_of(lambda u=user, f=first, t=last: server.history(u, f, t))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert error.details().startswith(message), error.details()
    # 62 days pass validation (here: older days are not archived, so UNAVAILABLE).
    long = RankServer(boards, retention_days=5, archive_dsns=archive_dbs.dsns)
    servers.append(long)
    error = error_of(lambda: long.history(1, day - timedelta(days=61), day))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_bytes_per_archived_row(standalone_boards, archive_dbs, pools):
    """Loads a 200,000-user day and reports InnoDB's bytes per row (docs/design.md)."""
    day = today() - timedelta(days=4)
    rng = random.Random(6)
    base = fresh_user_base()
    counts = {base + rng.randrange(10**8): (rng.randrange(30_000), rng.randrange(80_000))
              for _ in range(200_000)}
    write_day(standalone_boards, day, counts)
    reader = BoardReader(standalone_boards.client, standalone_boards.settings)
    Archiver(reader, pools).archive_day(day)
    data = rows = 0
    for shard in range(2):
        archive_dbs.query(shard, "ANALYZE TABLE day_steps")
        (length,), = archive_dbs.query(
            shard, "SELECT SUM(DATA_LENGTH) FROM information_schema.PARTITIONS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'day_steps'")
        (count,), = archive_dbs.query(shard, "SELECT COUNT(*) FROM day_steps")
        data, rows = data + int(length), rows + count
    assert rows == len(counts)
    print(f"\narchive: {data / rows:.1f} bytes per row ({rows:,} rows, {data:,} bytes)")
    assert data / rows < 100  # a compact row: 23 bytes of columns plus InnoDB's overhead


def test_history_is_unavailable_while_the_archive_is_down(boards, servers):
    dead = f"mysql://stepboard:stepboard@127.0.0.1:{free_port()}/stepboard_archive_gone"
    server = RankServer(boards, retention_days=5, archive_dsns=dead)
    servers.append(server)
    started = time.monotonic()
    error = error_of(lambda: server.history(1, today() - timedelta(days=1), today()))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "MySQL shard 0 unavailable" in error.details()
    assert time.monotonic() - started < 10  # within the call's deadline


def test_an_archive_not_migrated_yet_is_unavailable_not_internal():
    """rank_svc may start before the archive job has created its tables."""
    databases = ShardDatabases([STACK_MARIADB], "ARCHIVE_", lambda _pools: None)
    pools = ShardPools(databases.settings())
    try:
        reader = ArchiveReader(ShardAccess(pools, 1.0))
        with pytest.raises(Unavailable, match="no tables yet"):
            reader.days(fresh_user_base() + 1, today() - timedelta(days=9), today())
    finally:
        pools.close()
        databases.drop()
