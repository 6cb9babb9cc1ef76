"""A private write path for one test: its own topics, consumer group and board namespace.

Ingest and ranking servers run in-process on free ports; consumers are real
``python -m rank_svc.consumer`` processes so they can be killed like in production.
"""

import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import date

import grpc
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from common.kafka_clients import KafkaSettings, consumer_config
from common.redis_clients import RedisSettings, create_redis
from ingest_svc.config import IngestConfig
from ingest_svc.producer import ReportProducer
from ingest_svc.server import build_server as build_ingest
from rank_svc.board_format import BoardSettings, decode_score
from rank_svc.config import RankConfig
from rank_svc.server import build_server as build_rank
from stepboard.v1 import ingest_pb2_grpc, ranking_pb2, ranking_pb2_grpc, social_pb2_grpc
from tests.board_store import BoardStore
from tests.harness import (
    create_topics,
    delete_topics,
    free_port,
    service_env,
    start_process,
    unique,
)
from tests.model import BoardModel
from tests.processes import stop_process

PARTITIONS = 3

# Errors of a watermark query that a moment later goes through: the client's metadata
# does not name the new topic's leader yet.
_LEADER_UNKNOWN = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                   KafkaError.UNKNOWN_TOPIC_OR_PART}


class WritePath:
    """Topics, servers, consumers and checks of one isolated write path."""

    def __init__(
        self,
        overrides: dict[str, str],
        own_social: bool = False,
        social_route: Callable[[str], str] | None = None,
    ) -> None:
        """``own_social``: run a private social_svc process (so a test may stop it) instead
        of using the local stack's. ``social_route``: given social_svc's address, returns the
        one the ranking server dials instead (a fault proxy in between)."""
        self._social_route = social_route
        self.topic = unique("reports")
        self.dlq_topic = self.topic + ".dlq"
        self.env = service_env(
            STEPBOARD_KAFKA_TOPIC=self.topic,
            STEPBOARD_KAFKA_DLQ_TOPIC=self.dlq_topic,
            STEPBOARD_CONSUMER_GROUP=unique("group"),
            STEPBOARD_BOARD_NAMESPACE=unique("ns"),
            STEPBOARD_BOARD_SHARDS="4",
            STEPBOARD_GRPC_PORT="0",
            STEPBOARD_CONSUMER_BATCH="500",
            **overrides,
        )
        self.kafka = KafkaSettings.from_env(self.env)
        create_topics(self.kafka.bootstrap, {self.topic: PARTITIONS, self.dlq_topic: 1})
        self.redis = create_redis(RedisSettings.from_env(self.env))
        self.store = BoardStore(self.redis, BoardSettings.from_env(self.env), self.topic)
        self.consumers: list[subprocess.Popen] = []
        self._servers: list[grpc.Server] = []
        self._closers = []
        self._probe: Consumer | None = None
        self.social_process = self._start_social() if own_social else None
        self.social = social_pb2_grpc.FriendGraphStub(
            grpc.insecure_channel(self.env["STEPBOARD_SOCIAL_ADDR"])
        )
        self.ingest = self._start_ingest()
        self.ranking = self._start_rank()

    def _start_social(self) -> subprocess.Popen:
        port = free_port()
        self.env["STEPBOARD_SOCIAL_ADDR"] = f"127.0.0.1:{port}"
        process = start_process("social_svc", self.env | {"STEPBOARD_GRPC_PORT": str(port)})
        channel = grpc.insecure_channel(self.env["STEPBOARD_SOCIAL_ADDR"])
        grpc.channel_ready_future(channel).result(timeout=30)
        channel.close()
        return process

    def _start_ingest(self) -> ingest_pb2_grpc.StepIngestStub:
        config = IngestConfig.from_env(self.env)
        producer = ReportProducer(config.kafka)
        social = grpc.insecure_channel(self.env["STEPBOARD_SOCIAL_ADDR"])
        built = build_ingest(config, producer, social)
        built.server.start()
        self._servers.append(built.server)
        self._closers += [producer.close, social.close]
        self.ingest_address = f"127.0.0.1:{built.port}"
        return ingest_pb2_grpc.StepIngestStub(grpc.insecure_channel(self.ingest_address))

    def _start_rank(self) -> ranking_pb2_grpc.RankingStub:
        address = self.env["STEPBOARD_SOCIAL_ADDR"]
        if self._social_route is not None:
            address = self._social_route(address)
        env = self.env | {"STEPBOARD_SOCIAL_ADDR": address}
        self._social = grpc.insecure_channel(address)
        built = build_rank(RankConfig.from_env(env), self.redis, self._social)
        built.server.start()
        self._servers.append(built.server)
        self.rank_address = f"127.0.0.1:{built.port}"
        return ranking_pb2_grpc.RankingStub(grpc.insecure_channel(self.rank_address))

    def start_consumer(self, **overrides: str) -> subprocess.Popen:
        """A new member of this path's consumer group, as a real process (``overrides``:
        settings of this one process, such as a Redis address through a fault proxy)."""
        process = start_process("rank_svc.consumer", self.env | overrides)
        self.consumers.append(process)
        return process

    def board(self, day: date) -> list[tuple[int, int, int]]:
        """``(user_id, steps, reached_at second)`` of the top 1000 via GetGlobalTop."""
        reply = self.ranking.GetGlobalTop(
            ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=1000), timeout=10
        )
        return [(e.user_id, e.steps, e.reached_at.seconds) for e in reply.entries]

    def matches(self, model: BoardModel, day: date, day_start_s: int) -> bool:
        """Whether the board equals the model for ``day``.

        The served top 1000 must equal the model's, and every user's stored entry (read
        back with ``ZMSCORE`` and decoded) must equal the model's, with nobody extra.
        """
        expected = [(u, s, day_start_s + t) for u, s, t in model.ranking(day)]
        if self.board(day) != expected[:1000]:
            return False
        if self.store.participants(day) != len(expected):
            return False
        stored = self.store.scores(day, [u for u, _, _ in expected])
        return all(
            stored[u] is not None and decode_score(day, stored[u]) == (s, t)
            for u, s, t in expected
        )

    def log_end(self, topic: str) -> int:
        """How many records ``topic`` holds (sum of partition end offsets)."""
        if self._probe is None:
            self._probe = Consumer(consumer_config(self.kafka, unique("probe")))
            self._closers.append(self._probe.close)
        metadata = self._probe.list_topics(topic, timeout=10).topics[topic]
        return sum(self._end_offset(TopicPartition(topic, p)) for p in metadata.partitions)

    def _end_offset(self, partition: TopicPartition) -> int:
        """The end offset of ``partition``, asked again while the broker says this client
        does not know the partition's leader yet (a topic just created)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return self._probe.get_watermark_offsets(partition, timeout=10)[1]
            except KafkaException as error:
                if (error.args[0].code() not in _LEADER_UNKNOWN
                        or time.monotonic() > deadline):
                    raise
                time.sleep(0.2)

    def read_topic(self, topic: str, count: int, timeout_s: float = 30) -> list:
        """The first ``count`` records of ``topic``."""
        consumer = Consumer(consumer_config(self.kafka, unique("reader")))
        consumer.subscribe([topic])
        found = []
        deadline = time.monotonic() + timeout_s
        try:
            while len(found) < count and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    found.append(message)
        finally:
            consumer.close()
        return found

    def close(self) -> None:
        """Stops consumers and servers, drops the topics and the boards."""
        for process in [*self.consumers, *filter(None, [self.social_process])]:
            stop_process(process)
        for server in self._servers:
            server.stop(None)
        for close in self._closers:
            close()
        self._social.close()
        delete_topics(self.kafka.bootstrap, [self.topic, self.dlq_topic])
        self.drop_keys()
        self.redis.close()

    def drop_keys(self) -> None:
        """Deletes every key of this path's namespace, as a Redis that lost its data would."""
        pattern = f"{self.store.settings.namespace}:*"
        nodes: Iterable = (
            self.redis.get_primaries() if hasattr(self.redis, "get_primaries") else [None]
        )
        for node in nodes:
            kwargs = {"target_nodes": node} if node is not None else {}
            keys = list(self.redis.scan_iter(match=pattern, count=1000, **kwargs))
            for key in keys:
                self.redis.delete(key)
