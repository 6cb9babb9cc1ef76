"""Every read does bounded work, and crafted input is INVALID_ARGUMENT naming its field.

A read of a day whose board cannot exist is refused at once; page tokens hold only ASCII
offsets and ids in range (``str.isdigit`` and ``int`` also take "²" or "٣"); a slow
GetGlobalTop build holds neither another limit nor a caller past its deadline; and
rank_svc's friend-list cache is bounded by the ids it holds.

rank_svc and social_svc run as processes from this tree on the stack's Redis and MariaDB;
rank_svc reaches the stack's social_svc through a fault proxy and keeps its boards under a
namespace of its own.
"""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import NamedTuple

import grpc
import pytest

from common.page_tokens import encode_token
from common.redis_clients import RedisSettings, create_redis
from common.report_rules import day_start_s, readable_days
from rank_svc.board_format import BoardSettings, Row, encode_score
from rank_svc.friend_ranking import token_scope
from rank_svc.hot_rankings import HotRankings
from rank_svc.social_client import FriendSource
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2, social_pb2_grpc
from tests.board_store import BoardStore
from tests.fault_proxy import FaultProxy
from tests.harness import today, unique
from tests.integration.test_hung_dependencies import HUNG_S, new_user, server
from tests.stack import SERVERS, local_env

RETENTION_DAYS = 2
OK, INVALID = grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT


class Rank(NamedTuple):
    stub: ranking_pb2_grpc.RankingStub
    social_proxy: FaultProxy
    boards: BoardStore
    hot: HotRankings


@pytest.fixture(scope="module")
def rank() -> Iterator[Rank]:
    """A rank_svc process keeping boards for ``RETENTION_DAYS`` under its own namespace."""
    env = local_env() | {"STEPBOARD_BOARD_NAMESPACE": unique("ns"),
                         "STEPBOARD_BOARD_RETENTION_DAYS": str(RETENTION_DAYS)}
    client = create_redis(RedisSettings.from_env(env))
    board = BoardSettings.from_env(env)
    social_proxy = FaultProxy(("127.0.0.1", SERVERS["social"][0]))
    try:
        with server("rank_svc", STEPBOARD_SOCIAL_ADDR=social_proxy.address,
                    STEPBOARD_BOARD_NAMESPACE=board.namespace,
                    STEPBOARD_BOARD_RETENTION_DAYS=str(RETENTION_DAYS)) as channel:
            yield Rank(ranking_pb2_grpc.RankingStub(channel), social_proxy,
                       BoardStore(client, board),
                       HotRankings(client, board.namespace, RETENTION_DAYS))
    finally:
        social_proxy.close()
        client.close()


def status_of(call, request, timeout_s: float = 10) -> tuple[grpc.StatusCode, str]:
    try:
        call(request, timeout=timeout_s)
        return OK, ""
    except grpc.RpcError as error:
        return error.code(), error.details() or ""


READS = {
    "GetGlobalTop": lambda day: ranking_pb2.GetGlobalTopRequest(day=day),
    "GetGlobalRank": lambda day: ranking_pb2.GetGlobalRankRequest(user_id=new_user(), day=day),
    "GetFriendRanking": lambda day: ranking_pb2.GetFriendRankingRequest(user_id=new_user(),
                                                                        day=day),
}


@pytest.mark.parametrize("method", sorted(READS))
def test_reads_answer_only_days_whose_board_may_exist(rank, method):
    while True:  # again if the window moved while reading (a day began, a board expired)
        oldest, newest = readable_days(time.time(), RETENTION_DAYS)
        outside = [oldest - timedelta(days=1), newest + timedelta(days=1),
                   date.min, date.max]
        call, request = getattr(rank.stub, method), READS[method]
        inside = {day: status_of(call, request(day.isoformat())) for day in (oldest, newest)}
        refused = {day: status_of(call, request(day.isoformat())) for day in outside}
        if readable_days(time.time(), RETENTION_DAYS) == (oldest, newest):
            break
    assert all(code in (OK, grpc.StatusCode.NOT_FOUND) for code, _ in inside.values()), inside
    assert refused == {
        day: (INVALID, f"day: {day} has no board: readable days are {oldest} to {newest}")
        for day in outside
    }


CRAFTED = ["²", "٣", "0" * 5000 + "1", "-1", " 1"]


@pytest.mark.parametrize("position", [*CRAFTED, str(10**17), str(2**31)])
def test_crafted_ranking_page_tokens_are_invalid_argument(rank, position):
    """On a precomputed ranking (a huge offset reached Redis as 1e+17) and a computed one."""
    day = today()
    hot_user, live_user = new_user(), new_user()
    (token,) = rank.hot.fence(hot_user, [day])
    rank.hot.save(hot_user, day, [Row(hot_user, None), Row(new_user(), None)],
                  int(time.time()), None, token)
    for user in (hot_user, live_user):
        request = ranking_pb2.GetFriendRankingRequest(
            user_id=user, day=day.isoformat(),
            page_token=encode_token(token_scope(user, day), position),
        )
        code, details = status_of(rank.stub.GetFriendRanking, request)
        assert (code, details.split(":")[0]) == (INVALID, "page_token"), (user, code, details)


@pytest.fixture(scope="module")
def social() -> Iterator[social_pb2_grpc.FriendGraphStub]:
    """A social_svc process from this tree."""
    with server("social_svc") as channel:
        yield social_pb2_grpc.FriendGraphStub(channel)


@pytest.mark.parametrize("position", [*CRAFTED, str(2**63)])
def test_crafted_social_page_tokens_are_invalid_argument(social, position):
    user = new_user()
    requests = [
        (social.ListFriends, social_pb2.ListFriendsRequest(
            user_id=user, page_token=encode_token(f"friends:{user}", position))),
        (social.ListHotUsers, social_pb2.ListHotUsersRequest(
            min_friends=5, page_token=encode_token("hot:5", f"0:{position}"))),
        (social.ListHotUsers, social_pb2.ListHotUsersRequest(
            min_friends=5, page_token=encode_token("hot:5", f"{position}:0"))),
    ]
    for call, request in requests:
        code, details = status_of(call, request)
        assert (code, details.split(":")[0]) == (INVALID, "page_token"), (request, code, details)


def test_a_slow_top_build_holds_no_other_limit_and_no_caller_past_its_deadline(rank):
    """With social_svc hung, a build of the top waits SOCIAL_TIMEOUT_S for nicknames: a
    second caller of that limit gets DEADLINE_EXCEEDED from the server inside its deadline,
    and a caller of another limit builds its own answer meanwhile."""
    day = today()
    users = [new_user() for _ in range(20)]
    rank.boards.apply({(day, user): encode_score(day, 1000 + i, day_start_s(day) + 60)
                       for i, user in enumerate(users)}, {})
    best = list(reversed(users))

    def top(limit: int, deadline_s: float) -> tuple[grpc.StatusCode, str, float, list[int]]:
        """The call's status, message, seconds taken and the users of its answer."""
        started = time.monotonic()
        request = ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=limit)
        try:
            reply = rank.stub.GetGlobalTop(request, timeout=deadline_s)
        except grpc.RpcError as error:
            return error.code(), error.details(), time.monotonic() - started, []
        return OK, "", time.monotonic() - started, [entry.user_id for entry in reply.entries]

    # Who to leave out is read from social_svc once, then from its cache (held by version).
    assert top(1, 10)[0] == OK
    rank.social_proxy.set_latency(HUNG_S)
    try:
        with ThreadPoolExecutor(3) as pool:
            slow = pool.submit(top, 1000, 10)
            time.sleep(0.3)  # its build holds (day, 1000) until social_svc's timeout
            same, other = pool.submit(top, 1000, 1.0), pool.submit(top, 10, 1.2)
            (same_code, same_details, same_took, _), (other_code, _, _, other_users) = (
                same.result(), other.result())
            # both ended before the slow build could (it started 0.3 s earlier and waits
            # SOCIAL_TIMEOUT_S for nicknames): the other limit built its own answer
            assert (same_code, other_code) == (grpc.StatusCode.DEADLINE_EXCEEDED, OK)
            assert "another call built the same top" in same_details, same_details
            assert same_took < 1.0
            assert other_users == best[:10]
            assert slow.result()[::3] == (OK, best)
    finally:
        rank.social_proxy.heal()
        rank.social_proxy.drop_connections()
        rank.boards.drop_day(day)


def test_cached_friend_lists_are_bounded_by_the_ids_they_hold():
    stub = social_pb2_grpc.FriendGraphStub(
        grpc.insecure_channel(f"127.0.0.1:{SERVERS['social'][0]}"))
    users = [new_user() for _ in range(2)]
    for user in users:
        for _ in range(6):
            stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=user,
                                                               friend_id=new_user()), timeout=10)
    source = FriendSource(stub, lifetime_s=60, stale_s=600, max_users=100, max_ids=10,
                          max_cached_list=20_000, prepare=lambda _user, friends: list(friends),
                          social_cache=None)
    source.friends(users[0])
    assert source.known_count(users[0]) == 6
    source.friends(users[1])  # 12 ids > 10: the least recently used list goes
    assert (source.known_count(users[0]), source.known_count(users[1])) == (None, 6)
