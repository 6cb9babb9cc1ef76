"""``python -m rank_svc.dlq inspect|replay``: the operator's tool for the dead-letter topic.

The board consumer parks what it cannot use on ``STEPBOARD_KAFKA_DLQ_TOPIC``
(:class:`rank_svc.consumer.DeadLetters`): the record's key, value, timestamp and headers,
plus the headers ``error`` (why) and ``source`` (``topic/partition/offset``). Both commands
read the topic from its start (or ``--since``) up to its end when they start, never as a
group member (nothing is committed, so runs are repeatable), and keep the records that
match every filter given: ``--reason`` (a substring of ``error``), ``--since``/``--until``
(the record's timestamp: when ingest accepted it) and ``--partition``.

``inspect`` prints one line per record (partition, offset, time, reason, key, a preview
of the value: its reports or like, or the first bytes in hex), or JSON lines (``--json``).
``replay`` re-produces each record to ``STEPBOARD_KAFKA_TOPIC`` with ``acks=all``: same
key, value, timestamp and headers, minus ``error`` and ``source``; the consumer judges it
again at that timestamp (max-merge makes a report replayed twice harmless).
``--restamp`` stamps them at the replay instant instead, for records whose stamp was the
fault (a producer with a wrong clock). ``--dry-run`` prints what would be sent and sends
nothing. It ends with a count on stderr.

Exit status: 0 done (every matching record printed, or acknowledged by the broker); 1
``replay``: some records were not acknowledged (the count says how many; rerun with the
same filters, a record replayed twice is harmless); 2 bad arguments or configuration; 3 the
dead-letter topic could not be read (missing, or the broker did not answer in
``--timeout`` seconds).
"""

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from google.protobuf.message import DecodeError

from common.kafka_clients import KafkaSettings, consumer_config, producer_config
from common.record_format import decode_like, decode_reports, is_like
from common.runtime import load

DEAD_LETTER_HEADERS = ("error", "source")  # what the consumer adds to a parked record
PREVIEW_BYTES = 32
UNREADABLE = 3
NOT_ACKNOWLEDGED = 1


class DlqUnreadable(Exception):
    """The dead-letter topic could not be read to its end."""


@dataclass(frozen=True)
class Filters:
    """Which dead letters a command acts on (None: any)."""

    reason: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    partitions: frozenset[int] | None = None

    def matches(self, letter: Message) -> bool:
        """Whether ``letter`` passes every filter given."""
        stamp = timestamp_ms(letter)
        return (
            (self.reason is None or self.reason in reason_of(letter))
            and (self.since_ms is None or stamp >= self.since_ms)
            and (self.until_ms is None or stamp < self.until_ms)
            and (self.partitions is None or letter.partition() in self.partitions)
        )


def timestamp_ms(message: Message) -> int:
    """The record's timestamp in Unix milliseconds (0 if it has none)."""
    kind, millis = message.timestamp()
    return 0 if kind == TIMESTAMP_NOT_AVAILABLE else millis


def header(message: Message, name: str) -> str:
    """The text of header ``name`` ("" if absent)."""
    for key, value in message.headers() or []:
        if key == name:
            return (value or b"").decode(errors="replace")
    return ""


def reason_of(message: Message) -> str:
    """Why the consumer parked the record (its ``error`` header)."""
    return header(message, "error")


def replay_headers(message: Message) -> list[tuple[str, bytes]]:
    """The record's headers without the ones the consumer added when it parked it."""
    return [(k, v) for k, v in message.headers() or [] if k not in DEAD_LETTER_HEADERS]


def preview(value: bytes | None) -> str:
    """A one-line, printable summary of a record value: its reports or its like if it
    decodes, else its size and first bytes in hex (never raw bytes on the terminal)."""
    if not value:
        return "empty"
    try:
        if is_like(value):
            like = decode_like(value)
            return (f"like liker={like.liker_id} liked={like.liked_id} day={like.day} "
                    f"liked={like.liked}")
        reports = decode_reports(value)
    except DecodeError:
        head = value[:PREVIEW_BYTES].hex()
        return f"{len(value)} bytes: {head}{'...' if len(value) > PREVIEW_BYTES else ''}"
    first = reports[0]
    more = f" (+{len(reports) - 1} more)" if len(reports) > 1 else ""
    return f"report user={first.user_id} day={first.day!r} steps={first.steps}{more}"


def describe(letter: Message) -> dict:
    """The fields ``inspect`` prints for one dead letter."""
    key = letter.key()
    return {
        "partition": letter.partition(),
        "offset": letter.offset(),
        "time": _iso(timestamp_ms(letter)),
        "reason": reason_of(letter),
        "source": header(letter, "source"),
        "key": None if key is None else key.decode(errors="replace"),
        "value": preview(letter.value()),
    }


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")


def read_letters(
    settings: KafkaSettings, filters: Filters, timeout_s: float
) -> Iterator[Message]:
    """The matching records of the dead-letter topic, from its start (or ``since``) to its
    end as of the call, in partition-then-offset order of arrival; ``DlqUnreadable`` if the
    topic is missing or not read to that end within ``timeout_s``."""
    consumer = Consumer(consumer_config(
        settings, "stepboard-dlq-tool", **{"enable.auto.commit": False}
    ))
    try:
        for letter in _read(consumer, settings.dlq_topic, filters, time.monotonic() + timeout_s):
            if filters.matches(letter):
                yield letter
    finally:
        consumer.close()


def _read(
    consumer: Consumer, topic: str, filters: Filters, deadline: float
) -> Iterator[Message]:
    ends = _end_offsets(consumer, topic, filters.partitions, deadline)
    starts = _start_offsets(consumer, topic, ends, filters.since_ms, deadline)
    remaining = {p: end for p, end in ends.items() if starts[p] < end}
    if not remaining:
        return
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in remaining])
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DlqUnreadable(f"{topic} not read to its end in time (left: {remaining})")
        for message in consumer.consume(500, timeout=min(left, 1.0)):
            if message.error() is not None:
                raise DlqUnreadable(f"reading {topic}: {message.error()}")
            if message.offset() < remaining.get(message.partition(), -1):
                yield message
        # Done with a partition once the position passes its end (offsets may have gaps).
        for position in consumer.position([TopicPartition(topic, p) for p in remaining]):
            if position.offset >= remaining[position.partition]:
                del remaining[position.partition]


def _end_offsets(
    consumer: Consumer, topic: str, wanted: frozenset[int] | None, deadline: float
) -> dict[int, int]:
    """Each partition's end offset now (only the ``wanted`` ones, if given)."""
    try:
        metadata = consumer.list_topics(topic, timeout=_left(deadline)).topics[topic]
        if metadata.error is not None:
            raise DlqUnreadable(f"{topic}: {metadata.error}")
        ids = sorted(p for p in metadata.partitions if wanted is None or p in wanted)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p),
                                              timeout=_left(deadline))[1]
            for p in ids
        }
    except KafkaException as error:
        raise DlqUnreadable(f"{topic}: {error}") from None


def _start_offsets(
    consumer: Consumer, topic: str, ends: dict[int, int], since_ms: int | None,
    deadline: float,
) -> dict[int, int]:
    """Where each partition's reading starts: the first record at or after ``since_ms``
    (the end if none), else the start of the log."""
    starts = {}
    try:
        for partition in ends:
            if since_ms is None:
                starts[partition] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=_left(deadline))[0]
            else:
                found = consumer.offsets_for_times(
                    [TopicPartition(topic, partition, since_ms)], timeout=_left(deadline))[0]
                starts[partition] = ends[partition] if found.offset < 0 else found.offset
    except KafkaException as error:
        raise DlqUnreadable(f"{topic}: {error}") from None
    return starts


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DlqUnreadable("the broker did not answer in time")
    return left


def inspect(letters: Iterator[Message], as_json: bool) -> int:
    """Prints each dead letter; returns how many."""
    count = 0
    for letter in letters:
        fields = describe(letter)
        if as_json:
            print(json.dumps(fields), flush=True)
        else:
            print("\t".join(str(fields[k]) for k in
                            ("partition", "offset", "time", "reason", "key", "value")),
                  flush=True)
        count += 1
    return count


@dataclass
class ReplayCount:
    """What a replay did: records matched, and of them, acknowledged by the broker."""

    matched: int = 0
    acknowledged: int = 0


def replay(
    letters: Iterator[Message], settings: KafkaSettings, dry_run: bool, restamp: bool
) -> ReplayCount:
    """Re-produces each dead letter to the reports topic (``acks=all``) and waits for the
    broker's verdicts; with ``dry_run``, only prints what it would send."""
    count = ReplayCount()
    producer = None if dry_run else Producer(producer_config(settings))
    for letter in letters:
        count.matched += 1
        stamp = _now_ms() if restamp else timestamp_ms(letter)
        if producer is None:
            fields = describe(letter) | {"time": _iso(stamp), "to": settings.topic,
                                         "headers": [k for k, _ in replay_headers(letter)]}
            print("would send " + json.dumps(fields), flush=True)
            continue
        try:
            producer.produce(
                settings.topic, value=letter.value(), key=letter.key(),
                headers=replay_headers(letter), timestamp=stamp,
                on_delivery=lambda error, _, c=count: _delivered(c, error),
            )
        except (BufferError, KafkaException) as error:
            _delivered(count, error)  # not queued: counted as not replayed
        producer.poll(0)
    if producer is not None:
        producer.flush(settings.delivery_timeout_s + 1)
    return count


def _delivered(count: ReplayCount, error: KafkaError | Exception | None) -> None:
    if error is None:
        count.acknowledged += 1
    else:
        print(f"not replayed: {error}", file=sys.stderr)


def _now_ms() -> int:
    return int(time.time() * 1000)


def parse_time(text: str) -> int:
    """An ISO-8601 date or time (UTC unless it names an offset) as Unix milliseconds;
    ``argparse.ArgumentTypeError`` if it is neither."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date or time (e.g. 2026-12-03T18:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _partition(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a partition number")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command line of both commands (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m rank_svc.dlq",
        description="Inspect or replay the dead-letter topic (STEPBOARD_KAFKA_DLQ_TOPIC).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("inspect", "print the matching dead letters"),
                       ("replay", "re-produce the matching dead letters to the reports topic")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--reason", help="only letters whose error header contains this")
        command.add_argument("--since", type=parse_time,
                             help="only records stamped at or after this ISO-8601 time (UTC)")
        command.add_argument("--until", type=parse_time,
                             help="only records stamped before this ISO-8601 time (UTC)")
        command.add_argument("--partition", type=_partition, action="append",
                             help="only this dead-letter partition (repeatable)")
        command.add_argument("--timeout", type=float, default=30.0,
                             help="seconds to read the topic to its end (default 30)")
    commands.choices["inspect"].add_argument("--json", action="store_true",
                                             help="one JSON object per line")
    commands.choices["replay"].add_argument("--dry-run", action="store_true",
                                            help="print what would be sent, send nothing")
    commands.choices["replay"].add_argument(
        "--restamp", action="store_true",
        help="stamp records at the replay instant, not when ingest accepted them")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Runs one command and exits with the status the module docstring lists."""
    args = build_parser().parse_args(argv)
    settings = load("rank_svc.dlq", KafkaSettings.from_env)
    filters = Filters(
        reason=args.reason, since_ms=args.since, until_ms=args.until,
        partitions=None if args.partition is None else frozenset(args.partition),
    )
    letters = read_letters(settings, filters, args.timeout)
    try:
        if args.command == "inspect":
            count = inspect(letters, args.json)
            print(f"{count} dead letters matched", file=sys.stderr)
            raise SystemExit(0)
        result = replay(letters, settings, args.dry_run, args.restamp)
    except DlqUnreadable as error:
        print(f"rank_svc.dlq: cannot read {settings.dlq_topic}: {error}", file=sys.stderr)
        raise SystemExit(UNREADABLE) from None
    if args.dry_run:
        print(f"{result.matched} dead letters would be replayed to {settings.topic}",
              file=sys.stderr)
        raise SystemExit(0)
    print(f"replayed {result.acknowledged} of {result.matched} dead letters to "
          f"{settings.topic}", file=sys.stderr)
    raise SystemExit(0 if result.acknowledged == result.matched else NOT_ACKNOWLEDGED)


if __name__ == "__main__":
    main()
