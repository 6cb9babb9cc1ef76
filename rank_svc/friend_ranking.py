"""Ordering and paging of a friend ranking: pure logic, shared by the server and precompute.

Order (DESIGN.md): users with a report by board score (steps, then who reached the count
first), then user id; users without a report follow, with 0 steps, by user id.
"""

from collections.abc import Mapping
from datetime import date

from common.errors import InvalidArgument
from common.page_tokens import encode_token
from rank_svc.board import Row

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def order_rows(scores: Mapping[int, int | None]) -> list[Row]:
    """All users of ``scores`` in ranking order (sorted as plain tuples: the hot path)."""
    reported = sorted((-s, u) for u, s in scores.items() if s is not None)
    silent = sorted(u for u, s in scores.items() if s is None)
    return [Row(u, -s) for s, u in reported] + [Row(u, None) for u in silent]


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
