"""OpenTelemetry spans and metrics for pgoxide (``pip install pgoxide[opentelemetry]``).

One line turns it on for every connection and pool made afterwards::

    from pgoxide.opentelemetry import PgoxideInstrumentor
    PgoxideInstrumentor().instrument(tracer_provider=..., meter_provider=...)

or pass ``OpenTelemetryTracer(...)`` as ``tracer=`` to one ``connect``/``create_pool``.

Spans follow the database semantic conventions: kind CLIENT, named by the operation
(``SELECT``, ``INSERT``, ...), with ``db.system.name``, ``db.namespace``, ``db.query.text``,
``db.operation.name``, ``server.address``, ``server.port``, ``db.response.returned_rows``,
and on failure ``db.response.status_code`` (the SQLSTATE) and ``error.type``. Connect, prepare,
pipelines, COPY, cursor windows and pool acquires get spans of their own, under the caller's
current span. Query parameters are recorded only with ``capture_parameters=True``.

Metrics: ``db.client.operation.duration`` (seconds, per operation), and the connection-pool
metrics ``db.client.connection.wait_time``, ``db.client.connection.timeouts``,
``db.client.connection.count`` (by ``db.client.connection.state``: ``idle``, ``used``) and
``db.client.connection.max``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import tracing

if TYPE_CHECKING:
    from .pool import Pool

_SYSTEM = "postgresql"
_SCOPE = "pgoxide"


# The attributes of db.client.operation.duration that come from the span's.
_METRIC_ATTRIBUTES = (
    "db.system.name",
    "db.namespace",
    "db.operation.name",
    "server.address",
    "server.port",
)


def _operation(sql: str) -> str:
    """The first keyword of a statement (``SELECT``), as the span name and
    ``db.operation.name``."""
    word = sql.lstrip(" \t\r\n(").split(None, 1)
    return word[0].upper() if word else _SYSTEM


class OpenTelemetryTracer(tracing.Tracer):
    """A :class:`pgoxide.Tracer` that records spans and metrics."""

    def __init__(
        self,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        *,
        capture_parameters: bool = False,
    ) -> None:
        self.capture_parameters = capture_parameters
        self._tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        # With the no-op provider, not even the metric's attributes are built.
        self._metrics = not isinstance(meter, metrics.NoOpMeter)
        self._duration = meter.create_histogram(
            "db.client.operation.duration", unit="s", description="Duration of database operations"
        )
        self._wait = meter.create_histogram(
            "db.client.connection.wait_time",
            unit="s",
            description="Time it took to obtain a connection from the pool",
        )
        self._timeouts = meter.create_counter(
            "db.client.connection.timeouts",
            unit="{timeout}",
            description="Acquires that timed out",
        )
        self._pools: weakref.WeakSet[Pool] = weakref.WeakSet()
        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[self._observe_counts],
            unit="{connection}",
            description="Connections in the pool, by state",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.max",
            callbacks=[self._observe_max],
            unit="{connection}",
            description="The pool's maximum size",
        )

    # -- spans ----------------------------------------------------------------------------

    def _start(self, name: str, attributes: dict[str, Any], server: Any) -> Any:
        attributes["db.system.name"] = _SYSTEM
        if server is not None:
            attributes["db.namespace"] = server.database
            attributes["server.address"] = server.host
            attributes["server.port"] = server.port
        span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        return (span, attributes)

    def _end(self, context: Any, end: tracing.End, *, metric: bool = True) -> None:
        span, attributes = context
        if end.rows is not None:
            span.set_attribute("db.response.returned_rows", end.rows)
        error_type = sqlstate = None
        if end.error is not None:
            error_type = type(end.error).__qualname__
            if isinstance(end.error, asyncio.CancelledError):
                error_type = "cancelled"
            span.set_attribute("error.type", error_type)
            sqlstate = end.sqlstate
            if sqlstate:
                span.set_attribute("db.response.status_code", sqlstate)
            span.set_status(Status(StatusCode.ERROR, str(end.error)[:200]))
            if not isinstance(end.error, asyncio.CancelledError):
                span.record_exception(end.error)
        span.end()
        if metric and self._metrics:
            # Only the low-cardinality attributes: never the query text or parameters.
            outcome = {k: attributes[k] for k in _METRIC_ATTRIBUTES if k in attributes}
            if error_type is not None:
                outcome["error.type"] = error_type
                if sqlstate:
                    outcome["db.response.status_code"] = sqlstate
            self._duration.record(end.elapsed, outcome)

    def on_query_start(self, event: tracing.QueryStart) -> Any:
        operation = _operation(event.query)
        attributes: dict[str, Any] = {
            "db.query.text": event.query,
            "db.operation.name": operation,
        }
        if event.args is not None:
            for i, value in enumerate(event.args):
                attributes[f"db.query.parameter.{i}"] = repr(value)
        return self._start(operation, attributes, event.server)

    def on_query_end(self, context: Any, end: tracing.End) -> None:
        self._end(context, end)

    def on_prepare_start(self, event: tracing.PrepareStart) -> Any:
        attributes = {"db.query.text": event.query, "db.operation.name": "PREPARE"}
        return self._start("PREPARE", attributes, event.server)

    def on_prepare_end(self, context: Any, end: tracing.End) -> None:
        self._end(context, end)

    def on_pipeline_start(self, event: tracing.PipelineStart) -> Any:
        attributes = {"db.operation.name": "PIPELINE", "db.operation.batch.atomic": event.atomic}
        return self._start("PIPELINE", attributes, event.server)

    def on_pipeline_end(self, context: Any, end: tracing.End) -> None:
        span, _ = context
        span.set_attribute("db.operation.batch.size", end.details.get("operations", 0))
        self._end(context, end)

    def on_fetch_start(self, event: tracing.FetchStart) -> Any:
        attributes = {"db.query.text": event.query, "db.operation.name": "FETCH"}
        return self._start("FETCH", attributes, event.server)

    def on_fetch_end(self, context: Any, end: tracing.End) -> None:
        self._end(context, end)

    def on_copy_start(self, event: tracing.CopyStart) -> Any:
        attributes = {
            "db.query.text": event.sql,
            "db.operation.name": "COPY",
            "pgoxide.copy.direction": event.direction,
        }
        return self._start("COPY", attributes, event.server)

    def on_copy_end(self, context: Any, end: tracing.End) -> None:
        self._end(context, end)

    def on_connect_start(self, event: tracing.ConnectStart) -> Any:
        attributes = {"db.operation.name": "CONNECT", "pgoxide.hosts": list(event.hosts)}
        return self._start("CONNECT", attributes, None)

    def on_connect_end(self, context: Any, end: tracing.End) -> None:
        span, _ = context
        if end.details:
            host, _, port = str(end.details.get("host", "")).rpartition(":")
            span.set_attribute("server.address", host)
            if port.isdigit():
                span.set_attribute("server.port", int(port))
            span.set_attribute("pgoxide.tls", bool(end.details.get("tls")))
            if end.details.get("auth_method"):
                span.set_attribute("pgoxide.auth_method", end.details["auth_method"])
        self._end(context, end, metric=False)

    # -- the pool -----------------------------------------------------------------------------

    def on_pool_acquire_start(self, event: tracing.PoolAcquireStart) -> Any:
        attributes = {"db.operation.name": "ACQUIRE"}
        return self._start("ACQUIRE", attributes, None)

    def on_pool_acquire_end(self, context: Any, end: tracing.End) -> None:
        if isinstance(end.error, asyncio.TimeoutError):
            self._timeouts.add(1, {"db.system.name": _SYSTEM})
        else:
            self._wait.record(end.elapsed, {"db.system.name": _SYSTEM})
        self._end(context, end, metric=False)

    def watch_pool(self, pool: Pool) -> None:
        """Reports ``pool``'s connection counts (done by ``create_pool`` for its tracer)."""
        self._pools.add(pool)

    def _observe_counts(self, options: Any) -> Iterable[metrics.Observation]:
        for pool in list(self._pools):
            stats = pool.stats()
            name = {"db.client.connection.pool.name": f"pool-{id(pool):x}"}
            yield metrics.Observation(stats.idle, {**name, "db.client.connection.state": "idle"})
            yield metrics.Observation(stats.in_use, {**name, "db.client.connection.state": "used"})

    def _observe_max(self, options: Any) -> Iterable[metrics.Observation]:
        for pool in list(self._pools):
            name = {"db.client.connection.pool.name": f"pool-{id(pool):x}"}
            yield metrics.Observation(pool.get_max_size(), name)


class PgoxideInstrumentor:
    """Turns OpenTelemetry on for every connection and pool made after :meth:`instrument`
    (the opentelemetry-instrumentation packages' interface)."""

    _installed: OpenTelemetryTracer | None = None

    def instrument(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_parameters: bool = False,
    ) -> None:
        tracer = OpenTelemetryTracer(
            tracer_provider, meter_provider, capture_parameters=capture_parameters
        )
        PgoxideInstrumentor._installed = tracer
        tracing.set_default_tracer(tracer)

    def uninstrument(self) -> None:
        if tracing.default_tracer() is PgoxideInstrumentor._installed:
            tracing.set_default_tracer(None)
        PgoxideInstrumentor._installed = None

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        return PgoxideInstrumentor._installed is not None
