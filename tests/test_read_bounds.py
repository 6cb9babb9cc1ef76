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
from datetime import date, timedelta
from typing import NamedTuple

import grpc
import pytest

from common.page_tokens import encode_token
from common.redis_clients import RedisSettings, create_redis
from common.reports import readable_days
from rank_svc.board import BoardSettings, BoardStore, Row
from rank_svc.friend_ranking import token_scope
from rank_svc.hot_rankings import HotRankings
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2, social_pb2_grpc
from tests.fault_proxy import FaultProxy
from tests.harness import today, unique
from tests.stack import SERVERS, local_env
from tests.test_hung_dependencies import new_user, server

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
    rank.hot.save(hot_user, day, [Row(hot_user, None), Row(new_user(), None)],
                  int(time.time()), None)
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
