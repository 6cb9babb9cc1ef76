"""Turning consumed Kafka records into board writes: decode, re-validate, collapse, retry.

Shared by the board consumer and the rebuild command, so both judge records identically.
What ingest acknowledged is applied: a report is judged at the instant ingest accepted it
(its record's timestamp) against the widest limits ingest can be configured with
(:data:`common.report_rules.RECORD_LIMITS`), never against this process's clock or settings,
so neither a replay days later nor a lowered late window or step cap refuses it.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple, TypeVar

import redis
from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)
from google.protobuf.message import DecodeError
from prometheus_client import Counter

from common.errors import InvalidArgument
from common.like_rules import ValidLike, validate_like
from common.record_format import decode_like, decode_reports, encode_reports, is_like
from common.report_rules import RECORD_LIMITS, validate_report
from rank_svc.board_format import encode_score, expire_at
from rank_svc.likes import LikeId, LikeOp, fold

log = logging.getLogger(__name__)
REDIS_RETRIES = Counter("stepboard_consumer_redis_retries_total", "Failed Redis writes retried.")
REPLAY_GAPS = Counter(
    "stepboard_consumer_replay_gap_total",
    "Replays that needed records the Kafka log no longer holds, by partition.",
    ["partition"],
)
T = TypeVar("T")


# The bounded reasons of dead letters (the ``reason`` label of
# ``stepboard_consumer_dead_letters_total``); the ``error`` header says more.
UNDECODABLE_RECORD = "undecodable_record"
INVALID_REPORT = "invalid_report"
UNDECODABLE_LIKE = "undecodable_like"
INVALID_LIKE = "invalid_like"
DEAD_LETTER_REASONS = (UNDECODABLE_RECORD, INVALID_REPORT, UNDECODABLE_LIKE, INVALID_LIKE)


class DeadLetter(NamedTuple):
    """What the writer could not use: the record it came in, the value to park (the whole
    record if undecodable, else the one bad report as a record of its own), why (the
    ``error`` header) and the kind of why (one of :data:`DEAD_LETTER_REASONS`)."""

    source: Message
    value: bytes | None
    reason: str
    kind: str


@dataclass
class Collapsed:
    """One batch reduced to the best score per (day, user) and the last state of each like
    (:func:`rank_svc.likes.fold`), plus what could not be used."""

    scores: dict[tuple[date, int], int] = field(default_factory=dict)
    likes: dict[LikeId, LikeOp] = field(default_factory=dict)
    last_offsets: dict[int, int] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    reports: int = 0  # decoded from the batch's records
    merged: int = 0  # of them, valid, on an open board (and the day asked): max-merged
    expired: int = 0


def accepted_at_s(message: Message) -> float:
    """When ingest accepted the record's reports: its timestamp, which ingest sets to the
    instant it validated them against (Unix seconds, whole milliseconds)."""
    kind, millis = message.timestamp()
    return time.time() if kind == TIMESTAMP_NOT_AVAILABLE else millis / 1000


def collapse(
    messages: Iterable[Message],
    retention_days: int,
    only_day: date | None = None,
) -> Collapsed:
    """Decodes and re-validates each report and like, keeps the max score per (day, user)
    and folds each like's changes in log order (:func:`rank_svc.likes.fold`).

    Undecodable records and reports no ingest could have accepted (see above) are returned
    in ``dead`` with the reason;
    reports for boards already past retention are dropped (counted in ``expired``);
    ``only_day`` restricts the result to one day (for a rebuild).
    """
    batch = Collapsed()
    now_s = time.time()
    last_offsets, scores, dead = batch.last_offsets, batch.scores, batch.dead
    open_days: dict[date, bool] = {}  # day -> its board is inside retention
    decoded = merged = expired = 0
    for message in messages:
        last_offsets[message.partition()] = message.offset()
        if is_like(message.value()):
            decoded += 1
            like = _valid_like(message, dead)
            if like is None:
                continue
            is_open = open_days.get(like.day)
            if is_open is None:
                is_open = open_days[like.day] = expire_at(like.day, retention_days) > now_s
            if not is_open:
                expired += 1
            elif only_day is None or like.day == only_day:
                merged += 1
                fold(batch.likes, (like.day, like.liked_id, like.liker_id), like.liked,
                     round(accepted_at_s(message) * 1000))
            continue
        try:
            reports = decode_reports(message.value())
        except DecodeError as error:
            dead.append(DeadLetter(message, message.value(), f"undecodable record: {error}",
                                   UNDECODABLE_RECORD))
            continue
        decoded += len(reports)
        accepted_s = accepted_at_s(message)
        for index, report in enumerate(reports):
            try:
                user_id, day, steps, measured_at_s = validate_report(
                    report, accepted_s, RECORD_LIMITS
                )
            except InvalidArgument as error:
                dead.append(DeadLetter(
                    message, encode_reports([report]), f"invalid report [{index}]: {error}",
                    INVALID_REPORT,
                ))
                continue
            is_open = open_days.get(day)
            if is_open is None:
                is_open = open_days[day] = expire_at(day, retention_days) > now_s
            if not is_open:
                expired += 1
                continue
            if only_day is not None and day != only_day:
                continue
            merged += 1
            key = (day, user_id)
            score = encode_score(day, steps, measured_at_s)
            if score > scores.get(key, -1):
                scores[key] = score
    batch.reports, batch.merged, batch.expired = decoded, merged, expired
    return batch


def _valid_like(message: Message, dead: list[DeadLetter]) -> ValidLike | None:
    """The like of a like record, judged as ingest judged it (see above); None, with the
    record in ``dead``, if it holds none or no ingest could have accepted it."""
    try:
        return validate_like(
            decode_like(message.value()), accepted_at_s(message), RECORD_LIMITS.late_days
        )
    except DecodeError as error:
        dead.append(DeadLetter(
            message, message.value(), f"undecodable like record: {error}", UNDECODABLE_LIKE
        ))
    except InvalidArgument as error:
        dead.append(DeadLetter(message, message.value(), f"invalid like: {error}", INVALID_LIKE))
    return None


def reports_in(message: Message) -> int:
    """The reports a record holds as :func:`collapse` counts them: a like is one, an
    undecodable record none."""
    if is_like(message.value()):
        return 1
    try:
        return len(decode_reports(message.value()))
    except DecodeError:
        return 0


def records_to_ask(target_reports: int, records: int, reports: int) -> int:
    """How many records the next consume should ask for so that its batch holds about
    ``target_reports`` reports, judged by the last batch (``records`` held ``reports``):
    a record holds one report (``ReportSteps``) up to a whole ``ReportStepsBatch``."""
    return max(1, min(target_reports, target_reports * records // max(reports, 1)))


def retry_until(action: Callable[[], T], stop: threading.Event, what: str) -> T | None:
    """Runs ``action`` until it succeeds, backing off on Redis errors; None if stopped."""
    delay = 0.05
    while not stop.is_set():
        try:
            return action()
        except redis.exceptions.RedisError as error:
            REDIS_RETRIES.inc()
            log.warning("redis error, retrying", extra={"during": what, "error": repr(error)})
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return None


def try_once(action: Callable[[], T], what: str) -> T | None:
    """Runs ``action`` once; None if Redis failed (counted and logged as a retry: the
    caller tries again later)."""
    try:
        return action()
    except redis.exceptions.RedisError as error:
        REDIS_RETRIES.inc()
        log.warning("redis error, retrying later", extra={"during": what, "error": repr(error)})
        return None


def check_log_holds(consumer: Consumer, topic: str, partition: int, needed: int) -> bool:
    """Whether the log of ``partition`` still starts at or before offset ``needed``, where a
    replay must start to restore what Redis lost. If records were deleted past it
    (retention, ``DeleteRecords``), a replay silently starts later and what they held stays
    missing from the boards: that is logged as an ERROR naming both offsets and counted
    (``stepboard_consumer_replay_gap_total``). A log that cannot be asked counts as holding."""
    try:
        start, _ = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10, cached=False
        )
    except KafkaException as error:
        log.warning("could not ask where the log starts", extra={
            "partition": partition, "needed_offset": needed, "error": str(error)})
        return True
    if start <= needed:
        return True
    REPLAY_GAPS.labels(str(partition)).inc()
    log.error("kafka no longer holds records the replay needs: what they held stays missing",
              extra={"topic": topic, "partition": partition, "needed_offset": needed,
                     "log_start_offset": start})
    return False
