"""Validation of likes (``StepIngest.Like``), shared by ingest and the board consumer.

As for a step report (:mod:`common.report_rules`), ingest judges a like with its settings
when the call arrives and the consumer judges it again, at the instant ingest accepted it
(its record's timestamp), with the widest late window ingest accepts
(:data:`common.report_rules.RECORD_LIMITS`): a replay days later refuses nothing ingest
acknowledged. Whether the two users are friends is checked by ingest only: a like stays
stored when the friendship ends later (the design doc says why).
"""

from datetime import date
from typing import NamedTuple

from common.errors import InvalidArgument
from common.report_rules import accepted_day
from stepboard.v1 import ingest_pb2


class ValidLike(NamedTuple):
    """A like that passed validation."""

    liker_id: int
    liked_id: int
    day: date
    liked: bool  # True: like; False: unlike


def validate_like(like: ingest_pb2.LikeRequest, now_s: float, late_days: int) -> ValidLike:
    """Checks ids (> 0) and the day (one a report may carry at Unix time ``now_s``); the
    error names the first bad field."""
    for field in ("liker_id", "liked_id"):
        value = getattr(like, field)
        if value <= 0:
            raise InvalidArgument(field, f"must be > 0, got {value}")
    day = accepted_day(like.day, now_s, late_days, "day")
    return ValidLike(like.liker_id, like.liked_id, day, like.liked)
