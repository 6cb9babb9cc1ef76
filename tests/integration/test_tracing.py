"""The two traces of common.tracing, with every trace sampled and spans kept in memory:
``ReportSteps`` → its Kafka record → the consumer's apply of that record, and
``GetFriendRanking`` → its call to social_svc → social_svc's span of that call, with the
Redis reads of the ranking. In-process ingest, rank and social servers and an in-process
board consumer (on a private topic) run against the stack's Kafka, Redis and MariaDB.
With tracing off, the same calls record no span at all.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from confluent_kafka import Producer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common import tracing
from common.kafka_clients import producer_config
from common.redis_clients import create_redis
from common.tracing import TraceSettings
from rank_svc.config import ConsumerConfig
from rank_svc.consumer import BoardConsumer, DeadLetters
from stepboard.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
    social_pb2,
)
from tests.board_store import BoardStore
from tests.harness import (
    create_topics,
    delete_topics,
    report,
    service_env,
    today,
    unique,
    wait_until,
)
from tests.in_process import ingest_server, rank_server
from tests.social_support import STACK_MARIADB, ShardDatabases, SocialServer, fresh_user_base

SAMPLE_ALL = TraceSettings(service_name="stepboard-test", sample_ratio=1.0)
LIST_FRIENDS = "stepboard.v1.FriendGraph/ListFriends"


@dataclass
class Deployment:
    """A social server and a board consumer, the settings of the servers a test adds
    (:meth:`servers`), and the spans they all finished."""

    env: dict[str, str]
    exporter: InMemorySpanExporter
    provider: TracerProvider
    social: SocialServer
    board: BoardStore
    users: Iterator[int]
    closers: list[Callable[[], None]]

    def trace_on(self) -> None:
        """Tracing on again, every trace sampled, spans into :attr:`exporter`."""
        self.provider = tracing.enable(SAMPLE_ALL, self.exporter)

    def forget_spans(self) -> None:
        """Drops every span finished so far, those still queued for export included."""
        self.provider.force_flush()
        self.exporter.clear()

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span finished so far (the batch processor flushed first)."""
        self.provider.force_flush()
        return self.exporter.get_finished_spans()

    def applied(self, user: int) -> bool:
        """Whether the consumer has written ``user``'s report to today's board."""
        return self.board.scores(today(), [user])[user] is not None

    def servers(self) -> tuple[ingest_pb2_grpc.StepIngestStub, ranking_pb2_grpc.RankingStub]:
        """New ingest and rank servers, built as their processes build them (tracing as it
        is now), and stubs to call them."""
        servers = contextlib.ExitStack()
        ingest = servers.enter_context(ingest_server(self.env))
        rank = servers.enter_context(rank_server(self.env))
        channels = [grpc.insecure_channel(f"127.0.0.1:{b.port}") for b in (ingest, rank)]
        self.closers += [servers.close, *(channel.close for channel in channels)]
        return (ingest_pb2_grpc.StepIngestStub(channels[0]),
                ranking_pb2_grpc.RankingStub(channels[1]))


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """Social server and board consumer (on a private topic), tracing on. A global
    provider into the same exporter catches any span made outside common.tracing."""
    exporter = InMemorySpanExporter()
    global_provider = TracerProvider()
    global_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(global_provider)
    provider = tracing.enable(SAMPLE_ALL, exporter)  # before any server is built
    databases = ShardDatabases([STACK_MARIADB])
    social = SocialServer(databases, unique("sg"))
    topic = unique("traced")
    env = service_env(
        STEPBOARD_GRPC_PORT="0", STEPBOARD_KAFKA_TOPIC=topic,
        STEPBOARD_KAFKA_DLQ_TOPIC=topic + ".dlq", STEPBOARD_CONSUMER_GROUP=unique("group"),
        STEPBOARD_BOARD_NAMESPACE=unique("ns"), STEPBOARD_BOARD_SHARDS="4",
        STEPBOARD_SOCIAL_ADDR=f"127.0.0.1:{social.built.port}",
    )
    config = ConsumerConfig.from_env(env)
    create_topics(config.kafka.bootstrap, {topic: 2, topic + ".dlq": 1})
    redis = create_redis(config.redis)
    board = BoardStore(redis, config.board, topic)
    dlq = Producer(producer_config(config.kafka))
    stop = threading.Event()
    consumer = BoardConsumer(config, board, DeadLetters(dlq, config.kafka.dlq_topic, 10), stop)
    writer = threading.Thread(target=consumer.run, name="board-consumer", daemon=True)
    writer.start()
    d = Deployment(env, exporter, provider, social, board,
                   iter(range(fresh_user_base(), 2**62)), [])
    yield d
    stop.set()
    writer.join(30)
    for close in (*reversed(d.closers), social.close, databases.drop, redis.close,
                  lambda: dlq.flush(10)):
        close()
    delete_topics(config.kafka.bootstrap, [topic, topic + ".dlq"])
    tracing.disable()
    global_provider.shutdown()


def _report_steps(ingest: ingest_pb2_grpc.StepIngestStub, user: int):
    return ingest.ReportSteps(
        ingest_pb2.ReportStepsRequest(report=report(user, today(), 1234, 60)), timeout=10
    )


def _one(spans, name: str, kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.name == name and s.kind == kind]
    assert len(found) == 1, f"{name} ({kind}): {[(s.name, s.kind) for s in spans]}"
    return found[0]


def test_a_report_is_traced_from_report_steps_to_the_consumer_applying_its_record(deployment):
    d = deployment
    ingest, _ = d.servers()
    d.forget_spans()
    user = next(d.users)
    stored = _report_steps(ingest, user)
    wait_until(lambda: any(s.name.startswith("apply ") for s in d.spans()), 30)

    spans = d.spans()
    call = _one(spans, "stepboard.v1.StepIngest/ReportSteps", SpanKind.SERVER)
    applied = _one(spans, f"apply {d.env['STEPBOARD_KAFKA_TOPIC']}", SpanKind.CONSUMER)
    assert applied.context.trace_id == call.context.trace_id
    assert applied.parent.span_id == call.context.span_id
    assert (applied.attributes["messaging.kafka.partition"],
            applied.attributes["messaging.kafka.offset"]) == (stored.partition, stored.offset)
    assert applied.end_time >= call.end_time
    assert d.applied(user)


def test_a_friend_ranking_is_traced_through_social_svc_and_its_redis_reads(deployment):
    d = deployment
    _, ranking = d.servers()
    user, friend = next(d.users), next(d.users)
    d.social.stub.AddFriendship(
        social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10
    )
    d.forget_spans()
    ranking.GetFriendRanking(
        ranking_pb2.GetFriendRankingRequest(user_id=user, day=today().isoformat()), timeout=10
    )

    spans = d.spans()
    call = _one(spans, "stepboard.v1.Ranking/GetFriendRanking", SpanKind.SERVER)
    assert call.parent is None
    in_trace = [s for s in spans if s.context.trace_id == call.context.trace_id]
    assert in_trace == list(spans), [(s.name, s.kind) for s in spans if s not in in_trace]
    client = _one(spans, LIST_FRIENDS, SpanKind.CLIENT)
    served = _one(spans, LIST_FRIENDS, SpanKind.SERVER)
    assert client.parent.span_id == call.context.span_id
    assert served.parent.span_id == client.context.span_id
    for name in ("redis read friends", "redis read scores"):
        read = _one(spans, name, SpanKind.CLIENT)
        assert read.parent.span_id == call.context.span_id, name
        assert read.attributes["db.system"] == "redis"


def test_with_tracing_off_the_same_calls_record_no_span(deployment):
    d = deployment
    tracing.disable()
    try:
        ingest, ranking = d.servers()
        d.forget_spans()
        user, friend = next(d.users), next(d.users)
        d.social.stub.AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10
        )
        _report_steps(ingest, user)
        ranking.GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(user_id=user, day=today().isoformat()),
            timeout=10,
        )
        wait_until(lambda: d.applied(user), 30)
        assert d.spans() == ()
    finally:
        d.trace_on()
