"""Ordering, paging and page tokens of friend rankings (pure logic)."""

import time
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidArgument
from common.page_tokens import decode_offset, encode_token
from rank_svc.board_format import Row
from rank_svc.friend_ranking import (
    Ordering,
    first_index,
    next_token,
    order_rows,
    page_size_of,
    token_scope,
)
from rank_svc.timed_lru import TimedLru

DAY = date(2026, 11, 29)


def test_reported_users_by_score_then_id_and_silent_users_last_by_id():
    rows = order_rows({5: None, 3: 100, 9: 300, 1: 100, 2: None, 7: 0})
    assert rows == [Row(9, 300), Row(1, 100), Row(3, 100), Row(7, 0), Row(2, None), Row(5, None)]


def test_page_sizes_are_bounded():
    assert page_size_of(0) == 50
    assert page_size_of(500) == 500
    for bad in (-1, 501):
        with pytest.raises(InvalidArgument, match=r"^page_size: "):
            page_size_of(bad)


def test_around_me_starts_at_the_page_holding_the_caller():
    assert first_index(10, 0, True, 0) == 0
    assert first_index(10, 0, True, 9) == 0
    assert first_index(10, 0, True, 10) == 10
    assert first_index(10, 30, False, 57) == 30


def test_tokens_are_bound_to_user_and_day():
    token = next_token(7, DAY, 0, 10, 25)
    assert decode_offset(token, token_scope(7, DAY)) == 10
    assert next_token(7, DAY, 20, 10, 25) == ""
    for scope in (token_scope(8, DAY), token_scope(7, date(2026, 11, 28))):
        with pytest.raises(InvalidArgument, match=r"^page_token: was issued for another"):
            decode_offset(token, scope)
    for garbage in ("!!!", "abc", encode_token(token_scope(7, DAY), "x")):
        with pytest.raises(InvalidArgument, match=r"^page_token: "):
            decode_offset(garbage, token_scope(7, DAY))


@pytest.mark.parametrize(
    "position", ["²", "٣", "1²", "-1", " 1", "1 ", "+1", "1e17", "", str(2**31), str(10**17),
                 "0" * 5000 + "1", "9" * 5000, "1:2"],
)
def test_tokens_hold_ascii_offsets_an_int32_answer_can_have(position):
    """``str.isdigit`` and ``int`` accept "²" and "٣", and ``int`` refuses over 4,300
    digits: each such token was INTERNAL or paged from a crafted place."""
    scope = token_scope(7, DAY)
    with pytest.raises(InvalidArgument, match=r"^page_token: "):
        decode_offset(encode_token(scope, position), scope)
    assert decode_offset(encode_token(scope, str(2**31 - 1)), scope) == 2**31 - 1
    assert decode_offset(encode_token(scope, "0"), scope) == 0


def test_timed_lru_is_bounded_and_ages_its_values():
    cache: TimedLru[int, str] = TimedLru(max_items=2)
    cache.put(1, "a")
    cache.put(2, "b")
    assert cache.get(1)[1] == "a"  # 1 is now the most recently used
    cache.put(3, "c")
    assert cache.get(2) is None
    age, value = cache.get(3)
    assert value == "c" and 0 <= age < 1


def test_timed_lru_bounds_the_total_size_of_its_values():
    """Friend lists are bounded by the ids they hold: the least recently used go until the
    rest fit, and a list larger than the whole bound is not kept."""
    cache: TimedLru[int, str] = TimedLru(max_items=100, max_size=10, size_of=len)
    cache.put(1, "aaaa")
    cache.put(2, "bbbb")
    assert cache.get(1)[1] == "aaaa"  # 2 is now the least recently used
    cache.put(3, "cccc")  # 12 > 10: 2 goes
    assert (cache.get(2), cache.get(1)[1], cache.get(3)[1]) == (None, "aaaa", "cccc")
    cache.put(1, "a")  # replacing a value counts its new size only: 1 + 4
    cache.put(4, "dddd")
    assert [cache.get(k) is not None for k in (1, 3, 4)] == [True, True, True]
    cache.put(5, "e" * 11)  # alone beyond the bound: not kept, and nothing else goes
    assert cache.get(5) is None
    assert [cache.get(k) is not None for k in (1, 3, 4)] == [True, True, True]
    cache.put(1, "f" * 11)  # nor kept in place of an older value
    assert cache.get(1) is None
    cache.put_many([(6, "gggg"), (7, "hhhh"), (8, "iiii")])
    assert [k for k in (3, 4, 6, 7, 8) if cache.get(k) is not None] == [7, 8]


@given(st.dictionaries(st.one_of(st.integers(1, 60), st.integers(2**62, 2**63 - 1)),
                       st.one_of(st.none(), st.integers(0, 5), st.integers(0, 2**53))),
       st.integers(0, 70), st.integers(1, 10))
def test_ordering_slices_and_positions_agree_with_the_full_order(scores, start, size):
    full = sorted(
        (Row(u, s) for u, s in scores.items()),
        key=lambda r: (r.score is None, -(r.score or 0), r.user_id),
    )
    ordering = Ordering(scores.items())
    assert len(ordering) == len(full)
    assert ordering.rows(start, start + size) == full[start:start + size]
    for position, row in enumerate(full):
        assert ordering.index_of(row.user_id, row.score) == position


def test_timed_lru_gives_only_values_younger_than_asked():
    cache: TimedLru[int, str] = TimedLru(max_items=3)
    cache.put(1, "one")
    cache.put(2, "two")
    time.sleep(0.5)
    cache.put(3, "three")
    assert cache.younger_than([1, 2, 3, 4], 10) == {1: "one", 2: "two", 3: "three"}
    assert cache.younger_than([1, 2, 3, 4], 0.25) == {3: "three"}
