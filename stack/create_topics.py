"""Create the stack's Kafka topics if missing (names from stack/local.env, read as the
services read them, so a name left unset there gets the services' default).

Waits until the broker answers metadata, so it doubles as the Kafka readiness check.
"""

import os
import sys
import time
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script
from common.config import read_env_file
from common.kafka_clients import KafkaSettings


def main() -> int:
    env = read_env_file(Path(__file__).with_name("local.env"))
    env.update({k: v for k, v in os.environ.items() if k.startswith("STEPBOARD_")})
    kafka = KafkaSettings.from_env(env)
    topics = {kafka.topic: 6, kafka.dlq_topic: 1}
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})

    deadline = time.monotonic() + 60
    while True:
        try:
            existing = admin.list_topics(timeout=5).topics
            break
        except KafkaException as e:
            if time.monotonic() > deadline:
                print(f"kafka metadata not available: {e}", file=sys.stderr)
                return 1
            time.sleep(1)

    new = [
        NewTopic(t, num_partitions=n, replication_factor=1)
        for t, n in topics.items()
        if t not in existing
    ]
    for topic, future in admin.create_topics(new, operation_timeout=30).items() if new else []:
        try:
            future.result()
            print(f"created topic {topic}")
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    for t, n in topics.items():
        if t in existing and len(existing[t].partitions) != n:
            print(
                f"WARNING: topic {t} has {len(existing[t].partitions)} partitions, expected {n}",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
