"""Configuration of the social server."""

from collections.abc import Mapping
from dataclasses import dataclass

from common.mysql_pools import MySQLSettings
from common.server import ServerSettings


@dataclass(frozen=True)
class SocialConfig:
    """Everything ``python -m social_svc`` reads from the environment."""

    server: ServerSettings
    mysql: MySQLSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SocialConfig":
        """Reads the server (default port 50052) and MySQL shard settings."""
        return cls(
            server=ServerSettings.from_env(env, default_port=50052, default_metrics_port=9102),
            mysql=MySQLSettings.from_env(env),
        )
