"""``python -m rank_svc.consumer``: the Kafka → Redis board writer.

A consumer-group member that reads report records in batches, re-validates them
(:mod:`rank_svc.consumed_batch`), sends unusable ones to the dead-letter topic, max-merges the
rest into the boards (:meth:`rank_svc.board_writer.BoardWriter.apply`) and only then stores the
batch's offsets (at-least-once; max-merge makes redelivery harmless). Redis errors are
retried with backoff without advancing offsets. Offsets never pass a record whose dead
letter the broker has not acknowledged: its partition is held there and retried
(:meth:`BoardConsumer._hold`) while the others go on.

Self-healing: each board write checks the shard's applied watermark against what this
writer knows it applied. If Redis lost data (flush, restart without persistence, failover)
the watermarks are gone or behind, the write is refused, and the writer rewinds its
partitions to the lowest surviving watermark (or the start of the log) and replays,
expecting that watermark from then on; a log that no longer holds the records the replay
needs is reported (:func:`rank_svc.consumed_batch.check_log_holds`). The replay restores
the day boards still kept and what they add to the week and month boards; those windows
also held days whose boards have expired, so each rewind also asks for a restore of every
window board in the background (:class:`rank_svc.window_restore.BackgroundRestore`), from
the day archive (``STEPBOARD_ARCHIVE_*``) and the kept day boards.

A controlled apply rate (``STEPBOARD_CONSUMER_MAX_REPORTS_PER_S``,
:mod:`rank_svc.apply_rate`) makes a write storm wait in Kafka: while its bucket is empty
the writer reads nothing, in short waits so its loop still serves the group, and its lag
and freshness grow instead of its load on Redis. ``STEPBOARD_CONSUMER_NICE`` lowers its
CPU priority below the readers'.

``python -m rank_svc.consumer rebuild --day YYYY-MM-DD`` rebuilds one day's board from the
log, and its week and month boards, on demand; ``rebuild --windows`` restores every week
and month board (:mod:`rank_svc.rebuild`).
"""

import argparse
import contextlib
import functools
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from common.kafka_clients import consumer_config, producer_config
from common.lifecycle import stop_on_signals
from common.metrics import serve_metrics
from common.redis_clients import create_redis, require_noeviction
from common.report_rules import parse_day
from common.runtime import load
from common.tracing import applied_spans, configure
from rank_svc.apply_rate import ApplyRate
from rank_svc.board_writer import BoardWriter
from rank_svc.config import ConsumerConfig
from rank_svc.consumed_batch import (
    DEAD_LETTER_REASONS,
    Collapsed,
    DeadLetter,
    accepted_at_s,
    check_log_holds,
    collapse,
    records_to_ask,
    reports_in,
    retry_until,
    try_once,
)
from rank_svc.join_watch import JoinWatch
from rank_svc.rebuild import rebuild_command
from rank_svc.window_restore import BackgroundRestore, restorer_for

log = logging.getLogger("rank_svc.consumer")

REPORTS = Counter("stepboard_consumer_reports_total", "Reports consumed, by outcome.", ["outcome"])
REPLAYS = Counter("stepboard_consumer_replays_total", "Rewinds after Redis lost board data.")
LAG = Gauge(
    "stepboard_consumer_lag_records", "Records behind the log end, by partition.", ["partition"]
)
FRESHNESS = Histogram(
    "stepboard_freshness_seconds",
    "From ingest accepting a record (its timestamp) to the board write holding it returning.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
DEAD_LETTERS = Counter(
    "stepboard_consumer_dead_letters_total", "Dead letters stored, by reason.", ["reason"]
)
for _reason in DEAD_LETTER_REASONS:
    DEAD_LETTERS.labels(_reason)  # every reason exported from the start, at 0


class _LagAge:
    """``stepboard_consumer_lag_seconds{partition}``: per partition a writer owns, the age
    of its oldest record not yet applied (0: none), read at scrape time, so it keeps growing
    while a writer retries Redis. A record is known once consumed; past the last applied
    record of a partition not caught up with its log end, the age of that last record is
    given (the next record was accepted no earlier, so its age is at most that)."""

    def __init__(self) -> None:
        self.writers: weakref.WeakSet[BoardConsumer] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauge family, one sample per owned partition."""
        family = GaugeMetricFamily(
            "stepboard_consumer_lag_seconds",
            "Age of the oldest record not yet applied, by partition (0: caught up).",
            labels=["partition"],
        )
        now = time.time()
        for writer in list(self.writers):
            since = writer.unapplied_since.copy()
            for partition in writer.applied.copy():
                accepted = since.get(partition)
                family.add_metric(
                    [str(partition)], 0.0 if accepted is None else max(0.0, now - accepted)
                )
        yield family


LAG_SECONDS = _LagAge()
REGISTRY.register(LAG_SECONDS)
DEAD_LETTER_FAILURES = Counter(
    "stepboard_consumer_dead_letter_failures_total",
    "Dead letters the dead-letter topic did not acknowledge (their partition is held).",
)
HELD = Gauge(
    "stepboard_consumer_held_partitions",
    "Partitions held at a record whose dead letter is not stored yet.",
)
THROTTLED = Counter(
    "stepboard_consumer_throttled_seconds_total",
    "Time the writer waited for its apply rate (STEPBOARD_CONSUMER_MAX_REPORTS_PER_S).",
)
REPLACED = Counter(
    "stepboard_consumer_replaced_total",
    "Kafka consumers replaced because a group join got no assignment in time.",
)

UNKNOWN = -1  # no applied offset known yet: the next write has nothing to check against
IDLE_CHECK_S = 2.0
# Longest a consume waits to fill its batch: what a report waits at low traffic.
CONSUME_WAIT_S = 0.1
# How long a partition held at an unstored dead letter waits before it is read (and the
# letter sent) again.
HOLD_S = 5.0
# Longest single wait for the apply rate: the loop still releases held partitions and
# watches its group join between waits, and reads again within this once allowed.
THROTTLE_WAIT_S = 0.2


class DeadLetters:
    """Sends records the writer cannot use to the dead-letter topic: the record's key,
    timestamp and headers, plus the headers ``error`` (why) and ``source`` (where it was),
    so ``python -m rank_svc.dlq replay`` can re-produce it as it was."""

    def __init__(self, producer: Producer, topic: str, timeout_s: float) -> None:
        """``timeout_s``: the producer's delivery timeout, after which it reports every
        letter it could not store as failed."""
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s

    def send(self, dead: list[DeadLetter]) -> dict[int, int]:
        """Produces every letter and waits for the broker's verdict on each; returns, per
        partition, the offset of the first record whose letter it did not acknowledge
        (empty: all are stored)."""
        verdicts: dict[int, str | None] = {}  # index -> None (stored) or the error
        for index, (source, value, reason, _) in enumerate(dead):
            log.warning("dead letter", extra={"offset": source.offset(), "reason": reason})
            try:
                self._producer.produce(
                    self._topic,
                    value=value,
                    key=source.key(),
                    timestamp=max(source.timestamp()[1], 0),  # 0: none, the time of sending
                    headers=[
                        *(source.headers() or []),
                        ("error", reason.encode()),
                        ("source", f"{source.topic()}/{source.partition()}/{source.offset()}"
                         .encode()),
                    ],
                    on_delivery=functools.partial(self._delivered, verdicts, index),
                )
            except (BufferError, KafkaException) as error:
                verdicts[index] = f"not queued: {error}"
        self._producer.flush(self._timeout_s + 1)
        unsent: dict[int, int] = {}
        for index, (source, *_) in enumerate(dead):
            error = verdicts.get(index, "not acknowledged in time")
            if error is not None:
                DEAD_LETTER_FAILURES.inc()
                log.error("dead-letter topic did not store a dead letter", extra={
                    "partition": source.partition(), "offset": source.offset(), "error": error
                })
                first = unsent.get(source.partition(), source.offset())
                unsent[source.partition()] = min(first, source.offset())
        return unsent

    @staticmethod
    def _delivered(
        verdicts: dict[int, str | None], index: int, error: KafkaError | None, _: Message
    ) -> None:
        verdicts[index] = None if error is None else str(error)


class BoardConsumer:
    """The consume → collapse → apply → store-offsets loop, with rebalance handling."""

    def __init__(
        self,
        config: ConsumerConfig,
        store: BoardWriter,
        dead_letters: DeadLetters,
        stop: threading.Event,
        windows: BackgroundRestore | None = None,
    ) -> None:
        """``windows`` restores the week and month boards after Redis lost data (None:
        not restored)."""
        self.config = config
        self.store = store
        self.dead_letters = dead_letters
        self.stop = stop
        self.windows = windows
        self.applied: dict[int, int] = {}
        self.held: dict[int, float] = {}  # partition -> when (monotonic) to read it again
        # partition -> when ingest accepted its oldest record not yet applied (_LagAge)
        self.unapplied_since: dict[int, float] = {}
        self.records_per_consume = 1  # until a batch shows how many reports a record holds
        self.rate = None if config.max_reports_per_s == 0 else ApplyRate(
            config.max_reports_per_s, config.burst_reports, time.monotonic()
        )
        self.consumer = self._subscribed_consumer()
        self.join_watch = JoinWatch(config.rejoin_after_s, time.monotonic())
        LAG_SECONDS.writers.add(self)

    def _subscribed_consumer(self) -> Consumer:
        consumer = Consumer(
            consumer_config(
                self.config.kafka, self.config.group_id,
                **{"statistics.interval.ms": 5000, "stats_cb": self._on_stats},
            )
        )
        consumer.subscribe(
            [self.config.kafka.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        return consumer

    # -- rebalance ----------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Checks Redis still holds what the group committed; rewinds partitions if not."""
        committed = consumer.committed(partitions, timeout=30)
        ids = [tp.partition for tp in committed]
        marks = retry_until(lambda: self.store.watermarks(ids), self.stop, "assign") or {}
        for tp in committed:
            mark = marks.get(tp.partition)
            if tp.offset < 0:
                self.applied[tp.partition] = UNKNOWN  # never committed: starts at the beginning
            elif mark is None or mark < tp.offset - 1:
                REPLAYS.inc()
                log.warning("redis is missing committed data, replaying",
                            extra={"partition": tp.partition, "watermark": mark})
                tp.offset = self._replay_from(consumer, tp.partition, mark)
            else:
                self.applied[tp.partition] = tp.offset - 1
        consumer.assign(committed)
        self.join_watch.assigned()
        log.info("assigned", extra={"partitions": ids})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commits what was applied before the partitions move to another member."""
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as error:
            log.info("nothing to commit on revoke", extra={"error": str(error)})
        for tp in partitions:
            self.applied.pop(tp.partition, None)
            self.held.pop(tp.partition, None)
            self.unapplied_since.pop(tp.partition, None)
            with contextlib.suppress(KeyError):
                LAG.remove(str(tp.partition))
        HELD.set(len(self.held))
        self.join_watch.waiting(time.monotonic())
        log.info("revoked", extra={"partitions": [tp.partition for tp in partitions]})

    def _on_stats(self, stats_json: str) -> None:
        topic = json.loads(stats_json).get("topics", {}).get(self.config.kafka.topic, {})
        for partition, stats in topic.get("partitions", {}).items():
            if int(partition) in self.applied and stats.get("consumer_lag", -1) >= 0:
                LAG.labels(partition).set(stats["consumer_lag"])

    # -- writing ------------------------------------------------------------------------
    def _replay_from(self, consumer: Consumer, partition: int, mark: int | None) -> int:
        """Where to replay ``partition`` from, given its lowest surviving watermark: right
        after it, and that watermark is what the next write expects, so a second loss
        before that write is noticed too; with none surviving (None), the start of the log
        and nothing to expect. Reports a log that no longer holds the offset needed, and
        asks for the window boards to be restored."""
        if self.windows is not None:
            self.windows.request()
        needed = 0 if mark is None else mark + 1
        check_log_holds(consumer, self.config.kafka.topic, partition, needed)
        self.applied[partition] = UNKNOWN if mark is None else mark
        return OFFSET_BEGINNING if mark is None else needed

    def _rewind(self) -> None:
        """Redis lost data: seek every owned partition back to what Redis still has."""
        REPLAYS.inc()
        owned = list(self.applied)
        marks = retry_until(lambda: self.store.watermarks(owned), self.stop, "rewind") or {}
        for partition in owned:
            offset = self._replay_from(self.consumer, partition, marks.get(partition))
            self.consumer.seek(TopicPartition(self.config.kafka.topic, partition, offset))
        log.warning("redis lost board data, replaying", extra={"from": marks})

    def _apply(
        self, scores: dict, last_offsets: dict[int, int], like_ops: dict | None = None,
        once: bool = False,
    ) -> bool:
        """Writes a batch (its scores and likes), retrying Redis errors (``once``: trying
        once); False (nothing stored) if Redis lost data, failed once, or we are stopping."""
        marks = {p: (self.applied.get(p, UNKNOWN), last) for p, last in last_offsets.items()}
        write = functools.partial(self.store.apply, scores, marks, like_ops)
        lost = try_once(write, "idle check") if once else retry_until(write, self.stop, "apply")
        if lost is None:
            return False
        if lost:
            self._rewind()
            return False
        self.applied.update(last_offsets)
        return True

    def process(self, messages: list) -> None:
        """One step of :meth:`run`: applies a consumed batch (dead letters parked first), then
        stores its offsets."""
        usable = []
        for message in messages:
            if message.error() is None:
                usable.append(message)
            else:
                log.warning("consume error", extra={"error": str(message.error())})
        if not usable:
            return
        self._note_consumed(usable)
        batch = collapse(usable, self.config.board.retention_days)
        if self.rate is not None:
            usable, batch = self._within_rate(usable, batch)
        self.records_per_consume = records_to_ask(
            self.config.batch_size, len(usable), batch.reports
        )
        unsent = self.dead_letters.send(batch.dead) if batch.dead else {}
        if unsent:
            self._hold(unsent)
            usable = [m for m in usable if m.offset() < unsent.get(m.partition(), m.offset() + 1)]
            if not usable:
                return
            batch = collapse(usable, self.config.board.retention_days)  # letters all stored
        if not self._apply(batch.scores, batch.last_offsets, batch.likes):
            return
        self._note_applied(usable, batch)
        self.consumer.store_offsets(offsets=[
            TopicPartition(self.config.kafka.topic, p, offset + 1)
            for p, offset in batch.last_offsets.items()
        ])
        for letter in batch.dead:
            DEAD_LETTERS.labels(letter.kind).inc()
        REPORTS.labels("dead_letter").inc(len(batch.dead))
        REPORTS.labels("expired").inc(batch.expired)
        REPORTS.labels("applied").inc(batch.merged)

    def _within_rate(self, messages: list[Message], batch: Collapsed) -> tuple[list, Collapsed]:
        """The longest start of ``messages`` whose reports the apply rate allows now (at
        least one record: one beyond the bucket is a debt, paid by waiting before the next
        read), charged, and its collapse. The records after it go back to Kafka (each
        partition seeks to its first one) and are read again when the bucket allows."""
        now = time.monotonic()
        allowed = self.rate.available(now)
        if batch.reports > allowed:
            kept = reports = 0
            for message in messages:
                count = reports_in(message)
                if kept and reports + count > allowed:
                    break
                kept, reports = kept + 1, reports + count
            returned: dict[int, int] = {}
            for message in messages[kept:]:
                returned.setdefault(message.partition(), message.offset())
            for partition, offset in returned.items():
                self.consumer.seek(TopicPartition(self.config.kafka.topic, partition, offset))
            messages = messages[:kept]
            batch = collapse(messages, self.config.board.retention_days)
        self.rate.take(batch.reports, now)
        return messages, batch

    def _note_consumed(self, messages: list[Message]) -> None:
        """Notes, per partition, when ingest accepted its oldest record consumed and not
        applied (for ``stepboard_consumer_lag_seconds``)."""
        for message in messages:
            partition, accepted = message.partition(), accepted_at_s(message)
            if accepted < self.unapplied_since.get(partition, accepted + 1):
                self.unapplied_since[partition] = accepted

    def _note_applied(self, applied: list[Message], batch: Collapsed) -> None:
        """Observes the freshness of each record just applied (dead letters are not on a
        board) and moves each partition's oldest unapplied record past them: none if the
        partition reached its log end as last fetched, else the last record applied
        (see :class:`_LagAge`)."""
        now = time.time()
        dead = {(d.source.partition(), d.source.offset()) for d in batch.dead}
        last: dict[int, float] = {}
        for message in applied:
            accepted = last[message.partition()] = accepted_at_s(message)
            if (message.partition(), message.offset()) not in dead:
                FRESHNESS.observe(now - accepted)
        topic = self.config.kafka.topic
        for partition, offset in batch.last_offsets.items():
            _, end = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if offset + 1 >= end:
                self.unapplied_since.pop(partition, None)
            else:
                self.unapplied_since[partition] = last[partition]

    def _hold(self, unsent: dict[int, int]) -> None:
        """Holds each partition of ``unsent`` at the record whose dead letter was not stored:
        paused there, so neither its offset nor its watermark passes the record, and read
        again (the letter sent again) after ``HOLD_S``. The other partitions go on."""
        topic = self.config.kafka.topic
        positions = [TopicPartition(topic, p, offset) for p, offset in unsent.items()]
        self.consumer.pause(positions)
        for position in positions:
            self.consumer.seek(position)
        self.held.update(dict.fromkeys(unsent, time.monotonic() + HOLD_S))
        HELD.set(len(self.held))
        log.error("partitions held until the dead-letter topic stores their letters",
                  extra={"held_at": unsent, "retry_in_s": HOLD_S})

    def _release_held(self) -> None:
        """Resumes the held partitions whose wait is over."""
        now = time.monotonic()
        due = [p for p, at in self.held.items() if at <= now]
        if due:
            self.consumer.resume([TopicPartition(self.config.kafka.topic, p) for p in due])
            for partition in due:
                del self.held[partition]
            HELD.set(len(self.held))

    def check_idle(self) -> None:
        """With no traffic, still notice a Redis that lost data (empty write, same marks).
        A Redis error waits for the next check rather than being retried here, so records
        arriving meanwhile are read (and their wait shows in
        ``stepboard_consumer_lag_seconds``) while their own write retries."""
        known = {p: a for p, a in self.applied.items() if a != UNKNOWN}
        if known:
            self._apply({}, known, once=True)

    def _replace_if_stuck(self) -> None:
        """No assignment for too long: if the broker answers, the join is stuck
        (:mod:`rank_svc.join_watch`) and a new consumer joins instead."""
        try:
            self.consumer.list_topics(self.config.kafka.topic, timeout=5)
        except KafkaException:
            log.info("still no assignment; the broker is not answering either")
        else:
            REPLACED.inc()
            log.warning("no assignment though the broker answers: replacing the Kafka consumer",
                        extra={"after_s": self.config.rejoin_after_s})
            stuck = self.consumer
            # It owns no partitions; its close may hang in the stalled join, so off the loop.
            threading.Thread(target=stuck.close, name="close-stuck", daemon=True).start()
            self.consumer = self._subscribed_consumer()
        self.join_watch = JoinWatch(self.config.rejoin_after_s, time.monotonic())

    def _throttled(self) -> bool:
        """With an apply rate, whether the bucket is too low to read now; if so, waits
        (at most ``THROTTLE_WAIT_S``, counted in ``stepboard_consumer_throttled_seconds_total``)
        while Kafka holds the records. The waits are short and the loop reads again as soon
        as the bucket allows, so the consumer stays well inside ``max.poll.interval.ms`` and
        serves rebalances within about the debt of one batch."""
        if self.rate is None:
            return False
        wait_s = self.rate.wait_s(time.monotonic())
        if wait_s <= 0:
            return False
        waited = min(wait_s, THROTTLE_WAIT_S)
        self.stop.wait(waited)
        THROTTLED.inc(waited)
        return True

    def _records_to_read(self) -> int:
        """How many records the next consume asks for: a batch's worth, or with an apply
        rate no more than the reports its bucket allows now (by the last batch's reports
        per record)."""
        if self.rate is None:
            return self.records_per_consume
        allowed = min(self.rate.available(time.monotonic()), self.config.batch_size)
        return max(1, self.records_per_consume * allowed // self.config.batch_size)

    def run(self) -> None:
        """Consumes until stopped, then commits what was applied and leaves the group."""
        last_check = time.monotonic()
        try:
            while not self.stop.is_set():
                if self._throttled():
                    messages = []
                    last_check = time.monotonic()
                else:
                    messages = self.consumer.consume(self._records_to_read(),
                                                     timeout=CONSUME_WAIT_S)
                if messages:
                    with applied_spans(messages):
                        self.process(messages)
                    last_check = time.monotonic()
                elif time.monotonic() - last_check >= IDLE_CHECK_S:
                    self.check_idle()
                    last_check = time.monotonic()
                self._release_held()
                if self.join_watch.overdue(time.monotonic()):
                    self._replace_if_stuck()
        finally:
            self.consumer.close()  # commits the stored offsets
            log.info("consumer closed")


def serve(config: ConsumerConfig) -> None:
    """Runs the board writer until SIGTERM/SIGINT, at its configured niceness."""
    if config.nice:
        os.nice(config.nice)
    stop = stop_on_signals()
    serve_metrics(config.metrics_port)
    configure(config.tracing)
    client = create_redis(config.redis)
    require_noeviction(client, config.redis.allow_eviction)
    store = BoardWriter(client, config.board, config.kafka.topic)
    dlq_producer = Producer(producer_config(config.kafka))
    dead_letters = DeadLetters(
        dlq_producer, config.kafka.dlq_topic, config.kafka.delivery_timeout_s
    )
    try:
        with restorer_for(store, config.archive) as restorer:
            windows = BackgroundRestore(restorer, stop)
            BoardConsumer(config, store, dead_letters, stop, windows).run()
    finally:
        dlq_producer.flush(10)
        client.close()


def main(argv: list[str] | None = None) -> None:
    """``serve`` (default), ``rebuild --day YYYY-MM-DD`` or ``rebuild --windows`` (exit
    status 1 if a window board could not be restored)."""
    parser = argparse.ArgumentParser(prog="python -m rank_svc.consumer")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the board writer (default)")
    rebuild = commands.add_parser(
        "rebuild", help="rebuild a day's board from the log, or the week and month boards")
    what = rebuild.add_mutually_exclusive_group(required=True)
    what.add_argument("--day", help="YYYY-MM-DD: that day's board, then its week and month")
    what.add_argument("--windows", action="store_true",
                      help="every week and month board that may exist")
    args = parser.parse_args(argv)
    config = load("rank_svc.consumer", ConsumerConfig.from_env)
    if args.command == "rebuild":
        day = None if args.windows else parse_day(args.day, "--day")
        raise SystemExit(0 if rebuild_command(config, day) else 1)
    serve(config)


if __name__ == "__main__":
    main()
