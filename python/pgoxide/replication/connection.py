"""Replication connections (``replication=database``): replication commands, slots, and a
stream consumer whose socket reading and feedback never wait for the consumer."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Union

from .. import _pgoxide, introspection
from ..connection import Connection, Record, _quote_ident
from ..establish import connect
from ..exceptions import InterfaceError
from ..types import Lsn

__all__ = [
    "ReplicationConnection",
    "ReplicationSlot",
    "ReplicationStream",
    "SystemInfo",
    "connect_replication",
]

StreamItem = Union[_pgoxide.XLogData, _pgoxide.Keepalive]
Callback = Callable[[StreamItem], Awaitable[None]]

# Settings that fix how the server prints values, so text-format tuples decode exactly.
_TEXT_SETTINGS = {
    "DateStyle": "ISO",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "bytea_output": "hex",
    "extra_float_digits": "1",
}

_SIMPLE_ONLY = (
    "{} is not available on a replication connection, which speaks only the simple query "
    "protocol; use a regular connection (pgoxide.connect) for it"
)

# Messages buffered before the socket stops being read (TCP then slows the server down).
_log = logging.getLogger("pgoxide.replication")

_HIGH_WATER = 10_000
_LOW_WATER = 1_000


@dataclass(frozen=True)
class SystemInfo:
    """IDENTIFY_SYSTEM's answer."""

    systemid: str
    timeline: int
    xlogpos: Lsn
    dbname: str | None


@dataclass(frozen=True)
class ReplicationSlot:
    """CREATE_REPLICATION_SLOT's answer. ``snapshot_name`` (with ``snapshot='export'``) can
    be used by another connection (``SET TRANSACTION SNAPSHOT``) until this connection runs
    its next command."""

    slot_name: str
    consistent_point: Lsn
    snapshot_name: str | None
    output_plugin: str | None


async def connect_replication(dsn: str | None = None, **kwargs: Any) -> ReplicationConnection:
    """Opens a logical replication connection (``replication=database``); arguments as for
    :func:`pgoxide.connect`. Replication commands and plain SQL (without parameters) run on it.
    """
    settings = {**_TEXT_SETTINGS, **kwargs.pop("server_settings", {})}
    conn = await connect(
        dsn,
        replication="database",
        server_settings=settings,
        connection_class=ReplicationConnection,
        **kwargs,
    )
    assert isinstance(conn, ReplicationConnection)
    return conn


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _option_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ReplicationConnection(Connection):
    """A ``replication=database`` connection. Only the simple query protocol exists here, so
    ``fetch``/``fetchrow``/``fetchval`` take no arguments; values come back decoded by type.
    It runs one replication stream: to stream again, open a new connection.
    """

    _stream: ReplicationStream | None = None
    _streamed = False  # the server accepted a START_REPLICATION

    # Connection.stream (a windowed query) needs the extended protocol, which a replication
    # connection lacks; here the name is the replication stream.
    @property
    def stream(self) -> ReplicationStream | None:  # type: ignore[override]
        """The stream :meth:`start_replication` started, while it runs."""
        stream = self._stream
        return stream if stream is not None and not stream.done else None

    def _current_stream(self) -> ReplicationStream:
        if self._stream is None:
            raise InterfaceError("no replication stream was started on this connection")
        return self._stream

    def ack(self, lsn: Lsn | int | str) -> None:
        """:meth:`ReplicationStream.ack` of the last stream (e.g. from a callback)."""
        self._current_stream().ack(lsn)

    def send_standby_status(
        self, flush_lsn: Lsn | int | str | None = None, *, reply: bool = False
    ) -> None:
        """:meth:`ReplicationStream.send_standby_status` of the running stream."""
        self._current_stream().send_standby_status(flush_lsn, reply=reply)

    async def stop_replication(self) -> None:
        """Ends the running stream gracefully (see :meth:`ReplicationStream.stop`)."""
        await self._current_stream().stop()

    # -- what a replication connection cannot do ---------------------------------------------

    async def prepare(self, query: str, **_: Any) -> Any:  # type: ignore[override]
        """Not available: a replication connection has only the simple query protocol."""
        raise InterfaceError(_SIMPLE_ONLY.format("prepare()"))

    async def executemany(self, command: str, args: Any, **_: Any) -> None:  # type: ignore[override]
        """Not available: a replication connection has only the simple query protocol."""
        raise InterfaceError(_SIMPLE_ONLY.format("executemany()"))

    async def fetchmany(self, query: str, args: Any, **_: Any) -> Any:  # type: ignore[override]
        """Not available: a replication connection has only the simple query protocol."""
        raise InterfaceError(_SIMPLE_ONLY.format("fetchmany()"))

    def cursor(self, query: str, *args: Any, **_: Any) -> Any:  # type: ignore[override]
        """Not available: a replication connection has only the simple query protocol."""
        raise InterfaceError(_SIMPLE_ONLY.format("cursor()"))

    def pipeline(self, **_: Any) -> Any:  # type: ignore[override]
        """Not available: a replication connection has only the simple query protocol."""
        raise InterfaceError(_SIMPLE_ONLY.format("pipeline()"))

    async def set_type_codec(self, typename: str, **_: Any) -> None:  # type: ignore[override]
        """Not available: values are decoded from their text form by type."""
        raise InterfaceError(_SIMPLE_ONLY.format("set_type_codec()"))

    # -- SQL without parameters -------------------------------------------------------------

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Runs ``query`` (simple protocol; several statements allowed) and returns the status
        of its last command."""
        if args:
            raise InterfaceError("a replication connection takes no query arguments")
        return await super().execute(query, timeout=timeout)

    async def fetch(  # type: ignore[override]
        self, query: str, *args: Any, timeout: float | None = None, **_: Any
    ) -> list[Record]:
        """Runs ``query`` (simple protocol) and returns the rows of its last result set."""
        if args:
            raise InterfaceError("a replication connection takes no query arguments")
        session = self._session
        rows = await self._ops.request(
            lambda: session.simple_rows(query), self._ops.deadline(timeout)
        )
        return rows  # type: ignore[no-any-return]

    async def fetchrow(  # type: ignore[override]
        self, query: str, *args: Any, timeout: float | None = None, **_: Any
    ) -> Record | None:
        rows = await self.fetch(query, *args, timeout=timeout)
        return rows[0] if rows else None

    async def fetchval(  # type: ignore[override]
        self, query: str, *args: Any, column: int | str = 0, timeout: float | None = None
    ) -> Any:
        row = await self.fetchrow(query, *args, timeout=timeout)
        return row[column] if row is not None else None

    async def _introspect(self, oids: Any, timeout: float | None) -> None:
        version = self.get_server_version()
        array = "'{" + ",".join(str(int(o)) for o in oids) + "}'"
        query = introspection.types_query(version.major * 10000).replace("$1", array)
        rows = await self.fetch(query, timeout=timeout)
        self._session.add_types([tuple(r) for r in rows])

    # -- replication commands ---------------------------------------------------------------

    async def identify_system(self) -> SystemInfo:
        """The server's system identifier, timeline, WAL flush position and database."""
        row = await self.fetchrow("IDENTIFY_SYSTEM")
        assert row is not None
        return SystemInfo(str(row[0]), int(row[1]), Lsn(row[2]), row[3])

    async def create_replication_slot(
        self,
        name: str,
        plugin: str = "pgoutput",
        *,
        temporary: bool = False,
        snapshot: str = "export",
        two_phase: bool = False,
        failover: bool = False,
    ) -> ReplicationSlot:
        """Creates a logical replication slot (this may wait for running transactions).

        ``snapshot``: ``'export'`` (a snapshot other connections can import until this
        connection's next command), ``'use'`` (inside a REPEATABLE READ transaction of this
        connection) or ``'nothing'``. ``failover`` needs PostgreSQL 17.
        """
        if snapshot not in ("export", "use", "nothing"):
            raise ValueError(f"snapshot must be 'export', 'use' or 'nothing', not {snapshot!r}")
        command = f"CREATE_REPLICATION_SLOT {_quote_ident(name)}"
        if temporary:
            command += " TEMPORARY"
        command += f" LOGICAL {_quote_ident(plugin)}"
        if self.get_server_version().major >= 15:
            options = [f"SNAPSHOT {_literal(snapshot)}"]
            if two_phase:
                options.append("TWO_PHASE true")
            if failover:
                options.append("FAILOVER true")
            command += f" ({', '.join(options)})"
        else:
            if two_phase or failover:
                raise InterfaceError("two_phase and failover slots need PostgreSQL 15 and 17")
            command += {
                "export": " EXPORT_SNAPSHOT",
                "use": " USE_SNAPSHOT",
                "nothing": " NOEXPORT_SNAPSHOT",
            }[snapshot]
        row = await self.fetchrow(command)
        assert row is not None
        slot = ReplicationSlot(str(row[0]), Lsn(row[1]), row[2], row[3])
        _log.debug("created replication slot %r at %s", slot.slot_name, slot.consistent_point)
        return slot

    async def read_replication_slot(self, name: str) -> tuple[str | None, Lsn | None, int | None]:
        """READ_REPLICATION_SLOT (PostgreSQL 15+): ``(slot_type, restart_lsn, restart_tli)``,
        all None when there is no such slot."""
        row = await self.fetchrow(f"READ_REPLICATION_SLOT {_quote_ident(name)}")
        assert row is not None
        lsn = Lsn(row[1]) if row[1] is not None else None
        return row[0], lsn, row[2]

    async def drop_replication_slot(self, name: str, wait: bool = False) -> None:
        """Drops a slot; with ``wait``, waits while another connection uses it."""
        await self.execute(
            f"DROP_REPLICATION_SLOT {_quote_ident(name)}" + (" WAIT" if wait else "")
        )
        _log.debug("dropped replication slot %r", name)

    async def timeline_history(self, timeline: int) -> tuple[str, bytes]:
        """TIMELINE_HISTORY: the history file's name and content."""
        row = await self.fetchrow(f"TIMELINE_HISTORY {int(timeline)}")
        assert row is not None
        content = row[1]
        return row[0], content.encode() if isinstance(content, str) else bytes(content)

    # -- streaming ----------------------------------------------------------------------------

    async def start_replication(
        self,
        slot: str,
        start_lsn: Lsn | int | str = 0,
        options: Mapping[str, object] | None = None,
        callback: Callback | None = None,
        *,
        status_interval: float = 10.0,
        decode: bool = True,
        values: str = "typed",
    ) -> ReplicationStream:
        """Streams the slot's changes from ``start_lsn`` (0: from where the slot stands).

        ``options`` go to the output plugin (for pgoutput: ``proto_version`` and
        ``publication_names`` at least; ``binary``, ``messages``, ``streaming``,
        ``two_phase``, ``origin``). The stream yields :class:`XLogData` (``.message`` holds the
        decoded pgoutput message when ``decode``) and :class:`Keepalive` items. Acknowledge
        what is durable with :meth:`ReplicationStream.ack`; a status update goes out at least
        every ``status_interval`` seconds (and every 40 % of the server's wal_sender_timeout),
        and at once when the server asks, whatever the consumer is doing.

        ``values="raw"`` leaves column values as sent (text as ``str``, binary as ``bytes``)
        instead of decoding them by type.

        Without ``callback`` the stream is returned for ``async for``. With one, each item is
        awaited in order (that is the backpressure) and this returns when the stream ends.
        """
        if self._streamed:
            # The walsender answers a second START_REPLICATION on its connection with a
            # stream that has already ended, then goes on sending (PostgreSQL 14-18).
            raise InterfaceError(
                "this replication connection has already run a stream: open a new one "
                "with connect_replication() to stream again"
            )
        options = dict(options or {})
        start = int(Lsn(start_lsn))
        slot_row = await self.fetchrow(
            "SELECT confirmed_flush_lsn, plugin FROM pg_catalog.pg_replication_slots "
            f"WHERE slot_name = {_literal(slot)}"
        )
        if slot_row is not None and slot_row[0] is not None:
            # The server starts from the later of the two; so does our flush position, which
            # must never fall behind the slot's.
            start = max(start, int(Lsn(slot_row[0])))
        plugin = slot_row[1] if slot_row is not None else None
        pgoutput = plugin in (None, "pgoutput")
        timeout_ms = await self.fetchval("SHOW wal_sender_timeout")
        interval = _feedback_interval(status_interval, str(timeout_ms))
        if decode and pgoutput:
            await self._introspect_publications(options.get("publication_names"))
        parallel = str(options.get("streaming", "")).lower() == "parallel"
        command = f"START_REPLICATION SLOT {_quote_ident(slot)} LOGICAL {Lsn(start)}"
        if options:
            command += (
                " ("
                + ", ".join(
                    f"{_quote_ident(k)} {_literal(_option_value(v))}" for k, v in options.items()
                )
                + ")"
            )
        stream = ReplicationStream(self, interval)
        self._stream = stream
        ops = self._ops
        if not ops.try_take():
            await ops.take(None)
        try:
            done = ops.send(
                self._session.start_replication(
                    command, start, decode and pgoutput, parallel, values
                )
            )
        except BaseException:
            ops.release()
            raise
        # The stream keeps the turn while it runs; it gives it back when it ends.
        await stream._run(done)
        self._streamed = True
        _log.debug(
            "replication from slot %r started at %s (backend %s)",
            slot,
            Lsn(start),
            self.get_server_pid(),
        )
        if callback is None:
            return stream
        async for item in stream:
            await callback(item)
        return stream

    async def _introspect_publications(self, publications: object) -> None:
        """Looks up the non-builtin types of the published columns, so their values decode."""
        if not publications:
            return
        names = ",".join(
            _literal(p.strip().strip('"')) for p in str(publications).split(",") if p.strip()
        )
        rows = await self.fetch(
            "SELECT DISTINCT a.atttypid FROM pg_catalog.pg_publication_tables p "
            "JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname "
            "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
            f"WHERE p.pubname IN ({names}) AND a.attnum > 0 AND NOT a.attisdropped "
            f"AND a.atttypid >= {introspection.FIRST_UNPINNED_OID}"
        )
        oids = [r[0] for r in rows if not self._session.knows_type(r[0])]
        if oids:
            await self._introspect(oids, None)


def _feedback_interval(status_interval: float, wal_sender_timeout: str) -> float:
    """Seconds between status updates: ``status_interval``, and 40 % of the server's timeout
    at most, ahead of the ping the server sends at half of it."""
    if status_interval <= 0:
        raise ValueError("status_interval must be positive")
    text = wal_sender_timeout.strip()
    units = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :] or "ms"
    try:
        seconds = float(number) * units[unit]
    except (ValueError, KeyError):
        return status_interval
    return min(status_interval, seconds * 0.4) if seconds > 0 else status_interval


class ReplicationStream:
    """A running replication stream: iterate it with ``async for``.

    Items arrive as the socket delivers them, independent of the consumer: status updates
    (with what :meth:`ack` recorded) go out on a timer and whenever the server asks. A
    consumer far behind makes the connection stop reading (TCP backpressure) until it catches
    up; feedback still flows meanwhile.
    """

    def __init__(self, conn: ReplicationConnection, interval: float) -> None:
        self._conn = conn
        self._session = conn._session
        self._protocol = conn._protocol
        self._loop = conn._loop
        self._interval = interval
        self._items: collections.deque[StreamItem] = collections.deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._done: asyncio.Future[Any] | None = None
        self._started: asyncio.Future[None] = self._loop.create_future()
        self._feedback: asyncio.Task[None] | None = None
        self._paused = False
        # CopyDone sent: the server accepts no more status updates.
        self._stopping = False

    async def _run(self, done: asyncio.Future[Any]) -> None:
        """Waits until the server accepted START_REPLICATION (or refused it)."""
        self._done = done
        self._protocol.on_replication_started = self._on_started
        self._protocol.on_replication = self._on_items
        done.add_done_callback(self._on_done)
        await asyncio.wait([self._started, done], return_when=asyncio.FIRST_COMPLETED)
        if done.done() and not self._started.done():
            done.result()  # the server's error for the command or its options
            raise InterfaceError("the server ended replication before it started")
        self._feedback = self._loop.create_task(self._send_feedback())

    # -- protocol callbacks ---------------------------------------------------------------

    def _on_started(self) -> None:
        if not self._started.done():
            self._started.set_result(None)

    def _on_items(self, items: list[StreamItem]) -> None:
        self._items.extend(items)
        self._wake()
        if not self._paused and len(self._items) >= _HIGH_WATER:
            self._paused = True
            self._protocol.pause_reading()

    def _on_done(self, done: asyncio.Future[Any]) -> None:
        error = None if done.cancelled() else done.exception()  # __anext__ raises it
        _log.debug("replication stream ended: %s", "stopped" if error is None else repr(error))
        self._conn._ops.release()
        self._protocol.on_replication = None
        self._protocol.on_replication_started = None
        if self._paused:
            self._paused = False
            self._protocol.resume_reading()
        if self._feedback is not None:
            self._feedback.cancel()
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _send_feedback(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._write_status(False)

    def _write_status(self, reply: bool) -> None:
        if not self.done:
            self._protocol.write(self._session.replication_status(reply))

    # -- the consumer's API ---------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[StreamItem]:
        return self

    async def __anext__(self) -> StreamItem:
        while not self._items:
            assert self._done is not None
            if self._done.done():
                self._done.result()  # raises the error that ended the stream, if any
                raise StopAsyncIteration
            self._wakeup = self._loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        item = self._items.popleft()
        if self._paused and len(self._items) <= _LOW_WATER:
            self._paused = False
            self._protocol.resume_reading()
        return item

    def ack(self, lsn: Lsn | int | str) -> None:
        """Everything up to ``lsn`` is durably handled: the slot may advance to it (at the
        next status update). Acknowledge a Commit's ``end_lsn`` (its XLogData's
        ``data_start``). The flush position never goes backwards. Once the stream is ending
        this has no effect: the next stream resumes from what the server confirmed."""
        if not self.done:
            self._session.replication_ack(int(Lsn(lsn)))

    def send_standby_status(
        self, flush_lsn: Lsn | int | str | None = None, *, reply: bool = False
    ) -> None:
        """Sends a status update now, after acknowledging ``flush_lsn`` if given; ``reply``
        asks the server to answer with a keepalive."""
        if flush_lsn is not None:
            self.ack(flush_lsn)
        self._write_status(reply)

    @property
    def flushed_lsn(self) -> Lsn:
        """The flush position reported to the server (acknowledged, or idle-advanced)."""
        return Lsn(self._positions()[1])

    @property
    def received_lsn(self) -> Lsn:
        """The furthest position received."""
        return Lsn(self._positions()[0])

    def _positions(self) -> tuple[int, int]:
        try:
            return self._session.replication_positions()  # type: ignore[no-any-return]
        except ValueError:
            raise InterfaceError("the replication stream has ended") from None

    async def stop(self) -> None:
        """Ends the stream gracefully (CopyDone): status first, then wait for the server.
        Items already received can still be iterated."""
        assert self._done is not None
        if not self.done:
            self._write_status(False)
            self._stopping = True
            data = self._session.copy_done()
            if data is not None:
                self._protocol.write(data)
        await asyncio.shield(self._done)

    @property
    def done(self) -> bool:
        """The stream has ended or is ending (its remaining items may still be iterated)."""
        return self._done is None or self._done.done() or self._stopping
