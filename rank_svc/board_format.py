"""How the daily boards are stored in Redis: their settings, keys and score encoding.

The board writer (:mod:`rank_svc.board_writer`), the readers (:mod:`rank_svc.board_readers`)
and the hot-user rankings (:mod:`rank_svc.hot_rankings`) all go through this module, so
they agree on the format. One board per day is split into ``shards`` sorted sets by
:func:`common.sharding.shard_of`; members are decimal user ids, scores pack steps and the
time the count was reached so that a higher score is a better rank and ``ZADD GT`` is the
max-merge of docs/design.md::

    score = steps * 2**18 + (2**18 - 1 - s),  s = measured_at - day_start(day) in seconds

Equal scores are ordered by user id ascending (:func:`sort_key`), in Python: Redis orders
ties lexicographically, which is not numeric order.

Each shard also holds an *applied watermark* hash (Kafka partition → last applied offset,
:meth:`BoardKeys.watermark_key`) and, per day, a version counter bumped by every write
(:meth:`BoardKeys.version_key`).
"""

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from common.report_rules import DAY_SPAN, day_start, day_start_s
from common.settings import default, read
from common.sharding import shard_of

TIME_BITS = 18
TIME_SLOTS = 1 << TIME_BITS


@dataclass(frozen=True)
class BoardSettings:
    """How boards are split and how long they live."""

    shards: int = default("BOARD_SHARDS")
    retention_days: int = default("BOARD_RETENTION_DAYS")
    namespace: str = default("BOARD_NAMESPACE")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BoardSettings":
        """Reads ``STEPBOARD_BOARD_SHARDS``, ``_BOARD_RETENTION_DAYS``, ``_BOARD_NAMESPACE``."""
        return cls(
            shards=read(env, "BOARD_SHARDS"),
            retention_days=read(env, "BOARD_RETENTION_DAYS"),
            namespace=read(env, "BOARD_NAMESPACE"),
        )


def encode_score(day: date, steps: int, measured_at_s: int) -> int:
    """The board score of ``steps`` reached at Unix second ``measured_at_s`` on ``day``."""
    elapsed = measured_at_s - day_start_s(day)
    return steps * TIME_SLOTS + (TIME_SLOTS - 1 - elapsed)


def decode_score(day: date, score: float) -> tuple[int, int]:
    """``(steps, reached_at_s)`` from a board score."""
    return decode_scores(day, [score])[0]


def decode_scores(day: date, scores: Iterable[float]) -> list[tuple[int, int]]:
    """:func:`decode_score` of each of ``scores``, with the day's arithmetic done once (a
    ranking page decodes up to hundreds)."""
    last_second = day_start_s(day) + TIME_SLOTS - 1
    decoded = []
    for score in scores:
        steps, rest = divmod(int(score), TIME_SLOTS)
        decoded.append((steps, last_second - rest))
    return decoded


@functools.lru_cache(maxsize=256)
def expire_at(day: date, retention_days: int) -> int:
    """Unix time when ``day``'s board may go: its end in the last time zone plus retention."""
    return int((day_start(day) + DAY_SPAN + timedelta(days=retention_days)).timestamp())


class Row(NamedTuple):
    """One member of a ranking: a user and their board score (None: no report)."""

    user_id: int
    score: int | None


def sort_key(row: Row) -> tuple[int, int]:
    """The design's order among users with a report: higher score first, then lower user id."""
    return (-row.score, row.user_id)


class BoardKeys:
    """The Redis keys of the boards of one namespace (and, for watermarks, one topic)."""

    def __init__(self, settings: BoardSettings, topic: str = "", staging: bool = False) -> None:
        """``staging`` keys are separate board keys, for building a day off to the side."""
        self.settings = settings
        self.topic = topic
        self._suffix = ":staging" if staging else ""

    def board_key(self, day: date, shard: int) -> str:
        """The sorted set of ``day`` for ``shard``; the hash tag keeps a shard on one node."""
        prefix = self.settings.namespace
        return f"{prefix}:board:{{{shard}}}:{day.isoformat()}{self._suffix}"

    def version_key(self, day: date, shard: int) -> str:
        """A counter bumped by every write to the board of ``day`` for ``shard``, so readers
        can tell whether a board changed without reading it."""
        prefix = self.settings.namespace
        return f"{prefix}:boardv:{{{shard}}}:{day.isoformat()}{self._suffix}"

    def watermark_key(self, shard: int) -> str:
        """The applied-offset hash of ``shard`` for the configured topic."""
        return f"{self.settings.namespace}:applied:{{{shard}}}:{self.topic}"

    def shard(self, user_id: int) -> int:
        """The board shard of ``user_id``."""
        return shard_of(user_id, self.settings.shards)
