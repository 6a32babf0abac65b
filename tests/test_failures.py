"""Failures: a server that dies mid-query, a terminated backend, and a corrupted byte stream
all fail the waiting call promptly with a clear error; nothing hangs."""

from __future__ import annotations

import asyncio
import gc
import struct
import weakref
from collections.abc import AsyncIterator, Iterator

import pgoxide
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pgoxide import _pgoxide, exceptions
from pgoxide.cluster import Cluster

# A generous guard against hangs; the calls below must finish long before it.
HANG_GUARD = 60


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster this test may stop."""
    with Cluster() as cluster:
        yield cluster


async def _wait_until_running(conn: pgoxide.Connection, sql_after_notice: str) -> asyncio.Task:
    """Starts a long statement that first sends a NOTICE, and returns once the server has
    reported it: the statement is then running, with no guessing about timing."""
    started = asyncio.Event()
    conn.add_log_listener(lambda c, m: started.set())
    task = asyncio.ensure_future(
        conn.execute(f"DO $$ BEGIN RAISE NOTICE 'started'; {sql_after_notice}; END $$")
    )
    await asyncio.wait_for(started.wait(), HANG_GUARD)
    return task


async def test_server_stopped_mid_query(own_cluster):
    conn = await pgoxide.connect(own_cluster.dsn(user="postgres"))
    task = await _wait_until_running(conn, "PERFORM pg_sleep(600)")
    await asyncio.get_running_loop().run_in_executor(None, own_cluster.stop, "immediate")
    with pytest.raises((exceptions.ConnectionDoesNotExistError, exceptions.PostgresError)):
        await asyncio.wait_for(task, HANG_GUARD)
    assert conn.is_closed()
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await conn.fetchval("SELECT 1")


async def test_server_fast_shutdown_reports_admin_shutdown(own_cluster):
    conn = await pgoxide.connect(own_cluster.dsn(user="postgres"))
    task = await _wait_until_running(conn, "PERFORM pg_sleep(600)")
    await asyncio.get_running_loop().run_in_executor(None, own_cluster.stop, "fast")
    # As asyncpg: the connection was lost, and the server's last word is the cause.
    lost = exceptions.ConnectionDoesNotExistError
    with pytest.raises(lost, match="closed in the middle") as info:
        await asyncio.wait_for(task, HANG_GUARD)
    assert isinstance(info.value.__cause__, exceptions.AdminShutdownError)
    assert conn.is_closed()


async def test_terminated_backend(dsn):
    conn = await pgoxide.connect(dsn)
    closed = asyncio.Event()
    conn.add_termination_listener(lambda c: closed.set())
    task = await _wait_until_running(conn, "PERFORM pg_sleep(600)")
    async with await pgoxide.connect(dsn) as admin:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    with pytest.raises(
        exceptions.ConnectionDoesNotExistError,
        match="closed in the middle of operation: terminating connection",
    ) as info:
        await asyncio.wait_for(task, HANG_GUARD)
    assert isinstance(info.value.__cause__, exceptions.AdminShutdownError)
    await asyncio.wait_for(closed.wait(), HANG_GUARD)
    assert conn.is_closed()


@pytest.mark.parametrize("reader", ["stream", "cursor"])
async def test_terminated_backend_while_a_portal_yields_rows(dsn, reader):
    """The FATAL arrives in answer to a request for a portal's next rows (an Execute with no
    Bind): as for any request, the connection is closed and the caller gets the named error
    caused by the server's reason (it used to get the bare AdminShutdownError, with the
    connection left open, so a transaction block's end then wrote ROLLBACK into the dying
    socket)."""
    conn = await pgoxide.connect(dsn)
    await conn.execute(
        "CREATE FUNCTION pg_temp.wait_at(g int) RETURNS int LANGUAGE plpgsql AS $$"
        " BEGIN IF g = 50 THEN RAISE NOTICE 'started'; PERFORM pg_sleep(600); END IF;"
        " RETURN g; END $$"
    )
    started = asyncio.Event()
    conn.add_log_listener(lambda c, m: started.set())
    query = "SELECT pg_temp.wait_at(g) FROM generate_series(1, 100) g"
    got: list[int] = []

    async def read() -> None:
        if reader == "stream":
            async for row in conn.stream(query, window=10):
                got.append(row[0])
        else:
            async with conn.transaction():
                async for row in conn.cursor(query, prefetch=10):
                    got.append(row[0])

    task = asyncio.ensure_future(read())
    await asyncio.wait_for(started.wait(), HANG_GUARD)
    async with await pgoxide.connect(dsn) as admin:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    with pytest.raises(exceptions.ConnectionDoesNotExistError) as info:
        await asyncio.wait_for(task, HANG_GUARD)
    assert isinstance(info.value.__cause__, exceptions.AdminShutdownError)
    # The rows before the stuck one arrived, in order, and no more.
    assert got == list(range(1, len(got) + 1)) and len(got) < 50
    assert conn.is_closed()


class _CorruptingProxy:
    """Forwards a real server's bytes, but once the client sends a query it answers with an
    unknown message type instead of the server's response."""

    def __init__(self, port: int, garbage: bytes) -> None:
        self.port = port
        self.garbage = garbage
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        corrupt = asyncio.Event()

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                if not corrupt.is_set() and data[:1] in (b"P", b"B", b"Q"):
                    corrupt.set()
                up_writer.write(data)

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                if corrupt.is_set():
                    writer.write(self.garbage)
                    return
                writer.write(data)

        await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)
        writer.close()
        up_writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def corrupting_proxy(pg_cluster) -> AsyncIterator[_CorruptingProxy]:
    proxy = _CorruptingProxy(pg_cluster.port, garbage=b"\x01\x00\x00\x00\x04")
    yield proxy
    await proxy.close()


async def test_unexpected_message_fails_the_waiter(corrupting_proxy, pg_roles):
    port = await corrupting_proxy.start()
    conn = await pgoxide.connect(
        host="127.0.0.1", port=port, user=pg_roles.trust, sslmode="disable", dbname="postgres"
    )
    with pytest.raises(exceptions.ProtocolError, match="unexpected message"):
        await asyncio.wait_for(conn.fetchval("SELECT 1"), HANG_GUARD)
    assert conn.is_closed()


# -- the session alone, fed recorded and random bytes ----------------------------------------


def _msg(tag: bytes, body: bytes = b"") -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


READY_STREAM = (
    _msg(b"R", struct.pack("!i", 0))
    + _msg(b"S", b"server_version\x0015.0\x00")
    + _msg(b"K", struct.pack("!ii", 1234, 5678))
    + _msg(b"Z", b"I")
)


def _ready_session(max_message_size: int = 1 << 20) -> _pgoxide.Session:
    s = _pgoxide.Session("u", "d", [], None, max_message_size)
    s.startup()
    items = s.feed(READY_STREAM)
    assert items == [(0, None)]
    assert s.backend_pid == 1234 and s.server_parameters == {"server_version": "15.0"}
    return s


def test_session_rejects_unexpected_message():
    s = _ready_session()
    s.simple_query("SELECT 1")
    with pytest.raises(exceptions.ProtocolError, match="unexpected message '2'"):
        s.feed(_msg(b"2"))
    with pytest.raises(exceptions.ProtocolError):
        s.feed(_msg(b"Z", b"I"))


def test_a_lost_session_refuses_requests_as_a_lost_connection():
    # A stream asks for its next window without waiting for a turn: if the connection was
    # lost meanwhile, that is what it must hear, not a protocol violation (a PostgreSQL 14 run
    # of the tracing tests caught the ProtocolError).
    s = _ready_session()
    s.connection_lost("terminating connection due to administrator command")
    with pytest.raises(exceptions.ConnectionDoesNotExistError, match="administrator command"):
        s.simple_query("SELECT 1")


def test_session_rejects_malformed_and_oversized_messages():
    s = _ready_session()
    s.simple_query("SELECT 1")
    with pytest.raises(exceptions.ProtocolError, match="malformed"):
        s.feed(_msg(b"C", b"no terminator"))
    s = _ready_session(max_message_size=100)
    s.simple_query("SELECT 1")
    # Only the header of a 1 MB DataRow has arrived: rejected before buffering the rest.
    with pytest.raises(exceptions.ProtocolError, match="exceeds max_message_size"):
        s.feed(b"D" + struct.pack("!i", 1 << 20))


def test_session_handles_notices_and_errors_in_any_order():
    s = _ready_session()
    s.simple_query("SELECT 1; SELECT 2")
    stream = (
        _msg(b"N", b"SNOTICE\x00Mhi\x00\x00")
        + _msg(b"E", b"SERROR\x00C42601\x00Mboom\x00\x00")
        + _msg(b"A", struct.pack("!i", 7) + b"ch\x00pl\x00")
        + _msg(b"Z", b"I")
    )
    items = s.feed(stream)
    assert items[0][0] == 3 and items[0][1]["M"] == "hi"
    assert items[1] == (4, (7, "ch", "pl"))
    # The error completes the operation at its ReadyForQuery.
    assert items[2] == (1, {"S": "ERROR", "C": "42601", "M": "boom"})
    assert s.pending_ops == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 7))
def test_session_survives_garbage(data, chunk):
    """Random bytes after startup either parse or raise ProtocolError; never anything else,
    and never a crash."""
    s = _ready_session()
    s.simple_query("SELECT 1")
    try:
        for i in range(0, len(data), chunk):
            s.feed(data[i : i + chunk])
    except exceptions.ProtocolError:
        with pytest.raises(exceptions.ProtocolError):
            s.feed(b"")


# (element OID, array OID, struct format) of the array types decoded by the fixed-width path.
_FIXED_ARRAYS = {
    "int2": (21, 1005, "!h"),
    "int4": (23, 1007, "!i"),
    "int8": (20, 1016, "!q"),
    "float8": (701, 1022, "!d"),
}


def _array_statement(s: _pgoxide.Session, array_oid: int) -> _pgoxide.Statement:
    """A prepared statement with one binary array column, described by recorded messages."""
    s.prepare("s1", "SELECT $1")
    column = b"a\x00" + struct.pack("!ihihih", 0, 0, array_oid, -1, -1, 0)
    items = s.feed(
        _msg(b"1")
        + _msg(b"t", struct.pack("!h", 0))
        + _msg(b"T", struct.pack("!h", 1) + column)
        + _msg(b"Z", b"I")
    )
    [(kind, stmt)] = items
    assert kind == 0 and isinstance(stmt, _pgoxide.Statement)
    return stmt


def _expected_elements(fmt: str, count: int, body: bytes) -> list[object] | None:
    """What a correct decoder makes of ``count`` array elements in ``body``: the values, or
    None when the bytes are not a valid array of that type."""
    width, pos, out = struct.calcsize(fmt), 0, []
    for _ in range(count):
        if pos + 4 > len(body):
            return None
        (length,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if length == -1:
            out.append(None)
        elif length == width and pos + width <= len(body):
            out.append(struct.unpack_from(fmt, body, pos)[0])
            pos += width
        else:
            return None
    return out if pos == len(body) else None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(_FIXED_ARRAYS)),
    st.lists(
        st.one_of(
            st.just(None),
            st.binary(min_size=8, max_size=8),
            # A length that does not fit the type, or runs past the value.
            st.tuples(st.integers(-3, 12), st.binary(max_size=12)),
        ),
        max_size=6,
    ),
    st.binary(max_size=3),
)
def test_malformed_binary_arrays_are_data_errors(type_name, elements, trailing):
    """An array value the server could not have sent decodes to a DataError naming the
    problem, a valid one to its values; either way the operation completes and the session
    stays usable."""
    elem_oid, array_oid, fmt = _FIXED_ARRAYS[type_name]
    width = struct.calcsize(fmt)
    body = b""
    for e in elements:
        if e is None:
            body += struct.pack("!i", -1)
        elif isinstance(e, bytes):
            body += struct.pack("!i", width) + e[:width]
        else:
            length, data = e
            body += struct.pack("!i", length) + data
    body += trailing
    expected = _expected_elements(fmt, len(elements), body)
    value = struct.pack("!iiiii", 1, 1, elem_oid, len(elements), 1) + body
    s = _ready_session()
    stmt = _array_statement(s, array_oid)
    s.bind_execute(stmt, (), 0, None)
    items = s.feed(
        _msg(b"2")
        + _msg(b"D", struct.pack("!hi", 1, len(value)) + value)
        + _msg(b"C", b"SELECT 1\x00")
        + _msg(b"Z", b"I")
    )
    [(kind, payload)] = items
    if expected is None:
        assert kind == 2
        assert isinstance(payload, exceptions.DataError)
        assert "invalid array value" in str(payload)
    else:
        assert kind == 0
        got = list(payload[0][0]["a"])
        assert len(got) == len(expected)
        for g, x in zip(got, expected):
            assert g == x or (g != g and x != x)  # NaN is not equal to itself
    assert s.pending_ops == 0
    s.simple_query("SELECT 1")
    assert s.feed(_msg(b"I") + _msg(b"Z", b"I")) == [(0, "")]


async def test_a_fatal_error_closes_the_connection_before_the_caller_sees_it(dsn):
    conn = await pgoxide.connect(dsn)
    task = await _wait_until_running(conn, "PERFORM pg_sleep(600)")
    async with await pgoxide.connect(dsn) as admin:
        await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    with pytest.raises(exceptions.ConnectionDoesNotExistError) as info:
        await asyncio.wait_for(task, HANG_GUARD)
    assert isinstance(info.value.__cause__, exceptions.AdminShutdownError)
    # No wait for the socket's end: the FATAL error itself closed the connection.
    assert conn.is_closed()
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await conn.fetchval("SELECT 1")


@pytest.mark.parametrize("how", ["close", "terminate"])
async def test_a_closed_connection_is_released_at_once(dsn, how):
    conn = await pgoxide.connect(dsn, max_cached_statement_lifetime=300)
    # A cached statement starts an expiry timer, which must not keep the connection alive.
    assert await conn.fetchval("SELECT $1::int + 1", 1) == 2
    assert [r[0] async for r in conn.stream("SELECT generate_series(1, 3)")] == [1, 2, 3]
    closed = asyncio.Event()
    conn.add_termination_listener(lambda c: closed.set())
    ref = weakref.ref(conn)
    if how == "close":
        await conn.close()
    else:
        conn.terminate()
    await asyncio.wait_for(closed.wait(), HANG_GUARD)
    del conn
    gc.collect()
    assert ref() is None


async def test_a_client_encoding_other_than_utf8_is_refused_clearly(dsn):
    conn = await pgoxide.connect(dsn)
    with pytest.raises(exceptions.ProtocolError, match="LATIN1"):
        await asyncio.wait_for(conn.execute("SET client_encoding = 'LATIN1'"), HANG_GUARD)
    assert conn.is_closed()


async def test_close_cancels_a_running_query_first(dsn):
    # As asyncpg: the caller learns its query was cancelled, then the connection closes.
    conn = await pgoxide.connect(dsn)
    task = await _wait_until_running(conn, "PERFORM pg_sleep(600)")
    await asyncio.wait_for(conn.close(), HANG_GUARD)
    assert conn.is_closed()
    with pytest.raises(exceptions.QueryCanceledError):
        await asyncio.wait_for(task, HANG_GUARD)


async def test_terminate_fails_a_running_query_as_asyncpg_does(dsn):
    conn = await pgoxide.connect(dsn)
    task = await _wait_until_running(conn, "PERFORM pg_sleep(600)")
    conn.terminate()
    assert conn.is_closed()
    with pytest.raises(exceptions.ConnectionDoesNotExistError, match="closed in the middle"):
        await asyncio.wait_for(task, HANG_GUARD)
