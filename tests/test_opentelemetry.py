"""pgoxide.opentelemetry against a real server, with the SDK's in-memory exporter and reader:
spans and their attributes, parenting under the caller's span, errors, metrics, and the
instrumentor turning it on and off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pgoxide
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pgoxide import exceptions
from pgoxide.opentelemetry import OpenTelemetryTracer, PgoxideInstrumentor


@pytest.fixture
def otel() -> Iterator[
    tuple[TracerProvider, InMemorySpanExporter, MeterProvider, InMemoryMetricReader]
]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    yield provider, exporter, meters, reader
    PgoxideInstrumentor().uninstrument()


def _metrics(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    found: dict[str, Any] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = metric
    return found


async def test_query_spans_and_attributes(dsn: str, otel: Any) -> None:
    provider, exporter, meters, reader = otel
    tracer = OpenTelemetryTracer(provider, meters)
    parent_tracer = provider.get_tracer("test")
    async with await pgoxide.connect(dsn, tracer=tracer) as conn:
        with parent_tracer.start_as_current_span("request") as parent:
            assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
            with pytest.raises(exceptions.DivisionByZeroError):
                await conn.fetchval("SELECT 1 / 0")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    connect = spans["CONNECT"]
    assert connect.kind is SpanKind.CLIENT and connect.attributes["server.port"] > 0
    ok, failed = [s for s in exporter.get_finished_spans() if s.name == "SELECT"]
    assert ok.kind is SpanKind.CLIENT
    assert ok.parent is not None and ok.parent.span_id == parent.get_span_context().span_id
    attrs = ok.attributes
    assert attrs["db.system.name"] == "postgresql"
    assert attrs["db.query.text"] == "SELECT $1::int + 1"
    assert attrs["db.operation.name"] == "SELECT"
    assert attrs["db.response.returned_rows"] == 1
    assert attrs["server.address"] and attrs["db.namespace"]
    # Parameters are absent by default.
    assert not any(k.startswith("db.query.parameter") for k in attrs)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["db.response.status_code"] == "22012"
    assert failed.attributes["error.type"] == "DivisionByZeroError"
    duration = _metrics(reader)["db.client.operation.duration"]
    points = list(duration.data.data_points)
    assert sum(p.count for p in points) >= 2
    assert any(p.attributes.get("db.response.status_code") == "22012" for p in points)
    assert all("db.query.text" not in p.attributes for p in points)


async def test_parameters_when_enabled(dsn: str, otel: Any) -> None:
    provider, exporter, meters, reader = otel
    tracer = OpenTelemetryTracer(provider, meters, capture_parameters=True)
    async with await pgoxide.connect(dsn, tracer=tracer) as conn:
        await conn.fetchval("SELECT $1::text", "x")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "SELECT"]
    assert span.attributes["db.query.parameter.0"] == "'x'"
    # Never in the metric: one series per value would be unbounded.
    points = _metrics(reader)["db.client.operation.duration"].data.data_points
    keys = {k for p in points for k in p.attributes}
    assert keys == {
        "db.system.name",
        "db.namespace",
        "db.operation.name",
        "server.address",
        "server.port",
    }


async def test_spans_without_metrics(dsn: str, otel: Any) -> None:
    from opentelemetry.metrics import NoOpMeterProvider

    provider, exporter, _, _ = otel
    tracer = OpenTelemetryTracer(provider, NoOpMeterProvider())
    async with await pgoxide.connect(dsn, tracer=tracer) as conn:
        assert await conn.fetchval("SELECT 1") == 1
    assert [s.name for s in exporter.get_finished_spans()] == ["CONNECT", "SELECT"]


async def test_instrumentor_covers_pools_copy_and_cursors(dsn: str, otel: Any) -> None:
    provider, exporter, meters, reader = otel
    instrumentor = PgoxideInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=meters)
    assert instrumentor.is_instrumented_by_opentelemetry
    async with pgoxide.create_pool(dsn, min_size=1, max_size=2) as pool:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE otel_t (i int)")
            await conn.copy_records_to_table("otel_t", records=[(1,), (2,)])
            async with conn.transaction():
                cursor = await conn.cursor("SELECT * FROM otel_t")
                await cursor.fetch(5)
            async with conn.pipeline() as p:
                p.fetchval("SELECT 1")
        found = _metrics(reader)
        counts = {
            p.attributes["db.client.connection.state"]: p.value
            for p in found["db.client.connection.count"].data.data_points
        }
        assert counts == {"idle": 1, "used": 0}
        assert "db.client.connection.wait_time" in found
    names = [s.name for s in exporter.get_finished_spans()]
    for name in ("CONNECT", "ACQUIRE", "CREATE", "COPY", "FETCH", "PIPELINE", "SELECT"):
        assert name in names, name
    (copy,) = [s for s in exporter.get_finished_spans() if s.name == "COPY"]
    assert copy.attributes["db.response.returned_rows"] == 2
    instrumentor.uninstrument()
    exporter.clear()
    async with await pgoxide.connect(dsn) as conn:
        await conn.fetchval("SELECT 1")
        assert conn._tracer is None
    assert exporter.get_finished_spans() == ()
