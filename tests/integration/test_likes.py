"""Likes end to end: StepIngest.Like → Kafka → consumer process → Redis → Ranking.

Black-box against a model of the likes sent: a random friend graph, likes, unlikes and
repeats from concurrent clients, a wipe of the path's Redis namespace in between (healed
by the consumer's replay), the errors of a bad like, and ListLikes' order and paging.
Each path runs its own social_svc (with CheckFriendship), ingest, consumer and ranking
from this tree, with user ids no other test uses.
"""

import random
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta

import grpc
import pytest

from common.report_rules import accepted_days
from rank_svc.config import ConsumerConfig
from rank_svc.likes import LikeKeys, Liker, LikeReader
from rank_svc.rebuild import rebuild_day
from rank_svc.top_cache import RECHECK_S
from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from tests.harness import report, start_process, today, wait_until
from tests.integration.test_hot_users import hot_path
from tests.processes import stop_process
from tests.social_support import STACK_MARIADB, ShardDatabases
from tests.stack import REDIS_DEPLOYMENTS
from tests.write_path import WritePath


@pytest.fixture(params=sorted(REDIS_DEPLOYMENTS))
def path(request) -> Iterator[WritePath]:
    """An isolated write path with its own social_svc, on each Redis deployment."""
    write_path = WritePath(REDIS_DEPLOYMENTS[request.param], own_social=True)
    yield write_path
    write_path.close()


def user_ids(count: int) -> list[int]:
    """``count`` user ids no other test (or earlier run) uses."""
    base = random.randrange(10**12, 9 * 10**12) * 1000
    return [base + i for i in range(1, count + 1)]


def befriend(path: WritePath, pairs) -> None:
    for a, b in pairs:
        path.social.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b),
                                  timeout=10)


def like(path: WritePath, liker: int, liked: int, day: date, on: bool = True):
    return path.ingest.Like(ingest_pb2.LikeRequest(
        liker_id=liker, liked_id=liked, day=day.isoformat(), liked=on), timeout=10)


def list_likes(path: WritePath, user: int, day: date, size: int = 3):
    """Every page of ``user``'s likers; returns (likers, totals seen, pages)."""
    likers, totals, pages, token = [], set(), 0, ""
    while True:
        reply = path.ranking.ListLikes(ranking_pb2.ListLikesRequest(
            user_id=user, day=day.isoformat(), page_size=size, page_token=token), timeout=10)
        likers += [(e.user_id, e.liked_at.ToMilliseconds()) for e in reply.likers]
        totals.add(reply.total)
        pages += 1
        token = reply.next_page_token
        if not token:
            return likers, totals, pages


class LikeModel:
    """The likes sent, applied in log order: per liked user, who likes them."""

    def __init__(self) -> None:
        self.ops: list[tuple[int, int, int, int, bool]] = []  # (partition, offset, ...)
        self._lock = threading.Lock()

    def sent(self, reply, liker: int, liked: int, on: bool) -> None:
        with self._lock:
            self.ops.append((reply.partition, reply.offset, liker, liked, on))

    def likers(self) -> dict[int, set[int]]:
        state: dict[int, set[int]] = {}
        for _, _, liker, liked, on in sorted(self.ops):  # log order within a partition
            (state.setdefault(liked, set()).add if on
             else state.setdefault(liked, set()).discard)(liker)
        return state


def send_concurrently(path, model, rng, pairs, day, count, clients=4) -> None:
    """``count`` random likes, unlikes and repeats over ``pairs`` from ``clients`` threads."""
    plans = [[(*rng.choice(pairs), rng.random() < 0.7) for _ in range(count // clients)]
             for _ in range(clients)]
    errors = []

    def client(plan):
        try:
            for liker, liked, on in plan:
                model.sent(like(path, liker, liked, day, on), liker, liked, on)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=client, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def mismatches(path, model, users, friends, day) -> list:
    """Where the rankings and listings differ from the model (empty: they agree)."""
    expected = model.likers()
    wrong = []
    for viewer in users:
        reply = path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
            user_id=viewer, day=day.isoformat(), page_size=100), timeout=10)
        assert len(reply.entries) == len(friends[viewer]) + 1
        for entry in [*reply.entries, reply.me]:
            fans = expected.get(entry.user_id, set())
            if (entry.likes, entry.liked_by_me) != (len(fans), viewer in fans):
                wrong.append((viewer, entry.user_id, entry.likes, entry.liked_by_me, fans))
        likers, totals, _ = list_likes(path, viewer, day)
        fans = expected.get(viewer, set())
        if sorted(u for u, _ in likers) != sorted(fans) or totals != {len(fans)}:
            wrong.append(("list", viewer, likers, totals, fans))
        order = [(-at, u) for u, at in likers]
        assert order == sorted(order), "newest first, equal times by id"
    return wrong


def test_like_counts_equal_the_model_through_concurrency_and_a_redis_wipe(path):
    rng = random.Random(23)
    day = today()
    users = user_ids(12)
    edges = {(a, b) for a in users for b in users if a < b and rng.random() < 0.4}
    befriend(path, edges)
    friends = {u: {b for a, b in edges if a == u} | {a for a, b in edges if b == u}
               for u in users}
    pairs = [(a, b) for a, b in edges] + [(b, a) for a, b in edges] + [(u, u) for u in users]
    path.ingest.ReportStepsBatch(ingest_pb2.ReportStepsBatchRequest(
        reports=[report(u, day, 1000 + i, 60) for i, u in enumerate(users)]), timeout=30)
    path.start_consumer()
    model = LikeModel()

    send_concurrently(path, model, rng, pairs, day, 240)
    wait_until(lambda: not mismatches(path, model, users, friends, day), 60)
    assert mismatches(path, model, users, friends, day) == []

    path.drop_keys()  # Redis lost the namespace: boards, likes and watermarks
    send_concurrently(path, model, rng, pairs, day, 120)
    wait_until(lambda: not mismatches(path, model, users, friends, day), 90)

    top = path.ranking.GetGlobalTop(
        ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=100), timeout=10)
    expected = model.likers()
    assert [(e.user_id, e.likes, e.liked_by_me) for e in top.entries] == [
        (e.user_id, len(expected.get(e.user_id, ())), False) for e in top.entries
    ]
    assert len(top.entries) == len(users)
    week = path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
        user_id=users[0], day=day.isoformat(), period=ranking_pb2.PERIOD_WEEK), timeout=10)
    assert {(e.likes, e.liked_by_me) for e in week.entries} == {(0, False)}


def test_bad_likes_are_refused_and_change_nothing(path):
    day = today()
    a, b, stranger = user_ids(3)
    befriend(path, [(a, b)])
    before = path.log_end(path.topic)
    with pytest.raises(grpc.RpcError) as refused:
        like(path, a, stranger, day)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not friends" in refused.value.details()
    oldest, newest = accepted_days(time.time(), 1)
    for bad_day in (newest + timedelta(days=2), oldest - timedelta(days=30)):
        with pytest.raises(grpc.RpcError) as refused:
            like(path, a, b, bad_day)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("day: ")
    for field, request in (("liker_id", (0, b)), ("liked_id", (a, -1))):
        with pytest.raises(grpc.RpcError) as refused:
            like(path, *request, day)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith(f"{field}: ")
    with pytest.raises(grpc.RpcError) as refused:
        path.ingest.Like(ingest_pb2.LikeRequest(liker_id=a, liked_id=b, day="2026-13-01"),
                         timeout=10)
    assert refused.value.details().startswith("day: ")
    assert path.log_end(path.topic) == before
    like(path, a, a, day)  # one's own entry: no friendship needed
    like(path, a, b, day)
    assert path.log_end(path.topic) == before + 2


def test_list_likes_pages_newest_first_and_liked_by_me(path):
    day = today()
    star, *fans = user_ids(8)
    befriend(path, [(star, fan) for fan in fans])
    path.start_consumer()
    for fan in fans:
        like(path, fan, star, day)
        time.sleep(0.01)  # distinct like times
    first = fans[0]
    like(path, first, star, day)  # a repeat keeps the first like's time
    like(path, fans[1], star, day, on=False)
    like(path, fans[2], star, day, on=False)
    like(path, fans[2], star, day)  # liked again: now the newest
    expected = [fans[2], *reversed(fans[3:]), first]
    wait_until(lambda: [u for u, _ in list_likes(path, star, day)[0]] == expected, 30)
    likers, totals, pages = list_likes(path, star, day, size=3)
    assert totals == {len(expected)} and pages == 2
    listed_once = list_likes(path, star, day, size=100)[0]
    assert listed_once == likers
    ranking = path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
        user_id=fans[2], day=day.isoformat(), page_size=10), timeout=10)
    shown = {e.user_id: (e.likes, e.liked_by_me) for e in ranking.entries}
    assert shown[star] == (len(expected), True)
    ranking = path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
        user_id=fans[1], day=day.isoformat(), page_size=10), timeout=10)
    assert {e.user_id: e.liked_by_me for e in ranking.entries}[star] is False

    for bad, field in (({"page_size": 501}, "page_size"), ({"page_token": "x"}, "page_token"),
                       ({"day": "2026-02-30"}, "day"), ({"user_id": 0}, "user_id")):
        request = ranking_pb2.ListLikesRequest(user_id=star, day=day.isoformat())
        for name, value in bad.items():
            setattr(request, name, value)
        with pytest.raises(grpc.RpcError) as refused:
            path.ranking.ListLikes(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith(f"{field}: ")
    other = path.ranking.ListLikes(ranking_pb2.ListLikesRequest(
        user_id=star, day=day.isoformat(), page_size=3), timeout=10).next_page_token
    with pytest.raises(grpc.RpcError) as refused:
        path.ranking.ListLikes(ranking_pb2.ListLikesRequest(
            user_id=first, day=day.isoformat(), page_token=other), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_rebuild_restores_a_days_likes(path):
    day = today()
    star, *fans = user_ids(4)
    befriend(path, [(star, fan) for fan in fans])
    path.start_consumer()
    for fan in fans:
        like(path, fan, star, day)
    like(path, fans[0], star, day, on=False)
    wait_until(lambda: len(list_likes(path, star, day)[0]) == 2, 30)
    before = list_likes(path, star, day)[0]
    for pattern in ("likes", "likers"):  # only the likes are lost, not the watermarks
        for key in path.redis.scan_iter(match=f"{path.store.settings.namespace}:{pattern}:*",
                                        **({"target_nodes": "primaries"}
                                           if hasattr(path.redis, "get_primaries") else {})):
            path.redis.delete(key)
    assert list_likes(path, star, day)[0] == []
    rebuild_day(ConsumerConfig.from_env(path.env), day)
    assert list_likes(path, star, day)[0] == before


def test_pages_cut_inside_equal_like_times_keep_the_id_order(path):
    """Redis orders equal scores by member bytes ("10" before "9"); pages cut inside a run
    of equal times still list it by id, each liker once."""
    day, liked = today(), user_ids(1)[0]
    reader = LikeReader(path.redis, LikeKeys(path.store.settings.namespace, 4))
    key = reader.keys.likers_key(day, liked)
    times = {9: 500, 10: 500, 11: 500, 100: 500, 8: 700, 12: 300, 2: 300}
    path.redis.zadd(key, {str(u): at for u, at in times.items()})
    expected = [Liker(u, at) for u, at in sorted(times.items(), key=lambda i: (-i[1], i[0]))]
    for size in range(1, len(times) + 1):
        listed, after = [], None
        while True:
            page = reader.page(day, liked, size, after)
            listed += page.likers
            assert page.total == len(times) and len(page.likers) <= size
            if not page.more:
                break
            after = page.likers[-1]
        assert listed == expected, size


def test_a_precomputed_ranking_shows_the_current_likes():
    """Likes are read when a page is served, so a hot user's precomputed page shows a like
    given after it was computed, long before the next refresh."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    path = hot_path(databases, threshold=3, interval_s=600)
    try:
        day = today()
        star, *fans = user_ids(5)
        befriend(path, [(star, fan) for fan in fans])
        path.start_consumer()
        precompute = start_process("rank_svc.precompute", path.env)
        path.consumers.append(precompute)  # stopped with the path
        request = ranking_pb2.GetFriendRankingRequest(user_id=star, day=day.isoformat())
        computed = wait_until(lambda: path.ranking.GetFriendRanking(request, timeout=10)
                              .computed_at.seconds, 60)
        like(path, fans[0], star, day)
        like(path, star, fans[1], day)

        def shown():
            reply = path.ranking.GetFriendRanking(request, timeout=10)
            assert reply.computed_at.seconds == computed  # still the same precomputed page
            return {e.user_id: (e.likes, e.liked_by_me) for e in reply.entries}

        wait_until(lambda: shown()[star] == (1, False) and shown()[fans[1]] == (1, True), 30)
        assert reply_me_likes(path, request) == (1, False)
    finally:
        path.close()
        databases.drop()


def reply_me_likes(path, request) -> tuple[int, bool]:
    me = path.ranking.GetFriendRanking(request, timeout=10).me
    return me.likes, me.liked_by_me


def test_like_is_unavailable_while_social_svc_is_down(path):
    day = today()
    a, b = user_ids(2)
    befriend(path, [(a, b)])
    stop_process(path.social_process)  # this path's own social_svc
    path.social_process = None
    before = path.log_end(path.topic)
    with pytest.raises(grpc.RpcError) as refused:
        like(path, a, b, day)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "friend graph" in refused.value.details()
    assert path.log_end(path.topic) == before
    like(path, a, a, day)  # one's own entry needs no friend graph
    assert path.log_end(path.topic) == before + 1


def test_a_cached_global_top_shows_a_new_like(path):
    """A change of a day's like counts bumps its board's versions, so the cached top is
    built again (within the top cache's recheck) and never shows old counts."""
    day = today()
    star, fan = user_ids(2)
    befriend(path, [(star, fan)])
    path.ingest.ReportSteps(ingest_pb2.ReportStepsRequest(report=report(star, day, 500, 60)),
                            timeout=10)
    path.start_consumer()
    request = ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=10)

    def star_likes() -> list[int]:
        return [e.likes for e in path.ranking.GetGlobalTop(request, timeout=10).entries]

    wait_until(lambda: star_likes() == [0], 30)  # built and cached, with no likes
    for on, count in ((True, 1), (False, 0)):
        like(path, fan, star, day, on)
        wait_until(lambda c=count: list_likes(path, star, day)[1] == {c}, 30)  # applied
        time.sleep(RECHECK_S)  # the cache's versions are read again
        assert star_likes() == [count]
