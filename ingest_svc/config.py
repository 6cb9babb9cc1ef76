"""Configuration of the ingest server."""

from collections.abc import Mapping
from dataclasses import dataclass

from common.kafka_clients import KafkaSettings
from common.report_rules import ValidationSettings
from common.server import ServerSettings


@dataclass(frozen=True)
class IngestConfig:
    """Everything ``python -m ingest_svc`` reads from the environment."""

    server: ServerSettings
    kafka: KafkaSettings
    validation: ValidationSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "IngestConfig":
        """Reads the server, Kafka and validation settings."""
        return cls(
            server=ServerSettings.from_env(env, "ingest"),
            kafka=KafkaSettings.from_env(env),
            validation=ValidationSettings.from_env(env),
        )
