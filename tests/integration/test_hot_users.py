"""Hot users: served from the precomputed ranking, refreshed on time, and never from one
older than their friend list, or than STEPBOARD_HOT_MAX_AGE_S, when it is small enough to
rank per call; a ranking larger than STEPBOARD_LIVE_RANKING_MAX_USERS is served only
precomputed (marked stale when too old)."""

import random
import time

import grpc
import pytest

from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from tests.harness import report, start_process, today, unique, wait_until
from tests.integration.test_friend_ranking import as_tuple, reference, whole_ranking
from tests.integration.test_write_path import send_rows
from tests.processes import stop_process
from tests.social_support import (
    STACK_MARIADB,
    ShardDatabases,
    fresh_user_base,
    load_hot_user,
    rpc_error,
    the_hot_user,
)
from tests.write_path import WritePath

HOT_FRIENDS = 200_000


@pytest.fixture(scope="module")
def hot_graph():
    """Private shard databases holding a bulk-loaded graph with one 200,000-friend user."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    load_hot_user(databases, HOT_FRIENDS, seed=5)
    yield databases
    databases.drop()


def hot_path(
    databases: ShardDatabases, threshold: int, interval_s: float, **settings: str
) -> WritePath:
    """A write path with its own social_svc on ``databases`` and social cache namespace,
    users with more than ``threshold`` friends hot, precompute rounds every ``interval_s``,
    and any other ``settings``."""
    return WritePath(
        {
            "STEPBOARD_MYSQL_SHARD_DSNS": databases.dsns,
            "STEPBOARD_SOCIAL_CACHE_NAMESPACE": unique("sg"),
            "STEPBOARD_HOT_FRIENDS_THRESHOLD": str(threshold),
            "STEPBOARD_PRECOMPUTE_INTERVAL_S": str(interval_s),
            **settings,
        },
        own_social=True,
    )


def test_hot_user_is_served_from_the_precompute_and_refreshed(hot_graph):
    path = hot_path(hot_graph, threshold=100_000, interval_s=3)
    try:
        hot, friends = the_hot_user(path.social, HOT_FRIENDS)
        assert len(friends) == hot.friend_count >= HOT_FRIENDS
        rng = random.Random(47)
        day = today()
        reporters = [*rng.sample(sorted(friends), 4000), hot.user_id]
        rows = [(day, u, rng.choice([100, 100, rng.randint(0, 99_000)]), rng.choice([7, 9]))
                for u in reporters]
        model = send_rows(path, rows, size=1000)
        path.start_consumer()
        wait_until(lambda: path.store.participants(day) == len(reporters), 60)
        expected = reference(model, day, hot.user_id, friends)

        first_page = ranking_pb2.GetFriendRankingRequest(
            user_id=hot.user_id, day=day.isoformat(), page_size=100
        )
        refused = rpc_error(path.ranking.GetFriendRanking, first_page, timeout=30)
        assert refused.code() == grpc.StatusCode.UNAVAILABLE  # too large to rank per call

        started = time.time()
        precompute = start_process("rank_svc.precompute", path.env)
        path.consumers.append(precompute)  # stopped with the path
        served = wait_until(lambda: precomputed(path, first_page), 120, 0.5)
        assert started - 1 <= served.computed_at.seconds <= time.time()
        entries, mes = whole_ranking(path, hot.user_id, day, 500)
        assert entries == expected
        me = next(row for row in expected if row[1] == hot.user_id)
        assert all(m == (me, len(expected)) for m in mes)
        around = path.ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(
                user_id=hot.user_id, day=day.isoformat(), page_size=500, around_me=True
            ),
            timeout=10,
        )
        first = (me[0] - 1) // 500 * 500
        assert [as_tuple(e) for e in around.entries] == expected[first:first + 500]

        newcomer = next(f for f in sorted(friends) if f not in set(reporters))
        path.ingest.ReportSteps(
            ingest_pb2.ReportStepsRequest(report=report(newcomer, day, 99_999, 3)), timeout=10
        )
        refreshed = wait_until(
            lambda: (r := path.ranking.GetFriendRanking(first_page, timeout=10)).entries[0]
            .user_id == newcomer and r, 60, 0.5)
        assert refreshed.computed_at.seconds >= served.computed_at.seconds
    finally:
        path.close()


def test_a_precomputed_ranking_older_than_the_friend_list_is_not_shown():
    """A precomputed ranking computed before the user's friend list last changed is not
    served (it is small enough to rank per call): a removed friend is gone from the very
    next ranking; precompute refreshes the ranking within seconds, long before its next
    round; and a user no longer hot is never shown the ranking from when they were."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    path = hot_path(databases, threshold=3, interval_s=600)
    try:
        user = fresh_user_base()
        friends = [user + i for i in range(1, 6)]
        for friend in friends:
            path.social.AddFriendship(
                social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10
            )
        request = ranking_pb2.GetFriendRankingRequest(user_id=user, day=today().isoformat())

        def ranking() -> tuple[set[int], int, bool]:
            reply = path.ranking.GetFriendRanking(request, timeout=10)
            return {e.user_id for e in reply.entries}, reply.total, reply.HasField("computed_at")

        precompute = start_process("rank_svc.precompute", path.env)
        path.consumers.append(precompute)  # stopped with the path
        assert wait_until(lambda: ranking()[2], 60, 0.5)
        assert ranking() == ({user, *friends}, 6, True)

        def remove(friend: int) -> None:
            path.social.RemoveFriendship(
                social_pb2.RemoveFriendshipRequest(user_id=user, friend_id=friend), timeout=10
            )

        remove(friends[0])
        assert ranking()[:2] == ({user, *friends[1:]}, 5)
        assert wait_until(lambda: ranking() == ({user, *friends[1:]}, 5, True), 20, 0.5)
        remove(friends[1])
        remove(friends[2])  # 2 friends left: no longer hot
        assert ranking()[:2] == ({user, *friends[3:]}, 3)
    finally:
        path.close()
        databases.drop()


def precomputed(
    path: WritePath, request: ranking_pb2.GetFriendRankingRequest
) -> ranking_pb2.GetFriendRankingResponse | None:
    """The ranking asked for if it is served precomputed, else None (computed per call, or
    refused while too large to be: UNAVAILABLE)."""
    try:
        reply = path.ranking.GetFriendRanking(request, timeout=30)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        return None
    return reply if reply.HasField("computed_at") else None


def befriend(path: WritePath, user: int, friends: list[int]) -> None:
    """Makes ``friends`` friends of ``user`` through the path's social_svc."""
    for friend in friends:
        path.social.AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10
        )


def test_a_precomputed_ranking_past_its_age_is_computed_per_call():
    """Precompute stops: once the ranking it left is older than STEPBOARD_HOT_MAX_AGE_S,
    the ranking (small enough) is computed per call, so a friend's new steps show; the
    friend list is unchanged all along (its generation says the ranking is current)."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    path = hot_path(databases, threshold=3, interval_s=1, STEPBOARD_HOT_MAX_AGE_S="3",
                    STEPBOARD_LIVE_RANKING_MAX_USERS="50")
    try:
        user = fresh_user_base()
        friends = [user + i for i in range(1, 6)]
        befriend(path, user, friends)
        day = today()
        request = ranking_pb2.GetFriendRankingRequest(user_id=user, day=day.isoformat())
        precompute = start_process("rank_svc.precompute", path.env)
        path.consumers.append(precompute)  # stopped with the path
        wait_until(lambda: path.ranking.GetFriendRanking(request, timeout=10).HasField(
            "computed_at"), 60, 0.5)
        stop_process(precompute)

        path.ingest.ReportSteps(
            ingest_pb2.ReportStepsRequest(report=report(friends[2], day, 4242, 5)), timeout=10
        )
        path.start_consumer()
        wait_until(lambda: path.store.participants(day) == 1, 60)
        live = wait_until(lambda: not (r := path.ranking.GetFriendRanking(
            request, timeout=10)).HasField("computed_at") and r, 20, 0.5)
        assert (live.entries[0].user_id, live.entries[0].steps) == (friends[2], 4242)
        assert (live.total, live.stale_ranking) == (6, False)
    finally:
        path.close()
        databases.drop()


def test_a_ranking_too_large_to_compute_per_call_is_served_only_precomputed():
    """Above STEPBOARD_LIVE_RANKING_MAX_USERS a ranking is never computed per call: without
    a precomputed one the call is UNAVAILABLE, saying so; a precomputed one is served, and
    once older than STEPBOARD_HOT_MAX_AGE_S (precompute stopped) served marked stale; one
    whose list outgrew the bound since it was computed is served too."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    path = hot_path(databases, threshold=3, interval_s=1, STEPBOARD_HOT_MAX_AGE_S="3",
                    STEPBOARD_LIVE_RANKING_MAX_USERS="50")
    try:
        large, growing = fresh_user_base(), fresh_user_base()
        large_friends = [large + i for i in range(1, 61)]
        growing_friends = [growing + i for i in range(1, 46)]
        befriend(path, large, large_friends)
        befriend(path, growing, growing_friends)

        def request(user: int) -> ranking_pb2.GetFriendRankingRequest:
            return ranking_pb2.GetFriendRankingRequest(
                user_id=user, day=today().isoformat(), page_size=100)

        def ranking(user: int) -> ranking_pb2.GetFriendRankingResponse:
            return path.ranking.GetFriendRanking(request(user), timeout=10)

        refused = rpc_error(ranking, large)
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert "61 users" in refused.details()
        assert "STEPBOARD_LIVE_RANKING_MAX_USERS" in refused.details()

        precompute = start_process("rank_svc.precompute", path.env)
        path.consumers.append(precompute)  # stopped with the path
        served = wait_until(lambda: precomputed(path, request(large)), 60, 0.5)
        assert {e.user_id for e in served.entries} == {large, *large_friends}
        assert (served.total, served.me.user_id, served.stale_ranking) == (61, large, False)
        wait_until(lambda: precomputed(path, request(growing)), 60, 0.5)
        stop_process(precompute)

        befriend(path, growing, [growing + i for i in range(46, 56)])  # 56 users now
        outgrown = ranking(growing)
        assert outgrown.HasField("computed_at") and outgrown.total == 46

        stale = wait_until(lambda: (r := ranking(large)).stale_ranking and r, 20, 0.5)
        assert time.time() - stale.computed_at.seconds > 3
        assert [as_tuple(e) for e in stale.entries] == [as_tuple(e) for e in served.entries]
        # Its last refresh may have come a second after the large one's (whole seconds).
        wait_until(lambda: ranking(growing).stale_ranking, 10, 0.5)
    finally:
        path.close()
        databases.drop()
