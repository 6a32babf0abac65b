"""The benchmark workloads: what is run, on which tables, and how a run is checked.

Every driver runs the same SQL (only the parameter markers differ) over the same rows.  The
tables are created once per benchmark run by :func:`setup_sql` and dropped by
:func:`teardown_sql`; their names start with ``pgoxide_bench_``.  A workload with
``latency_ms`` runs on connections made through benches/latency_proxy.py, which delays
every chunk by that much in each direction; one with ``connections`` above 1 gets that many
connections per driver (``Driver.peers``); one with ``pool_size`` runs on the driver's own
connection pool of that size (``Driver.pool``), opened before it and closed after.  A
workload that needs an optional driver operation (``needs``, e.g. COPY or a pool) is not run
on a driver that lacks it (the report shows ``n/a``).  Workloads of one ``group`` (pgbench's
queries) also get the geometric mean of their ratios to asyncpg.  A traced workload
(``queries_otel``) runs on a connection per driver with OpenTelemetry on, opened before it
and closed after (``Driver.open_traced``), and names the untraced workload it repeats
(``baseline``), so the report shows what tracing costs each driver.  :data:`SUITES` groups
the workloads for ``--suite``.
"""

from __future__ import annotations

import abc
import asyncio
import datetime
import decimal
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drivers import Driver
from telemetry import Telemetry
from telemetry import missing as telemetry_missing

__all__ = [
    "SUITES",
    "ConcurrentCopyWorkload",
    "CopyInWorkload",
    "CopyOutWorkload",
    "CopyRecordsOutWorkload",
    "ExecuteManyWorkload",
    "FetchWorkload",
    "GatherWorkload",
    "PoolAcquireWorkload",
    "PoolFetchvalWorkload",
    "PoolPgbenchWorkload",
    "RepeatedFetchWorkload",
    "SequentialWorkload",
    "StreamWorkload",
    "TracedSequentialWorkload",
    "Workload",
    "WorkloadError",
    "build_workloads",
]

_PREFIX = "pgoxide_bench_"


class WorkloadError(Exception):
    """A driver returned something other than what the workload expects."""


@dataclass
class Workload(abc.ABC):
    """One measured operation; ``count`` items (rows or queries) per timed run, over
    ``repetitions`` operations (1 unless the workload repeats a small one)."""

    name: str
    description: str
    unit: str
    count: int
    repetitions: int = 1
    #: Milliseconds a local proxy adds in each direction (0: the drivers connect directly).
    latency_ms: float = 0.0
    #: Connections per driver: above 1, the runner opens the others (``Driver.peers``) before
    #: the workload and closes them after.
    connections: int = 1
    #: Above 0: the runner opens the driver's pool of this many connections (``Driver.pool``)
    #: before the workload and closes it after.
    pool_size: int = 0
    #: Workloads of the same group ("": none) get one more line in the report: the geometric
    #: mean of each driver's ratios to asyncpg over the group.
    group: str = ""
    #: The workload this one repeats with something added ("": none), in the same run: the
    #: report adds a line with each driver's overhead (time per item with / without - 1).
    baseline: str = ""
    #: Whether json and jsonb are decoded into Python objects: the runner puts a connection
    #: that does so in place of each driver's own (``Driver.open_json``) for the workload.
    json_objects: bool = False
    #: The optional :class:`Driver` operation the workload calls ("": none); a driver without
    #: it is left out and shown as ``n/a``.
    needs: ClassVar[str] = ""

    def unsupported_by(self, driver: Driver) -> str | None:
        """Why ``driver`` cannot run this workload, or None if it can."""
        return driver.cannot(self.needs) if self.needs else None

    def details(self) -> str:
        """The description shown in the notes (may depend on what setup found)."""
        return self.description

    def telemetry(self) -> Telemetry | None:
        """The OpenTelemetry providers of a traced workload: the runner opens a traced
        connection per driver with them (``Driver.open_traced``) before the workload and
        closes it after; None (no tracing) for the others."""
        return None

    def operations(self) -> tuple[int, str]:
        """Round trips per timed run and what one is called, for the CPU table."""
        return self.repetitions, "fetch"

    def setup_sql(self) -> list[str]:
        """Statements creating what the workload reads or writes (run once, untimed)."""
        return []

    def teardown_sql(self) -> list[str]:
        """Statements removing what :meth:`setup_sql` created."""
        return []

    def reference_query(self) -> tuple[str, tuple[Any, ...]] | None:
        """A query (``$n`` markers) and its arguments, run once after every setup (untimed,
        through asyncpg), whose rows :meth:`set_reference` receives; None if not needed."""
        return None

    def set_reference(self, rows: list[tuple[Any, ...]]) -> None:
        """Take the rows of :meth:`reference_query` (e.g. to learn the expected result)."""
        return None

    async def prepare(self, driver: Driver) -> Any:
        """Untimed work before each run; its result is passed to :meth:`run`."""
        return None

    @abc.abstractmethod
    async def run(self, driver: Driver, arg: Any) -> Any:
        """The timed part."""

    @abc.abstractmethod
    async def verify(self, driver: Driver, result: Any) -> None:
        """Check the run did what it should (untimed); raise :class:`WorkloadError` if not."""

    def result_types(self, result: Any) -> tuple[str, ...] | None:
        """The Python types of one result row, to show where drivers return different
        objects for the same columns; None when that is not meaningful."""
        return None


@dataclass
class FetchWorkload(Workload):
    """``SELECT * FROM table``, every row materialised as Python objects."""

    table: str = ""
    #: (name, SQL type, expression of the series value ``i``) per column.
    columns: tuple[tuple[str, str, str], ...] = ()

    @property
    def sql(self) -> str:
        return f"SELECT * FROM {self.table}"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _, _ in self.columns]

    def setup_sql(self) -> list[str]:
        return _table_sql(self.table, self.columns, self.count)

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"]

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.fetch_all(self.sql)

    def unsupported_by(self, driver: Driver) -> str | None:
        if self.json_objects:
            return driver.cannot("open_json")
        return super().unsupported_by(driver)

    async def verify(self, driver: Driver, result: Any) -> None:
        if len(result) != self.count:
            raise WorkloadError(f"{driver.name}: {len(result)} rows, expected {self.count}")
        if self.json_objects and result and not isinstance(result[0][-1], dict):
            raise WorkloadError(f"{driver.name}: jsonb came back as {type(result[0][-1])}")

    def result_types(self, result: Any) -> tuple[str, ...] | None:
        return tuple(type(v).__name__ for v in result[0]) if result else None


def _table_sql(table: str, columns: tuple[tuple[str, str, str], ...], rows: int) -> list[str]:
    """Create ``table`` with ``rows`` rows, column values computed from the series value ``i``."""
    ddl = ", ".join(f"{name} {type_}" for name, type_, _ in columns)
    exprs = ", ".join(expr for _, _, expr in columns)
    return [
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} ({ddl})",
        f"INSERT INTO {table} SELECT {exprs} FROM generate_series(1, {rows}) AS i",
        # Set hint bits and statistics now, so no timed scan does that work.
        f"VACUUM (FREEZE, ANALYZE) {table}",
    ]


@dataclass
class RepeatedFetchWorkload(Workload):
    """A small result fetched ``repetitions`` times per timed run, each fetch awaited before the
    next; ``count`` is rows per fetch times ``repetitions``.

    The rows are checked against ``expected`` (sorted ``key`` of each row), which is either
    given or, with ``reference``, read from the server after setup (then ``count`` follows).
    """

    #: The query; ``{0}``, ``{1}``, ... stand for the driver's parameter markers.
    template: str = ""
    args: tuple[Any, ...] = ()
    #: The table to create ("": none) and, as for :class:`FetchWorkload`, its columns; without
    #: a table only the names and SQL types are used (for the result-type notes).
    table: str = ""
    columns: tuple[tuple[str, str, str], ...] = ()
    #: One row as a comparable tuple, the same for every driver's row objects.
    key: Callable[[Sequence[Any]], tuple[Any, ...]] = tuple
    expected: list[tuple[Any, ...]] = field(default_factory=list)
    #: A query (``$n`` markers, run with ``args``) returning the expected keys.
    reference: str = ""

    @property
    def column_names(self) -> list[str]:
        return [name for name, _, _ in self.columns]

    @property
    def rows_per_fetch(self) -> int:
        return self.count // self.repetitions

    def details(self) -> str:
        return (
            f"{self.description}; {self.rows_per_fetch:,} rows per fetch, fetched "
            f"{self.repetitions:,} times per timed run (each awaited before the next); "
            "the rate is rows/s over all fetches"
        )

    def setup_sql(self) -> list[str]:
        if not self.table:
            return []
        return _table_sql(self.table, self.columns, self.rows_per_fetch)

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"] if self.table else []

    def reference_query(self) -> tuple[str, tuple[Any, ...]] | None:
        return (self.reference, self.args) if self.reference else None

    def set_reference(self, rows: list[tuple[Any, ...]]) -> None:
        self.expected = sorted(tuple(r) for r in rows)
        self.count = len(self.expected) * self.repetitions

    async def prepare(self, driver: Driver) -> Any:
        return self.template.format(*driver.placeholders(len(self.args)))

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.fetch_repeated(arg, self.args, self.repetitions)

    async def verify(self, driver: Driver, result: Any) -> None:
        total, last = result
        if total != self.count:
            raise WorkloadError(f"{driver.name}: {total} rows in all, expected {self.count}")
        if sorted(self.key(r) for r in last) != self.expected:
            raise WorkloadError(f"{driver.name}: the rows differ from the expected ones")

    def result_types(self, result: Any) -> tuple[str, ...] | None:
        _, last = result
        return tuple(type(v).__name__ for v in last[0]) if last else None


@dataclass
class SequentialWorkload(Workload):
    """``count`` parameterised queries, each awaited before the next."""

    template: str = ""

    def operations(self) -> tuple[int, str]:
        return self.count, "query"

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.sequential(self.template.format(*driver.placeholders(1)), self.count)

    async def verify(self, driver: Driver, result: Any) -> None:
        # The last query is run with count - 1.
        if result != self.count:
            raise WorkloadError(f"{driver.name}: last value {result!r}, expected {self.count}")


@dataclass
class TracedSequentialWorkload(SequentialWorkload):
    """:class:`SequentialWorkload` on a connection with the driver's OpenTelemetry
    instrumentation on (:meth:`Driver.open_traced`: pgoxide's ``OpenTelemetryTracer``,
    asyncpg's ``AsyncPGInstrumentor``), sending to real SDK providers whose export does as
    little as possible (:class:`Telemetry`).  Each run is checked to have finished
    at least one span per query, and, for a driver whose instrumentation records metrics, one
    duration value per query."""

    needs: ClassVar[str] = "open_traced"
    #: False: spans only (the no-op meter provider), like for like with asyncpg's
    #: instrumentation, which records no metrics.
    metrics: bool = True
    _telemetry: Telemetry | None = field(default=None, init=False, repr=False)

    def unsupported_by(self, driver: Driver) -> str | None:
        return telemetry_missing() or super().unsupported_by(driver)

    def telemetry(self) -> Telemetry:
        if self._telemetry is None:
            self._telemetry = Telemetry(self.metrics)
        return self._telemetry

    def details(self) -> str:
        metrics = (
            "metrics: the SDK's MeterProvider with an InMemoryMetricReader (read only between "
            "runs)"
            if self.metrics
            else "metrics: off (the API's NoOpMeterProvider)"
        )
        checked = (
            " (and as many db.client.operation.duration values for pgoxide; asyncpg's "
            "instrumentation has no metrics)"
            if self.metrics
            else ""
        )
        return (
            f"{self.description}; spans: the SDK's TracerProvider (default sampler: every span "
            f"recorded) with a SimpleSpanProcessor whose exporter counts and drops them; "
            f"{metrics}; a new connection per driver with tracing on, opened before the "
            f"workload and closed after; each run checked for at least {self.count:,} finished "
            f"spans{checked}"
        )

    async def prepare(self, driver: Driver) -> Any:
        if not driver.traced:
            raise WorkloadError(f"{driver.name}: no traced connection was opened")
        t = self.telemetry()
        # What the providers had received before the run, to count what it adds.
        counted = driver.otel_metric and self.metrics
        return t.spans, t.metric_count(driver.otel_metric) if counted else 0

    async def run(self, driver: Driver, arg: Any) -> Any:
        return arg, await super().run(driver, arg)

    async def verify(self, driver: Driver, result: Any) -> None:
        (spans, values), last = result
        await super().verify(driver, last)
        t = self.telemetry()
        if t.spans - spans < self.count:
            raise WorkloadError(
                f"{driver.name}: {t.spans - spans:,} spans finished, expected at least "
                f"{self.count:,}"
            )
        if driver.otel_metric and self.metrics:
            recorded = t.metric_count(driver.otel_metric) - values
            if recorded < self.count:
                raise WorkloadError(
                    f"{driver.name}: {recorded:,} {driver.otel_metric} values recorded, "
                    f"expected at least {self.count:,}"
                )


@dataclass
class GatherWorkload(Workload):
    """``count`` independent parameterised queries on one connection, all in flight
    together where the driver allows it (:meth:`Driver.concurrent`: pgoxide
    ``asyncio.gather``, psycopg pipeline mode, psqlpy ``pipeline``; asyncpg one after
    another).  Every value is checked, in order."""

    template: str = ""

    def operations(self) -> tuple[int, str]:
        # Per query, as for `queries`: the wall time per query is then the round trip for
        # a driver that waits for each one, and a fraction of it for one that pipelines.
        return self.count, "query"

    async def prepare(self, driver: Driver) -> Any:
        return self.template.format(*driver.placeholders(1))

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.concurrent(arg, self.count)

    async def verify(self, driver: Driver, result: Any) -> None:
        values = list(result)
        failed = [v for v in values if isinstance(v, BaseException)]
        if failed:
            first = failed[0]
            raise WorkloadError(
                f"{driver.name}: {len(failed):,} of {self.count:,} calls failed, the first "
                f"with {type(first).__name__}: {first}"
            )
        expected = list(range(1, self.count + 1))  # query i returns i + 1
        if values != expected:
            total = sum(v for v in values if isinstance(v, int))
            raise WorkloadError(
                f"{driver.name}: {len(values):,} values summing to {total:,}; expected "
                f"{self.count:,} summing to {sum(expected):,}, in order"
            )


@dataclass
class StreamWorkload(Workload):
    """``count`` rows read through each driver's cursor, ``window`` rows per round trip,
    none kept (pgoxide ``conn.stream`` outside a transaction; asyncpg ``cursor`` in one, as
    it requires; psycopg a named cursor; psqlpy ``Transaction.cursor``)."""

    window: int = 1000
    #: (name, SQL type, expression of i) of the columns; the first must be an integer.
    columns: tuple[tuple[str, str, str], ...] = ()

    def operations(self) -> tuple[int, str]:
        return -(-self.count // self.window), "window"

    def sql(self) -> str:
        exprs = ", ".join(f"{expr} AS {name}" for name, _, expr in self.columns)
        return f"SELECT {exprs} FROM generate_series(1, {self.count}) AS i"

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.stream(self.sql(), self.window)

    async def verify(self, driver: Driver, result: Any) -> None:
        count, total = result
        if (count, total) != (self.count, self.count * (self.count + 1) // 2):
            raise WorkloadError(f"{driver.name}: {count} rows summing to {total}")


@dataclass
class ExecuteManyWorkload(Workload):
    """``executemany`` of an INSERT with ``count`` parameter rows into an emptied table."""

    table: str = ""
    #: The column definitions of the target table.
    ddl: str = ""
    make_row: Callable[[int], tuple[Any, ...]] | None = None
    _rows: list[tuple[Any, ...]] = field(default_factory=list, init=False, repr=False)

    def operations(self) -> tuple[int, str]:
        return 1, "batch"

    def rows(self) -> list[tuple[Any, ...]]:
        """The parameter rows, built once and shared by every driver."""
        if not self._rows:
            assert self.make_row is not None
            self._rows = [self.make_row(i) for i in range(self.count)]
        return self._rows

    def setup_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}", f"CREATE TABLE {self.table} ({self.ddl})"]

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"]

    def sql(self, driver: Driver) -> str:
        marks = ", ".join(driver.placeholders(len(self.rows()[0])))
        return f"INSERT INTO {self.table} VALUES ({marks})"

    async def prepare(self, driver: Driver) -> Any:
        await driver.execute(f"TRUNCATE {self.table}")
        return self.sql(driver), driver.adapt_rows(self.rows())

    async def run(self, driver: Driver, arg: Any) -> Any:
        sql, rows = arg
        await driver.executemany(sql, rows)

    async def verify(self, driver: Driver, result: Any) -> None:
        n = await driver.scalar(f"SELECT count(*) FROM {self.table}")
        if n != self.count:
            raise WorkloadError(f"{driver.name}: {n} rows inserted, expected {self.count}")


#: SQL spellings of types that psycopg's type registry knows by another name.
_TYPE_NAMES = {"int": "int4", "integer": "int4", "float": "float8", "double precision": "float8"}


def _sql_types(columns: Sequence[tuple[str, str]] | Sequence[tuple[str, str, str]]) -> list[str]:
    """The columns' type names as psycopg's ``Copy.set_types`` takes them: without a type
    modifier (``numeric(14, 4)`` -> ``numeric``), ``int`` and ``float`` as ``int4`` and
    ``float8``."""
    names = [c[1].split("(")[0].strip() for c in columns]
    return [_TYPE_NAMES.get(name.lower(), name) for name in names]


@dataclass
class CopyInWorkload(ExecuteManyWorkload):
    """``COPY table (columns) FROM STDIN`` of ``count`` Python rows into an emptied table,
    with the driver's record copy (:meth:`Driver.copy_records_in`)."""

    #: (name, SQL type) of each column; the table is created with them.
    columns: tuple[tuple[str, str], ...] = ()
    needs: ClassVar[str] = "copy_records_in"

    def __post_init__(self) -> None:
        self.ddl = self.ddl or ", ".join(f"{name} {type_}" for name, type_ in self.columns)

    def operations(self) -> tuple[int, str]:
        return 1, "copy"

    async def prepare(self, driver: Driver) -> Any:
        await driver.execute(f"TRUNCATE {self.table}")
        return self.rows()

    async def run(self, driver: Driver, arg: Any) -> Any:
        names = [name for name, _ in self.columns]
        await driver.copy_records_in(self.table, names, _sql_types(self.columns), arg)


class _CountingSink:
    """A COPY TO STDOUT sink that only counts the bytes and lines it is given."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    async def write(self, data: bytes) -> None:
        self.bytes += len(data)
        self.lines += data.count(b"\n")


@dataclass
class CopyOutWorkload(Workload):
    """``COPY (query) TO STDOUT`` in text format, every chunk handed to a coroutine sink that
    only counts bytes and lines (:meth:`Driver.copy_out`); ``count`` is the rows expected."""

    query: str = ""
    needs: ClassVar[str] = "copy_out"

    def operations(self) -> tuple[int, str]:
        return 1, "copy"

    async def prepare(self, driver: Driver) -> Any:
        return _CountingSink()

    async def run(self, driver: Driver, arg: Any) -> Any:
        await driver.copy_out(self.query, arg.write)
        return arg

    async def verify(self, driver: Driver, result: Any) -> None:
        if result.lines != self.count:
            raise WorkloadError(
                f"{driver.name}: {result.lines:,} lines ({result.bytes:,} bytes), "
                f"expected {self.count:,}"
            )


@dataclass
class CopyRecordsOutWorkload(Workload):
    """Every row of ``SELECT * FROM table`` materialised as row objects, through the
    driver's record COPY out (:meth:`Driver.copy_records_out`: pgoxide
    ``copy_records_from_query``, psycopg binary COPY with ``set_types``); asyncpg and psqlpy
    have none and run their ``fetch`` of the same query."""

    table: str = ""
    #: As for :class:`FetchWorkload`.
    columns: tuple[tuple[str, str, str], ...] = ()
    needs: ClassVar[str] = "copy_records_out"

    @property
    def sql(self) -> str:
        return f"SELECT * FROM {self.table}"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _, _ in self.columns]

    def operations(self) -> tuple[int, str]:
        return 1, "result"

    def setup_sql(self) -> list[str]:
        return _table_sql(self.table, self.columns, self.count)

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"]

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.copy_records_out(self.sql, _sql_types(self.columns))

    async def verify(self, driver: Driver, result: Any) -> None:
        if len(result) != self.count:
            raise WorkloadError(f"{driver.name}: {len(result)} rows, expected {self.count}")

    def result_types(self, result: Any) -> tuple[str, ...] | None:
        return tuple(type(v).__name__ for v in result[0]) if result else None


@dataclass
class ConcurrentCopyWorkload(Workload):
    """``connections`` connections of the driver, each running ``copies`` record copies of
    ``rows_per_copy`` copies of ``row`` one after another, all connections at once
    (``asyncio.gather``); the table is emptied before each run.  ``count`` is the rows of
    all copies.  The server CPU time is the sum over all the connections' backends."""

    table: str = ""
    #: (name, SQL type) of each column; the table is created with them.
    columns: tuple[tuple[str, str], ...] = ()
    row: tuple[Any, ...] = ()
    rows_per_copy: int = 0
    #: Copies per connection per timed run.
    copies: int = 1
    needs: ClassVar[str] = "copy_records_in"

    def operations(self) -> tuple[int, str]:
        return self.connections * self.copies, "copy"

    def details(self) -> str:
        return (
            f"{self.description}; per timed run {self.connections} connections x "
            f"{self.copies} {'copy' if self.copies == 1 else 'copies'} of "
            f"{self.rows_per_copy:,} rows; the server CPU column is the sum over the "
            f"{self.connections} connections' backends"
        )

    def setup_sql(self) -> list[str]:
        ddl = ", ".join(f"{name} {type_}" for name, type_ in self.columns)
        return [f"DROP TABLE IF EXISTS {self.table}", f"CREATE TABLE {self.table} ({ddl})"]

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"]

    async def prepare(self, driver: Driver) -> Any:
        if len(driver.peers) != self.connections - 1:
            raise WorkloadError(
                f"{driver.name}: {len(driver.peers) + 1} connections, expected {self.connections}"
            )
        await driver.execute(f"TRUNCATE {self.table}")
        return [self.row] * self.rows_per_copy

    async def run(self, driver: Driver, arg: Any) -> Any:
        names = [name for name, _ in self.columns]
        types = _sql_types(self.columns)

        async def copies(conn: Driver) -> None:
            for _ in range(self.copies):
                await conn.copy_records_in(self.table, names, types, arg)

        # Wait for every connection even if one fails, so none is busy when the next run starts.
        outcomes = await asyncio.gather(
            *(copies(conn) for conn in (driver, *driver.peers)), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def verify(self, driver: Driver, result: Any) -> None:
        n = await driver.scalar(f"SELECT count(*) FROM {self.table}")
        if n != self.count:
            raise WorkloadError(f"{driver.name}: {n} rows copied, expected {self.count}")


@dataclass
class _PoolWorkload(Workload):
    """A workload on the driver's pool (``pool_size`` connections).  Before each run (untimed)
    it holds all of the pool's connections at once and reads their server processes, so the
    server CPU column is the sum over the pool's backends, and every connection is open."""

    needs: ClassVar[str] = "open_pool"

    async def _read_pool_pids(self, driver: Driver) -> None:
        if driver.pool is None:
            raise WorkloadError(f"{driver.name}: no pool was opened")
        pids = await driver.pool_backend_pids(self.pool_size)
        if len(set(pids)) != self.pool_size:
            raise WorkloadError(
                f"{driver.name}: {len(set(pids))} server processes behind the pool's "
                f"{self.pool_size} connections held at once"
            )
        driver.pool_pids = pids


async def _gather_all(coros: Sequence[Any]) -> list[Any]:
    """``asyncio.gather`` that waits for every coroutine even if one fails (so no pool
    connection is still busy when the next run starts), then raises the first failure."""
    outcomes = await asyncio.gather(*coros, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


@dataclass
class PoolFetchvalWorkload(_PoolWorkload):
    """``count`` one-parameter ``fetchval`` calls through the pool (acquire, query, release:
    ``pool.fetchval`` where the driver has it), from ``tasks`` concurrent tasks each making
    ``count / tasks`` calls one after another.  The sum of the values is checked."""

    template: str = ""
    tasks: int = 50

    def operations(self) -> tuple[int, str]:
        return self.count, "call"

    def details(self) -> str:
        return (
            f"{self.description}; per timed run {self.tasks} tasks x "
            f"{self.count // self.tasks:,} calls on a pool of {self.pool_size}; the server CPU "
            "column is the sum over the pool's backends"
        )

    async def prepare(self, driver: Driver) -> Any:
        await self._read_pool_pids(driver)
        return self.template.format(*driver.placeholders(1)), driver.pool_fetchval()

    async def run(self, driver: Driver, arg: Any) -> Any:
        sql, fetchval = arg
        per_task = self.count // self.tasks

        async def task(first: int) -> int:
            total = 0
            for i in range(first, first + per_task):
                total += await fetchval(sql, i)
            return total

        return sum(await _gather_all([task(k * per_task) for k in range(self.tasks)]))

    async def verify(self, driver: Driver, result: Any) -> None:
        expected = self.count * (self.count + 1) // 2  # call i returns i + 1
        if result != expected:
            raise WorkloadError(f"{driver.name}: the values sum to {result}, expected {expected}")


@dataclass
class PoolAcquireWorkload(_PoolWorkload):
    """``count`` cycles of ``async with pool.acquire() as conn: pass`` from one task: acquire
    and release of a connection whose session nothing changed."""

    def operations(self) -> tuple[int, str]:
        return self.count, "cycle"

    def details(self) -> str:
        return (
            f"{self.description}; a pool of {self.pool_size}, one task; exactly acquire + "
            "release with nothing run in between: asyncpg sends its reset query on every "
            "release (a round trip), pgoxide sends none when the session changed nothing, "
            "psqlpy's default recycling sends none ever; the server CPU column is the sum over "
            "the pool's backends"
        )

    async def prepare(self, driver: Driver) -> Any:
        await self._read_pool_pids(driver)

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.pool_acquire_release(self.count)

    async def verify(self, driver: Driver, result: Any) -> None:
        if result != self.count:
            raise WorkloadError(f"{driver.name}: {result} cycles, expected {self.count}")


@dataclass
class PoolPgbenchWorkload(_PoolWorkload):
    """One of MagicStack pgbench's queries through the pool: ``workers`` concurrent tasks,
    each doing ``per_worker`` operations one after another; an operation acquires a
    connection, runs the query once (``kind`` "fetch": every row fetched; "copy": a record
    COPY of ``rows_per_op`` copies of ``row`` into ``table``; "executemany": the INSERT
    ``template`` over as many copies of ``row``) and releases it.  ``count`` is the operations
    per timed run.  Fetches are checked against ``expected`` (the sorted ``key`` of each row
    of each worker's last result; read from the server with ``reference``), writes by the
    table's ``count(*)`` (it is emptied before each run)."""

    kind: str = "fetch"
    #: The query, ``{0}``, ``{1}``, ... standing for the driver's parameter markers.
    template: str = ""
    args: tuple[Any, ...] = ()
    #: pgbench's setup statements, with the table renamed (run once per benchmark run).
    setup: tuple[str, ...] = ()
    #: The table the query reads or writes (dropped at the end).
    table: str = ""
    #: For "copy": the columns copied into.
    columns: tuple[tuple[str, str], ...] = ()
    row: tuple[Any, ...] = ()
    rows_per_op: int = 0
    workers: int = 10
    per_worker: int = 1
    key: Callable[[Sequence[Any]], tuple[Any, ...]] = tuple
    expected: list[tuple[Any, ...]] = field(default_factory=list)
    reference: str = ""

    def unsupported_by(self, driver: Driver) -> str | None:
        why = super().unsupported_by(driver)
        if why is None and self.kind == "copy":
            why = driver.cannot("copy_records_in")
        return why

    def operations(self) -> tuple[int, str]:
        return self.count, "op"

    def details(self) -> str:
        what = {
            "fetch": f"the query, all {len(self.expected):,} rows fetched",
            "copy": f"a record COPY of {self.rows_per_op:,} rows",
            "executemany": f"executemany of {self.rows_per_op:,} rows",
        }[self.kind]
        return (
            f"{self.description}; per timed run {self.workers} concurrent workers x "
            f"{self.per_worker:,} operations, each: acquire a connection of the pool of "
            f"{self.pool_size}, {what}, release; the server CPU column is the sum over the "
            "pool's backends"
        )

    def setup_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}", *self.setup] if self.table else []

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"] if self.table else []

    def reference_query(self) -> tuple[str, tuple[Any, ...]] | None:
        return (self.reference, self.args) if self.reference else None

    def set_reference(self, rows: list[tuple[Any, ...]]) -> None:
        self.expected = sorted(tuple(r) for r in rows)

    async def prepare(self, driver: Driver) -> Any:
        await self._read_pool_pids(driver)
        if self.kind == "fetch":
            sql = self.template.format(*driver.placeholders(len(self.args)))
            return driver.pool_operation("fetch", sql, self.args)
        await driver.execute(f"TRUNCATE {self.table}")
        rows = [self.row] * self.rows_per_op
        if self.kind == "copy":
            names = [name for name, _ in self.columns]
            return driver.pool_operation("copy", self.table, rows, names)
        sql = self.template.format(*driver.placeholders(len(self.row)))
        return driver.pool_operation("executemany", sql, driver.adapt_rows(rows))

    async def run(self, driver: Driver, arg: Any) -> Any:
        op = arg
        n = self.per_worker

        async def fetches() -> tuple[int, Any]:
            rows = 0
            last = None
            for _ in range(n):
                last = await op()
                rows += len(last)
            return rows, last

        async def writes() -> None:
            for _ in range(n):
                await op()

        worker = fetches if self.kind == "fetch" else writes
        return await _gather_all([worker() for _ in range(self.workers)])

    async def verify(self, driver: Driver, result: Any) -> None:
        if self.kind != "fetch":
            n = await driver.scalar(f"SELECT count(*) FROM {self.table}")
            if n != self.count * self.rows_per_op:
                raise WorkloadError(
                    f"{driver.name}: {n} rows written, expected {self.count * self.rows_per_op}"
                )
            return
        rows = sum(r for r, _ in result)
        if rows != self.count * len(self.expected):
            raise WorkloadError(
                f"{driver.name}: {rows} rows in all, expected {self.count * len(self.expected)}"
            )
        for _, last in result:
            if sorted(self.key(r) for r in last) != self.expected:
                raise WorkloadError(f"{driver.name}: the rows differ from the expected ones")


#: (name, type, expression of i) for each column of the wide table.
_WIDE: tuple[tuple[str, str, str], ...] = (
    ("id", "int4", "i"),
    ("big", "int8", "i::int8 * 1000003"),
    ("score", "float8", "i * 0.25"),
    ("name", "text", "'customer-' || i"),
    ("active", "bool", "i % 3 = 0"),
    ("created", "timestamptz", "timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute'"),
    ("amount", "numeric(14, 4)", "(i * 1.2345)::numeric(14, 4)"),
    ("uid", "uuid", "md5(i::text)::uuid"),
    ("day", "date", "date '2000-01-01' + i % 10000"),
    ("tags", "int4[]", "ARRAY[i, i + 1, i % 7]"),
    ("doc", "jsonb", "jsonb_build_object('id', i, 'tag', 'tag-' || i % 100, 'ok', i % 2 = 0)"),
)
_INTS: tuple[tuple[str, str, str], ...] = (
    ("a", "int4", "i"),
    ("b", "int4", "i + 1"),
    ("c", "int4", "i * 2"),
    ("d", "int4", "i % 1000"),
    ("e", "int4", "-i"),
)
_TEXT: tuple[tuple[str, str, str], ...] = (("t", "text", "md5(i::text)"),)


#: int4[] of 100 elements: row i holds i * 1000 + 1 .. i * 1000 + 100.
_INTARRAY: tuple[tuple[str, str, str], ...] = (
    ("a", "int4[]", "ARRAY(SELECT i * 1000 + j FROM generate_series(1, 100) AS j)"),
)
#: 1,024 bytes that look random (64 MD5 digests, so TOAST would not compress them anyway).
_BYTEA: tuple[tuple[str, str, str], ...] = (
    (
        "b",
        "bytea",
        "(SELECT decode(string_agg(md5(i || ':' || k), '' ORDER BY k), 'hex') "
        "FROM generate_series(1, 64) AS k)",
    ),
)
_PG_TYPE_SQL = (
    "select typname, typnamespace, typowner, typlen, typbyval, typcategory, typispreferred, "
    "typisdefined, typdelim, typrelid, typelem, typarray from pg_type "
    "where typtypmod = {0} and typisdefined = {1}"
)
#: Name and SQL type of each pg_type column (no table is created).
_PG_TYPE: tuple[tuple[str, str, str], ...] = tuple(
    (name, type_, "")
    for name, type_ in (
        ("typname", "name"),
        ("typnamespace", "oid"),
        ("typowner", "oid"),
        ("typlen", "int2"),
        ("typbyval", "bool"),
        ("typcategory", '"char"'),
        ("typispreferred", "bool"),
        ("typisdefined", "bool"),
        ("typdelim", '"char"'),
        ("typrelid", "oid"),
        ("typelem", "oid"),
        ("typarray", "oid"),
    )
)


def _insert_row(i: int) -> tuple[int, str, float]:
    return (i, f"row number {i}", i * 0.5)


#: (name, SQL type) of the columns `copy_in` copies into.
_COPY_IN: tuple[tuple[str, str], ...] = (
    ("a", "int4"),
    ("b", "text"),
    ("c", "float8"),
    ("d", "timestamptz"),
    ("e", "numeric"),
)
_EPOCH = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)


def _copy_in_row(i: int) -> tuple[int, str, float, datetime.datetime, decimal.Decimal]:
    # An aware datetime (timestamptz) and a Decimal with two decimal places (numeric).
    return (
        i,
        f"row number {i}",
        i * 0.5,
        _EPOCH + datetime.timedelta(seconds=i),
        decimal.Decimal(i).scaleb(-2),
    )


#: MagicStack pgbench's query 5 (copyfrom): its table `_test` and its one row, copied
#: 10,000 times per COPY.
_COPYFROM: tuple[tuple[str, str], ...] = (
    ("a", "int"),
    ("b", "int"),
    ("c", "int"),
    ("d", "text"),
    ("e", "float"),
    ("f", "int"),
    ("g", "text"),
)
_COPYFROM_ROW: tuple[Any, ...] = (10, 11, 10, "TESTTESTTEST", 10.333, 12341234, "123412341234")


#: MagicStack pgbench's queries (queries/*.json), run through each driver's pool; their
#: tables get the bench prefix (`_bytes` -> pgoxide_bench_pg_bytes, `_test` -> one table per
#: query).
_PG_BYTES = _PREFIX + "pg_bytes"
_PG_ARRAYS = _PREFIX + "pg_arrays"
_PG_COPYFROM = _PREFIX + "pg_copyfrom"
_PG_BATCH = _PREFIX + "pg_batch"
_PGBENCH_TEST_DDL = "(a int, b int, c int, d text, e float, f int, g text)"
_PGBENCH_WORKERS = 10


def _first_array_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return (tuple(row[0]),)


def _intarray_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(row[0])


def _bytea_value(i: int) -> bytes:
    return b"".join(hashlib.md5(f"{i}:{k}".encode()).digest() for k in range(1, 65))


def _bytea_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return (bytes(row[0]),)


def _pg_type_key(row: Sequence[Any]) -> tuple[Any, ...]:
    # Name, namespace and length identify the row; "char" columns differ in type by driver.
    return (row[0], row[1], row[3])


#: The delay the proxied workloads' proxy adds in each direction (their names say 2ms).
_LATENCY_MS = 2.0


def build_workloads(scale: float = 1.0) -> list[Workload]:
    """All workloads, in report order; ``scale`` multiplies every count (for the repeated
    fetches, the number of fetches; for `copyfrom`, the copies per connection, each of 10,000
    rows; 1.0 is the published configuration)."""

    def n(count: int) -> int:
        return max(1, round(count * scale))

    return [
        FetchWorkload(
            name="wide",
            description="SELECT * of 11 columns (int4, int8, float8, text, bool, timestamptz, "
            "numeric, uuid, date, int4[], jsonb)",
            unit="rows",
            count=n(100_000),
            table=_PREFIX + "wide",
            columns=_WIDE,
        ),
        FetchWorkload(
            name="wide_json",
            description="wide with its jsonb column decoded into dicts: pgoxide "
            "connect(parse_json=True), asyncpg set_type_codec('jsonb', decoder=json.loads); "
            "in wide both drivers return the JSON text as str",
            unit="rows",
            count=n(100_000),
            table=_PREFIX + "wide",
            columns=_WIDE,
            json_objects=True,
        ),
        FetchWorkload(
            name="ints",
            description="SELECT * of 5 int4 columns",
            unit="rows",
            count=n(200_000),
            table=_PREFIX + "ints",
            columns=_INTS,
        ),
        FetchWorkload(
            name="text",
            description="SELECT * of one text column (32 characters)",
            unit="rows",
            count=n(200_000),
            table=_PREFIX + "text",
            columns=_TEXT,
        ),
        SequentialWorkload(
            name="queries",
            description="SELECT $1::int + 1, one query at a time",
            unit="queries",
            count=n(5_000),
            template="SELECT {0}::int + 1",
        ),
        # `queries` with each driver's OpenTelemetry instrumentation on: the report's
        # overhead line compares the two.
        TracedSequentialWorkload(
            name="queries_otel",
            description="SELECT $1::int + 1, one query at a time (as in queries), with "
            "OpenTelemetry tracing on",
            unit="queries",
            count=n(5_000),
            template="SELECT {0}::int + 1",
            baseline="queries",
        ),
        # Spans alone, like for like with asyncpg's instrumentation (which has no metrics).
        TracedSequentialWorkload(
            name="queries_otel_spans",
            description="SELECT $1::int + 1, one query at a time (as in queries), with "
            "OpenTelemetry spans on and metrics off",
            unit="queries",
            count=n(5_000),
            template="SELECT {0}::int + 1",
            baseline="queries",
            metrics=False,
        ),
        ExecuteManyWorkload(
            name="executemany",
            description="INSERT (int4, text, float8) rows with executemany",
            unit="rows",
            count=n(20_000),
            table=_PREFIX + "insert",
            ddl="a int4, b text, c float8",
            make_row=_insert_row,
        ),
        RepeatedFetchWorkload(
            name="intarray",
            description="SELECT * of 100 rows of one int4[] column of 100 elements",
            unit="rows",
            count=100 * n(1_000),
            repetitions=n(1_000),
            template=f"SELECT * FROM {_PREFIX}intarray",
            table=_PREFIX + "intarray",
            columns=_INTARRAY,
            key=_intarray_key,
            expected=sorted(tuple(range(i * 1000 + 1, i * 1000 + 101)) for i in range(1, 101)),
        ),
        RepeatedFetchWorkload(
            name="pgtype",
            description="the pg_type catalogue query: select typname, ... , typarray from "
            "pg_type where typtypmod = $1 and typisdefined = $2, with -1 and true",
            unit="rows",
            count=0,  # rows per fetch x repetitions, once the server has told the rows
            repetitions=n(100),
            template=_PG_TYPE_SQL,
            args=(-1, True),
            columns=_PG_TYPE,
            key=_pg_type_key,
            reference="SELECT typname, typnamespace, typlen FROM pg_type "
            "WHERE typtypmod = $1 AND typisdefined = $2",
        ),
        RepeatedFetchWorkload(
            name="bytea",
            description="SELECT * of 100 rows of one bytea column of 1,024 bytes",
            unit="rows",
            count=100 * n(1_000),
            repetitions=n(1_000),
            template=f"SELECT * FROM {_PREFIX}bytea",
            table=_PREFIX + "bytea",
            columns=_BYTEA,
            key=_bytea_key,
            expected=sorted((_bytea_value(i),) for i in range(1, 101)),
        ),
        StreamWorkload(
            name="stream",
            description="SELECT of (int4, text) over generate_series, read through a cursor "
            "1,000 rows per round trip, no row kept",
            unit="rows",
            count=n(1_000_000),
            window=1000,
            columns=(("id", "int4", "i"), ("label", "text", "'row-' || i")),
        ),
        GatherWorkload(
            name="gather",
            description="SELECT $1::int + 1, independent calls on one connection, all in "
            "flight together where the driver allows it (asyncpg: one after another)",
            unit="queries",
            count=n(1_000),
            template="SELECT {0}::int + 1",
        ),
        # Through a proxy that adds 2 ms each way, as a nearby server over a network would:
        # each wait for the server now costs over 4 ms, which pipelining pays once per batch.
        # `queries_2ms` is the reference (every driver waits for each query); it has fewer
        # queries because each takes over 4 ms.
        SequentialWorkload(
            name="queries_2ms",
            description="SELECT $1::int + 1, one query at a time, through a proxy adding "
            "2 ms each way",
            unit="queries",
            count=n(200),
            template="SELECT {0}::int + 1",
            latency_ms=_LATENCY_MS,
        ),
        GatherWorkload(
            name="gather_2ms",
            description="SELECT $1::int + 1, independent calls on one connection as in "
            "gather, through a proxy adding 2 ms each way",
            unit="queries",
            count=n(1_000),
            template="SELECT {0}::int + 1",
            latency_ms=_LATENCY_MS,
        ),
        CopyInWorkload(
            name="copy_in",
            description="COPY FROM STDIN of (int4, text, float8, timestamptz, numeric) "
            "Python rows (aware datetimes, Decimals) with the driver's record copy into an "
            "emptied table",
            unit="rows",
            count=n(1_000_000),
            table=_PREFIX + "copy_in",
            columns=_COPY_IN,
            make_row=_copy_in_row,
        ),
        CopyOutWorkload(
            name="copy_out",
            description="COPY (SELECT i, 'row-' || i, i * 0.5 FROM generate_series) TO STDOUT "
            "in text format, each chunk to a coroutine sink that only counts bytes and lines",
            unit="rows",
            count=n(1_000_000),
            query=f"SELECT i, 'row-' || i, i * 0.5 FROM generate_series(1, {n(1_000_000)}) AS i",
        ),
        CopyRecordsOutWorkload(
            name="copy_records_out",
            description="every row of SELECT * of the 11 wide columns as row objects: pgoxide "
            "copy_records_from_query (binary COPY), psycopg binary COPY rows(); asyncpg runs "
            "fetch of the same query here, not COPY (it has no record COPY out), and so does "
            "psqlpy",
            unit="rows",
            count=n(1_000_000),
            table=_PREFIX + "wide1m",
            columns=_WIDE,
        ),
        ConcurrentCopyWorkload(
            name="copyfrom",
            description="MagicStack pgbench's copyfrom: COPY _test(a, b, c, d, e, f, g) FROM "
            "STDIN of 10,000 copies of one (int, int, int, text, float, int, text) row with "
            "the driver's record copy, on 10 connections at once",
            unit="rows",
            count=10 * n(5) * 10_000,
            connections=10,
            table=_PREFIX + "copyfrom",
            columns=_COPYFROM,
            row=_COPYFROM_ROW,
            rows_per_copy=10_000,
            copies=n(5),
        ),
        PoolFetchvalWorkload(
            name="pool_fetchval",
            description="pool.fetchval('SELECT $1::int + 1', i) (acquire, query, release) "
            "from 50 concurrent tasks, each making its calls one after another, on a pool of "
            "10 connections",
            unit="calls",
            count=50 * n(200),
            pool_size=10,
            template="SELECT {0}::int + 1",
            tasks=50,
        ),
        PoolAcquireWorkload(
            name="pool_acquire",
            description="async with pool.acquire() as conn: pass, one cycle after another",
            unit="cycles",
            count=n(10_000),
            pool_size=10,
        ),
        *_pgbench_workloads(n),
    ]


def _pgbench_workloads(n: Callable[[int], int]) -> list[Workload]:
    """MagicStack pgbench's 7 queries through each driver's pool, at concurrency 10; ``n``
    scales the operations per worker (chosen so that a timed run takes 1-3 s for asyncpg on
    the 2-core machine here)."""

    def pgbench(name: str, what: str, per_worker: int, **kwargs: Any) -> PoolPgbenchWorkload:
        return PoolPgbenchWorkload(
            name=f"pgbench_{name}",
            description=f"MagicStack pgbench's {name.replace('_', '-', 1)}: {what}",
            unit="ops",
            count=_PGBENCH_WORKERS * n(per_worker),
            pool_size=_PGBENCH_WORKERS,
            group="pgbench",
            workers=_PGBENCH_WORKERS,
            per_worker=n(per_worker),
            **kwargs,
        )

    row = _COPYFROM_ROW
    return [
        pgbench(
            "1_pg_type",
            "the pg_type query with -1 and true",
            PGBENCH_PER_WORKER["1_pg_type"],
            template=_PG_TYPE_SQL,
            args=(-1, True),
            key=_pg_type_key,
            reference="SELECT typname, typnamespace, typlen FROM pg_type "
            "WHERE typtypmod = $1 AND typisdefined = $2",
        ),
        pgbench(
            "2_generate_series",
            "SELECT i FROM generate_series(1, $1) AS i, with 1000",
            PGBENCH_PER_WORKER["2_generate_series"],
            template="SELECT i FROM generate_series(1, {0}) AS i",
            args=(1000,),
            expected=[(i,) for i in range(1, 1001)],
        ),
        pgbench(
            "3_large_object",
            f"SELECT * FROM {_PG_BYTES}: 100 rows of one bytea of 1,000 bytes",
            PGBENCH_PER_WORKER["3_large_object"],
            template=f"SELECT * FROM {_PG_BYTES}",
            table=_PG_BYTES,
            setup=(
                f"CREATE TABLE {_PG_BYTES}(b bytea); INSERT INTO {_PG_BYTES}(b) "
                "(SELECT repeat('a', 1000)::bytea FROM generate_series(1, 100));",
            ),
            key=_bytea_key,
            expected=[(b"a" * 1000,)] * 100,
        ),
        pgbench(
            "4_arrays",
            f"SELECT * FROM {_PG_ARRAYS}: 100 rows of one int[] of 100 elements",
            PGBENCH_PER_WORKER["4_arrays"],
            template=f"SELECT * FROM {_PG_ARRAYS}",
            table=_PG_ARRAYS,
            setup=(
                f"CREATE TABLE {_PG_ARRAYS}(a int[]); INSERT INTO {_PG_ARRAYS}(a) "
                "(SELECT (SELECT array_agg(i) FROM generate_series(1, 100) as s(i)) "
                "FROM generate_series(1, 100));",
            ),
            key=_first_array_key,
            expected=[(tuple(range(1, 101)),)] * 100,
        ),
        pgbench(
            "5_copyfrom",
            f"COPY {_PG_COPYFROM}(a, b, c, d, e, f, g) FROM STDIN of 10,000 copies of one "
            "(int, int, int, text, float, int, text) row, with the driver's record copy "
            "(the table is emptied before each run)",
            PGBENCH_PER_WORKER["5_copyfrom"],
            kind="copy",
            table=_PG_COPYFROM,
            setup=(f"CREATE TABLE {_PG_COPYFROM}{_PGBENCH_TEST_DDL};",),
            columns=_COPYFROM,
            row=row,
            rows_per_op=10_000,
        ),
        pgbench(
            "6_batch",
            f"INSERT INTO {_PG_BATCH} (a, b, c, d, e, f, g) VALUES ($1, ..., $7) with "
            "executemany of 1,000 copies of the same row (the table is emptied before each "
            "run)",
            PGBENCH_PER_WORKER["6_batch"],
            kind="executemany",
            template=f"INSERT INTO {_PG_BATCH} (a, b, c, d, e, f, g) VALUES "
            "({0}, {1}, {2}, {3}, {4}, {5}, {6})",
            table=_PG_BATCH,
            setup=(f"CREATE TABLE {_PG_BATCH}{_PGBENCH_TEST_DDL};",),
            row=row,
            rows_per_op=1_000,
        ),
        pgbench(
            "7_oneplusone",
            "SELECT 1 + 1",
            PGBENCH_PER_WORKER["7_oneplusone"],
            template="SELECT 1 + 1",
            expected=[(2,)],
        ),
    ]


#: Operations per worker per timed run of each pgbench query (times --scale), 10 workers:
#: about 2 s per timed run for asyncpg under asyncio on the 2-core machine here (measured at
#: --scale 0.25 and extrapolated).
PGBENCH_PER_WORKER: dict[str, int] = {
    "1_pg_type": 320,
    "2_generate_series": 700,
    "3_large_object": 1_200,
    "4_arrays": 400,
    "5_copyfrom": 30,
    "6_batch": 50,
    "7_oneplusone": 2_000,
}


_POOL = (
    "pool_fetchval",
    "pool_acquire",
    "pgbench_1_pg_type",
    "pgbench_2_generate_series",
    "pgbench_3_large_object",
    "pgbench_4_arrays",
    "pgbench_5_copyfrom",
    "pgbench_6_batch",
    "pgbench_7_oneplusone",
)

#: Named groups of workloads for ``--suite`` (report order is always build order).
SUITES: dict[str, tuple[str, ...]] = {
    "all": (
        "wide",
        "wide_json",
        "ints",
        "text",
        "queries",
        "queries_otel",
        "queries_otel_spans",
        "executemany",
        "intarray",
        "pgtype",
        "bytea",
        "stream",
        "gather",
        "queries_2ms",
        "gather_2ms",
        "copy_in",
        "copy_out",
        "copy_records_out",
        "copyfrom",
        *_POOL,
    ),
    "foundation": ("wide", "ints", "text", "queries", "executemany"),
    "types": ("wide", "wide_json", "intarray", "pgtype", "bytea"),
    "pipelining": ("queries", "gather", "queries_2ms", "gather_2ms", "stream"),
    "copy": ("copy_in", "copy_out", "copy_records_out", "copyfrom"),
    "pool": _POOL,
    "tracing": ("queries", "queries_otel", "queries_otel_spans"),
}
