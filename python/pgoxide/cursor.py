"""Cursors and windowed streams: a query's rows read through a portal, a window at a time
(Execute with a row limit, PortalSuspended), decoded in Rust per window.

Two ways to hold the portal, chosen when it opens:

- Inside a transaction block (``conn.transaction()`` or a plain ``BEGIN``): each window is
  its own request with a Sync, so other calls on the connection run between windows without
  disturbing the portal, which lives until the block ends.
- Outside one: the portal lives in the implicit transaction, so no Sync is sent until it
  ends. It keeps the connection's turn meanwhile: calls from other tasks wait until the
  cursor or stream is exhausted or closed, and a call from the task iterating it raises
  :class:`~pgoxide.exceptions.InterfaceError` (it would wait for itself).

A stream or cursor left early (``break``, an exception, cancellation, or dropping it) closes
its portal and gives the connection back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Callable

from . import _pgoxide, tracing
from .exceptions import InterfaceError
from .operations import guarded, ignore_result

if TYPE_CHECKING:
    from .operations import OperationPath

Record = _pgoxide.Record

# Finds a query's statement (cached or prepared now) while the caller holds the turn.
Resolve = Callable[[str, "float | None"], Awaitable[_pgoxide.Statement]]

_portal_names = itertools.count(1)


class Portal:
    """One query's portal on the server (the machinery of cursors and streams)."""

    __slots__ = (
        "_args",
        "_deadline",
        "_failed",
        "_holds_turn",
        "_lease",
        "_ops",
        "_query",
        "_record_class",
        "_resolve",
        "_stmt",
        "exhausted",
        "name",
    )

    def __init__(
        self,
        ops: OperationPath,
        resolve: Resolve,
        query: str,
        args: Sequence[Any],
        record_class: type[Record] | None,
        deadline: float | None,
        stmt: _pgoxide.Statement | None = None,
    ) -> None:
        self._ops = ops
        self._lease = ops.lease
        self._resolve = resolve
        self._query = query
        self._args = args
        self._record_class = record_class
        self._deadline = deadline
        self._stmt = stmt
        # Outside a transaction block the portal keeps the connection's turn until it ends.
        self._holds_turn = False
        self.name: str | None = None
        self.exhausted = False
        # A window failed (an error, a timeout): later fetches ask the server anyway, which
        # answers with why (the aborted transaction, the closed portal), never an empty end.
        self._failed = False

    async def prepare(self) -> None:
        """Prepares the statement (through the cache), so errors in the query show now."""
        if self._stmt is not None:
            return
        ops = self._ops
        ops.check_lease(self._lease)
        await ops.take(self._deadline)
        try:
            self._stmt = await self._resolve(self._query, self._deadline)
        finally:
            ops.release()

    async def open(self, window: int, deadline: float | None = None) -> list[Record]:
        """Binds the query to a new portal and returns its first ``window`` rows."""
        ops, session = self._ops, self._ops.session
        ops.check_lease(self._lease)
        deadline = self._deadline if deadline is None else deadline
        await ops.take(deadline)
        try:
            stmt = self._stmt
            if stmt is None:
                stmt = await self._resolve(self._query, deadline)
                self._stmt = stmt
            name = f"__pgoxide_portal_{next(_portal_names)}__"
            in_block = ops.owner is not None or session.transaction_status != "I"
            encode = session.bind_execute if stmt.name else session.parse_bind_execute
            fut = ops.send(encode(stmt, self._args, window, self._record_class, name, in_block))
            self.name = name
            if not in_block:
                self._holds_turn = True
                ops.hold_for(
                    asyncio.current_task(),
                    "a cursor or stream opened outside a transaction (open it inside a "
                    "transaction block to run other calls meanwhile)",
                )
        finally:
            if not self._holds_turn:
                ops.release()
        return await self._window(fut, deadline)

    async def fetch(self, window: int, deadline: float | None = None) -> list[Record]:
        """The next ``window`` rows (fewer at the end); opens the portal on first use."""
        if self.name is None:
            return await self.open(window, deadline)
        if self.exhausted and not self._failed:
            return []
        self._ops.check_lease(self._lease)
        deadline = self._deadline if deadline is None else deadline
        fut = self.request(window)
        if fut is not None:
            return await self._window(fut, deadline)
        ops = self._ops
        await ops.take(deadline)
        try:
            fut = ops.send(self._execute(window, True))
        finally:
            ops.release()
        return await self._window(fut, deadline)

    def request(self, window: int) -> asyncio.Future[Any] | None:
        """Asks for the next ``window`` rows now, if that needs no wait for a turn (the portal
        keeps the turn, or it is free); their future, to pass to :meth:`receive`."""
        ops = self._ops
        if self._holds_turn:
            return ops.send(self._execute(window, False))
        if not ops.try_take():
            return None
        try:
            return ops.send(self._execute(window, True))
        finally:
            ops.release()

    async def receive(self, fut: asyncio.Future[Any]) -> list[Record]:
        """The rows :meth:`request` asked for."""
        return await self._window(fut, self._deadline)

    def _execute(self, window: int, sync: bool) -> bytes:
        stmt, name = self._stmt, self.name
        assert stmt is not None and name is not None  # set when the portal was opened
        return self._ops.session.execute_portal(stmt, name, window, self._record_class, sync)

    async def _window(self, fut: asyncio.Future[Any], deadline: float | None) -> list[Record]:
        waiting = self._ops.wait(fut, deadline)
        tracer = self._ops.tracer
        try:
            if tracer is None:
                rows, tag, *_ = await waiting
            else:
                event = tracing.FetchStart(self._query, self.name, self._ops.server)
                rows, tag, *_ = await tracing.traced(
                    tracer, "fetch", event, waiting, _window_outcome
                )
        except BaseException:
            self.close_now()
            self._failed = True
            raise
        if tag is not None:  # CommandComplete: no PortalSuspended, nothing more to read
            self.exhausted = True
            if self._holds_turn:
                self.close_now()
            elif self.name is not None:
                # Inside a block it would hold its locks until the block ends: closed with
                # the next request, as asyncpg closes an exhausted cursor.
                self._ops.session.close_portal_later(self.name)
        return rows  # type: ignore[no-any-return]

    def close_now(self) -> None:
        """Closes the portal without waiting: what closes it is written at once, and the
        connection's turn (if the portal kept it) is given back."""
        ops = self._ops
        if self._holds_turn:
            self._holds_turn = False
            ops.hold_for(None)
            try:
                if ops.protocol.closed_error is None:
                    # Ends the implicit transaction (and the portal with it, if still open).
                    ignore_result(ops.send(ops.session.sync()))
            finally:
                ops.release()
        elif (
            self.name is not None
            and not self.exhausted
            and ops.protocol.closed_error is None
            and ops.try_take()
        ):
            # Inside a block, when the turn is not free now, the block's end closes it.
            try:
                ignore_result(ops.send(ops.session.close_portal(self.name)))
            finally:
                ops.release()
        self.exhausted = True

    async def close(self) -> None:
        """Closes the portal (see :meth:`close_now`)."""
        self.close_now()

    def close_when_dropped(self) -> None:
        """:meth:`close_now` for a cursor or stream being finalised: at once on the event
        loop's thread (a loop left early goes on with the connection free), else (a
        collection run by another thread) scheduled onto the loop."""
        loop = self._ops.loop
        try:
            running = asyncio.get_running_loop() is loop
        except RuntimeError:
            running = False
        if running:
            self.close_now()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to close
                loop.call_soon_threadsafe(self.close_now)


def _window_outcome(result: tuple[Any, ...]) -> tuple[int | None, str | None]:
    return len(result[0]), result[1]


class Stream:
    """``conn.stream(...)``: an async iterator of rows, fetched a window at a time.

    When the consumer starts on a window, the next one is asked for, so the server produces
    it while this one is consumed: at most two windows are held, whatever the result size.
    """

    __slots__ = ("__weakref__", "_next", "_portal", "_rows", "_window")

    def __init__(self, portal: Portal, window: int) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._portal = portal
        self._window = window
        self._rows: list[Record] = []
        # The next window's request, written while the current one is consumed.
        self._next: asyncio.Future[Any] | None = None

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Record:
        rows = self._rows
        if not rows:
            portal, pending = self._portal, self._next
            self._next = None
            if pending is not None:
                rows = await portal.receive(pending)
            else:
                rows = await portal.fetch(self._window)
            if not rows:
                raise StopAsyncIteration
            if not portal.exhausted:
                # Written now, not from a task: the consumer may not yield to the event
                # loop until it has taken every row of this window.
                self._next = portal.request(self._window)
            rows.reverse()
            self._rows = rows
        return rows.pop()

    async def aclose(self) -> None:
        """Stops the stream early: closes the portal and gives the connection back."""
        self._rows = []
        self._drop_next()
        await self._portal.close()

    def _drop_next(self) -> None:
        pending, self._next = self._next, None
        if pending is not None:
            # Its result (or error) no longer matters: the portal is being closed after it.
            ignore_result(pending)

    def __del__(self) -> None:
        portal = getattr(self, "_portal", None)
        if portal is not None and not portal.exhausted:
            self._drop_next()
            portal.close_when_dropped()


class Cursor:
    """A cursor, as asyncpg's: ``await conn.cursor(...)`` gives one. Its portal is bound on
    the first fetch."""

    __slots__ = ("__weakref__", "_lease", "_ops", "_portal")

    def __init__(self, ops: OperationPath, portal: Portal) -> None:
        self._ops = ops
        self._lease = portal._lease
        self._portal = portal

    @guarded
    async def fetch(self, n: int, *, timeout: float | None = None) -> list[Record]:
        """The next ``n`` rows (fewer at the end)."""
        if n <= 0:
            raise InterfaceError("n must be greater than zero")
        return await self._portal.fetch(n, self._deadline(timeout))

    @guarded
    async def fetchrow(self, *, timeout: float | None = None) -> Record | None:
        """The next row, or None at the end."""
        rows = await self._portal.fetch(1, self._deadline(timeout))
        return rows[0] if rows else None

    @guarded
    async def forward(self, n: int, *, timeout: float | None = None) -> int:
        """Skips ``n`` rows; returns how many were skipped (fewer at the end)."""
        if n <= 0:
            raise InterfaceError("n must be greater than zero")
        return len(await self._portal.fetch(n, self._deadline(timeout)))

    def _deadline(self, timeout: float | None) -> float | None:
        return None if timeout is None else self._ops.deadline(timeout)

    async def close(self) -> None:
        """Closes the cursor's portal and gives the connection back."""
        await self._portal.close()

    def __del__(self) -> None:
        portal = getattr(self, "_portal", None)
        if portal is not None and not portal.exhausted:
            portal.close_when_dropped()

    def __repr__(self) -> str:
        state = "exhausted" if self._portal.exhausted else "open"
        return f"<pgoxide.Cursor {state}>"


class CursorFactory:
    """``conn.cursor(...)``: ``async for`` over it, or ``await`` it for a :class:`Cursor`."""

    __slots__ = ("_make", "_ops", "_prefetch", "_prefetch_given")

    def __init__(
        self, ops: OperationPath, make: Callable[[], Portal], prefetch: int | None
    ) -> None:
        self._ops = ops
        self._make = make
        self._prefetch = 50 if prefetch is None else prefetch
        self._prefetch_given = prefetch is not None
        if self._prefetch <= 0:
            raise InterfaceError("prefetch argument must be greater than zero")

    def __aiter__(self) -> AsyncIterator[Record]:
        return Stream(self._make(), self._prefetch)

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._open().__await__()

    async def _open(self) -> Cursor:
        if self._prefetch_given:
            # As asyncpg: a cursor fetches what each call asks for; prefetch means nothing.
            raise InterfaceError("prefetch argument can only be specified for iterable cursor")
        portal = self._make()
        await portal.prepare()
        return Cursor(self._ops, portal)
