"""Turning consumed Kafka records into board writes: decode, re-validate, collapse, retry.

Shared by the board consumer and the rebuild command, so both judge records identically.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

import redis
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from google.protobuf.message import DecodeError
from prometheus_client import Counter

from common.errors import InvalidArgument
from common.reports import ValidationSettings, validate_report
from rank_svc.board import encode_score, expire_at
from stepboard.v1 import ingest_pb2

log = logging.getLogger(__name__)
REDIS_RETRIES = Counter("stepboard_consumer_redis_retries_total", "Failed Redis writes retried.")
T = TypeVar("T")


@dataclass
class Collapsed:
    """One batch reduced to the best score per (day, user), plus what could not be used."""

    scores: dict[tuple[date, int], int] = field(default_factory=dict)
    last_offsets: dict[int, int] = field(default_factory=dict)
    dead: list[tuple[Message, str]] = field(default_factory=list)
    expired: int = 0


def received_at_s(message: Message) -> float:
    """When the broker got the record (its timestamp, Unix seconds): when ingest validated it."""
    kind, millis = message.timestamp()
    return time.time() if kind == TIMESTAMP_NOT_AVAILABLE else millis / 1000


def collapse(
    messages: Iterable[Message],
    validation: ValidationSettings,
    retention_days: int,
    only_day: date | None = None,
) -> Collapsed:
    """Decodes and re-validates each record and keeps the max score per (day, user).

    Undecodable or invalid records are returned in ``dead`` with the reason; reports for
    boards already past retention are dropped (counted in ``expired``); ``only_day``
    restricts the result to one day (for a rebuild).
    """
    batch = Collapsed()
    now_s = time.time()
    last_offsets, scores, dead = batch.last_offsets, batch.scores, batch.dead
    decode = ingest_pb2.StepReport.FromString
    for message in messages:
        last_offsets[message.partition()] = message.offset()
        try:
            report = decode(message.value() or b"")
        except DecodeError as error:
            dead.append((message, f"undecodable StepReport: {error}"))
            continue
        try:
            user_id, day, steps, measured_at_s = validate_report(
                report, received_at_s(message), validation
            )
        except InvalidArgument as error:
            dead.append((message, f"invalid report: {error}"))
            continue
        if message.key() != str(user_id).encode():
            dead.append((message, "record key does not match user_id"))
            continue
        if expire_at(day, retention_days) <= now_s:
            batch.expired += 1
            continue
        if only_day is not None and day != only_day:
            continue
        key = (day, user_id)
        score = encode_score(day, steps, measured_at_s)
        if score > scores.get(key, -1):
            scores[key] = score
    return batch


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
