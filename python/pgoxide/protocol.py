"""The asyncio protocol: feeds received bytes to the Rust session and resolves one future per
completed operation."""

from __future__ import annotations

import asyncio
import collections
import socket
from typing import Any, Callable

from . import _pgoxide
from .exceptions import (
    ConnectionDoesNotExistError,
    InterfaceError,
    InternalClientError,
    PipelineAbortedError,
    PostgresError,
    PostgresLogMessage,
    PostgresMessage,
)

# Kinds of the items Session.feed() returns (defined in rust/pgoxide-py/src/session/items.rs).
_DONE = _pgoxide.ITEM_DONE
_SERVER_ERROR = _pgoxide.ITEM_SERVER_ERROR
_CLIENT_ERROR = _pgoxide.ITEM_CLIENT_ERROR
_NOTICE = _pgoxide.ITEM_NOTICE
_NOTIFICATION = _pgoxide.ITEM_NOTIFICATION
_SEND = _pgoxide.ITEM_SEND
_SERVER_ERROR_UNEXECUTED = _pgoxide.ITEM_SERVER_ERROR_UNEXECUTED
_AUTH = _pgoxide.ITEM_AUTH
_REPLICATION = _pgoxide.ITEM_REPLICATION
_REPLICATION_STARTED = _pgoxide.ITEM_REPLICATION_STARTED
_ABORTED = _pgoxide.ITEM_ABORTED
_COPY_IN = _pgoxide.ITEM_COPY_IN
_COPY_DATA = _pgoxide.ITEM_COPY_DATA
_COPY_ROWS = _pgoxide.ITEM_COPY_ROWS
_COPY_ITEMS = (_COPY_IN, _COPY_DATA, _COPY_ROWS)


# Size of the receive buffer the transport reads into (asyncio's own read size).
_RECV_BUFFER_SIZE = 256 * 1024


class Protocol(asyncio.BufferedProtocol):
    """One connection's byte stream. Operations complete in the order they were sent.

    A BufferedProtocol: the transport reads into one buffer kept for the connection's
    lifetime, instead of allocating (and for asyncio's 256 KiB reads, mapping and unmapping)
    a new bytes object per read.
    """

    def __init__(self, session: _pgoxide.Session, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self.loop = loop
        self._recv_buffer = memoryview(bytearray(_RECV_BUFFER_SIZE))
        self.transport: asyncio.Transport | None = None
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        # Resolved when the oldest operation in flight completes (see `wait_completion`).
        self._completed: asyncio.Future[None] | None = None
        self._write_resumed: asyncio.Future[None] | None = None
        # Authentication in progress: bytes go to the session in a worker thread, in order.
        self._authenticating = True
        self._received: collections.deque[bytes] = collections.deque()
        self._worker: asyncio.Future[Any] | None = None
        # connection_lost's argument, when it came while a worker was feeding.
        self._lost_while_feeding: list[Exception | None] = []
        # Requests written during this tick, sent together at its end (see `send`).
        self._out: list[bytes] = []
        self._lost: asyncio.Future[None] = loop.create_future()
        # Why the connection ended, once it has.
        self.closed_error: BaseException | None = None
        self.on_notice: Callable[[PostgresMessage], None] | None = None
        self.on_notification: Callable[[int, str, str], None] | None = None
        self.on_close: Callable[[], None] | None = None
        # The password method the session answered ('password', 'md5', ...), and a hook.
        self.auth_method: str | None = None
        self.on_auth: Callable[[str], None] | None = None
        # A running replication stream's consumer (see pgoxide.replication).
        self.on_replication: Callable[[list[Any]], None] | None = None
        self.on_replication_started: Callable[[], None] | None = None
        # Who takes the COPY items of an operation in flight, by its future (see `receive_copy`).
        self._copy_receivers: dict[asyncio.Future[Any], Callable[[int, Any], None]] = {}

    # -- operations ---------------------------------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[Any]:
        """Writes one request and returns the future of its operation.

        A request sent while others are in flight waits for the end of the event-loop tick,
        so the requests of one tick leave in one write; one sent to an idle connection
        leaves at once.
        """
        if self.closed_error is not None:
            raise ConnectionDoesNotExistError("connection is closed") from self.closed_error
        fut = self.loop.create_future()
        waiters = self._waiters
        waiters.append(fut)
        if self._out or len(waiters) > 1:
            self._buffer(data)
        else:
            self.transport.write(data)  # type: ignore[union-attr]
        return fut

    def write(self, data: bytes) -> None:
        """Writes bytes that belong to an operation already queued (after any buffered)."""
        if self.closed_error is None:
            if self._out:
                self._out.append(data)
            else:
                self.transport.write(data)  # type: ignore[union-attr]

    def _buffer(self, data: bytes) -> None:
        if not self._out:
            self.loop.call_soon(self.flush)
        self._out.append(data)

    def flush(self) -> None:
        """Writes what was buffered during this tick."""
        out = self._out
        if out and self.closed_error is None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]
        out.clear()

    def receive_copy(
        self, fut: asyncio.Future[Any], receiver: Callable[[int, Any], None] | None
    ) -> None:
        """Hands the COPY items (``ITEM_COPY_*`` kind and payload) of the operation whose
        future is ``fut`` to ``receiver``; None drops them from now on."""
        if receiver is None:
            self._copy_receivers.pop(fut, None)
        else:
            self._copy_receivers[fut] = receiver

    def all_abandoned(self) -> bool:
        """Whether no caller waits for any operation in flight (all were abandoned)."""
        return all(fut.done() for fut in self._waiters)

    @property
    def is_closed(self) -> bool:
        return self.closed_error is not None

    async def wait_completion(self) -> None:
        """Waits until the oldest operation in flight completes (or the connection ends)."""
        if self._waiters and self.closed_error is None:
            if self._completed is None:
                self._completed = self.loop.create_future()
            await asyncio.shield(self._completed)

    @property
    def in_flight(self) -> int:
        """Operations written whose results have not all arrived."""
        return len(self._waiters)

    async def wait_closed(self) -> None:
        """Waits until the transport has been closed and the connection is gone."""
        await asyncio.shield(self._lost)

    async def writable(self) -> None:
        """Waits while the transport's write buffer is over its high-water mark."""
        if self._write_resumed is not None:
            await asyncio.shield(self._write_resumed)
        if self.closed_error is not None:
            raise ConnectionDoesNotExistError("connection was closed in the middle of operation")

    # -- asyncio callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._recv_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._recv_buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self._authenticating:
            self._feed_in_worker(bytes(data))
            return
        try:
            items = self.session.feed(data)
        except Exception as exc:
            # A protocol violation: nothing that follows can be trusted.
            self.abort(exc)
            return
        if items is not None:
            self._handle(items)

    # Until the server accepts the client, received bytes are fed in a worker thread, one
    # chunk at a time: answering SCRAM derives a key (PBKDF2, as many iterations as the
    # server asks), which must not stop the event loop, its timers (connect_timeout) and
    # other connections. The session is not touched on the loop meanwhile.

    def _feed_in_worker(self, data: bytes) -> None:
        self._received.append(data)
        if self._worker is None:
            self._next_in_worker()

    def _next_in_worker(self) -> None:
        data = self._received.popleft()
        self._worker = self.loop.run_in_executor(None, self.session.feed, data)
        self._worker.add_done_callback(self._fed_in_worker)

    def _fed_in_worker(self, worker: asyncio.Future[Any]) -> None:
        self._worker = None
        try:
            items = worker.result()
        except Exception as exc:
            items = None
            self.abort(exc)
        if items is not None and self.closed_error is None:
            self._handle(items)
        if self._lost_while_feeding:
            # The socket's end was reported while the worker read what came before it.
            self.connection_lost(self._lost_while_feeding[0])
            return
        if self.closed_error is not None:
            self._received.clear()
            return
        if self.session.is_ready:
            # Authenticated: from now on bytes are read in place, on the loop.
            self._authenticating = False
            while self._received and self.closed_error is None:
                self.data_received(self._received.popleft())
        elif self._received and self.closed_error is None:
            self._next_in_worker()

    def _handle(self, items: list[tuple[int, Any]]) -> None:
        for kind, payload in items:
            if kind == _DONE:
                self._complete(payload, None)
            elif kind == _REPLICATION and self.on_replication is not None:
                self.on_replication(payload)
            elif kind in _COPY_ITEMS:
                # They belong to the operation at the front, the one the server is answering.
                receiver = self._copy_receivers.get(self._waiters[0]) if self._waiters else None
                if receiver is not None:
                    receiver(kind, payload)
            else:
                self._dispatch(kind, payload)

    def _dispatch(self, kind: int, payload: Any) -> None:
        if kind in (_SERVER_ERROR, _SERVER_ERROR_UNEXECUTED):
            error = PostgresError.from_fields(payload)
            fatal = payload.get("V", payload.get("S")) in ("FATAL", "PANIC")
            if fatal and not self._authenticating:
                # The server closes the connection after it (the administrator terminated
                # the backend, a shutdown), whatever the request it interrupted (a portal's
                # next rows are "unexecuted" too: they carry no Bind): it is closed by the
                # time the callers see why, each with asyncpg's ConnectionDoesNotExistError
                # caused by it.
                self.abort(error)
                return
            if kind == _SERVER_ERROR_UNEXECUTED:
                # The statement failed before it was bound: it never ran (see Connection._run).
                error.unexecuted = True  # type: ignore[attr-defined]
                self._complete(None, error)
                return
            unsolicited = not self._waiters
            if not unsolicited:
                self._complete(None, error)
            if unsolicited or fatal:
                self.abort(error)
        elif kind == _CLIENT_ERROR:
            self._complete(None, payload)
        elif kind == _ABORTED:
            self._complete(
                None,
                PipelineAbortedError(
                    "not run: an earlier call sent with it (before the same Sync) failed, "
                    "so the server skipped it"
                ),
            )
        elif kind == _NOTICE:
            if self.on_notice is not None:
                self.on_notice(PostgresLogMessage.from_fields(payload))
        elif kind == _NOTIFICATION:
            if self.on_notification is not None:
                self.on_notification(*payload)
        elif kind == _SEND:
            self.write(payload)
        elif kind == _REPLICATION_STARTED:
            if self.on_replication_started is not None:
                self.on_replication_started()
        elif kind == _AUTH:
            self.auth_method = payload
            if self.on_auth is not None:
                self.on_auth(payload)

    def _complete(self, result: Any, error: BaseException | None) -> None:
        fut = self._waiters.popleft()
        if self._copy_receivers:
            self._copy_receivers.pop(fut, None)
        if not fut.done():
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(error)
        completed = self._completed
        if completed is not None:
            self._completed = None
            completed.set_result(None)

    def pause_reading(self) -> None:
        """Stops reading the socket (a consumer is far behind)."""
        if self.transport is not None and not self.is_closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.is_closed:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self._write_resumed is None:
            self._write_resumed = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._write_resumed is not None:
            self._write_resumed.set_result(None)
            self._write_resumed = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._worker is not None:
            # A worker is reading what arrived before the end: that comes first.
            self._lost_while_feeding = [exc]
            return
        self._lost_while_feeding = []
        if self.closed_error is None:
            self.closed_error = exc or ConnectionDoesNotExistError("connection was closed")
        self.session.connection_lost(str(self.closed_error))
        self._fail_waiters(self.closed_error)
        if not self._lost.done():
            self._lost.set_result(None)
        if self.on_close is not None:
            self.on_close()

    def abort(self, exc: BaseException) -> None:
        """Fails every operation with `exc` and drops the transport."""
        if self.closed_error is None:
            self.closed_error = exc
        self._fail_waiters(exc)
        if self.transport is not None:
            self.transport.abort()

    def _fail_waiters(self, cause: BaseException) -> None:
        lost = "connection was closed in the middle of operation"
        if isinstance(cause, ConnectionDoesNotExistError):
            error: BaseException = ConnectionDoesNotExistError(lost)
            error.__cause__ = cause
        elif isinstance(cause, PostgresError) and not self._authenticating:
            # The server's last word before closing (FATAL), as asyncpg reports it: the
            # connection was lost, because of that.
            error = ConnectionDoesNotExistError(f"{lost}: {cause}")
            error.__cause__ = cause
        elif isinstance(cause, (PostgresError, InterfaceError, InternalClientError)):
            # Our own diagnosis (protocol violation, authentication failure): the error to
            # report.
            error = cause
        else:
            error = ConnectionDoesNotExistError(lost)
            error.__cause__ = cause
        self._copy_receivers.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(error)
        for w in (self._completed, self._write_resumed):
            if w is not None and not w.done():
                w.set_result(None)
        self._completed = self._write_resumed = None
