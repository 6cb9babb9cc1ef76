"""A dependency that stops answering (hung, not gone: its connections stay open) ends each
call inside the caller's deadline with a specific status, said by the server, which then
stops waiting too: DEADLINE_EXCEEDED when the deadline is shorter than the dependency's
own timeout, UNAVAILABLE after that timeout when it is longer (docs/design.md, "Failure
semantics": deadlines propagate from rank_svc to social_svc and Redis). social_svc, for
which Redis is only a cache, answers from MySQL instead.

Real rank_svc and social_svc processes reach the stack's Redis and social_svc through
fault proxies; a proxy holding every byte for a minute is the hung dependency."""

import contextlib
import random
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import grpc
import pytest

from rank_svc.social_client import SOCIAL_TIMEOUT_S
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2, social_pb2_grpc
from tests.fault_proxy import FaultProxy
from tests.harness import free_port, service_env, start_process, today
from tests.processes import stop_process
from tests.social_support import STACK_MARIADB
from tests.stack import SERVERS, local_env

HUNG_S = 60.0
REDIS_TIMEOUT_S = 2.0  # the servers' STEPBOARD_REDIS_SOCKET_TIMEOUT_S


@contextlib.contextmanager
def server(module: str, **settings: str) -> Iterator[grpc.Channel]:
    """A channel to a new ``module`` server process with the stack's settings and these."""
    port = free_port()
    process = start_process(module, service_env(STEPBOARD_GRPC_PORT=str(port), **settings))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield channel
    finally:
        channel.close()
        stop_process(process)


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    """A proxy in front of the stack's Redis."""
    url = urlsplit(local_env()["STEPBOARD_REDIS_URL"])
    proxy = FaultProxy((url.hostname, url.port))
    yield proxy
    proxy.close()


@pytest.fixture
def rank(redis_proxy) -> Iterator[tuple[ranking_pb2_grpc.RankingStub, FaultProxy, FaultProxy]]:
    """A rank_svc process and the proxies in front of its Redis and its social_svc."""
    social_proxy = FaultProxy(("127.0.0.1", SERVERS["social"][0]))
    try:
        with server("rank_svc", STEPBOARD_REDIS_URL=f"redis://{redis_proxy.address}/0",
                    STEPBOARD_REDIS_SOCKET_TIMEOUT_S=str(REDIS_TIMEOUT_S),
                    STEPBOARD_SOCIAL_ADDR=social_proxy.address) as channel:
            yield ranking_pb2_grpc.RankingStub(channel), redis_proxy, social_proxy
    finally:
        social_proxy.close()


def timed(call, request, deadline_s: float) -> tuple[float, grpc.RpcError]:
    """Seconds until ``call`` failed, and its error (it must fail)."""
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=deadline_s)
    return time.monotonic() - started, raised.value


def new_user() -> int:
    return random.randint(9 * 10**12, 10**13)  # nobody's friend, no report


def test_a_hung_redis_ends_calls_in_their_deadline(rank):
    stub, redis_proxy, _ = rank
    day = today().isoformat()
    user = new_user()
    request = ranking_pb2.GetGlobalRankRequest(user_id=user, day=day)
    with pytest.raises(grpc.RpcError) as raised:  # the link works: no report yet
        stub.GetGlobalRank(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    redis_proxy.set_latency(HUNG_S)
    for call, asked in ((stub.GetGlobalRank, request),
                        (stub.GetFriendRanking,
                         ranking_pb2.GetFriendRankingRequest(user_id=user, day=day))):
        took, error = timed(call, asked, 0.5)
        # said by the server before the deadline, not the client giving up at it
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
        assert "Redis did not answer within the call's deadline" in error.details(), error
        assert took < 0.5
    took, error = timed(stub.GetGlobalRank, request, 10)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert REDIS_TIMEOUT_S <= took < 2 * REDIS_TIMEOUT_S  # one socket timeout, not retried

    redis_proxy.heal()
    with pytest.raises(grpc.RpcError) as raised:  # new connections answer at once
        stub.GetGlobalRank(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_hung_social_svc_is_deadline_exceeded_or_unavailable_by_which_ran_out(rank):
    stub, _, social_proxy = rank
    day = today().isoformat()
    stub.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(user_id=new_user(), day=day),
                          timeout=10)  # the link to social_svc is up and connected

    social_proxy.set_latency(HUNG_S)
    never_asked = ranking_pb2.GetFriendRankingRequest(user_id=new_user(), day=day)
    took, error = timed(stub.GetFriendRanking, never_asked, 1.0)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
    # (the privacy settings or the friend list: both are read from social_svc)
    assert "deadline passed while reading" in error.details(), error
    assert 0.5 < took < 1.0  # all the deadline allows, since there is no list to fall back on
    took, error = timed(stub.GetFriendRanking, never_asked, 10)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert "friend graph unavailable" in error.details(), error
    assert SOCIAL_TIMEOUT_S <= took < 2 * SOCIAL_TIMEOUT_S


def test_social_svc_answers_from_mysql_when_its_redis_cache_hangs(redis_proxy):
    with server("social_svc", STEPBOARD_REDIS_URL=f"redis://{redis_proxy.address}/0",
                STEPBOARD_REDIS_SOCKET_TIMEOUT_S=str(REDIS_TIMEOUT_S)) as channel:
        social = social_pb2_grpc.FriendGraphStub(channel)
        user, friend = new_user(), new_user()
        social.AddFriendship(social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend),
                             timeout=10)
        asked = social_pb2.ListFriendsRequest(user_id=user)
        assert list(social.ListFriends(asked, timeout=10).friend_ids) == [friend]  # cached

        redis_proxy.set_latency(HUNG_S)
        for deadline_s in (1.0, 0.3):
            started = time.monotonic()
            # the cache gets half the deadline, MySQL answers in the rest
            assert list(social.ListFriends(asked, timeout=deadline_s).friend_ids) == [friend]
            assert time.monotonic() - started < deadline_s


def test_a_change_committed_after_the_deadline_still_invalidates_the_cache():
    """A write whose MySQL commit outlasted the caller's deadline still replaces the
    list's cached copy (the invalidation ignores the deadline): else social_svc and every
    rank_svc would serve the old list until the copy expires."""
    mysql_proxy = FaultProxy(STACK_MARIADB)
    dsns = local_env()["STEPBOARD_MYSQL_SHARD_DSNS"].replace(
        "{}:{}".format(*STACK_MARIADB), mysql_proxy.address)
    try:
        with server("social_svc", STEPBOARD_MYSQL_SHARD_DSNS=dsns) as channel:
            social = social_pb2_grpc.FriendGraphStub(channel)
            user, old, new = new_user(), new_user(), new_user()
            social.AddFriendship(social_pb2.AddFriendshipRequest(user_id=user, friend_id=old),
                                 timeout=10)
            asked = social_pb2.ListFriendsRequest(user_id=user)
            assert list(social.ListFriends(asked, timeout=10).friend_ids) == [old]  # cached

            mysql_proxy.set_latency(0.2)
            with pytest.raises(grpc.RpcError) as raised:
                social.AddFriendship(
                    social_pb2.AddFriendshipRequest(user_id=user, friend_id=new), timeout=0.3)
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            mysql_proxy.heal()
            time.sleep(3)  # the write goes on after the deadline, and commits
            assert set(social.ListFriends(asked, timeout=10).friend_ids) == {old, new}
    finally:
        mysql_proxy.close()
