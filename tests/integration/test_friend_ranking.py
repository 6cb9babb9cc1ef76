"""GetFriendRanking end to end: social_svc on MariaDB, boards in Redis, the real servers."""

import random
import time
from datetime import timedelta

import grpc
import pytest

from common.report_rules import day_start
from common.social_cache_format import FRIENDS, CacheSettings, entry_key
from stepboard.v1 import ranking_pb2, social_pb2
from tests.harness import today, wait_until
from tests.integration.test_write_path import send_rows
from tests.model import BoardModel
from tests.processes import stop_process
from tests.social_support import upsert_request
from tests.stack import REDIS_DEPLOYMENTS
from tests.write_path import WritePath


@pytest.fixture
def path():
    """A write path with a private social_svc, on standalone Redis."""
    write_path = WritePath({}, own_social=True)
    yield write_path
    write_path.close()


def random_graph(rng: random.Random, base: int, users: int) -> dict[int, set[int]]:
    """A symmetric graph: some users friendless, most with a few friends, a few with many."""
    ids = [base + i for i in range(1, users + 1)]
    friends: dict[int, set[int]] = {u: set() for u in ids}
    for user in ids:
        degree = rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 20, 40, 120])
        for friend in rng.sample(ids, min(degree, users - 1)):
            if friend != user:
                friends[user].add(friend)
                friends[friend].add(user)
    return friends


def add_graph(path: WritePath, friends: dict[int, set[int]]) -> None:
    for user, others in friends.items():
        for friend in others:
            if user < friend:
                path.social.AddFriendship(
                    social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10
                )


def renew_lists(path: WritePath, users) -> None:
    """Adds a friend to each of ``users`` and removes it again: each list ends as it was
    (seeded graphs stay the same from run to run) but has a new generation, so rank_svc
    must fetch it again."""
    for user in users:
        newcomer = user + 10**6
        path.social.AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=user, friend_id=newcomer), timeout=10
        )
        path.social.RemoveFriendship(
            social_pb2.RemoveFriendshipRequest(user_id=user, friend_id=newcomer), timeout=10
        )


def reference(model: BoardModel, day, user: int, friends: set[int]) -> list[tuple]:
    """``(rank, user_id, steps, reached_at)`` of the user's friend ranking, per docs/design.md."""
    start_s = int(day_start(day).timestamp())
    members = friends | {user}
    reported = [(u, s, start_s + t) for u, s, t in model.ranking(day) if u in members]
    seen = {u for u, _, _ in reported}
    rows = reported + [(u, 0, 0) for u in sorted(members - seen)]
    return [(rank, *row) for rank, row in enumerate(rows, 1)]


def as_tuple(entry: ranking_pb2.RankEntry) -> tuple:
    return (entry.rank, entry.user_id, entry.steps, entry.reached_at.seconds)


def whole_ranking(path: WritePath, user: int, day, page_size: int):
    """Every page of the user's ranking, followed by tokens; and each page's ``me``."""
    entries, mes, token = [], [], ""
    while True:
        reply = path.ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(
                user_id=user, day=day.isoformat(), page_size=page_size, page_token=token
            ),
            timeout=10,
        )
        entries += [as_tuple(e) for e in reply.entries]
        mes.append((as_tuple(reply.me), reply.total))
        token = reply.next_page_token
        if not token:
            return entries, mes


def populate(path: WritePath, rng: random.Random, users: int):
    base = rng.randint(10**12, 10**13)
    friends = random_graph(rng, base, users)
    add_graph(path, friends)
    day = today()
    silent = set(rng.sample(sorted(friends), users // 5))
    rows = [
        (day, u, rng.choice([0, 300, 300, 4000, rng.randint(0, 99_999)]), rng.choice([5, 5, 60]))
        for u in sorted(friends) if u not in silent
        for _ in range(rng.randint(1, 3))
    ]
    rng.shuffle(rows)
    model = send_rows(path, rows)
    path.start_consumer()
    wait_until(lambda: path.store.participants(day) == len(model.ranking(day)), 60)
    return friends, model, day


def test_every_users_paged_ranking_equals_the_reference(path):
    rng = random.Random(29)
    friends, model, day = populate(path, rng, users=250)
    for user, others in friends.items():
        expected = reference(model, day, user, others)
        me = next(row for row in expected if row[1] == user)
        for page_size in (1, 4, 50):
            entries, mes = whole_ranking(path, user, day, page_size)
            assert entries == expected, (user, page_size)
            assert all(m == (me, len(expected)) for m in mes)


def test_around_me_returns_the_page_holding_the_caller(path):
    rng = random.Random(31)
    friends, model, day = populate(path, rng, users=200)
    page_size = 3
    places = {}
    for user, others in friends.items():
        own = reference(model, day, user, others)
        if len(own) < 3 * page_size:
            continue
        index = next(i for i, row in enumerate(own) if row[1] == user)
        where = "top" if index == 0 else "end" if index == len(own) - 1 else "middle"
        if where == "middle" and not page_size <= index < len(own) - page_size:
            continue
        places.setdefault(where, (user, own, index))
    assert sorted(places) == ["end", "middle", "top"]
    for user, own, index in places.values():
        reply = path.ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(
                user_id=user, day=day.isoformat(), page_size=page_size, around_me=True
            ),
            timeout=10,
        )
        first = index - index % page_size
        assert [as_tuple(e) for e in reply.entries] == own[first:first + page_size]
        assert as_tuple(reply.me) == own[index]


def test_tokens_from_another_user_or_day_are_rejected(path):
    rng = random.Random(37)
    friends, _, day = populate(path, rng, users=60)
    user, other = sorted(friends, key=lambda u: -len(friends[u]))[:2]
    first = path.ranking.GetFriendRanking(
        ranking_pb2.GetFriendRankingRequest(user_id=user, day=day.isoformat(), page_size=1),
        timeout=10,
    )
    assert first.next_page_token
    yesterday = (day - timedelta(days=1)).isoformat()
    for user_id, on_day in ((other, day.isoformat()), (user, yesterday)):
        with pytest.raises(grpc.RpcError) as raised:
            path.ranking.GetFriendRanking(
                ranking_pb2.GetFriendRankingRequest(
                    user_id=user_id, day=on_day, page_size=1, page_token=first.next_page_token
                ),
                timeout=10,
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith("page_token: ")


def test_social_down_serves_cached_lists_and_fails_fast_for_others(path):
    rng = random.Random(41)
    friends, model, day = populate(path, rng, users=60)
    cached_user, uncached_user = sorted(friends, key=lambda u: -len(friends[u]))[:2]
    request = ranking_pb2.GetFriendRankingRequest(
        user_id=cached_user, day=day.isoformat(), page_size=500
    )
    fresh = path.ranking.GetFriendRanking(request, timeout=10)
    assert not fresh.stale_friends
    # Changes just before social_svc goes: the next call must try to fetch the list again,
    # fails, and answers from the list it has, flagged.
    renew_lists(path, [cached_user])
    stop_process(path.social_process)
    stale = path.ranking.GetFriendRanking(request, timeout=2)
    assert stale.stale_friends
    assert [as_tuple(e) for e in stale.entries] == reference(
        model, day, cached_user, friends[cached_user]
    )
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        path.ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(user_id=uncached_user, day=day.isoformat()),
            timeout=2,
        )
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 2.0


def test_rankings_never_show_a_non_friend(path):
    rng = random.Random(43)
    friends, _, day = populate(path, rng, users=150)
    for user, others in friends.items():
        entries, _ = whole_ranking(path, user, day, 50)
        assert {e[1] for e in entries} == others | {user}


def test_a_list_longer_than_one_page_is_read_whole(path):
    """1,500 friends: more than one ListFriends page, so the list comes by the stream (and,
    once known to be long, straight by the stream when fetched again after a change)."""
    rng = random.Random(59)
    # Not drawn from rng: the graphs of other seeded tests share the database and must
    # never overlap this user's 1,500 friends.
    user = random.randint(10**12, 10**13)
    others = {user + i for i in range(1, 1501)}
    add_graph(path, {user: others})
    day = today()
    rows = [(day, u, rng.randint(0, 99_999), 5) for u in rng.sample(sorted(others), 300)]
    model = send_rows(path, rows)
    path.start_consumer()
    wait_until(lambda: path.store.participants(day) == len(model.ranking(day)), 60)
    expected = reference(model, day, user, others)
    assert whole_ranking(path, user, day, 500)[0] == expected
    newcomer = user + 1501  # the list changes: the refetch must read the whole list again
    add_graph(path, {user: {newcomer}})
    expected = reference(model, day, user, others | {newcomer})
    assert whole_ranking(path, user, day, 500)[0] == expected


@pytest.mark.parametrize("deployment", sorted(REDIS_DEPLOYMENTS))
def test_a_friendship_change_shows_in_the_next_ranking(deployment):
    """rank_svc keeps a friend list while social_svc's generation of it is unchanged: a
    change shows in the very next ranking, and an unchanged list is not read again (it
    still answers, not flagged stale, with social_svc stopped and its cached copy gone)."""
    path = WritePath(REDIS_DEPLOYMENTS[deployment], own_social=True)
    try:
        user = random.randint(10**12, 10**13)  # a user no other run has befriended
        old, new = user + 1, user + 2
        add_graph(path, {user: {old}})
        day = today()

        def ranking() -> tuple[set[int], bool]:
            reply = path.ranking.GetFriendRanking(
                ranking_pb2.GetFriendRankingRequest(user_id=user, day=day.isoformat()),
                timeout=10,
            )
            return {e.user_id for e in reply.entries}, reply.stale_friends

        assert ranking() == ({user, old}, False)
        add_graph(path, {user: {new}})
        assert ranking() == ({user, old, new}, False)
        path.social.RemoveFriendship(
            social_pb2.RemoveFriendshipRequest(user_id=user, friend_id=old), timeout=10
        )
        assert ranking() == ({user, new}, False)
        stop_process(path.social_process)
        # as if social_svc's copy expired; the generation stays
        namespace = CacheSettings.from_env(path.env).namespace
        path.store.client.delete(entry_key(namespace, FRIENDS, user))
        assert ranking() == ({user, new}, False)
    finally:
        path.close()


@pytest.mark.parametrize("deployment", sorted(REDIS_DEPLOYMENTS))
def test_a_list_and_profiles_social_svc_cached_are_read_without_calling_it(deployment):
    """A rank process that does not hold a user's list yet reads it, and the page's
    profiles, from social_svc's Redis cache: with social_svc stopped, the first ranking
    still answers whole, with nicknames, not flagged stale."""
    path = WritePath(REDIS_DEPLOYMENTS[deployment], own_social=True)
    try:
        user = random.randint(10**12, 10**13)  # a user no other run has befriended
        friends = {user + 1, user + 2}
        add_graph(path, {user: friends})
        names = {u: f"runner {u - user}" for u in (user, *friends)}
        for u, name in names.items():
            path.social.UpsertProfile(
                upsert_request(user_id=u, nickname=name, avatar_url=f"https://a/{u}.png"),
                timeout=10,
            )
        # What any replica's answers leave in social_svc's cache.
        path.social.ListFriends(social_pb2.ListFriendsRequest(user_id=user), timeout=10)
        path.social.GetProfiles(social_pb2.GetProfilesRequest(user_ids=list(names)), timeout=10)
        path.social.GetRankingExclusions(social_pb2.GetRankingExclusionsRequest(
            viewer_id=user, include_opted_out=True), timeout=10)
        stop_process(path.social_process)
        reply = path.ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(user_id=user, day=today().isoformat()),
            timeout=10,
        )
        assert [(e.user_id, e.nickname) for e in reply.entries] == sorted(names.items())
        assert reply.me.nickname == names[user]
        assert not reply.stale_friends
    finally:
        path.close()


def test_an_unchecked_list_in_use_is_refetched_before_it_expires():
    """Without social_svc's cache there are no generations: a list is reused for
    ``STEPBOARD_FRIENDS_FRESH_S``. Past half of that it still answers and is refetched in
    the background, so a friendship added meanwhile shows before the list runs out and no
    call of an active user waits for social_svc."""
    fresh_s = 4.0
    path = WritePath({"STEPBOARD_FRIENDS_FRESH_S": str(fresh_s),
                      "STEPBOARD_SOCIAL_CACHE": "false"}, own_social=True)
    try:
        user = random.randint(10**12, 10**13)  # a user no other run has befriended
        old, new = user + 1, user + 2
        add_graph(path, {user: {old}})
        day = today()

        def members() -> set[int]:
            return {e[1] for e in whole_ranking(path, user, day, 50)[0]}

        assert members() == {user, old}
        cached_at = time.monotonic()
        add_graph(path, {user: {new}})
        time.sleep(fresh_s / 2 + 0.2)
        assert members() == {user, old}  # still fresh: served from the cache
        wait_until(lambda: members() == {user, old, new},
                   fresh_s - (time.monotonic() - cached_at) - 0.3, 0.05)
    finally:
        path.close()
