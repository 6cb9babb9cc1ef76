from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddFriendshipRequest(_message.Message):
    __slots__ = ("user_id", "friend_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ...) -> None: ...

class AddFriendshipResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveFriendshipRequest(_message.Message):
    __slots__ = ("user_id", "friend_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ...) -> None: ...

class RemoveFriendshipResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFriendsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFriendsResponse(_message.Message):
    __slots__ = ("friend_ids", "next_page_token", "total_count")
    FRIEND_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    friend_ids: _containers.RepeatedScalarFieldContainer[int]
    next_page_token: str
    total_count: int
    def __init__(self, friend_ids: _Optional[_Iterable[int]] = ..., next_page_token: _Optional[str] = ..., total_count: _Optional[int] = ...) -> None: ...

class StreamFriendsRequest(_message.Message):
    __slots__ = ("user_id", "chunk_size")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    chunk_size: int
    def __init__(self, user_id: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class FriendChunk(_message.Message):
    __slots__ = ("friend_ids",)
    FRIEND_IDS_FIELD_NUMBER: _ClassVar[int]
    friend_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, friend_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("user_id", "nickname", "avatar_url", "cover_url")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    COVER_URL_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    nickname: str
    avatar_url: str
    cover_url: str
    def __init__(self, user_id: _Optional[int] = ..., nickname: _Optional[str] = ..., avatar_url: _Optional[str] = ..., cover_url: _Optional[str] = ...) -> None: ...

class UpsertProfileRequest(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class UpsertProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class GetProfilesRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetProfilesResponse(_message.Message):
    __slots__ = ("profiles",)
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    def __init__(self, profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ...) -> None: ...

class ListHotUsersRequest(_message.Message):
    __slots__ = ("min_friends", "page_size", "page_token")
    MIN_FRIENDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    min_friends: int
    page_size: int
    page_token: str
    def __init__(self, min_friends: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class HotUser(_message.Message):
    __slots__ = ("user_id", "friend_count")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_COUNT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_count: int
    def __init__(self, user_id: _Optional[int] = ..., friend_count: _Optional[int] = ...) -> None: ...

class ListHotUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[HotUser]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[HotUser, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CheckFriendshipRequest(_message.Message):
    __slots__ = ("user_id", "friend_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ...) -> None: ...

class CheckFriendshipResponse(_message.Message):
    __slots__ = ("friends",)
    FRIENDS_FIELD_NUMBER: _ClassVar[int]
    friends: bool
    def __init__(self, friends: _Optional[bool] = ...) -> None: ...

class SetRankingVisibilityRequest(_message.Message):
    __slots__ = ("user_id", "visible")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    visible: bool
    def __init__(self, user_id: _Optional[int] = ..., visible: _Optional[bool] = ...) -> None: ...

class SetRankingVisibilityResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetStepsHiddenRequest(_message.Message):
    __slots__ = ("user_id", "friend_id", "hidden")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ID_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    friend_id: int
    hidden: bool
    def __init__(self, user_id: _Optional[int] = ..., friend_id: _Optional[int] = ..., hidden: _Optional[bool] = ...) -> None: ...

class SetStepsHiddenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPrivacySettingsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class PrivacySettings(_message.Message):
    __slots__ = ("user_id", "in_rankings", "hidden_from")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IN_RANKINGS_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FROM_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    in_rankings: bool
    hidden_from: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., in_rankings: _Optional[bool] = ..., hidden_from: _Optional[_Iterable[int]] = ...) -> None: ...

class GetRankingExclusionsRequest(_message.Message):
    __slots__ = ("viewer_id", "include_opted_out")
    VIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    viewer_id: int
    include_opted_out: bool
    def __init__(self, viewer_id: _Optional[int] = ..., include_opted_out: _Optional[bool] = ...) -> None: ...

class RankingExclusions(_message.Message):
    __slots__ = ("opted_out", "opted_out_generation", "hiders", "view_generation")
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_GENERATION_FIELD_NUMBER: _ClassVar[int]
    HIDERS_FIELD_NUMBER: _ClassVar[int]
    VIEW_GENERATION_FIELD_NUMBER: _ClassVar[int]
    opted_out: _containers.RepeatedScalarFieldContainer[int]
    opted_out_generation: bytes
    hiders: _containers.RepeatedScalarFieldContainer[int]
    view_generation: bytes
    def __init__(self, opted_out: _Optional[_Iterable[int]] = ..., opted_out_generation: _Optional[bytes] = ..., hiders: _Optional[_Iterable[int]] = ..., view_generation: _Optional[bytes] = ...) -> None: ...
