"""Connections: establishing them and the query API (asyncpg's names and behaviour)."""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import re
import ssl as ssl_module
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Callable, NamedTuple, Union

from . import _pgoxide, conninfo, tls
from .exceptions import (
    ClientConfigurationError,
    ConnectionDoesNotExistError,
    InterfaceError,
    PostgresError,
    PostgresLogMessage,
)
from .protocol import Protocol, TLSNegotiation
from .transaction import Transaction

Record = _pgoxide.Record

# SQLSTATE cannot_connect_now: the server is starting up or shutting down; try the next host.
_CANNOT_CONNECT_NOW = "57P03"
# executemany sends its batch in chunks of about this size, awaiting the socket in between.
_BATCH_CHUNK = 256 * 1024

NotificationCallback = Callable[["Connection", int, str, str], Union[Awaitable[None], None]]
LogCallback = Callable[["Connection", PostgresLogMessage], Union[Awaitable[None], None]]
TerminationCallback = Callable[["Connection"], Union[Awaitable[None], None]]


class ServerVersion(NamedTuple):
    """The server's version, as asyncpg reports it."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int


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


class Connection:
    """A connection to a PostgreSQL server. Create it with :func:`connect`.

    One operation runs at a time; starting another while one is awaited raises
    :class:`InterfaceError`, as in asyncpg.
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
    ) -> None:
        self._protocol = protocol
        self._session = protocol.session
        self._loop = protocol.loop
        self._params = params
        self._target = target
        self._cache: collections.OrderedDict[str, _pgoxide.Statement] = collections.OrderedDict()
        # Expiry timers of cached statements (max_cached_statement_lifetime).
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._cache_size = statement_cache_size
        self._cache_lifetime = max_cached_statement_lifetime
        self._max_cacheable = max_cacheable_statement_size
        self._command_timeout = command_timeout
        self._names = itertools.count(1)
        self._busy = False
        # Set when an operation was abandoned (cancelled or timed out): the next one waits for
        # it to finish so a late CancelRequest cannot hit the wrong query.
        self._abandoned: asyncio.Future[None] | None = None
        self._listeners: dict[str, list[NotificationCallback]] = {}
        self._log_listeners: list[LogCallback] = []
        self._termination_listeners: list[TerminationCallback] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._top_transaction: Transaction | None = None
        protocol.on_notice = self._on_notice
        protocol.on_notification = self._on_notification
        protocol.on_close = self._on_close

    # -- queries ----------------------------------------------------------------------------

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Runs ``query`` and returns the status of its last command (e.g. ``'INSERT 0 1'``).

        Without arguments the simple protocol is used, so ``query`` may hold several
        statements; with arguments it is one statement with ``$n`` parameters.
        """
        self._enter()
        try:
            if self._abandoned is not None:
                await self._drain()
            if not args:
                return await self._wait(
                    self._protocol.send(self._session.simple_query(query)), timeout
                )  # type: ignore[no-any-return]
            stmt = self._cached(query) or await self._prepare(query, timeout)
            _, tag = await self._wait(
                self._protocol.send(self._session.bind_execute(stmt, args)), timeout
            )
            return tag or ""
        finally:
            self._busy = False

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Record]:
        """Runs ``query`` and returns all its rows."""
        rows, _ = await self._execute(query, args, 0, timeout)
        return rows  # type: ignore[no-any-return]

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Record | None:
        """Runs ``query`` and returns its first row, or None."""
        rows, _ = await self._execute(query, args, 1, timeout)
        return rows[0] if rows else None

    async def fetchval(
        self, query: str, *args: Any, column: int | str = 0, timeout: float | None = None
    ) -> Any:
        """Runs ``query`` and returns one value of its first row, or None without rows."""
        rows, _ = await self._execute(query, args, 1, timeout)
        return rows[0][column] if rows else None

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        """Runs ``command`` once per argument tuple, pipelined with a single Sync.

        The batch is atomic: it runs in one implicit transaction (or the current one), so an
        error anywhere leaves none of it applied. A row that cannot be encoded raises before
        anything of its chunk is sent; if earlier chunks were already sent, the batch is
        made to fail on the server so nothing of it commits.
        """
        self._enter()
        try:
            if self._abandoned is not None:
                await self._drain()
            stmt = self._cached(command) or await self._prepare(command, timeout)
            rows = iter(args)
            data, more = self._session.executemany(stmt, rows, _BATCH_CHUNK, True)
            fut = self._protocol.send(data)
            try:
                while more:
                    await self._protocol.writable()
                    data, more = self._session.executemany(stmt, rows, _BATCH_CHUNK, False)
                    self._protocol.write(data)
            except BaseException:
                # Never leave a half-sent batch: end it so the server rolls it back.
                if more and not self._protocol.is_closed:
                    self._protocol.write(self._session.abort_batch())
                self._abandon(fut)
                raise
            await self._wait(fut, timeout)
        finally:
            self._busy = False

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        """A transaction block for ``async with``; nested blocks become savepoints."""
        return Transaction(self, isolation, readonly, deferrable)

    def is_in_transaction(self) -> bool:
        """Whether the connection is inside a transaction block (possibly a failed one)."""
        return self._session.transaction_status != "I"

    async def _execute(
        self, query: str, args: tuple[Any, ...], limit: int, timeout: float | None
    ) -> tuple[list[Record], str | None]:
        # The hot path of fetch*: kept flat (no helper coroutines without a timeout).
        self._enter()
        try:
            if self._abandoned is not None:
                await self._drain()
            stmt = self._cached(query) or await self._prepare(query, timeout)
            fut = self._protocol.send(self._session.bind_execute(stmt, args, limit))
            if timeout is None and self._command_timeout is None:
                try:
                    return await fut  # type: ignore[no-any-return]
                except asyncio.CancelledError:
                    self._abandon(fut)
                    raise
            return await self._wait(fut, timeout)  # type: ignore[no-any-return]
        finally:
            self._busy = False

    # -- statement cache --------------------------------------------------------------------

    def _cached(self, query: str) -> _pgoxide.Statement | None:
        stmt = self._cache.get(query)
        if stmt is not None:
            self._cache.move_to_end(query)
        return stmt

    async def _prepare(self, query: str, timeout: float | None) -> _pgoxide.Statement:
        cacheable = self._cache_size > 0 and len(query) <= self._max_cacheable
        name = f"__pgoxide_{next(self._names)}__" if cacheable else ""
        stmt: _pgoxide.Statement = await self._wait(
            self._protocol.send(self._session.prepare(name, query)), timeout
        )
        if cacheable:
            self._cache[query] = stmt
            if self._cache_lifetime:
                self._expiry[query] = self._loop.call_later(
                    self._cache_lifetime, self._expire, query, stmt
                )
            while len(self._cache) > self._cache_size:
                self._evict(next(iter(self._cache)))
        return stmt

    def _expire(self, query: str, stmt: _pgoxide.Statement) -> None:
        if self._cache.get(query) is stmt:
            self._evict(query)

    def _evict(self, query: str) -> None:
        stmt = self._cache.pop(query)
        timer = self._expiry.pop(query, None)
        if timer is not None:
            timer.cancel()
        # The Close rides with the next request instead of costing a round trip.
        self._session.close_statement(stmt.name)

    # -- operation plumbing -----------------------------------------------------------------

    def _enter(self) -> None:
        if self._protocol.is_closed:
            raise ConnectionDoesNotExistError("connection is closed")
        if self._busy:
            raise InterfaceError("cannot perform operation: another operation is in progress")
        self._busy = True

    async def _wait(self, fut: asyncio.Future[Any], timeout: float | None) -> Any:
        if timeout is None:
            timeout = self._command_timeout
        handle = None
        if timeout is not None:
            handle = self._loop.call_later(timeout, self._timed_out, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            self._abandon(fut)
            raise
        finally:
            if handle is not None:
                handle.cancel()

    def _timed_out(self, fut: asyncio.Future[Any]) -> None:
        if not fut.done():
            fut.set_exception(asyncio.TimeoutError())
            self._abandon(fut)

    def _abandon(self, fut: asyncio.Future[Any]) -> None:
        """The caller stopped waiting for an operation still running on the server: ask the
        server to cancel it, and make the next operation wait until it has finished."""
        if self._protocol.is_closed or self._abandoned is not None:
            return
        self._abandoned = self._spawn(self._cancel_and_drain())

    async def _cancel_and_drain(self) -> None:
        try:
            await self._send_cancel_request()
        finally:
            await self._protocol.wait_idle()

    async def _drain(self) -> None:
        abandoned = self._abandoned
        if abandoned is not None:
            try:
                await asyncio.shield(abandoned)
            finally:
                if self._abandoned is abandoned and abandoned.done():
                    self._abandoned = None

    async def _send_cancel_request(self) -> None:
        """Sends a CancelRequest for this backend over a new connection to the same server."""
        packet = _pgoxide.cancel_request(self._session.backend_pid, self._session.backend_key)
        target = self._target
        try:
            if target.is_unix:
                reader, writer = await asyncio.open_unix_connection(target.socket_path)
            else:
                reader, writer = await asyncio.open_connection(
                    target.hostaddr or target.host, target.port
                )
            writer.write(packet)
            await writer.drain()
            # The server closes the connection once it has processed the request.
            await asyncio.wait_for(reader.read(), 30)
            writer.close()
        except (OSError, asyncio.TimeoutError):
            # Best effort: the operation then simply runs to completion.
            pass

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = self._loop.create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- notifications, notices, termination ------------------------------------------------

    async def add_listener(self, channel: str, callback: NotificationCallback) -> None:
        """Calls ``callback(connection, pid, channel, payload)`` for each NOTIFY on ``channel``."""
        if channel not in self._listeners:
            await self.execute(f"LISTEN {_quote_ident(channel)}")
            self._listeners[channel] = []
        self._listeners[channel].append(callback)

    async def remove_listener(self, channel: str, callback: NotificationCallback) -> None:
        """Stops calling ``callback`` for ``channel``; UNLISTENs when none is left."""
        callbacks = self._listeners.get(channel)
        if not callbacks or callback not in callbacks:
            return
        callbacks.remove(callback)
        if not callbacks:
            del self._listeners[channel]
            await self.execute(f"UNLISTEN {_quote_ident(channel)}")

    def add_log_listener(self, callback: LogCallback) -> None:
        """Calls ``callback(connection, message)`` for each notice or warning the server sends."""
        self._log_listeners.append(callback)

    def remove_log_listener(self, callback: LogCallback) -> None:
        if callback in self._log_listeners:
            self._log_listeners.remove(callback)

    def add_termination_listener(self, callback: TerminationCallback) -> None:
        """Calls ``callback(connection)`` when the connection closes."""
        self._termination_listeners.append(callback)

    def remove_termination_listener(self, callback: TerminationCallback) -> None:
        if callback in self._termination_listeners:
            self._termination_listeners.remove(callback)

    def _on_notification(self, pid: int, channel: str, payload: str) -> None:
        for cb in self._listeners.get(channel, ()):
            self._call_soon(cb, self, pid, channel, payload)

    def _on_notice(self, message: PostgresLogMessage) -> None:
        for cb in self._log_listeners:
            self._call_soon(cb, self, message)

    def _on_close(self) -> None:
        for cb in self._termination_listeners:
            self._call_soon(cb, self)

    def _call_soon(self, cb: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            result = cb(*args)
            if inspect.isawaitable(result):
                self._spawn(result)

        self._loop.call_soon(run)

    # -- lifecycle and introspection --------------------------------------------------------

    async def close(self, *, timeout: float | None = None) -> None:
        """Closes the connection gracefully (Terminate); safe to call more than once."""
        if self._protocol.is_closed:
            return
        transport = self._protocol.transport
        assert transport is not None
        self._protocol.write(self._session.terminate())
        transport.close()
        try:
            await asyncio.wait_for(self._protocol.wait_closed(), timeout)
        except asyncio.TimeoutError:
            transport.abort()

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


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def connect(
    dsn: str | None = None,
    *,
    timeout: float | None = 60.0,
    statement_cache_size: int = 100,
    max_cached_statement_lifetime: float = 300.0,
    max_cacheable_statement_size: int = 15 * 1024,
    command_timeout: float | None = None,
    ssl: ssl_module.SSLContext | str | bool | None = None,
    password: str | Callable[[], str | Awaitable[str]] | None = None,
    **kwargs: Any,
) -> Connection:
    """Opens a connection, with libpq's connection-string grammar and defaults.

    ``dsn`` is a ``postgresql://`` URI or a ``key=value`` string; keyword arguments are libpq
    keywords (``host``, ``port``, ``dbname``/``database``, ``user``, ``sslmode``,
    ``application_name``, ``connect_timeout``, ``max_message_size``, ...) or asyncpg's
    options (``server_settings``, ``ssl``, ``statement_cache_size``, ``command_timeout``, ...).
    An unknown keyword is an error. ``timeout`` bounds the whole attempt; ``connect_timeout``
    bounds each host.
    """
    if callable(password):
        result = password()
        password = await result if inspect.isawaitable(result) else result
    ssl_context: ssl_module.SSLContext | None = None
    if isinstance(ssl, ssl_module.SSLContext):
        ssl_context = ssl
    elif ssl is True:
        ssl_context = ssl_module.create_default_context()
    elif ssl is False:
        kwargs["sslmode"] = "disable"
    elif isinstance(ssl, str):
        kwargs["sslmode"] = ssl
    elif ssl is not None:
        raise TypeError(f"ssl must be an SSLContext, a bool or an sslmode string, not {ssl!r}")
    params = conninfo.resolve(dsn, password=password, **kwargs)
    encoding = params.startup.get("client_encoding", "UTF8")
    if encoding.upper().replace("-", "") not in ("UTF8", "UNICODE"):
        raise ClientConfigurationError(
            f"client_encoding {encoding!r} is not supported: pgoxide always uses UTF8"
        )
    options = dict(
        statement_cache_size=statement_cache_size,
        max_cached_statement_lifetime=max_cached_statement_lifetime,
        max_cacheable_statement_size=max_cacheable_statement_size,
        command_timeout=command_timeout,
    )
    attempt = _connect_any(params, ssl_context, options)
    if timeout is None:
        return await attempt
    return await asyncio.wait_for(attempt, timeout)


async def _connect_any(
    params: conninfo.ConnectParams,
    ssl_context: ssl_module.SSLContext | None,
    options: dict[str, Any],
) -> Connection:
    """Tries each host in order; an authentication failure is not retried on other hosts."""
    failures: list[tuple[conninfo.Target, BaseException]] = []
    for target in params.targets:
        try:
            attempt = _connect_target(target, params, ssl_context, options)
            if params.connect_timeout:
                return await asyncio.wait_for(attempt, params.connect_timeout)
            return await attempt
        except (OSError, asyncio.TimeoutError) as exc:
            failures.append((target, exc))
        except PostgresError as exc:
            if exc.sqlstate != _CANNOT_CONNECT_NOW:
                raise
            failures.append((target, exc))
    if len(failures) == 1:
        raise failures[0][1]
    detail = "; ".join(f"{_describe(t)}: {e or type(e).__name__}" for t, e in failures)
    raise OSError(f"could not connect to any host: {detail}")


def _describe(target: conninfo.Target) -> str:
    if target.is_unix:
        return target.socket_path
    return f"{target.host}:{target.port}"


async def _connect_target(
    target: conninfo.Target,
    params: conninfo.ConnectParams,
    ssl_context: ssl_module.SSLContext | None,
    options: dict[str, Any],
) -> Connection:
    loop = asyncio.get_running_loop()
    if target.is_unix:
        # sslmode does not apply to Unix sockets (libpq).
        transport, _ = await loop.create_unix_connection(asyncio.Protocol, target.socket_path)
        use_tls = False
    else:
        if ssl_context is not None:
            context, mandatory = ssl_context, True
        else:
            context, mandatory = tls.client_context(params.settings)
        transport, use_tls = await _open_tcp(loop, target, context, mandatory)
    try:
        password = target.password.encode() if target.password is not None else None
        # Every text value is decoded as UTF-8, whatever the database's encoding.
        startup = {**params.startup, "client_encoding": "UTF8"}
        session = _pgoxide.Session(
            params.user,
            params.database,
            list(startup.items()),
            password,
            params.max_message_size,
            use_tls,
            None,
            params.settings.get("channel_binding", "prefer"),
        )
        protocol = Protocol(session, loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        await protocol.send(session.startup())
    except BaseException:
        transport.abort()
        raise
    return Connection(protocol, params, target, **options)


async def _open_tcp(
    loop: asyncio.AbstractEventLoop,
    target: conninfo.Target,
    context: ssl_module.SSLContext | None,
    mandatory: bool,
) -> tuple[asyncio.Transport, bool]:
    """Connects and, when TLS is wanted, negotiates it with SSLRequest on the same socket."""
    address = target.hostaddr or target.host
    if context is None:
        transport, _ = await loop.create_connection(asyncio.Protocol, address, target.port)
        return transport, False
    transport, negotiation = await loop.create_connection(
        lambda: TLSNegotiation(loop), address, target.port
    )
    try:
        transport.write(_pgoxide.ssl_request())
        answer = await negotiation.answer
        if answer == b"S":
            tls_transport = await loop.start_tls(
                transport, negotiation, context, server_hostname=target.host
            )
            assert tls_transport is not None
            return tls_transport, True
        if answer == b"N":
            if mandatory:
                raise ConnectionError("server does not support SSL, but SSL was required")
            return transport, False
        # An 'E' answer comes from a pre-7.4 server or an attacker; it is never shown.
        raise ConnectionError("server responded to SSLRequest with an unexpected answer")
    except BaseException:
        transport.abort()
        raise
