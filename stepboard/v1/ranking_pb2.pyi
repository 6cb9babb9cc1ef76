import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Period(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERIOD_UNSPECIFIED: _ClassVar[Period]
    PERIOD_DAY: _ClassVar[Period]
    PERIOD_WEEK: _ClassVar[Period]
    PERIOD_MONTH: _ClassVar[Period]
PERIOD_UNSPECIFIED: Period
PERIOD_DAY: Period
PERIOD_WEEK: Period
PERIOD_MONTH: Period

class RankEntry(_message.Message):
    __slots__ = ("rank", "user_id", "steps", "nickname", "avatar_url", "reached_at", "likes", "liked_by_me")
    RANK_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    REACHED_AT_FIELD_NUMBER: _ClassVar[int]
    LIKES_FIELD_NUMBER: _ClassVar[int]
    LIKED_BY_ME_FIELD_NUMBER: _ClassVar[int]
    rank: int
    user_id: int
    steps: int
    nickname: str
    avatar_url: str
    reached_at: _timestamp_pb2.Timestamp
    likes: int
    liked_by_me: bool
    def __init__(self, rank: _Optional[int] = ..., user_id: _Optional[int] = ..., steps: _Optional[int] = ..., nickname: _Optional[str] = ..., avatar_url: _Optional[str] = ..., reached_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., likes: _Optional[int] = ..., liked_by_me: _Optional[bool] = ...) -> None: ...

class GetFriendRankingRequest(_message.Message):
    __slots__ = ("user_id", "day", "page_size", "page_token", "around_me", "period")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AROUND_ME_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    day: str
    page_size: int
    page_token: str
    around_me: bool
    period: Period
    def __init__(self, user_id: _Optional[int] = ..., day: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., around_me: _Optional[bool] = ..., period: _Optional[_Union[Period, str]] = ...) -> None: ...

class GetFriendRankingResponse(_message.Message):
    __slots__ = ("entries", "me", "total", "next_page_token", "computed_at", "stale_friends", "stale_ranking", "window_first_day", "window_last_day", "champion")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    STALE_FRIENDS_FIELD_NUMBER: _ClassVar[int]
    STALE_RANKING_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIRST_DAY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_LAST_DAY_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[RankEntry]
    me: RankEntry
    total: int
    next_page_token: str
    computed_at: _timestamp_pb2.Timestamp
    stale_friends: bool
    stale_ranking: bool
    window_first_day: str
    window_last_day: str
    champion: Champion
    def __init__(self, entries: _Optional[_Iterable[_Union[RankEntry, _Mapping]]] = ..., me: _Optional[_Union[RankEntry, _Mapping]] = ..., total: _Optional[int] = ..., next_page_token: _Optional[str] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stale_friends: _Optional[bool] = ..., stale_ranking: _Optional[bool] = ..., window_first_day: _Optional[str] = ..., window_last_day: _Optional[str] = ..., champion: _Optional[_Union[Champion, _Mapping]] = ...) -> None: ...

class Champion(_message.Message):
    __slots__ = ("entry", "cover_url")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    COVER_URL_FIELD_NUMBER: _ClassVar[int]
    entry: RankEntry
    cover_url: str
    def __init__(self, entry: _Optional[_Union[RankEntry, _Mapping]] = ..., cover_url: _Optional[str] = ...) -> None: ...

class GetGlobalTopRequest(_message.Message):
    __slots__ = ("day", "limit", "period", "viewer_id")
    DAY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    VIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    day: str
    limit: int
    period: Period
    viewer_id: int
    def __init__(self, day: _Optional[str] = ..., limit: _Optional[int] = ..., period: _Optional[_Union[Period, str]] = ..., viewer_id: _Optional[int] = ...) -> None: ...

class GetGlobalTopResponse(_message.Message):
    __slots__ = ("entries", "total_participants", "window_first_day", "window_last_day")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIRST_DAY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_LAST_DAY_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[RankEntry]
    total_participants: int
    window_first_day: str
    window_last_day: str
    def __init__(self, entries: _Optional[_Iterable[_Union[RankEntry, _Mapping]]] = ..., total_participants: _Optional[int] = ..., window_first_day: _Optional[str] = ..., window_last_day: _Optional[str] = ...) -> None: ...

class GetGlobalRankRequest(_message.Message):
    __slots__ = ("user_id", "day", "period")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    day: str
    period: Period
    def __init__(self, user_id: _Optional[int] = ..., day: _Optional[str] = ..., period: _Optional[_Union[Period, str]] = ...) -> None: ...

class GetGlobalRankResponse(_message.Message):
    __slots__ = ("entry", "total_participants", "window_first_day", "window_last_day", "in_rankings")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIRST_DAY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_LAST_DAY_FIELD_NUMBER: _ClassVar[int]
    IN_RANKINGS_FIELD_NUMBER: _ClassVar[int]
    entry: RankEntry
    total_participants: int
    window_first_day: str
    window_last_day: str
    in_rankings: bool
    def __init__(self, entry: _Optional[_Union[RankEntry, _Mapping]] = ..., total_participants: _Optional[int] = ..., window_first_day: _Optional[str] = ..., window_last_day: _Optional[str] = ..., in_rankings: _Optional[bool] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("user_id", "from_day", "to_day")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_DAY_FIELD_NUMBER: _ClassVar[int]
    TO_DAY_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    from_day: str
    to_day: str
    def __init__(self, user_id: _Optional[int] = ..., from_day: _Optional[str] = ..., to_day: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("days",)
    DAYS_FIELD_NUMBER: _ClassVar[int]
    days: _containers.RepeatedCompositeFieldContainer[HistoryDay]
    def __init__(self, days: _Optional[_Iterable[_Union[HistoryDay, _Mapping]]] = ...) -> None: ...

class HistoryDay(_message.Message):
    __slots__ = ("day", "steps", "reached_at", "global_rank", "archived")
    DAY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REACHED_AT_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_RANK_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    day: str
    steps: int
    reached_at: _timestamp_pb2.Timestamp
    global_rank: int
    archived: bool
    def __init__(self, day: _Optional[str] = ..., steps: _Optional[int] = ..., reached_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., global_rank: _Optional[int] = ..., archived: _Optional[bool] = ...) -> None: ...

class ListLikesRequest(_message.Message):
    __slots__ = ("user_id", "day", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    day: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[int] = ..., day: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Liker(_message.Message):
    __slots__ = ("user_id", "nickname", "avatar_url", "liked_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    LIKED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    nickname: str
    avatar_url: str
    liked_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[int] = ..., nickname: _Optional[str] = ..., avatar_url: _Optional[str] = ..., liked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListLikesResponse(_message.Message):
    __slots__ = ("likers", "next_page_token", "total")
    LIKERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    likers: _containers.RepeatedCompositeFieldContainer[Liker]
    next_page_token: str
    total: int
    def __init__(self, likers: _Optional[_Iterable[_Union[Liker, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...
