"""Notifications as async iterators, beside the callbacks of ``add_listener``.

``async for n in conn.notifications("jobs", max_queued=1000)`` yields a
:class:`Notification` for each NOTIFY on the channels. Notifications wait in a bounded
queue until the consumer takes them; when it is full, ``overflow="drop_oldest"`` (the
default) drops the oldest and counts it in ``dropped``, and ``overflow="raise"`` makes the
iterator raise :class:`NotificationQueueOverflowError`. A connection that closes ends the
iteration with its error.

``pool.listen(*channels)`` does the same on a connection of the pool kept for it. When that
connection is lost, it takes another, LISTENs again and yields :class:`Reconnected`:
notifications sent in between may have been missed.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, NamedTuple

from .exceptions import ConnectionDoesNotExistError, InterfaceError

if TYPE_CHECKING:
    from .connection import Connection
    from .pool import Pool, PoolConnectionProxy

OVERFLOW_POLICIES = ("drop_oldest", "raise")


class Notification(NamedTuple):
    """One NOTIFY: the notifying backend's pid, the channel and the payload."""

    pid: int
    channel: str
    payload: str


class Reconnected(NamedTuple):
    """Yielded by ``pool.listen`` after its connection was lost and replaced: notifications
    sent meanwhile may have been missed. ``reason`` is why the connection ended."""

    reason: BaseException


class NotificationQueueOverflowError(InterfaceError):
    """More notifications arrived than ``max_queued`` while the consumer was busy (with
    ``overflow="raise"``)."""


def _check(channels: tuple[str, ...], max_queued: int, overflow: str) -> None:
    if not channels:
        raise ValueError("at least one channel is needed")
    if max_queued < 1:
        raise ValueError("max_queued must be at least 1")
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")


class Notifications:
    """The notifications of one connection on some channels (see the module's description).
    LISTEN is sent on the first ``__anext__`` (or ``async with``); ``aclose()`` (or leaving
    the ``async with`` block) UNLISTENs."""

    def __init__(
        self, conn: Connection, channels: tuple[str, ...], max_queued: int, overflow: str
    ) -> None:
        _check(channels, max_queued, overflow)
        self._conn = conn
        self._channels = channels
        self._max_queued = max_queued
        self._overflow = overflow
        self._queue: collections.deque[Notification] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._listening = False
        self._closed = False
        #: Notifications dropped because the queue was full (``overflow="drop_oldest"``).
        self.dropped = 0

    async def start(self) -> None:
        """LISTENs on the channels (done by the first ``__anext__`` otherwise)."""
        if self._listening or self._closed:
            return
        conn = self._conn
        self._listening = True
        conn.add_termination_listener(self._on_close)
        try:
            for channel in self._channels:
                await conn.add_listener(channel, self._on_notification)
        except BaseException:
            await self.aclose()
            raise

    def _on_notification(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        queue = self._queue
        if len(queue) >= self._max_queued:
            if self._overflow == "raise":
                self._fail(
                    NotificationQueueOverflowError(
                        f"more than {self._max_queued} notifications arrived while the "
                        "consumer was busy"
                    )
                )
                return
            queue.popleft()
            self.dropped += 1
        queue.append(Notification(pid, channel, payload))
        self._wake()

    def _on_close(self, conn: Any) -> None:
        self._fail(
            conn._protocol.closed_error or ConnectionDoesNotExistError("connection was closed")
        )

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Notifications:
        return self

    async def __anext__(self) -> Notification:
        if not self._listening:
            await self.start()
        queue = self._queue
        while not queue:
            if self._closed:
                raise StopAsyncIteration
            if self._error is not None:
                error = self._error
                if isinstance(error, NotificationQueueOverflowError):
                    self._error = None  # reported once; the queue goes on
                raise error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return queue.popleft()

    async def aclose(self) -> None:
        """Stops listening (UNLISTEN, unless another listener wants the channel)."""
        if self._closed:
            return
        self._closed = True
        self._wake()
        conn = self._conn
        conn.remove_termination_listener(self._on_close)
        if self._listening and not conn.is_closed():
            for channel in self._channels:
                await conn.remove_listener(channel, self._on_notification)

    async def __aenter__(self) -> Notifications:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PoolNotifications:
    """``pool.listen(*channels)``: :class:`Notifications` on a connection the pool keeps for
    it, taken again (and yielding :class:`Reconnected`) when that connection is lost."""

    def __init__(
        self, pool: Pool, channels: tuple[str, ...], max_queued: int, overflow: str
    ) -> None:
        _check(channels, max_queued, overflow)
        self._pool = pool
        self._args = (channels, max_queued, overflow)
        self._conn: PoolConnectionProxy | None = None
        self._inner: Notifications | None = None
        self._lost: BaseException | None = None
        self._closed = False

    @property
    def dropped(self) -> int:
        """Notifications dropped on the current connection (see :class:`Notifications`)."""
        return self._inner.dropped if self._inner is not None else 0

    async def _subscribe(self) -> None:
        conn = await self._pool.acquire()
        try:
            inner = Notifications(conn, *self._args)  # type: ignore[arg-type]
            await inner.start()
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn, self._inner = conn, inner

    async def _drop(self) -> None:
        conn, self._conn, self._inner = self._conn, None, None
        if conn is not None:
            await self._pool.release(conn)

    def __aiter__(self) -> PoolNotifications:
        return self

    async def __anext__(self) -> Notification | Reconnected:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._inner is None:
                await self._subscribe()
                if self._lost is not None:
                    lost, self._lost = self._lost, None
                    return Reconnected(lost)
            assert self._inner is not None
            try:
                return await self._inner.__anext__()
            except StopAsyncIteration:
                raise
            except NotificationQueueOverflowError:
                raise
            except Exception as e:
                if self._conn is not None and not self._conn.is_closed():
                    raise
                self._lost = e
                await self._drop()

    async def aclose(self) -> None:
        """Stops listening and gives the connection back to the pool."""
        if self._closed:
            return
        self._closed = True
        if self._inner is not None:
            await self._inner.aclose()
        await self._drop()

    async def __aenter__(self) -> PoolNotifications:
        if self._inner is None:
            await self._subscribe()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
