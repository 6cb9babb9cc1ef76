"""The reports topic's record format and how the writer reads it (pure logic)."""

import pytest
from google.protobuf.message import DecodeError

from common.record_format import decode_reports, encode_reports
from common.report_rules import day_start
from rank_svc.board_format import encode_score
from rank_svc.consumed_batch import DEAD_LETTER_REASONS, collapse, records_to_ask
from stepboard.v1 import ingest_pb2
from tests.fake_message import FakeMessage
from tests.harness import report, today


@pytest.mark.parametrize("reports", [
    [report(1, today(), 10, 5), report(2, today(), 20, 6, "id-2")],
    [report(3, today(), 30, 7, "id-3")],  # one short report: the direct path
    [report(4, today(), 40, 8, "x" * 128)],  # one report of 128 bytes or more
])
def test_a_record_holds_its_reports_in_order(reports):
    assert list(decode_reports(encode_reports(reports))) == reports


@pytest.mark.parametrize("value", [None, b"", b"\x0a", b"\x0a\x05abc", b"\xff\x00 not a protobuf",
                                   ingest_pb2.StepReport(steps=5).SerializeToString(),
                                   # a bare report is not a record: it holds no ``reports``
                                   report(7, today(), 10, 10).SerializeToString()])
def test_a_value_without_reports_is_refused(value):
    with pytest.raises(DecodeError):
        decode_reports(value)


def test_collapse_keeps_each_users_best_and_parks_each_bad_report_alone():
    day = today()
    bad = report(3, day, -1, 5)
    records = [encode_reports([report(1, day, 10, 5), bad, report(1, day, 30, 9)]),
               encode_reports([report(1, day, 20, 7), report(2, day, 5, 5)]),
               b"\xff\x00"]
    now_ms = int(day_start(day).timestamp() * 1000) + 60_000
    messages = [FakeMessage(value, offset, now_ms) for offset, value in enumerate(records)]
    batch = collapse(messages, 3)
    start = int(day_start(day).timestamp())
    assert batch.scores == {(day, 1): encode_score(day, 30, start + 9),
                            (day, 2): encode_score(day, 5, start + 5)}
    assert (batch.reports, batch.merged, batch.last_offsets) == (5, 4, {0: 2})
    assert [(d.source.offset(), d.value, d.reason.split(":")[0], d.kind)
            for d in batch.dead] == [
        (0, encode_reports([bad]), "invalid report [1]", "invalid_report"),
        (2, b"\xff\x00", "undecodable record", "undecodable_record"),
    ]
    assert {d.kind for d in batch.dead} <= set(DEAD_LETTER_REASONS)


@pytest.mark.parametrize(("records", "reports", "asked"), [
    (5000, 5000, 5000),  # one report per record: ask for the target
    (5, 5000, 5),  # whole batches: a handful of records
    (3, 1, 5000),  # never more than the target
    (1, 100_000, 1),  # never fewer than one
    (0, 0, 1),
])
def test_consume_asks_for_about_the_target_number_of_reports(records, reports, asked):
    assert records_to_ask(5000, records, reports) == asked
