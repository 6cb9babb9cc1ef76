"""Ordering and paging of a friend ranking: pure logic, shared by the server and precompute.

Order (docs/design.md): users with a report by board score (steps, then who reached the count
first), then user id; users without a report follow, with 0 steps, by user id.
"""

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from datetime import date

from common.errors import InvalidArgument
from common.page_tokens import encode_token
from common.report_rules import Window
from rank_svc.board_format import Row, as_window

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


# A user's place in a ranking as one int, so that one C-level sort of plain ints orders a
# ranking (no key function, no per-user tuples): (band << 64) | user_id, where the band is
# _CEILING - score for a user with a report and _SILENT for one without. User ids are
# positive int64s; board scores are below 2**53 (exact in Redis) and so below _CEILING.
_ID_BITS = 64
_ID_MASK = (1 << _ID_BITS) - 1
_CEILING = 1 << 62
_SILENT = 2 * _CEILING
_FIRST_SILENT = _SILENT << _ID_BITS


def _places(scores: Iterable[tuple[int, int | None]]) -> list[int]:
    """The place of each ``(user_id, score or None)``."""
    return [
        _FIRST_SILENT | user_id if score is None else (_CEILING - score) << _ID_BITS | user_id
        for user_id, score in scores
    ]


class Ordering:
    """Users of a ranking in order, each kept as its place (an int: see ``_places``); rows
    are made only for the slice asked for: one sort of plain ints, without a key
    function or a tuple per user."""

    def __init__(self, scores: Iterable[tuple[int, int | None]]) -> None:
        """``scores``: ``(user_id, score or None)`` pairs, each user once."""
        self._places = sorted(_places(scores))

    def __len__(self) -> int:
        return len(self._places)

    def index_of(self, user_id: int, score: int | None) -> int:
        """Where ``user_id`` (one of the users, with that score) stands, from 0."""
        return bisect_left(self._places, _places([(user_id, score)])[0])

    def rows(self, start: int, stop: int) -> list[Row]:
        """The rows at positions ``[start, stop)``."""
        return [
            Row(place & _ID_MASK,
                None if place >= _FIRST_SILENT else _CEILING - (place >> _ID_BITS))
            for place in self._places[start:stop]
        ]


def order_rows(scores: Mapping[int, int | None]) -> list[Row]:
    """All users of ``scores`` in ranking order."""
    ordering = Ordering(scores.items())
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


def token_scope(user_id: int, board: date | Window) -> str:
    """What a friend-ranking page token is bound to: the user and the day or window (a day's
    token is not valid for its week)."""
    return f"friend-ranking:{user_id}:{as_window(board).label}"


def first_index(size: int, token_offset: int, around_me: bool, my_index: int) -> int:
    """Where the page starts: the caller's own page for ``around_me``, else the token's."""
    return my_index - my_index % size if around_me else token_offset


def next_token(user_id: int, board: date | Window, start: int, size: int, total: int) -> str:
    """The token for the page after ``[start, start + size)``; empty on the last page."""
    following = start + size
    return encode_token(token_scope(user_id, board), str(following)) if following < total else ""
