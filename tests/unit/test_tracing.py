"""The pure parts of common.tracing: settings, the hooks while off, and the trace context a
Kafka record carries from ingest's span to the consumer's span of that record."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common import tracing
from common.config import ConfigError
from common.tracing import TraceSettings


class _Record:
    """What :func:`common.tracing.applied_spans` reads of a consumed record."""

    def __init__(self, offset: int, headers: list | None) -> None:
        self._offset, self._headers = offset, headers

    def headers(self) -> list | None:
        return self._headers

    def topic(self) -> str:
        return "reports"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return self._offset


@pytest.fixture
def spans():
    """Tracing on, every trace sampled, into memory; off again after the test."""
    exporter = InMemorySpanExporter()
    provider = tracing.enable(TraceSettings(service_name="unit", sample_ratio=1.0), exporter)

    def finished():
        provider.force_flush()
        return exporter.get_finished_spans()
    yield finished
    tracing.disable()
    provider.shutdown()


def test_settings_default_by_component_and_refuse_a_ratio_above_one():
    settings = TraceSettings.from_env({}, "consumer")
    assert (settings.endpoint, settings.service_name, settings.sample_ratio) == \
        ("", "stepboard-consumer", 0.01)
    with pytest.raises(ConfigError, match="STEPBOARD_TRACE_SAMPLE_RATIO"):
        TraceSettings.from_env({"STEPBOARD_TRACE_SAMPLE_RATIO": "1.5"}, "rank")


def test_without_an_endpoint_tracing_stays_off_and_every_hook_is_a_no_op():
    tracing.configure(TraceSettings.from_env({}, "rank"))
    assert not tracing.enabled()
    assert tracing.server_interceptors() == []
    channel = object()
    assert tracing.traced_channel(channel) is channel
    assert tracing.span("redis read scores", tracing.REDIS) is tracing.span("other")
    assert tracing.record_headers() is None
    assert tracing.applied_spans([_Record(1, None)]) is tracing.span("other")


def test_a_record_carries_its_span_context_to_the_consumer_span_of_that_record(spans):
    unsampled_span = trace.NonRecordingSpan(trace.SpanContext(
        trace_id=1, span_id=2, is_remote=False, trace_flags=trace.TraceFlags(0)))
    with trace.use_span(unsampled_span):
        assert tracing.record_headers() is None  # an unsampled span: nothing to carry
    with tracing.span("ReportSteps") as reported:
        headers = tracing.record_headers()
    unsampled = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-00")]
    with tracing.applied_spans([_Record(7, headers), _Record(8, None), _Record(9, unsampled)]):
        pass
    (applied,) = [s for s in spans() if s.name == "apply reports"]
    assert applied.context.trace_id == reported.get_span_context().trace_id
    assert applied.parent.span_id == reported.get_span_context().span_id
    assert applied.kind == trace.SpanKind.CONSUMER
    assert applied.attributes["messaging.kafka.offset"] == 7
    assert applied.attributes["messaging.batch.message_count"] == 3
