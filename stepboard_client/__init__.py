"""The stepboard client: stubs of stepboard.v1 with default deadlines, retries, TLS and
token (``Client``), and the tables behind them (docs/clients.md)."""

from stepboard_client.channel import create_channel
from stepboard_client.client import Client
from stepboard_client.config import CHANNEL_OPTIONS, DEADLINES, SERVICE_CONFIG

__all__ = ["CHANNEL_OPTIONS", "DEADLINES", "SERVICE_CONFIG", "Client", "create_channel"]
