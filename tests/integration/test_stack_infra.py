"""The real local stack works: Kafka round trip, Redis ZADD GT, every MySQL shard."""

import time
import uuid

from confluent_kafka import Consumer, Producer

from common.kafka_clients import consumer_config, producer_config
from social_svc.schema import MIGRATIONS, migrate


def test_record_produced_and_consumed_through_the_broker(kafka_settings, fresh_topic):
    acked = []
    producer = Producer(producer_config(kafka_settings))
    payload = uuid.uuid4().bytes
    producer.produce(
        fresh_topic, key=b"42", value=payload, on_delivery=lambda err, _msg: acked.append(err)
    )
    assert producer.flush(30) == 0
    assert acked == [None]

    consumer = Consumer(consumer_config(kafka_settings, group_id=f"test-{uuid.uuid4().hex}"))
    consumer.subscribe([fresh_topic])
    try:
        deadline = time.monotonic() + 30
        received = None
        while received is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received = message
        assert received is not None, "no record consumed within 30 s"
        assert (received.key(), received.value()) == (b"42", payload)
    finally:
        consumer.close()


def test_zadd_gt_keeps_the_highest_score(redis_client):
    key = f"test:zadd-gt:{uuid.uuid4().hex}"
    try:
        redis_client.zadd(key, {"u1": 100})
        redis_client.zadd(key, {"u1": 50}, gt=True)
        assert redis_client.zscore(key, "u1") == 100
        redis_client.zadd(key, {"u1": 150}, gt=True)
        assert redis_client.zscore(key, "u1") == 150
    finally:
        redis_client.delete(key)


def test_every_shard_database_is_reachable_and_migrated(shard_pools):
    assert len(shard_pools.pools) == 2
    for pool in shard_pools.pools:
        conn = pool.connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT DATABASE()")
                (database,) = cur.fetchone()
                cur.execute("SELECT version FROM schema_migrations ORDER BY version")
                versions = [row[0] for row in cur.fetchall()]
        finally:
            conn.close()
        assert database.startswith("stepboard_p")
        assert versions == [version for version, _ in MIGRATIONS]


def test_migrate_is_idempotent(shard_pools):
    assert migrate(shard_pools) == {index: [] for index in range(len(shard_pools.pools))}


def test_logical_shards_spread_over_both_physical_shards(shard_pools):
    owners = {shard_pools.physical_index(user_id) for user_id in range(1, 200)}
    assert owners == {0, 1}
