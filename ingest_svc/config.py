"""Configuration of the ingest server."""

from collections.abc import Mapping
from dataclasses import dataclass

from common.channels import ChannelSettings
from common.kafka_clients import KafkaSettings
from common.report_rules import ValidationSettings
from common.server import ServerSettings
from common.settings import read


@dataclass(frozen=True)
class IngestConfig:
    """Everything ``python -m ingest_svc`` reads from the environment."""

    server: ServerSettings
    kafka: KafkaSettings
    validation: ValidationSettings
    social_addr: str
    client: ChannelSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "IngestConfig":
        """Reads the server, Kafka and validation settings, and how to reach social_svc
        (``Like`` checks friendships there)."""
        return cls(
            server=ServerSettings.from_env(env, "ingest"),
            kafka=KafkaSettings.from_env(env),
            validation=ValidationSettings.from_env(env),
            social_addr=read(env, "SOCIAL_ADDR"),
            client=ChannelSettings.from_env(env),
        )
