"""The consumer's apply-rate token bucket (pure logic, an injected clock; the real consumer
held to its rate is tested in tests/integration/test_apply_rate.py)."""

import pytest

from common.record_format import encode_like, encode_reports
from rank_svc.apply_rate import ApplyRate
from rank_svc.consumed_batch import collapse, reports_in
from stepboard.v1 import ingest_pb2
from tests.fake_message import FakeMessage


def test_a_full_bucket_allows_the_burst_at_once_then_refills_at_the_rate():
    rate = ApplyRate(200, burst=100, now=0.0)
    assert rate.available(0.0) == 100
    rate.take(100, 0.0)
    assert rate.available(0.0) == 0
    assert rate.available(0.25) == 50
    assert rate.available(10.0) == 100  # never above the burst


def test_it_waits_for_a_tenth_of_a_second_of_reports_before_a_read():
    rate = ApplyRate(200, burst=100, now=0.0)
    assert rate.quantum == 20
    assert rate.wait_s(0.0) == 0.0
    rate.take(100, 0.0)
    assert rate.wait_s(0.0) == pytest.approx(0.1)
    assert rate.wait_s(0.05) == pytest.approx(0.05)
    assert rate.wait_s(0.1) == 0.0


def test_a_batch_beyond_the_bucket_is_a_debt_paid_by_waiting():
    rate = ApplyRate(100, burst=50, now=0.0)
    rate.take(250, 0.0)  # one record of 250 reports
    assert rate.available(1.0) == 0
    assert rate.wait_s(1.0) == pytest.approx(1.1)  # 100 of debt left, then a quantum of 10
    assert rate.available(2.5) == 50


def test_over_any_stretch_it_applies_at_most_the_burst_plus_the_rate():
    """Reading whenever allowed, as much as allowed, in batches of up to 7 reports."""
    rate, now, applied = ApplyRate(300, burst=60, now=0.0), 0.0, 0
    while now < 10.0:
        now += rate.wait_s(now)
        batch = min(7, rate.available(now))
        rate.take(batch, now)
        applied += batch
        assert applied <= 60 + 300 * now
        now += 0.001
    assert applied >= 300 * 10.0 * 0.95


def test_a_rate_below_one_report_per_read_reads_one_report_at_a_time():
    assert ApplyRate(3, burst=5, now=0.0).quantum == 1
    assert ApplyRate(10_000, burst=50, now=0.0).quantum == 50


def test_an_unusable_rate_or_burst_is_refused():
    with pytest.raises(ValueError):
        ApplyRate(0, burst=10, now=0.0)
    with pytest.raises(ValueError):
        ApplyRate(10, burst=0, now=0.0)


def test_a_record_counts_its_reports_a_like_one_and_an_undecodable_one_none():
    """What the consumer charges per record is what collapse counts as the batch's reports."""
    reports = [ingest_pb2.StepReport(user_id=u, day="2026-12-01", steps=10) for u in (1, 2, 3)]
    like = ingest_pb2.LikeRequest(liker_id=1, liked_id=2, day="2026-12-01", liked=True)
    messages = [FakeMessage(value, offset, 0) for offset, value in enumerate(
        [encode_reports(reports), encode_like(like), b"\xff\xff not a record"])]
    assert [reports_in(m) for m in messages] == [3, 1, 0]
    assert collapse(messages, retention_days=3).reports == 4
