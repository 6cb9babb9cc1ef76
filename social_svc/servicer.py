"""FriendGraph: validation and messages; the graph itself is :class:`SocialGraph`."""


from common.errors import InvalidArgument
from common.page_tokens import decode_numbers, encode_token
from social_svc.graph import SocialGraph
from social_svc.privacy import Privacy
from social_svc.store import StoredProfile
from stepboard.v1 import social_pb2, social_pb2_grpc

DEFAULT_PAGE = 100
MAX_PAGE = 1000
DEFAULT_CHUNK = 1000
MAX_CHUNK = 10_000
MAX_PROFILES = 1000
MAX_NICKNAME_CHARS = 64
MAX_AVATAR_BYTES = 512
AVATAR_SCHEME = "https://"


def check_user(field: str, user_id: int) -> int:
    """``user_id`` if it is a valid id (> 0)."""
    if user_id <= 0:
        raise InvalidArgument(field, f"must be > 0, got {user_id}")
    return user_id


def check_pair(user_id: int, friend_id: int) -> tuple[int, int]:
    """Two valid, different user ids."""
    check_user("user_id", user_id)
    check_user("friend_id", friend_id)
    if user_id == friend_id:
        raise InvalidArgument("friend_id", "must differ from user_id (no self-friendship)")
    return user_id, friend_id


def check_size(field: str, size: int, default: int, maximum: int) -> int:
    """A page or chunk size: 0 means ``default``, otherwise 1..``maximum``."""
    if size == 0:
        return default
    if not 1 <= size <= maximum:
        raise InvalidArgument(field, f"must be between 1 and {maximum}, got {size}")
    return size


def check_image_url(field: str, url: str) -> str:
    """``url`` if it is empty or an https URL of at most 512 bytes, printable ASCII without
    spaces: the rule of every picture of a profile (``avatar_url``, ``cover_url``)."""
    if url:
        if len(url.encode()) > MAX_AVATAR_BYTES:
            raise InvalidArgument(field, f"must be at most {MAX_AVATAR_BYTES} bytes")
        if not url.startswith(AVATAR_SCHEME) or len(url) == len(AVATAR_SCHEME):
            raise InvalidArgument(field, "must be an https:// URL")
        if not url.isascii() or not url.isprintable() or " " in url:
            raise InvalidArgument(field, "must be printable ASCII without spaces")
    return url


def check_profile(profile: social_pb2.Profile, prefix: str = "") -> StoredProfile:
    """A profile to store: valid id, nickname of 1-64 characters, avatar and cover each
    empty or an https URL (:func:`check_image_url`). Errors name the field after
    ``prefix`` (``profile.`` in UpsertProfile, as ReportSteps names ``report.user_id``)."""
    check_user(f"{prefix}user_id", profile.user_id)
    nickname = profile.nickname
    if not 1 <= len(nickname) <= MAX_NICKNAME_CHARS:
        raise InvalidArgument(
            f"{prefix}nickname",
            f"must be 1 to {MAX_NICKNAME_CHARS} characters, got {len(nickname)}",
        )
    return StoredProfile(
        profile.user_id, nickname,
        check_image_url(f"{prefix}avatar_url", profile.avatar_url),
        check_image_url(f"{prefix}cover_url", profile.cover_url),
    )


class FriendGraphServicer(social_pb2_grpc.FriendGraphServicer):
    """The FriendGraph RPCs over a :class:`SocialGraph`."""

    def __init__(self, graph: SocialGraph, privacy: Privacy) -> None:
        self._graph = graph
        self._privacy = privacy

    def AddFriendship(self, request, context):
        """Makes both users friends of each other; repeating it changes nothing."""
        self._graph.add_friendship(*check_pair(request.user_id, request.friend_id))
        return social_pb2.AddFriendshipResponse()

    def RemoveFriendship(self, request, context):
        """Ends the friendship in both directions; repeating it changes nothing."""
        self._graph.remove_friendship(*check_pair(request.user_id, request.friend_id))
        return social_pb2.RemoveFriendshipResponse()

    def ListFriends(self, request, context):
        """One page of friend ids, ascending; the token resumes after the last id."""
        user_id = check_user("user_id", request.user_id)
        size = check_size("page_size", request.page_size, DEFAULT_PAGE, MAX_PAGE)
        scope = f"friends:{user_id}"
        (after,) = decode_numbers(request.page_token, scope, 1) if request.page_token else [0]
        page = self._graph.friend_page(user_id, after, size)
        token = encode_token(scope, str(page.friend_ids[-1])) if page.more else ""
        return social_pb2.ListFriendsResponse(
            friend_ids=page.friend_ids, next_page_token=token, total_count=page.total_count
        )

    def StreamFriends(self, request, context):
        """The whole friend list in ascending chunks."""
        user_id = check_user("user_id", request.user_id)
        size = check_size("chunk_size", request.chunk_size, DEFAULT_CHUNK, MAX_CHUNK)
        for chunk in self._graph.friend_chunks(user_id, size):
            if not context.is_active():
                return
            yield social_pb2.FriendChunk(friend_ids=chunk)

    def CheckFriendship(self, request, context):
        """Whether the two users are friends."""
        friends = self._graph.are_friends(*check_pair(request.user_id, request.friend_id))
        return social_pb2.CheckFriendshipResponse(friends=friends)

    def UpsertProfile(self, request, context):
        """Creates or replaces the profile and returns it as stored."""
        if not request.HasField("profile"):
            raise InvalidArgument("profile", "is required")
        stored = check_profile(request.profile, prefix="profile.")
        self._graph.upsert_profile(stored)
        return social_pb2.UpsertProfileResponse(profile=social_pb2.Profile(**stored._asdict()))

    def GetProfiles(self, request, context):
        """Profiles of the requested users in request order; unknown users are left out."""
        if len(request.user_ids) > MAX_PROFILES:
            raise InvalidArgument(
                "user_ids", f"at most {MAX_PROFILES} ids, got {len(request.user_ids)}"
            )
        for user_id in request.user_ids:
            check_user("user_ids", user_id)
        wanted = list(dict.fromkeys(request.user_ids))
        found = self._graph.profiles(wanted) if wanted else {}
        return social_pb2.GetProfilesResponse(
            profiles=[found[user_id] for user_id in wanted if user_id in found]
        )

    def ListHotUsers(self, request, context):
        """Users with at least ``min_friends`` friends: one physical shard after another,
        ascending by id within each."""
        min_friends = request.min_friends
        if min_friends <= 0:
            raise InvalidArgument("min_friends", f"must be > 0, got {min_friends}")
        size = check_size("page_size", request.page_size, DEFAULT_PAGE, MAX_PAGE)
        scope = f"hot:{min_friends}"
        shard, after = (
            decode_numbers(request.page_token, scope, 2) if request.page_token else (0, 0)
        )
        store = self._graph.store
        if shard >= store.shard_count:
            raise InvalidArgument("page_token", "is not a valid page token")
        users: list[tuple[int, int]] = []
        while shard < store.shard_count:
            rows = store.hot_users(shard, min_friends, after, size - len(users))
            users += rows
            if len(users) == size:
                break
            shard, after = shard + 1, 0
        token = (
            encode_token(scope, f"{shard}:{users[-1][0]}")
            if users and shard < store.shard_count else ""
        )
        return social_pb2.ListHotUsersResponse(
            users=[social_pb2.HotUser(user_id=u, friend_count=c) for u, c in users],
            next_page_token=token,
        )

    # -- privacy (social_svc/privacy.py) --------------------------------------------------
    def SetRankingVisibility(self, request, context):
        """Takes the user out of the rankings, or back in; idempotent."""
        self._privacy.set_visibility(check_user("user_id", request.user_id), request.visible)
        return social_pb2.SetRankingVisibilityResponse()

    def SetStepsHidden(self, request, context):
        """Hides the user's steps from ``friend_id``, or shows them again; idempotent."""
        self._privacy.set_hidden(*check_pair(request.user_id, request.friend_id),
                                 request.hidden)
        return social_pb2.SetStepsHiddenResponse()

    def GetPrivacySettings(self, request, context):
        """Whether the user is in the rankings, and whom they hide from."""
        return self._privacy.settings(check_user("user_id", request.user_id))

    def GetRankingExclusions(self, request, context):
        """Who must be left out of what ``viewer_id`` (0: no viewer) is shown."""
        if request.viewer_id:
            check_user("viewer_id", request.viewer_id)
        return self._privacy.exclusions(request.viewer_id, request.include_opted_out)
