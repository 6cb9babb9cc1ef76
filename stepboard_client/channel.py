"""Channels to stepboard: plaintext or TLS (optionally mTLS), with an optional bearer token,
spreading and retrying calls as :data:`stepboard_client.config.SERVICE_CONFIG` says."""

from pathlib import Path

import grpc

from stepboard_client.config import CHANNEL_OPTIONS


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the bearer token to every call on a plaintext channel (gRPC sends call
    credentials only over TLS)."""

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


def create_channel(
    target: str,
    *,
    ca_file: str | Path = "",
    cert_file: str | Path = "",
    key_file: str | Path = "",
    token: str = "",
    server_name: str = "",
) -> grpc.Channel:
    """A channel to ``target`` (``host:port``, or ``dns:///<name>:<port>`` to spread calls
    over every address the name resolves to).

    ``ca_file`` (PEM) turns TLS on, checking the server's certificate against that CA;
    ``cert_file`` and ``key_file`` (together) add a client certificate (mTLS);
    ``server_name`` is the name checked in the server's certificate when it is not the
    target's host. ``token`` is sent as ``authorization: Bearer <token>`` on every call.
    """
    if bool(cert_file) != bool(key_file):
        raise ValueError("cert_file and key_file go together")
    if cert_file and not ca_file:
        raise ValueError("cert_file needs ca_file (a client certificate is sent only over TLS)")
    if not ca_file:
        channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        return grpc.intercept_channel(channel, _BearerToken(token)) if token else channel
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(ca_file).read_bytes(),
        private_key=Path(key_file).read_bytes() if key_file else None,
        certificate_chain=Path(cert_file).read_bytes() if cert_file else None,
    )
    if token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    options = [*CHANNEL_OPTIONS]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(target, credentials, options=options)
