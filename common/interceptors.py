"""Server interceptors: request metrics, bearer-token authentication, domain-error mapping.

Each interceptor decorates the handler's behaviour function, so the same decorators serve
unary and streaming methods alike (:func:`decorate_handler`). gRPC asks every interceptor
for a handler on every call; each keeps what it built per method (:class:`_Built`), so a
call pays only for the wrappers' work, not for building them.
"""

import hmac
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc

from common import call_deadline
from common.errors import InvalidArgument, status_for
from common.metrics import GRPC_LATENCY, GRPC_REQUESTS

log = logging.getLogger(__name__)

Behavior = Callable[[Any, grpc.ServicerContext], Any]
Decorator = Callable[[Behavior, bool], Behavior]

HEALTH_PREFIX = "/grpc.health.v1.Health/"


def decorate_handler(
    handler: grpc.RpcMethodHandler | None,
    decorate: Decorator,
    wrap_deserializer: Callable[[Callable], Callable] | None = None,
):
    """Returns ``handler`` with its behaviour wrapped by ``decorate(behavior, streaming)``
    (and its request deserializer by ``wrap_deserializer``, if given)."""
    if handler is None:
        return None
    deserializer = handler.request_deserializer
    if wrap_deserializer is not None and deserializer is not None:
        deserializer = wrap_deserializer(deserializer)
    kinds = (
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler, False),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler, True),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler, False),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler, True),
    )
    for behavior, make, streaming in kinds:
        if behavior is not None:
            return make(
                decorate(behavior, streaming),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


class _Built:
    """Decorated handlers by method and inner handler, built once per method.

    Unknown methods (no handler) are not kept: their names come from callers.
    """

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, int], grpc.RpcMethodHandler] = {}

    def get(self, method: str, inner, build: Callable[[], grpc.RpcMethodHandler]):
        """The handler built for ``(method, inner)``; ``build()`` the first time."""
        if inner is None:
            return None
        key = (method, id(inner))  # inner handlers are kept alive, so ids stay unique
        found = self._handlers.get(key)
        if found is None:
            found = self._handlers[key] = build()
        return found


def _guarded(behavior: Behavior, streaming: bool, on_error: Callable) -> Behavior:
    """Runs ``behavior`` (draining it when streaming) with the call's deadline recorded for
    its waits (:mod:`common.call_deadline`), and maps any failure with ``on_error``."""
    if streaming:
        def run_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            token = call_deadline.enter(context.time_remaining())
            try:
                yield from behavior(request, context)
            except Exception as error:  # every failure must map to a status
                on_error(error, context)
            finally:
                call_deadline.leave(token)
        return run_stream

    def run_unary(request: Any, context: grpc.ServicerContext) -> Any:
        token = call_deadline.enter(context.time_remaining())
        try:
            return behavior(request, context)
        except Exception as error:  # every failure must map to a status
            return on_error(error, context)
        finally:
            call_deadline.leave(token)
    return run_unary


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A deserializer that returns :class:`_Undecodable` instead of raising, so garbage is
    answered INVALID_ARGUMENT by the handler rather than INTERNAL by the gRPC runtime."""
    def run(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # DecodeError and whatever else garbage may raise
            return _Undecodable(error)
    return run


class ErrorMappingInterceptor(grpc.ServerInterceptor):
    """Turns exceptions raised by servicers into status codes via :func:`status_for`, and
    undecodable requests into ``INVALID_ARGUMENT``."""

    def __init__(self) -> None:
        self._built = _Built()

    def intercept_service(self, continuation, handler_call_details):
        """Wraps the method's handler so domain errors abort with their code."""
        method = handler_call_details.method
        inner = continuation(handler_call_details)
        return self._built.get(method, inner, lambda: _mapping_errors(method, inner))


def _mapping_errors(method: str, inner: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``inner`` with failures mapped to statuses and garbage requests rejected."""

    def on_error(error: Exception, context: grpc.ServicerContext) -> None:
        code = context.code()
        if code is not None and code != grpc.StatusCode.OK:
            raise error  # the servicer aborted by itself already
        status, message = status_for(error)
        if status == grpc.StatusCode.INTERNAL:
            log.exception("unhandled error", extra={"method": method})
        context.abort(status, message)

    def reject_garbage(behavior: Behavior, streaming: bool) -> Behavior:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                raise InvalidArgument("request", "is not a valid protobuf message")
            return behavior(request, context)
        return _guarded(run, streaming, on_error)

    return decorate_handler(inner, reject_garbage, _tolerant)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts requests by method and final status code and observes their latency."""

    def __init__(self) -> None:
        self._built = _Built()

    def intercept_service(self, continuation, handler_call_details):
        """Wraps the handler to record the outcome when the call completes."""
        method = handler_call_details.method
        inner = continuation(handler_call_details)
        return self._built.get(method, inner, lambda: decorate_handler(inner, _timed(method)))


def _timed(method: str) -> Decorator:
    """A decorator recording ``method``'s calls, with its metric children resolved once."""
    latency = GRPC_LATENCY.labels(method)
    counts: dict[grpc.StatusCode, Any] = {}

    def record(context: grpc.ServicerContext, started: float) -> None:
        code = context.code() or grpc.StatusCode.OK
        counter = counts.get(code)
        if counter is None:
            counter = counts[code] = GRPC_REQUESTS.labels(method, code.name)
        counter.inc()
        latency.observe(time.perf_counter() - started)

    def decorate(behavior: Behavior, streaming: bool) -> Behavior:
        if streaming:
            def timed_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                started = time.perf_counter()
                try:
                    yield from behavior(request, context)
                finally:
                    record(context, started)
            return timed_stream

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                return behavior(request, context)
            finally:
                record(context, started)
        return timed
    return decorate


class BearerAuthInterceptor(grpc.ServerInterceptor):
    """Rejects calls without a known ``authorization: Bearer <token>`` (health is exempt).

    ``tokens`` maps each token to the caller it identifies; comparison is constant-time.
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = tuple(tokens.items())
        self._denials = _Built()

    def _caller(self, metadata: tuple) -> str | None:
        header = dict(metadata or ()).get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        found = None
        for token, caller in self._tokens:
            if hmac.compare_digest(token.encode(), presented.strip().encode()):
                found = caller
        return found

    def intercept_service(self, continuation, handler_call_details):
        """Passes authenticated and health calls through; aborts the rest UNAUTHENTICATED."""
        handler = continuation(handler_call_details)
        if handler_call_details.method.startswith(HEALTH_PREFIX):
            return handler
        if self._caller(handler_call_details.invocation_metadata) is not None:
            return handler

        method = handler_call_details.method
        return self._denials.get(method, handler, lambda: decorate_handler(handler, _deny))


def _deny(_behavior: Behavior, _streaming: bool) -> Behavior:
    def abort(_request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
    return abort
