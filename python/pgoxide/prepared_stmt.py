"""Prepared statements: ``Connection.prepare()``, as asyncpg's."""

from __future__ import annotations

import json
import weakref
from collections.abc import Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _pgoxide, tracing
from .cursor import CursorFactory, Portal
from .introspection import type_of
from .operations import guarded
from .types import Attribute, Type

if TYPE_CHECKING:
    from .connection import Connection
    from .operations import OperationPath


Record = _pgoxide.Record


class PreparedStatement:
    """A statement prepared on the server, executed with different arguments.

    It owns its server-side statement, which is closed (with the connection's next request)
    once the object is garbage-collected. With ``statement_cache_size=0`` (poolers in
    transaction mode) it is unnamed: each execution parses it again in the same request.
    """

    __slots__ = (
        "__weakref__",
        "_conn",
        "_lease",
        "_ops",
        "_query",
        "_record_class",
        "_statusmsg",
        "_stmt",
    )

    def __init__(
        self,
        conn: Connection,
        ops: OperationPath,
        query: str,
        stmt: _pgoxide.Statement,
        record_class: type[Record] | None,
    ) -> None:
        self._conn = conn
        self._ops = ops
        self._lease = ops.lease
        self._query = query
        self._stmt = stmt
        self._record_class = record_class
        self._statusmsg: str | None = None
        if stmt.name:
            weakref.finalize(self, ops.session.close_statement, stmt.name)

    @guarded
    def get_name(self) -> str:
        """The statement's name on the server (empty when it is unnamed)."""
        return self._stmt.name

    @guarded
    def get_query(self) -> str:
        """The text of the statement."""
        return self._query

    @guarded
    def get_statusmsg(self) -> str | None:
        """The command tag of the last execution, e.g. ``'SELECT 3'``."""
        return self._statusmsg

    @guarded
    def get_parameters(self) -> tuple[Type, ...]:
        """The types of the statement's parameters."""
        return tuple(type_of(self._ops.session, oid) for oid in self._stmt.param_types)

    @guarded
    def get_attributes(self) -> tuple[Attribute, ...]:
        """The name and type of each result column."""
        session = self._ops.session
        return tuple(Attribute(name, type_of(session, oid)) for name, oid, *_ in self._stmt.columns)

    @guarded
    async def fetch(self, *args: Any, timeout: float | None = None) -> list[Record]:
        """Executes the statement and returns all rows."""
        return await self._traced("fetch", args, timeout, self._execute(args, 0, timeout))

    @guarded
    async def fetchrow(self, *args: Any, timeout: float | None = None) -> Record | None:
        """Executes the statement and returns the first row, or None."""
        rows = await self._traced("fetchrow", args, timeout, self._execute(args, 1, timeout))
        return rows[0] if rows else None

    @guarded
    async def fetchval(
        self, *args: Any, column: int | str = 0, timeout: float | None = None
    ) -> Any:
        """Executes the statement and returns one value of the first row, or None."""
        rows = await self._traced("fetchval", args, timeout, self._execute(args, 1, timeout))
        return rows[0][column] if rows else None

    async def _traced(
        self, kind: str, args: Any, timeout: float | None, run: Awaitable[list[Record]]
    ) -> list[Record]:
        """``run`` between the tracer's query hooks, if the connection has a tracer."""
        ops = self._ops
        tracer = ops.tracer
        if tracer is None:
            return await run
        event = tracing.QueryStart(
            kind, self._query, args if tracer.capture_parameters else None, timeout, ops.server
        )
        return await tracing.traced(tracer, "query", event, run, self._outcome)  # type: ignore[no-any-return]

    def _outcome(self, rows: list[Record]) -> tuple[int | None, str | None]:
        return len(rows), self._statusmsg

    @guarded
    async def executemany(
        self, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        """Executes the statement once per argument tuple, pipelined and atomic."""
        ops = self._ops
        ops.check_lease(self._lease)
        batch = ops.batch(self._statement, args, ops.deadline(timeout))
        if ops.tracer is None:
            await batch
            return
        event = tracing.QueryStart("executemany", self._query, None, timeout, ops.server)
        await tracing.traced(ops.tracer, "query", event, batch)

    @guarded
    async def fetchmany(
        self, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> list[Record]:
        """Executes the statement once per argument tuple; the rows of all (one round trip,
        atomic)."""
        ops = self._ops
        ops.check_lease(self._lease)
        rows, self._statusmsg = await ops.batch(
            self._statement,
            args,
            ops.deadline(timeout),
            collect=True,
            record_class=self._record_class,
        )
        return rows  # type: ignore[no-any-return]

    async def _statement(self) -> _pgoxide.Statement:
        return self._stmt

    @guarded
    def cursor(
        self,
        *args: Any,
        prefetch: int | None = None,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> CursorFactory:
        """A cursor over the statement's rows with ``args`` (see :meth:`Connection.cursor`)."""
        ops, stmt = self._ops, self._stmt

        async def resolve(query: str, deadline: float | None) -> _pgoxide.Statement:
            return stmt

        def portal() -> Portal:
            return Portal(
                ops,
                resolve,
                self._query,
                args,
                record_class or self._record_class,
                ops.deadline(timeout),
                stmt,
            )

        return CursorFactory(ops, portal, prefetch)

    @guarded
    async def explain(self, *args: Any, analyze: bool = False) -> Any:
        """The server's plan for the statement with ``args``, as decoded JSON. With
        ``analyze`` the statement is run, inside a transaction that is rolled back."""
        query = f"EXPLAIN (FORMAT JSON, VERBOSE{', ANALYZE' if analyze else ''}) {self._query}"
        if not analyze:
            return _plan(await self._conn.fetchval(query, *args))
        transaction = self._conn.transaction()
        await transaction.start()
        try:
            return _plan(await self._conn.fetchval(query, *args))
        finally:
            await transaction.rollback()

    async def _execute(
        self, args: Sequence[Any], limit: int, timeout: float | None
    ) -> list[Record]:
        ops = self._ops
        ops.check_lease(self._lease)
        session, record_class, stmt = ops.session, self._record_class, self._stmt
        if stmt.name:
            rows, self._statusmsg = await ops.request(
                lambda: session.bind_execute(stmt, args, limit, record_class),
                ops.deadline(timeout),
            )
        else:
            # Unnamed (poolers): parsed again with each execution, in the same request.
            rows, self._statusmsg, *redescribed = await ops.request(
                lambda: session.parse_bind_execute(stmt, args, limit, record_class),
                ops.deadline(timeout),
            )
            if redescribed:
                self._stmt = redescribed[0]
        return rows  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<pgoxide.PreparedStatement {self._query!r}>"


def _plan(value: Any) -> Any:
    # json columns decode to Python objects already; a user text codec may return str.
    return json.loads(value) if isinstance(value, str) else value
