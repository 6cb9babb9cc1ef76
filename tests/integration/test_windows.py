"""Week and month boards end to end: random reports over several days, out of order and
replayed, through ingest, Kafka and the consumer; then the windows read through Ranking
against the reference model (a week's total is the sum of the daily maxima, reached when
the last of those days was), globally and among friends, on standalone and Cluster."""

import random
from collections.abc import Iterator
from datetime import date, timedelta

import grpc
import pytest
from confluent_kafka import Consumer, TopicPartition

from common.kafka_clients import consumer_config
from common.report_rules import MONTH, WEEK, Window, day_start_s, window_of
from stepboard.v1 import ranking_pb2, social_pb2
from tests.harness import start_process, today, unique, wait_until
from tests.integration.test_hot_users import befriend, hot_path, precomputed
from tests.integration.test_write_path import send_rows
from tests.model import BoardModel
from tests.processes import stop_process
from tests.social_support import STACK_MARIADB, ShardDatabases, fresh_user_base, rpc_error
from tests.stack import REDIS_DEPLOYMENTS
from tests.write_path import PARTITIONS, WritePath

LATE = {"STEPBOARD_LATE_DAYS": "30", "STEPBOARD_BOARD_RETENTION_DAYS": "40"}
PERIODS = {WEEK: ranking_pb2.PERIOD_WEEK, MONTH: ranking_pb2.PERIOD_MONTH}
USERS = 60


@pytest.fixture(params=sorted(REDIS_DEPLOYMENTS))
def late_path(request) -> Iterator[WritePath]:
    """A write path that accepts reports 30 days late, on each Redis deployment."""
    path = WritePath(REDIS_DEPLOYMENTS[request.param] | LATE)
    yield path
    path.close()


def days_to_rank(now: date) -> list[date]:
    """Every day of the previous ISO week, plus days of the previous and current month
    (across the month boundary), all inside the accepted window and before today."""
    previous_week = window_of(now - timedelta(days=7), WEEK)
    days = {previous_week.first + timedelta(days=i) for i in range(7)}
    month_start = now.replace(day=1)
    for offset in (1, 2, 9, 16):
        for day in (month_start - timedelta(days=offset), month_start + timedelta(days=offset - 1)):
            if now - timedelta(days=29) <= day < now:
                days.add(day)
    return sorted(days)


def random_rows(rng: random.Random, days: list[date], base: int) -> list[tuple]:
    """``(day, user, steps, second)`` reports with repeated users, tied steps and seconds
    (so a same-day tie is often improved by an earlier report), duplicates, shuffled."""
    rows = [
        (rng.choice(days), base + rng.randint(1, USERS),
         rng.choice([0, 100, 250, 250, 5000, rng.randint(0, 99_999)]),
         rng.choice([30, 30, 31, 7200, rng.randint(0, 40_000)]))
        for _ in range(2500)
    ]
    rows += rng.sample(rows, len(rows) // 5)
    rng.shuffle(rows)
    return rows


def windows_of(days: list[date]) -> list[Window]:
    return sorted({window_of(day, period) for day in days for period in PERIODS})


def global_top(path: WritePath, window: Window) -> ranking_pb2.GetGlobalTopResponse:
    return path.ranking.GetGlobalTop(ranking_pb2.GetGlobalTopRequest(
        day=window.last.isoformat(), limit=1000, period=PERIODS[window.period]), timeout=10)


def entries(reply) -> list[tuple[int, int, int]]:
    return [(e.user_id, e.steps, e.reached_at.seconds) for e in reply.entries]


def snapshot(path: WritePath, window: Window) -> tuple:
    """Every shard's members and scores of ``window``'s board, and its versions."""
    boards = tuple(
        tuple(path.redis.zrange(path.store.board_key(window, shard), 0, -1, withscores=True))
        for shard in range(path.store.settings.shards)
    )
    return boards, path.store.versions(window)


def committed(path: WritePath, group: str) -> int:
    """How many records ``group`` has committed, over every partition."""
    reader = Consumer(consumer_config(path.kafka, group))
    try:
        found = reader.committed(
            [TopicPartition(path.topic, p) for p in range(PARTITIONS)], timeout=10
        )
    finally:
        reader.close()
    return sum(max(tp.offset, 0) for tp in found)


def check_window(path: WritePath, model: BoardModel, window: Window, friends: dict) -> None:
    """Global top, sampled global ranks and a friend ranking of ``window`` against the model."""
    expected = model.window_ranking(window.first, window.last, day_start_s)
    period = PERIODS[window.period]
    top = global_top(path, window)
    assert (top.window_first_day, top.window_last_day) == (
        window.first.isoformat(), window.last.isoformat())
    assert entries(top) == expected
    assert top.total_participants == len(expected)
    for place, (user_id, total, reached) in enumerate(expected, 1):
        if place % 7 and place != len(expected):
            continue
        reply = path.ranking.GetGlobalRank(ranking_pb2.GetGlobalRankRequest(
            user_id=user_id, day=window.first.isoformat(), period=period), timeout=5)
        assert (reply.entry.rank, reply.entry.steps, reply.entry.reached_at.seconds) == (
            place, total, reached)
        assert reply.total_participants == len(expected)
        assert reply.window_last_day == window.last.isoformat()
    for user_id, others in friends.items():
        circle = {user_id, *others}
        reply = path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
            user_id=user_id, day=window.first.isoformat(), period=period, page_size=500),
            timeout=10)
        ranked = [row for row in expected if row[0] in circle]
        silent = sorted(circle - {row[0] for row in ranked})
        assert entries(reply) == ranked + [(u, 0, 0) for u in silent]
        assert [e.rank for e in reply.entries] == list(range(1, len(circle) + 1))
        assert reply.window_first_day == window.first.isoformat()


def test_windows_equal_the_sum_of_daily_maxima_out_of_order_and_replayed(late_path):
    rng = random.Random(22)
    base = fresh_user_base()
    days = days_to_rank(today())
    rows = random_rows(rng, days, base)
    friends = {base + 1: {base + 2, base + 3, base + 5, base + 8, base + 13, base + USERS + 1}}
    for user, others in friends.items():
        for friend in others:
            late_path.social.AddFriendship(
                social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10)
    model = send_rows(late_path, rows)
    late_path.start_consumer()
    for day in days:
        wait_until(lambda d=day: late_path.matches(model, d, day_start_s(d)), 90)
    windows = windows_of(days)
    assert {w.period for w in windows} == {WEEK, MONTH} and len(windows) >= 4
    for window in windows:
        check_window(late_path, model, window, friends)
    before = {window: snapshot(late_path, window) for window in windows}

    # The same records again, by a second consumer group from the start of the log, and
    # some reports again through ingest: nothing changes, not even a board's version.
    for process in late_path.consumers:
        stop_process(process)
    late_path.consumers.clear()
    send_rows(late_path, rng.sample(rows, 300))
    replay = unique("replay")
    late_path.start_consumer(STEPBOARD_CONSUMER_GROUP=replay)
    end = late_path.log_end(late_path.topic)
    wait_until(lambda: committed(late_path, replay) >= end, 90, 0.5)
    for window in windows:
        assert snapshot(late_path, window) == before[window]
        check_window(late_path, model, window, friends)


def test_day_reads_without_a_period_are_unchanged_and_name_their_window(late_path):
    day = today() - timedelta(days=1)
    model = send_rows(late_path, [(day, 41, 900, 60), (day, 42, 900, 30), (day, 43, 10, 5)])
    late_path.start_consumer()
    wait_until(lambda: late_path.matches(model, day, day_start_s(day)), 60)
    top = late_path.ranking.GetGlobalTop(
        ranking_pb2.GetGlobalTopRequest(day=day.isoformat()), timeout=5)
    start = day_start_s(day)
    assert entries(top) == [(42, 900, start + 30), (41, 900, start + 60), (43, 10, start + 5)]
    assert (top.window_first_day, top.window_last_day) == (day.isoformat(), day.isoformat())
    rank = late_path.ranking.GetGlobalRank(
        ranking_pb2.GetGlobalRankRequest(user_id=41, day=day.isoformat()), timeout=5)
    assert (rank.entry.rank, rank.window_first_day, rank.window_last_day) == (
        2, day.isoformat(), day.isoformat())
    explicit = late_path.ranking.GetGlobalTop(ranking_pb2.GetGlobalTopRequest(
        day=day.isoformat(), period=ranking_pb2.PERIOD_DAY), timeout=5)
    assert explicit == top
    week = late_path.ranking.GetGlobalTop(ranking_pb2.GetGlobalTopRequest(
        day=day.isoformat(), period=ranking_pb2.PERIOD_WEEK), timeout=5)
    assert entries(week) == entries(top)
    assert week.window_first_day == window_of(day, WEEK).first.isoformat()


def test_window_reads_refuse_bad_periods_old_windows_and_day_tokens(late_path):
    day = today() - timedelta(days=1)
    user = fresh_user_base()
    for friend in (user + 1, user + 2):
        late_path.social.AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10)
    calls = [
        (late_path.ranking.GetGlobalTop, ranking_pb2.GetGlobalTopRequest),
        (late_path.ranking.GetGlobalRank, ranking_pb2.GetGlobalRankRequest),
        (late_path.ranking.GetFriendRanking, ranking_pb2.GetFriendRankingRequest),
    ]
    for call, kind in calls:
        request = kind(day=day.isoformat(), period=7)
        if hasattr(request, "user_id"):
            request.user_id = user
        with pytest.raises(grpc.RpcError) as bad:
            call(request, timeout=5)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad.value.details().startswith("period:")
        request.period = ranking_pb2.PERIOD_MONTH
        request.day = (today() - timedelta(days=120)).isoformat()
        with pytest.raises(grpc.RpcError) as old:
            call(request, timeout=5)
        assert old.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert old.value.details().startswith("day: the month")
    page = late_path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
        user_id=user, day=day.isoformat(), page_size=1), timeout=5)
    assert page.next_page_token
    with pytest.raises(grpc.RpcError) as token:
        late_path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
            user_id=user, day=day.isoformat(), page_size=1, page_token=page.next_page_token,
            period=ranking_pb2.PERIOD_WEEK), timeout=5)
    assert token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert token.value.details().startswith("page_token:")


def test_a_hot_users_week_and_month_are_served_precomputed():
    """A friend ranking larger than STEPBOARD_LIVE_RANKING_MAX_USERS is served only
    precomputed, for a week or month as for a day: UNAVAILABLE until precompute has run,
    then equal to the model's window restricted to the user and their friends."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    path = hot_path(databases, threshold=3, interval_s=600, **LATE,
                    STEPBOARD_LIVE_RANKING_MAX_USERS="4")
    try:
        user = fresh_user_base()
        friends = [user + i for i in range(1, 7)]
        befriend(path, user, friends)
        now = today()
        rng = random.Random(5)
        days = sorted({*windows_days(now, WEEK), *windows_days(now, MONTH)})
        rows = [(rng.choice(days), rng.choice([user, *friends[:-1]]), rng.randint(0, 9000),
                 rng.choice([30, 31, rng.randint(0, 40_000)])) for _ in range(200)]
        model = send_rows(path, rows)
        path.start_consumer()
        for day in days:
            wait_until(lambda d=day: path.matches(model, d, day_start_s(d)), 60)
        requests = {period: ranking_pb2.GetFriendRankingRequest(
            user_id=user, day=now.isoformat(), period=PERIODS[period]) for period in PERIODS}
        for request in requests.values():
            refused = rpc_error(path.ranking.GetFriendRanking, request, timeout=10)
            assert refused.code() == grpc.StatusCode.UNAVAILABLE
            assert "STEPBOARD_LIVE_RANKING_MAX_USERS" in refused.details()
        path.consumers.append(start_process("rank_svc.precompute", path.env))
        circle = {user, *friends}
        for period, request in requests.items():
            served = wait_until(lambda r=request: precomputed(path, r), 60, 0.5)
            window = window_of(now, period)
            expected = [row for row in model.window_ranking(window.first, window.last,
                                                            day_start_s) if row[0] in circle]
            silent = sorted(circle - {row[0] for row in expected})
            assert entries(served) == expected + [(u, 0, 0) for u in silent]
            assert served.window_last_day == window.last.isoformat()
    finally:
        path.close()
        databases.drop()


def windows_days(now: date, period: str) -> list[date]:
    """The days of ``now``'s window of ``period`` up to ``now``, inside the late window."""
    window = window_of(now, period)
    first = max(window.first, now - timedelta(days=29))
    return [first + timedelta(days=i) for i in range((now - first).days + 1)]

