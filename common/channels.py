"""Client channels from one service to another, with optional TLS/mTLS and bearer token.

The same settings serve every client in a process (rank_svc and the precompute job talking
to social_svc): ``STEPBOARD_CLIENT_TLS_CA_FILE`` turns TLS on, a client certificate and key
add mTLS, and ``STEPBOARD_CLIENT_TOKEN`` (or ``_TOKEN_FILE``) is sent as
``authorization: Bearer <token>`` on every call.

The channels are the client package's (``stepboard_client.create_channel``, the one an
app backend uses), so they spread and retry calls as its
:data:`stepboard_client.config.SERVICE_CONFIG` says: each connects to every address the
target resolves to (``dns:///<headless service>:<port>`` gives one per server pod) and
sends calls to them in turn (``round_robin``), leaving out a server that reports itself
not serving (draining), and a call that fails ``UNAVAILABLE`` (a server gone or
overloaded) is tried again, on the next server, a bounded number of times, always within
the call's own deadline.
docs/deploy.md and docs/clients.md publish that service config for app backends.

Every call is counted and timed (``grpc_client_handled_total``,
``grpc_client_handling_seconds``: :class:`common.metrics.ClientMetrics`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from common.config import ConfigError
from common.metrics import ClientMetrics
from common.settings import default, read
from common.tracing import traced_channel
from stepboard_client.channel import create_channel as client_channel


@dataclass(frozen=True)
class ChannelSettings:
    """How this process connects to the other stepboard services."""

    ca_file: str = default("CLIENT_TLS_CA_FILE")
    cert_file: str = default("CLIENT_TLS_CERT_FILE")
    key_file: str = default("CLIENT_TLS_KEY_FILE")
    server_name: str = default("CLIENT_TLS_SERVER_NAME")
    token: str = default("CLIENT_TOKEN")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ChannelSettings":
        """Reads ``STEPBOARD_CLIENT_TLS_*`` and ``STEPBOARD_CLIENT_TOKEN[_FILE]``."""
        token = read(env, "CLIENT_TOKEN")
        token_file = read(env, "CLIENT_TOKEN_FILE")
        if token_file:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as error:
                raise ConfigError(
                    f"STEPBOARD_CLIENT_TOKEN_FILE: cannot read {token_file}: {error}"
                ) from None
        settings = cls(
            ca_file=read(env, "CLIENT_TLS_CA_FILE"),
            cert_file=read(env, "CLIENT_TLS_CERT_FILE"),
            key_file=read(env, "CLIENT_TLS_KEY_FILE"),
            server_name=read(env, "CLIENT_TLS_SERVER_NAME"),
            token=token,
        )
        if bool(settings.cert_file) != bool(settings.key_file):
            raise ConfigError(
                "STEPBOARD_CLIENT_TLS_CERT_FILE and STEPBOARD_CLIENT_TLS_KEY_FILE go together"
            )
        if settings.cert_file and not settings.ca_file:
            raise ConfigError("STEPBOARD_CLIENT_TLS_CERT_FILE needs STEPBOARD_CLIENT_TLS_CA_FILE")
        return settings


def create_channel(address: str, settings: ChannelSettings) -> grpc.Channel:
    """A channel to ``address`` (``host:port`` or any gRPC target, e.g. ``dns:///host:port``)
    secured and authenticated as ``settings`` say, spreading and retrying calls as
    :data:`stepboard_client.config.SERVICE_CONFIG` says, its calls counted and timed."""
    return traced_channel(grpc.intercept_channel(client_channel(
        address,
        ca_file=settings.ca_file,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
        token=settings.token,
        server_name=settings.server_name,
    ), ClientMetrics()))
