"""OpenTelemetry wiring: one trace from the HTTP request through Kafka to every projection.

W3C trace context travels in the stored envelope (so the relay, which publishes later and
in another task, continues the request's trace) and in Kafka message headers (so consumers
in other services continue the relay's producer span).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from expensura_events.envelope import TraceContext

_configured = False
tracer = trace.get_tracer("expensura_events")


def configure_tracing(service_name: str) -> None:
    """Install a tracer provider; export over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(_ServiceAttribute(service_name))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


class _ServiceAttribute(SpanProcessor):
    """`service.name` on every span too, not only on the resource: a viewer that keeps span
    attributes alone (Phoenix, which `make run` starts) still shows whose each span is."""

    def __init__(self, service_name: str) -> None:
        self._service_name = service_name

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        span.set_attribute("service.name", self._service_name)


def current_trace_context() -> TraceContext | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:
        return None
    return TraceContext(traceparent=carrier["traceparent"], tracestate=carrier.get("tracestate"))


def context_from_envelope(tc: TraceContext | None) -> Context:
    if tc is None:
        return otel_context.get_current()
    carrier = {"traceparent": tc.traceparent}
    if tc.tracestate:
        carrier["tracestate"] = tc.tracestate
    return propagate.extract(carrier)


def inject_headers() -> list[tuple[str, bytes]]:
    """The current context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    carrier = {k: v.decode() for k, v in (headers or ()) if k in ("traceparent", "tracestate")}
    return propagate.extract(carrier)


def header_value(headers: Iterable[tuple[str, bytes]] | None, name: str) -> str | None:
    for k, v in headers or ():
        if k == name:
            return v.decode()
    return None
