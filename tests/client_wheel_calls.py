"""Makes every RPC of stepboard.v1 through the installed client package, checking each
answer; run by tests/integration/test_client_wheel.py in a virtualenv holding only the
client wheel and its dependencies, so it imports nothing from the repository.

Usage: python client_wheel_calls.py INGEST SOCIAL RANK FIRST_USER_ID
Prints ``called <method>`` for each RPC answered as expected; exits non-zero otherwise.
"""

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from stepboard_client import Client

WAIT_S = 20.0
Answer = TypeVar("Answer")


def called(method: str) -> None:
    """Records that ``method`` answered as expected."""
    print("called", method, flush=True)


def wait_for(read: Callable[[], Answer], done: Callable[[Answer], bool]) -> Answer:
    """``read()`` again until ``done`` holds (the consumer applies reports and likes
    asynchronously); fails after :data:`WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = read()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"not applied within {WAIT_S} s: {answer}"
        time.sleep(0.2)


def upsert_profile(client: Client, user_id: int, nickname: str) -> None:
    """The one UpsertProfile call (its request and response messages are the proto's)."""
    answer = client.social.UpsertProfile(social_pb2.UpsertProfileRequest(
        profile=social_pb2.Profile(user_id=user_id, nickname=nickname)))
    assert answer.profile.nickname == nickname, answer
    called("UpsertProfile")


def call_friend_graph(client: Client, me: int, friend: int) -> None:
    """Every FriendGraph method but RemoveFriendship: ``me`` and ``friend`` end as friends,
    with profiles, and nothing hidden."""
    upsert_profile(client, me, "Me")
    upsert_profile(client, friend, "Friend")
    client.add_friendship(me, friend)
    called("AddFriendship")
    check = social_pb2.CheckFriendshipRequest(user_id=me, friend_id=friend)
    assert client.social.CheckFriendship(check).friends
    called("CheckFriendship")
    listed = client.social.ListFriends(social_pb2.ListFriendsRequest(user_id=me))
    assert list(listed.friend_ids) == [friend], listed
    called("ListFriends")
    chunks = client.social.StreamFriends(social_pb2.StreamFriendsRequest(user_id=me))
    assert [i for chunk in chunks for i in chunk.friend_ids] == [friend]
    called("StreamFriends")
    profiles = client.social.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[me, friend]))
    assert {p.user_id: p.nickname for p in profiles.profiles} == {me: "Me", friend: "Friend"}
    called("GetProfiles")
    hot = client.social.ListHotUsers(social_pb2.ListHotUsersRequest(min_friends=1, page_size=1))
    assert (hot.users or hot.next_page_token) and len(hot.users) <= 1, hot
    assert all(user.friend_count >= 1 for user in hot.users), hot
    called("ListHotUsers")
    client.social.SetRankingVisibility(
        social_pb2.SetRankingVisibilityRequest(user_id=friend, visible=True))
    called("SetRankingVisibility")
    hide = social_pb2.SetStepsHiddenRequest(user_id=friend, friend_id=me, hidden=True)
    client.social.SetStepsHidden(hide)
    called("SetStepsHidden")
    privacy = client.social.GetPrivacySettings(
        social_pb2.GetPrivacySettingsRequest(user_id=friend))
    assert privacy.in_rankings and list(privacy.hidden_from) == [me], privacy
    called("GetPrivacySettings")
    exclusions = client.social.GetRankingExclusions(
        social_pb2.GetRankingExclusionsRequest(viewer_id=me))
    assert list(exclusions.hiders) == [friend], exclusions
    called("GetRankingExclusions")
    hide.hidden = False
    client.social.SetStepsHidden(hide)


def call_ingest(client: Client, me: int, friend: int, now: datetime) -> None:
    """Every StepIngest method: ``me`` walked 5,000 steps today, ``friend`` 6,000, and
    ``friend`` likes ``me``'s day."""
    answer = client.report_steps(me, now.date(), 5000, measured_at=now, report_id=f"r{me}")
    assert answer.report_id == f"r{me}", answer
    called("ReportSteps")
    report = ingest_pb2.StepReport(user_id=friend, day=now.date().isoformat(), steps=6000)
    report.measured_at.FromDatetime(now)
    batch = client.report_steps_batch([report])
    assert (batch.accepted, batch.rejected) == (1, 0), batch
    called("ReportStepsBatch")
    client.like(friend, me, now.date())
    called("Like")


def call_ranking(client: Client, me: int, friend: int, now: datetime) -> None:
    """Every Ranking method, once the consumer applied :func:`call_ingest`'s writes."""
    day = now.date()
    ranking = wait_for(lambda: client.friend_ranking(me, day),
                       lambda answer: len(answer.entries) == 2 and answer.entries[1].steps)
    assert [(e.user_id, e.steps) for e in ranking.entries] == [(friend, 6000), (me, 5000)]
    called("GetFriendRanking")
    rank = client.global_rank(me, day)
    assert (rank.entry.user_id, rank.entry.steps) == (me, 5000), rank
    called("GetGlobalRank")
    top = client.global_top(day, limit=1)
    assert len(top.entries) == 1 and top.total_participants >= 2, top
    called("GetGlobalTop")
    history = client.ranking.GetHistory(
        ranking_pb2.GetHistoryRequest(user_id=me, from_day=day.isoformat(),
                                      to_day=day.isoformat()))
    assert [(d.day, d.steps) for d in history.days] == [(day.isoformat(), 5000)], history
    called("GetHistory")
    likes = wait_for(
        lambda: client.ranking.ListLikes(
            ranking_pb2.ListLikesRequest(user_id=me, day=day.isoformat())),
        lambda answer: answer.total == 1)
    assert [liker.user_id for liker in likes.likers] == [friend], likes
    called("ListLikes")


def main() -> int:
    """Calls every method against the three addresses given, as two fresh users."""
    ingest, social, rank, first = sys.argv[1:]
    me, friend = int(first), int(first) + 1
    now = datetime.now(UTC)
    with Client(ingest, social, rank) as client:
        call_friend_graph(client, me, friend)
        call_ingest(client, me, friend, now)
        call_ranking(client, me, friend, now)
        client.social.RemoveFriendship(
            social_pb2.RemoveFriendshipRequest(user_id=me, friend_id=friend))
        check = social_pb2.CheckFriendshipRequest(user_id=me, friend_id=friend)
        assert not client.social.CheckFriendship(check).friends
        called("RemoveFriendship")
    return 0


if __name__ == "__main__":
    sys.exit(main())
