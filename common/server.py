"""gRPC server bootstrap shared by every service.

Every server gets the same interceptors (caller check with metrics and access log, error
mapping; common.authz says who a caller is and what it may call), the
standard health service, server reflection, optional TLS/mTLS, bounded message sizes, and a
graceful shutdown: health NOT_SERVING (clients that watch it turn to other replicas),
in-flight RPCs finish, then the process's clients are closed. Connections can be recycled
after a maximum age, so that clients re-resolve the server's name and spread over new
replicas.
"""

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.authz import Authenticator, Policy, check_caller_name, read_policy
from common.config import ConfigError
from common.interceptors import AccessInterceptor, ErrorMappingInterceptor
from common.lifecycle import stop_on_signals, wait_for
from common.metrics import serve_metrics
from common.settings import default, read
from common.tracing import TraceSettings, server_interceptors

log = logging.getLogger(__name__)
# How long a draining server watched by clients answers NOT_SERVING before it stops taking
# calls (at most half the grace): long enough for the watching clients to hear it.
ANNOUNCE_S = 1.0


@dataclass(frozen=True)
class TlsSettings:
    """Certificate files for TLS; a client CA turns on mTLS (client certificates required)."""

    cert_file: str = default("TLS_CERT_FILE")
    key_file: str = default("TLS_KEY_FILE")
    client_ca_file: str = default("TLS_CLIENT_CA_FILE")

    @property
    def enabled(self) -> bool:
        """Whether the server listens with TLS."""
        return bool(self.cert_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TlsSettings":
        """Reads ``STEPBOARD_TLS_CERT_FILE``, ``_KEY_FILE`` and ``_CLIENT_CA_FILE``."""
        settings = cls(
            cert_file=read(env, "TLS_CERT_FILE"),
            key_file=read(env, "TLS_KEY_FILE"),
            client_ca_file=read(env, "TLS_CLIENT_CA_FILE"),
        )
        if bool(settings.cert_file) != bool(settings.key_file):
            raise ConfigError("STEPBOARD_TLS_CERT_FILE and STEPBOARD_TLS_KEY_FILE go together")
        return settings


def read_tokens(env: Mapping[str, str]) -> dict[str, str]:
    """Token → caller, from ``STEPBOARD_AUTH_TOKENS`` and ``STEPBOARD_AUTH_TOKENS_FILE``.

    Both hold ``caller:token`` items (comma-separated, or one per line in the file).
    """
    items = list(read(env, "AUTH_TOKENS"))
    path = read(env, "AUTH_TOKENS_FILE")
    if path:
        try:
            items += [line.strip() for line in Path(path).read_text().splitlines()]
        except OSError as error:
            raise ConfigError(f"STEPBOARD_AUTH_TOKENS_FILE: cannot read {path}: {error}") from None
    tokens = {}
    for item in filter(None, items):
        caller, sep, token = item.partition(":")
        if not sep or not caller or not token:
            raise ConfigError("STEPBOARD_AUTH_TOKENS: expected caller:token items")
        check_caller_name(caller, "STEPBOARD_AUTH_TOKENS")
        tokens[token] = caller
    return tokens


@dataclass(frozen=True)
class ServerSettings:
    """Listening, limits, shutdown and security settings of one gRPC server process."""

    grpc_port: int
    metrics_port: int | None
    grpc_host: str = default("GRPC_HOST")
    max_connection_age_s: float = default("MAX_CONNECTION_AGE_S")
    max_connection_age_grace_s: float = default("MAX_CONNECTION_AGE_GRACE_S")
    max_workers: int = default("MAX_WORKERS")
    grace_seconds: float = default("GRACE_SECONDS")
    max_message_bytes: int = default("MAX_MESSAGE_BYTES")
    auth_tokens: Mapping[str, str] | None = None
    auth_policy: Policy | None = None
    access_log: str = default("ACCESS_LOG")
    tls: TlsSettings = TlsSettings()
    tracing: TraceSettings = field(default_factory=TraceSettings)

    def __post_init__(self) -> None:
        """Refuses authentication without a policy (every token would call every method)
        and a policy with no way to name a caller (every call would be refused)."""
        if self.auth_tokens and self.auth_policy is None:
            raise ConfigError(
                "STEPBOARD_AUTH_TOKENS(_FILE) is set but STEPBOARD_AUTH_POLICY(_FILE) is not: "
                "give each caller the methods it may call"
            )
        if self.auth_policy is not None and not self.auth_tokens \
                and not self.tls.client_ca_file:
            raise ConfigError(
                "STEPBOARD_AUTH_POLICY(_FILE) is set but no caller can be identified: set "
                "STEPBOARD_AUTH_TOKENS(_FILE) or STEPBOARD_TLS_CLIENT_CA_FILE (mTLS)"
            )

    @property
    def authenticator(self) -> Authenticator | None:
        """Who the callers are, or ``None`` when there is no policy (everyone anonymous)."""
        if self.auth_policy is None:
            return None
        return Authenticator(self.auth_tokens or {}, bool(self.tls.client_ca_file))

    @property
    def caller_labels(self) -> frozenset[str]:
        """The caller names the request metrics label as themselves: the tokens' and the
        policy's (any other certificate identity is ``other``)."""
        named = set((self.auth_tokens or {}).values())
        if self.auth_policy is not None:
            named |= set(self.auth_policy.grants)
        return frozenset(named)

    @classmethod
    def from_env(cls, env: Mapping[str, str], component: str) -> "ServerSettings":
        """Reads ``STEPBOARD_GRPC_PORT``, ``_METRICS_PORT`` (0 disables; both default by
        ``component``: ingest, social or rank) and the rest, tracing included."""
        return cls(
            grpc_port=read(env, "GRPC_PORT", component=component),
            metrics_port=read(env, "METRICS_PORT", component=component) or None,
            grpc_host=read(env, "GRPC_HOST"),
            max_connection_age_s=read(env, "MAX_CONNECTION_AGE_S"),
            max_connection_age_grace_s=read(env, "MAX_CONNECTION_AGE_GRACE_S"),
            max_workers=read(env, "MAX_WORKERS"),
            grace_seconds=read(env, "GRACE_SECONDS"),
            max_message_bytes=read(env, "MAX_MESSAGE_BYTES"),
            auth_tokens=read_tokens(env) or None,
            auth_policy=read_policy(read(env, "AUTH_POLICY"), read(env, "AUTH_POLICY_FILE")),
            access_log=read(env, "ACCESS_LOG"),
            tls=TlsSettings.from_env(env),
            tracing=TraceSettings.from_env(env, component),
        )


class Registration(NamedTuple):
    """One servicer to serve: its full service name and the generated ``add_*`` call."""

    service_name: str
    add: Callable[[grpc.Server], None]


def register(
    pb2: ModuleType, pb2_grpc: ModuleType, service: str, servicer: object
) -> Registration:
    """A registration of ``servicer`` for ``service`` from its generated modules."""
    name = pb2.DESCRIPTOR.services_by_name[service].full_name
    add = getattr(pb2_grpc, f"add_{service}Servicer_to_server")
    return Registration(name, lambda server: add(servicer, server))


class WatchedHealth(health.HealthServicer):
    """The standard health servicer, counting the clients watching it: clients of
    common.channels (client-side health checking) hear a drain begin and stop sending."""

    def __init__(self) -> None:
        super().__init__(
            experimental_non_blocking=True,
            experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=2),
        )
        self._watch_lock = threading.Lock()
        self._watchers = 0

    @property
    def watched(self) -> bool:
        """Whether any client watches the server's health now."""
        with self._watch_lock:
            return self._watchers > 0

    def Watch(self, request, context, send_response_callback=None):
        """The standard Watch, counted while it lasts."""
        with self._watch_lock:
            self._watchers += 1
        if not context.add_callback(self._unwatched):  # the call has already ended
            self._unwatched()
        return super().Watch(request, context, send_response_callback)

    def _unwatched(self) -> None:
        with self._watch_lock:
            self._watchers -= 1


class BuiltServer(NamedTuple):
    """A configured, not yet started server, its bound port and its health servicer."""

    server: grpc.Server
    port: int
    health: WatchedHealth


def _server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    chain = (Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())
    if tls.client_ca_file:
        return grpc.ssl_server_credentials(
            [chain],
            root_certificates=Path(tls.client_ca_file).read_bytes(),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials([chain])


def _connection_age_options(settings: ServerSettings) -> list[tuple[str, int]]:
    """Channel options that close each client connection after its maximum age, with a
    grace for the calls in flight on it; none when the age is 0 (connections live on).

    A client whose connection closes reconnects and re-resolves the server's name: with
    several replicas behind it (a headless Service) its calls spread over new ones too.
    """
    if not settings.max_connection_age_s:
        return []
    return [
        ("grpc.max_connection_age_ms", max(1, round(settings.max_connection_age_s * 1000))),
        ("grpc.max_connection_age_grace_ms",
         round(settings.max_connection_age_grace_s * 1000)),
    ]


def build_grpc_server(
    settings: ServerSettings, registrations: Sequence[Registration]
) -> BuiltServer:
    """Creates a server with interceptors, the servicers, health and reflection, bound."""
    interceptors = [
        *server_interceptors(),
        AccessInterceptor(
            settings.authenticator, settings.auth_policy, settings.caller_labels,
            settings.access_log,
        ),
        ErrorMappingInterceptor(),
    ]
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        *_connection_age_options(settings),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers),
        interceptors=interceptors,
        options=options,
        maximum_concurrent_rpcs=settings.max_workers * 8,
    )
    health_servicer = WatchedHealth()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for registration in registrations:
        registration.add(server)
    names = [r.service_name for r in registrations]
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    for name in ("", *names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if settings.tls.enabled:
        port = server.add_secure_port(address, _server_credentials(settings.tls))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC port {settings.grpc_port}")
    return BuiltServer(server, port, health_servicer)


def run_until_signal(
    built: BuiltServer,
    settings: ServerSettings,
    closers: Sequence[Callable[[], None]] = (),
) -> None:
    """Serves until SIGTERM/SIGINT, then drains gracefully and runs ``closers`` in order."""
    stop = stop_on_signals()
    serve_metrics(settings.metrics_port)
    # Everything alive now (modules, clients, servicers) lives as long as the process: keep
    # it out of the collector's full scans, which took ~10-20 ms each and showed up as p99
    # spikes of otherwise 2-3 ms calls.
    gc.freeze()
    built.server.start()
    log.info("serving", extra={"port": built.port, "tls": settings.tls.enabled})
    wait_for(stop)
    drain(built, settings, closers)


def drain(
    built: BuiltServer, settings: ServerSettings, closers: Sequence[Callable[[], None]] = ()
) -> None:
    """Health NOT_SERVING, a pause for clients to turn to other replicas, let in-flight RPCs
    finish (all within the grace), then close clients."""
    log.info("shutting down: health NOT_SERVING, draining in-flight RPCs")
    # Clients that watch health (stepboard_client.config.SERVICE_CONFIG) stop sending new
    # calls once they see NOT_SERVING; a call still arriving as the server stops would be
    # cancelled.
    watched = built.health.watched
    built.health.enter_graceful_shutdown()
    announce_s = min(ANNOUNCE_S, settings.grace_seconds / 2) if watched else 0.0
    time.sleep(announce_s)
    built.server.stop(settings.grace_seconds - announce_s).wait()
    for close in closers:
        try:
            close()
        except Exception:  # one failing closer must not skip the others
            log.exception("error while closing a client")
    log.info("stopped")
