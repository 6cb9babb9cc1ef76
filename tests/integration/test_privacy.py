"""Privacy controls end to end (social_svc, rank_svc and precompute from this tree, on private
graph shards): users who left the rankings and users who hide from a viewer are never shown
to, nor counted for, that viewer, and every change shows in the very next ranking."""

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import grpc
import pytest

from common.report_rules import day_start
from common.social_cache_format import CacheSettings
from rank_svc.board_format import decode_score
from stepboard.v1 import ranking_pb2, social_pb2
from tests.harness import start_process, today, unique, wait_until
from tests.integration.test_friend_ranking import add_graph, as_tuple, random_graph
from tests.integration.test_write_path import send_rows
from tests.model import BoardModel
from tests.processes import stop_process
from tests.social_support import (
    STACK_MARIADB,
    PrivateMariaDB,
    ShardDatabases,
    fresh_user_base,
    rpc_error,
    users_on,
)
from tests.stack import REDIS_DEPLOYMENTS
from tests.write_path import WritePath

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def private_path(databases: ShardDatabases, **settings: str) -> WritePath:
    """A write path with its own social_svc on ``databases`` and its own social cache."""
    return WritePath({"STEPBOARD_MYSQL_SHARD_DSNS": databases.dsns,
                      "STEPBOARD_SOCIAL_CACHE_NAMESPACE": unique("sg"), **settings},
                     own_social=True)


@pytest.fixture
def path(databases) -> Iterator[WritePath]:
    write_path = private_path(databases)
    yield write_path
    write_path.close()


@dataclass
class PrivacyModel:
    """The graph, the boards and the privacy settings, as the tests sent them."""

    friends: dict[int, set[int]]
    board: BoardModel
    day: date
    opted_out: set[int] = field(default_factory=set)
    hides: set[tuple[int, int]] = field(default_factory=set)  # (hider, viewer)

    def sees(self, viewer: int, user: int) -> bool:
        """Whether ``viewer`` may see ``user`` in someone else's place."""
        return user not in self.opted_out and (user, viewer) not in self.hides

    def friend_ranking(self, viewer: int) -> list[tuple]:
        """``(rank, user, steps, reached_at)`` of the viewer's ranking: the viewer and the
        friends they may see."""
        start_s = int(day_start(self.day).timestamp())
        members = {f for f in self.friends[viewer] if self.sees(viewer, f)} | {viewer}
        reported = [(u, s, start_s + t) for u, s, t in self.board.ranking(self.day)
                    if u in members]
        silent = sorted(members - {u for u, _, _ in reported})
        rows = reported + [(u, 0, 0) for u in silent]
        return [(rank, *row) for rank, row in enumerate(rows, 1)]

    def global_ids(self, viewer: int) -> list[int]:
        """Everyone on the board the viewer (0: nobody) may see, best first."""
        return [u for u, _, _ in self.board.ranking(self.day)
                if u not in self.opted_out and (not viewer or (u, viewer) not in self.hides)]

    def global_rank(self, user: int) -> tuple[int, int] | None:
        """``(rank, participants)`` of ``user`` among those they may see, themself
        included."""
        ids = [u for u, _, _ in self.board.ranking(self.day) if u == user or self.sees(user, u)]
        return (ids.index(user) + 1, len(ids)) if user in ids else None


def set_visible(path: WritePath, user: int, visible: bool) -> None:
    path.social.SetRankingVisibility(
        social_pb2.SetRankingVisibilityRequest(user_id=user, visible=visible), timeout=10
    )


def set_hidden(path: WritePath, hider: int, viewer: int, hidden: bool) -> None:
    path.social.SetStepsHidden(
        social_pb2.SetStepsHiddenRequest(user_id=hider, friend_id=viewer, hidden=hidden),
        timeout=10,
    )


def friend_pages(path: WritePath, viewer: int, day: date, size: int,
                 period=ranking_pb2.PERIOD_DAY) -> tuple[list, set]:
    """The whole ranking followed by tokens, and every page's ``(me, total)``."""
    entries, mes, token = [], set(), ""
    while True:
        reply = path.ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(
                user_id=viewer, day=day.isoformat(), page_size=size, page_token=token,
                period=period),
            timeout=10,
        )
        entries += list(reply.entries)
        mes.add((as_tuple(reply.me), reply.total))
        token = reply.next_page_token
        if not token:
            return entries, mes


def check_viewer(path: WritePath, model: PrivacyModel, viewer: int) -> None:
    """Everything ``viewer`` is shown equals the model: friend pages, around_me, the global
    top with and without them as viewer, their global rank; the week alike."""
    day = model.day
    expected = model.friend_ranking(viewer)
    entries, mes = friend_pages(path, viewer, day, 7)
    assert [as_tuple(e) for e in entries] == expected, viewer
    mine = next(row for row in expected if row[1] == viewer)
    assert mes == {(mine, len(expected))}, viewer
    around = path.ranking.GetFriendRanking(
        ranking_pb2.GetFriendRankingRequest(user_id=viewer, day=day.isoformat(), page_size=3,
                                            around_me=True), timeout=10)
    start = (mine[0] - 1) // 3 * 3
    assert [as_tuple(e) for e in around.entries] == expected[start:start + 3], viewer
    week, _ = friend_pages(path, viewer, day, 50, ranking_pb2.PERIOD_WEEK)
    assert [(e.rank, e.user_id, e.steps) for e in week] == [r[:3] for r in expected], viewer

    top = path.ranking.GetGlobalTop(
        ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=10, viewer_id=viewer),
        timeout=10)
    visible = model.global_ids(viewer)
    assert [e.user_id for e in top.entries] == visible[:10], viewer
    assert [e.rank for e in top.entries] == list(range(1, len(top.entries) + 1))
    assert top.total_participants == len(visible), viewer

    for period in (ranking_pb2.PERIOD_DAY, ranking_pb2.PERIOD_MONTH):
        request = ranking_pb2.GetGlobalRankRequest(user_id=viewer, day=day.isoformat(),
                                                   period=period)
        wanted = model.global_rank(viewer)
        if wanted is None:
            assert rpc_error(path.ranking.GetGlobalRank, request, timeout=10).code() == \
                grpc.StatusCode.NOT_FOUND
            continue
        rank = path.ranking.GetGlobalRank(request, timeout=10)
        assert (rank.entry.rank, rank.total_participants, rank.in_rankings) == \
            (*wanted, viewer not in model.opted_out), (viewer, period)


def check_everyone(path: WritePath, model: PrivacyModel) -> None:
    """:func:`check_viewer` for every user, and the global top without a viewer."""
    top = path.ranking.GetGlobalTop(
        ranking_pb2.GetGlobalTopRequest(day=model.day.isoformat(), limit=1000), timeout=10)
    everyone = model.global_ids(0)
    assert [e.user_id for e in top.entries] == everyone
    assert top.total_participants == len(everyone)
    for viewer in sorted(model.friends):
        check_viewer(path, model, viewer)


def populate(path: WritePath, rng: random.Random, users: int) -> PrivacyModel:
    """A random graph of fresh users, most of whom report today."""
    base = fresh_user_base()  # not from ``rng``: settings stored by other runs stay theirs
    friends = random_graph(rng, base, users)
    add_graph(path, friends)
    day = today()
    rows = [(day, u, rng.choice([0, 300, 300, 4000, rng.randint(0, 99_999)]),
             rng.choice([5, 5, 60])) for u in sorted(friends) if rng.random() < 0.8]
    board = send_rows(path, rows)
    path.start_consumer()
    wait_until(lambda: path.store.participants(day) == len(board.ranking(day)), 60)
    return PrivacyModel(friends, board, day)


def report_more(path: WritePath, model: PrivacyModel, users: list[int], steps: int) -> None:
    """New, higher reports of ``users``, waited for on the boards."""
    rows = [(model.day, u, steps, 90) for u in users]
    model.board.add_all(rows)
    send_rows(path, rows)

    def applied() -> bool:
        scores = path.store.scores(model.day, users)
        return all(scores[u] is not None and decode_score(model.day, scores[u])[0] == steps
                   for u in users)

    wait_until(applied, 30)


@pytest.mark.parametrize("deployment", sorted(REDIS_DEPLOYMENTS))
def test_no_hidden_user_is_ever_shown_or_counted(databases, deployment):
    """Random opt-outs and hides toggled over rounds; after each round (no wait), every
    user's friend pages, around_me page, week, global top and global rank (day, month)
    equal the model. Steps reported while a user is out show when they join again."""
    path = private_path(databases, **REDIS_DEPLOYMENTS[deployment])
    try:
        toggled_over_rounds(path)
    finally:
        path.close()


def toggled_over_rounds(path: WritePath) -> None:
    rng = random.Random(61)
    model = populate(path, rng, users=36)
    users = sorted(model.friends)
    check_everyone(path, model)
    for round_ in range(6):
        for user in rng.sample(users, rng.randint(1, 4)):
            visible = user in model.opted_out
            set_visible(path, user, visible)
            (model.opted_out.discard if visible else model.opted_out.add)(user)
        for _ in range(rng.randint(3, 8)):
            viewer = rng.choice(users)
            pool = sorted(model.friends[viewer]) if model.friends[viewer] and rng.random() < 0.8 \
                else users
            hider = rng.choice([u for u in pool if u != viewer] or [viewer + 1])
            hidden = (hider, viewer) not in model.hides
            set_hidden(path, hider, viewer, hidden)
            (model.hides.add if hidden else model.hides.discard)((hider, viewer))
        if round_ == 2 and model.opted_out:  # steps keep flowing while a user is out
            report_more(path, model, sorted(model.opted_out), 100_000)
        check_everyone(path, model)
    for user in sorted(model.opted_out):  # all back in, steps intact
        set_visible(path, user, True)
    model.opted_out.clear()
    check_everyone(path, model)


def test_settings_are_read_back_and_idempotent(path):
    base = random.randint(10**12, 10**13)  # users no other run has befriended
    user, friend, other = base, base + 1, base + 2
    add_graph(path, {user: {friend}})
    for _ in range(2):
        set_visible(path, user, False)
        set_hidden(path, user, friend, True)
        set_hidden(path, user, other, True)  # not a friend: allowed, applies if they befriend
    settings = path.social.GetPrivacySettings(
        social_pb2.GetPrivacySettingsRequest(user_id=user), timeout=10)
    assert (settings.in_rankings, list(settings.hidden_from)) == (False, [friend, other])
    set_visible(path, user, True)
    set_hidden(path, user, friend, False)
    settings = path.social.GetPrivacySettings(
        social_pb2.GetPrivacySettingsRequest(user_id=user), timeout=10)
    assert (settings.in_rankings, list(settings.hidden_from)) == (True, [other])
    friends = path.social.ListFriends(social_pb2.ListFriendsRequest(user_id=friend), timeout=10)
    assert list(friends.friend_ids) == [user]  # the friendship is unchanged


@pytest.mark.parametrize("request_, field_", [
    (social_pb2.SetRankingVisibilityRequest(user_id=0), "user_id"),
    (social_pb2.SetStepsHiddenRequest(user_id=-1, friend_id=2), "user_id"),
    (social_pb2.SetStepsHiddenRequest(user_id=2, friend_id=0), "friend_id"),
    (social_pb2.SetStepsHiddenRequest(user_id=2, friend_id=2), "friend_id"),
    (social_pb2.GetPrivacySettingsRequest(user_id=0), "user_id"),
    (social_pb2.GetRankingExclusionsRequest(viewer_id=-3), "viewer_id"),
])
def test_bad_privacy_requests_name_the_field(path, request_, field_):
    method = {
        social_pb2.SetRankingVisibilityRequest: path.social.SetRankingVisibility,
        social_pb2.SetStepsHiddenRequest: path.social.SetStepsHidden,
        social_pb2.GetPrivacySettingsRequest: path.social.GetPrivacySettings,
        social_pb2.GetRankingExclusionsRequest: path.social.GetRankingExclusions,
    }[type(request_)]
    error = rpc_error(method, request_, timeout=10)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field_}:"), error.details()
    top = rpc_error(path.ranking.GetGlobalTop, ranking_pb2.GetGlobalTopRequest(
        day=today().isoformat(), viewer_id=-1), timeout=10)
    assert (top.code(), top.details().split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                         "viewer_id")


def rankings_of(path: WritePath, viewer: int, day: date) -> dict:
    """Every ranking call of ``viewer``: its user ids and totals, or its status code."""
    calls = {
        "friends": (path.ranking.GetFriendRanking,
                    ranking_pb2.GetFriendRankingRequest(user_id=viewer, day=day.isoformat())),
        "top": (path.ranking.GetGlobalTop,
                ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), viewer_id=viewer)),
        "anonymous top": (path.ranking.GetGlobalTop,
                          ranking_pb2.GetGlobalTopRequest(day=day.isoformat())),
        "rank": (path.ranking.GetGlobalRank,
                 ranking_pb2.GetGlobalRankRequest(user_id=viewer, day=day.isoformat())),
    }
    found = {}
    for name, (call, request) in calls.items():
        try:
            reply = call(request, timeout=5)
        except grpc.RpcError as error:
            found[name] = error.code()
            continue
        if name == "rank":
            found[name] = (reply.entry.rank, reply.total_participants)
        else:
            found[name] = ([e.user_id for e in reply.entries],
                           reply.total if name == "friends" else reply.total_participants)
    return found


def wipe_social_cache(path: WritePath) -> None:
    namespace = CacheSettings.from_env(path.env).namespace
    for key in list(path.store.client.scan_iter(f"{namespace}:*", count=1000)):
        path.store.client.delete(key)


@pytest.mark.parametrize("deployment", sorted(REDIS_DEPLOYMENTS))
def test_a_wiped_cache_is_refilled_and_with_social_down_fails_unavailable(databases, deployment):
    """The rank server reads who to leave out from social_svc's cache: after a wipe it asks
    social_svc, which refills it; with social_svc down too, every ranking call fails
    UNAVAILABLE, never answering unfiltered. With social_svc down and the cache intact,
    rankings are still answered, filtered."""
    path = private_path(databases, **REDIS_DEPLOYMENTS[deployment])
    try:
        wiped_then_down(path)
    finally:
        path.close()


def wiped_then_down(path: WritePath) -> None:
    viewer = random.randint(10**12, 10**13)
    out, hider, plain = viewer + 1, viewer + 2, viewer + 3
    add_graph(path, {viewer: {out, hider, plain}})
    day = today()
    send_rows(path, [(day, u, 1000 * (u - viewer + 1), 5) for u in (viewer, out, hider, plain)])
    path.start_consumer()
    wait_until(lambda: path.store.participants(day) == 4, 60)
    set_visible(path, out, False)
    set_hidden(path, hider, viewer, True)
    expected = {"friends": ([plain, viewer], 2), "top": ([plain, viewer], 2),
                "anonymous top": ([plain, hider, viewer], 3), "rank": (2, 2)}
    assert rankings_of(path, viewer, day) == expected
    wipe_social_cache(path)
    assert rankings_of(path, viewer, day) == expected  # refilled by social_svc
    stop_process(path.social_process)
    assert rankings_of(path, viewer, day) == expected  # from the cache
    wipe_social_cache(path)
    assert rankings_of(path, viewer, day) == dict.fromkeys(expected, UNAVAILABLE)


@pytest.mark.parametrize("live_max", [1000, 6])
def test_precomputed_rankings_are_not_served_after_a_privacy_change(databases, live_max):
    """A hot user's ranking, precomputed: small enough to rank per call, a privacy change
    shows in the next call (the precomputed page is not used); too large to rank per call,
    every call until the ranking is recomputed is UNAVAILABLE, and the recomputed ranking
    leaves the user out, with exact ranks."""
    path = private_path(databases, STEPBOARD_HOT_FRIENDS_THRESHOLD="5",
                        STEPBOARD_LIVE_RANKING_MAX_USERS=str(live_max),
                        STEPBOARD_PRECOMPUTE_INTERVAL_S="30")
    try:
        hot = random.randint(10**12, 10**13)
        friends = {hot + i for i in range(1, 13)}
        add_graph(path, {hot: friends})
        day = today()
        rows = [(day, u, 100 * (u - hot) + 7, 5) for u in (hot, *friends)]
        model = PrivacyModel({hot: friends}, send_rows(path, rows), day)
        path.start_consumer()
        wait_until(lambda: path.store.participants(day) == 13, 60)
        path.consumers.append(start_process("rank_svc.precompute", path.env))
        request = ranking_pb2.GetFriendRankingRequest(user_id=hot, day=day.isoformat(),
                                                      page_size=100)

        def ranking() -> ranking_pb2.GetFriendRankingResponse | None:
            try:
                return path.ranking.GetFriendRanking(request, timeout=10)
            except grpc.RpcError as error:  # too large, not (re)computed yet
                assert live_max == 6 and error.code() == UNAVAILABLE, error
                return None

        wait_until(lambda: (reply := ranking()) is not None and reply.computed_at.seconds, 60)
        for change in ("leave", "hide"):
            top_friend = max(f for f in friends if model.sees(hot, f))
            if change == "leave":
                set_visible(path, top_friend, False)
                model.opted_out.add(top_friend)
            else:
                set_hidden(path, top_friend, hot, True)
                model.hides.add((top_friend, hot))
            expected = model.friend_ranking(hot)
            reply = wait_until(ranking, 30, 0.05)  # every call until then is UNAVAILABLE
            assert [as_tuple(e) for e in reply.entries] == expected, change
            assert reply.total == len(expected)
            assert bool(reply.computed_at.seconds) == (live_max == 6)  # recomputed, or live
    finally:
        path.close()


def test_a_shard_down_with_the_cache_wiped_fails_unavailable():
    """The set of users who left the rankings is read from every graph shard: with one
    shard's MariaDB killed and the cache wiped, rankings fail UNAVAILABLE (never
    unfiltered), and answer filtered again once it is back."""
    private = PrivateMariaDB()
    databases = ShardDatabases([STACK_MARIADB, private.address])
    path = private_path(databases)
    try:
        settings, base = databases.settings(), fresh_user_base()
        viewer, plain = users_on(settings, 0, 2, base)
        (out,) = users_on(settings, 1, 1, base)
        add_graph(path, {viewer: {out, plain}})
        day = today()
        send_rows(path, [(day, u, 500 + (u == out) * 1000, 5) for u in (viewer, out, plain)])
        path.start_consumer()
        wait_until(lambda: path.store.participants(day) == 3, 60)
        set_visible(path, out, False)
        expected = {"friends": (sorted([viewer, plain]), 2), "top": (sorted([viewer, plain]), 2),
                    "anonymous top": (sorted([viewer, plain]), 2), "rank": (1, 2)}
        ranked = rankings_of(path, viewer, day)
        assert {k: (sorted(v[0]), v[1]) if k != "rank" else v for k, v in ranked.items()} \
            == expected
        private.kill()
        wipe_social_cache(path)
        assert rankings_of(path, viewer, day) == dict.fromkeys(expected, UNAVAILABLE)
        private.start()
        ranked = wait_until(lambda: (found := rankings_of(path, viewer, day))["rank"] != UNAVAILABLE
                            and found, 60)
        assert {k: (sorted(v[0]), v[1]) if k != "rank" else v for k, v in ranked.items()} \
            == expected
    finally:
        path.close()
        databases.drop()
        private.close()


def test_a_change_shows_in_every_ranking_that_starts_after_it(path):
    """Readers rank without pause while users leave the rankings and hide from the viewer,
    one by one: no ranking that started after a change was acknowledged shows that user
    or counts them."""
    viewer = random.randint(10**12, 10**13)
    friends = [viewer + i for i in range(1, 31)]
    add_graph(path, {viewer: set(friends)})
    day = today()
    send_rows(path, [(day, u, 100 * (u - viewer + 1), 5) for u in (viewer, *friends)])
    path.start_consumer()
    wait_until(lambda: path.store.participants(day) == 31, 60)
    acked: list[tuple[float, int]] = []  # (when acknowledged, user) of each change
    seen: list[tuple[float, set[int], int]] = []  # (call start, users shown, total)
    stop = threading.Event()

    def read() -> None:
        request = ranking_pb2.GetFriendRankingRequest(user_id=viewer, day=day.isoformat(),
                                                      page_size=100)
        while not stop.is_set():
            started = time.monotonic()
            reply = path.ranking.GetFriendRanking(request, timeout=10)
            seen.append((started, {e.user_id for e in reply.entries}, reply.total))

    with ThreadPoolExecutor(3) as pool:
        readers = [pool.submit(read) for _ in range(2)]
        for i, user in enumerate(friends[::2]):
            if i % 2:
                set_hidden(path, user, viewer, True)
            else:
                set_visible(path, user, False)
            acked.append((time.monotonic(), user))
        stop.set()
        for reader in readers:
            reader.result()
    assert len(seen) > len(acked)
    for started, shown, total in seen:
        gone = {user for at, user in acked if at < started}
        assert not shown & gone, (started, shown & gone)
        assert total == len(shown) <= 31 - len(gone)


def check_global_ranks(path: WritePath, model: PrivacyModel) -> None:
    """Every user's GetGlobalRank of the day equals the model (rank, participants,
    in_rankings, steps), or is NOT_FOUND for a user without a report."""
    for user in sorted(model.friends):
        request = ranking_pb2.GetGlobalRankRequest(user_id=user, day=model.day.isoformat())
        wanted = model.global_rank(user)
        if wanted is None:
            assert rpc_error(path.ranking.GetGlobalRank, request, timeout=10).code() == \
                grpc.StatusCode.NOT_FOUND
            continue
        reply = path.ranking.GetGlobalRank(request, timeout=10)
        steps = next(s for u, s, _ in model.board.ranking(model.day) if u == user)
        assert (reply.entry.rank, reply.total_participants, reply.in_rankings,
                reply.entry.steps) == (*wanted, user not in model.opted_out, steps), user


def test_a_global_rank_is_one_round_trip_and_follows_every_board_change(path, monkeypatch):
    """On a single server a GetGlobalRank reads everything in one Redis round trip once
    its process holds the set of those who left (their scores are kept per board version):
    and it stays exact as the board moves under that kept set, with ties across shards,
    users who left passing others and others passing them, and a viewer's hider."""
    rng = random.Random(29)
    model = populate(path, rng, users=30)
    on_board = [u for u, _, _ in model.board.ranking(model.day)]
    for user in rng.sample(on_board, 5):
        set_visible(path, user, False)
        model.opted_out.add(user)
    viewer = next(u for u in on_board if u not in model.opted_out
                  and any(f not in model.opted_out for f in model.friends[u]))
    hider = next(f for f in sorted(model.friends[viewer]) if f not in model.opted_out)
    set_hidden(path, hider, viewer, True)
    model.hides.add((hider, viewer))
    check_global_ranks(path, model)

    counted = next(u for u in on_board if u != viewer and u not in model.opted_out)
    connection_class = path.redis.connection_pool.connection_class
    sent = connection_class.send_packed_command
    round_trips = []

    def counting(self, command, check_health=True):
        round_trips.append(command)
        return sent(self, command, check_health)

    monkeypatch.setattr(connection_class, "send_packed_command", counting)
    reply = path.ranking.GetGlobalRank(
        ranking_pb2.GetGlobalRankRequest(user_id=counted, day=model.day.isoformat()), timeout=10)
    monkeypatch.undo()
    assert (reply.entry.rank, reply.total_participants) == model.global_rank(counted)
    assert len(round_trips) == 1, [repr(c)[:120] for c in round_trips]

    left = sorted(model.opted_out)
    report_more(path, model, left[:2], 99_000)  # those who left pass others
    check_global_ranks(path, model)
    report_more(path, model, [counted, viewer], 99_999)  # others pass them, tied
    check_global_ranks(path, model)
