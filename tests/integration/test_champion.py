"""The champion of a friend ranking (GetFriendRankingResponse.champion) end to end: on every
page of every user's ranking, for a day, a week and a month, computed per call or
precomputed, it is the entry ranked 1 on the first page, with its cover."""

import random
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from common.report_rules import DAY, MONTH, WEEK, Window, day_start_s, window_of
from common.social_cache_format import PROFILE, CacheSettings, entry_key
from stepboard.v1 import ranking_pb2, social_pb2
from tests.harness import start_process, today, unique, wait_until
from tests.integration.test_friend_ranking import add_graph, random_graph
from tests.integration.test_hot_users import befriend, hot_path, precomputed
from tests.integration.test_write_path import send_rows
from tests.model import BoardModel
from tests.processes import stop_process
from tests.social_support import STACK_MARIADB, ShardDatabases, fresh_user_base, upsert_request
from tests.stack import REDIS_DEPLOYMENTS
from tests.unit.test_social_cache_format import profile_before_covers
from tests.write_path import WritePath

LATE = {"STEPBOARD_LATE_DAYS": "30", "STEPBOARD_BOARD_RETENTION_DAYS": "40"}
PERIODS = {DAY: ranking_pb2.PERIOD_DAY, WEEK: ranking_pb2.PERIOD_WEEK,
           MONTH: ranking_pb2.PERIOD_MONTH}


@pytest.fixture
def path() -> Iterator[WritePath]:
    """A write path that accepts reports 30 days late, with a private social_svc on fresh
    shard databases (migrated by this tree) and its own cache namespace."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    write_path = WritePath(LATE | {"STEPBOARD_MYSQL_SHARD_DSNS": databases.dsns,
                                   "STEPBOARD_SOCIAL_CACHE_NAMESPACE": unique("sg")},
                           own_social=True)
    yield write_path
    write_path.close()
    databases.drop()


def expected_ranking(model: BoardModel, window: Window, circle: set[int]) -> list[tuple]:
    """``(rank, user_id, steps, reached_at)`` of ``circle``'s ranking of ``window``, per
    docs/design.md: reported users by total, then when reached, then id; the rest by id."""
    ranked = [row for row in model.window_ranking(window.first, window.last, day_start_s)
              if row[0] in circle]
    silent = sorted(circle - {row[0] for row in ranked})
    return [(rank, *row) for rank, row in enumerate(ranked + [(u, 0, 0) for u in silent], 1)]


def as_tuple(entry: ranking_pb2.RankEntry) -> tuple:
    return (entry.rank, entry.user_id, entry.steps, entry.reached_at.seconds)


def ranking_pages(
    path: WritePath, user: int, day: date, period: int, page_size: int
) -> list[ranking_pb2.GetFriendRankingResponse]:
    """Every page of the user's ranking followed by tokens, then their around_me page."""
    pages, token = [], ""
    while True:
        pages.append(path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
            user_id=user, day=day.isoformat(), period=period, page_size=page_size,
            page_token=token), timeout=10))
        token = pages[-1].next_page_token
        if not token:
            break
    pages.append(path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
        user_id=user, day=day.isoformat(), period=period, page_size=page_size,
        around_me=True), timeout=10))
    return pages


def check_champions(
    pages: list[ranking_pb2.GetFriendRankingResponse], covers: dict[int, str],
) -> ranking_pb2.RankEntry:
    """Asserts every page's champion is the first page's rank-1 entry, whole (profile
    included), with the cover of its profile; returns it."""
    leader = pages[0].entries[0]
    assert leader.rank == 1
    for page in pages:
        assert page.HasField("champion")
        assert page.champion.entry == leader
        assert page.champion.cover_url == covers.get(leader.user_id, "")
    return leader


def reports(rng: random.Random, users: list[int], days: list[date]) -> list[tuple]:
    """``(day, user, steps, second)`` reports, 1-3 per user, often tied on steps and
    second (ties at the top of many rankings), shuffled."""
    rows = [(rng.choice(days), user, rng.choice([0, 300, 300, 4000, 4000, rng.randint(0, 99_999)]),
             rng.choice([5, 5, 60])) for user in users for _ in range(rng.randint(1, 3))]
    rng.shuffle(rows)
    return rows


def test_the_champion_is_rank_1_on_every_page_of_every_users_ranking(path):
    """A random graph with profiles (with covers, without, none at all), reports over
    several days with ties, a circle of friends none of whom reported (all zero), and a
    three-way tie at the top: for every user, every period and every page (tokens and
    around_me), the champion is the first page's rank-1 entry, which is the model's."""
    rng = random.Random(71)
    base = rng.randint(10**12, 10**13)
    friends = random_graph(rng, base, 90)
    quiet = [base + 1000 + i for i in range(4)]  # nobody in this circle reports
    tied = [base + 2000 + i for i in range(3)]  # all report the same steps at the same second
    for circle in (quiet, tied):
        friends |= {user: set(circle) - {user} for user in circle}
    add_graph(path, friends)
    covers = {}
    for user in sorted(friends):
        kind = rng.choice(["cover", "cover", "plain", "none"])
        if kind == "none":
            continue
        profile = social_pb2.Profile(user_id=user, nickname=f"walker {user - base}",
                                     avatar_url=f"https://a.example/{user}.png")
        if kind == "cover":
            profile.cover_url = covers[user] = f"https://covers.example/{user}.jpg"
        path.social.UpsertProfile(social_pb2.UpsertProfileRequest(profile=profile), timeout=10)

    now = today()
    days = [now - timedelta(days=back) for back in (0, 1, 2, 9)]
    silent = set(quiet) | set(rng.sample(sorted(friends), 15))
    rows = reports(rng, [u for u in sorted(friends) if u not in silent and u not in tied], days)
    rows += [(now, user, 5000, 5) for user in tied]
    model = send_rows(path, rows)
    path.start_consumer()
    reporters = len(model.ranking(now))
    wait_until(lambda: path.store.participants(now) == reporters, 60)

    for user, others in friends.items():
        for period, value in PERIODS.items():
            window = window_of(now, period)
            expected = expected_ranking(model, window, others | {user})
            pages = ranking_pages(path, user, now, value, page_size=3)
            leader = check_champions(pages, covers)
            assert as_tuple(leader) == expected[0], (user, period)
    day_ranking = ranking_pages(path, quiet[2], now, ranking_pb2.PERIOD_DAY, page_size=1)
    assert as_tuple(check_champions(day_ranking, covers)) == (1, quiet[0], 0, 0)
    assert not day_ranking[0].champion.entry.HasField("reached_at")
    day_ranking = ranking_pages(path, tied[2], now, ranking_pb2.PERIOD_DAY, page_size=1)
    assert check_champions(day_ranking, covers).user_id == tied[0]


@pytest.mark.parametrize("deployment", sorted(REDIS_DEPLOYMENTS))
def test_a_precomputed_ranking_shows_its_champion_on_every_page(deployment):
    """A hot user's rankings are served precomputed, for the day, its week and its month:
    every page (tokens, around_me) carries the champion, the first page's rank-1 entry,
    with its cover; a new leader shows once precompute refreshed the ranking."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    path = hot_path(databases, threshold=3, interval_s=1, **REDIS_DEPLOYMENTS[deployment])
    try:
        user = fresh_user_base()
        friends = [user + i for i in range(1, 13)]
        befriend(path, user, friends)
        covers = {u: f"https://covers.example/{u}.jpg" for u in friends[::2]}
        for u in [user, *friends]:
            path.social.UpsertProfile(upsert_request(
                user_id=u, nickname=f"n{u - user}", cover_url=covers.get(u, "")), timeout=10)
        now = today()
        # The user is somewhere in the middle, so around_me is neither the first page nor
        # the last.
        rows = [(now, u, 1000 * (i % 5), 10 + i) for i, u in enumerate(friends)]
        rows.append((now, user, 2500, 3))
        model = send_rows(path, rows)
        path.start_consumer()
        wait_until(lambda: path.store.participants(now) == len(rows), 60)
        path.consumers.append(start_process("rank_svc.precompute", path.env))
        circle = {user, *friends}
        for period, value in PERIODS.items():
            first_page = ranking_pb2.GetFriendRankingRequest(
                user_id=user, day=now.isoformat(), period=value, page_size=4)
            wait_until(lambda r=first_page: precomputed(path, r), 60, 0.5)
            pages = ranking_pages(path, user, now, value, page_size=4)
            assert all(page.HasField("computed_at") for page in pages)
            assert len(pages) == 5 and pages[-1].entries[0].rank == 5  # around_me: page 2
            leader = check_champions(pages, covers)
            assert as_tuple(leader) == expected_ranking(model, window_of(now, period),
                                                        circle)[0]

        newcomer = friends[1]  # no cover; below the user until now
        send_rows(path, [(now, newcomer, 99_000, 1)])
        around = ranking_pb2.GetFriendRankingRequest(
            user_id=user, day=now.isoformat(), page_size=4, around_me=True)
        refreshed = wait_until(lambda: (r := precomputed(path, around)) is not None
                               and r.champion.entry.user_id == newcomer and r, 30, 0.5)
        assert (refreshed.champion.entry.steps, refreshed.champion.cover_url) == (99_000, "")
        assert refreshed.me.rank == 6 and refreshed.entries[0].rank == 5
        first = path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
            user_id=user, day=now.isoformat(), page_size=4), timeout=10)
        assert first.entries[0] == first.champion.entry == refreshed.champion.entry
    finally:
        path.close()
        databases.drop()


def test_without_profiles_the_champion_is_still_right(path):
    """When profiles cannot be read (social_svc down, not in its cache) the champion goes
    out undecorated but with the right user, rank and steps; a profile social_svc cached
    before covers existed decorates it, with no cover."""
    user = fresh_user_base()
    leader, other = user + 1, user + 2
    add_graph(path, {user: {leader, other}})
    now = today()
    send_rows(path, [(now, leader, 7000, 5), (now, other, 300, 5), (now, user, 300, 9)])
    path.start_consumer()
    wait_until(lambda: path.store.participants(now) == 3, 60)
    # What any replica's answer leaves in social_svc's cache: the list and the privacy
    # settings the ranking must respect (not the profiles).
    path.social.ListFriends(social_pb2.ListFriendsRequest(user_id=user), timeout=10)
    path.social.GetRankingExclusions(social_pb2.GetRankingExclusionsRequest(
        viewer_id=user, include_opted_out=True), timeout=10)
    stop_process(path.social_process)
    request = ranking_pb2.GetFriendRankingRequest(user_id=user, day=now.isoformat(),
                                                  page_size=1, around_me=True)
    bare = path.ranking.GetFriendRanking(request, timeout=10)
    assert (bare.me.rank, bare.total) == (3, 3)
    champion = bare.champion
    assert (champion.entry.rank, champion.entry.user_id, champion.entry.steps) == (1, leader,
                                                                                   7000)
    assert (champion.entry.nickname, champion.cover_url) == ("", "")

    # The champion's profile as a social_svc that predates covers cached it.
    namespace = CacheSettings.from_env(path.env).namespace
    old = profile_before_covers()(user_id=leader, nickname="Ada",
                                  avatar_url="https://a/ada.png")
    path.store.client.set(entry_key(namespace, PROFILE, leader), old.SerializeToString())
    decorated = path.ranking.GetFriendRanking(request, timeout=10).champion
    assert (decorated.entry.user_id, decorated.entry.steps) == (leader, 7000)
    assert (decorated.entry.nickname, decorated.entry.avatar_url) == ("Ada", "https://a/ada.png")
    assert decorated.cover_url == ""
