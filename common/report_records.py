"""The value of a record on the reports topic: many step reports in one Kafka record.

A record's value is a serialized ``ReportStepsBatchRequest``: the reports one call
accepted, in the order given, with their ids filled in. One record per call (not per
report) is what lets one ingest process acknowledge over 100k reports/s: Kafka's and the
client library's cost per record (queueing, delivery report, a Python callback) is paid
once per call. Records carry no key: max-merge needs no per-user order, so any partition
will do and the client spreads them at random.
"""

from collections.abc import Sequence

from google.protobuf.message import DecodeError

from stepboard.v1 import ingest_pb2

# Reports per record: a full batch of the default size fits one record, and a record stays
# far below Kafka's 1 MB message limit (a report is at most ~200 bytes).
REPORTS_PER_RECORD = 1000


def encode_reports(reports: Sequence[ingest_pb2.StepReport]) -> bytes:
    """One record value holding ``reports``."""
    return ingest_pb2.ReportStepsBatchRequest(reports=reports).SerializeToString(
        deterministic=True
    )


def decode_reports(value: bytes | None) -> list[ingest_pb2.StepReport]:
    """The reports of one record value; ``DecodeError`` if it is not one or holds none
    (a record of the old one-report format decodes to none and is refused, not dropped)."""
    reports = list(ingest_pb2.ReportStepsBatchRequest.FromString(value or b"").reports)
    if not reports:
        raise DecodeError("no reports (a record holds a serialized ReportStepsBatchRequest)")
    return reports
