import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StepReport(_message.Message):
    __slots__ = ("user_id", "day", "steps", "measured_at", "report_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MEASURED_AT_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    day: str
    steps: int
    measured_at: _timestamp_pb2.Timestamp
    report_id: str
    def __init__(self, user_id: _Optional[int] = ..., day: _Optional[str] = ..., steps: _Optional[int] = ..., measured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., report_id: _Optional[str] = ...) -> None: ...

class ReportStepsRequest(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: StepReport
    def __init__(self, report: _Optional[_Union[StepReport, _Mapping]] = ...) -> None: ...

class ReportStepsResponse(_message.Message):
    __slots__ = ("report_id", "partition", "offset")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    partition: int
    offset: int
    def __init__(self, report_id: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ReportStepsBatchRequest(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[StepReport]
    def __init__(self, reports: _Optional[_Iterable[_Union[StepReport, _Mapping]]] = ...) -> None: ...

class ReportResult(_message.Message):
    __slots__ = ("index", "report_id", "code", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    report_id: str
    code: int
    message: str
    def __init__(self, index: _Optional[int] = ..., report_id: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ReportStepsBatchResponse(_message.Message):
    __slots__ = ("results", "accepted", "rejected")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReportResult]
    accepted: int
    rejected: int
    def __init__(self, results: _Optional[_Iterable[_Union[ReportResult, _Mapping]]] = ..., accepted: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class LikeRequest(_message.Message):
    __slots__ = ("liker_id", "liked_id", "day", "liked")
    LIKER_ID_FIELD_NUMBER: _ClassVar[int]
    LIKED_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    LIKED_FIELD_NUMBER: _ClassVar[int]
    liker_id: int
    liked_id: int
    day: str
    liked: bool
    def __init__(self, liker_id: _Optional[int] = ..., liked_id: _Optional[int] = ..., day: _Optional[str] = ..., liked: _Optional[bool] = ...) -> None: ...

class LikeResponse(_message.Message):
    __slots__ = ("partition", "offset")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    partition: int
    offset: int
    def __init__(self, partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class LikeRecord(_message.Message):
    __slots__ = ("like",)
    LIKE_FIELD_NUMBER: _ClassVar[int]
    like: LikeRequest
    def __init__(self, like: _Optional[_Union[LikeRequest, _Mapping]] = ...) -> None: ...
