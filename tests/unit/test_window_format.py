"""Weeks and months, pure: which days a window holds, its keys, its score encoding (exact in
a double at the largest total and the latest second), its expiry and when it is readable."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidArgument
from common.report_rules import (
    DAY,
    DAY_SPAN,
    MONTH,
    RECORD_LIMITS,
    WEEK,
    check_readable,
    day_start,
    day_start_s,
    window_of,
)
from common.settings import setting
from rank_svc.board_format import (
    WINDOW_TIME_SLOTS,
    BoardKeys,
    BoardSettings,
    decode_score,
    encode_window_score,
    expire_at,
)
from rank_svc.friend_ranking import token_scope


def test_weeks_are_iso_weeks_and_months_calendar_months():
    assert window_of(date(2026, 12, 31), WEEK)[1:] == (date(2026, 12, 28), date(2027, 1, 3))
    assert window_of(date(2026, 12, 31), WEEK).label == "2026-W53"
    assert window_of(date(2027, 1, 3), WEEK).label == "2026-W53"
    assert window_of(date(2027, 1, 4), WEEK).label == "2027-W01"
    assert window_of(date(2028, 2, 10), MONTH)[1:] == (date(2028, 2, 1), date(2028, 2, 29))
    assert window_of(date(2026, 12, 31), MONTH)[1:] == (date(2026, 12, 1), date(2026, 12, 31))
    assert window_of(date(2026, 12, 31), MONTH).label == "2026-12"
    assert window_of(date(2026, 12, 31), DAY)[1:] == (date(2026, 12, 31), date(2026, 12, 31))


def test_window_keys_share_the_shard_hash_tag_and_differ_from_the_day():
    keys = BoardKeys(BoardSettings(namespace="ns"))
    week = window_of(date(2026, 12, 3), WEEK)
    month = window_of(date(2026, 12, 3), MONTH)
    assert keys.board_key(week, 5) == "ns:wboard:{5}:2026-W49"
    assert keys.version_key(week, 5) == "ns:wboardv:{5}:2026-W49"
    assert keys.board_key(month, 5) == "ns:mboard:{5}:2026-12"
    assert keys.version_key(month, 5) == "ns:mboardv:{5}:2026-12"
    day = window_of(date(2026, 12, 3), DAY)
    assert keys.board_key(day, 5) == keys.board_key(date(2026, 12, 3), 5)


def test_the_step_cap_keeps_a_months_total_and_span_inside_53_bits():
    cap = setting("MAX_STEPS_PER_DAY").maximum
    assert cap == (2**31 - 1) // 31 == 69_273_666
    assert RECORD_LIMITS.max_steps_per_day == cap
    longest = window_of(date(2026, 12, 1), MONTH)
    span = day_start(longest.last) + DAY_SPAN - day_start(longest.first)
    assert span.total_seconds() < WINDOW_TIME_SLOTS
    last_second = day_start_s(longest.first) + int(span.total_seconds()) - 1
    best = encode_window_score(longest, 31 * cap, day_start_s(longest.first))
    assert best < 2**53
    assert decode_score(longest, float(best)) == (31 * cap, day_start_s(longest.first))
    assert decode_score(longest, float(encode_window_score(longest, 31 * cap, last_second))) \
        == (31 * cap, last_second)


@given(
    st.dates(date(2000, 1, 1), date(2100, 12, 31)),
    st.sampled_from([WEEK, MONTH]),
    st.integers(0, 31 * 69_273_666),
    st.integers(0, 31 * 86400 + 26 * 3600 - 1),
)
def test_window_scores_round_trip_through_a_double_and_order_by_total_then_time(
    day, period, total, elapsed
):
    window = window_of(day, period)
    reached = day_start_s(window.first) + elapsed
    score = encode_window_score(window, total, reached)
    assert float(score) == score
    assert decode_score(window, float(score)) == (total, reached)
    if elapsed:
        assert encode_window_score(window, total, reached - 1) > score
    assert encode_window_score(window, total + 1, reached) > score


def test_a_window_lives_the_late_window_longer_than_its_last_day():
    week = window_of(date(2026, 12, 3), WEEK)
    assert expire_at(week, 3) == expire_at(week.last, 3) + RECORD_LIMITS.late_days * 86400
    assert expire_at(window_of(date(2026, 12, 3), DAY), 3) == expire_at(date(2026, 12, 3), 3)


def test_a_window_is_readable_from_its_first_day_to_its_expiry():
    week = window_of(date(2026, 12, 3), WEEK)  # Monday 2026-11-30 to Sunday 2026-12-06
    begun = day_start_s(week.first)
    check_readable(week, begun, 3)
    with pytest.raises(InvalidArgument) as early:
        check_readable(week, begun - 1, 3)
    assert early.value.field == "day" and "2026-W49" in str(early.value)
    check_readable(week, expire_at(week, 3), 3)
    with pytest.raises(InvalidArgument):
        check_readable(week, expire_at(week, 3) + 1, 3)
    # the day itself has long expired while its week is still readable
    late = datetime(2027, 1, 5, tzinfo=UTC).timestamp()
    check_readable(week, late, 3)
    with pytest.raises(InvalidArgument, match="readable days are"):
        check_readable(window_of(date(2026, 12, 3), DAY), late, 3)


def test_page_tokens_of_a_day_and_of_its_week_differ():
    day = date(2026, 12, 3)
    scopes = {token_scope(7, day), token_scope(7, window_of(day, WEEK)),
              token_scope(7, window_of(day, MONTH))}
    assert len(scopes) == 3
    assert token_scope(7, window_of(day, DAY)) == token_scope(7, day)
