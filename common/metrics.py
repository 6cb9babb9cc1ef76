"""Prometheus metrics shared by every process, and the per-process HTTP endpoint."""

import logging

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

GRPC_REQUESTS = Counter(
    "stepboard_grpc_requests_total",
    "gRPC requests handled, by method, status code and caller (common.authz's bounded label).",
    ["method", "code", "caller"],
)
GRPC_LATENCY = Histogram(
    "stepboard_grpc_request_seconds", "gRPC handling time, by method and caller.",
    ["method", "caller"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def serve_metrics(port: int | None) -> None:
    """Starts the Prometheus HTTP endpoint on ``port``; ``None`` disables it."""
    if port is None:
        return
    start_http_server(port)
    log.info("metrics endpoint listening", extra={"port": port})
