"""The pure parts of ``python -m rank_svc.dlq``: filters, previews, replayed headers, times."""

import argparse

import pytest

from common.record_format import encode_like, encode_reports
from rank_svc.dlq import Filters, build_parser, parse_time, preview, replay_headers
from stepboard.v1 import ingest_pb2
from tests.harness import report, today


class Letter:
    """What the tool reads from a dead letter."""

    def __init__(self, partition: int, millis: int, headers: list) -> None:
        self._partition, self._millis, self._headers = partition, millis, headers

    def partition(self) -> int:
        return self._partition

    def timestamp(self) -> tuple[int, int]:
        return 1, self._millis

    def headers(self) -> list:
        return self._headers


LETTER = Letter(2, 5_000, [("traceparent", b"t"), ("error", b"invalid report [0]: day"),
                           ("source", b"reports/2/7")])


def test_filters_keep_what_matches_every_one() -> None:
    assert Filters().matches(LETTER)
    assert Filters(reason="invalid report", since_ms=5_000, until_ms=5_001,
                   partitions=frozenset({2})).matches(LETTER)
    assert not Filters(reason="undecodable").matches(LETTER)
    assert not Filters(since_ms=5_001).matches(LETTER)
    assert not Filters(until_ms=5_000).matches(LETTER)
    assert not Filters(partitions=frozenset({0, 1})).matches(LETTER)


def test_replay_drops_only_the_dead_letter_headers() -> None:
    assert replay_headers(LETTER) == [("traceparent", b"t")]
    assert replay_headers(Letter(0, 0, None)) == []


def test_preview_is_one_printable_line() -> None:
    day = today()
    one = encode_reports([report(7, day, 500, 0)])
    two = encode_reports([report(7, day, 500, 0), report(8, day, 9, 0)])
    like = encode_like(ingest_pb2.LikeRequest(liker_id=1, liked_id=2, day="2026-01-02",
                                              liked=True))
    assert preview(one) == f"report user=7 day='{day}' steps=500"
    assert preview(two) == f"report user=7 day='{day}' steps=500 (+1 more)"
    assert preview(like) == "like liker=1 liked=2 day=2026-01-02 liked=True"
    assert preview(b"\x1b[2J" * 20) == "80 bytes: " + ("1b5b324a" * 8) + "..."
    assert preview(None) == "empty"


def test_times_are_iso_and_utc_by_default() -> None:
    assert parse_time("1970-01-02") == 86_400_000
    assert parse_time("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO-8601"):
        parse_time("yesterday")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["replay", "--partition", "x"], ["inspect", "--dry-run"], []):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(argv)
        assert exited.value.code == 2
    assert "not a partition number" in capsys.readouterr().err
