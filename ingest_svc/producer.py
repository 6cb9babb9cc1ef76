"""The Kafka side of ingest: produce records and wait for the broker's acknowledgement.

One idempotent ``acks=all`` producer per process; a background thread serves delivery
callbacks (``poll``). :meth:`ReportProducer.send` answers per record either where the
broker stored it or the domain error to report, never waiting past the caller's budget.
"""

import functools
import itertools
import logging
import threading
from collections.abc import Sequence
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from common.errors import DeadlineExceeded, DomainError, ResourceExhausted, Unavailable
from common.kafka_clients import KafkaSettings, producer_config
from common.record_format import Record
from common.tracing import record_headers

log = logging.getLogger(__name__)


class Stored(NamedTuple):
    """Where the broker stored an acknowledged record."""

    partition: int
    offset: int


Outcome = Stored | DomainError


class _Pending:
    """Outcomes of one send, each set once: by the record's delivery callback (poll thread)
    or, for a record that never got queued, by the sender. ``wait`` returns when all are
    in. The count is an ``itertools.count`` (atomic under the GIL) and the signal a plain
    lock. A record holds a whole call's reports, so a callback per record is cheap."""

    def __init__(self, count: int) -> None:
        self.outcomes: list[Outcome | None] = [None] * count
        self._count = count
        self._settled = itertools.count(1)
        self._all_in = threading.Lock()
        if count:
            self._all_in.acquire()

    def settle(self, index: int, outcome: Outcome) -> None:
        self.outcomes[index] = outcome
        if next(self._settled) == self._count:
            self._all_in.release()

    def delivered(self, index: int, error: KafkaError | None, message: Message) -> None:
        """The broker's verdict on queued record ``index``."""
        if error is not None:
            self.settle(index, Unavailable(f"broker rejected the record: {error}"))
        else:
            self.settle(index, Stored(message.partition(), message.offset()))

    def wait(self, timeout_s: float) -> None:
        """Blocks until every outcome is in or ``timeout_s`` has passed."""
        if self._all_in.acquire(timeout=max(timeout_s, 0.0)):
            self._all_in.release()


def refused_error(error: KafkaError) -> DomainError:
    """What to answer for a record the client library would not queue."""
    if error.code() == KafkaError._QUEUE_FULL:
        return ResourceExhausted("ingest queue is full, retry later")
    return Unavailable(f"record not queued: {error.str()}")


class ReportProducer:
    """Produces report records (:mod:`common.record_format`) and waits for their
    acknowledgement."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.topic = settings.topic
        self._producer = Producer(producer_config(settings, error_cb=self._on_error))
        # Set when the client reports every broker unreachable, cleared by an acknowledgement.
        self._brokers_down = False
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)

    def _on_error(self, error: KafkaError) -> None:
        log.warning("kafka client error", extra={"error": str(error)})
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True

    def send(
        self,
        records: Sequence[Record],
        accepted_at_ms: int,
        budget_s: float,
        deadline_bound: bool,
    ) -> list[Outcome]:
        """Produces ``(key, value)`` records; waits at most ``budget_s`` for all acks.

        Each record's timestamp is ``accepted_at_ms``, the instant ingest validated its
        reports against: the consumer judges them at that instant (:mod:`rank_svc.consumed_batch`).

        A full local queue gives ``ResourceExhausted`` for the records that did not fit. A
        record not acknowledged in time gives ``Unavailable`` (the broker is down or slow),
        or ``DeadlineExceeded`` when the wait was cut short by the caller's deadline
        (``deadline_bound``) while the broker is reachable.
        """
        pending = _Pending(len(records))
        headers = record_headers()  # the caller's trace context, if traced
        # One produce() per record (a call gives one record unless it holds more than
        # REPORTS_PER_RECORD reports): produce_batch() cannot set a record's timestamp.
        for index, (key, value) in enumerate(records):
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, timestamp=accepted_at_ms, headers=headers,
                    on_delivery=functools.partial(pending.delivered, index),
                )
            except BufferError:
                pending.settle(index, refused_error(KafkaError(KafkaError._QUEUE_FULL)))
            except KafkaException as error:
                pending.settle(index, refused_error(error.args[0]))
        pending.wait(budget_s)
        if any(isinstance(outcome, Stored) for outcome in pending.outcomes):
            self._brokers_down = False
        timeout = self._unacknowledged(deadline_bound)
        return [timeout if outcome is None else outcome for outcome in pending.outcomes]

    def _unacknowledged(self, deadline_bound: bool) -> DomainError:
        """What to answer for a record not acknowledged within the wait. It stays queued
        and may still be stored, so the message says a retry is safe (max-merge)."""
        if deadline_bound and not self._brokers_down:
            return DeadlineExceeded(
                "the deadline passed before the broker acknowledged the report; it may "
                "still be stored, and a retry is safe"
            )
        return Unavailable(
            "broker did not acknowledge the report in time; it may still be stored, and a "
            "retry is safe"
        )

    def close(self, timeout_s: float = 10.0) -> None:
        """Delivers what is queued (bounded by ``timeout_s``), then stops the poll thread."""
        left = self._producer.flush(timeout_s)
        if left:
            log.error("records not delivered at shutdown", extra={"count": left})
        self._closed.set()
        self._poller.join(timeout_s)
