"""Kafka settings and the producer/consumer configurations every process uses."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.settings import default, read


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is, which topics to use and how to authenticate."""

    bootstrap: str
    topic: str = default("KAFKA_TOPIC")
    dlq_topic: str = default("KAFKA_DLQ_TOPIC")
    security_protocol: str = default("KAFKA_SECURITY_PROTOCOL")
    sasl_mechanism: str = default("KAFKA_SASL_MECHANISM")
    sasl_username: str = default("KAFKA_SASL_USERNAME")
    sasl_password: str = default("KAFKA_SASL_PASSWORD")
    ssl_ca_file: str = default("KAFKA_SSL_CA_FILE")
    delivery_timeout_s: float = default("KAFKA_DELIVERY_TIMEOUT_S")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "KafkaSettings":
        """Reads ``STEPBOARD_KAFKA_*``; the bootstrap address is required."""
        return cls(
            bootstrap=read(env, "KAFKA_BOOTSTRAP"),
            topic=read(env, "KAFKA_TOPIC"),
            dlq_topic=read(env, "KAFKA_DLQ_TOPIC"),
            security_protocol=read(env, "KAFKA_SECURITY_PROTOCOL"),
            sasl_mechanism=read(env, "KAFKA_SASL_MECHANISM"),
            sasl_username=read(env, "KAFKA_SASL_USERNAME"),
            sasl_password=read(env, "KAFKA_SASL_PASSWORD"),
            ssl_ca_file=read(env, "KAFKA_SSL_CA_FILE"),
            delivery_timeout_s=read(env, "KAFKA_DELIVERY_TIMEOUT_S"),
        )


def _common_config(settings: KafkaSettings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "security.protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        config |= {
            "sasl.mechanism": settings.sasl_mechanism,
            "sasl.username": settings.sasl_username,
            "sasl.password": settings.sasl_password,
        }
    if settings.ssl_ca_file:
        config["ssl.ca.location"] = settings.ssl_ca_file
    return config


def producer_config(settings: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """An idempotent, ``acks=all`` producer that gives up on a record after the timeout."""
    return _common_config(settings) | {
        "enable.idempotence": True,
        "acks": "all",
        # Unkeyed records stick to one partition per batch: at 5 ms a produce request
        # carries ~10 single-report records at 2k calls/s; ReportSteps +15 % over 2 ms.
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": int(settings.delivery_timeout_s * 1000),
        "queue.buffering.max.messages": 200_000,
    } | overrides


def consumer_config(settings: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A group consumer that commits only offsets the application stored after processing."""
    return _common_config(settings) | {
        "group.id": group_id,
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        # Bounds the prefetch, and so what one consume hands over, to ~16 MB (~300k
        # reports); records hold up to a whole batch of reports each.
        "queued.max.messages.kbytes": 16_384,
    } | overrides
