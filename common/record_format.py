"""The value of a record on the reports topic: many step reports in one Kafka record.

A record's value is a serialized ``ReportStepsBatchRequest``: the reports one call
accepted, in the order given, with their ids filled in. One record per call (not per
report) is what lets one ingest process acknowledge over 100k reports/s: Kafka's and the
client library's cost per record (queueing, delivery report, a Python callback) is paid
once per call.

Max-merge needs no per-user order, so a record may go to any partition. A ``ReportSteps``
record has no key: the client then sticks to one partition for a few milliseconds, so
many small records share one produce request (ReportSteps +20 % against a random
partition per record). A ``ReportStepsBatch`` record is keyed by its first report's user,
only so that big records spread evenly over the partitions (unkeyed, a burst of them
landed 98 % on two of eight partitions, and one consumer did all the work).
"""

from collections.abc import Sequence

from google.protobuf.message import DecodeError

from stepboard.v1 import ingest_pb2

# Reports per record: a full batch of the default size fits one record, and a record stays
# far below Kafka's 1 MB message limit (a report is at most ~200 bytes).
REPORTS_PER_RECORD = 1000
_FIELD_1 = 0x0A  # protobuf tag of field 1 (``reports``), length-delimited

Record = tuple[bytes | None, bytes]  # (key, value) of one Kafka record


def batch_key(first: ingest_pb2.StepReport) -> bytes:
    """The key of a ``ReportStepsBatch`` record: its first report's user (see above)."""
    return str(first.user_id).encode()


def encode_reports(reports: Sequence[ingest_pb2.StepReport]) -> bytes:
    """One record value holding ``reports``."""
    return ingest_pb2.ReportStepsBatchRequest(reports=reports).SerializeToString(
        deterministic=True
    )


def decode_reports(value: bytes | None) -> Sequence[ingest_pb2.StepReport]:
    """The reports of one record value; ``DecodeError`` if it holds none."""
    if (value and len(value) >= 2 and value[0] == _FIELD_1 and value[1] < 0x80
            and len(value) == 2 + value[1]):
        # One report shorter than 128 bytes (ReportSteps): the record is its bytes behind a
        # 2-byte header (field 1, length). Parsed directly: ~0.5 us less per record.
        return (ingest_pb2.StepReport.FromString(value[2:]),)
    reports = ingest_pb2.ReportStepsBatchRequest.FromString(value or b"").reports
    if reports:
        return reports
    raise DecodeError("no reports (a record holds a serialized ReportStepsBatchRequest)")


# -- like records ------------------------------------------------------------------------
# A like (``StepIngest.Like``) travels on the same topic as a serialized ``LikeRecord``,
# whose only field is field 2: its first byte tells it from a report record (field 1).
_LIKE_TAG = 0x12  # protobuf tag of LikeRecord field 2 (``like``), length-delimited


def like_key(like: ingest_pb2.LikeRequest) -> bytes:
    """The key of a like record: the liked user, so every change of one (liker, liked, day)
    lands in one partition, in the order ingest produced them."""
    return str(like.liked_id).encode()


def encode_like(like: ingest_pb2.LikeRequest) -> bytes:
    """One record value holding ``like``."""
    return ingest_pb2.LikeRecord(like=like).SerializeToString(deterministic=True)


def is_like(value: bytes | None) -> bool:
    """Whether a record value is a like record (else it is a report record)."""
    return bool(value) and value[0] == _LIKE_TAG


def decode_like(value: bytes) -> ingest_pb2.LikeRequest:
    """The like of a like record value; ``DecodeError`` if it holds none."""
    record = ingest_pb2.LikeRecord.FromString(value)
    if not record.HasField("like"):
        raise DecodeError("no like (a like record holds a serialized LikeRecord)")
    return record.like
