"""Server interceptors: caller check, metrics and access log; domain-error mapping.

Each interceptor decorates the handler's behaviour function, so the same decorators serve
unary and streaming methods alike (:func:`decorate_handler`); :func:`around` makes such a
decorator from what a call runs inside (a context manager per call). gRPC asks every
interceptor for a handler on every call; each keeps what it built per method
(:class:`BuiltHandlers`), so a call pays only for the wrappers' work, not for building them.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import grpc

from common import call_deadline
from common.authz import (
    ANONYMOUS,
    OPEN_PREFIXES,
    OTHER,
    RESERVED_NAMES,
    UNAUTHENTICATED,
    Authenticator,
    Policy,
)
from common.errors import InvalidArgument, status_for
from common.metrics import (
    SERVER_HANDLED,
    SERVER_HANDLING,
    SERVER_STARTED,
    grpc_type,
    method_labels,
)

log = logging.getLogger(__name__)
# One line per call (method, code, caller, duration_ms, peer), as STEPBOARD_ACCESS_LOG says.
access_log = logging.getLogger("stepboard.access")

Behavior = Callable[[Any, grpc.ServicerContext], Any]
Decorator = Callable[[Behavior, bool], Behavior]
# A call's caller, and the status and message to refuse it with (None: admitted).
Admission = tuple[str, tuple[grpc.StatusCode, str] | None]


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


class BuiltHandlers:
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


def around(scope: Callable[[grpc.ServicerContext], AbstractContextManager]) -> Decorator:
    """A decorator running each call's behaviour (a stream drained to its end) inside
    ``scope(context)``: what to do before and after a call, written once for unary and
    streaming methods."""
    def decorate(behavior: Behavior, streaming: bool) -> Behavior:
        if streaming:
            def run_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                with scope(context):
                    yield from behavior(request, context)
            return run_stream

        def run(request: Any, context: grpc.ServicerContext) -> Any:
            with scope(context):
                return behavior(request, context)
        return run
    return decorate


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
        self._built = BuiltHandlers()

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

    @contextlib.contextmanager
    def guarded(context: grpc.ServicerContext) -> Iterator[None]:
        """The call's deadline recorded for its waits (:mod:`common.call_deadline`), and
        any failure mapped by ``on_error``."""
        token = call_deadline.enter(context.time_remaining())
        try:
            yield
        except Exception as error:  # every failure must map to a status
            on_error(error, context)
        finally:
            call_deadline.leave(token)

    def reject_garbage(behavior: Behavior, streaming: bool) -> Behavior:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                raise InvalidArgument("request", "is not a valid protobuf message")
            return behavior(request, context)
        return around(guarded)(run, streaming)

    return decorate_handler(inner, reject_garbage, _tolerant)


class AccessInterceptor(grpc.ServerInterceptor):
    """Finds each call's caller, refuses what it may not call, and records the call.

    With ``authenticator`` unset (no tokens, no policy) every caller is ``anonymous`` and
    allowed. Otherwise a call without a caller is ``UNAUTHENTICATED`` and a call its caller
    is not granted by ``policy`` is ``PERMISSION_DENIED`` (health and reflection are open).
    Every call is counted (``grpc_server_started_total``, ``grpc_server_handled_total``)
    by method, status code and caller label (the caller when ``labels`` holds it, else
    ``other``) and timed; ``access_log`` (off, failed or all)
    says which calls also get an access log line.
    """

    def __init__(
        self,
        authenticator: Authenticator | None = None,
        policy: Policy | None = None,
        labels: frozenset[str] = frozenset(),
        access_log: str = "off",
    ) -> None:
        self._authenticator = authenticator
        self._policy = policy or Policy()
        self._labels = labels | RESERVED_NAMES
        self._access_log = access_log
        self._built = BuiltHandlers()

    def intercept_service(self, continuation, handler_call_details):
        """Wraps the method's handler with the caller check and the call's record."""
        method = handler_call_details.method
        inner = continuation(handler_call_details)
        return self._built.get(
            method, inner, lambda: decorate_handler(inner, self._access(method, inner))
        )

    def _access(self, method: str, inner: grpc.RpcMethodHandler) -> Decorator:
        """The decorator of ``method``'s calls; who may call it is resolved here, once."""
        admit = self._admission(method)
        labels = method_labels(grpc_type(inner.request_streaming, inner.response_streaming), method)
        started_total = SERVER_STARTED.labels(*labels)
        record = self._recorder(method, labels)

        @contextlib.contextmanager
        def checked(context: grpc.ServicerContext) -> Iterator[None]:
            started = time.perf_counter()
            started_total.inc()
            caller, refusal = admit(context)
            try:
                if refusal is not None:
                    context.abort(*refusal)
                yield
            finally:
                record(context, caller, started)
        return around(checked)

    def _admission(self, method: str) -> Callable[[grpc.ServicerContext], Admission]:
        """A function returning a call's caller and, if the call is refused, the status
        and message to abort it with."""
        authenticator = self._authenticator
        if authenticator is None:
            return lambda _context: (ANONYMOUS, None)
        if method.startswith(OPEN_PREFIXES):
            return lambda context: (authenticator.caller(context) or UNAUTHENTICATED, None)
        allowed = self._policy.callers_of(method)
        name = method.removeprefix("/")

        def admit(context: grpc.ServicerContext) -> Admission:
            caller = authenticator.caller(context)
            if caller is None:
                return UNAUTHENTICATED, (
                    grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token"
                )
            if caller not in allowed:
                return caller, (
                    grpc.StatusCode.PERMISSION_DENIED, f'caller "{caller}" may not call {name}'
                )
            return caller, None
        return admit

    def _recorder(
        self, method: str, labels: tuple[str, str, str]
    ) -> Callable[[grpc.ServicerContext, str, float], None]:
        """A function counting, timing and (per ``access_log``) logging one call of
        ``method`` (``labels``: its grpc_type, grpc_service, grpc_method); its metric
        children are resolved once per caller label and code."""
        counters: dict[tuple[str, grpc.StatusCode], Any] = {}
        latencies: dict[str, Any] = {}
        name = method.removeprefix("/")

        def record(context: grpc.ServicerContext, caller: str, started: float) -> None:
            elapsed = time.perf_counter() - started
            code = context.code() or grpc.StatusCode.OK
            label = caller if caller in self._labels else OTHER
            counter = counters.get((label, code))
            if counter is None:
                counter = counters[label, code] = SERVER_HANDLED.labels(*labels, code.name, label)
            counter.inc()
            latency = latencies.get(label)
            if latency is None:
                latency = latencies[label] = SERVER_HANDLING.labels(*labels, label)
            latency.observe(elapsed)
            if self._access_log == "all" or (
                self._access_log == "failed" and code != grpc.StatusCode.OK
            ):
                access_log.info("rpc", extra={
                    "method": name, "code": code.name, "caller": caller,
                    "duration_ms": round(elapsed * 1000, 3), "peer": context.peer(),
                })
        return record
