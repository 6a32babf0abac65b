"""Transaction blocks, as asyncpg's ``Connection.transaction()``: the outermost block is a
BEGIN/COMMIT, nested ones are savepoints."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from .exceptions import InterfaceError

if TYPE_CHECKING:
    from types import TracebackType

    from .connection import Connection

_ISOLATION_LEVELS = {
    "read_committed": "READ COMMITTED",
    "read_uncommitted": "READ UNCOMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}


class _State(enum.Enum):
    NEW = "new"
    STARTED = "started"
    COMMITTED = "committed"
    ROLLEDBACK = "rolled back"
    FAILED = "failed"


class Transaction:
    """Use with ``async with``, or call ``start()`` then ``commit()`` or ``rollback()``."""

    __slots__ = (
        "_conn",
        "_deferrable",
        "_isolation",
        "_nested",
        "_readonly",
        "_savepoint",
        "_state",
    )

    def __init__(
        self, conn: Connection, isolation: str | None, readonly: bool, deferrable: bool
    ) -> None:
        if isolation is not None and isolation not in _ISOLATION_LEVELS:
            raise ValueError(
                f"isolation must be one of {sorted(_ISOLATION_LEVELS)}, not {isolation!r}"
            )
        self._conn = conn
        self._isolation = isolation
        self._readonly = readonly
        self._deferrable = deferrable
        self._nested = False
        self._savepoint: str | None = None
        self._state = _State.NEW

    async def start(self) -> None:
        """Starts the transaction block, or a savepoint inside the current one."""
        if self._state is not _State.NEW:
            raise InterfaceError(f"cannot start a transaction that is already {self._state.value}")
        conn = self._conn
        top = conn._top_transaction
        if top is None:
            if conn.is_in_transaction():
                raise InterfaceError(
                    "cannot use Connection.transaction() in a manually started transaction"
                )
            parts = ["BEGIN"]
            if self._isolation is not None:
                parts.append("ISOLATION LEVEL " + _ISOLATION_LEVELS[self._isolation])
            if self._readonly:
                parts.append("READ ONLY")
            if self._deferrable:
                parts.append("DEFERRABLE")
            query = " ".join(parts)
        else:
            if self._isolation is not None and self._isolation != top._isolation:
                raise InterfaceError(
                    "nested transaction has a different isolation level than the enclosing one"
                )
            self._nested = True
            self._savepoint = f"pgoxide_savepoint_{id(self):x}"
            query = f"SAVEPOINT {self._savepoint}"
        try:
            await conn.execute(query)
        except BaseException:
            self._state = _State.FAILED
            raise
        if not self._nested:
            conn._top_transaction = self
        self._state = _State.STARTED

    async def commit(self) -> None:
        """Commits the block, or releases its savepoint."""
        query = f"RELEASE SAVEPOINT {self._savepoint}" if self._nested else "COMMIT"
        await self._finish(query, _State.COMMITTED)

    async def rollback(self) -> None:
        """Rolls the block back, or back to its savepoint."""
        if self._nested:
            query = f"ROLLBACK TO SAVEPOINT {self._savepoint}; RELEASE SAVEPOINT {self._savepoint}"
        else:
            query = "ROLLBACK"
        await self._finish(query, _State.ROLLEDBACK)

    async def _finish(self, query: str, state: _State) -> None:
        if self._state is not _State.STARTED:
            raise InterfaceError(f"cannot end a transaction that is {self._state.value}")
        try:
            await self._conn.execute(query)
            self._state = state
        except BaseException:
            self._state = _State.FAILED
            raise
        finally:
            if not self._nested and self._conn._top_transaction is self:
                self._conn._top_transaction = None

    async def __aenter__(self) -> Transaction:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()
        elif not self._conn.is_closed():
            await self.rollback()

    def __repr__(self) -> str:
        kind = "savepoint" if self._nested else "transaction"
        return f"<pgoxide.Transaction {kind} {self._state.value}>"
