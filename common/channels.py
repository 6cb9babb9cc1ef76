"""Client channels from one service to another, with optional TLS/mTLS and bearer token.

The same settings serve every client in a process (rank_svc and the precompute job talking
to social_svc): ``STEPBOARD_CLIENT_TLS_CA_FILE`` turns TLS on, a client certificate and key
add mTLS, and ``STEPBOARD_CLIENT_TOKEN`` (or ``_TOKEN_FILE``) is sent as
``authorization: Bearer <token>`` on every call.

Every channel spreads its calls and retries them as :data:`SERVICE_CONFIG` says: it
connects to every address the target resolves to (``dns:///<headless service>:<port>``
gives one per server pod) and sends calls to them in turn (``round_robin``), leaving out a
server that reports itself not serving (draining), and a call that fails ``UNAVAILABLE``
(a server gone or overloaded) is tried again, on the next server, a bounded number of
times, always within the call's own deadline.
docs/deploy.md publishes the same service config for app backends.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from common.config import ConfigError
from common.settings import default, read
from common.tracing import traced_channel


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


# round_robin over every address, skipping servers whose health (grpc.health.v1, the whole
# server: "") is not SERVING, such as one draining after SIGTERM. Every stepboard call is
# safe to retry (docs/design.md, "Retries"): reads, max-merged reports, and idempotent
# upserts and deletes. gRPC retries a call only within its deadline, at most
# ``maxAttempts`` times in all, and only while the channel's retry tokens last
# (``retryThrottling``: a failure takes 1 of 100, a success gives 0.1 back, retries stop
# below 50), so an outage of every server is not multiplied by the retries.
SERVICE_CONFIG: dict = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ""},
    "methodConfig": [
        {
            "name": [
                {"service": "stepboard.v1.StepIngest"},
                {"service": "stepboard.v1.FriendGraph"},
                {"service": "stepboard.v1.Ranking"},
            ],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
    "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1},
}
_CHANNEL_OPTIONS = [
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    # The config above, never one published in DNS TXT records.
    ("grpc.service_config_disable_resolution", 1),
]


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the bearer token to every call on a plaintext channel."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return details._replace(metadata=[*(details.metadata or ()), self._header])

    def intercept_unary_unary(self, continuation, client_call_details, request):
        """Unary calls carry the token."""
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        """Server-streaming calls carry the token."""
        return continuation(self._with_token(client_call_details), request)


def create_channel(address: str, settings: ChannelSettings) -> grpc.Channel:
    """A channel to ``address`` (``host:port`` or any gRPC target, e.g. ``dns:///host:port``)
    secured and authenticated as ``settings`` say, spreading and retrying calls as
    :data:`SERVICE_CONFIG` says."""
    if not settings.ca_file:
        channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        return traced_channel(
            grpc.intercept_channel(channel, _BearerToken(settings.token)) if settings.token
            else channel
        )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(settings.ca_file).read_bytes(),
        private_key=Path(settings.key_file).read_bytes() if settings.key_file else None,
        certificate_chain=Path(settings.cert_file).read_bytes() if settings.cert_file else None,
    )
    if settings.token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(settings.token)
        )
    options = [*_CHANNEL_OPTIONS]
    if settings.server_name:
        options.append(("grpc.ssl_target_name_override", settings.server_name))
    return traced_channel(grpc.secure_channel(address, credentials, options=options))
