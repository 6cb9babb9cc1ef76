"""Rebuild boards on demand (``python -m rank_svc.consumer rebuild``).

``--day YYYY-MM-DD``: the day is replayed from the Kafka log into staging keys up to the
log end seen at the start, the staging board then replaces the live one shard by shard, and
records that arrived meanwhile are replayed into the live board (max-merge makes the
overlap harmless). The day's likes (:mod:`rank_svc.likes`) are replayed straight into the
live keys: each is a state set in log order, so replaying all of a like's changes in order
ends in its last state even while the consumer applies the same changes. Watermarks are
left alone: the running consumers keep their own bookkeeping. A log whose records of the
day may have been deleted already is reported, not silently replayed from later
(:func:`_check_log_holds_day`). The staging replay leaves the week and month boards alone,
so once the day is swapped in, its week and month are restored
(:mod:`rank_svc.window_restore`: the kept days from their boards, the expired ones from the
day archive).

``--windows``: every week and month board that may exist is restored the same way.

Both run beside the consumers. The command exits with status 1 if a window board could not
be restored (an expired day of it is not archived, or there is no archive), after an ERROR
naming the window and the days.
"""

import logging
import threading
import time
import uuid
from datetime import date, timedelta

from confluent_kafka import Consumer, TopicPartition

from common.kafka_clients import KafkaSettings, consumer_config
from common.redis_clients import create_redis
from common.report_rules import day_start
from rank_svc.board_writer import BoardWriter
from rank_svc.config import ConsumerConfig
from rank_svc.consumed_batch import check_log_holds, collapse, records_to_ask, retry_until
from rank_svc.window_restore import restorable_windows, restorer_for

log = logging.getLogger(__name__)

# Reports for a day can only be produced once the day began somewhere; an hour of slack
# covers broker clock differences.
_SLACK = timedelta(hours=1)


def _log_range(consumer: Consumer, topic: str, day: date) -> dict[int, tuple[int, int]]:
    """Per partition, the offsets from the first record that may carry ``day`` to the end."""
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    since_ms = int((day_start(day) - _SLACK).timestamp() * 1000)
    starts = consumer.offsets_for_times(
        [TopicPartition(topic, p, since_ms) for p in metadata.partitions], timeout=30
    )
    ranges = {}
    for tp in starts:
        _, high = consumer.get_watermark_offsets(tp, timeout=30)
        ranges[tp.partition] = (high if tp.offset < 0 else tp.offset, high)
    return ranges


def _check_log_holds_day(
    consumer: Consumer, topic: str, ranges: dict[int, tuple[int, int]]
) -> None:
    """A day's replay needs each partition's log from the last record stamped before the
    day began (so that no earlier record can carry the day). Where even the first record
    kept is stamped later, deleted records may have carried the day: that is logged as an
    ERROR and counted (:func:`rank_svc.consumed_batch.check_log_holds`)."""
    for partition, (start, _) in ranges.items():
        check_log_holds(consumer, topic, partition, max(start - 1, 0))


def _replay(
    consumer: Consumer,
    config: ConsumerConfig,
    ranges: dict[int, tuple[int, int]],
    day: date,
    store: BoardWriter,
    stop: threading.Event,
) -> int:
    """Applies ``day``'s reports in ``ranges`` to ``store``; returns records read."""
    topic = config.kafka.topic
    todo = {p: end for p, (start, end) in ranges.items() if start < end}
    if not todo:
        return 0
    consumer.assign([TopicPartition(topic, p, ranges[p][0]) for p in todo])
    read = 0
    ask = 1  # records to ask for, until a batch shows how many reports a record holds
    while todo and not stop.is_set():
        messages = [
            m for m in consumer.consume(ask, timeout=1.0)
            if m.error() is None and m.partition() in todo and m.offset() < todo[m.partition()]
        ]
        for message in messages:
            if message.offset() + 1 >= todo[message.partition()]:
                del todo[message.partition()]
        batch = collapse(messages, config.board.retention_days, only_day=day)
        retry_until(lambda b=batch: store.apply(b.scores, {}, b.likes), stop, "rebuild")
        read += len(messages)
        if messages:
            ask = records_to_ask(config.batch_size, len(messages), batch.reports)
    consumer.unassign()
    return read


def rebuild_day(config: ConsumerConfig, day: date, stop: threading.Event | None = None) -> int:
    """Rebuilds ``day``'s board from the log; returns how many records were read."""
    stop = stop or threading.Event()
    client = create_redis(config.redis)
    live = BoardWriter(client, config.board, config.kafka.topic)
    staging = BoardWriter(client, config.board, config.kafka.topic, staging=True)
    consumer = Consumer(_rebuild_consumer_config(config.kafka))
    try:
        first = _log_range(consumer, config.kafka.topic, day)
        _check_log_holds_day(consumer, config.kafka.topic, first)
        staging.drop_day(day)
        read = _replay(consumer, config, first, day, staging, stop)
        staging.move_day(day, live)
        latest = _log_range(consumer, config.kafka.topic, day)
        tail = {p: (first.get(p, (0, 0))[1], high) for p, (_, high) in latest.items()}
        read += _replay(consumer, config, tail, day, live, stop)
        log.info("day rebuilt", extra={"day": day.isoformat(), "records": read})
        return read
    finally:
        consumer.close()
        client.close()


def rebuild_command(config: ConsumerConfig, day: date | None) -> bool:
    """``rebuild``: ``day``'s board from the log then its week and month boards, or (None)
    every week and month board that may exist; whether every window board was restored."""
    if day is not None:
        rebuild_day(config, day)
    client = create_redis(config.redis)
    writer = BoardWriter(client, config.board, config.kafka.topic)
    try:
        windows = restorable_windows(time.time(), config.board.retention_days)
        if day is not None:
            windows = [window for window in windows if window.first <= day <= window.last]
        with restorer_for(writer, config.archive) as restorer:
            restored = restorer.restore_all(windows)
    finally:
        client.close()
    return not any(done.missing for done in restored)


def _rebuild_consumer_config(settings: KafkaSettings) -> dict:
    """A throwaway group member that commits nothing."""
    return consumer_config(
        settings, f"stepboard-rebuild-{uuid.uuid4().hex}", **{"enable.auto.commit": False}
    )
