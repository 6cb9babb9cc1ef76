"""Generated bad input against every RPC: a specific status, no crash, nothing written.

The number of generated cases per RPC is ``STEPBOARD_FUZZ_EXAMPLES`` (100 in ``make test``;
``make chaos`` runs 10,000 per RPC).
"""

import os
from datetime import date, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.page_tokens import encode_token
from common.record_format import REPORTS_PER_RECORD
from common.report_rules import day_start
from rank_svc.friend_ranking import token_scope
from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from tests.harness import today, unique
from tests.social_support import STACK_MARIADB, ShardDatabases
from tests.write_path import WritePath

EXAMPLES = int(os.environ.get("STEPBOARD_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OK, INVALID, NOT_FOUND = (
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
)
NOT_FRIENDS = grpc.StatusCode.FAILED_PRECONDITION

HOSTILE = ["", "'; DROP TABLE friendships;--", "\x00", "\U0001f3c3" * 70, "é" * 65, " ",
           "%s%s%n", "../../etc/passwd", "https://" + "a" * 600, "\ud7ff\ue000"]
int64s = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 1, 2, 2**31, 2**53 + 1, 2**63 - 1, -(2**63)]),
)
int32s = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 500, 501, 1001]))
texts = st.one_of(st.text(max_size=80), st.sampled_from(HOSTILE))
days = st.one_of(
    texts,
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2026-02-30", "2026-13-01", "0000-00-00"]),
    st.integers(-3, 2).map(lambda n: (today() + timedelta(days=n)).isoformat()),
)


# What a page token issued for the request's own scope may carry: numbers written in other
# digits ("²", "٣"), out of any range, too long for ``int``, or not numbers at all.
positions = st.one_of(
    st.text(max_size=30),
    st.integers(-5, 2**65).map(str),
    st.sampled_from(["²", "٣", "1²", "0" * 5000 + "1", "9" * 5000, str(10**17), str(2**31),
                     str(2**63), "1e17", " 1", "+1", "1:2"]),
)


def token_of(draw, scope: str, parts: int = 1) -> str:
    """A token issued for ``scope`` holding ``parts`` drawn positions."""
    return encode_token(scope, ":".join(draw(positions) for _ in range(parts)))


@st.composite
def friend_ranking_requests(draw) -> ranking_pb2.GetFriendRankingRequest:
    """Garbage tokens, or tokens bound to the request's user and day holding any position."""
    request = draw(st.builds(ranking_pb2.GetFriendRankingRequest, user_id=int64s, day=days,
                             page_size=int32s, page_token=texts, around_me=st.booleans()))
    if draw(st.booleans()):
        try:
            day = date.fromisoformat(request.day)
        except ValueError:  # the day is refused before the token is read
            return request
        request.page_token = token_of(draw, token_scope(request.user_id, day))
    return request


@st.composite
def list_likes_requests(draw) -> ranking_pb2.ListLikesRequest:
    """Garbage tokens, or tokens bound to the request's user and day holding any positions."""
    request = draw(st.builds(ranking_pb2.ListLikesRequest, user_id=int64s, day=days,
                             page_size=int32s, page_token=texts))
    if draw(st.booleans()):
        request.page_token = token_of(draw, f"likes:{request.user_id}:{request.day}", parts=2)
    return request


@st.composite
def list_friends_requests(draw) -> social_pb2.ListFriendsRequest:
    """Garbage tokens, or tokens bound to the request's user holding any position."""
    request = draw(st.builds(social_pb2.ListFriendsRequest, user_id=int64s, page_size=int32s,
                             page_token=texts))
    if draw(st.booleans()):
        request.page_token = token_of(draw, f"friends:{request.user_id}")
    return request


@st.composite
def hot_users_requests(draw) -> social_pb2.ListHotUsersRequest:
    """Garbage tokens, or tokens bound to the request's threshold holding any positions."""
    request = draw(st.builds(social_pb2.ListHotUsersRequest, min_friends=int64s,
                             page_size=int32s, page_token=texts))
    if draw(st.booleans()):
        request.page_token = token_of(draw, f"hot:{request.min_friends}", parts=2)
    return request


@st.composite
def timestamps(draw) -> Timestamp | None:
    """Missing, anywhere in int64, or near the valid span of today."""
    kind = draw(st.sampled_from(["none", "any", "near"]))
    if kind == "none":
        return None
    if kind == "any":
        return Timestamp(seconds=draw(int64s), nanos=draw(int32s))
    start = int(day_start(today()).timestamp())
    return Timestamp(seconds=start + draw(st.integers(-7200, 60 * 3600)),
                     nanos=draw(st.sampled_from([0, 999_999_999, -1, 10**9])))


@st.composite
def step_reports(draw) -> ingest_pb2.StepReport:
    report = ingest_pb2.StepReport(
        user_id=draw(int64s), day=draw(days), report_id=draw(texts),
        steps=draw(st.one_of(int64s, st.integers(-5, 100_005))),
    )
    measured = draw(timestamps())
    if measured is not None:
        report.measured_at.CopyFrom(measured)
    return report


@pytest.fixture(scope="module")
def path():
    """A private write path with a private social_svc on private shard databases, so the
    generated writes (friendships of user 1, say) never touch the local stack's data."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    write_path = WritePath(
        {
            "STEPBOARD_MYSQL_SHARD_DSNS": databases.dsns,
            "STEPBOARD_SOCIAL_CACHE_NAMESPACE": unique("sg"),
        },
        own_social=True,
    )
    yield write_path
    write_path.close()
    databases.drop()


def status_of(call, request) -> tuple[grpc.StatusCode, str, object]:
    try:
        reply = call(request, timeout=10)
        if hasattr(reply, "__iter__") and not hasattr(reply, "ListFields"):
            reply = list(reply)  # drain a server stream
        return OK, "", reply
    except grpc.RpcError as error:
        return error.code(), error.details() or "", None


@FUZZ
@given(report=step_reports())
def test_report_steps(path, report):
    before = path.log_end(path.topic)
    code, details, _ = status_of(path.ingest.ReportSteps,
                                 ingest_pb2.ReportStepsRequest(report=report))
    assert code in (OK, INVALID), (code, details)
    if code == INVALID:
        assert details.startswith("report."), details
        assert path.log_end(path.topic) == before


@FUZZ
@given(reports=st.one_of(st.lists(step_reports(), max_size=12),
                         st.integers(1001, 1100).map(lambda n: [ingest_pb2.StepReport()] * n)))
def test_report_steps_batch(path, reports):
    before = path.log_end(path.topic)
    code, details, reply = status_of(path.ingest.ReportStepsBatch,
                                     ingest_pb2.ReportStepsBatchRequest(reports=reports))
    assert code in (OK, INVALID), (code, details)
    written = path.log_end(path.topic) - before
    if code == INVALID:
        assert details.startswith("reports: ") and written == 0
    else:
        assert [r.code for r in reply.results if r.code] == [3] * reply.rejected
        assert all(r.message.startswith(f"reports[{r.index}].") for r in reply.results if r.code)
        assert written == -(-reply.accepted // REPORTS_PER_RECORD)  # one record per 1,000


@FUZZ
@given(like=st.builds(ingest_pb2.LikeRequest, liker_id=int64s, liked_id=int64s, day=days,
                      liked=st.booleans()))
def test_like(path, like):
    before = path.log_end(path.topic)
    code, details, _ = status_of(path.ingest.Like, like)
    assert code in (OK, INVALID, NOT_FRIENDS), (code, details)
    if code != OK:
        assert details.startswith(("liker_id: ", "liked_id: ", "day: ", "not friends: "))
        assert path.log_end(path.topic) == before


READS = {
    "GetGlobalTop": (st.builds(ranking_pb2.GetGlobalTopRequest, day=days, limit=int32s),
                     (OK, INVALID)),
    "GetGlobalRank": (st.builds(ranking_pb2.GetGlobalRankRequest, user_id=int64s, day=days),
                      (OK, INVALID, NOT_FOUND)),
    "GetFriendRanking": (friend_ranking_requests(), (OK, INVALID)),
    "ListLikes": (list_likes_requests(), (OK, INVALID)),
}


@pytest.mark.parametrize("method", sorted(READS))
def test_ranking_reads(path, method):
    strategy, allowed = READS[method]

    @FUZZ
    @given(request=strategy)
    def check(request):
        code, details, _ = status_of(getattr(path.ranking, method), request)
        assert code in allowed, (code, details)

    check()


SOCIAL = {
    "AddFriendship": st.builds(social_pb2.AddFriendshipRequest, user_id=int64s, friend_id=int64s),
    "RemoveFriendship": st.builds(social_pb2.RemoveFriendshipRequest, user_id=int64s,
                                  friend_id=int64s),
    "ListFriends": list_friends_requests(),
    "StreamFriends": st.builds(social_pb2.StreamFriendsRequest, user_id=int64s,
                               chunk_size=int32s),
    "UpsertProfile": st.builds(
        social_pb2.UpsertProfileRequest,
        profile=st.none() | st.builds(
            social_pb2.Profile, user_id=int64s, nickname=texts,
            avatar_url=st.one_of(texts, texts.map("https://x.example/".__add__)),
        ),
    ),
    "GetProfiles": st.builds(social_pb2.GetProfilesRequest,
                             user_ids=st.one_of(st.lists(int64s, max_size=20),
                                                st.integers(1001, 1100).map(lambda n: [1] * n))),
    "ListHotUsers": hot_users_requests(),
    "CheckFriendship": st.builds(social_pb2.CheckFriendshipRequest, user_id=int64s,
                                 friend_id=int64s),
}


@pytest.mark.parametrize("method", sorted(SOCIAL))
def test_friend_graph(path, method):
    @FUZZ
    @given(request=SOCIAL[method])
    def check(request):
        code, details, _ = status_of(getattr(path.social, method), request)
        assert code in (OK, INVALID), (code, details)
        if method == "UpsertProfile" and code == INVALID:
            profile = request.profile
            stored = path.social.GetProfiles(
                social_pb2.GetProfilesRequest(user_ids=[profile.user_id]), timeout=10
            ) if profile.user_id > 0 else social_pb2.GetProfilesResponse()
            assert all(p.nickname != profile.nickname or p.avatar_url != profile.avatar_url
                       for p in stored.profiles)

    check()


METHODS = [
    *(f"/stepboard.v1.StepIngest/{m}" for m in ("ReportSteps", "ReportStepsBatch", "Like")),
    *(f"/stepboard.v1.Ranking/{m}" for m in READS),
    *(f"/stepboard.v1.FriendGraph/{m}" for m in SOCIAL),
]


def address_of(path: WritePath, service: str) -> str:
    """Where the path's server for ``service`` (StepIngest, Ranking, FriendGraph) listens."""
    return {
        "StepIngest": path.ingest_address,
        "Ranking": path.rank_address,
        "FriendGraph": path.env["STEPBOARD_SOCIAL_ADDR"],
    }[service]


@pytest.mark.parametrize("method", METHODS)
def test_garbage_bytes_and_oversized_messages(path, method):
    channel = grpc.insecure_channel(address_of(path, method.split("/")[1].split(".")[-1]))
    streaming = method.endswith("StreamFriends")
    call = (channel.unary_stream if streaming else channel.unary_unary)(method)

    @FUZZ
    @given(data=st.binary(min_size=1, max_size=300))
    def check(data):
        code, details, _ = status_of(call, data)
        assert code in (OK, INVALID, NOT_FOUND, NOT_FRIENDS), (code, details)

    check()
    code, _, _ = status_of(call, b"\x0a" + b"\xff" * 5 * 1024 * 1024)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()


def test_servers_survive(path):
    for service in ("StepIngest", "Ranking", "FriendGraph"):
        with grpc.insecure_channel(address_of(path, service)) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
