"""UpsertProfile's request handling as pure logic: the profile travels in
UpsertProfileRequest/UpsertProfileResponse, a bad field is INVALID_ARGUMENT named under
``profile.`` and stores nothing (tests/integration/test_social_graph.py repeats it end to
end against MariaDB)."""

import pytest

from common.errors import InvalidArgument
from social_svc.servicer import FriendGraphServicer
from social_svc.store import StoredProfile
from stepboard.v1 import social_pb2


class RecordingGraph:
    """Stands in for SocialGraph: records the profiles it is asked to store."""

    def __init__(self) -> None:
        self.stored: list[StoredProfile] = []

    def upsert_profile(self, profile: StoredProfile) -> None:
        self.stored.append(profile)


@pytest.fixture
def graph() -> RecordingGraph:
    return RecordingGraph()


@pytest.fixture
def servicer(graph: RecordingGraph) -> FriendGraphServicer:
    return FriendGraphServicer(graph, privacy=None)


def test_the_profile_is_stored_and_answered_as_stored(servicer, graph):
    profile = social_pb2.Profile(user_id=7, nickname="Ada", avatar_url="https://a/ada.png",
                                 cover_url="https://c/ada.jpg")
    reply = servicer.UpsertProfile(social_pb2.UpsertProfileRequest(profile=profile), None)
    assert reply == social_pb2.UpsertProfileResponse(profile=profile)
    assert graph.stored == [StoredProfile(7, "Ada", "https://a/ada.png", "https://c/ada.jpg")]


@pytest.mark.parametrize("profile, field", [
    (None, "profile"),
    (social_pb2.Profile(nickname="Ada"), "profile.user_id"),
    (social_pb2.Profile(user_id=7), "profile.nickname"),
    (social_pb2.Profile(user_id=7, nickname="x" * 65), "profile.nickname"),
    (social_pb2.Profile(user_id=7, nickname="Ada", avatar_url="http://a/x.png"),
     "profile.avatar_url"),
    (social_pb2.Profile(user_id=7, nickname="Ada", cover_url="https://"),
     "profile.cover_url"),
])
def test_a_bad_request_names_its_field_and_stores_nothing(servicer, graph, profile, field):
    with pytest.raises(InvalidArgument) as raised:
        servicer.UpsertProfile(social_pb2.UpsertProfileRequest(profile=profile), None)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert graph.stored == []
