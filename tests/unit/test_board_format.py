"""The board format, pure: its keys, its score encoding, and how a friend list is grouped
for the board reads (without losing or repeating a user)."""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from common.report_rules import day_start_s
from common.sharding import shard_of
from rank_svc.board_format import (
    TIME_SLOTS,
    BoardKeys,
    BoardSettings,
    Row,
    decode_score,
    encode_score,
    sort_key,
)
from rank_svc.board_readers import Members

DAY = date(2026, 3, 1)


def test_keys_of_a_shard_share_its_hash_tag():
    keys = BoardKeys(BoardSettings(namespace="ns"), "reports")
    assert keys.board_key(DAY, 3) == "ns:board:{3}:2026-03-01"
    assert keys.version_key(DAY, 3) == "ns:boardv:{3}:2026-03-01"
    assert keys.watermark_key(3) == "ns:applied:{3}:reports"
    staging = BoardKeys(BoardSettings(namespace="ns"), "reports", staging=True)
    assert staging.board_key(DAY, 3) == "ns:board:{3}:2026-03-01:staging"
    assert staging.watermark_key(3) == keys.watermark_key(3)


@given(steps=st.integers(0, 100_000), second=st.integers(0, TIME_SLOTS - 1))
def test_a_score_decodes_to_its_steps_and_time(steps, second):
    measured_at_s = day_start_s(DAY) + second
    assert decode_score(DAY, encode_score(DAY, steps, measured_at_s)) == (steps, measured_at_s)


@given(a=st.tuples(st.integers(0, 100_000), st.integers(0, TIME_SLOTS - 1)),
       b=st.tuples(st.integers(0, 100_000), st.integers(0, TIME_SLOTS - 1)))
def test_more_steps_then_the_earlier_time_rank_higher(a, b):
    start = day_start_s(DAY)
    score_a, score_b = (encode_score(DAY, steps, start + s) for steps, s in (a, b))
    if a != b:
        a_first = a[0] > b[0] or (a[0] == b[0] and a[1] < b[1])
        assert (score_a > score_b) == a_first
    rows = sorted([Row(2, score_a), Row(1, score_a)], key=sort_key)
    assert [row.user_id for row in rows] == [1, 2]  # equal scores: the lower id first


@given(user_ids=st.lists(st.integers(1, 2**63 - 1), min_size=1, max_size=40),
       repeats=st.lists(st.integers(0, 39), max_size=10), shards=st.integers(1, 16))
def test_members_group_each_user_once_by_shard_and_know_where_the_first_went(
    user_ids, repeats, shards
):
    given_ids = user_ids + [user_ids[i % len(user_ids)] for i in repeats]
    members = Members(given_ids, shards)
    assert sorted(members.ids) == sorted(set(user_ids))
    assert members.ids[members.first_at] == given_ids[0]
    assert list(members.shards) == sorted(set(members.shards))
    start = 0
    for shard, count in zip(members.shards, members.counts, strict=True):
        assert {shard_of(u, shards) for u in members.ids[start:start + count]} == {shard}
        start += count
    assert start == len(members.ids)
    assert members.wire == b"".join(
        b"$%d\r\n%d\r\n" % (len(str(u)), u) for u in members.ids
    )
    assert members.ends[-1] == len(members.wire)
