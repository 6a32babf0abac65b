"""Connections: the query API (asyncpg's names and behaviour), the statement cache and type
codecs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import re
import warnings
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from typing import Any, Callable, Union

from . import _pgoxide, conninfo, introspection, tracing
from . import copy as _copy
from . import locks as _locks
from . import notifications as _notifications
from .codecs_api import CodecMethods
from .copy_api import CopyMethods
from .cursor import CursorFactory, Portal, Stream
from .exceptions import (
    ConnectionDoesNotExistError,
    DataError,
    InterfaceError,
    InterfaceWarning,
    InvalidCachedStatementError,
    InvalidSQLStatementNameError,
    PostgresError,
    PostgresMessage,
)
from .operations import OperationPath
from .pipeline import Pipeline
from .prepared_stmt import PreparedStatement
from .protocol import Protocol
from .statement_cache import StatementCache
from .transaction import Transaction
from .types import ServerVersion

Record = _pgoxide.Record

_log = logging.getLogger("pgoxide.connection")

#: How long :meth:`Connection.close` without a timeout waits for running queries to be
#: cancelled before it drops the connection.
_CLOSE_CANCEL_LIMIT = 10.0
#: Seconds a CancelRequest may take, from connecting to the server's closing the connection.
_CANCEL_REQUEST_LIMIT = 30.0

#: What :meth:`Connection.reset` (and a pool, for a session it cannot judge) runs to return
#: a session to its defaults, as asyncpg's reset query.
FULL_RESET = ("SELECT pg_advisory_unlock_all()", "CLOSE ALL", "UNLISTEN *", "RESET ALL")


def _is_stale(error: PostgresError) -> bool:
    """Whether a server error means a cached statement went stale: its plan must change
    result type, the server no longer has it (DISCARD ALL, a pooler switching server
    connections), or a type it was prepared with was dropped."""
    return isinstance(error, (InvalidCachedStatementError, InvalidSQLStatementNameError)) or (
        error.sqlstate == "XX000"
        and (error.message or "").startswith("cache lookup failed for type")
    )


# The most arguments a query can have: the protocol's counts are 16-bit and PostgreSQL reads
# them unsigned (libpq's PQ_QUERY_PARAM_MAX_LIMIT; asyncpg stops at 32767).
MAX_QUERY_ARGS = 65535


def _stale_in_transaction(cause: PostgresError) -> InvalidCachedStatementError:
    """The error for a stale cached statement inside a transaction, where no retry is safe."""
    error = InvalidCachedStatementError(
        "a cached prepared statement became invalid inside a transaction "
        f"({cause.message}): the schema or search_path changed since it was prepared. "
        "It has been dropped from the cache; roll back and retry the transaction."
    )
    error.sqlstate = cause.sqlstate or error.sqlstate
    return error


NotificationCallback = Callable[["Connection", int, str, str], Union[Awaitable[None], None]]
LogCallback = Callable[["Connection", PostgresMessage], Union[Awaitable[None], None]]
TerminationCallback = Callable[["Connection"], Union[Awaitable[None], None]]


_VERSION_RE = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(devel|alpha|beta|rc)(\d*))?")


def parse_server_version(text: str) -> ServerVersion:
    """Parses ``server_version`` (``'15.18 (Debian 15.18-0+deb12u1)'``, ``'18beta1'``)."""
    m = _VERSION_RE.match(text.strip())
    if m is None:
        raise InterfaceError(f"cannot parse server version {text!r}")
    major, minor, micro, level, serial = m.groups()
    major_n = int(major)
    if major_n >= 10:
        # Since PostgreSQL 10 the second number is the minor release.
        minor_n, micro_n = int(minor or 0), 0
    else:
        minor_n, micro_n = int(minor or 0), int(micro or 0)
    return ServerVersion(major_n, minor_n, micro_n, level or "final", int(serial or 0))


class ConnectionSettings:
    """The server's reported parameters (``server_version``, ``TimeZone``, ...) as attributes."""

    __slots__ = ("_params",)

    def __init__(self, params: dict[str, str]) -> None:
        self._params = params

    def __getattr__(self, name: str) -> str:
        try:
            return self._params[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<ConnectionSettings {self._params!r}>"


class ConnectionProxy:
    """Base of objects that stand for a connection (a pool's proxy): ``isinstance(proxy,
    Connection)`` is true for them, as in asyncpg."""

    __slots__ = ()


class _ConnectionMeta(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        return type.__instancecheck__(cls, instance) or isinstance(instance, ConnectionProxy)


class Connection(CodecMethods, CopyMethods, metaclass=_ConnectionMeta):
    """A connection to a PostgreSQL server. Create it with :func:`connect`.

    Calls may be made concurrently (``asyncio.gather`` on one connection, several tasks
    sharing it): they queue on the connection and are pipelined, each with its own Sync, so
    one call's error never affects another. They run on the server in the order they were
    made. While a :meth:`transaction` block is open, only calls made inside it run; calls of
    other tasks wait until it ends.
    """

    def __init__(
        self,
        protocol: Protocol,
        params: conninfo.ConnectParams,
        target: conninfo.Target,
        *,
        statement_cache_size: int,
        max_cached_statement_lifetime: float,
        max_cacheable_statement_size: int,
        command_timeout: float | None,
        record_class: type[Record] | None = None,
        tracer: tracing.Tracer | None = None,
        parse_json: bool = False,
        infinity: str = "max",
    ) -> None:
        self._check_record_class(record_class)
        self._record_class = record_class
        self._protocol = protocol
        self._session = protocol.session
        self._session.set_value_options(parse_json, infinity)
        self._loop = protocol.loop
        self._params = params
        self._target = target
        # CancelRequests go to the address this connection reached, as libpq's do.
        self._peer: Any = protocol.transport.get_extra_info("peername")  # type: ignore[union-attr]
        self._ops = OperationPath(protocol, command_timeout, self._send_cancel_request)
        self._statements = StatementCache(
            protocol.session,
            protocol.loop,
            size=statement_cache_size,
            lifetime=max_cached_statement_lifetime,
            max_cacheable=max_cacheable_statement_size,
        )
        self._names = itertools.count(1)
        self._copier = _copy.Copier(self._ops, self._statement, self._run_held)
        # Each kind of callback at most once (asyncpg keeps sets), called in the order added.
        self._listeners: dict[str, dict[NotificationCallback, None]] = {}
        self._log_listeners: dict[LogCallback, None] = {}
        self._termination_listeners: dict[TerminationCallback, None] = {}
        # Set by a pool (see pgoxide.pool): its hook for a connection lost, its record of
        # this connection, and effects to reset that were found before the reset ran.
        self._on_lost: Callable[[], None] | None = None
        self._pool_slot: Any = None
        # The pool's proxy while the connection is acquired: what listeners are given.
        self._proxy: Any = None
        self._pending_effects = 0
        # Session-level advisory locks held through advisory_lock(), by key.
        self._advisory_locks: dict[Any, int] = {}
        # The tracer (connect(tracer=), wrapped by the query loggers when there are any).
        self._tracer: tracing.Tracer | None = tracer
        self._own_tracer = tracer
        self._ops.tracer = tracer
        self._ops.server = tracing.Server(params.database, target.host, target.port)
        protocol.on_notice = self._on_notice
        protocol.on_notification = self._on_notification
        protocol.on_close = self._on_close

    # -- queries ----------------------------------------------------------------------------

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Execute an SQL command (or commands): returns the status of the last one (e.g.
        ``'INSERT 0 1'``).

        Without arguments the simple protocol is used, so ``query`` may hold several
        statements; with arguments it is one statement with ``$n`` parameters.
        """
        if args:
            _, tag = await self._execute(query, args, 0, timeout, None, "execute")
            return tag or ""
        session = self._session
        request = self._ops.request(
            lambda: session.simple_query(query), self._ops.deadline(timeout)
        )
        tracer = self._tracer
        try:
            if tracer is not None:
                event = self._query_event(tracer, "execute", query, (), timeout)
                return await tracing.traced(tracer, "query", event, request, _tag_outcome)  # type: ignore[no-any-return]
            return await request  # type: ignore[no-any-return]
        except PostgresError as e:
            if e.query is None:
                e.query = query
            raise

    async def fetch(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> list[Record]:
        """Runs ``query`` and returns all its rows."""
        rows, _ = await self._execute(query, args, 0, timeout, record_class)
        return rows  # type: ignore[no-any-return]

    async def fetchrow(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> Record | None:
        """Runs ``query`` and returns its first row, or None."""
        rows, _ = await self._execute(query, args, 1, timeout, record_class, "fetchrow")
        return rows[0] if rows else None

    async def fetchval(
        self, query: str, *args: Any, column: int | str = 0, timeout: float | None = None
    ) -> Any:
        """Runs ``query`` and returns one value of its first row, or None without rows."""
        rows, _ = await self._execute(query, args, 1, timeout, None, "fetchval")
        return rows[0][column] if rows else None

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        """Runs ``command`` once per argument tuple, pipelined with a single Sync.

        Outside a transaction block the batch is atomic: it runs in one implicit
        transaction, so an error anywhere leaves none of it applied. A row that cannot be
        encoded (or an exception from ``args``) raises before anything of its chunk is sent;
        if earlier chunks were already sent, the batch is made to fail on the server so
        nothing of it commits. Inside a transaction block, as in asyncpg, the chunks already
        sent then stay applied and the block stays usable. Once the server has failed the
        batch, no more rows are sent.
        """
        ops = self._ops
        deadline = ops.deadline(timeout)
        batch = ops.batch(lambda: self._statement(command, deadline), args, deadline)
        tracer = self._tracer
        if tracer is not None:
            event = self._query_event(tracer, "executemany", command, args, timeout)
            await tracing.traced(tracer, "query", event, batch)
        else:
            await batch

    async def fetchmany(
        self,
        query: str,
        args: Iterable[Sequence[Any]],
        *,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> list[Record]:
        """Runs ``query`` once per argument tuple and returns the rows of all, in one round
        trip and one implicit transaction, as asyncpg 0.30's (atomic like
        :meth:`executemany`)."""
        self._check_record_class(record_class)
        ops = self._ops
        deadline = ops.deadline(timeout)
        batch = ops.batch(
            lambda: self._statement(query, deadline),
            args,
            deadline,
            collect=True,
            record_class=record_class or self._record_class,
        )
        tracer = self._tracer
        if tracer is not None:
            event = self._query_event(tracer, "fetchmany", query, args, timeout)
            rows, _ = await tracing.traced(tracer, "query", event, batch, _rows_outcome)
        else:
            rows, _ = await batch
        return rows  # type: ignore[no-any-return]

    async def prepare(
        self,
        query: str,
        *,
        name: str | None = None,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> PreparedStatement:
        """Prepares ``query`` on the server and returns a :class:`PreparedStatement`, named
        ``name`` on the server if given (else a generated name)."""
        self._check_record_class(record_class)
        if name is not None and not isinstance(name, str):
            raise InterfaceError(f"the statement name must be a str, not {type(name).__name__}")
        ops = self._ops
        deadline = ops.deadline(timeout)
        tracer = self._tracer
        if tracer is not None:
            event = tracing.PrepareStart(query, ops.server)
            stmt = await tracing.traced(
                tracer, "prepare", event, self._prepare_now(query, name, deadline)
            )
        else:
            stmt = await self._prepare_now(query, name, deadline)
        return PreparedStatement(self, ops, query, stmt, record_class or self._record_class)

    async def _prepare_now(
        self, query: str, name: str | None, deadline: float | None
    ) -> _pgoxide.Statement:
        ops = self._ops
        await ops.take(deadline)
        try:
            return await self._prepare(query, deadline, cache=False, name=name)
        except PostgresError as e:
            if e.query is None:
                e.query = query
            raise
        finally:
            ops.release()

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        """A transaction block for ``async with``; nested blocks become savepoints.

        The block belongs to the task that starts it (and tasks started inside it): calls
        from other tasks wait until it ends instead of running inside it."""
        transaction = Transaction(self, self._ops, isolation, readonly, deferrable)
        self._ops.enter(transaction)
        return transaction

    def cursor(
        self,
        query: str,
        *args: Any,
        prefetch: int | None = None,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> CursorFactory:
        """A cursor over ``query``'s rows, as asyncpg's: ``async for row in conn.cursor(...)``
        (``prefetch`` rows per round trip, 50 by default), or ``cur = await conn.cursor(...)``
        for ``cur.fetch(n)``, ``cur.fetchrow()`` and ``cur.forward(n)``.

        Unlike asyncpg's, it also works outside a transaction block: see
        :mod:`pgoxide.cursor` for what other calls do meanwhile."""
        self._check_record_class(record_class)
        return CursorFactory(
            self._ops, lambda: self._portal(query, args, timeout, record_class), prefetch
        )

    def stream(
        self,
        query: str,
        *args: Any,
        window: int = 1000,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> Stream:
        """The rows of ``query`` as an async iterator, ``window`` rows per round trip. The
        next window is asked for when the consumer starts on one, so the server works while
        it consumes, and at most two windows are held for any result size. ``timeout``
        covers the whole stream. Leaving the loop early closes the portal; see
        :mod:`pgoxide.cursor` for what other calls do while a stream is open."""
        self._check_record_class(record_class)
        return Stream(self._portal(query, args, timeout, record_class), window)

    def _portal(
        self,
        query: str,
        args: Sequence[Any],
        timeout: float | None,
        record_class: type[Record] | None,
    ) -> Portal:
        ops = self._ops
        return Portal(
            ops,
            self._statement,
            query,
            args,
            record_class or self._record_class,
            ops.deadline(timeout),
        )

    def pipeline(self, *, atomic: bool = False, timeout: float | None = None) -> Pipeline:
        """Calls collected with ``async with conn.pipeline() as p`` and sent together.

        ``p.execute``/``fetch``/``fetchrow``/``fetchval``/``executemany`` return awaitables;
        they are sent when the block ends or one of them is awaited. By default each call has
        its own Sync and its own outcome (``p.results`` lists them by index); ``atomic=True``
        runs them all in one implicit transaction with one Sync. ``timeout`` covers the whole
        pipeline."""
        return Pipeline(self, self._ops, self._statement, atomic=atomic, timeout=timeout)

    def is_in_transaction(self) -> bool:
        """Whether the connection is inside a transaction block (possibly a failed one)."""
        return self._session.transaction_status != "I"

    async def _execute(
        self,
        query: str,
        args: Sequence[Any],
        limit: int,
        timeout: float | None,
        record_class: type[Record] | None,
        kind: str = "fetch",
        traced: bool = False,
    ) -> tuple[list[Record], str | None]:
        """Binds and executes ``query`` through the statement cache (``kind``: the public
        method, for a tracer; ``traced``: the tracer's hooks are already around this call).

        A cached statement can go stale when the schema changes. If its parameter types no
        longer fit the arguments, it is prepared again before anything is sent. If the server
        fails it before it was bound (so it never ran), then outside a transaction it is
        prepared again and the query retried once; inside one the error says what happened.
        """
        tracer = self._tracer
        if tracer is not None and not traced:
            event = self._query_event(tracer, kind, query, args, timeout)
            run = self._execute(query, args, limit, timeout, record_class, kind, True)
            return await tracing.traced(tracer, "query", event, run, _rows_outcome)  # type: ignore[no-any-return]
        if len(args) > MAX_QUERY_ARGS:
            # Before the statement is prepared: the server's counts are 16-bit.
            raise InterfaceError(f"the number of query arguments cannot exceed {MAX_QUERY_ARGS}")
        if record_class is None:
            record_class = self._record_class
        else:
            self._check_record_class(record_class)
        try:
            ops = self._ops
            deadline = ops.deadline(timeout)
            if not ops.try_take():
                await ops.take(deadline)
            stmt = self._statements.get(query)
            if stmt is not None:
                try:
                    # Encoding is synchronous and sends nothing: a DataError here is ours.
                    fut = ops.send(self._encode(stmt, args, limit, record_class))
                except DataError:
                    self._statements.evict(query, stmt)
                except BaseException:
                    ops.release()
                    raise
                else:
                    ops.release()
                    try:
                        return self._described(query, stmt, await ops.wait(fut, deadline))
                    except PostgresError as e:
                        if not getattr(e, "unexecuted", False):
                            raise
                        self._statements.evict(query, stmt)
                        if self.is_in_transaction():
                            if _is_stale(e):
                                raise _stale_in_transaction(e) from e
                            raise
                    await ops.take(deadline)
            try:
                stmt = await self._prepare(query, deadline)
                fut = ops.send(self._encode(stmt, args, limit, record_class))
            finally:
                ops.release()
            return self._described(query, stmt, await ops.wait(fut, deadline))
        except PostgresError as e:
            if e.query is None:
                e.query = query  # as asyncpg: the query the server's error is about
            raise

    def _query_event(
        self, tracer: tracing.Tracer, kind: str, query: str, args: Any, timeout: float | None
    ) -> tracing.QueryStart:
        server = self._ops.server
        if not tracer.capture_parameters:
            return tracing.QueryStart(kind, query, None, timeout, server)
        if not isinstance(args, (list, tuple)):
            args = None  # an iterator of executemany rows is not read twice
        return tracing.QueryStart(kind, query, args, timeout, server)

    def _encode(
        self,
        stmt: _pgoxide.Statement,
        args: Sequence[Any],
        limit: int,
        record_class: type[Record] | None,
    ) -> bytes:
        if stmt.name:
            return self._session.bind_execute(stmt, args, limit, record_class)
        # Unnamed: one request that parses it again from the kept description, so no named
        # statement is left on the server and a pooler may move us between requests.
        return self._session.parse_bind_execute(stmt, args, limit, record_class)

    def _described(
        self, query: str, stmt: _pgoxide.Statement, result: tuple[Any, ...]
    ) -> tuple[list[Record], str | None]:
        """A query's ``(rows, tag)``, keeping the statement's new description if it came with
        one."""
        if len(result) == 3:
            # The columns had changed: keep the new description for next time.
            rows, tag, redescribed = result
            self._statements.replace(query, stmt, redescribed)
            return rows, tag
        return result  # type: ignore[no-any-return]

    # -- statement cache and types ------------------------------------------------------------

    async def _statement(self, query: str, deadline: float | None) -> _pgoxide.Statement:
        """``query``'s statement, from the cache or prepared now (the caller holds the turn)."""
        return self._statements.get(query) or await self._prepare(query, deadline)

    async def _prepare(
        self,
        query: str,
        deadline: float | None,
        *,
        cache: bool = True,
        name: str | None = None,
    ) -> _pgoxide.Statement:
        """Prepares (and describes) ``query``, introspecting types the connection has not
        seen; the caller holds the turn.

        With ``statement_cache_size`` above 0 the statement is named and, unless it is a
        ``prepare()`` or too large, cached. With 0 it is unnamed and only its description is
        cached (client-side), so later executions take one round trip. A ``name`` given to
        ``prepare()`` is used as it is, whatever the cache size.
        """
        statements = self._statements
        cacheable = cache and name is None and statements.cacheable(query)
        if name is None:
            named = statements.names_statements and (cacheable or not cache)
            name = f"__pgoxide_{next(self._names)}__" if named else ""
        ops = self._ops
        result = await ops.wait(ops.send(self._session.prepare(name, query)), deadline)
        if isinstance(result, tuple):
            described, unknown = result
            await self._introspect(unknown, deadline)
            result = self._session.build_statement(described)
        if cacheable:
            statements.put(query, result)
        return result  # type: ignore[no-any-return]

    async def _introspect(self, oids: Sequence[int], deadline: float | None) -> None:
        """Looks up non-builtin types (and what they depend on) with one query; the caller
        holds the turn."""
        version = self.get_server_version()
        query = introspection.types_query(version.major * 10000)
        rows = await self._run_held(query, (list(oids),), deadline)
        self._session.add_types([tuple(r) for r in rows])

    async def _run_held(
        self, query: str, args: Sequence[Any], deadline: float | None
    ) -> list[Record]:
        """Runs ``query`` for a caller that holds the turn; returns its rows."""
        stmt = await self._statement(query, deadline)
        fut = self._ops.send(self._encode(stmt, args, 0, None))
        rows, _ = self._described(query, stmt, await self._ops.wait(fut, deadline))
        return rows

    def _check_record_class(self, record_class: type[Record] | None) -> None:
        if record_class is None or record_class is Record:
            return
        if not (isinstance(record_class, type) and issubclass(record_class, Record)):
            raise InterfaceError(
                f"record_class is expected to be a subclass of pgoxide.Record, got {record_class!r}"
            )
        # Rows are built without calling them, so a class that needs them would be surprised.
        own_new = record_class.__new__ is not Record.__new__
        if own_new or record_class.__init__ is not Record.__init__:
            raise InterfaceError(
                f"record_class must not redefine __new__ or __init__: {record_class!r}"
            )

    # -- cancellation -----------------------------------------------------------------------

    async def _send_cancel_request(self) -> None:
        """Sends a CancelRequest for this backend over a new connection to the same server."""
        packet = _pgoxide.cancel_request(self._session.backend_pid, self._session.backend_key)
        target, peer = self._target, self._peer
        if target.is_unix:
            connect = asyncio.open_unix_connection(peer or target.socket_path)
        elif peer:
            connect = asyncio.open_connection(peer[0], peer[1])
        else:
            connect = asyncio.open_connection(target.hostaddr or target.host, target.port)
        loop = self._loop
        # Bounded as a whole: to a peer that died, even the connect's SYNs vanish, and the
        # kernel retries them for minutes.
        deadline = loop.time() + _CANCEL_REQUEST_LIMIT
        try:
            reader, writer = await asyncio.wait_for(
                connect,
                min(self._params.connect_timeout or _CANCEL_REQUEST_LIMIT, _CANCEL_REQUEST_LIMIT),
            )
            try:
                writer.write(packet)
                # The server closes the connection once it has processed the request.
                await asyncio.wait_for(
                    _drain_and_read(writer, reader), max(deadline - loop.time(), 0)
                )
            finally:
                writer.close()
        except (OSError, asyncio.TimeoutError) as e:
            # The operation path sends it again while the query runs, and a caller whose
            # deadline passes meanwhile closes the connection: say why it may come to that.
            _log.warning(
                "CancelRequest for backend %s could not be delivered: %r",
                self._session.backend_pid,
                e,
            )

    # -- notifications, notices, termination ------------------------------------------------

    async def add_listener(self, channel: str, callback: NotificationCallback) -> None:
        """Calls ``callback(connection, pid, channel, payload)`` for each NOTIFY on ``channel``."""
        callbacks = self._listeners.get(channel)
        if callbacks is not None:
            callbacks[callback] = None
            return
        # Registered before LISTEN is awaited, so a call for the same channel meanwhile
        # adds to these callbacks instead of replacing them.
        callbacks = self._listeners[channel] = {callback: None}
        try:
            await self.execute(f"LISTEN {_quote_ident(channel)}")
        except BaseException:
            if list(callbacks) == [callback] and self._listeners.get(channel) is callbacks:
                del self._listeners[channel]
            else:
                callbacks.pop(callback, None)
            raise

    async def remove_listener(self, channel: str, callback: NotificationCallback) -> None:
        """Stops calling ``callback`` for ``channel``; UNLISTENs when none is left."""
        callbacks = self._listeners.get(channel)
        if not callbacks or callback not in callbacks:
            return
        del callbacks[callback]
        if not callbacks:
            del self._listeners[channel]
            await self.execute(f"UNLISTEN {_quote_ident(channel)}")

    def notifications(
        self, *channels: str, max_queued: int = 1000, overflow: str = "drop_oldest"
    ) -> _notifications.Notifications:
        """``async for n in conn.notifications("a", "b")``: each NOTIFY on the channels as a
        :class:`~pgoxide.notifications.Notification`, from a queue of at most ``max_queued``
        (``overflow``: ``"drop_oldest"``, counted in ``.dropped``, or ``"raise"``)."""
        return _notifications.Notifications(self, channels, max_queued, overflow)

    def add_query_logger(self, callback: Callable[[tracing.LoggedQuery], Any]) -> None:
        """Calls ``callback(LoggedQuery)`` after each query (asyncpg's query logger)."""
        loggers = self._tracer
        if not isinstance(loggers, tracing.QueryLoggers):
            loggers = tracing.QueryLoggers(self, self._own_tracer)
            self._tracer = self._ops.tracer = loggers
        loggers.callbacks.append(callback)

    def remove_query_logger(self, callback: Callable[[tracing.LoggedQuery], Any]) -> None:
        loggers = self._tracer
        if isinstance(loggers, tracing.QueryLoggers) and callback in loggers.callbacks:
            loggers.callbacks.remove(callback)
            if not loggers.callbacks:
                self._tracer = self._ops.tracer = self._own_tracer

    @contextlib.contextmanager
    def query_logger(self, callback: Callable[[tracing.LoggedQuery], Any]) -> Iterator[None]:
        """``with conn.query_logger(callback):`` logs the queries run inside the block."""
        self.add_query_logger(callback)
        try:
            yield
        finally:
            self.remove_query_logger(callback)

    def add_log_listener(self, callback: LogCallback) -> None:
        """Calls ``callback(connection, message)`` for each notice or warning the server sends."""
        self._log_listeners[callback] = None

    def remove_log_listener(self, callback: LogCallback) -> None:
        self._log_listeners.pop(callback, None)

    def add_termination_listener(self, callback: TerminationCallback) -> None:
        """Calls ``callback(connection)`` when the connection closes."""
        self._termination_listeners[callback] = None

    def remove_termination_listener(self, callback: TerminationCallback) -> None:
        self._termination_listeners.pop(callback, None)

    def _for_callbacks(self) -> Any:
        return self if self._proxy is None else self._proxy

    def _on_notification(self, pid: int, channel: str, payload: str) -> None:
        for cb in self._listeners.get(channel, ()):
            self._call_soon(cb, self._for_callbacks(), pid, channel, payload)

    def _on_notice(self, message: PostgresMessage) -> None:
        if self._own_tracer is not None:
            tracing.advise(self._own_tracer, "on_notice", message)
        for cb in self._log_listeners:
            self._call_soon(cb, self._for_callbacks(), message)

    def _on_close(self) -> None:
        self._statements.close()
        error = self._protocol.closed_error or ConnectionDoesNotExistError("connection closed")
        _log.debug(
            "connection to %s:%s (backend %s) closed: %s",
            self._target.host,
            self._target.port,
            self._session.backend_pid,
            error,
        )
        self._ops.connection_lost(error)
        for cb in self._termination_listeners:
            self._call_soon(cb, self._for_callbacks())
        if self._on_lost is not None:
            self._on_lost()

    # -- what a pool needs --------------------------------------------------------------------

    async def _ping(self, timeout: float | None) -> None:
        """One round trip (a lone Sync): fails if the connection is dead."""
        ops = self._ops
        await ops.request(self._session.sync, ops.deadline(timeout))

    def _warn_dangling_listeners(self) -> None:
        """Warns, as asyncpg does, when the connection goes back to its pool with listeners
        its user added (the pool drops them)."""
        for kind, count in (
            ("notification", sum(len(cbs) for cbs in self._listeners.values())),
            ("log", len(self._log_listeners)),
        ):
            if count:
                warnings.warn(
                    InterfaceWarning(
                        f"{self!r} is being released to the pool but has {count} active "
                        f"{kind} listener{'s' if count > 1 else ''}"
                    ),
                    stacklevel=3,
                )

    def _forget_callbacks(self) -> None:
        """Drops the listeners of the code that is releasing the connection."""
        self._listeners.clear()
        self._log_listeners.clear()
        self._termination_listeners.clear()

    def _release_advisory_locks(self) -> int:
        """Forgets the advisory locks still held through :meth:`advisory_lock` (the pool's
        reset releases them); returns how many there were."""
        count = sum(self._advisory_locks.values())
        self._advisory_locks.clear()
        return count

    def _advisory_lock_in_doubt(self) -> None:
        """An advisory lock call was abandoned: the lock may be held, so a pool must reset."""
        self._session.add_effects(_pgoxide.EFFECT_ADVISORY)

    async def _run_untracked(self, query: str, args: Sequence[Any], timeout: float | None) -> Any:
        """``fetchval`` whose statement does not count as a change of the session (the
        caller keeps account of what it changes, as advisory locks do)."""
        ops = self._ops
        deadline = ops.deadline(timeout)
        await ops.take(deadline)
        try:
            stmt = await self._statement(query, deadline)
            session = self._session
            before = session.take_effects()
            try:
                fut = ops.send(self._encode(stmt, args, 1, None))
            finally:
                session.take_effects()
                session.add_effects(before)
        finally:
            ops.release()
        rows, _ = self._described(query, stmt, await ops.wait(fut, deadline))
        return rows[0][0] if rows else None

    # -- advisory locks (see pgoxide.locks) ---------------------------------------------------

    def advisory_lock(
        self,
        key: _locks.Key,
        *,
        shared: bool = False,
        wait: bool = True,
        timeout: float | None = None,
    ) -> _locks.AdvisoryLock:
        """A session-level advisory lock: ``async with conn.advisory_lock(key):`` waits for
        it (up to ``timeout``) and releases it at the end; with ``wait=False`` it is tried
        once and ``async with`` gives whether it was acquired. Locks a connection still
        holds when it goes back to a pool are reported and released."""
        return _locks.AdvisoryLock(self, key, shared=shared, wait=wait, timeout=timeout)

    def try_advisory_lock(
        self, key: _locks.Key, *, shared: bool = False, timeout: float | None = None
    ) -> _locks.AdvisoryLock:
        """``advisory_lock(key, wait=False)``: ``async with ... as acquired``."""
        return _locks.AdvisoryLock(self, key, shared=shared, wait=False, timeout=timeout)

    async def advisory_xact_lock(
        self, key: _locks.Key, *, shared: bool = False, wait: bool = True
    ) -> bool:
        """Takes a transaction-level advisory lock (released when the transaction block
        ends); with ``wait=False`` tries once. Returns whether it is held."""
        return await _locks.advisory_xact_lock(self, key, shared=shared, wait=wait)

    def _call_soon(self, cb: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            result = cb(*args)
            if inspect.isawaitable(result):
                self._ops.spawn(result)

        self._loop.call_soon(run)

    # -- lifecycle and introspection --------------------------------------------------------

    async def close(self, *, timeout: float | None = None) -> None:
        """Closes the connection gracefully; safe to call more than once.

        As in asyncpg, queries still running are cancelled first (their callers get
        ``QueryCanceledError``), then Terminate is sent. ``timeout`` bounds the whole close
        (without one, the cancellation is given at most 10 s); past it the connection is
        dropped."""
        protocol = self._protocol
        if protocol.is_closed:
            return
        transport = protocol.transport
        assert transport is not None
        loop = self._loop
        deadline = loop.time() + (timeout if timeout is not None else _CLOSE_CANCEL_LIMIT)
        try:
            # One bound for the CancelRequests too: to a peer that died, each can take long.
            await asyncio.wait_for(self._cancel_in_flight(), deadline - loop.time())
        except asyncio.TimeoutError:
            transport.abort()
            return
        if protocol.is_closed:
            return
        protocol.flush()
        protocol.write(self._session.terminate())
        transport.close()
        remaining = None if timeout is None else max(deadline - loop.time(), 0)
        try:
            await asyncio.wait_for(protocol.wait_closed(), remaining)
        except asyncio.TimeoutError:
            transport.abort()

    async def _cancel_in_flight(self) -> None:
        protocol = self._protocol
        while protocol.in_flight and not protocol.is_closed:
            await self._send_cancel_request()
            await protocol.wait_completion()

    def terminate(self) -> None:
        """Closes the connection at once, without telling the server."""
        if self._protocol.transport is not None:
            self._protocol.abort(ConnectionDoesNotExistError("connection was terminated"))

    def is_closed(self) -> bool:
        return self._protocol.is_closed

    def get_server_pid(self) -> int:
        """Process id of the server backend serving this connection."""
        return self._session.backend_pid

    def get_server_version(self) -> ServerVersion:
        return parse_server_version(self._session.server_parameters.get("server_version", ""))

    def get_protocol_version(self) -> tuple[int, int]:
        """``(major, minor)`` of the frontend/backend protocol in use: ``(3, 0)``, or
        ``(3, 2)`` (PostgreSQL 18+, cancel keys longer than 4 bytes) when
        ``max_protocol_version=3.2`` (or ``latest``) asked for it and the server has it."""
        return self._session.protocol_version

    @property
    def auth_method(self) -> str | None:
        """How the client authenticated: ``'password'`` (cleartext), ``'md5'``,
        ``'scram-sha-256'`` or ``'scram-sha-256-plus'`` (bound to the TLS channel); None when
        the server asked for no password (trust, cert, peer)."""
        return self._protocol.auth_method

    def get_reset_query(self) -> str:
        """The statements :meth:`reset` runs: release advisory locks, close cursors, stop
        listening and reset every setting."""
        return "".join(f"{sql};\n" for sql in FULL_RESET)

    async def reset(self, *, timeout: float | None = None) -> None:
        """Returns the session to its defaults, as asyncpg's ``reset()``: rolls back an open
        transaction, runs :meth:`get_reset_query`, and forgets the listeners."""
        self._forget_callbacks()
        self._release_advisory_locks()
        query = self.get_reset_query()
        if self.is_in_transaction():
            query = "ROLLBACK;\n" + query
        await self.execute(query, timeout=timeout)
        self._session.take_effects()

    async def reload_schema_state(self) -> None:
        """Forgets the cached statements and the types looked up so far, so both are
        looked up again: call it after DDL changed a type this connection has used."""
        self._statements.clear()
        self._session.clear_types()

    def get_settings(self) -> ConnectionSettings:
        """The parameters the server reported (kept current as it reports changes)."""
        return ConnectionSettings(self._session.server_parameters)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else f"pid={self.get_server_pid()}"
        return f"<pgoxide.Connection {state}>"


def _rows_outcome(result: tuple[list[Record], str | None]) -> tuple[int | None, str | None]:
    rows, tag = result
    return len(rows), tag


def _tag_outcome(tag: str | None) -> tuple[int | None, str | None]:
    return None, tag


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _drain_and_read(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
    await writer.drain()
    await reader.read()
