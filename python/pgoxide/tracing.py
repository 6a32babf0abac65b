"""Tracing hooks: a :class:`Tracer` sees operations as pairs of calls.

``on_<what>_start(event)`` returns a context (anything), which ``on_<what>_end(context, end)``
receives with the outcome. ``<what>`` is ``connect``, ``query``, ``prepare``, ``pipeline``,
``fetch`` (a cursor or stream window), ``copy``, ``pool_acquire`` or ``pool_release``.
Start events are small objects with named fields; every end is an :class:`End` (elapsed
seconds, the error and its SQLSTATE, and what the operation returned).

Hooks run synchronously where the operation starts and ends, with no task of their own. A hook
that raises does not affect the operation: the error is logged once per tracer (logger
``pgoxide.tracing``). With no tracer, nothing is made or called per operation.

asyncpg's ``add_query_logger`` is built on the same path (:class:`LoggedQuery`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Callable, NamedTuple

_log = logging.getLogger("pgoxide.tracing")


class Server(NamedTuple):
    """Where an operation runs: the database, and the server's host and port."""

    database: str
    host: str
    port: int


class QueryStart:
    """A query starts: ``kind`` is ``execute``, ``fetch``, ``fetchrow``, ``fetchval``,
    ``executemany`` or ``fetchmany``; ``args`` only when the tracer's
    ``capture_parameters`` is true (else None); ``timeout`` as the caller gave it."""

    __slots__ = ("args", "kind", "query", "server", "timeout")

    def __init__(
        self,
        kind: str,
        query: str,
        args: Sequence[Any] | None,
        timeout: float | None = None,
        server: Server | None = None,
    ) -> None:
        self.kind = kind
        self.query = query
        self.args = args
        self.timeout = timeout
        self.server = server


class PrepareStart:
    """``Connection.prepare(query)`` starts."""

    __slots__ = ("query", "server")

    def __init__(self, query: str, server: Server | None = None) -> None:
        self.query = query
        self.server = server


class CopyStart:
    """A COPY starts: ``direction`` is ``in`` or ``out``; ``sql`` is the COPY statement when
    known at the start (else the table or query it copies)."""

    __slots__ = ("direction", "server", "sql")

    def __init__(self, direction: str, sql: str, server: Server | None = None) -> None:
        self.direction = direction
        self.sql = sql
        self.server = server


class FetchStart:
    """A window of a cursor or stream is awaited (one per window, never per row): the
    query and the portal's name. For a window a stream asked for ahead of time, the elapsed
    time is how long the consumer waited for it."""

    __slots__ = ("portal", "query", "server")

    def __init__(self, query: str, portal: str | None, server: Server | None = None) -> None:
        self.query = query
        self.portal = portal
        self.server = server


class PipelineStart:
    """``async with conn.pipeline()`` starts; its end's ``details["operations"]`` says how
    many calls it sent (each is also a query of its own)."""

    __slots__ = ("atomic", "server")

    def __init__(self, atomic: bool, server: Server | None = None) -> None:
        self.atomic = atomic
        self.server = server


class ConnectStart:
    """A connection attempt starts: the hosts it may try."""

    __slots__ = ("hosts",)

    def __init__(self, hosts: Sequence[str]) -> None:
        self.hosts = tuple(hosts)


class PoolAcquireStart:
    """``pool.acquire()`` starts: the pool's sizes and waiters at that moment."""

    __slots__ = ("idle", "size", "waiters")

    def __init__(self, size: int, idle: int, waiters: int) -> None:
        self.size = size
        self.idle = idle
        self.waiters = waiters


class PoolReleaseStart:
    """``pool.release()`` starts."""

    __slots__ = ()


class End:
    """How an operation ended: ``elapsed`` seconds, ``error`` (None on success) and its
    ``sqlstate`` when the server sent one, and what it returned: ``rows`` (a count),
    ``status`` (the command tag), and ``details`` (operation-specific: for connect the
    host, TLS and auth method; for a pool acquire ``waited``; for a release whether a reset
    was sent)."""

    __slots__ = ("details", "elapsed", "error", "rows", "sqlstate", "status")

    def __init__(
        self,
        elapsed: float,
        error: BaseException | None,
        rows: int | None = None,
        status: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.elapsed = elapsed
        self.error = error
        self.sqlstate: str | None = getattr(error, "sqlstate", None)
        self.rows = rows
        self.status = status
        self.details = details or {}


class Tracer:
    """Override the hooks you need; every one does nothing by default.

    Set ``capture_parameters = True`` to receive query arguments in :class:`QueryStart`
    (they are left out by default)."""

    capture_parameters = False

    def on_connect_start(self, event: ConnectStart) -> Any:
        return None

    def on_connect_end(self, context: Any, end: End) -> None:
        return None

    def on_query_start(self, event: QueryStart) -> Any:
        return None

    def on_query_end(self, context: Any, end: End) -> None:
        return None

    def on_prepare_start(self, event: PrepareStart) -> Any:
        return None

    def on_prepare_end(self, context: Any, end: End) -> None:
        return None

    def on_pipeline_start(self, event: PipelineStart) -> Any:
        return None

    def on_pipeline_end(self, context: Any, end: End) -> None:
        return None

    def on_fetch_start(self, event: FetchStart) -> Any:
        return None

    def on_fetch_end(self, context: Any, end: End) -> None:
        return None

    def on_copy_start(self, event: CopyStart) -> Any:
        return None

    def on_copy_end(self, context: Any, end: End) -> None:
        return None

    def on_pool_acquire_start(self, event: PoolAcquireStart) -> Any:
        return None

    def on_pool_acquire_end(self, context: Any, end: End) -> None:
        return None

    def on_pool_release_start(self, event: PoolReleaseStart) -> Any:
        return None

    def on_pool_release_end(self, context: Any, end: End) -> None:
        return None

    def on_leaked_advisory_locks(self, count: int) -> None:
        """A connection went back to a pool holding ``count`` advisory locks."""
        return None

    def on_cleanup_failed(self, what: str, error: BaseException) -> None:
        """A cleanup failed and the connection was closed instead: ``what`` is ``reset``
        (the reset on release to a pool) or ``close``."""
        return None

    def on_notice(self, message: Any) -> None:
        """The server sent a notice or warning (a ``PostgresLogMessage``)."""
        return None

    def on_insecure_auth(self, event: Any) -> None:
        """A cleartext password went over TCP without TLS (an ``AuthEvent``)."""
        return None

    def on_deprecated_auth(self, event: Any) -> None:
        """The server asked for MD5 (an ``AuthEvent``)."""
        return None


class LoggedQuery(NamedTuple):
    """What asyncpg's query loggers receive after each query."""

    query: str
    args: Sequence[Any]
    timeout: float | None
    elapsed: float
    exception: BaseException | None
    conn_addr: Any
    conn_params: Any


# The tracer of connections and pools made without one (set by an instrumentor).
_default: Tracer | None = None


def set_default_tracer(tracer: Tracer | None) -> None:
    """Makes ``tracer`` the tracer of every connection and pool created from now on without
    a ``tracer=`` of their own (None: no default)."""
    global _default
    _default = tracer


def default_tracer() -> Tracer | None:
    return _default


# Tracers whose hooks raised, so each is logged once.
_reported: set[int] = set()


def _hook_failed(tracer: Tracer, name: str, exc: BaseException) -> None:
    key = id(tracer)
    if key not in _reported:
        _reported.add(key)
        _log.error("tracer %r raised in %s; its errors are ignored", tracer, name, exc_info=exc)


def advise(tracer: Tracer, hook: str, *args: Any) -> None:
    """Calls the advisory hook ``hook`` with ``args``; a raising hook is ignored."""
    try:
        getattr(tracer, hook)(*args)
    except Exception as e:
        _hook_failed(tracer, hook, e)


def start(tracer: Tracer, what: str, event: Any) -> Any:
    """Calls ``tracer.on_<what>_start(event)``; a raising hook gives None."""
    try:
        return getattr(tracer, f"on_{what}_start")(event)
    except Exception as e:
        _hook_failed(tracer, f"on_{what}_start", e)
        return None


def end(tracer: Tracer, what: str, context: Any, result: End) -> None:
    """Calls ``tracer.on_<what>_end(context, result)``; a raising hook is ignored."""
    try:
        getattr(tracer, f"on_{what}_end")(context, result)
    except Exception as e:
        _hook_failed(tracer, f"on_{what}_end", e)


async def traced(
    tracer: Tracer,
    what: str,
    event: Any,
    operation: Awaitable[Any],
    outcome: Callable[[Any], tuple[int | None, str | None]] = lambda _: (None, None),
) -> Any:
    """Awaits ``operation`` between its start and end hooks; ``outcome(result)`` gives the
    end's ``(rows, status)``."""
    context = start(tracer, what, event)
    began = time.perf_counter()
    try:
        result = await operation
    except BaseException as e:
        end(tracer, what, context, End(time.perf_counter() - began, e))
        raise
    rows, status = outcome(result)
    end(tracer, what, context, End(time.perf_counter() - began, None, rows, status))
    return result


class QueryLoggers(Tracer):
    """The query loggers of one connection (``add_query_logger``) as a tracer, in front of
    the connection's own tracer if it has one."""

    capture_parameters = True

    def __init__(self, conn: Any, inner: Tracer | None) -> None:
        self.conn = conn
        self.inner = inner
        self.callbacks: list[Callable[[LoggedQuery], Any]] = []

    def on_query_start(self, event: QueryStart) -> Any:
        inner = self.inner
        context = None
        if inner is not None:
            hidden = event
            if not inner.capture_parameters:
                hidden = QueryStart(event.kind, event.query, None, event.timeout, event.server)
            context = start(inner, "query", hidden)
        return (event, context)

    def on_query_end(self, context: Any, end_: End) -> None:
        event, inner_context = context
        if self.inner is not None:
            end(self.inner, "query", inner_context, end_)
        conn = self.conn
        record = LoggedQuery(
            event.query,
            tuple(event.args or ()),
            event.timeout,
            end_.elapsed,
            end_.error,
            conn._peer,
            conn._params,
        )
        for callback in list(self.callbacks):
            conn._call_soon(callback, record)


def _delegate(name: str) -> Callable[..., Any]:
    def hook(self: QueryLoggers, *args: Any) -> Any:
        inner = self.inner
        return getattr(inner, name)(*args) if inner is not None else None

    hook.__name__ = name
    return hook


# The hooks other than the query's go to the connection's own tracer, if it has one.
for _name in [n for n in vars(Tracer) if n.startswith("on_") and not n.startswith("on_query")]:
    setattr(QueryLoggers, _name, _delegate(_name))
