"""What ingest answers for a record the Kafka client would not queue (pure logic)."""

from confluent_kafka import KafkaError

from common.errors import ResourceExhausted, Unavailable
from ingest_svc.producer import refused_error


def test_a_full_queue_asks_to_retry_later_and_anything_else_is_unavailable():
    assert isinstance(refused_error(KafkaError(KafkaError._QUEUE_FULL)), ResourceExhausted)
    refused = refused_error(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert isinstance(refused, Unavailable)
    assert "record not queued" in str(refused)
