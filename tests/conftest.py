"""Shared fixtures: clients of the real local stack (Kafka, Redis, MariaDB)."""

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from common.kafka_clients import KafkaSettings
from common.mysql_pools import MySQLSettings, ShardPools
from common.redis_clients import RedisSettings, create_redis
from tests.stack import CLUSTER_ENV_FILE, local_env, read_env_file
from tests.write_path import WritePath


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    """The local stack's environment (``stack/local.env``)."""
    return local_env()


@pytest.fixture(scope="session")
def kafka_settings(env: dict[str, str]) -> KafkaSettings:
    """Settings pointing at the local broker."""
    return KafkaSettings.from_env(env)


@pytest.fixture
def fresh_topic(kafka_settings: KafkaSettings) -> Iterator[str]:
    """A new single-partition topic on the real broker, deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": kafka_settings.bootstrap})
    name = f"test-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)


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


# Redis deployments the write path is tested against: settings overriding stack/local.env.
REDIS_DEPLOYMENTS = {"standalone": {}, "cluster": read_env_file(CLUSTER_ENV_FILE)}


@pytest.fixture(params=sorted(REDIS_DEPLOYMENTS))
def write_path(request) -> Iterator[WritePath]:
    """An isolated write path (topics, group, board namespace) on each Redis deployment."""
    path = WritePath(REDIS_DEPLOYMENTS[request.param])
    yield path
    path.close()
