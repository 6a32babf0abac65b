"""The operation path: concurrent calls on one connection are queued and pipelined, run in
the order they were made, keep their errors to themselves, respect transaction ownership,
and survive cancellation, timeouts and a dying server."""

from __future__ import annotations

import asyncio
from typing import Any

import pgoxide
import pytest
from pgoxide import exceptions
from support.faultproxy import FaultProxy

pytestmark = pytest.mark.both_loops

# A generous guard against hangs; every call below must finish long before it.
HANG_GUARD = 60


class _CountingTransport:
    """Wraps a transport to count its writes."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def _started(conn: pgoxide.Connection, sql: str) -> asyncio.Task[Any]:
    """Starts ``sql`` (which first raises NOTICE 'started') and returns once it runs."""
    started = asyncio.Event()
    conn.add_log_listener(lambda c, m: started.set())
    task = asyncio.ensure_future(conn.execute(sql))
    await asyncio.wait_for(started.wait(), HANG_GUARD)
    return task


async def test_gather_of_a_thousand_mixed_calls(conn):
    await conn.execute("CREATE TEMP TABLE g(i int)")
    calls = []
    for i in range(1000):
        kind = i % 5
        if kind == 0:
            calls.append(conn.fetchval("SELECT $1::int * 2", i))
        elif kind == 1:
            calls.append(conn.fetch("SELECT g FROM generate_series(1, $1::int % 7) g", i))
        elif kind == 2:
            calls.append(conn.fetchrow("SELECT $1::text AS t, $2::int AS n", str(i), i))
        elif kind == 3:
            calls.append(conn.execute("INSERT INTO g VALUES ($1)", i))
        else:
            calls.append(conn.execute(f"SELECT {i}"))
    results = await asyncio.wait_for(asyncio.gather(*calls), HANG_GUARD)
    for i, result in enumerate(results):
        kind = i % 5
        if kind == 0:
            assert result == i * 2
        elif kind == 1:
            assert [r[0] for r in result] == list(range(1, i % 7 + 1))
        elif kind == 2:
            assert tuple(result) == (str(i), i)
        elif kind == 3:
            assert result == "INSERT 0 1"
        else:
            assert result == "SELECT 1"
    assert await conn.fetchval("SELECT count(*) FROM g") == 200


async def test_calls_run_in_the_order_they_were_made(conn):
    # Each depends on the one before: a table created, then prepared against, then filled.
    results = await asyncio.gather(
        conn.execute("CREATE TEMP TABLE o(i int)"),
        conn.execute("INSERT INTO o VALUES ($1)", 1),
        conn.fetchval("SELECT sum(i) FROM o"),
        conn.execute("INSERT INTO o SELECT 2"),
        conn.fetchval("SELECT sum(i) FROM o WHERE i > $1", 0),
        conn.execute("DROP TABLE o"),
    )
    assert results == ["CREATE TABLE", "INSERT 0 1", 1, "INSERT 0 1", 3, "DROP TABLE"]


async def test_errors_stay_with_their_call(conn):
    results = await asyncio.gather(
        conn.fetchval("SELECT 1"),
        conn.fetchval("SELECT 1/0"),
        conn.fetchval("SELECT $1::int", "not an int"),
        conn.fetchval("SELEC 2"),
        conn.fetchval("SELECT 3"),
        return_exceptions=True,
    )
    assert results[0] == 1
    assert isinstance(results[1], exceptions.DivisionByZeroError)
    assert isinstance(results[2], exceptions.DataError)
    assert isinstance(results[3], exceptions.PostgresSyntaxError)
    assert results[4] == 3
    assert not conn.is_in_transaction()


async def test_one_tick_leaves_in_one_write(conn):
    await conn.fetchval("SELECT $1::int + 1", 0)  # prepared and cached
    counting = _CountingTransport(conn._protocol.transport)
    conn._protocol.transport = counting  # type: ignore[assignment]
    results = await asyncio.gather(*(conn.fetchval("SELECT $1::int + 1", i) for i in range(50)))
    assert results == [i + 1 for i in range(50)]
    # The first goes out at once (nothing was in flight), the other 49 together.
    assert counting.writes == 2


async def test_same_query_is_prepared_once(dsn):
    async with await pgoxide.connect(dsn) as conn:
        query = "SELECT $1::int + 1000"
        results = await asyncio.gather(*(conn.fetchval(query, i) for i in range(100)))
        assert results == [i + 1000 for i in range(100)]
        prepared = await conn.fetchval(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", query
        )
        assert prepared == 1


async def test_other_tasks_wait_for_a_transaction(conn):
    await conn.execute("CREATE TEMP TABLE tx(i int)")
    inside = asyncio.Event()

    async def other() -> int:
        await inside.wait()
        # Issued while the block is open: it must run after it, not inside it.
        return await conn.fetchval("SELECT count(*) FROM tx")  # type: ignore[no-any-return]

    waiting = asyncio.ensure_future(other())
    tr = conn.transaction()
    await tr.start()
    await conn.execute("INSERT INTO tx VALUES (1)")
    inside.set()
    await asyncio.sleep(0)  # let `other` issue its call
    # A round trip of the owner's completes while the other task's call is still queued.
    assert await conn.fetchval("SELECT count(*) FROM tx") == 1
    assert not waiting.done()
    await tr.rollback()
    assert await asyncio.wait_for(waiting, HANG_GUARD) == 0


async def test_tasks_started_inside_a_transaction_run_in_it(conn):
    await conn.execute("CREATE TEMP TABLE tg(i int)")
    async with conn.transaction():
        await asyncio.gather(*(conn.execute("INSERT INTO tg VALUES ($1)", i) for i in range(10)))
        assert await conn.fetchval("SELECT count(*) FROM tg") == 10
        xids = await asyncio.gather(*(conn.fetchval("SELECT txid_current()") for _ in range(5)))
        assert len(set(xids)) == 1
    assert await conn.fetchval("SELECT count(*) FROM tg") == 10


async def test_error_inside_a_transaction_follows_the_server_rules(conn):
    with pytest.raises(exceptions.DivisionByZeroError):
        async with conn.transaction():
            results = await asyncio.gather(
                conn.fetchval("SELECT 1"),
                conn.fetchval("SELECT 1/0"),
                conn.fetchval("SELECT 2"),
                return_exceptions=True,
            )
            assert results[0] == 1
            assert isinstance(results[2], exceptions.InFailedSQLTransactionError)
            raise results[1]
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SELECT 4") == 4


async def test_cancelling_a_queued_call_sends_nothing(conn):
    await conn.execute("CREATE TEMP TABLE q(i int)")
    tr = conn.transaction()
    await tr.start()
    queued = _outside(conn.execute("INSERT INTO q VALUES (1)"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    await tr.commit()
    assert await conn.fetchval("SELECT count(*) FROM q") == 0


def _outside(coro: Any) -> asyncio.Task[Any]:
    """Runs ``coro`` in a new task outside the caller's transaction blocks."""
    from pgoxide.operations import _scopes

    async def run() -> Any:
        _scopes.set(())
        return await coro

    return asyncio.ensure_future(run())


async def test_timeout_covers_waiting_for_the_turn(conn):
    await conn.execute("CREATE TEMP TABLE w(i int)")
    tr = conn.transaction()
    await tr.start()
    with pytest.raises(asyncio.TimeoutError):
        await _outside(conn.execute("INSERT INTO w VALUES ($1)", 1, timeout=0.05))
    await tr.commit()
    assert await conn.fetchval("SELECT count(*) FROM w") == 0


async def test_cancelling_a_sent_call_discards_its_result(conn):
    slow = asyncio.ensure_future(conn.fetchval("SELECT 'slow' FROM pg_sleep(0.3)"))
    after = asyncio.ensure_future(conn.fetchval("SELECT 'after'"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert await asyncio.wait_for(after, HANG_GUARD) == "after"
    assert await conn.fetchval("SELECT 'next'") == "next"


async def test_a_timeout_never_cancels_another_callers_query(conn):
    running = asyncio.ensure_future(conn.fetchval("SELECT 'done' FROM pg_sleep(0.5)"))
    await asyncio.sleep(0)
    with pytest.raises(asyncio.TimeoutError):
        await conn.fetchval("SELECT 'late'", timeout=0.05)
    # The CancelRequest would have hit `running`: none was sent while it had a caller.
    assert await asyncio.wait_for(running, HANG_GUARD) == "done"
    assert await conn.fetchval("SELECT 'next'") == "next"


async def test_the_last_abandoned_call_is_cancelled_on_the_server(conn):
    first = asyncio.ensure_future(conn.execute("SELECT pg_sleep(600)", timeout=0.1))
    second = asyncio.ensure_future(conn.execute("SELECT pg_sleep(600)", timeout=0.2))
    for task in (first, second):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(task, HANG_GUARD)
    # Both were abandoned: the cancel ended the running one, the second was cancelled too
    # (or ran into the cancel), and the connection is usable.
    assert await asyncio.wait_for(conn.fetchval("SELECT 5"), HANG_GUARD) == 5


async def test_a_server_ignoring_the_cancel_closes_the_connection(pg_cluster, pg_roles, dsn):
    # The CancelRequests go through a proxy that drops them, as a server (or pooler) that
    # ignores them would: the abandoned query runs on, whatever moment a cancel would land.
    async with FaultProxy("127.0.0.1", pg_cluster.port, cancels=False) as proxy:
        conn = await pgoxide.connect(
            host="127.0.0.1",
            port=proxy.port,
            user=pg_roles.trust,
            database=pg_roles.database,
            sslmode="disable",
        )
        pid = conn.get_server_pid()
        try:
            stuck = await _started(
                conn, "DO $$ BEGIN RAISE NOTICE 'started'; PERFORM pg_sleep(600); END $$"
            )
            stuck.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stuck
            # Waits for the drain the cancel started; the server never finishes it.
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetchval("SELECT 1", timeout=0.5)
            assert conn.is_closed()
            with pytest.raises(exceptions.ConnectionDoesNotExistError):
                await conn.fetchval("SELECT 1")
        finally:
            conn.terminate()
            async with await pgoxide.connect(dsn) as admin:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)


async def test_terminated_backend_fails_every_queued_call(conn, dsn):
    await conn.execute("CREATE TEMP TABLE k(i int)")
    running = await _started(
        conn, "DO $$ BEGIN RAISE NOTICE 'started'; PERFORM pg_sleep(600); END $$"
    )
    pipelined = [asyncio.ensure_future(conn.fetchval("SELECT $1::int", i)) for i in range(20)]
    tr = conn.transaction()
    begin = asyncio.ensure_future(tr.start())
    waiting = [_outside(conn.fetchval("SELECT 1")) for _ in range(5)]
    await asyncio.sleep(0)
    async with await pgoxide.connect(dsn) as admin:
        await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    everything = [running, *pipelined, begin, *waiting]
    results = await asyncio.wait_for(
        asyncio.gather(*everything, return_exceptions=True), HANG_GUARD
    )
    for result in results:
        assert isinstance(
            result, (exceptions.AdminShutdownError, exceptions.ConnectionDoesNotExistError)
        ), result
    assert conn.is_closed()


async def test_executemany_and_prepared_statements_queue_too(conn):
    await conn.execute("CREATE TEMP TABLE m(i int, t text)")
    stmt = await conn.prepare("SELECT count(*) FROM m")
    results = await asyncio.gather(
        conn.executemany("INSERT INTO m VALUES ($1, $2)", [(i, str(i)) for i in range(100)]),
        stmt.fetchval(),
        conn.executemany("INSERT INTO m VALUES ($1, $2)", [(i, "x") for i in range(5)]),
        stmt.fetchval(),
    )
    assert results == [None, 100, None, 105]


async def test_an_undeliverable_cancel_request_is_reported(conn, dsn, caplog):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        nowhere = s.getsockname()
    conn._peer = nowhere
    pid = conn.get_server_pid()
    try:
        with caplog.at_level("WARNING", logger="pgoxide"):
            with pytest.raises(asyncio.TimeoutError):
                await conn.execute("SELECT pg_sleep(600)", timeout=0.1)
            # The drain goes on (the query still runs): a later deadline closes the connection.
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetchval("SELECT 1", timeout=0.5)
        assert conn.is_closed()
        assert any("could not be delivered" in r.getMessage() for r in caplog.records)
    finally:
        async with await pgoxide.connect(dsn) as admin:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)


async def test_server_stopped_with_calls_queued_fails_every_waiter():
    from pgoxide.cluster import Cluster

    with Cluster() as cluster:
        conn = await pgoxide.connect(cluster.dsn(user="postgres"))
        running = await _started(
            conn, "DO $$ BEGIN RAISE NOTICE 'started'; PERFORM pg_sleep(600); END $$"
        )
        pipelined = [asyncio.ensure_future(conn.fetchval("SELECT $1::int", i)) for i in range(50)]
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, cluster.stop, "immediate")
        results = await asyncio.wait_for(
            asyncio.gather(running, *pipelined, return_exceptions=True), HANG_GUARD
        )
        # The backend says why if its FATAL gets out before the socket closes, else the
        # connection is simply gone: either way every call fails with the same error.
        kinds = {type(r) for r in results}
        assert len(kinds) == 1, kinds
        assert kinds <= {exceptions.AdminShutdownError, exceptions.ConnectionDoesNotExistError}
        assert conn.is_closed()
