"""COPY: bulk loading and export, as operations on the connection's path.

A COPY keeps the connection's turn from its statement to its end: while the server is in COPY
mode, everything written belongs to the copy. Data goes out one CopyData at a time as the
socket drains (each write awaits the transport's high-water mark). Data comes in as the bytes
of each read from the socket, or as records decoded in Rust from binary COPY; reading pauses
while more than a few reads wait for the consumer. Memory stays bounded both ways.

Records are encoded in Rust with the connection's codecs, user codecs included, as binary
COPY. When a column's type has only a text codec, the whole COPY uses the text format.

A COPY FROM STDIN that cannot finish (a record that cannot be encoded, the source raising,
the caller cancelled or out of time) sends CopyFail, so the server aborts it and writes
nothing; a server error stops the source from being pulled. A COPY TO STDOUT left early is
cancelled with a CancelRequest, like any abandoned call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import decimal
import os
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Union

from . import _pgoxide, tracing
from .exceptions import InterfaceError

if TYPE_CHECKING:
    from .operations import OperationPath

Record = _pgoxide.Record
Session = _pgoxide.Session

Source = Union[
    str, "os.PathLike[str]", BinaryIO, AsyncIterable[bytes], bytes, bytearray, memoryview
]
Sink = Union[str, "os.PathLike[str]", BinaryIO, Callable[[bytes], Awaitable[Any]]]

# Finds a query's statement (cached or prepared now) while the caller holds the turn.
Resolve = Callable[[str, "float | None"], Awaitable[_pgoxide.Statement]]
# Runs a query while the caller holds the turn; returns its rows.
RunHeld = Callable[[str, Sequence[Any], "float | None"], Awaitable[list[Record]]]

_COPY_IN = _pgoxide.ITEM_COPY_IN

# Bytes per CopyData sent (records are encoded up to about this much at a time), and the size
# of each read from a file source.
_CHUNK = 256 * 1024
# Records of an async iterable encoded together.
_RECORD_BATCH = 1024
# Reads of COPY TO STDOUT data held for a slow consumer before reading the socket pauses.
_MAX_QUEUED = 4


# -- SQL ---------------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def table_sql(table_name: str, schema_name: str | None, columns: Iterable[str] | None) -> str:
    """``schema.table (columns)``, quoted."""
    name = quote_ident(table_name)
    if schema_name:
        name = f"{quote_ident(schema_name)}.{name}"
    if columns:
        name += " (" + ", ".join(quote_ident(c) for c in columns) + ")"
    return name


def select_sql(
    table_name: str, schema_name: str | None, columns: Iterable[str] | None, where: str | None
) -> str:
    """The SELECT that reads (or describes) the copied columns of a table."""
    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    sql = f"SELECT {cols} FROM {table_sql(table_name, schema_name, None)}"
    return f"{sql} WHERE {where}" if where else sql


def options_sql(**options: Any) -> str:
    """The COPY options clause, rendered as asyncpg renders its keyword arguments."""
    parts = []
    force_quote = options.pop("force_quote", None)
    if isinstance(force_quote, bool):
        if force_quote:
            parts.append("FORCE_QUOTE *")
    elif force_quote is not None:
        options = {"force_quote": force_quote, **options}
    for key, value in options.items():
        if value is None:
            continue
        if key in ("force_quote", "force_not_null", "force_null"):
            rendered = "(" + ", ".join(quote_ident(c) for c in value) + ")"
        elif key in ("oids", "freeze", "header"):
            rendered = str(value)
        else:
            rendered = quote_literal(str(value))
        parts.append(f"{key.upper()} {rendered}")
    return f"({', '.join(parts)})" if parts else ""


def literal(value: Any) -> str:
    """``value`` as an SQL literal, for arguments of a raw COPY statement (which the server
    cannot take as parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, decimal.Decimal)):
        text = str(value)
        return text if value == value and abs(value) != float("inf") else quote_literal(text)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return quote_literal("\\x" + bytes(value).hex()) + "::bytea"
    if isinstance(value, (str, datetime.date, datetime.time, datetime.timedelta, uuid.UUID)):
        return quote_literal(str(value))
    raise InterfaceError(
        f"cannot pass a {type(value).__name__} to a raw COPY statement: its arguments are "
        "written into it as literals (str, int, float, Decimal, bool, None, bytes, date and "
        "time values, UUID)"
    )


def substitute(query: str, literals: Sequence[str]) -> str:
    """``query`` with ``$n`` replaced by ``literals[n - 1]``."""

    def replace(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 0 < n <= len(literals):
            raise InterfaceError(
                f"the query refers to ${n}, but {len(literals)} arguments were passed"
            )
        return literals[n - 1]

    return re.sub(r"\$(\d+)\b", replace, query)


# -- the operations ----------------------------------------------------------------------------


class Copier:
    """The COPY operations of one connection."""

    def __init__(self, ops: OperationPath, resolve: Resolve, run_held: RunHeld) -> None:
        self._ops = ops
        self._resolve = resolve
        self._run_held = run_held

    async def within(self, timeout: float | None, coro: Awaitable[str]) -> str:
        """Runs a whole COPY, the source's or sink's time included, within ``timeout`` (or
        the connection's ``command_timeout``)."""
        if timeout is None:
            timeout = self._ops.command_timeout
        if timeout is None:
            return await coro
        return await asyncio.wait_for(coro, timeout)

    # -- COPY FROM STDIN ---------------------------------------------------------------------

    async def copy_in(self, sql: str, source: Source) -> str:
        """Runs COPY FROM STDIN ``sql`` with the bytes of ``source``."""
        chunks = _chunks(source, self._ops.loop)
        try:

            async def produce(send: _Sender) -> bool:
                async for chunk in chunks:
                    if not await send(Session.copy_data(chunk)):
                        break
                return False

            return await self._copy_in(_ready(sql), produce)
        finally:
            await chunks.aclose()

    async def copy_records_in(self, sql: Callable[[bool], str], describe: str, records: Any) -> str:
        """Runs COPY FROM STDIN ``sql(text)`` with ``records`` encoded by the column codecs
        of ``describe`` (a SELECT of the target columns): binary, or text (``text`` True)
        when a column has only a text codec."""
        encoders: list[_RecordEncoder] = []

        async def prepare() -> str:
            stmt = await self._resolve(describe, None)
            text = bool(stmt.text_columns)
            encoders.append(_RecordEncoder(stmt, text))
            return sql(text)

        async def produce(send: _Sender) -> bool:
            encoder = encoders[0]
            if hasattr(records, "__aiter__"):
                batch: list[Any] = []
                async for record in records:
                    batch.append(record)
                    if len(batch) >= _RECORD_BATCH:
                        if not await encoder.send(iter(batch), send):
                            return False
                        batch = []
                if batch or encoder.header:
                    await encoder.send(iter(batch), send)
            else:
                await encoder.send(iter(records), send)
            return not encoder.text

        return await self._copy_in(prepare(), produce)

    async def _copy_in(
        self, sql: Awaitable[str], produce: Callable[[_Sender], Awaitable[bool]]
    ) -> str:
        """Sends COPY FROM STDIN ``await sql`` (awaited once the turn has come), then what
        ``produce`` writes; ``produce`` returns whether the binary trailer ends the data."""
        ops = self._ops
        protocol = ops.protocol
        fut: asyncio.Future[Any] | None = None
        try:
            await ops.take(None)
        except BaseException:
            with contextlib.suppress(BaseException):
                sql.close()  # type: ignore[attr-defined]
            raise
        try:
            statement = await sql
            ready: asyncio.Future[None] = ops.loop.create_future()

            def receive(kind: int, payload: Any) -> None:
                if kind == _COPY_IN and not ready.done():
                    ready.set_result(None)

            fut = ops.send(ops.session.copy(statement, "in"))
            protocol.receive_copy(fut, receive)
            try:
                await asyncio.wait((ready, fut), return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
            if not fut.done():
                trailer = await _until_failed(produce(_Sender(protocol, fut)), fut)
                if not fut.done():
                    protocol.write(Session.copy_in_done(trailer))
        except BaseException as exc:
            if fut is not None and not fut.done():
                # Nothing of it may be written: the server aborts the COPY.
                protocol.write(Session.copy_in_fail(_reason(exc)))
                fut.cancel()
                if isinstance(exc, asyncio.CancelledError):
                    # It may be stuck (a slow trigger): a CancelRequest ends that too.
                    ops.abandon()
            raise
        finally:
            if fut is not None:
                protocol.receive_copy(fut, None)
            ops.release()
        return await ops.wait(fut, None)  # type: ignore[no-any-return]

    # -- COPY TO STDOUT ----------------------------------------------------------------------

    async def copy_out(self, sql: str, output: Sink) -> str:
        """Runs COPY TO STDOUT ``sql``, handing each read of its data to ``output``."""
        write, close = await _sink(output, self._ops.loop)
        try:
            stream = CopyOutStream(self, lambda _: _ready(sql), None, None, traced=False)
            try:
                async for chunk in stream:
                    await write(chunk)
            finally:
                await stream.aclose()
            assert stream.status is not None
            return stream.status
        finally:
            await close()

    async def literal_query(self, query: str, args: Sequence[Any], deadline: float | None) -> str:
        """``query`` with its arguments written in as literals of their parameter types
        (COPY takes no parameters); the caller holds the turn."""
        if not args:
            return query
        stmt = await self._resolve(query, deadline)
        types = stmt.param_types
        if len(types) != len(args):
            raise InterfaceError(
                f"the server expects {len(types)} arguments for this query, {len(args)} were passed"
            )
        names = [self._type_sql(oid) for oid in types]
        # The server renders each value as its type's literal.
        quoting = "SELECT " + ", ".join(
            f"quote_nullable(${i}::{name}::text)" for i, name in enumerate(names, 1)
        )
        rows = await self._run_held(quoting, args, deadline)
        return substitute(query, [f"{lit}::{name}" for lit, name in zip(rows[0], names)])

    def _type_sql(self, oid: int) -> str:
        info = self._ops.session.type_info(oid)
        if info is None:
            raise InterfaceError(f"unknown type with OID {oid}")
        schema, name, _ = info
        # Named as asyncpg names types: an array is its element's name and [].
        suffix = ""
        while name.endswith("[]"):
            name, suffix = name[:-2], suffix + "[]"
        return f"{quote_ident(schema)}.{quote_ident(name)}{suffix}"


async def _until_failed(produce: Awaitable[bool], fut: asyncio.Future[Any]) -> bool:
    """Runs ``produce`` unless ``fut`` (the COPY) fails first: then the source is no longer
    pulled, even if it is waiting for its next item, and the failure is raised."""
    producer = asyncio.ensure_future(produce)
    try:
        await asyncio.wait((producer, fut), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(BaseException):
                await producer
    if producer.cancelled() and fut.done():
        return await fut  # type: ignore[no-any-return]  # raises the server's error
    return producer.result()


async def _ready(sql: str) -> str:
    return sql


class _Sender:
    """Writes CopyData messages of one COPY FROM STDIN as the socket drains."""

    __slots__ = ("_fut", "_protocol")

    def __init__(self, protocol: Any, fut: asyncio.Future[Any]) -> None:
        self._protocol = protocol
        self._fut = fut

    async def __call__(self, message: bytes) -> bool:
        """Writes ``message``; False once the server has ended the COPY (an error arrived):
        the producer stops."""
        if self._fut.done():
            return False
        self._protocol.write(message)
        await self._protocol.writable()
        return not self._fut.done()


class _RecordEncoder:
    """Records into CopyData messages, the header with the first."""

    __slots__ = ("count", "header", "stmt", "text")

    def __init__(self, stmt: _pgoxide.Statement, text: bool) -> None:
        self.stmt = stmt
        self.text = text
        self.header = True
        self.count = 0

    async def send(self, records: Any, send: _Sender) -> bool:
        more = True
        while more:
            message, n, more = Session.copy_records(
                self.stmt, records, _CHUNK, self.count, self.header, self.text
            )
            self.header = False
            self.count += n
            if not await send(message):
                return False
        return True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "the COPY was cancelled by the client"
    if isinstance(exc, asyncio.TimeoutError):
        return "the COPY timed out on the client"
    try:
        text = str(exc)
    except Exception:  # an exception that cannot print itself still fails the COPY
        text = "(the error could not be formatted)"
    return f"the client failed: {type(exc).__name__}: {text}"[:1000]


# -- sources and sinks -------------------------------------------------------------------------


async def _chunks(source: Source, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[Any, None]:
    """The bytes of a COPY source, a chunk at a time."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), _CHUNK):
            yield view[start : start + _CHUNK]
    elif isinstance(source, (str, os.PathLike)):
        f = await loop.run_in_executor(None, open, source, "rb")
        try:
            while chunk := await loop.run_in_executor(None, f.read, _CHUNK):
                yield chunk
        finally:
            await loop.run_in_executor(None, f.close)
    elif hasattr(source, "__aiter__"):
        async for chunk in source:  # type: ignore[union-attr]
            if isinstance(chunk, str):
                raise TypeError("COPY sources yield bytes, not str: encode the text first")
            yield chunk
    elif hasattr(source, "read"):
        read = source.read
        if asyncio.iscoroutinefunction(read):
            while chunk := await read(_CHUNK):
                yield chunk
        else:
            while chunk := await loop.run_in_executor(None, read, _CHUNK):
                if isinstance(chunk, str):
                    raise TypeError("COPY sources are read in binary mode: open the file with 'rb'")
                yield chunk
    else:
        raise TypeError(
            "source must be a path, a binary file object, an async iterable of bytes or a "
            f"bytes-like object, not {type(source).__name__}"
        )


Write = Callable[[bytes], Awaitable[Any]]


async def _sink(
    output: Sink, loop: asyncio.AbstractEventLoop
) -> tuple[Write, Callable[[], Awaitable[None]]]:
    """How to write COPY data to ``output``, and how to finish with it."""

    async def nothing() -> None:
        return None

    if isinstance(output, (str, os.PathLike)):
        f = await loop.run_in_executor(None, open, output, "wb")

        async def write_file(data: bytes) -> None:
            await loop.run_in_executor(None, f.write, data)

        async def close() -> None:
            await loop.run_in_executor(None, f.close)

        return write_file, close
    if hasattr(output, "write"):
        write = output.write  # type: ignore[union-attr]
        if asyncio.iscoroutinefunction(write):
            return write, nothing

        async def write_object(data: bytes) -> None:
            await loop.run_in_executor(None, write, data)

        return write_object, nothing
    if callable(output):
        return output, nothing
    raise TypeError(
        "output is expected to be a path, a binary file object or a coroutine function, not "
        f"{type(output).__name__}"
    )


# -- COPY TO STDOUT streams --------------------------------------------------------------------


class _Receiver:
    """The data of one COPY TO STDOUT, queued for its consumer as it arrives: the bytes of
    each read, or a list of records per read. Reading pauses while more than
    ``_MAX_QUEUED`` reads wait."""

    __slots__ = ("_fut", "_paused", "_protocol", "_queue", "_waiter")

    def __init__(self, protocol: Any, fut: asyncio.Future[Any]) -> None:
        self._protocol = protocol
        self._fut = fut
        self._queue: collections.deque[Any] = collections.deque()
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        protocol.receive_copy(fut, self._receive)
        fut.add_done_callback(self._wake)

    def _receive(self, kind: int, payload: Any) -> None:
        queue = self._queue
        queue.append(payload)
        if len(queue) >= _MAX_QUEUED and not self._paused:
            self._paused = True
            self._protocol.pause_reading()
        self._wake()

    def _wake(self, *_: Any) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, deadline: float | None) -> Any:
        """The next read's data, or None once the COPY has ended."""
        queue = self._queue
        loop = self._protocol.loop
        if deadline is not None and loop.time() >= deadline:
            raise asyncio.TimeoutError()
        while not queue:
            if self._fut.done():
                return None
            self._waiter = loop.create_future()
            timer = None if deadline is None else loop.call_at(deadline, self._wake)
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not queue and deadline is not None and loop.time() >= deadline:
                raise asyncio.TimeoutError()
        data = queue.popleft()
        if self._paused and not queue:
            self._paused = False
            self._protocol.resume_reading()
        return data

    def stop(self) -> None:
        """Drops what is queued and what still arrives; reading goes on."""
        self._protocol.receive_copy(self._fut, None)
        self._queue.clear()
        if self._paused:
            self._paused = False
            self._protocol.resume_reading()


class CopyOutStream:
    """An async iterator over a COPY TO STDOUT: its records, decoded in Rust from binary COPY
    (``copy_records_from_query``, ``copy_records_from_table``; text COPY when a column's type
    has only a text codec), or the bytes of each read (``copy_out``).

    The COPY starts with the first ``__anext__`` and keeps the connection's turn until it
    ends: calls from other tasks wait, and one from the task iterating raises
    :class:`~pgoxide.exceptions.InterfaceError`. Leaving early (``break``, an exception,
    ``aclose()``, dropping it) cancels the COPY with a CancelRequest and gives the connection
    back. ``status`` is the command tag (``'COPY 1000'``) once it has ended.

    With a tracer, the whole stream is one copy event: it starts when the COPY is sent and
    ends when the stream ends, fails or is left (then ``details['abandoned']`` is true).
    """

    __slots__ = (
        "__weakref__",
        "_copier",
        "_deadline",
        "_delivered",
        "_describe",
        "_fut",
        "_lease",
        "_receiver",
        "_record_class",
        "_rows",
        "_sql",
        "_state",
        "_trace",
        "_traced",
        "status",
    )

    def __init__(
        self,
        copier: Copier,
        sql: Callable[[_pgoxide.Statement | None], Awaitable[str]],
        describe: Callable[[], Awaitable[_pgoxide.Statement]] | None,
        record_class: type[Record] | None,
        deadline: float | None = None,
        traced: bool = True,
    ) -> None:
        self._copier = copier
        self._lease = copier._ops.lease
        # False inside a COPY method that has its own copy event.
        self._traced = traced
        self._sql = sql
        self._describe = describe
        self._record_class = record_class
        self._deadline = deadline
        self._fut: asyncio.Future[Any] | None = None
        self._receiver: _Receiver | None = None
        self._rows: list[Any] = []
        # "new", "running", "done"
        self._state = "new"
        self.status: str | None = None
        # (tracer, context, start time) while a traced COPY runs; the records given so far.
        self._trace: tuple[tracing.Tracer, Any, float] | None = None
        self._delivered = 0

    def __aiter__(self) -> CopyOutStream:
        return self

    async def __anext__(self) -> Any:
        rows = self._rows
        if rows:
            return rows.pop()
        data = await self._next_data()
        if self._describe is None:
            return data
        data.reverse()
        self._rows = data
        return data.pop()

    async def _next_data(self) -> Any:
        while True:
            if self._state == "new":
                await self._start()
            elif self._state == "done":
                raise StopAsyncIteration
            receiver, fut = self._receiver, self._fut
            assert receiver is not None and fut is not None
            try:
                data = await receiver.get(self._deadline)
            except BaseException as e:
                self._end(abandon=True, error=e)
                raise
            if data is None:
                try:
                    self.status = fut.result()  # raises the COPY's error
                except BaseException as e:
                    self._end(abandon=False, error=e)
                    raise
                self._end(abandon=False)
                raise StopAsyncIteration
            if data:  # a read of only the end of a tuple decodes into no record
                if self._describe is not None:
                    self._delivered += len(data)
                return data

    async def _start(self) -> None:
        ops = self._copier._ops
        ops.check_lease(self._lease)
        await ops.take(self._deadline)
        try:
            stmt = await self._describe() if self._describe is not None else None
            sql = await self._sql(stmt)
            text = stmt is not None and bool(stmt.text_columns)
            fut = ops.send(ops.session.copy(sql, "out", stmt, self._record_class, text))
        except BaseException:
            ops.release()
            raise
        tracer = ops.tracer
        if tracer is not None and self._traced:
            context = tracing.start(tracer, "copy", tracing.CopyStart("out", sql, ops.server))
            self._trace = (tracer, context, time.perf_counter())
        self._fut = fut
        self._receiver = _Receiver(ops.protocol, fut)
        self._state = "running"
        ops.hold_for(asyncio.current_task(), "a COPY")

    def _end(self, abandon: bool, error: BaseException | None = None) -> None:
        """Gives the connection back; with ``abandon`` the COPY is cancelled first."""
        if self._state != "running":
            self._state = "done"
            return
        self._state = "done"
        if self._trace is not None:
            self._trace_end(abandon, error)
        ops = self._copier._ops
        fut, receiver = self._fut, self._receiver
        assert fut is not None and receiver is not None
        receiver.stop()
        ops.hold_for(None)
        try:
            if abandon and not fut.done():
                fut.cancel()
                ops.abandon()
        finally:
            ops.release()

    def _trace_end(self, abandon: bool, error: BaseException | None) -> None:
        assert self._trace is not None
        tracer, context, began = self._trace
        self._trace = None
        # The tag's count when it ended; else the records given so far (none for bytes).
        rows: int | None = self._delivered if self._describe is not None else None
        status = self.status
        if status is not None and status.rpartition(" ")[2].isdigit():
            rows = int(status.rpartition(" ")[2])
        details = {"abandoned": True} if abandon and error is None else None
        end = tracing.End(time.perf_counter() - began, error, rows, status, details)
        tracing.end(tracer, "copy", context, end)

    async def aclose(self) -> None:
        """Stops early: cancels the COPY and gives the connection back."""
        self._rows = []
        self._end(abandon=True)

    def __del__(self) -> None:
        if getattr(self, "_state", None) != "running":
            return
        loop = self._copier._ops.loop
        try:
            running = asyncio.get_running_loop() is loop
        except RuntimeError:
            running = False
        if running:
            self._end(abandon=True)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._end, True)
