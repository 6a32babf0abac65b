"""Listeners: notifications (LISTEN/NOTIFY), notices and termination, added and removed;
several callbacks per channel, coroutine callbacks, a notification arriving while a query's
rows come in, and termination when the server crashes."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Iterator
from typing import Any

import pgoxide
import pytest
from pgoxide import exceptions
from pgoxide.cluster import Cluster

pytestmark = pytest.mark.both_loops

# A generous guard against hangs; every call below must finish long before it.
HANG_GUARD = 60


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster this test may stop."""
    with Cluster() as cluster:
        yield cluster


async def _channels(conn: pgoxide.Connection) -> list[str]:
    return [r[0] for r in await conn.fetch("SELECT c FROM pg_listening_channels() c ORDER BY c")]


async def _got(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), HANG_GUARD)


# -- notices -----------------------------------------------------------------------------


async def test_a_removed_log_listener_gets_no_more_notices(conn):
    removed_got: list[str] = []
    kept: asyncio.Queue[str] = asyncio.Queue()

    def removed(c: pgoxide.Connection, message: exceptions.PostgresLogMessage) -> None:
        removed_got.append(message.message)

    # `removed` comes first: a call of it is scheduled before `kept`'s.
    conn.add_log_listener(removed)
    conn.add_log_listener(lambda c, m: kept.put_nowait(m.message))
    await conn.execute("DO $$ BEGIN RAISE NOTICE 'one'; END $$")
    assert await _got(kept) == "one"
    assert removed_got == ["one"]

    conn.remove_log_listener(removed)
    await conn.execute("DO $$ BEGIN RAISE NOTICE 'two'; RAISE WARNING 'three'; END $$")
    assert await _got(kept) == "two"
    assert await _got(kept) == "three"
    assert removed_got == ["one"]
    # Removing it again, or one never added, does nothing.
    conn.remove_log_listener(removed)
    conn.remove_log_listener(lambda c, m: None)
    await conn.execute("DO $$ BEGIN RAISE NOTICE 'four'; END $$")
    assert await _got(kept) == "four"
    assert removed_got == ["one"]


# -- termination -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "terminate"])
async def test_a_removed_termination_listener_is_not_called(conn, how):
    removed_got: list[pgoxide.Connection] = []
    kept: asyncio.Queue[pgoxide.Connection] = asyncio.Queue()
    conn.add_termination_listener(removed_got.append)
    conn.add_termination_listener(kept.put_nowait)
    conn.remove_termination_listener(removed_got.append)
    conn.remove_termination_listener(removed_got.append)  # again: nothing happens
    if how == "close":
        await asyncio.wait_for(conn.close(), HANG_GUARD)
    else:
        conn.terminate()
    assert await _got(kept) is conn
    assert removed_got == []
    assert conn.is_closed()


async def test_termination_listeners_on_a_server_crash(own_cluster):
    dsn = own_cluster.dsn(user="postgres")
    idle = await pgoxide.connect(dsn)
    busy = await pgoxide.connect(dsn)
    try:
        terminated: asyncio.Queue[pgoxide.Connection] = asyncio.Queue()
        idle.add_termination_listener(terminated.put_nowait)
        busy.add_termination_listener(terminated.put_nowait)
        started = asyncio.Event()
        busy.add_log_listener(lambda c, m: started.set())
        running = asyncio.ensure_future(
            busy.execute("DO $$ BEGIN RAISE NOTICE 'started'; PERFORM pg_sleep(600); END $$")
        )
        await asyncio.wait_for(started.wait(), HANG_GUARD)
        await asyncio.get_running_loop().run_in_executor(None, own_cluster.stop, "immediate")
        got = {await _got(terminated), await _got(terminated)}
        with pytest.raises((exceptions.ConnectionDoesNotExistError, exceptions.PostgresError)):
            await asyncio.wait_for(running, HANG_GUARD)
        assert got == {idle, busy}
        assert idle.is_closed() and busy.is_closed()
    finally:
        idle.terminate()
        busy.terminate()


# -- notifications -----------------------------------------------------------------------


async def test_every_callback_of_a_channel_gets_each_notification(conn, other):
    channel = 'Mixed "case" channel'
    queues: dict[str, asyncio.Queue[tuple[Any, ...]]] = {n: asyncio.Queue() for n in "abcd"}

    def listener(name: str) -> Any:
        return lambda *args: queues[name].put_nowait(args)

    a, b, c, d = (listener(n) for n in "abcd")
    for cb in (a, b, c):
        await conn.add_listener(channel, cb)
    assert await _channels(conn) == [channel]

    await other.execute("SELECT pg_notify($1, 'one')", channel)
    expected = (conn, other.get_server_pid(), channel, "one")
    for name in "abc":
        assert await _got(queues[name]) == expected

    # `a` was added first: had it still been called, it would have been before the others.
    await conn.remove_listener(channel, a)
    assert await _channels(conn) == [channel]
    await other.execute("SELECT pg_notify($1, 'two')", channel)
    for name in "bc":
        assert (await _got(queues[name]))[3] == "two"
    assert queues["a"].empty()

    await conn.remove_listener(channel, b)
    assert await _channels(conn) == [channel]
    await conn.remove_listener(channel, c)
    # The last one removed: the connection no longer listens.
    assert await _channels(conn) == []

    # Listening again calls only the new callback.
    await conn.add_listener(channel, d)
    await other.execute("SELECT pg_notify($1, 'three')", channel)
    assert (await _got(queues["d"]))[3] == "three"
    assert all(queues[name].empty() for name in "abc")


async def test_removing_an_unknown_listener_does_nothing(conn):
    async def never(*args: object) -> None:
        raise AssertionError("not a listener")

    await conn.add_listener("known", lambda *args: None)
    await conn.remove_listener("known", never)
    await conn.remove_listener("unknown", never)
    assert await _channels(conn) == ["known"]


async def test_coroutine_listeners_are_run(conn, other):
    notified: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    noticed: asyncio.Queue[str] = asyncio.Queue()
    terminated: asyncio.Queue[pgoxide.Connection] = asyncio.Queue()

    async def on_notification(*args: Any) -> None:
        await asyncio.sleep(0)  # a coroutine that suspends: it must run as a task
        await notified.put(args)

    async def on_notice(c: pgoxide.Connection, message: exceptions.PostgresLogMessage) -> None:
        await asyncio.sleep(0)
        await noticed.put(message.message)

    async def on_termination(c: pgoxide.Connection) -> None:
        await asyncio.sleep(0)
        await terminated.put(c)

    await conn.add_listener("coro", on_notification)
    conn.add_log_listener(on_notice)
    conn.add_termination_listener(on_termination)

    await other.execute("NOTIFY coro, 'payload'")
    assert await _got(notified) == (conn, other.get_server_pid(), "coro", "payload")
    await conn.execute("DO $$ BEGIN RAISE NOTICE 'noticed'; END $$")
    assert await _got(noticed) == "noticed"
    await conn.close()
    assert await _got(terminated) is conn


async def test_a_notification_sent_while_a_query_runs(conn, other):
    """The server holds a notification for a session that runs a query (its transaction is
    open) and sends it between the query's last row and its ReadyForQuery: the rows stay
    intact and the notification is delivered."""
    rows = 200_000
    key = random.randrange(1 << 40)
    notified: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    started = asyncio.Event()
    await conn.add_listener("during", lambda *args: notified.put_nowait(args))
    conn.add_log_listener(lambda c, m: started.set())
    await conn.execute(
        f"""CREATE FUNCTION pg_temp.rows_after_lock(n int) RETURNS SETOF int LANGUAGE plpgsql
        AS $$ BEGIN
            RAISE NOTICE 'waiting';
            PERFORM pg_advisory_lock({key});
            PERFORM pg_advisory_unlock({key});
            RETURN QUERY SELECT g FROM generate_series(1, n) g;
        END $$"""
    )
    await other.execute("SELECT pg_advisory_lock($1)", key)
    query = asyncio.ensure_future(conn.fetch("SELECT * FROM pg_temp.rows_after_lock($1)", rows))
    await asyncio.wait_for(started.wait(), HANG_GUARD)  # it runs, waiting for the lock
    await other.execute("NOTIFY during, 'while running'")
    await other.execute("SELECT pg_advisory_unlock($1)", key)
    result = await asyncio.wait_for(query, HANG_GUARD)
    assert [r[0] for r in result] == list(range(1, rows + 1))
    assert await _got(notified) == (conn, other.get_server_pid(), "during", "while running")
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SELECT 'after'") == "after"


def _message(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


class _InjectingProxy:
    """Forwards a real server's bytes, message by message; once ``armed``, puts
    ``injected`` (whole messages) just before the ``after``-th DataRow that follows.
    A real server never sends a notification between two rows, but the protocol allows
    asynchronous messages anywhere."""

    def __init__(self, port: int, injected: bytes, after: int) -> None:
        self.port = port
        self.injected = injected
        self.after = after
        self.armed = False
        self.injections = 0
        self._rows = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]  # type: ignore[no-any-return]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
            up_writer.close()

        async def server_to_client() -> None:
            while True:
                header = await up_reader.readexactly(5)
                body = await up_reader.readexactly(struct.unpack("!i", header[1:])[0] - 4)
                if self.armed and header[:1] == b"D":
                    self._rows += 1
                    if self._rows == self.after:
                        writer.write(self.injected)
                        self.injections += 1
                writer.write(header + body)
                await writer.drain()

        await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)
        writer.close()
        up_writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_notification_between_two_rows(pg_cluster, pg_roles):
    rows, pid = 10_000, 4242
    injected = _message(b"A", struct.pack("!i", pid) + b"mid\0between rows\0") + _message(
        b"N", b"SNOTICE\0VNOTICE\0C00000\0Mbetween rows too\0\0"
    )
    proxy = _InjectingProxy(pg_cluster.port, injected, after=rows // 2)
    port = await proxy.start()
    conn = await pgoxide.connect(
        host="127.0.0.1", port=port, user=pg_roles.trust, dbname="postgres", sslmode="disable"
    )
    try:
        notified: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        noticed: asyncio.Queue[str] = asyncio.Queue()
        await conn.add_listener("mid", lambda *args: notified.put_nowait(args))
        conn.add_log_listener(lambda c, m: noticed.put_nowait(m.message))
        proxy.armed = True
        result = await asyncio.wait_for(
            conn.fetch("SELECT g, g::text AS t FROM generate_series(1, $1::int) g", rows),
            HANG_GUARD,
        )
        assert proxy.injections == 1
        assert [tuple(r) for r in result] == [(i, str(i)) for i in range(1, rows + 1)]
        assert await _got(notified) == (conn, pid, "mid", "between rows")
        assert await _got(noticed) == "between rows too"
        assert await conn.fetchval("SELECT 'after'") == "after"
    finally:
        conn.terminate()
        await proxy.close()


# -- known differences from asyncpg ----------------------------------------------------------


async def test_listeners_added_together_are_all_called(conn, other):
    calls: list[str] = []
    last: asyncio.Queue[str] = asyncio.Queue()
    await asyncio.gather(
        conn.add_listener("together", lambda *args: calls.append("a")),
        conn.add_listener("together", lambda *args: calls.append("b")),
    )
    # Added after both: called after them.
    await conn.add_listener("together", lambda *args: last.put_nowait(args[3]))
    await other.execute("NOTIFY together, 'one'")
    assert await _got(last) == "one"
    assert sorted(calls) == ["a", "b"]


async def test_a_listener_added_twice_is_registered_once(conn, other):
    calls: list[str] = []
    got: asyncio.Queue[str] = asyncio.Queue()

    def twice(c: object, pid: int, channel: str, payload: str) -> None:
        calls.append(payload)

    await conn.add_listener("twice", twice)
    await conn.add_listener("twice", twice)
    await conn.add_listener("twice", lambda *args: got.put_nowait(args[3]))
    await other.execute("NOTIFY twice, 'one'")
    assert await _got(got) == "one"
    assert calls == ["one"]
    await conn.remove_listener("twice", twice)
    await other.execute("NOTIFY twice, 'two'")
    assert await _got(got) == "two"
    assert calls == ["one"]


# -- the pull API ---------------------------------------------------------------------------


async def test_notifications_as_an_async_iterator(
    conn: pgoxide.Connection, other: pgoxide.Connection
) -> None:
    from pgoxide.notifications import Notification

    async with conn.notifications("a", "b") as stream:
        assert await _channels(conn) == ["a", "b"]
        await other.execute("NOTIFY a, '1'; NOTIFY c, 'ignored'; NOTIFY b, '2'")
        got = [await asyncio.wait_for(stream.__anext__(), HANG_GUARD) for _ in range(2)]
        pid = other.get_server_pid()
        assert got == [Notification(pid, "a", "1"), Notification(pid, "b", "2")]
    assert await _channels(conn) == []


async def test_notifications_queue_is_bounded(
    conn: pgoxide.Connection, other: pgoxide.Connection
) -> None:
    from pgoxide.notifications import NotificationQueueOverflowError

    async with conn.notifications("q", max_queued=3) as stream:
        await other.execute("".join(f"NOTIFY q, '{i}';" for i in range(10)))
        await conn.fetchval("SELECT 1")  # the notifications arrived before this reply
        assert [(await stream.__anext__()).payload for _ in range(3)] == ["7", "8", "9"]
        assert stream.dropped == 7
    async with conn.notifications("q", max_queued=3, overflow="raise") as stream:
        await other.execute("".join(f"NOTIFY q, '{i}';" for i in range(5)))
        await conn.fetchval("SELECT 1")
        assert (await stream.__anext__()).payload == "0"  # what fitted is still there
        assert [(await stream.__anext__()).payload for _ in range(2)] == ["1", "2"]
        with pytest.raises(NotificationQueueOverflowError):
            await stream.__anext__()


async def test_notifications_end_when_the_connection_closes(
    dsn: str, other: pgoxide.Connection
) -> None:
    conn = await pgoxide.connect(dsn)
    stream = conn.notifications("z")
    await stream.start()
    await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    with pytest.raises((exceptions.AdminShutdownError, exceptions.ConnectionDoesNotExistError)):
        await asyncio.wait_for(stream.__anext__(), HANG_GUARD)
