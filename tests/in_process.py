"""rank and ingest servers built in the test's own process, as their ``__main__`` builds
them from an environment, on the real stack: for tests that need the servers' code as it
is in this tree (tracing, interceptors, a client token) rather than the stack's processes."""

import contextlib
from collections.abc import Iterator

from common.channels import create_channel
from common.redis_clients import create_redis
from common.server import BuiltServer
from ingest_svc.config import IngestConfig
from ingest_svc.producer import ReportProducer
from ingest_svc.server import build_server as build_ingest
from rank_svc.config import RankConfig
from rank_svc.server import build_server as build_rank


@contextlib.contextmanager
def rank_server(env: dict[str, str]) -> Iterator[BuiltServer]:
    """A started rank server configured by ``env``, with its own Redis client and channel
    to social_svc; stopped and both closed afterwards."""
    config = RankConfig.from_env(env)
    with contextlib.closing(create_redis(config.redis)) as redis, \
            create_channel(config.social_addr, config.client) as social:
        built = build_rank(config, redis, social)
        built.server.start()
        try:
            yield built
        finally:
            built.server.stop(None)


@contextlib.contextmanager
def ingest_server(env: dict[str, str]) -> Iterator[BuiltServer]:
    """A started ingest server configured by ``env``, with its own Kafka producer and
    channel to social_svc; stopped and both closed afterwards."""
    config = IngestConfig.from_env(env)
    with contextlib.closing(ReportProducer(config.kafka)) as producer, \
            create_channel(config.social_addr, config.client) as social:
        built = build_ingest(config, producer, social)
        built.server.start()
        try:
            yield built
        finally:
            built.server.stop(None)
