"""Prometheus metrics shared by every process, and the per-process HTTP endpoint.

The gRPC metrics carry the grpc-ecosystem names and labels (``grpc_type``,
``grpc_service``, ``grpc_method``, ``grpc_code``), so off-the-shelf gRPC dashboards read
them; servers add the bounded ``caller`` label (:mod:`common.authz`). :class:`ClientMetrics`
records the calls one stepboard process makes to another.
"""

import logging
import time
from typing import Any

import grpc
from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_METHOD = ["grpc_type", "grpc_service", "grpc_method"]

SERVER_STARTED = Counter(
    "grpc_server_started_total", "gRPC calls started on the server.", _METHOD,
)
SERVER_HANDLED = Counter(
    "grpc_server_handled_total",
    "gRPC calls completed on the server, by status code and caller (common.authz's bounded "
    "label).",
    [*_METHOD, "grpc_code", "caller"],
)
SERVER_HANDLING = Histogram(
    "grpc_server_handling_seconds", "gRPC handling time on the server, by caller.",
    [*_METHOD, "caller"], buckets=_BUCKETS,
)
CLIENT_HANDLED = Counter(
    "grpc_client_handled_total",
    "gRPC calls this process made to another service, completed, by status code.",
    [*_METHOD, "grpc_code"],
)
CLIENT_HANDLING = Histogram(
    "grpc_client_handling_seconds",
    "Time of the gRPC calls this process made, until their response (unary) or their last "
    "message (streaming).",
    _METHOD, buckets=_BUCKETS,
)


def grpc_type(request_streaming: bool, response_streaming: bool) -> str:
    """The ``grpc_type`` label of a method: unary, client_stream, server_stream or
    bidi_stream."""
    if request_streaming:
        return "bidi_stream" if response_streaming else "client_stream"
    return "server_stream" if response_streaming else "unary"


def method_labels(kind: str, method: str) -> tuple[str, str, str]:
    """``(grpc_type, grpc_service, grpc_method)`` of a full method name
    ``/package.Service/Method``."""
    service, _, name = method.removeprefix("/").rpartition("/")
    return kind, service, name


class ClientMetrics(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Counts and times every unary and server-streaming call made on a channel, when it
    completes; metric children are resolved once per method and code."""

    def __init__(self) -> None:
        self._handled: dict[tuple[str, str, grpc.StatusCode], Any] = {}
        self._handling: dict[tuple[str, str], Any] = {}

    def _record(
        self, started: float, kind: str, method: str | bytes, call: grpc.Future
    ) -> grpc.Future:
        """Has ``call`` counted and timed (from ``started``) once it completes."""
        if isinstance(method, bytes):
            method = method.decode()

        def done(finished: Any) -> None:
            elapsed = time.perf_counter() - started
            code = finished.code() or grpc.StatusCode.OK
            handled = self._handled.get((kind, method, code))
            if handled is None:
                handled = self._handled[kind, method, code] = CLIENT_HANDLED.labels(
                    *method_labels(kind, method), code.name)
            handled.inc()
            handling = self._handling.get((kind, method))
            if handling is None:
                handling = self._handling[kind, method] = CLIENT_HANDLING.labels(
                    *method_labels(kind, method))
            handling.observe(elapsed)

        call.add_done_callback(done)
        return call

    def intercept_unary_unary(self, continuation, client_call_details, request):
        """Records a unary call when its response (or error) is in."""
        started = time.perf_counter()
        call = continuation(client_call_details, request)
        return self._record(started, "unary", client_call_details.method, call)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        """Records a server-streaming call when its stream ends."""
        started = time.perf_counter()
        call = continuation(client_call_details, request)
        return self._record(started, "server_stream", client_call_details.method, call)


def serve_metrics(port: int | None) -> None:
    """Starts the Prometheus HTTP endpoint on ``port``; ``None`` disables it."""
    if port is None:
        return
    start_http_server(port)
    log.info("metrics endpoint listening", extra={"port": port})
