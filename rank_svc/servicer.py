"""Ranking: global and friend rankings read from the daily boards."""

from datetime import date

from google.protobuf.timestamp_pb2 import Timestamp

from common.errors import InvalidArgument, NotFound
from common.reports import parse_day
from rank_svc.board import BoardStore, decode_score
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc

DEFAULT_TOP = 100
MAX_TOP = 1000


def rank_entry(day: date, rank: int, user_id: int, score: int | None) -> ranking_pb2.RankEntry:
    """A ranking row; a user without a report has 0 steps and no ``reached_at``."""
    entry = ranking_pb2.RankEntry(rank=rank, user_id=user_id)
    if score is not None:
        steps, reached_at = decode_score(day, score)
        entry.steps = steps
        entry.reached_at.CopyFrom(Timestamp(seconds=reached_at))
    return entry


def _check_user(user_id: int) -> None:
    if user_id <= 0:
        raise InvalidArgument("user_id", f"must be > 0, got {user_id}")


class RankingServicer(ranking_pb2_grpc.RankingServicer):
    """Answers ranking questions from the boards in the order DESIGN.md defines."""

    def __init__(self, store: BoardStore) -> None:
        self._store = store

    def GetGlobalTop(self, request, context):
        """The best ``limit`` (default 100, at most 1000) users of the day."""
        day = parse_day(request.day)
        limit = request.limit or DEFAULT_TOP
        if not 1 <= limit <= MAX_TOP:
            raise InvalidArgument("limit", f"must be between 1 and {MAX_TOP}, got {limit}")
        rows, total = self._store.top(day, limit)
        return ranking_pb2.GetGlobalTopResponse(
            entries=[rank_entry(day, i, r.user_id, r.score) for i, r in enumerate(rows, 1)],
            total_participants=total,
        )

    def GetGlobalRank(self, request, context):
        """One user's place among everyone who reported that day."""
        _check_user(request.user_id)
        day = parse_day(request.day)
        found = self._store.rank(day, request.user_id)
        if found is None:
            raise NotFound(f"user {request.user_id} has no report for {day}")
        rank, score, total = found
        return ranking_pb2.GetGlobalRankResponse(
            entry=rank_entry(day, rank, request.user_id, score), total_participants=total
        )
