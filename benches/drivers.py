"""The drivers under test, behind one small interface.

Each adapter calls its driver the way that driver's documentation recommends for speed, and
nothing more: asyncpg and pgoxide ``fetch``/``fetchval``/``executemany``; psycopg 3 an
``AsyncConnection`` with a ``binary=True`` cursor, the default tuple rows, ``%b`` parameters and
``cursor.executemany`` (pipelined by psycopg itself); psqlpy ``fetch(...).result(as_tuple=True)``
(with a list of parameters when there are any), ``fetch_val`` and ``execute_many``.  Many
independent queries on one connection (:meth:`Driver.concurrent`) go out together where the
driver allows it: pgoxide ``asyncio.gather``, psycopg its pipeline mode, psqlpy
``Transaction.pipeline``; asyncpg refuses concurrent calls, so it awaits them one by one.  COPY
goes through each driver's record copy where it has one (pgoxide and asyncpg
``copy_records_to_table`` and ``copy_from_query``, psycopg ``Copy.write_row`` / ``Copy.rows``
with ``set_types``); an optional operation a driver has no way to run (psqlpy's COPY) is not
overridden by its adapter, and the runner shows ``n/a`` for it (:meth:`Driver.cannot`).
Pools (``open_pool`` and the ``pool_*`` methods) are the driver's own: pgoxide's and asyncpg's
``create_pool(min_size=max_size=size)``, psqlpy's ``ConnectionPool``; psycopg's pool is a
separate package (psycopg_pool) that this adapter does not use (n/a).  A traced connection
(``open_traced``, for ``queries_otel``) has the driver's own OpenTelemetry instrumentation on:
pgoxide ``connect(uri, tracer=OpenTelemetryTracer(tracer_provider, meter_provider))``, asyncpg
``AsyncPGInstrumentor().instrument(tracer_provider=...)`` before connecting and
``uninstrument()`` after the workload; psycopg and psqlpy have none installed here (n/a).  The
timed paths call the driver directly; helpers used only around the timing (``execute``, ``scalar``,
``pool_backend_pids``) may be slower.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import importlib.metadata
import importlib.util
import json
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from telemetry import Telemetry

__all__ = ["DRIVERS", "REQUIRED", "Driver", "PoolOp", "Sink", "Target", "load_drivers"]

#: A COPY TO STDOUT destination: a coroutine function given each chunk of data.
Sink = Callable[[bytes], Awaitable[None]]

#: One operation through a pool (acquire, run, release), made by :meth:`Driver.pool_operation`:
#: the fetched rows, or None for a write.
PoolOp = Callable[[], Awaitable[Any]]


def _installed(module: str) -> bool:
    """Whether ``module`` (dotted) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


@dataclass(frozen=True)
class Target:
    """Where the server is; every driver connects over TCP with TLS disabled."""

    host: str
    port: int
    user: str
    database: str
    password: str | None = None

    def uri(self) -> str:
        """A ``postgresql://`` URI with ``sslmode=disable``, which every driver here accepts."""
        user = urllib.parse.quote(self.user, safe="")
        if self.password is not None:
            user += ":" + urllib.parse.quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        db = urllib.parse.quote(self.database, safe="")
        return f"postgresql://{user}@{host}:{self.port}/{db}?sslmode=disable"

    @classmethod
    def from_uri(cls, uri: str) -> Target:
        """Parse a ``postgresql://user[:password]@host[:port][/db]`` URI (TCP only).

        Any ``sslmode`` or other query parameter in it is ignored: TLS is always disabled.
        """
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError(
                f"--dsn must be a postgresql://user@host:port/db URI with a TCP host, not {uri!r}"
            )
        user = urllib.parse.unquote(parts.username or "") or os.environ.get("USER", "postgres")
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        database = urllib.parse.unquote(parts.path.lstrip("/")) or user
        return cls(parts.hostname, parts.port or 5432, user, database, password)


class Driver(abc.ABC):
    """One connection of one driver, and the few operations the workloads need."""

    name: ClassVar[str]
    distribution: ClassVar[str]
    module_name: ClassVar[str]
    usage: ClassVar[str]
    #: Why the driver has no way to run some of the optional operations (those of the methods
    #: after ``stream`` that its adapter does not override), shown in the notes.
    unsupported: ClassVar[Mapping[str, str]] = {}

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        #: The server process serving this connection, to read its CPU time (set by the
        #: runner after connecting).
        self.backend_pid: int | None = None
        #: More connections of the same driver, opened by the runner for a workload that
        #: uses several (``Workload.connections``) and closed after it; empty otherwise.
        self.peers: list[Driver] = []
        #: The driver's connection pool, opened by the runner (:meth:`open_pool`) for a
        #: workload that uses one (``Workload.pool_size``) and closed after it; else None.
        self.pool: Any = None
        #: The server processes of the pool's connections, read before each run of a pool
        #: workload (:meth:`pool_backend_pids`); empty without a pool.
        self.pool_pids: list[int] = []
        #: Whether :meth:`open_traced` has put a connection with OpenTelemetry on in place of
        #: this one (until :meth:`close_traced`).
        self.traced = False
        #: Whether :meth:`open_json` has put a connection that parses json into Python
        #: objects in place of this one (until :meth:`close_json`).
        self.json = False

    def server_pids(self) -> list[int]:
        """The server processes whose CPU time a run is charged: the pool's connections while
        a pool workload runs, else this connection's and its peers'."""
        if self.pool is not None:
            return list(self.pool_pids)
        pids = [self.backend_pid, *(p.backend_pid for p in self.peers)]
        return [pid for pid in pids if pid is not None]

    def cannot(self, operation: str) -> str | None:
        """Why this driver cannot run the optional ``operation`` (the name of one of the
        non-abstract methods below), or None if its adapter implements it."""
        if getattr(type(self), operation) is not getattr(Driver, operation):
            return None
        return self.unsupported.get(operation, f"{self.name} has no way to run {operation}")

    def version(self) -> str:
        """The installed version of the driver's distribution."""
        return importlib.metadata.version(self.distribution)

    def placeholders(self, n: int) -> list[str]:
        """The driver's parameter markers for ``n`` positional parameters."""
        return [f"${i}" for i in range(1, n + 1)]

    def adapt_rows(self, rows: list[tuple[Any, ...]]) -> Sequence[Sequence[Any]]:
        """Rows for :meth:`executemany` in the container type the driver documents."""
        return rows

    @abc.abstractmethod
    async def connect(self, target: Target) -> None:
        """Open the connection (TLS disabled)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str) -> Sequence[Any]:
        """Run ``sql`` and return all its rows as Python objects (timed)."""

    @abc.abstractmethod
    async def fetch_repeated(
        self, sql: str, args: Sequence[Any], n: int
    ) -> tuple[int, Sequence[Any]]:
        """Run ``sql`` with ``args`` ``n`` times, each fetch awaited before the next, every row
        materialised as Python objects; return the total row count and the last result
        (timed)."""

    @abc.abstractmethod
    async def sequential(self, sql: str, n: int) -> Any:
        """Run ``sql`` with parameter ``i`` for i in range(n), each awaited before the next,
        and return the last value (timed)."""

    @abc.abstractmethod
    async def concurrent(self, sql: str, n: int) -> list[Any]:
        """Run ``sql`` with parameter ``i`` for i in range(n) on this one connection, as
        independent calls, the fastest way the driver documents (all in flight together if
        it can, else one after another); return the n values in order.  A call that fails
        may leave its exception in its place (timed)."""

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per row, the driver's batched way, in one transaction (timed)."""

    @abc.abstractmethod
    async def stream(self, sql: str, window: int) -> tuple[int, int]:
        """Read every row of ``sql`` through the driver's cursor, ``window`` rows per round
        trip, keeping none; return the row count and the sum of the first column (timed)."""

    # Optional operations: an adapter overrides those its driver can run; the others raise,
    # and the runner leaves the driver out of the workloads that need them (n/a).

    async def copy_records_in(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """``COPY table (columns) FROM STDIN`` of ``rows`` of Python values, with the driver's
        record copy (``types``: the columns' SQL type names, for a driver that needs them)
        (timed)."""
        raise NotImplementedError(self.cannot("copy_records_in"))

    async def copy_out(self, query: str, sink: Sink) -> None:
        """``COPY (query) TO STDOUT`` in text format, each chunk of data awaited in ``sink``
        (as ``bytes``) (timed)."""
        raise NotImplementedError(self.cannot("copy_out"))

    async def copy_records_out(self, query: str, types: Sequence[str]) -> Sequence[Any]:
        """Every row of ``query`` as row objects, through the driver's record COPY out if it
        has one (``types``: the result columns' SQL type names, for a driver that needs them)
        (timed)."""
        raise NotImplementedError(self.cannot("copy_records_out"))

    # Tracing: an adapter that overrides open_traced overrides close_traced too.

    #: The histogram the driver's OpenTelemetry instrumentation records once per operation
    #: ("": it records no metrics).
    otel_metric: ClassVar[str] = ""

    async def open_traced(self, target: Target, telemetry: Telemetry) -> None:
        """Open a new connection with the driver's OpenTelemetry instrumentation on, sending
        spans (and metrics, if it has any) to ``telemetry``'s providers, and make it the one
        the timed methods use and :attr:`backend_pid` name, until :meth:`close_traced`; the
        connection opened by :meth:`connect` stays open, unused (untimed)."""
        raise NotImplementedError(self.cannot("open_traced"))

    async def close_traced(self) -> None:
        """Close the traced connection, turn the instrumentation off, and go back to the
        connection opened by :meth:`connect` (untimed)."""
        raise NotImplementedError(self.cannot("open_traced"))

    # JSON objects: an adapter that overrides open_json overrides close_json too.

    async def open_json(self, target: Target) -> None:
        """Open a new connection that decodes json and jsonb into Python objects (with
        ``json.loads`` or the driver's own parser) and make it the one the timed methods use
        and :attr:`backend_pid` name, until :meth:`close_json` (untimed)."""
        raise NotImplementedError(self.cannot("open_json"))

    async def close_json(self) -> None:
        """Close the connection of :meth:`open_json` and go back to the one opened by
        :meth:`connect` (untimed)."""
        raise NotImplementedError(self.cannot("open_json"))

    # Pools: an adapter that overrides open_pool overrides every pool_* method too.

    async def open_pool(self, target: Target, size: int) -> None:
        """Open the driver's pool of ``size`` connections (minimum and maximum both ``size``
        where the driver has a minimum) as :attr:`pool` (untimed)."""
        raise NotImplementedError(self.cannot("open_pool"))

    async def close_pool(self) -> None:
        """Close :attr:`pool` and set it to None (untimed)."""
        raise NotImplementedError(self.cannot("open_pool"))

    async def pool_backend_pids(self, size: int) -> list[int]:
        """Hold ``size`` connections of the pool at once, read each one's server process id,
        release them all; return the ids (untimed)."""
        raise NotImplementedError(self.cannot("open_pool"))

    def pool_fetchval(self) -> Callable[[str, Any], Awaitable[Any]]:
        """The pool's one-call ``fetchval``: called with (sql, value), it acquires a
        connection, runs ``sql`` with that one parameter, releases it and returns the value."""
        raise NotImplementedError(self.cannot("open_pool"))

    async def pool_acquire_release(self, n: int) -> int:
        """``n`` cycles of acquire and release of a pool connection with nothing run in
        between, each awaited before the next; return the cycles done (timed)."""
        raise NotImplementedError(self.cannot("open_pool"))

    def pool_operation(
        self, kind: str, sql: str, args: Sequence[Any], columns: Sequence[str] = ()
    ) -> PoolOp:
        """One operation through the pool: acquire a connection, run once, release.  ``kind``
        "fetch": ``sql`` with ``args``, every row fetched (and returned); "copy": the driver's
        record COPY of the rows ``args`` into the table ``sql``'s ``columns``; "executemany":
        ``sql`` once per row of ``args``, the driver's batched way.  Writes return None."""
        raise NotImplementedError(self.cannot("open_pool"))

    @abc.abstractmethod
    async def execute(self, sql: str) -> None:
        """Run a utility statement (untimed)."""

    @abc.abstractmethod
    async def scalar(self, sql: str) -> Any:
        """The first value of the first row of ``sql`` (untimed)."""


class _AsyncpgApi(Driver):
    """asyncpg's API, which pgoxide mirrors."""

    conn: Any
    #: The modules the driver's OpenTelemetry instrumentation needs, and the distribution
    #: that provides them (named when one is missing).
    otel_modules: ClassVar[tuple[str, ...]]
    otel_distribution: ClassVar[str]
    _untraced: tuple[Any, int | None] | None = None

    def cannot(self, operation: str) -> str | None:
        if operation == "open_traced" and not all(map(_installed, self.otel_modules)):
            return f"{self.otel_distribution} is not installed"
        return super().cannot(operation)

    async def _connect_traced(self, target: Target, telemetry: Telemetry) -> Any:
        """A new connection with the instrumentation on."""
        raise NotImplementedError

    def _untrace(self) -> None:
        """Turn off what :meth:`_connect_traced` turned on beyond its connection."""

    async def open_traced(self, target: Target, telemetry: Telemetry) -> None:
        conn = await self._connect_traced(target, telemetry)
        try:
            pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        except BaseException:
            try:
                conn.terminate()
            finally:
                self._untrace()
            raise
        self._untraced = (self.conn, self.backend_pid)
        self.conn, self.backend_pid, self.traced = conn, pid, True

    async def close_traced(self) -> None:
        if self._untraced is None:
            return
        traced = self.conn
        (self.conn, self.backend_pid), self._untraced = self._untraced, None
        self.traced = False
        try:
            await traced.close()
        except BaseException:
            traced.terminate()
            raise
        finally:
            self._untrace()

    async def _connect_json(self, target: Target) -> Any:
        """A new connection decoding json and jsonb into Python objects."""
        raise NotImplementedError

    _unjson: tuple[Any, int | None] | None = None

    async def open_json(self, target: Target) -> None:
        conn = await self._connect_json(target)
        try:
            pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        except BaseException:
            conn.terminate()
            raise
        self._unjson = (self.conn, self.backend_pid)
        self.conn, self.backend_pid, self.json = conn, pid, True

    async def close_json(self) -> None:
        if self._unjson is None:
            return
        parsing = self.conn
        (self.conn, self.backend_pid), self._unjson = self._unjson, None
        self.json = False
        try:
            await parsing.close()
        except BaseException:
            parsing.terminate()
            raise

    async def close(self) -> None:
        await self.conn.close()

    async def fetch_all(self, sql: str) -> Sequence[Any]:
        return await self.conn.fetch(sql)  # type: ignore[no-any-return]

    async def fetch_repeated(
        self, sql: str, args: Sequence[Any], n: int
    ) -> tuple[int, Sequence[Any]]:
        fetch = self.conn.fetch
        total = 0
        rows: Sequence[Any] = []
        for _ in range(n):
            rows = await fetch(sql, *args)
            total += len(rows)
        return total, rows

    async def sequential(self, sql: str, n: int) -> Any:
        fetchval = self.conn.fetchval
        value = None
        for i in range(n):
            value = await fetchval(sql, i)
        return value

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def stream(self, sql: str, window: int) -> tuple[int, int]:
        # asyncpg's cursors need a transaction.
        count = total = 0
        async with self.conn.transaction():
            async for row in self.conn.cursor(sql, prefetch=window):
                count += 1
                total += row[0]
        return count, total

    async def copy_records_in(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        await self.conn.copy_records_to_table(table, records=rows, columns=columns)

    async def copy_out(self, query: str, sink: Sink) -> None:
        await self.conn.copy_from_query(query, output=sink)

    async def open_pool(self, target: Target, size: int) -> None:
        self.pool = await self.module.create_pool(target.uri(), min_size=size, max_size=size)

    async def close_pool(self) -> None:
        pool, self.pool, self.pool_pids = self.pool, None, []
        if pool is None:
            return
        try:
            await pool.close()
        except BaseException:
            pool.terminate()
            raise

    async def pool_backend_pids(self, size: int) -> list[int]:
        pool = self.pool
        conns = [await pool.acquire() for _ in range(size)]
        try:
            return [int(await c.fetchval("SELECT pg_backend_pid()")) for c in conns]
        finally:
            for c in conns:
                await pool.release(c)

    def pool_fetchval(self) -> Callable[[str, Any], Awaitable[Any]]:
        return self.pool.fetchval  # type: ignore[no-any-return]

    async def pool_acquire_release(self, n: int) -> int:
        acquire = self.pool.acquire
        for _ in range(n):
            async with acquire():
                pass
        return n

    def pool_operation(
        self, kind: str, sql: str, args: Sequence[Any], columns: Sequence[str] = ()
    ) -> PoolOp:
        acquire = self.pool.acquire

        async def fetch() -> Any:
            async with acquire() as conn:
                return await conn.fetch(sql, *args)

        async def copy() -> None:
            async with acquire() as conn:
                await conn.copy_records_to_table(sql, records=args, columns=columns)

        async def executemany() -> None:
            async with acquire() as conn:
                await conn.executemany(sql, args)

        ops: dict[str, PoolOp] = {"fetch": fetch, "copy": copy, "executemany": executemany}
        return ops[kind]

    async def execute(self, sql: str) -> None:
        await self.conn.execute(sql)

    async def scalar(self, sql: str) -> Any:
        return await self.conn.fetchval(sql)


class Pgoxide(_AsyncpgApi):
    """pgoxide pipelines concurrent calls on one connection: ``asyncio.gather`` over the
    ``fetchval`` calls sends them together, each with its own Sync."""

    name = "pgoxide"
    distribution = "pgoxide"
    module_name = "pgoxide"
    usage = (
        "connect(uri); fetch / fetchval / executemany; gather: asyncio.gather of fetchval; "
        "copy: copy_records_to_table, copy_from_query(output=coroutine function), "
        "[r async for r in copy_records_from_query(sql)]; pool: create_pool(uri, min_size=10, "
        "max_size=10), pool.fetchval, async with pool.acquire() as conn: conn.fetch / "
        "copy_records_to_table / executemany; traced (queries_otel): a new connection, "
        "connect(uri, tracer=pgoxide.opentelemetry.OpenTelemetryTracer(tracer_provider, "
        "meter_provider)): a span and a db.client.operation.duration value per query"
    )
    otel_modules = ("pgoxide.opentelemetry", "opentelemetry.trace", "opentelemetry.metrics")
    otel_distribution = "opentelemetry-api (pgoxide[opentelemetry])"
    otel_metric = "db.client.operation.duration"

    def version(self) -> str:
        # Editable installs: say when the compiled core was built, to catch a stale build.
        ext = getattr(self.module, "_pgoxide", None)
        path = getattr(ext, "__file__", None)
        base = super().version()
        if not path:
            return base
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))
        return f"{base} (extension built {built})"

    async def connect(self, target: Target) -> None:
        self.conn = await self.module.connect(target.uri())

    async def _connect_json(self, target: Target) -> Any:
        # json and jsonb parsed in Rust (by default they are str, as in asyncpg).
        return await self.module.connect(target.uri(), parse_json=True)

    async def _connect_traced(self, target: Target, telemetry: Telemetry) -> Any:
        from pgoxide.opentelemetry import OpenTelemetryTracer

        tracer = OpenTelemetryTracer(telemetry.tracer_provider, telemetry.meter_provider)
        return await self.module.connect(target.uri(), tracer=tracer)

    async def close_pool(self) -> None:
        # Not pool.close(): in this build it leaves every idle connection open (its
        # _close_idle spawns a task per connection to close it, then terminate() cancels
        # those tasks before they run), so 10 server processes would be left per pool.  All
        # connections are idle here and closing is untimed, so terminate() is equivalent.
        pool, self.pool, self.pool_pids = self.pool, None, []
        if pool is not None:
            pool.terminate()

    async def stream(self, sql: str, window: int) -> tuple[int, int]:
        # No transaction needed: the portal lives in the implicit one.
        count = total = 0
        async for row in self.conn.stream(sql, window=window):
            count += 1
            total += row[0]
        return count, total

    async def concurrent(self, sql: str, n: int) -> list[Any]:
        fetchval = self.conn.fetchval
        # return_exceptions: wait for every call even if some fail, so that none is still
        # running on the connection when the next run starts.
        return await asyncio.gather(*[fetchval(sql, i) for i in range(n)], return_exceptions=True)

    async def copy_records_out(self, query: str, types: Sequence[str]) -> Sequence[Any]:
        # Binary COPY, decoded into Records in Rust a read at a time.
        return [r async for r in self.conn.copy_records_from_query(query)]


class Asyncpg(_AsyncpgApi):
    """asyncpg refuses a second call on a connection while one is running ("another
    operation is in progress"), so independent calls are awaited one after another."""

    name = "asyncpg"
    distribution = "asyncpg"
    module_name = "asyncpg"
    usage = (
        "connect(uri); fetch / fetchval / executemany; gather: fetchval one after another; "
        "copy: copy_records_to_table, copy_from_query(output=coroutine function); "
        "copy_records_out: fetch (asyncpg has no record COPY out); pool: as pgoxide "
        "(create_pool, pool.fetchval, async with pool.acquire()); traced (queries_otel): "
        "opentelemetry-instrumentation-asyncpg's AsyncPGInstrumentor().instrument("
        "tracer_provider=...) (it patches asyncpg's classes, so every asyncpg connection while "
        "it is on), then a new connection; uninstrument() after the workload: a span per "
        "query, no metrics"
    )
    otel_modules = ("opentelemetry.instrumentation.asyncpg",)
    otel_distribution = "opentelemetry-instrumentation-asyncpg"

    async def connect(self, target: Target) -> None:
        self.conn = await self.module.connect(target.uri())

    async def _connect_json(self, target: Target) -> Any:
        # asyncpg's documented way: a codec with the standard library's (C-accelerated) json.
        conn = await self.module.connect(target.uri())
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, schema="pg_catalog", encoder=json.dumps, decoder=json.loads
            )
        return conn

    async def _connect_traced(self, target: Target, telemetry: Telemetry) -> Any:
        # It wraps methods of asyncpg's classes (Connection.fetchval, ...): from here until
        # _untrace, every asyncpg connection of this process is traced, but only the traced
        # connection runs queries meanwhile (the runner's other asyncpg connections are idle).
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
        try:
            return await self.module.connect(target.uri())
        except BaseException:
            self._untrace()
            raise

    def _untrace(self) -> None:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]

    async def concurrent(self, sql: str, n: int) -> list[Any]:
        fetchval = self.conn.fetchval
        return [await fetchval(sql, i) for i in range(n)]

    async def copy_records_out(self, query: str, types: Sequence[str]) -> Sequence[Any]:
        # asyncpg can copy records in but only raw data out: its fetch of the same query is
        # what pgoxide's record COPY out is compared with.
        return await self.conn.fetch(query)  # type: ignore[no-any-return]


class Psycopg(Driver):
    """psycopg 3.  An ``AsyncConnection`` serialises its operations with a lock, so
    ``asyncio.gather`` over ``execute`` calls runs them one at a time; its documented way to
    have many queries in flight is pipeline mode (``async with conn.pipeline()``), which
    :meth:`concurrent` uses: one ``conn.execute`` (a cursor) per query inside the block, the
    values read after it.  psycopg sends one Sync for the block, so one failing query would
    abort the rest (pgoxide sends a Sync per call).  ``cursor.executemany(returning=True)``
    is faster still, but it runs one statement over many parameter sets, as the
    ``executemany`` workload and asyncpg's ``fetchmany`` do, not independent calls."""

    name = "psycopg"
    distribution = "psycopg"
    module_name = "psycopg"
    usage = (
        "AsyncConnection(autocommit=True), cursor(binary=True), tuple rows, %b params; "
        "cursor.executemany in conn.transaction(); gather: conn.execute(binary=True) per "
        "query in async with conn.pipeline(), fetchone after the block; copy in: "
        "cursor.copy('COPY t (cols) FROM STDIN (FORMAT BINARY)'), set_types, write_row per "
        "row; copy_out: cursor.copy('COPY (q) TO STDOUT'), async for over the copy, each "
        "chunk (a memoryview) to the sink as bytes; copy_records_out: cursor.copy('COPY (q) "
        "TO STDOUT (FORMAT BINARY)'), set_types, async for over rows(); pool: n/a; "
        "traced: n/a"
    )
    unsupported = {
        "open_traced": "opentelemetry-instrumentation-psycopg is not installed here"
        if not _installed("opentelemetry.instrumentation.psycopg")
        else "opentelemetry-instrumentation-psycopg is installed, but this harness has no "
        "adapter for it yet",
        "open_pool": "psycopg's pool is a separate package, psycopg_pool (psycopg[pool]), "
        "which is not installed here"
        if importlib.util.find_spec("psycopg_pool") is None
        else "psycopg_pool is installed, but this harness has no adapter for its "
        "AsyncConnectionPool yet",
    }

    conn: Any
    cur: Any

    def version(self) -> str:
        pq = self.module.pq
        libpq = pq.version()
        return f"{super().version()} (impl {pq.__impl__}, libpq {libpq // 10000}.{libpq % 10000})"

    def placeholders(self, n: int) -> list[str]:
        return ["%b"] * n

    async def connect(self, target: Target) -> None:
        self.conn = await self.module.AsyncConnection.connect(target.uri(), autocommit=True)
        self.cur = self.conn.cursor(binary=True)

    async def close(self) -> None:
        await self.cur.close()
        await self.conn.close()

    async def fetch_all(self, sql: str) -> Sequence[Any]:
        cur = self.cur
        await cur.execute(sql)
        return await cur.fetchall()  # type: ignore[no-any-return]

    async def fetch_repeated(
        self, sql: str, args: Sequence[Any], n: int
    ) -> tuple[int, Sequence[Any]]:
        cur = self.cur
        execute = cur.execute
        fetchall = cur.fetchall
        params = tuple(args) or None
        total = 0
        rows: Sequence[Any] = []
        for _ in range(n):
            await execute(sql, params)
            rows = await fetchall()
            total += len(rows)
        return total, rows

    async def sequential(self, sql: str, n: int) -> Any:
        cur = self.cur
        execute = cur.execute
        fetchone = cur.fetchone
        row = None
        for i in range(n):
            await execute(sql, (i,))
            row = await fetchone()
        return row[0] if row is not None else None

    async def concurrent(self, sql: str, n: int) -> list[Any]:
        conn = self.conn
        execute = conn.execute
        # In pipeline mode a cursor keeps only its last result: one cursor per query.
        async with conn.pipeline():
            cursors = [await execute(sql, (i,), binary=True) for i in range(n)]
        values = []
        for cur in cursors:
            row = await cur.fetchone()
            values.append(row[0] if row is not None else None)
        return values

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.conn.transaction():
            await self.cur.executemany(sql, rows)

    async def stream(self, sql: str, window: int) -> tuple[int, int]:
        # A server-side (named) cursor, which needs a transaction; itersize rows per FETCH.
        count = total = 0
        conn = self.conn
        async with conn.transaction(), conn.cursor(name="pgoxide_bench", binary=True) as cur:
            cur.itersize = window
            await cur.execute(sql)
            async for row in cur:
                count += 1
                total += row[0]
        return count, total

    async def copy_records_in(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        # Binary COPY, with the column types given so psycopg picks the right dumpers.
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        async with self.cur.copy(sql) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                await write_row(row)

    async def copy_out(self, query: str, sink: Sink) -> None:
        async with self.cur.copy(f"COPY ({query}) TO STDOUT") as copy:
            async for data in copy:
                # A memoryview of one row; the sink takes bytes, as asyncpg's does.
                await sink(bytes(data))

    async def copy_records_out(self, query: str, types: Sequence[str]) -> Sequence[Any]:
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        async with self.cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(types)
            async for row in copy.rows():
                append(row)
        return rows

    async def execute(self, sql: str) -> None:
        await self.conn.execute(sql)

    async def scalar(self, sql: str) -> Any:
        cur = await self.conn.execute(sql)
        row = await cur.fetchone()
        return row[0] if row is not None else None


class Psqlpy(Driver):
    """psqlpy.  Its documented way to run many independent queries together is
    ``Transaction.pipeline`` (tokio-postgres pipelining), which :meth:`concurrent` calls the
    way the documentation's example does: on ``connection.transaction()`` without
    ``begin()``, so no BEGIN/COMMIT round trips are added and the queries run in autocommit
    like the other drivers'.  (``asyncio.gather`` over ``fetch_val`` on one connection also
    overlaps the calls, but is not documented and was slower here.)"""

    name = "psqlpy"
    distribution = "psqlpy"
    module_name = "psqlpy"
    usage = (
        "connect(dsn=uri, ssl_mode=Disable); fetch(...).result(as_tuple=True) / fetch_val / "
        "execute_many (list of lists); gather: transaction().pipeline([(sql, [i]), ...]) "
        "without begin(), result(as_tuple=True) of each; copy_records_out: its fetch (no "
        "record COPY out); copy_in, copyfrom, copy_out: n/a; pool: ConnectionPool(dsn=uri, "
        "max_db_pool_size=10, ssl_mode=Disable) (default recycling: Fast, no reset), "
        "async with pool.acquire() as conn: conn.fetch_val / fetch(...).result(as_tuple=True) "
        "/ execute_many; pool copy: n/a; traced: n/a"
    )
    unsupported = {
        "open_traced": "psqlpy has no OpenTelemetry instrumentation built in, and none is "
        "installed here (there is no opentelemetry-instrumentation package for it; the "
        "third-party otlp-psqlpy is not installed)",
        # psqlpy 0.13.1's copy_records_to_table polls its COPY sink on the event loop's
        # thread holding the GIL and blocks on the sink channel's mutex, while a tokio thread
        # holds that mutex and waits for the GIL to wake the coroutine: once the channel is
        # full the process hangs, and since the loop's thread is blocked no timeout fires.
        "copy_records_in": "psqlpy 0.13.1's copy_records_to_table deadlocks (the event "
        "loop's thread waits on its COPY channel's lock while a tokio thread holding it "
        "waits for the GIL; seen with one copy of 40,000 rows and with 10 concurrent copies "
        "of 10,000), which no timeout can stop, so it is not run; its binary_copy_to_table "
        "takes pre-encoded binary COPY data, not Python records",
        "copy_out": "psqlpy has no COPY TO STDOUT (only COPY FROM STDIN: "
        "binary_copy_to_table and copy_records_to_table)",
    }

    conn: Any

    def adapt_rows(self, rows: list[tuple[Any, ...]]) -> Sequence[Sequence[Any]]:
        # execute_many is documented as taking list[list[Any]].
        return [list(r) for r in rows]

    async def connect(self, target: Target) -> None:
        self.conn = await self.module.connect(
            dsn=target.uri(), ssl_mode=self.module.SslMode.Disable
        )

    async def close(self) -> None:
        self.conn.close()

    async def fetch_all(self, sql: str) -> Sequence[Any]:
        result = await self.conn.fetch(sql)
        return result.result(as_tuple=True)  # type: ignore[no-any-return]

    async def fetch_repeated(
        self, sql: str, args: Sequence[Any], n: int
    ) -> tuple[int, Sequence[Any]]:
        fetch = self.conn.fetch
        params = list(args) or None
        total = 0
        rows: Sequence[Any] = []
        for _ in range(n):
            rows = (await fetch(sql, params)).result(as_tuple=True)
            total += len(rows)
        return total, rows

    async def sequential(self, sql: str, n: int) -> Any:
        fetch_val = self.conn.fetch_val
        value = None
        for i in range(n):
            value = await fetch_val(sql, [i])
        return value

    async def concurrent(self, sql: str, n: int) -> list[Any]:
        results = await self.conn.transaction().pipeline([(sql, [i]) for i in range(n)])
        return [r.result(as_tuple=True)[0][0] for r in results]

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # psqlpy wraps the pipelined batch in BEGIN/COMMIT itself.
        await self.conn.execute_many(sql, rows)

    async def stream(self, sql: str, window: int) -> tuple[int, int]:
        # Its cursor yields a QueryResult per array_size rows, inside a transaction.
        count = total = 0
        conn = self.conn
        async with conn.transaction(), conn.cursor(sql, array_size=window) as cur:
            async for result in cur:
                for row in result.result(as_tuple=True):
                    count += 1
                    total += row[0]
        return count, total

    async def copy_records_out(self, query: str, types: Sequence[str]) -> Sequence[Any]:
        # No record COPY out: its fetch of the same query, as in fetch_all.
        return await self.fetch_all(query)

    async def open_pool(self, target: Target, size: int) -> None:
        # No minimum size: it opens connections on demand (pool_backend_pids, run before
        # every run of a pool workload, opens all of them).  The default recycling method
        # (Fast) only checks that a returned connection is open: no reset query.
        self.pool = self.module.ConnectionPool(
            dsn=target.uri(), max_db_pool_size=size, ssl_mode=self.module.SslMode.Disable
        )

    async def close_pool(self) -> None:
        pool, self.pool, self.pool_pids = self.pool, None, []
        if pool is not None:
            pool.close()

    async def pool_backend_pids(self, size: int) -> list[int]:
        conns = [await self.pool.connection() for _ in range(size)]
        try:
            return [int(await c.fetch_val("SELECT pg_backend_pid()")) for c in conns]
        finally:
            for c in conns:
                c.close()  # back to the pool

    def pool_fetchval(self) -> Callable[[str, Any], Awaitable[Any]]:
        # No pool-level fetch_val: acquire, fetch_val, release.
        acquire = self.pool.acquire

        async def fetchval(sql: str, value: Any) -> Any:
            async with acquire() as conn:
                return await conn.fetch_val(sql, [value])

        return fetchval

    async def pool_acquire_release(self, n: int) -> int:
        acquire = self.pool.acquire
        for _ in range(n):
            async with acquire():
                pass
        return n

    def pool_operation(
        self, kind: str, sql: str, args: Sequence[Any], columns: Sequence[str] = ()
    ) -> PoolOp:
        acquire = self.pool.acquire
        params = list(args) or None

        async def fetch() -> Any:
            async with acquire() as conn:
                return (await conn.fetch(sql, params)).result(as_tuple=True)

        async def executemany() -> None:
            async with acquire() as conn:
                await conn.execute_many(sql, args)

        if kind == "copy":
            raise NotImplementedError(self.cannot("copy_records_in"))
        ops: dict[str, PoolOp] = {"fetch": fetch, "executemany": executemany}
        return ops[kind]

    async def execute(self, sql: str) -> None:
        await self.conn.execute_batch(sql)

    async def scalar(self, sql: str) -> Any:
        return await self.conn.fetch_val(sql)


#: Every driver, in report order.
DRIVERS: dict[str, type[Driver]] = {d.name: d for d in (Pgoxide, Asyncpg, Psycopg, Psqlpy)}

#: Drivers without which the benchmark refuses to run (the ratios are to asyncpg).
REQUIRED = ("pgoxide", "asyncpg")


def load_drivers(names: Sequence[str]) -> tuple[list[Driver], dict[str, str]]:
    """Import the named drivers; return the loaded ones and, for the others, why not."""
    loaded: list[Driver] = []
    missing: dict[str, str] = {}
    for name in names:
        cls = DRIVERS[name]
        try:
            module = importlib.import_module(cls.module_name)
        except ImportError as e:
            missing[name] = f"not installed ({e})"
            continue
        loaded.append(cls(module))
    return loaded, missing
