"""Transaction blocks, as asyncpg's ``Connection.transaction()``: the outermost block is a
BEGIN/COMMIT, nested ones are savepoints."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from .exceptions import InterfaceError, PostgresError
from .operations import guarded, ignore_result

if TYPE_CHECKING:
    from types import TracebackType

    from .connection import Connection
    from .operations import OperationPath

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
        "_lease",
        "_managed",
        "_nested",
        "_ops",
        "_readonly",
        "_savepoint",
        "_state",
    )

    def __init__(
        self,
        conn: Connection,
        ops: OperationPath,
        isolation: str | None,
        readonly: bool,
        deferrable: bool,
    ) -> None:
        if isolation is not None and isolation not in _ISOLATION_LEVELS:
            raise ValueError(
                f"isolation must be one of {sorted(_ISOLATION_LEVELS)}, not {isolation!r}"
            )
        self._conn = conn
        self._ops = ops
        self._lease = ops.lease
        self._isolation = isolation
        self._readonly = readonly
        self._deferrable = deferrable
        # Inside `async with`: the block's exit ends it, never a manual commit or rollback.
        self._managed = False
        self._nested = False
        self._savepoint: str | None = None
        self._state = _State.NEW

    @guarded
    async def start(self) -> None:
        """Starts the transaction block, or a savepoint inside the current one.

        From then until it ends, only calls made inside the block (by this task, or tasks
        it starts) run on the connection; other tasks' calls wait."""
        if self._state is not _State.NEW:
            raise InterfaceError(self._state_error("start"))
        ops = self._ops
        ops.check_lease(self._lease)
        deadline = ops.deadline(None)
        await ops.take(deadline)
        try:
            query = await self._begin_query(deadline)
            fut = ops.send(ops.session.simple_query(query))
            if not self._nested:
                ops.own(self)
        except BaseException:
            self._state = _State.FAILED
            raise
        finally:
            ops.release()
        try:
            await ops.wait(fut, deadline)
        except BaseException:
            self._state = _State.FAILED
            self._end_ownership()
            raise
        self._state = _State.STARTED

    async def _begin_query(self, deadline: float | None) -> str:
        """BEGIN for the outermost block, SAVEPOINT for a nested one (the turn is held, so
        the connection's state cannot change meanwhile)."""
        top = self._ops.owner
        if top is None:
            if self._conn.is_in_transaction():
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
            return " ".join(parts)
        assert isinstance(top, Transaction)
        if self._isolation is not None:
            outer = top._isolation
            if outer is None:  # the session's default, as asyncpg reads it
                rows = await self._conn._run_held("SHOW transaction_isolation", (), deadline)
                outer = rows[0][0].replace(" ", "_")
            if self._isolation != outer:
                raise InterfaceError(
                    "nested transaction has a different isolation level: "
                    f"current {self._isolation!r} != outer {outer!r}"
                )
        self._nested = True
        self._savepoint = f"pgoxide_savepoint_{id(self):x}"
        return f"SAVEPOINT {self._savepoint}"

    def _end_ownership(self) -> None:
        if not self._nested:
            self._ops.disown(self)

    @guarded
    async def commit(self) -> None:
        """Commits the block, or releases its savepoint."""
        if self._managed:
            raise InterfaceError("cannot manually commit from within an `async with` block")
        await self._commit()

    async def _commit(self) -> None:
        query = f"RELEASE SAVEPOINT {self._savepoint}" if self._nested else "COMMIT"
        await self._finish(query, _State.COMMITTED)

    @guarded
    async def rollback(self) -> None:
        """Rolls the block back, or back to its savepoint."""
        if self._managed:
            raise InterfaceError("cannot manually rollback from within an `async with` block")
        await self._rollback()

    async def _rollback(self) -> None:
        if self._nested:
            query = f"ROLLBACK TO SAVEPOINT {self._savepoint}; RELEASE SAVEPOINT {self._savepoint}"
        else:
            query = "ROLLBACK"
        await self._finish(query, _State.ROLLEDBACK)

    async def _finish(self, query: str, state: _State) -> None:
        if self._state is not _State.STARTED:
            raise InterfaceError(
                self._state_error("commit" if state is _State.COMMITTED else "rollback")
            )
        ops = self._ops
        if self._lease is not ops.lease:
            # The pool rolled it back when the connection was released.
            self._state = _State.FAILED
            ops.check_lease(self._lease)
        deadline = ops.deadline(None)
        try:
            await ops.take(deadline)
        except BaseException:
            self._state = _State.FAILED
            if not self._nested:
                # Given up before the block's end was sent (cancelled again while waiting):
                # the server's transaction must still end, and the connection stays the
                # block's until it has.
                ops.spawn(self._roll_back_later())
            raise
        try:
            try:
                fut = ops.send(ops.session.simple_query(query))
            finally:
                # The block ends with this request: other tasks' calls may follow it.
                self._end_ownership()
                ops.release()
            await ops.wait(fut, deadline)
            self._state = state
        except BaseException as error:
            self._state = _State.FAILED
            self._end_ownership()
            if isinstance(error, PostgresError) and not self._nested:
                await self._end_failed_end(deadline)
            raise

    async def _end_failed_end(self, deadline: float | None) -> None:
        """After the server refused the block's own COMMIT or ROLLBACK (one it could not
        even parse, say): the transaction must not outlive the block, so it is rolled back."""
        if self._conn.is_closed() or not self._conn.is_in_transaction():
            return
        ops = self._ops
        await ops.take(deadline)
        try:
            fut = ops.send(ops.session.simple_query("ROLLBACK"))
        finally:
            ops.release()
        await ops.wait(fut, deadline)

    def _state_error(self, action: str) -> str:
        """Why ``action`` cannot be done in the current state, in asyncpg's words."""
        why = {
            _State.NEW: "the transaction is not yet started",
            _State.STARTED: "the transaction is already started",
            _State.COMMITTED: "the transaction is already committed",
            _State.ROLLEDBACK: "the transaction is already rolled back",
            _State.FAILED: "the transaction is in error state",
        }[self._state]
        return f"cannot {action}; {why}"

    async def _roll_back_later(self) -> None:
        """ROLLBACK of a block whose caller stopped waiting to end it (runs in a task of
        its own, inside the block)."""
        ops = self._ops
        try:
            await ops.take(None)
        except Exception:
            self._end_ownership()  # the connection is gone, and the transaction with it
            return
        try:
            ignore_result(ops.send(ops.session.simple_query("ROLLBACK")))
        finally:
            self._end_ownership()
            ops.release()

    async def __aenter__(self) -> Transaction:
        if self._managed:
            raise InterfaceError("cannot enter context: already in an `async with` block")
        self._managed = True
        try:
            await self.start()
        except BaseException:
            self._managed = False
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._managed = False
        if self._lease is not self._ops.lease:
            # The connection went back to its pool meanwhile (a generator finalised late):
            # the pool already rolled the block back.
            self._state = _State.FAILED
            return
        if exc_type is None:
            await self._commit()
        elif not self._conn.is_closed():
            await self._rollback()
        else:
            self._state = _State.FAILED
            self._end_ownership()

    def __repr__(self) -> str:
        kind = "savepoint" if self._nested else "transaction"
        return f"<pgoxide.Transaction {kind} {self._state.value}>"
