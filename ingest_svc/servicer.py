"""StepIngest: validate reports and likes, append them to Kafka, answer once the broker has
them."""

import os
import time
from collections.abc import Callable

import grpc

from common import call_deadline
from common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    status_for,
)
from common.like_rules import validate_like
from common.record_format import (
    REPORTS_PER_RECORD,
    Record,
    batch_key,
    encode_like,
    encode_reports,
    like_key,
)
from common.report_rules import ValidationSettings, validate_report
from ingest_svc.producer import Outcome, ReportProducer, Stored
from stepboard.v1 import ingest_pb2, ingest_pb2_grpc, social_pb2, social_pb2_grpc

# The longest a friendship check may take: social_svc slower than that is unavailable.
SOCIAL_TIMEOUT_S = 2.0


class StepIngestServicer(ingest_pb2_grpc.StepIngestServicer):
    """Validates each report exactly as docs/design.md says and produces the valid ones."""

    def __init__(
        self,
        producer: ReportProducer,
        validation: ValidationSettings,
        max_wait_s: float,
        social: social_pb2_grpc.FriendGraphStub,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``social``: where ``Like`` checks that the two users are friends."""
        self._producer = producer
        self._social = social
        self._validation = validation
        self._max_wait_s = max_wait_s
        self._clock = clock

    def _accepted_at_ms(self) -> int:
        """Now, in whole milliseconds: the instant a call's reports are validated against
        and their records' timestamp, so the consumer judges them at the same instant."""
        return int(self._clock() * 1000)

    def _send(self, records: list[Record], accepted_at_ms: int) -> list[Outcome]:
        """The producer's outcome for each record, waiting at most ``max_wait_s`` and never
        past the caller's deadline (less a margin for the answer to reach them)."""
        return self._producer.send(
            records, accepted_at_ms, *call_deadline.wait_s(self._max_wait_s)
        )

    @staticmethod
    def _name(report: ingest_pb2.StepReport) -> None:
        """Gives a report without an id one, so its result and record can name it."""
        if not report.report_id:
            report.report_id = os.urandom(16).hex()  # 128 random bits, 5x cheaper than uuid4

    def ReportSteps(self, request, context):
        """One report: OK with its position in the log, or the specific error."""
        if not request.HasField("report"):
            raise InvalidArgument("report", "is required")
        request.DiscardUnknownFields()  # only what the schema knows goes into the log
        report = request.report
        accepted_at_ms = self._accepted_at_ms()
        validate_report(report, accepted_at_ms / 1000, self._validation, prefix="report.")
        self._name(report)
        record = (None, encode_reports([report]))
        (outcome,) = self._send([record], accepted_at_ms)
        if isinstance(outcome, DomainError):
            raise outcome
        return ingest_pb2.ReportStepsResponse(
            report_id=report.report_id, partition=outcome.partition, offset=outcome.offset
        )

    def ReportStepsBatch(self, request, context):
        """Many reports; each gets its own result so one bad report sinks no other."""
        count = len(request.reports)
        if count == 0:
            raise InvalidArgument("reports", "must not be empty")
        if count > self._validation.max_batch:
            raise InvalidArgument(
                "reports", f"at most {self._validation.max_batch} per batch, got {count}"
            )
        request.DiscardUnknownFields()  # only what the schema knows goes into the log
        accepted_at_ms = self._accepted_at_ms()
        now = accepted_at_ms / 1000
        failed: dict[int, DomainError] = {}
        valid = []
        for index, report in enumerate(request.reports):
            try:
                validate_report(report, now, self._validation, prefix=f"reports[{index}].")
            except InvalidArgument as error:
                failed[index] = error
            else:
                self._name(report)
                valid.append(index)
        groups = [valid[first:first + REPORTS_PER_RECORD]
                  for first in range(0, len(valid), REPORTS_PER_RECORD)]
        if len(valid) == count <= REPORTS_PER_RECORD:
            values = [request.SerializeToString(deterministic=True)]  # no copy: ~10x cheaper
        else:
            values = [encode_reports([request.reports[i] for i in group]) for group in groups]
        keys = [batch_key(request.reports[group[0]]) for group in groups]
        records = list(zip(keys, values, strict=True))
        outcomes = self._send(records, accepted_at_ms) if records else []
        for group, outcome in zip(groups, outcomes, strict=True):
            if not isinstance(outcome, Stored):
                failed.update(dict.fromkeys(group, outcome))
        reply = ingest_pb2.ReportStepsBatchResponse(
            accepted=count - len(failed), rejected=len(failed)
        )
        add = reply.results.add  # built in place: no per-result message copies
        for index, report in enumerate(request.reports):
            error = failed.get(index)
            if error is None:
                add(index=index, report_id=report.report_id)
            else:
                code, message = status_for(error)
                add(index=index, report_id=report.report_id, code=code.value[0], message=message)
        return reply

    def Like(self, request, context):
        """Likes or unlikes one entry: validated, checked against the friend graph, then
        produced keyed by the liked user and answered once the broker stored it."""
        request.DiscardUnknownFields()  # only what the schema knows goes into the log
        accepted_at_ms = self._accepted_at_ms()
        like = validate_like(request, accepted_at_ms / 1000, self._validation.late_days)
        if like.liker_id != like.liked_id:
            self._check_friends(like.liker_id, like.liked_id)
        (outcome,) = self._send([(like_key(request), encode_like(request))], accepted_at_ms)
        if isinstance(outcome, DomainError):
            raise outcome
        return ingest_pb2.LikeResponse(partition=outcome.partition, offset=outcome.offset)

    def _check_friends(self, liker_id: int, liked_id: int) -> None:
        """``FailedPrecondition`` unless the two are friends; social_svc failing or slower
        than the call's deadline allows is ``Unavailable`` or ``DeadlineExceeded``."""
        timeout_s, by_deadline = call_deadline.wait_s(SOCIAL_TIMEOUT_S, 0.5)
        try:
            answer = self._social.CheckFriendship(
                social_pb2.CheckFriendshipRequest(user_id=liker_id, friend_id=liked_id),
                timeout=timeout_s,
            )
        except grpc.RpcError as error:
            raise call_deadline.rpc_failure(
                error, by_deadline, "checking the friendship with social_svc",
                "the friend graph (social_svc) could not check the friendship: {code}",
            ) from None
        if not answer.friends:
            raise FailedPrecondition(
                f"not friends: user {liker_id} may like only their own entry or a friend's, "
                f"and user {liked_id} is not their friend"
            )
