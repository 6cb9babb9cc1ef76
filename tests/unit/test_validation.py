"""Each validation rule of docs/design.md, as pure logic (the RPC tests repeat them end to end)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidArgument
from common.report_rules import (
    ValidationSettings,
    accepted_days,
    day_start,
    day_start_s,
    readable_days,
    validate_report,
)
from rank_svc.board_format import expire_at
from stepboard.v1 import ingest_pb2

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
TODAY = date(2026, 11, 29)
SETTINGS = ValidationSettings()


def good(**changes) -> ingest_pb2.StepReport:
    report = ingest_pb2.StepReport(
        user_id=7, day="2026-11-29", steps=5000,
        measured_at=Timestamp(seconds=int(NOW.timestamp()) - 60),
    )
    for name, value in changes.items():
        if name == "measured_at" and value is None:
            report.ClearField("measured_at")
        elif name == "measured_at":
            report.measured_at.CopyFrom(value)
        else:
            setattr(report, name, value)
    return report


def at(moment: datetime, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=int(moment.timestamp()), nanos=nanos)


def test_a_good_report_passes():
    valid = validate_report(good(), NOW_S, SETTINGS)
    assert (valid.user_id, valid.day, valid.steps) == (7, TODAY, 5000)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"user_id": 0}, "user_id", "> 0"),
        ({"user_id": -5}, "user_id", "> 0"),
        ({"day": ""}, "day", "YYYY-MM-DD"),
        ({"day": "2026-11-9"}, "day", "YYYY-MM-DD"),
        ({"day": "29/11/2026"}, "day", "YYYY-MM-DD"),
        ({"day": "2026-02-30"}, "day", "not a real date"),
        ({"day": "2026-11-31"}, "day", "not a real date"),
        ({"day": "2026-12-01"}, "day", "future"),
        ({"day": "2026-11-26"}, "day", "late window"),
        ({"steps": -1}, "steps", "between 0 and 100000"),
        ({"steps": 100_001}, "steps", "between 0 and 100000"),
        ({"measured_at": None}, "measured_at", "required"),
        ({"measured_at": at(day_start(TODAY) - timedelta(seconds=1))}, "measured_at", "outside"),
        ({"measured_at": at(day_start(TODAY) + timedelta(hours=50))}, "measured_at", "outside"),
        ({"measured_at": at(NOW + timedelta(minutes=5))}, "measured_at", "future"),
        ({"measured_at": at(NOW, nanos=-1)}, "measured_at", "nanos"),
        ({"report_id": "x" * 129}, "report_id", "128"),
    ],
)
def test_each_rule_names_its_field(changes, field, words):
    with pytest.raises(InvalidArgument) as raised:
        validate_report(good(**changes), NOW_S, SETTINGS, prefix="report.")
    assert raised.value.field == f"report.{field}"
    assert str(raised.value).startswith(f"report.{field}: ")
    assert words in str(raised.value)


def test_window_edges():
    # At 10:00 UTC the 30th has begun at UTC+14 while UTC-12 is still on the 28th, so with a
    # 1-day late window the 27th is the oldest day accepted.
    assert accepted_days(NOW_S, 1) == (date(2026, 11, 27), date(2026, 11, 30))
    assert accepted_days(NOW_S, 0) == (date(2026, 11, 28), date(2026, 11, 30))
    start = day_start(TODAY)
    assert validate_report(good(measured_at=at(start)), NOW_S, SETTINGS).measured_at_s == int(
        start.timestamp()
    )
    tomorrow = good(day="2026-11-30", measured_at=at(NOW))
    assert validate_report(tomorrow, NOW_S, SETTINGS).day == date(2026, 11, 30)
    configured = ValidationSettings(max_steps_per_day=200_000)
    assert validate_report(good(steps=150_000), NOW_S, configured).steps == 150_000


@given(now_s=st.integers(0, 4_102_444_800), late_days=st.integers(0, 30))
def test_window_matches_the_calendar(now_s, late_days):
    now = datetime.fromtimestamp(now_s, UTC)
    oldest = (now - timedelta(hours=12)).date() - timedelta(days=late_days)
    assert accepted_days(now_s, late_days) == (oldest, (now + timedelta(hours=14)).date())


@pytest.mark.parametrize("retention_days", [1, 3, 60])
def test_readable_days_end_exactly_where_boards_expire_and_days_begin(retention_days):
    """A day is readable up to the instant its board expires (Redis drops a key only after
    it) and from the instant it begins at UTC+14."""
    expires = expire_at(TODAY, retention_days)
    assert readable_days(expires, retention_days)[0] == TODAY
    assert readable_days(expires + 0.001, retention_days)[0] == TODAY + timedelta(days=1)
    begins = day_start_s(TODAY)
    assert readable_days(begins, retention_days)[1] == TODAY
    assert readable_days(begins - 0.001, retention_days)[1] == TODAY - timedelta(days=1)


@given(now_s=st.floats(0, 4_102_444_800), retention_days=st.integers(1, 60))
def test_readable_days_are_those_whose_board_may_exist(now_s, retention_days):
    oldest, newest = readable_days(now_s, retention_days)
    assert expire_at(oldest, retention_days) >= now_s
    assert expire_at(oldest - timedelta(days=1), retention_days) < now_s
    assert day_start_s(newest) <= now_s < day_start_s(newest + timedelta(days=1))


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_the_first_and_last_date_are_rejected_as_outside_the_window(day):
    with pytest.raises(InvalidArgument, match=r"^report\.day: "):
        validate_report(good(day=day), NOW_S, SETTINGS, prefix="report.")
