"""Fixtures of the integration tier: clients of the real local stack (Kafka, Redis,
MariaDB) and isolated write paths on it."""

from collections.abc import Iterator

import pytest

from common.kafka_clients import KafkaSettings
from common.mysql_pools import MySQLSettings, ShardPools
from common.redis_clients import RedisSettings, create_redis
from tests.harness import create_topics, delete_topics, unique
from tests.social_support import STACK_MARIADB, ShardDatabases
from tests.stack import REDIS_DEPLOYMENTS
from tests.write_path import WritePath


@pytest.fixture(scope="session")
def kafka_settings(env: dict[str, str]) -> KafkaSettings:
    """Settings pointing at the local broker."""
    return KafkaSettings.from_env(env)


@pytest.fixture
def fresh_topic(kafka_settings: KafkaSettings) -> Iterator[str]:
    """A new single-partition topic on the real broker, deleted afterwards."""
    name = unique("test")
    create_topics(kafka_settings.bootstrap, {name: 1})
    yield name
    delete_topics(kafka_settings.bootstrap, [name])


@pytest.fixture(scope="session")
def redis_client(env: dict[str, str]):
    """A client of the local standalone Redis."""
    client = create_redis(RedisSettings.from_env(env))
    yield client
    client.close()


@pytest.fixture(scope="session")
def shard_pools(env: dict[str, str]) -> Iterator[ShardPools]:
    """Pools for every physical MariaDB shard of the local stack."""
    pools = ShardPools(MySQLSettings.from_env(env))
    yield pools
    pools.close()


@pytest.fixture(params=sorted(REDIS_DEPLOYMENTS))
def write_path(request) -> Iterator[WritePath]:
    """An isolated write path (topics, group, board namespace) on each Redis deployment."""
    path = WritePath(REDIS_DEPLOYMENTS[request.param])
    yield path
    path.close()


@pytest.fixture(scope="module")
def databases() -> Iterator[ShardDatabases]:
    """Two fresh friend-graph shard databases on the stack's MariaDB, migrated with this
    tree's schema, for one test module; dropped afterwards."""
    shards = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    yield shards
    shards.drop()
