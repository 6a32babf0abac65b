"""Explicit pipelines: ``async with conn.pipeline() as p``.

Calls made on ``p`` return awaitables and are sent together, when the block ends or when one
of them is awaited. By default each call has its own Sync (as concurrent calls on a
connection do): a failure belongs to that call alone, and ``p.results`` holds every result
or exception by index. With ``atomic=True`` the whole pipeline has one Sync and runs in one
implicit transaction (or the current transaction block): after the first failure the server
skips the rest, which fail with :class:`~pgoxide.exceptions.PipelineAbortedError`, and the
block raises the failure when it ends. Its statements are all prepared before any of it is sent
(a preparation has a Sync of its own), so a call cannot use a table an earlier call of the same
atomic pipeline creates; each send (the block's end, or awaiting a call inside it) is one
implicit transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _pgoxide, tracing
from .exceptions import InterfaceError, PipelineAbortedError, PostgresError

if TYPE_CHECKING:
    from types import TracebackType

    from .connection import Connection
    from .cursor import Resolve
    from .operations import OperationPath


Record = _pgoxide.Record


class _Spec:
    """What a pipeline call asks for."""

    __slots__ = ("args", "column", "kind", "query", "record_class")

    def __init__(
        self,
        kind: str,
        query: str,
        args: tuple[Any, ...],
        *,
        record_class: type[Record] | None = None,
        column: int | str = 0,
    ) -> None:
        self.kind = kind
        self.query = query
        self.args = args
        self.record_class = record_class
        self.column = column

    def send(
        self, session: _pgoxide.Session, ops: OperationPath, stmt: _pgoxide.Statement
    ) -> list[asyncio.Future[Any]]:
        """Writes the call without a Sync of its own (an atomic pipeline's); the futures of
        its executions."""
        encode = session.bind_execute if stmt.name else session.parse_bind_execute
        limit = 1 if self.kind in ("fetchrow", "fetchval") else 0
        rows = self.args[0] if self.kind == "executemany" else (self.args,)
        return [ops.send(encode(stmt, args, limit, self.record_class, "", False)) for args in rows]

    async def collect(
        self, ops: OperationPath, futures: list[asyncio.Future[Any]], deadline: float | None
    ) -> Any:
        """The call's result from its executions' results."""
        results = [await ops.wait(fut, deadline) for fut in futures]
        if self.kind == "executemany":
            return None
        rows, tag, *_ = results[0]
        if self.kind == "execute":
            return tag or ""
        if self.kind == "fetch":
            return rows
        if self.kind == "fetchrow":
            return rows[0] if rows else None
        return rows[0][self.column] if rows else None

    def run(self, conn: Connection, timeout: float | None) -> Awaitable[Any]:
        """The call on the connection (its own Sync)."""
        kind, query, args = self.kind, self.query, self.args
        if kind == "execute":
            return conn.execute(query, *args, timeout=timeout)
        if kind == "executemany":
            return conn.executemany(query, args[0], timeout=timeout)
        if kind == "fetchval":
            return conn.fetchval(query, *args, column=self.column, timeout=timeout)
        method = conn.fetch if kind == "fetch" else conn.fetchrow
        return method(query, *args, timeout=timeout, record_class=self.record_class)


class PipelineCall:
    """One call of a pipeline: await it for its result (this sends the pipeline's calls
    that were not sent yet)."""

    __slots__ = ("_pipeline", "_spec", "_task", "index")

    def __init__(self, pipeline: Pipeline, index: int, spec: _Spec) -> None:
        self._pipeline = pipeline
        self._spec = spec
        self._task: asyncio.Future[Any] | None = None
        self.index = index

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        if self._task is None:
            await self._pipeline.sync()
        assert self._task is not None
        return await self._task

    def __repr__(self) -> str:
        state = "unsent" if self._task is None else "sent"
        return f"<pgoxide.PipelineCall #{self.index} {state}>"


class Pipeline:
    """Calls collected on one connection and sent together. Create it with
    :meth:`Connection.pipeline`."""

    def __init__(
        self,
        conn: Connection,
        ops: OperationPath,
        resolve: Resolve,
        *,
        atomic: bool,
        timeout: float | None,
    ) -> None:
        self._conn = conn
        self._ops = ops
        self._lease = ops.lease
        self._resolve = resolve
        self._atomic = atomic
        self._timeout = timeout
        self._deadline: float | None = None
        self._calls: list[PipelineCall] = []
        self._unsent: list[PipelineCall] = []
        # An atomic pipeline's Syncs: each one's ReadyForQuery is its commit.
        self._ends: list[asyncio.Future[Any]] = []
        self._closed = False
        # (tracer, context, start time) while a tracer follows the block.
        self._trace: tuple[Any, Any, float] | None = None

    # -- calls ------------------------------------------------------------------------------

    def execute(self, query: str, *args: Any) -> PipelineCall:
        """As :meth:`Connection.execute` (in an atomic pipeline, one statement)."""
        return self._add(_Spec("execute", query, args))

    def fetch(
        self, query: str, *args: Any, record_class: type[Record] | None = None
    ) -> PipelineCall:
        """As :meth:`Connection.fetch`."""
        return self._add(_Spec("fetch", query, args, record_class=record_class))

    def fetchrow(
        self, query: str, *args: Any, record_class: type[Record] | None = None
    ) -> PipelineCall:
        """As :meth:`Connection.fetchrow`."""
        return self._add(_Spec("fetchrow", query, args, record_class=record_class))

    def fetchval(self, query: str, *args: Any, column: int | str = 0) -> PipelineCall:
        """As :meth:`Connection.fetchval`."""
        return self._add(_Spec("fetchval", query, args, column=column))

    def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> PipelineCall:
        """As :meth:`Connection.executemany`."""
        return self._add(_Spec("executemany", command, (list(args),)))

    def _add(self, spec: _Spec) -> PipelineCall:
        if self._closed:
            raise InterfaceError("this pipeline has ended: make calls inside its block")
        self._ops.check_lease(self._lease)
        call = PipelineCall(self, len(self._calls), spec)
        self._calls.append(call)
        self._unsent.append(call)
        return call

    # -- sending ----------------------------------------------------------------------------

    async def sync(self) -> None:
        """Sends the calls made so far (awaiting a call, or the block's end, does this)."""
        unsent, self._unsent = self._unsent, []
        if not unsent:
            return
        self._ops.check_lease(self._lease)
        if self._deadline is None:
            self._deadline = self._ops.deadline(self._timeout)
        if self._atomic:
            await self._send_atomic(unsent)
            return
        timeout = self._remaining()
        # Started in this tick, in order: they take their turns one after another and leave
        # in one write, each with its own Sync.
        conn = self._conn
        for call in unsent:
            call._task = asyncio.ensure_future(call._spec.run(conn, timeout))

    async def _send_atomic(self, calls: list[PipelineCall]) -> None:
        """Writes ``calls`` with one Sync after the last: one implicit transaction."""
        ops, deadline = self._ops, self._deadline
        session = ops.session
        loop = ops.loop
        sent: list[list[asyncio.Future[Any]]] = []
        # The call that failed before it was sent, and why.
        failed: tuple[int, BaseException] | None = None
        await ops.take(deadline)
        try:
            # Every statement is prepared first: a preparation ends with a Sync of its own,
            # which would commit the pipeline's implicit transaction half-way.
            statements: dict[str, _pgoxide.Statement] = {}
            for i, call in enumerate(calls):
                query = call._spec.query
                if query not in statements:
                    try:
                        statements[query] = await self._resolve(query, deadline)
                    except PostgresError as e:
                        failed = (i, e)
                        break
            if failed is None:
                for i, call in enumerate(calls):
                    try:
                        sent.append(call._spec.send(session, ops, statements[call._spec.query]))
                    except Exception as e:
                        # Nothing of this call was sent; what was sent before is rolled back.
                        failed = (i, e)
                        break
                end = ops.send(session.sync(abort=failed is not None))
                self._ends.append(asyncio.ensure_future(ops.wait(end, deadline)))
        finally:
            ops.release()
        for call, futures in zip(calls, sent):
            call._task = asyncio.ensure_future(call._spec.collect(ops, futures, deadline))
        for i, call in enumerate(calls[len(sent) :], len(sent)):
            task = loop.create_future()
            if failed is not None and failed[0] == i:
                task.set_exception(failed[1])
            else:
                task.set_exception(
                    PipelineAbortedError("not run: another call of the atomic pipeline failed")
                )
            call._task = task

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._ops.loop.time())

    @property
    def results(self) -> list[Any]:
        """Every call's result, or the exception it raised, by index (once the block has
        ended)."""
        out: list[Any] = []
        for call in self._calls:
            task = call._task
            if task is None or not task.done():
                raise InterfaceError("the pipeline's results are known once its block has ended")
            if task.cancelled():
                out.append(asyncio.CancelledError())
            else:
                out.append(task.exception() or task.result())
        return out

    async def __aenter__(self) -> Pipeline:
        self._deadline = self._ops.deadline(self._timeout)
        tracer = self._ops.tracer
        if tracer is not None:
            event = tracing.PipelineStart(self._atomic, self._ops.server)
            self._trace = (tracer, tracing.start(tracer, "pipeline", event), time.perf_counter())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._trace is None:
            await self._end(exc_type)
            return
        tracer, context, began = self._trace
        error: BaseException | None = exc
        try:
            await self._end(exc_type)
        except BaseException as e:
            error = e
            raise
        finally:
            details = {"operations": len(self._calls)}
            end = tracing.End(time.perf_counter() - began, error, details=details)
            tracing.end(tracer, "pipeline", context, end)

    async def _end(self, exc_type: type[BaseException] | None) -> None:
        """Sends what is left and waits for every call (the block's end)."""
        self._closed = True
        if exc_type is not None:
            # The block failed before its end: what was not sent is dropped.
            self._unsent.clear()
        else:
            await self.sync()
        tasks = [c._task for c in self._calls if c._task is not None]
        if tasks:
            outcomes = await asyncio.gather(*tasks, *self._ends, return_exceptions=True)
            if self._atomic and exc_type is None:
                # Nothing of an atomic pipeline committed if a call failed, or if its end
                # (the commit) never came back though every call did: say so here too.
                for outcome in outcomes:
                    if isinstance(outcome, BaseException) and not isinstance(
                        outcome, PipelineAbortedError
                    ):
                        raise outcome

    def __repr__(self) -> str:
        mode = "atomic" if self._atomic else "sync per call"
        return f"<pgoxide.Pipeline {mode}, {len(self._calls)} calls>"
