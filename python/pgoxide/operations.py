"""The operation path: the one way a connection's requests reach the server.

Every request (query, prepared statement, executemany, transaction command, cursor or stream
window, pipeline, replication command, and later COPY) takes a *turn* here, writes its
messages while it holds the turn, and gives the turn back. A request of one round trip gives
it back as soon as it is written, so concurrent calls pipeline: each has its own Sync, their
bytes leave in one write per event-loop tick (:class:`~pgoxide.protocol.Protocol` coalesces
them), and their results come back in order. A request of several round trips (a statement
prepared before it runs, a batch written in chunks, a replication stream) keeps the turn
until it has written everything, so requests are executed by the server in the order they
were issued.

Rules owned here:

- Turns are handed out first come, first served.
- While a ``conn.transaction()`` block is open, only calls made inside it (the task that
  created or started it, and tasks started from there) get a turn; other tasks wait until
  it ends.
- A call's ``timeout`` (or the connection's ``command_timeout``) is one deadline covering
  everything it waits for: its turn, each of its round trips.
- A call abandoned before its request was written (cancelled, timed out) leaves nothing
  behind. One abandoned after it was written has its result discarded when it arrives. A
  CancelRequest is sent only when every request in flight has been abandoned, so it can never
  cancel a query whose caller is still waiting; the path is then held until the server has
  answered everything, and a caller whose deadline passes meanwhile closes the connection
  rather than waiting on a server that ignores the cancel.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from typing import Any, Callable, TypeVar

from . import _pgoxide
from .exceptions import ConnectionDoesNotExistError, InterfaceError
from .protocol import Protocol

# The transaction blocks the current task runs inside (see `OperationPath.enter`). Tasks
# started inside a block inherit it, so `gather` inside `conn.transaction()` runs in it.
_scopes: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
    "pgoxide_transaction_scopes", default=()
)


# executemany sends its batch in chunks of about this size, awaiting the socket in between.
_BATCH_CHUNK = 256 * 1024

# Seconds before a CancelRequest is sent again while the cancelled query still runs.
_CANCEL_RETRY = 0.5
_CANCEL_RETRY_MAX = 8.0


class OperationPath:
    """Admission, writing, waiting, timeouts and cancellation for one connection."""

    def __init__(
        self,
        protocol: Protocol,
        command_timeout: float | None,
        send_cancel_request: Callable[[], Awaitable[None]],
    ) -> None:
        self.protocol = protocol
        self.session = protocol.session
        self.loop = protocol.loop
        self.command_timeout = command_timeout
        self._send_cancel_request = send_cancel_request
        # Who holds the path: the caller whose turn it is (at most one), and a drain.
        self._holds = 0
        # Callers waiting for their turn, with the transaction scopes they run in.
        self._waiting: collections.deque[tuple[asyncio.Future[None], tuple[object, ...]]] = (
            collections.deque()
        )
        # The open transaction block that owns the connection, if any.
        self._owner: object | None = None
        self._draining: asyncio.Task[None] | None = None
        # The task reading a portal that keeps the turn (see pgoxide.cursor), if any.
        self._kept_by: asyncio.Task[Any] | None = None
        self._kept_for = ""
        self._background: set[asyncio.Task[Any]] = set()
        # Changes when a pool takes the connection back: statements, cursors and transaction
        # blocks made before then refuse to run (see `check_lease`).
        self.lease = object()
        # The connection's tracer (see pgoxide.tracing), for what runs on this path.
        self.tracer: Any = None
        # Where the connection runs (a tracing.Server), for the tracer's events.
        self.server: Any = None

    # -- deadlines --------------------------------------------------------------------------

    def deadline(self, timeout: float | None) -> float | None:
        """The loop time by which a call given ``timeout`` must end (None: never)."""
        if timeout is None:
            timeout = self.command_timeout
            if timeout is None:
                return None
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ValueError(
                f"invalid timeout value: expected a number of seconds, got {timeout!r}"
            )
        return self.loop.time() + timeout

    # -- turns ------------------------------------------------------------------------------

    def try_take(self) -> bool:
        """Takes the turn if it is free for this caller now (the common case: no waiting)."""
        if self._holds == 0 and (self._owner is None or self._owner in _scopes.get()):
            self._check_open()
            self._holds = 1
            return True
        return False

    def _check_open(self) -> None:
        error = self.protocol.closed_error
        if error is not None:
            raise ConnectionDoesNotExistError("connection is closed") from error

    async def take(self, deadline: float | None) -> None:
        """Waits for this caller's turn; it is held when this returns."""
        if self.try_take():
            return
        self._check_open()
        if self._kept_by is not None and self._kept_by is asyncio.current_task():
            raise InterfaceError(
                f"cannot run another call on this connection while this task reads "
                f"{self._kept_for} (it keeps the connection until it ends): exhaust or close "
                "it first"
            )
        fut: asyncio.Future[None] = self.loop.create_future()
        entry = (fut, _scopes.get())
        self._waiting.append(entry)
        handle = None
        if deadline is not None:
            handle = self.loop.call_at(deadline, self._turn_timed_out, fut)
        try:
            await fut
            self._check_open()  # the connection may have ended since the turn was handed over
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release()  # handed over just as the caller gave up: pass it on
            elif entry in self._waiting:
                self._waiting.remove(entry)
            raise
        finally:
            if handle is not None:
                handle.cancel()

    def hold_for(self, task: asyncio.Task[Any] | None, what: str = "") -> None:
        """Records that the turn is kept across awaits for ``what`` (a portal, a COPY) read by
        ``task`` (None: no longer), so that a call from that task fails instead of waiting
        for itself."""
        self._kept_by = task
        self._kept_for = what

    def release(self) -> None:
        """Gives the turn (or a drain's hold) back; the next eligible caller gets it."""
        self._holds -= 1
        if self._holds == 0 and self._waiting:
            self._wake()

    def _wake(self) -> None:
        error = self.protocol.closed_error
        if error is not None:
            self.connection_lost(error)
            return
        owner = self._owner
        for entry in self._waiting:
            fut, scopes = entry
            if fut.done():
                continue
            if owner is None or owner in scopes:
                self._waiting.remove(entry)
                self._holds = 1
                fut.set_result(None)
                return

    def _turn_timed_out(self, fut: asyncio.Future[None]) -> None:
        if fut.done():
            return
        fut.set_exception(asyncio.TimeoutError())
        if self._draining is not None:
            # The server has not finished an abandoned request despite the CancelRequest:
            # no caller can be served in time, so end the connection instead of hanging.
            self.protocol.abort(
                ConnectionDoesNotExistError(
                    "connection closed: the server did not finish a cancelled operation "
                    "before a later call's timeout"
                )
            )

    def new_lease(self) -> None:
        """The connection goes back to a pool: what its previous user made (a transaction
        block that owns the path, a cursor keeping the turn, prepared statements) no longer
        applies."""
        self.lease = object()
        self._owner = None
        self._kept_by = None
        if self._holds == 0 and self._waiting:
            self._wake()

    @property
    def kept(self) -> bool:
        """Whether the turn is held (a call under way, a cursor or COPY keeping it)."""
        return self._holds > 0

    def check_lease(self, lease: object) -> None:
        """Raises if the connection went back to a pool since ``lease`` was taken."""
        if lease is not self.lease:
            raise InterfaceError(
                "this object belongs to a connection that has been released back to the pool"
            )

    # -- transaction ownership --------------------------------------------------------------

    @property
    def owner(self) -> object | None:
        """The open transaction block that owns the connection, if any."""
        return self._owner

    @staticmethod
    def enter(scope: object) -> None:
        """Puts the current task (and tasks it starts from now on) inside ``scope``, a
        transaction block just created: they may use the connection once it owns it. Done
        at creation too, so a block started in another task (``asyncio.wait_for`` before
        Python 3.12 runs ``start()`` in one) still belongs to the code that holds it."""
        scopes = _scopes.get()
        if scope not in scopes:
            _scopes.set((*scopes, scope))

    def own(self, scope: object) -> None:
        """Makes ``scope`` (a transaction block being started, by the turn's holder) the
        connection's owner: only callers inside it get turns until :meth:`disown`."""
        self._owner = scope
        self.enter(scope)

    def disown(self, scope: object) -> None:
        """Ends ``scope``'s ownership; callers of other tasks may have turns again."""
        if self._owner is scope:
            self._owner = None
        scopes = _scopes.get()
        if scope in scopes:
            _scopes.set(tuple(s for s in scopes if s is not scope))
        if self._holds == 0 and self._waiting:
            self._wake()

    # -- requests ---------------------------------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[Any]:
        """Writes one request (the turn is held) and returns the future of its result."""
        return self.protocol.send(data)

    async def request(self, encode: Callable[[], bytes], deadline: float | None) -> Any:
        """Takes a turn, writes the request ``encode()`` builds, and waits for its result.

        ``encode`` runs when the turn has come; if it raises, nothing was sent.
        """
        if not self.try_take():
            await self.take(deadline)
        try:
            fut = self.protocol.send(encode())
        finally:
            self.release()
        return await self.wait(fut, deadline)

    async def batch(
        self,
        statement: Callable[[], Awaitable[_pgoxide.Statement]],
        rows: Iterable[Sequence[Any]],
        deadline: float | None,
        *,
        collect: bool = False,
        record_class: type[_pgoxide.Record] | None = None,
    ) -> Any:
        """Runs a batch (``executemany``, ``fetchmany``) of ``statement()``'s statement, which
        is looked up once the turn has come; returns what :meth:`send_batch` describes."""
        await self.take(deadline)
        try:
            fut = await self.send_batch(
                await statement(), iter(rows), collect=collect, record_class=record_class
            )
        finally:
            self.release()
        return await self.wait(fut, deadline)

    async def send_batch(
        self,
        stmt: _pgoxide.Statement,
        rows: Iterator[Sequence[Any]],
        *,
        collect: bool = False,
        record_class: type[_pgoxide.Record] | None = None,
    ) -> asyncio.Future[Any]:
        """Writes an executemany batch in chunks as the socket drains (the turn is held);
        returns its future, whose result is ``(rows, tag)`` with ``collect``, else None."""
        session, protocol = self.session, self.protocol
        data, more = session.executemany(stmt, rows, _BATCH_CHUNK, True, collect, record_class)
        fut = protocol.send(data)
        try:
            while more:
                await protocol.writable()
                # One pass of the loop per chunk even when the socket keeps up: what the
                # server answered meanwhile is read, so a batch it has failed stops here.
                await asyncio.sleep(0)
                data, more = session.executemany(stmt, rows, _BATCH_CHUNK, False)
                protocol.write(data)
        except BaseException:
            # Never leave a half-sent batch: end it so the server rolls it back.
            if more and protocol.closed_error is None:
                protocol.write(session.abort_batch())
            if not fut.done():
                fut.cancel()
            self.abandon()
            raise
        return fut

    async def wait(self, fut: asyncio.Future[Any], deadline: float | None) -> Any:
        """Waits for a written request's result until ``deadline``."""
        if deadline is None:
            try:
                return await fut
            except asyncio.CancelledError:
                self.abandon()
                raise
        handle = self.loop.call_at(deadline, self._timed_out, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            self.abandon()
            raise
        finally:
            handle.cancel()

    def _timed_out(self, fut: asyncio.Future[Any]) -> None:
        if not fut.done():
            fut.set_exception(asyncio.TimeoutError())
            self.abandon()

    def abandon(self) -> None:
        """A caller stopped waiting for a request already written. Once nobody waits for
        anything in flight, ask the server to cancel and hold the path until it has answered,
        so the CancelRequest cannot reach a later request."""
        protocol = self.protocol
        if protocol.closed_error is not None or self._draining is not None:
            return
        if not protocol.all_abandoned():
            return
        self._holds += 1
        self._draining = self.spawn(self._cancel_and_drain())

    async def _cancel_and_drain(self) -> None:
        # A CancelRequest ends the query running when it arrives: one per abandoned request
        # still in flight, and again with backoff if one arrived between two queries and was
        # ignored. Nothing new is written meanwhile, so none can reach a live caller's query.
        protocol = self.protocol
        retry = _CANCEL_RETRY
        try:
            while protocol.in_flight and protocol.closed_error is None:
                await self._send_cancel_request()
                try:
                    await asyncio.wait_for(protocol.wait_completion(), retry)
                except asyncio.TimeoutError:
                    retry = min(retry * 2, _CANCEL_RETRY_MAX)
                else:
                    retry = _CANCEL_RETRY
        finally:
            self._draining = None
            self.release()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Runs ``coro`` in the background, keeping a reference until it is done."""
        task: asyncio.Task[Any] = self.loop.create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def connection_lost(self, error: BaseException) -> None:
        """Fails every caller still waiting for a turn."""
        while self._waiting:
            fut, _ = self._waiting.popleft()
            if not fut.done():
                failure = ConnectionDoesNotExistError("connection was closed")
                failure.__cause__ = error
                fut.set_exception(failure)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def guarded(method: _Method) -> _Method:
    """For a method of an object made on a connection (a statement, cursor, transaction):
    once the connection has gone back to its pool, calling it raises at once, before any
    await, as asyncpg's objects do. The object has ``_ops`` and ``_lease``."""
    label = method.__qualname__

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._lease is not self._ops.lease:
            raise InterfaceError(
                f"cannot call {label}(): the underlying connection has been released back "
                "to the pool"
            )
        return method(self, *args, **kwargs)

    return call  # type: ignore[return-value]


def ignore_result(fut: asyncio.Future[Any]) -> None:
    """Marks a request's outcome as not wanted, so an error in it is never reported as
    unretrieved."""
    fut.add_done_callback(_retrieve)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
