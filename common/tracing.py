"""OpenTelemetry tracing, off unless ``STEPBOARD_OTLP_ENDPOINT`` is set.

Off, every hook here is one check of a module global: no span, context or carrier object
is made, and servers and channels get no tracing interceptor at all. On (:func:`configure`
at process start, :func:`enable` in tests), spans go to the OTLP endpoint through a batch
processor, sampled at ``STEPBOARD_TRACE_SAMPLE_RATIO`` where a trace starts and following
the caller's decision elsewhere (a parent-based sampler), and the W3C trace context
(``traceparent``) travels with the work:

- gRPC: :class:`ServerTracing` opens a server span per call, parented to the context in
  the call's metadata; :func:`traced_channel` adds a client span per call and puts its
  context in the outgoing metadata.
- Kafka: :func:`record_headers` gives the headers that carry the current context in a
  record; the consumer opens one span per traced record it applies
  (:func:`applied_spans`), parented to that record's context, so each report's trace runs
  from ``ReportSteps`` to its board write.
- Redis: :func:`span` wraps the round trips that read boards and friend data.

Instrumentation is these explicit hooks, not the auto-instrumentation packages: the
servers' interceptors and the Redis round trips are stepboard's own code, and a hook costs
nothing while tracing is off.
"""

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from common.authz import OPEN_PREFIXES
from common.config import ConfigError
from common.interceptors import BuiltHandlers, Decorator, around, decorate_handler
from common.settings import default, read

_PROPAGATOR = TraceContextTextMapPropagator()
_OFF = contextlib.nullcontext()  # what :func:`span` gives while tracing is off
_tracer: Tracer | None = None  # None: tracing is off
# The attributes of a Redis round trip's span.
REDIS = {"db.system": "redis"}


@dataclass(frozen=True)
class TraceSettings:
    """Where this process sends its spans, under which service name, and how many traces
    it starts are sampled."""

    endpoint: str = default("OTLP_ENDPOINT")
    service_name: str = ""
    sample_ratio: float = default("TRACE_SAMPLE_RATIO")

    @classmethod
    def from_env(cls, env: Mapping[str, str], component: str) -> "TraceSettings":
        """Reads ``STEPBOARD_OTLP_ENDPOINT``, ``_TRACE_SERVICE_NAME`` (default by
        ``component``) and ``_TRACE_SAMPLE_RATIO`` (0 to 1)."""
        settings = cls(
            endpoint=read(env, "OTLP_ENDPOINT"),
            service_name=read(env, "TRACE_SERVICE_NAME", component=component),
            sample_ratio=read(env, "TRACE_SAMPLE_RATIO"),
        )
        if settings.sample_ratio > 1:  # read() bounds a float from below only
            raise ConfigError(
                f"STEPBOARD_TRACE_SAMPLE_RATIO: must be <= 1, got {settings.sample_ratio}"
            )
        return settings


def configure(settings: TraceSettings) -> None:
    """Turns tracing on, exporting over OTLP/gRPC, when ``settings`` name an endpoint
    (``http://host:4317``: plaintext; ``https://``: TLS); leaves it off otherwise. Called
    at process start, before the servers and channels are made."""
    if settings.endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        enable(settings, OTLPSpanExporter(endpoint=settings.endpoint))


def enable(settings: TraceSettings, exporter: SpanExporter) -> TracerProvider:
    """Turns tracing on with spans sent to ``exporter`` (tests pass an in-memory one);
    returns the provider (its ``shutdown`` flushes the spans left)."""
    global _tracer
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = provider.get_tracer("stepboard")
    return provider


def disable() -> None:
    """Turns tracing off (tests)."""
    global _tracer
    _tracer = None


def enabled() -> bool:
    """Whether tracing is on in this process."""
    return _tracer is not None


def span(
    name: str, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager:
    """A client span ``name`` around a round trip to a store, current while it lasts (a
    shared no-op while tracing is off)."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)


# -- gRPC ---------------------------------------------------------------------------------
class ServerTracing(grpc.ServerInterceptor):
    """A server span per call, named after the method, parented to the ``traceparent`` in
    the call's metadata; its status is the call's. Health checks and reflection are not
    traced: probes would start a trace every few seconds."""

    def __init__(self) -> None:
        self._built = BuiltHandlers()

    def intercept_service(self, continuation, handler_call_details):
        """Wraps the method's handler in its span."""
        method = handler_call_details.method
        inner = continuation(handler_call_details)
        if method.startswith(OPEN_PREFIXES):
            return inner
        return self._built.get(
            method, inner, lambda: decorate_handler(inner, _server_spans(method))
        )


def server_interceptors() -> list[grpc.ServerInterceptor]:
    """The tracing interceptor while tracing is on, else none."""
    return [ServerTracing()] if _tracer is not None else []


def _server_spans(method: str) -> Decorator:
    name = method.removeprefix("/")
    service, _, rpc = name.rpartition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc}

    @contextlib.contextmanager
    def call_span(context: grpc.ServicerContext) -> Iterator[None]:
        if _tracer is None:  # turned off since the server was built
            yield
            return
        parent = _PROPAGATOR.extract(dict(context.invocation_metadata()))
        with _tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        ) as current:
            try:
                yield
            finally:
                _end_with_code(current, context.code())
    return around(call_span)


def _end_with_code(current: trace.Span, code: grpc.StatusCode | None) -> None:
    """Records a call's status code on its span; any code but OK is an error."""
    code = code or grpc.StatusCode.OK
    current.set_attribute("rpc.grpc.status_code", code.value[0])
    if code != grpc.StatusCode.OK:
        current.set_status(Status(StatusCode.ERROR, code.name))


class _ClientTracing(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """A client span per call, its context sent in the call's metadata; it ends when the
    call does."""

    def _traced(self, continuation, details: grpc.ClientCallDetails, request):
        if _tracer is None:  # turned off since the channel was made
            return continuation(details, request)
        name = details.method.removeprefix("/")
        current = _tracer.start_span(name, kind=SpanKind.CLIENT, attributes={
            "rpc.system": "grpc", "rpc.service": name.rpartition("/")[0],
            "rpc.method": name.rpartition("/")[2],
        })
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(current))
        details = details._replace(metadata=[*(details.metadata or ()), *carrier.items()])
        call = continuation(details, request)

        def ended(done: grpc.Call) -> None:
            _end_with_code(current, done.code())
            current.end()
        if not call.add_callback(lambda: ended(call)):  # already over (a blocking unary)
            ended(call)
        return call

    def intercept_unary_unary(self, continuation, client_call_details, request):
        """Unary calls get a client span."""
        return self._traced(continuation, client_call_details, request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        """Server-streaming calls get a client span, ended with the stream."""
        return self._traced(continuation, client_call_details, request)


def traced_channel(channel: grpc.Channel) -> grpc.Channel:
    """``channel`` with a client span per call while tracing is on, else itself."""
    return channel if _tracer is None else grpc.intercept_channel(channel, _ClientTracing())


# -- Kafka --------------------------------------------------------------------------------
def record_headers() -> list[tuple[str, bytes]] | None:
    """The Kafka record headers carrying the current trace context (``traceparent``,
    ``tracestate``); None while tracing is off or no sampled span is current."""
    if _tracer is None or not trace.get_current_span().get_span_context().trace_flags.sampled:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


def _record_context(headers: Sequence[tuple[str, bytes | None]] | None) -> Context | None:
    """The sampled trace context a record's headers carry, or None."""
    carrier = {key: value.decode(errors="replace")
               for key, value in headers or () if key in ("traceparent", "tracestate") and value}
    if not carrier:
        return None
    context = _PROPAGATOR.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().trace_flags.sampled \
        else None


def applied_spans(messages: Sequence[Any]) -> contextlib.AbstractContextManager:
    """While it lasts, one consumer span ``apply <topic>`` per traced record of a consumed
    batch, parented to the context in the record's headers, so each report's trace runs
    from ``ReportSteps`` to its board write. A span per record rather than one per batch
    linked to them: a link leaves the write out of the report's trace, where an operator
    looks for it. Records without a sampled context get none (a batch may hold thousands
    of records: the sample ratio where traces start bounds the cost). While tracing is
    off, a shared no-op: nothing is read or made."""
    return _OFF if _tracer is None else _record_spans(messages)


@contextlib.contextmanager
def _record_spans(messages: Sequence[Any]) -> Iterator[None]:
    spans = []
    for message in messages:
        parent = _record_context(message.headers())
        if parent is not None:
            spans.append(_tracer.start_span(
                f"apply {message.topic()}", context=parent, kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": message.topic(),
                    "messaging.kafka.partition": message.partition(),
                    "messaging.kafka.offset": message.offset(),
                    "messaging.batch.message_count": len(messages),
                }))
    try:
        yield
    finally:
        for record_span in spans:
            record_span.end()
