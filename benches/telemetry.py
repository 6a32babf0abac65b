"""OpenTelemetry for the traced workloads (``queries_otel``): real SDK providers whose
export does as little as possible.

Spans go through the SDK's :class:`TracerProvider` (default sampler, so every span is
recorded) and a ``SimpleSpanProcessor``, which hands each finished span to an exporter at
once, on the caller's thread; the exporter here only counts the spans and drops them, so no
memory grows across runs and no background thread competes for the CPU (a
``BatchSpanProcessor`` would queue them for a thread that exports them later).  Metrics go
to the SDK's :class:`MeterProvider` with an ``InMemoryMetricReader``: instruments aggregate
as they are recorded (one histogram per set of attributes, so memory does not grow either)
and are only read when :meth:`Telemetry.metric_count` asks.  Reading is never timed.
``Telemetry(metrics=False)`` gives the API's no-op meter provider instead, for comparing
spans alone with an instrumentation that records no metrics.

The opentelemetry packages are imported only when a :class:`Telemetry` is made, so the other
workloads run without them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

__all__ = ["Telemetry", "missing"]


def missing() -> str | None:
    """Why the OpenTelemetry SDK cannot be used here, or None."""
    try:
        found = importlib.util.find_spec("opentelemetry.sdk") is not None
    except ImportError:
        found = False
    return None if found else "opentelemetry-sdk is not installed"


class Telemetry:
    """A tracer provider and a meter provider shared by every driver of a traced workload
    (their runs never overlap), and what they received."""

    def __init__(self, metrics: bool = True) -> None:
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        telemetry = self

        class _CountingExporter(SpanExporter):
            """Counts the finished spans it is given and drops them."""

            def export(self, spans: Sequence[Any]) -> Any:
                telemetry.spans += len(spans)
                return SpanExportResult.SUCCESS

            def shutdown(self) -> None:
                return None

        #: Finished spans exported so far.
        self.spans = 0
        self.tracer_provider: Any = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(_CountingExporter()))
        self._reader: Any = InMemoryMetricReader()
        # Without metrics: the API's no-op provider, as an application that has not set
        # up metrics gets.
        self.metrics = metrics
        self.meter_provider: Any = (
            MeterProvider(metric_readers=[self._reader]) if metrics else NoOpMeterProvider()
        )

    def metric_count(self, name: str) -> int:
        """How many values the histogram ``name`` has recorded so far, over all of its sets
        of attributes (cumulative; 0 if it has recorded none)."""
        data = self._reader.get_metrics_data()
        total = 0
        for resource_metrics in getattr(data, "resource_metrics", None) or ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        total += sum(p.count for p in metric.data.data_points)
        return total
