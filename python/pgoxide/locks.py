"""Advisory locks: PostgreSQL's application-defined locks, as async context managers.

Session-level locks taken through :meth:`Connection.advisory_lock` are counted on the
connection. A connection that goes back to a pool still holding some calls the pool's
``on_leaked_advisory_locks(count)`` hook (by default a warning), and the pool's reset
releases them. Locks taken with plain SQL (``SELECT pg_advisory_lock(...)``) are not counted,
but the pool sees the statement and releases every advisory lock on reset.

A key is an ``int`` (a bigint) or a pair of ``int`` (two int4), as in PostgreSQL.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Union

from .exceptions import InterfaceError

if TYPE_CHECKING:
    from .connection import Connection

Key = Union[int, "tuple[int, int]"]


def _call(function: str, key: Key) -> tuple[str, tuple[int, ...]]:
    """The statement calling ``function`` with ``key``, and its arguments."""
    if isinstance(key, tuple):
        if len(key) != 2 or not all(isinstance(k, int) for k in key):
            raise TypeError("an advisory lock key is an int or a pair of ints")
        return f"SELECT {function}($1::int4, $2::int4)", key
    if not isinstance(key, int) or isinstance(key, bool):
        raise TypeError("an advisory lock key is an int or a pair of ints")
    return f"SELECT {function}($1::int8)", (key,)


class AdvisoryLock:
    """A session-level advisory lock of one connection: ``async with`` takes it (its value
    is whether it was acquired) and releases it; or call :meth:`acquire` and
    :meth:`release`."""

    __slots__ = ("_conn", "_key", "_shared", "_timeout", "_wait", "acquired")

    def __init__(
        self, conn: Connection, key: Key, *, shared: bool, wait: bool, timeout: float | None
    ) -> None:
        _call("pg_advisory_lock", key)  # checks the key
        self._conn = conn
        self._key = key
        self._shared = shared
        self._wait = wait
        self._timeout = timeout
        self.acquired = False

    async def acquire(self) -> bool:
        """Takes the lock: waits for it (up to ``timeout``, then ``TimeoutError``), or with
        ``wait=False`` tries once. Returns whether it is held."""
        if self.acquired:
            raise InterfaceError("this advisory lock is already held")
        kind = "_shared" if self._shared else ""
        function = f"pg_advisory_lock{kind}" if self._wait else f"pg_try_advisory_lock{kind}"
        sql, args = _call(function, self._key)
        conn = self._conn
        try:
            value = await conn._run_untracked(sql, args, self._timeout)
        except BaseException:
            # It may have been granted just as the caller gave up: let a pool release it.
            conn._advisory_lock_in_doubt()
            raise
        self.acquired = value is not False
        if self.acquired:
            held = conn._advisory_locks
            held[self._id] = held.get(self._id, 0) + 1
        return self.acquired

    async def release(self) -> None:
        """Releases the lock."""
        if not self.acquired:
            raise InterfaceError("this advisory lock is not held")
        kind = "_shared" if self._shared else ""
        sql, args = _call(f"pg_advisory_unlock{kind}", self._key)
        conn = self._conn
        self.acquired = False
        held = conn._advisory_locks
        count = held.get(self._id, 0) - 1
        if count > 0:
            held[self._id] = count
        else:
            held.pop(self._id, None)
        await conn._run_untracked(sql, args, self._timeout)

    @property
    def _id(self) -> tuple[Key, bool]:
        return (self._key, self._shared)

    async def __aenter__(self) -> bool:
        return await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.acquired and not self._conn.is_closed():
            await self.release()

    def __repr__(self) -> str:
        state = "held" if self.acquired else "not held"
        kind = "shared " if self._shared else ""
        return f"<pgoxide.AdvisoryLock {kind}{self._key!r} {state}>"


async def advisory_xact_lock(
    conn: Connection, key: Key, *, shared: bool = False, wait: bool = True
) -> bool:
    """Takes a transaction-level advisory lock, released when the transaction ends; with
    ``wait=False`` tries once. Returns whether it is held."""
    if not conn.is_in_transaction():
        raise InterfaceError(
            "advisory_xact_lock() needs a transaction block: outside one the lock would be "
            "released at once"
        )
    kind = "_shared" if shared else ""
    function = f"pg_advisory_xact_lock{kind}" if wait else f"pg_try_advisory_xact_lock{kind}"
    sql, args = _call(function, key)
    value = await conn.fetchval(sql, *args)
    return value is not False
