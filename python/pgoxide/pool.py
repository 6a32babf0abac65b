"""Connection pools: asyncpg's ``create_pool`` and ``Pool``, without its known failures.

How it works:

- Connections are opened by tasks of the pool, never in a caller's task. A caller waiting
  for a connection only waits on a future, so its cancellation or timeout strands nothing.
- Every connection that becomes available (opened, checked, released) goes to the oldest
  caller still waiting, or is kept idle: waiters are served first come, first served.
- The pool keeps at least ``min_size`` connections. It opens new ones in the background when
  connections are closed or lost, retrying with backoff while the server refuses; an
  ``acquire`` fails only at its own timeout.
- A connection idle for longer than ``check_idle_after`` seconds is checked with one round
  trip (a Sync) before it is handed out, and replaced if it is dead. Only idle connections
  pay this.
- Release resets only what the connection's statements may have changed (settings, LISTEN,
  advisory locks, temporary objects, cursors; an open transaction is rolled back): usually
  nothing, so no round trip. A statement whose effect is unknown gets asyncpg's full reset.
  Release runs in a task of the pool, so cancelling the caller never leaks the connection.
- ``close()`` waits for checked-out connections up to its ``timeout``, then terminates them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import random
import time
import warnings
from collections.abc import AsyncIterable, Awaitable, Generator, Iterable, Sequence
from typing import Any, Callable

from . import _pgoxide, tracing
from .connection import FULL_RESET, Connection, ConnectionProxy, Record
from .establish import connect as _connect
from .exceptions import InterfaceError
from .notifications import PoolNotifications

_log = logging.getLogger("pgoxide.pool")

# asyncpg's full reset, for a session whose changes are not known.
_RESETS = (
    (_pgoxide.EFFECT_ADVISORY, "SELECT pg_advisory_unlock_all()"),
    (_pgoxide.EFFECT_CURSORS, "CLOSE ALL"),
    (_pgoxide.EFFECT_LISTEN, "UNLISTEN *"),
    (_pgoxide.EFFECT_SETTINGS, "RESET ALL"),
    (_pgoxide.EFFECT_TEMP, "DISCARD TEMP"),
)

# Backoff between attempts to open a connection while the server refuses.
_RETRY_FIRST = 0.05
_RETRY_MAX = 5.0


def _warn_leaked_locks(count: int) -> None:
    warnings.warn(
        f"a connection went back to the pool holding {count} advisory lock(s) taken with "
        "advisory_lock(); the pool released them",
        ResourceWarning,
        stacklevel=2,
    )


def reset_sql(effects: int, in_transaction: bool) -> str:
    """The statements that undo ``effects`` (``EFFECT_*`` flags), after a ROLLBACK when a
    transaction is open; empty when nothing needs undoing."""
    parts = ["ROLLBACK"] if in_transaction else []
    if effects & _pgoxide.EFFECT_UNKNOWN:
        parts.extend(FULL_RESET)
        if effects & _pgoxide.EFFECT_TEMP:
            parts.append("DISCARD TEMP")
    else:
        parts.extend(sql for flag, sql in _RESETS if effects & flag)
    return "; ".join(parts)


@dataclasses.dataclass
class PoolStats:
    """A snapshot of a pool's sizes and counters (``Pool.stats()``)."""

    min_size: int
    max_size: int
    #: Open connections, idle and in use.
    size: int
    idle: int
    in_use: int
    #: Connections being opened.
    opening: int
    #: Callers waiting in ``acquire``.
    waiters: int
    acquired: int = 0
    #: Seconds callers spent in ``acquire``: in all, and the longest.
    acquire_wait_total: float = 0.0
    acquire_wait_max: float = 0.0
    acquire_timeouts: int = 0
    connections_created: int = 0
    connections_closed: int = 0
    #: Connections found closed by the server or the network.
    connections_lost: int = 0
    connect_failures: int = 0
    health_checks: int = 0
    health_check_failures: int = 0
    #: Releases that sent a reset, and those that needed none.
    resets: int = 0
    resets_skipped: int = 0
    #: Advisory locks still held (through ``advisory_lock``) when connections came back.
    leaked_advisory_locks: int = 0
    #: Connections handed straight to a waiting caller (opened, checked or released).
    handed_to_waiters: int = 0


class _Slot:
    """One pooled connection and what the pool knows of it."""

    __slots__ = ("conn", "generation", "idle", "idle_since", "proxy", "retire_at")

    def __init__(self, conn: Connection, now: float, retire_at: float, generation: int) -> None:
        self.conn = conn
        self.retire_at = retire_at
        self.generation = generation
        self.idle = False
        self.idle_since = now
        self.proxy: PoolConnectionProxy | None = None


class _InitFailed(Exception):
    """The pool's ``init`` raised on a new connection (the cause is its error)."""


class PoolConnectionProxy(ConnectionProxy):
    """The connection a caller acquired. Every attribute is the connection's, until the
    connection is released: then any use raises :class:`InterfaceError`."""

    __slots__ = ("_con", "_pool")

    def __init__(self, pool: Pool, con: Connection) -> None:
        self._pool = pool
        self._con: Connection | None = con

    def __getattr__(self, name: str) -> Any:
        con = self._con
        if con is None:
            raise InterfaceError(
                f"cannot call Connection.{name}(): connection has been released back to the pool"
            )
        return getattr(con, name)

    def _detach(self) -> Connection | None:
        con, self._con = self._con, None
        return con

    def __repr__(self) -> str:
        if self._con is None:
            return "<PoolConnectionProxy [released]>"
        return f"<PoolConnectionProxy {self._con!r}>"


class PoolAcquireContext:
    """``await pool.acquire()`` or ``async with pool.acquire() as conn``."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: PoolConnectionProxy | None = None

    async def __aenter__(self) -> PoolConnectionProxy:
        if self._conn is not None:
            raise InterfaceError("a connection is already acquired")
        self._conn = await self._pool._acquire_proxy(self._timeout)
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)

    def __await__(self) -> Generator[Any, None, PoolConnectionProxy]:
        return self._pool._acquire_proxy(self._timeout).__await__()


class Pool:
    """A pool of connections; create it with :func:`create_pool` (or, as asyncpg allows,
    with this class and the same arguments; ``loop`` is accepted and the running loop
    used)."""

    def __init__(
        self,
        *connect_args: Any,
        init_size: int | None = None,
        min_size: int,
        max_size: int,
        max_queries: int,
        max_inactive_connection_lifetime: float,
        connect: Callable[..., Awaitable[Connection]] | None = None,
        setup: Callable[[PoolConnectionProxy], Awaitable[None]] | None = None,
        init: Callable[[Connection], Awaitable[None]] | None = None,
        reset: Callable[[Connection], Awaitable[None]] | None = None,
        connection_class: type[Connection] = Connection,
        record_class: type[Record] = Record,
        loop: asyncio.AbstractEventLoop | None = None,
        max_lifetime: float | None = None,
        check_idle_after: float | None = 30.0,
        check_timeout: float = 10.0,
        reset_timeout: float = 30.0,
        on_leaked_advisory_locks: Callable[[int], None] | None = None,
        **connect_kwargs: Any,
    ) -> None:
        if max_size <= 0:
            raise ValueError("max_size is expected to be greater than zero")
        if min_size < 0 or min_size > max_size:
            raise ValueError(
                "min_size is expected to be greater or equal to zero"
                if min_size < 0
                else "min_size is greater than max_size"
            )
        if init_size is None:
            init_size = min_size
        if init_size < 0:
            raise ValueError("init_size is expected to be greater or equal to zero")
        if init_size > max_size:
            raise ValueError("init_size is greater than max_size")
        if init_size < min_size:
            raise ValueError("init_size is smaller than min_size")
        if max_queries <= 0:
            raise ValueError("max_queries is expected to be greater than zero")
        if max_inactive_connection_lifetime < 0:
            raise ValueError("max_inactive_connection_lifetime is expected to be 0 or more")
        if not (isinstance(connection_class, type) and issubclass(connection_class, Connection)):
            raise TypeError(
                f"connection_class must be a subclass of Connection, not {connection_class!r}"
            )
        self._connect_args = connect_args
        self._connect_kwargs = connect_kwargs
        self._init_size = init_size
        self._min_size = min_size
        self._max_size = max_size
        self._max_queries = max_queries
        self._max_inactive = max_inactive_connection_lifetime
        self._connect_fn = connect
        self._setup = setup
        self._init = init
        self._reset = reset
        self._connection_class = connection_class
        self._record_class = record_class
        self._max_lifetime = max_lifetime
        self._check_idle_after = check_idle_after
        self._check_timeout = check_timeout
        self._reset_timeout = reset_timeout
        self._on_leaked_advisory_locks = on_leaked_advisory_locks or _warn_leaked_locks
        # The tracer given to create_pool (also passed to every connection).
        tracer = connect_kwargs.get("tracer") or tracing.default_tracer()
        self._tracer: tracing.Tracer | None = tracer
        if tracer is not None:
            connect_kwargs["tracer"] = tracer
            watch = getattr(tracer, "watch_pool", None)
            if watch is not None:
                watch(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Idle connections, the most recently released on the right.
        self._idle: collections.deque[_Slot] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[_Slot]] = collections.deque()
        self._slots: set[_Slot] = set()
        # Connections open or being opened (what counts against max_size), and being opened.
        self._size = 0
        self._opening = 0
        self._generation = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        # Tasks that terminate() may cancel (openers, checks, the maintainer); the others
        # (releases, closes) finish on their own once their connections are terminated.
        self._cancellable: set[asyncio.Task[Any]] = set()
        # Connections being closed gracefully (no longer counted in the pool).
        self._closing_conns: set[Connection] = set()
        self._initialized = False
        self._initializing = False
        self._closing = False
        self._closed = False
        self._all_back: asyncio.Event | None = None
        self._maintainer: asyncio.Task[Any] | None = None
        # Futures of callers of `_next_change`, resolved when the pool's state changes.
        self._watchers: list[asyncio.Future[None]] = []
        self._last_connect_error: BaseException | None = None
        self._stats = PoolStats(min_size, max_size, 0, 0, 0, 0, 0)

    # -- creation ---------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Pool]:
        return self._async_init().__await__()

    async def __aenter__(self) -> Pool:
        return await self._async_init()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _async_init(self) -> Pool:
        if self._initialized:
            return self
        if self._initializing:
            raise InterfaceError("pool is being initialized in another task")
        if self._closed:
            raise InterfaceError("pool is closed")
        self._initializing = True
        try:
            self._loop = asyncio.get_running_loop()
            # The first connections are opened here, so that a wrong DSN or password fails
            # create_pool (as in asyncpg); later ones are opened in the background.
            self._size += self._init_size
            results = await asyncio.gather(
                *(self._connect() for _ in range(self._init_size)), return_exceptions=True
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            opened = [r for r in results if isinstance(r, Connection)]
            if errors:
                self._size -= self._init_size
                for conn in opened:
                    conn.terminate()
                error = errors[0]
                if isinstance(error, _InitFailed) and error.__cause__ is not None:
                    raise error.__cause__
                raise error
            for conn in opened:
                slot = self._adopt(conn)
                slot.idle = True
                self._idle.append(slot)
            self._initialized = True
            self._maintainer = self._spawn(self._maintain(), cancellable=True)
            return self
        finally:
            self._initializing = False

    async def _connect(self) -> Connection:
        """A new connection, with ``init`` run on it."""
        if self._connect_fn is not None:
            conn = await self._connect_fn(*self._connect_args, **self._connect_kwargs)
            if not isinstance(conn, self._connection_class):
                raise InterfaceError(
                    "expected pool connect callback to return an instance of "
                    f"'{self._connection_class.__module__}.{self._connection_class.__qualname__}', "
                    f"got '{type(conn).__qualname__}'"
                )
        else:
            conn = await _connect(
                *self._connect_args,
                connection_class=self._connection_class,
                record_class=self._record_class,
                **self._connect_kwargs,
            )
        try:
            if self._init is not None:
                await self._init(conn)
        except Exception as e:
            conn.terminate()
            raise _InitFailed from e
        except BaseException:
            conn.terminate()
            raise
        self._stats.connections_created += 1
        return conn

    def _adopt(self, conn: Connection) -> _Slot:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        retire_at = float("inf")
        if self._max_lifetime is not None:
            # Jitter, so connections opened together are not all replaced together.
            retire_at = now + self._max_lifetime * (1 - 0.2 * random.random())
        slot = _Slot(conn, now, retire_at, self._generation)
        self._slots.add(slot)
        _log.debug("%r: opened a connection (backend %s)", self, conn.get_server_pid())
        conn._pool_slot = slot
        conn._on_lost = lambda: self._lost(slot)
        conn._session.take_effects()  # what init did is the pool's own business
        return slot

    # -- acquiring --------------------------------------------------------------------------

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        """A connection of the pool: ``async with pool.acquire() as conn`` (released at the
        end), or ``conn = await pool.acquire()`` (then :meth:`release` it). ``timeout``
        bounds the wait for a connection and ``setup``."""
        return PoolAcquireContext(self, timeout)

    async def _acquire_proxy(self, timeout: float | None) -> PoolConnectionProxy:
        tracer = self._tracer
        if tracer is None:
            return await self._acquire_set_up(timeout)
        event = tracing.PoolAcquireStart(len(self._slots), len(self._idle), self._live_waiters())
        context = tracing.start(tracer, "pool_acquire", event)
        created = self._stats.connections_created
        began = time.perf_counter()
        try:
            proxy = await self._acquire_set_up(timeout)
        except BaseException as e:
            tracing.end(
                tracer, "pool_acquire", context, tracing.End(time.perf_counter() - began, e)
            )
            raise
        details = {"created": self._stats.connections_created > created}
        end = tracing.End(time.perf_counter() - began, None, details=details)
        tracing.end(tracer, "pool_acquire", context, end)
        return proxy

    async def _acquire_set_up(self, timeout: float | None) -> PoolConnectionProxy:
        loop = self._loop
        deadline = None if timeout is None or loop is None else loop.time() + timeout
        slot = await self._acquire(timeout)
        proxy = PoolConnectionProxy(self, slot.conn)
        slot.proxy = proxy
        # Listener callbacks receive the proxy, the object their code holds (as asyncpg).
        slot.conn._proxy = proxy
        if self._setup is not None:
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())  # type: ignore[union-attr]
                await asyncio.wait_for(self._setup(proxy), remaining)
            except BaseException:
                # Whether the connection is fit for reuse is unknown: it is closed (as in
                # asyncpg), and the caller's proxy says so.
                slot.conn._proxy = None
                self._discard(slot, lost=False)
                try:
                    await slot.conn.close(timeout=self._check_timeout)
                finally:
                    self._grow()
                raise
        return proxy

    async def _acquire(self, timeout: float | None) -> _Slot:
        """Takes a connection: an idle one if nobody waits before us, else the next one to
        become available."""
        self._check_usable()
        loop = self._loop
        assert loop is not None
        start = loop.time()
        stats = self._stats
        check: _Slot | None = None
        if not self._waiters:
            while self._idle:
                slot = self._idle.pop()
                slot.idle = False
                if slot.conn.is_closed():
                    self._discard(slot, lost=True)  # lost before the pool heard of it
                    continue
                after = self._check_idle_after
                if after is not None and start - slot.idle_since >= after:
                    check = slot  # checked in a task of the pool, then handed out
                    break
                stats.acquired += 1
                return slot
        fut: asyncio.Future[_Slot] = loop.create_future()
        self._waiters.append(fut)
        if self._watchers:
            self._notify()
        if check is not None:
            self._spawn(self._check(check), cancellable=True)
        self._grow()
        timer = None if timeout is None else loop.call_at(start + timeout, self._timed_out, fut)
        try:
            slot = await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._hand(fut.result())  # handed over just as the caller gave up
            raise
        finally:
            if timer is not None:
                timer.cancel()
            waited = loop.time() - start
            stats.acquire_wait_total += waited
            stats.acquire_wait_max = max(stats.acquire_wait_max, waited)
        stats.acquired += 1
        return slot

    def _timed_out(self, fut: asyncio.Future[_Slot]) -> None:
        if not fut.done():
            self._stats.acquire_timeouts += 1
            error = asyncio.TimeoutError()
            if self._last_connect_error is not None and self._opening:
                error.__cause__ = self._last_connect_error
            fut.set_exception(error)

    def _hand(self, slot: _Slot) -> None:
        """Gives an available connection to the oldest waiter, or keeps it idle."""
        if self._closing:
            self._close_slot(slot)
            return
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(slot)
                self._stats.handed_to_waiters += 1
                if self._watchers:
                    self._notify()
                return
        slot.idle = True
        slot.idle_since = self._loop.time()  # type: ignore[union-attr]
        self._idle.append(slot)
        if self._watchers:
            self._notify()

    async def _check(self, slot: _Slot) -> None:
        """Checks a connection that was idle for long, then hands it out or replaces it."""
        self._stats.health_checks += 1
        try:
            await slot.conn._ping(self._check_timeout)
        except Exception:
            self._stats.health_check_failures += 1
            slot.conn.terminate()
            self._discard(slot, lost=True)
            self._grow()
            return
        self._hand(slot)

    def _fail_oldest_waiter(self, error: BaseException) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_exception(error)
                return

    def _live_waiters(self) -> int:
        waiters = self._waiters
        while waiters and waiters[0].done():
            waiters.popleft()
        return sum(1 for fut in waiters if not fut.done())

    def _grow(self) -> None:
        """Opens connections in the background: up to ``min_size``, and as many as callers
        wait for (up to ``max_size``)."""
        if self._closing or not self._initialized:
            return
        demand = self._live_waiters() - self._opening
        want = max(self._min_size - self._size, min(demand, self._max_size - self._size))
        for _ in range(want):
            self._size += 1
            self._opening += 1
            self._spawn(self._open(), cancellable=True)

    async def _open(self) -> None:
        """Opens one connection for the pool, retrying with backoff while it is needed."""
        delay = _RETRY_FIRST
        opened = False
        try:
            while not self._closing:
                try:
                    conn = await self._connect()
                except _InitFailed as e:
                    # The user's init failed on the new connection: the caller waiting for
                    # it gets that error, as in asyncpg (no retry of user code).
                    self._fail_oldest_waiter(e.__cause__ or e)
                    return
                except Exception as e:
                    self._last_connect_error = e
                    self._stats.connect_failures += 1
                    _log.debug("%r: could not open a connection: %r", self, e)
                    if self._size > self._min_size and self._live_waiters() <= self._opening - 1:
                        return  # nobody needs it any more
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                opened = True
                self._opening -= 1
                self._last_connect_error = None
                self._hand(self._adopt(conn))
                return
        finally:
            if not opened:
                self._opening -= 1
                self._size -= 1

    # -- releasing --------------------------------------------------------------------------

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        """Gives a connection back. What its session changed is reset (see the module's
        description; ``timeout`` bounds that, default ``reset_timeout``), and a connection
        that cannot be reset, or has served ``max_queries`` or ``max_lifetime``, is closed and
        replaced. Cancelling the caller does not interrupt the release."""
        slot = self._slot_of(connection)
        if slot is None:
            return
        slot.conn._proxy = None
        if not slot.conn.is_closed():
            slot.conn._warn_dangling_listeners()
        if slot.proxy is not None:
            slot.proxy._detach()
            slot.proxy = None
        tracer = self._tracer
        if tracer is None:
            await self._release_slot(slot, timeout)
            return
        context = tracing.start(tracer, "pool_release", tracing.PoolReleaseStart())
        resets, handed = self._stats.resets, self._stats.handed_to_waiters
        began = time.perf_counter()
        try:
            await self._release_slot(slot, timeout)
        except BaseException as e:
            tracing.end(
                tracer, "pool_release", context, tracing.End(time.perf_counter() - began, e)
            )
            raise
        details = {
            "reset": self._stats.resets > resets,
            "closed": slot not in self._slots,
            "handed_to_waiter": self._stats.handed_to_waiters > handed,
        }
        end = tracing.End(time.perf_counter() - began, None, details=details)
        tracing.end(tracer, "pool_release", context, end)

    async def _release_slot(self, slot: _Slot, timeout: float | None) -> None:
        if self._recycle_now(slot):
            return
        task = self._spawn(self._recycle(slot, timeout))
        await asyncio.shield(task)

    def _slot_of(self, connection: Any) -> _Slot | None:
        """The slot of an acquired connection; None if it was released already."""
        if not isinstance(connection, PoolConnectionProxy) or connection._pool is not self:
            raise InterfaceError(
                f"Pool.release() received invalid connection: {connection!r} is not a member "
                "of this pool"
            )
        con = connection._con
        if con is None:
            return None  # released already: nothing to do, as in asyncpg
        slot = getattr(con, "_pool_slot", None)
        if slot is None or slot not in self._slots or slot.idle:
            return None
        return slot

    def _recycle_now(self, slot: _Slot) -> bool:
        """Releases at once (no round trip) when nothing needs resetting or replacing."""
        conn = slot.conn
        kept = conn._ops.kept
        conn._ops.new_lease()
        if conn.is_closed():
            self._discard(slot, lost=True)
            self._grow()
            return True
        if kept:
            # Released while a call, a cursor or a COPY of its user still holds it: it
            # cannot be reset, so it is closed.
            conn.terminate()
            self._discard(slot, lost=False)
            return True
        session = conn._session
        if (
            self._reset is None
            and not conn._protocol.in_flight
            and session.transaction_status == "I"
            and not conn._advisory_locks
            and not self._should_retire(slot)
        ):
            effects = session.take_effects()
            if not effects:
                conn._forget_callbacks()
                self._stats.resets_skipped += 1
                self._hand(slot)
                return True
            conn._pending_effects = effects
        return False

    async def _recycle(self, slot: _Slot, timeout: float | None) -> None:
        conn = slot.conn
        try:
            await asyncio.wait_for(self._reset_connection(conn), timeout or self._reset_timeout)
        except Exception as e:
            _log.warning("%r: could not reset a released connection (%r); closing it", self, e)
            warnings.warn(
                f"pgoxide pool: could not reset a released connection ({e!r}); closing it",
                RuntimeWarning,
                stacklevel=2,
            )
            if self._tracer is not None:
                tracing.advise(self._tracer, "on_cleanup_failed", "reset", e)
            conn.terminate()
            self._discard(slot, lost=False)
            self._grow()
            return
        if self._should_retire(slot):
            self._close_slot(slot)
            self._grow()
            return
        self._hand(slot)

    async def _reset_connection(self, conn: Connection) -> None:
        effects = conn._session.take_effects() | conn._pending_effects
        conn._pending_effects = 0
        leaked = conn._release_advisory_locks()
        if leaked:
            effects |= _pgoxide.EFFECT_ADVISORY
            self._stats.leaked_advisory_locks += leaked
            _log.warning("%r: a released connection held %d advisory lock(s)", self, leaked)
            self._on_leaked_advisory_locks(leaked)
            if self._tracer is not None:
                tracing.advise(self._tracer, "on_leaked_advisory_locks", leaked)
        if self._reset is not None:
            await self._reset(conn)
        else:
            sql = reset_sql(effects, conn._session.transaction_status != "I")
            if sql:
                await conn.execute(sql)
                self._stats.resets += 1
            else:
                self._stats.resets_skipped += 1
        conn._session.take_effects()
        conn._forget_callbacks()

    def _should_retire(self, slot: _Slot) -> bool:
        return (
            slot.generation != self._generation
            or slot.conn._session.requests >= self._max_queries
            or self._loop.time() >= slot.retire_at  # type: ignore[union-attr]
        )

    # -- connections leaving the pool -------------------------------------------------------

    def _lost(self, slot: _Slot) -> None:
        """A connection was closed by the server or the network."""
        if slot.idle and slot in self._slots:
            self._idle.remove(slot)
            slot.idle = False
            self._discard(slot, lost=True)
            self._grow()

    def _discard(self, slot: _Slot, *, lost: bool) -> None:
        """Forgets a connection that is closed (or being closed)."""
        if slot not in self._slots:
            return
        self._slots.discard(slot)
        self._size -= 1
        if lost:
            self._stats.connections_lost += 1
        else:
            self._stats.connections_closed += 1
        _log.debug(
            "%r: %s a connection (backend %s)",
            self,
            "lost" if lost else "closed",
            slot.conn.get_server_pid(),
        )
        slot.conn._on_lost = None
        slot.conn._pool_slot = None
        if self._watchers:
            self._notify()
        if self._all_back is not None and len(self._slots) == len(self._idle):
            self._all_back.set()
        self._grow()

    def _close_slot(self, slot: _Slot) -> None:
        """Closes a connection gracefully, in the background."""
        self._discard(slot, lost=False)
        self._spawn(self._close_connection(slot.conn))

    async def _close_connection(self, conn: Connection) -> None:
        self._closing_conns.add(conn)
        try:
            await conn.close(timeout=self._check_timeout)
        except Exception as e:
            _log.warning("%r: closing a connection failed: %r", self, e)
            if self._tracer is not None:
                tracing.advise(self._tracer, "on_cleanup_failed", "close", e)
        finally:
            self._closing_conns.discard(conn)

    async def _maintain(self) -> None:
        """Closes connections idle for too long (above ``min_size``), replaces those past
        ``max_lifetime``, and keeps the pool at ``min_size``."""
        loop = self._loop
        assert loop is not None
        periods = [p for p in (self._max_inactive, self._max_lifetime) if p]
        period = min([*periods, 60.0]) / 2
        while not self._closing:
            await asyncio.sleep(period)
            now = loop.time()
            for slot in list(self._idle):
                too_long = self._max_inactive and now - slot.idle_since >= self._max_inactive
                if (
                    now >= slot.retire_at
                    or slot.generation != self._generation
                    or (too_long and len(self._slots) > self._min_size)
                ):
                    self._idle.remove(slot)
                    slot.idle = False
                    self._close_slot(slot)
            self._grow()

    # -- closing ----------------------------------------------------------------------------

    async def close(self, *, timeout: float | None = 30.0) -> None:
        """Closes the pool: idle connections at once, checked-out ones when they come back,
        or after ``timeout`` seconds (None: wait for them) by terminating them."""
        if self._closed:
            return
        self._closing = True
        if self._watchers:
            self._notify()
        self._fail_waiters()
        self._close_idle()
        if self._slots:
            self._all_back = asyncio.Event()
            try:
                await asyncio.wait_for(self._all_back.wait(), timeout)
            except asyncio.TimeoutError:
                warnings.warn(
                    f"pgoxide pool: {len(self._slots)} connection(s) not released within "
                    f"{timeout} s of close(); terminating them",
                    RuntimeWarning,
                    stacklevel=2,
                )
        # Releases and graceful closes under way finish (each close is bounded).
        finishing = [t for t in self._tasks - self._cancellable if t is not asyncio.current_task()]
        if finishing:
            await asyncio.wait(finishing, timeout=self._check_timeout)
        self.terminate()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def terminate(self) -> None:
        """Closes every connection at once."""
        self._closing = True
        self._closed = True
        self._fail_waiters()
        for slot in list(self._slots):
            slot.idle = False
            slot.conn.terminate()
            self._discard(slot, lost=False)
        self._idle.clear()
        for conn in list(self._closing_conns):
            conn.terminate()
        try:
            current = asyncio.current_task()
        except RuntimeError:  # called outside the loop (asyncpg's terminate is synchronous)
            current = None
        for task in list(self._cancellable):
            if not task.done() and task is not current:
                task.cancel()

    def _close_idle(self) -> None:
        while self._idle:
            slot = self._idle.pop()
            slot.idle = False
            self._close_slot(slot)

    def _fail_waiters(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(InterfaceError("pool is closing"))

    async def expire_connections(self) -> None:
        """Replaces every connection: idle ones now, checked-out ones when released."""
        self._generation += 1
        self._close_idle()
        self._grow()

    def set_connect_args(self, dsn: str | None = None, **connect_kwargs: Any) -> None:
        """Sets the arguments new connections are opened with (``expire_connections`` then
        replaces the existing ones)."""
        self._connect_args = (dsn,) if dsn is not None else ()
        self._connect_kwargs = connect_kwargs

    # -- state ------------------------------------------------------------------------------

    def get_size(self) -> int:
        """Open connections, idle and in use."""
        return len(self._slots)

    def get_idle_size(self) -> int:
        return len(self._idle)

    def get_init_size(self) -> int:
        """How many connections the pool opened when it was created."""
        return self._init_size

    def get_min_size(self) -> int:
        return self._min_size

    def get_max_size(self) -> int:
        return self._max_size

    def is_closing(self) -> bool:
        return self._closing

    def stats(self) -> PoolStats:
        """Sizes, waiters and counters, as a snapshot."""
        size = len(self._slots)
        idle = len(self._idle)
        return dataclasses.replace(
            self._stats,
            size=size,
            idle=idle,
            in_use=size - idle,
            opening=self._opening,
            waiters=self._live_waiters(),
        )

    def _check_usable(self) -> None:
        if self._closing:
            raise InterfaceError("pool is closing")
        if self._initializing:
            raise InterfaceError("pool is being initialized, but not yet ready: await it first")
        if not self._initialized:
            raise InterfaceError("pool is not initialized: await it (or use async with) first")

    def _spawn(self, coro: Awaitable[Any], *, cancellable: bool = False) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        if cancellable:
            self._cancellable.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._cancellable.discard(task)
        self._notify()

    def _notify(self) -> None:
        watchers, self._watchers = self._watchers, []
        for fut in watchers:
            if not fut.done():
                fut.set_result(None)

    async def _next_change(self) -> None:
        """Waits until the pool's state next changes (a connection handed out, kept idle,
        opened or closed, a waiter queued, a task of the pool ended, closing begun): for
        observers."""
        fut = asyncio.get_running_loop().create_future()
        self._watchers.append(fut)
        await fut

    def listen(
        self, *channels: str, max_queued: int = 1000, overflow: str = "drop_oldest"
    ) -> PoolNotifications:
        """``async for n in pool.listen("a")``: notifications as ``Connection.notifications``
        gives them, on a connection of the pool kept for this; when it is lost, another is
        taken, LISTEN is sent again and a :class:`~pgoxide.notifications.Reconnected` is
        yielded (notifications sent in between may have been missed)."""
        return PoolNotifications(self, channels, max_queued, overflow)

    # -- one call on a connection of the pool -----------------------------------------------

    async def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        slot = await self._acquire(None)
        try:
            return await getattr(slot.conn, name)(*args, **kwargs)
        finally:
            await self._release_slot(slot, None)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """``Connection.execute`` on a connection of the pool."""
        return await self._run("execute", query, *args, timeout=timeout)  # type: ignore[no-any-return]

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        await self._run("executemany", command, args, timeout=timeout)

    async def fetch(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> list[Record]:
        return await self._run(  # type: ignore[no-any-return]
            "fetch", query, *args, timeout=timeout, record_class=record_class
        )

    async def fetchrow(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> Record | None:
        return await self._run(  # type: ignore[no-any-return]
            "fetchrow", query, *args, timeout=timeout, record_class=record_class
        )

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        return await self._run("fetchval", query, *args, column=column, timeout=timeout)

    async def fetchmany(
        self,
        query: str,
        args: Iterable[Sequence[Any]],
        *,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> list[Record]:
        return await self._run(  # type: ignore[no-any-return]
            "fetchmany", query, args, timeout=timeout, record_class=record_class
        )

    async def copy_to_table(self, table_name: str, **kwargs: Any) -> str:
        """``Connection.copy_to_table`` on a connection of the pool."""
        return await self._run("copy_to_table", table_name, **kwargs)  # type: ignore[no-any-return]

    async def copy_records_to_table(
        self,
        table_name: str,
        *,
        records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
        **kwargs: Any,
    ) -> str:
        return await self._run(  # type: ignore[no-any-return]
            "copy_records_to_table", table_name, records=records, **kwargs
        )

    async def copy_from_table(self, table_name: str, **kwargs: Any) -> str:
        return await self._run("copy_from_table", table_name, **kwargs)  # type: ignore[no-any-return]

    async def copy_from_query(self, query: str, *args: Any, **kwargs: Any) -> str:
        return await self._run("copy_from_query", query, *args, **kwargs)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return (
            f"<pgoxide.Pool size={len(self._slots)} idle={len(self._idle)} "
            f"min={self._min_size} max={self._max_size}>"
        )


def create_pool(
    dsn: str | None = None,
    *,
    init_size: int | None = None,
    min_size: int = 10,
    max_size: int = 10,
    max_queries: int = 50000,
    max_inactive_connection_lifetime: float = 300.0,
    connect: Callable[..., Awaitable[Connection]] | None = None,
    setup: Callable[[PoolConnectionProxy], Awaitable[None]] | None = None,
    init: Callable[[Connection], Awaitable[None]] | None = None,
    reset: Callable[[Connection], Awaitable[None]] | None = None,
    connection_class: type[Connection] = Connection,
    record_class: type[Record] = Record,
    loop: asyncio.AbstractEventLoop | None = None,
    max_lifetime: float | None = None,
    check_idle_after: float | None = 30.0,
    check_timeout: float = 10.0,
    reset_timeout: float = 30.0,
    on_leaked_advisory_locks: Callable[[int], None] | None = None,
    **connect_kwargs: Any,
) -> Pool:
    """A connection pool, as asyncpg's: ``pool = await create_pool(dsn, ...)`` or
    ``async with create_pool(dsn) as pool``.

    asyncpg's arguments mean what they mean there (``init_size`` connections are opened at
    once, by default ``min_size``; ``init`` runs on each new connection,
    ``setup`` on each acquire, ``reset`` replaces the reset on release, ``connect`` replaces
    :func:`pgoxide.connect`; ``connect_kwargs`` go to it). Beyond asyncpg: ``max_lifetime``
    replaces connections after that many seconds (with up to 20 % jitter);
    ``check_idle_after`` is how long a connection may sit idle before it is checked on
    acquire (None: never), ``check_timeout`` bounds that check; ``reset_timeout`` bounds the
    reset on release; ``on_leaked_advisory_locks(count)`` is called when a connection comes
    back holding locks taken with ``advisory_lock`` (default: a ``ResourceWarning``).
    """
    args = (dsn,) if dsn is not None else ()
    return Pool(
        *args,
        init_size=init_size,
        min_size=min_size,
        max_size=max_size,
        max_queries=max_queries,
        max_inactive_connection_lifetime=max_inactive_connection_lifetime,
        connect=connect,
        setup=setup,
        init=init,
        reset=reset,
        connection_class=connection_class,
        record_class=record_class,
        max_lifetime=max_lifetime,
        check_idle_after=check_idle_after,
        check_timeout=check_timeout,
        reset_timeout=reset_timeout,
        on_leaked_advisory_locks=on_leaked_advisory_locks,
        **connect_kwargs,
    )
