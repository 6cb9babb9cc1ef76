"""A small stepboard client: the three services' stubs on channels that carry the service
config, TLS and token, every call with a default deadline, and helpers for the common calls.
"""

from datetime import date, datetime
from pathlib import Path
from types import TracebackType

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from stepboard.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
    social_pb2,
    social_pb2_grpc,
)
from stepboard_client.channel import create_channel
from stepboard_client.config import DEADLINES

# The deadline of a method missing from DEADLINES: one added to stepboard.v1 after this
# package was built (tests/unit/test_client_deadlines.py keeps the table complete).
FALLBACK_DEADLINE_S = 5.0


class _DefaultDeadline(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Gives a call that set no ``timeout`` its method's deadline from :data:`DEADLINES`:
    without one, a call to a hung server would wait forever, and its retries with it."""

    @staticmethod
    def _with_deadline(details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        if details.timeout is not None:
            return details
        return details._replace(timeout=DEADLINES.get(details.method, FALLBACK_DEADLINE_S))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        """Unary calls get their default deadline."""
        return continuation(self._with_deadline(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        """Server-streaming calls get their default deadline."""
        return continuation(self._with_deadline(client_call_details), request)


def _day(day: str | date) -> str:
    """A ``day`` field: ``YYYY-MM-DD``."""
    return day.isoformat() if isinstance(day, date) else day


class Client:
    """The three stepboard services, as an app backend calls them.

    ``ingest``, ``social`` and ``ranking`` are the targets of StepIngest, FriendGraph and
    Ranking (``host:port``, or ``dns:///<headless service>:<port>`` to spread calls over
    every server); the TLS and token arguments are :func:`create_channel`'s. The raw stubs
    are :attr:`ingest`, :attr:`social` and :attr:`ranking`: a call through them with no
    ``timeout`` gets its method's deadline from :data:`DEADLINES`, and the helpers below
    build the common requests. Every call is safe to retry (docs/clients.md).
    """

    def __init__(
        self,
        ingest: str,
        social: str,
        ranking: str,
        *,
        ca_file: str | Path = "",
        cert_file: str | Path = "",
        key_file: str | Path = "",
        token: str = "",
        server_name: str = "",
    ) -> None:
        self._channels: dict[str, grpc.Channel] = {}
        for target in (ingest, social, ranking):
            if target not in self._channels:
                channel = create_channel(
                    target, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
                    token=token, server_name=server_name,
                )
                self._channels[target] = grpc.intercept_channel(channel, _DefaultDeadline())
        self.ingest = ingest_pb2_grpc.StepIngestStub(self._channels[ingest])
        self.social = social_pb2_grpc.FriendGraphStub(self._channels[social])
        self.ranking = ranking_pb2_grpc.RankingStub(self._channels[ranking])

    def close(self) -> None:
        """Closes the channels (calls in flight are cancelled)."""
        for channel in self._channels.values():
            channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def report_steps(
        self,
        user_id: int,
        day: str | date,
        steps: int,
        measured_at: datetime,
        *,
        report_id: str = "",
        timeout: float | None = None,
    ) -> ingest_pb2.ReportStepsResponse:
        """Reports ``user_id``'s cumulative ``steps`` on their local ``day``, as measured at
        ``measured_at`` (timezone-aware); answered once Kafka stored the report."""
        measured = Timestamp()
        measured.FromDatetime(measured_at)
        report = ingest_pb2.StepReport(
            user_id=user_id, day=_day(day), steps=steps, measured_at=measured,
            report_id=report_id,
        )
        return self.ingest.ReportSteps(
            ingest_pb2.ReportStepsRequest(report=report), timeout=timeout
        )

    def report_steps_batch(
        self, reports: list[ingest_pb2.StepReport], *, timeout: float | None = None
    ) -> ingest_pb2.ReportStepsBatchResponse:
        """Reports many counts in one call; each gets its own result, in order."""
        return self.ingest.ReportStepsBatch(
            ingest_pb2.ReportStepsBatchRequest(reports=reports), timeout=timeout
        )

    def like(
        self,
        liker_id: int,
        liked_id: int,
        day: str | date,
        liked: bool = True,
        *,
        timeout: float | None = None,
    ) -> ingest_pb2.LikeResponse:
        """Sets whether ``liker_id`` likes ``liked_id``'s entry of ``day`` (a state:
        repeating it changes nothing)."""
        request = ingest_pb2.LikeRequest(
            liker_id=liker_id, liked_id=liked_id, day=_day(day), liked=liked
        )
        return self.ingest.Like(request, timeout=timeout)

    def friend_ranking(
        self,
        user_id: int,
        day: str | date,
        period: ranking_pb2.Period = ranking_pb2.PERIOD_DAY,
        *,
        page_size: int = 0,
        page_token: str = "",
        around_me: bool = False,
        timeout: float | None = None,
    ) -> ranking_pb2.GetFriendRankingResponse:
        """One page of ``user_id``'s ranking among their friends for the ``period`` of
        ``day``."""
        request = ranking_pb2.GetFriendRankingRequest(
            user_id=user_id, day=_day(day), period=period, page_size=page_size,
            page_token=page_token, around_me=around_me,
        )
        return self.ranking.GetFriendRanking(request, timeout=timeout)

    def global_top(
        self,
        day: str | date,
        period: ranking_pb2.Period = ranking_pb2.PERIOD_DAY,
        *,
        limit: int = 0,
        viewer_id: int = 0,
        timeout: float | None = None,
    ) -> ranking_pb2.GetGlobalTopResponse:
        """The first ``limit`` users (0: the server's default) of the global board."""
        request = ranking_pb2.GetGlobalTopRequest(
            day=_day(day), period=period, limit=limit, viewer_id=viewer_id
        )
        return self.ranking.GetGlobalTop(request, timeout=timeout)

    def global_rank(
        self,
        user_id: int,
        day: str | date,
        period: ranking_pb2.Period = ranking_pb2.PERIOD_DAY,
        *,
        timeout: float | None = None,
    ) -> ranking_pb2.GetGlobalRankResponse:
        """``user_id``'s place on the global board (NOT_FOUND without a report)."""
        request = ranking_pb2.GetGlobalRankRequest(user_id=user_id, day=_day(day), period=period)
        return self.ranking.GetGlobalRank(request, timeout=timeout)

    def add_friendship(
        self, user_id: int, friend_id: int, *, timeout: float | None = None
    ) -> social_pb2.AddFriendshipResponse:
        """Makes two users friends of each other (idempotent)."""
        request = social_pb2.AddFriendshipRequest(user_id=user_id, friend_id=friend_id)
        return self.social.AddFriendship(request, timeout=timeout)
