"""Ordering and paging of a friend ranking: pure logic, shared by the server and precompute.

Order (DESIGN.md): users with a report by board score (steps, then who reached the count
first), then user id; users without a report follow, with 0 steps, by user id.
"""

from bisect import bisect_left
from collections.abc import Mapping
from datetime import date

from common.errors import InvalidArgument
from common.page_tokens import encode_token
from rank_svc.board import Row

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class Ordering:
    """Users of a ranking in order: ids sorted twice with C-level keys (by id, then stably by
    score descending), no per-user tuples; rows are made only for the slice asked for."""

    def __init__(self, scores: Mapping[int, int | None]) -> None:
        self._scores = scores
        self._reported = sorted(u for u, s in scores.items() if s is not None)
        self._reported.sort(key=scores.__getitem__, reverse=True)  # stable: ties keep id order
        self._silent = sorted(u for u, s in scores.items() if s is None)

    def __len__(self) -> int:
        return len(self._reported) + len(self._silent)

    def _key(self, user_id: int) -> tuple[int, int]:
        return -self._scores[user_id], user_id

    def index_of(self, user_id: int, score: int | None) -> int:
        """Where ``user_id`` (one of the users, with that score) stands, from 0."""
        if score is None:
            return len(self._reported) + bisect_left(self._silent, user_id)
        return bisect_left(self._reported, (-score, user_id), key=self._key)

    def rows(self, start: int, stop: int) -> list[Row]:
        """The rows at positions ``[start, stop)``."""
        scores = self._scores
        reported = [Row(u, scores[u]) for u in self._reported[start:stop]]
        first_silent = max(start - len(self._reported), 0)
        silent_stop = max(stop - len(self._reported), 0)
        return reported + [Row(u, None) for u in self._silent[first_silent:silent_stop]]


def order_rows(scores: Mapping[int, int | None]) -> list[Row]:
    """All users of ``scores`` in ranking order."""
    ordering = Ordering(scores)
    return ordering.rows(0, len(ordering))


def page_size_of(requested: int) -> int:
    """The page size to use; ``InvalidArgument`` if out of bounds."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            "page_size", f"must be between 1 and {MAX_PAGE_SIZE}, got {requested}"
        )
    return requested


def token_scope(user_id: int, day: date) -> str:
    """What a friend-ranking page token is bound to."""
    return f"friend-ranking:{user_id}:{day.isoformat()}"


def first_index(size: int, token_offset: int, around_me: bool, my_index: int) -> int:
    """Where the page starts: the caller's own page for ``around_me``, else the token's."""
    return my_index - my_index % size if around_me else token_offset


def next_token(user_id: int, day: date, start: int, size: int, total: int) -> str:
    """The token for the page after ``[start, start + size)``; empty on the last page."""
    following = start + size
    return encode_token(token_scope(user_id, day), str(following)) if following < total else ""
