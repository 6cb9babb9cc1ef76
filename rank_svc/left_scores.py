"""The board scores of the users who left the rankings, kept while the board is unchanged.

A global rank leaves out those who left: it subtracts how many of them rank above the user
and how many are on the board. Reading their scores costs one ``ZMSCORE`` entry per such
user and call (``docs/capacity.md``), and every call of a board asks about the same users.
So their scores are kept here, sorted, per (board, set of those who left), with the board
shards' versions they were read at; a call whose rank script read the same versions (in
the script, so atomically with the rank) counts them by bisection. Every change of a board
shard bumps its version (``rank_svc/board_writer.py``; the global top's cache relies on
the same), so equal versions mean the scores kept are the board's.

Scores read after the rank are kept only when the versions read right after them (same
round trip) equal the rank's: nothing changed in between. Otherwise, and on a Cluster,
whose rank reads no versions, the scores read serve the one call, as read.
"""

from bisect import bisect_left
from collections.abc import Hashable
from datetime import date
from typing import NamedTuple

from common.report_rules import Window
from rank_svc.board_readers import BoardReader, command
from rank_svc.privacy_filter import OptedOut

MAX_KEPT = 8  # (board, set) pairs kept: a few live boards, one set each


class _Kept(NamedTuple):
    versions: tuple | None
    order: list[tuple[int, int]]  # (-score, user id) of those on the board, best first


class LeftScores:
    """The scores on a board of everyone who left the rankings (see module doc)."""

    def __init__(self, store: BoardReader) -> None:
        self._store = store
        self._kept: dict[tuple[date | Window, Hashable], _Kept] = {}

    def counts(
        self, day: date | Window, opted_out: OptedOut, versions: tuple | None, user_id: int,
        score: int,
    ) -> tuple[int, int]:
        """Of those who left other than ``user_id`` (on the board with ``score``): how
        many rank above ``score`` on the board ``day``, and how many are on it;
        ``versions``: the board shards' versions read with that score (None: not read)."""
        if not len(opted_out.members.ids):
            return 0, 0
        key = (day, opted_out.generation or opted_out.ids)
        kept = self._kept.get(key)
        if kept is None or versions is None or kept.versions != versions:
            kept = self._read(day, opted_out, versions)
            if kept.versions is not None:
                if len(self._kept) >= MAX_KEPT:
                    self._kept.clear()
                self._kept[key] = kept
        above = bisect_left(kept.order, (-score, user_id))
        return above, len(kept.order) - (user_id in opted_out.ids)

    def _read(self, day: date | Window, opted_out: OptedOut, versions: tuple | None) -> _Kept:
        """The scores of ``opted_out`` on ``day``, with the shards' versions read right
        after them if those equal ``versions`` (else None: not to be kept)."""
        shards = range(self._store.settings.shards)
        gets = [] if versions is None else [
            command(b"GET", self._store.version_key(day, shard).encode(), b"", (), 0)
            for shard in shards]
        scores, _, after = self._store.read_scores_with(day, opted_out.members, None, gets)
        order = sorted((-score, user_id) for user_id, score
                       in zip(opted_out.members.ids, scores, strict=True) if score is not None)
        return _Kept(versions if tuple(after) == versions else None, order)
