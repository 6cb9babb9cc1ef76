"""What the write path promises past the happy path.

Each test runs its own services from this tree on a private topic, group and board
namespace (:mod:`tests.write_path`).
"""

import grpc

from common.report_records import decode_reports, encode_reports
from stepboard.v1 import ingest_pb2
from tests.harness import free_port, report, start_process, today
from tests.write_path import WritePath

# -- unknown fields ---------------------------------------------------------------------

def varint(value: int) -> bytes:
    """``value`` as a protobuf varint."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def with_unknown_field(message: bytes, size: int) -> bytes:
    """``message`` followed by a length-delimited field number 1000 of ``size`` bytes,
    which no message of the API has."""
    return message + varint(1000 << 3 | 2) + varint(size) + b"u" * size


def embedded(field: int, message: bytes) -> bytes:
    """``message`` as length-delimited field ``field`` of an enclosing message."""
    return varint(field << 3 | 2) + varint(len(message)) + message


def test_unknown_fields_are_dropped_before_a_report_reaches_kafka():
    """A request with large unknown fields (beside and inside its reports) is accepted, and
    its record holds only the fields the schema knows."""
    path = WritePath({})
    port = free_port()
    ingest = start_process("ingest_svc", path.env | {"STEPBOARD_GRPC_PORT": str(port)})
    path.consumers.append(ingest)  # stopped with the path
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        day = today()
        single, pair = report(1, day, 10, 5, "one"), [report(2, day, 20, 5, "two"),
                                                      report(3, day, 30, 5, "three")]
        half_mib = 512 * 1024
        calls = [
            ("ReportSteps", ingest_pb2.ReportStepsResponse,
             embedded(1, with_unknown_field(single.SerializeToString(), half_mib))),
            ("ReportStepsBatch", ingest_pb2.ReportStepsBatchResponse,
             b"".join(embedded(1, with_unknown_field(r.SerializeToString(), half_mib))
                      for r in pair)),
        ]
        replies = []
        for method, reply_type, body in calls:
            call = channel.unary_unary(f"/stepboard.v1.StepIngest/{method}",
                                       request_serializer=None,
                                       response_deserializer=reply_type.FromString)
            replies.append(call(with_unknown_field(body, 2 * half_mib), timeout=10))
        assert replies[0].report_id == "one"
        assert [(r.code, r.report_id) for r in replies[1].results] == [(0, "two"), (0, "three")]
        records = path.read_topic(path.topic, 2)
        values = sorted((m.value() for m in records), key=len)
        assert values == [encode_reports([single]), encode_reports(pair)]
        assert [list(decode_reports(v)) for v in values] == [[single], pair]
    finally:
        channel.close()
        path.close()
