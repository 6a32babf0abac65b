"""Cursors (asyncpg's API, inside and outside transactions) and windowed streams: bounded
memory, early exit, errors, timeouts, and what other calls do meanwhile."""

from __future__ import annotations

import asyncio
import gc
import resource

import pgoxide
import pytest
from pgoxide import exceptions

pytestmark = pytest.mark.both_loops

HANG_GUARD = 60


SERIES = "SELECT g, g::text AS t FROM generate_series(1, $1::int) g"


async def _open_portals(conn: pgoxide.Connection) -> int:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT count(*) FROM pg_cursors WHERE name LIKE '\\_\\_pgoxide\\_portal%'"
    )


async def test_stream_reads_every_row_in_windows(conn):
    seen = [(r["g"], r["t"]) async for r in conn.stream(SERIES, 2500, window=1000)]
    assert seen == [(i, str(i)) for i in range(1, 2501)]
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SELECT 1") == 1


async def test_stream_of_an_empty_result_and_of_a_window_exactly(conn):
    assert [r async for r in conn.stream(SERIES, 0)] == []
    assert len([r async for r in conn.stream(SERIES, 10, window=10)]) == 10
    assert len([r async for r in conn.stream(SERIES, 10, window=1)]) == 10


async def test_leaving_a_stream_early_closes_it(conn):
    async for row in conn.stream(SERIES, 100_000, window=100):
        if row["g"] == 150:
            break
    # The connection is free at once for this task: the portal was closed with the loop.
    assert await asyncio.wait_for(conn.fetchval("SELECT 2"), HANG_GUARD) == 2
    assert not conn.is_in_transaction()


async def test_an_exception_in_the_loop_closes_the_stream(conn):
    with pytest.raises(KeyError):
        async for row in conn.stream(SERIES, 10_000, window=10):
            if row["g"] == 15:
                raise KeyError("boom")
    assert await conn.fetchval("SELECT 3") == 3


async def test_a_stream_kept_open_refuses_calls_from_its_own_task(conn):
    stream = conn.stream(SERIES, 1000, window=10)
    first = await stream.__anext__()
    assert first["g"] == 1
    with pytest.raises(exceptions.InterfaceError, match="close it first"):
        await conn.fetchval("SELECT 1")
    await stream.aclose()
    assert await conn.fetchval("SELECT 4") == 4


async def test_other_tasks_wait_for_a_stream_outside_a_transaction(conn):
    stream = conn.stream(SERIES, 1000, window=10)
    await stream.__anext__()
    other = asyncio.ensure_future(conn.fetchval("SELECT 'other'"))
    rows = 1 + len([r async for r in stream])
    assert rows == 1000
    assert await asyncio.wait_for(other, HANG_GUARD) == "other"


async def test_stream_error_mid_way(conn):
    query = "SELECT 10 / (100 - g) FROM generate_series(1, 200) g"
    got = []
    with pytest.raises(exceptions.DivisionByZeroError):
        async for row in conn.stream(query, window=10):
            got.append(row[0])
    assert len(got) == 90
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SELECT 5") == 5


async def test_stream_timeout_covers_the_whole_stream(conn):
    with pytest.raises(asyncio.TimeoutError):
        async for _ in conn.stream(
            "SELECT pg_sleep(CASE WHEN g = 3 THEN 600 ELSE 0 END) FROM generate_series(1, 5) g",
            window=1,
            timeout=0.5,
        ):
            pass
    assert await asyncio.wait_for(conn.fetchval("SELECT 6"), HANG_GUARD) == 6


async def test_cancelling_a_task_reading_a_stream(conn):
    consumed = asyncio.Event()

    async def reader() -> None:
        async for row in conn.stream(SERIES, 1_000_000, window=100):
            if row["g"] == 50:
                consumed.set()
                await asyncio.Event().wait()  # stuck until cancelled

    task = asyncio.ensure_future(reader())
    await asyncio.wait_for(consumed.wait(), HANG_GUARD)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    del task
    gc.collect()
    assert await asyncio.wait_for(conn.fetchval("SELECT 7"), HANG_GUARD) == 7


async def test_stream_inside_a_transaction_lets_other_calls_run(conn):
    await conn.execute("CREATE TEMP TABLE s(i int)")
    async with conn.transaction():
        async for row in conn.stream(SERIES, 50, window=7):
            # Each row read, another call on the same connection, inside the same block.
            await conn.execute("INSERT INTO s VALUES ($1)", row["g"])
        assert await conn.fetchval("SELECT count(*) FROM s") == 50
    assert await conn.fetchval("SELECT sum(i) FROM s") == 50 * 51 // 2


async def test_stream_after_plain_begin(conn):
    await conn.execute("BEGIN")
    total = 0
    async for row in conn.stream(SERIES, 100, window=30):
        total += row["g"]
    assert total == 5050
    assert conn.is_in_transaction()
    await conn.execute("ROLLBACK")


async def test_cursor_api_outside_a_transaction(conn):
    cur = await conn.cursor(SERIES, 100)
    assert [r["g"] for r in await cur.fetch(5)] == [1, 2, 3, 4, 5]
    row = await cur.fetchrow()
    assert row is not None and row["g"] == 6
    assert await cur.forward(10) == 10
    assert [r["g"] for r in await cur.fetch(2)] == [17, 18]
    assert await cur.forward(1000) == 82
    assert await cur.fetchrow() is None
    assert await cur.fetch(3) == []
    # Exhausted: the connection was given back.
    assert await conn.fetchval("SELECT 8") == 8


async def test_cursor_api_inside_a_transaction(conn):
    async with conn.transaction():
        cur = await conn.cursor(SERIES, 20)
        assert [r["g"] for r in await cur.fetch(3)] == [1, 2, 3]
        assert await conn.fetchval("SELECT 9") == 9  # other calls run between fetches
        assert await _open_portals(conn) == 1
        assert [r["g"] for r in await cur.fetch(3)] == [4, 5, 6]
        await cur.close()
        assert await _open_portals(conn) == 0


async def test_cursor_iteration_with_prefetch(conn):
    async with conn.transaction():
        got = [r["g"] async for r in conn.cursor(SERIES, 120, prefetch=25)]
    assert got == list(range(1, 121))
    got = [r["g"] async for r in conn.cursor(SERIES, 7)]
    assert got == list(range(1, 8))


async def test_cursor_errors_show_when_it_is_created(conn):
    with pytest.raises(exceptions.UndefinedTableError):
        await conn.cursor("SELECT * FROM no_such_table")
    with pytest.raises(exceptions.InterfaceError):
        conn.cursor(SERIES, 1, prefetch=0)
    cur = await conn.cursor(SERIES, 3)
    with pytest.raises(exceptions.InterfaceError):
        await cur.fetch(0)
    await cur.close()


async def test_prepared_statement_cursor(conn):
    stmt = await conn.prepare(SERIES)
    got = [r["g"] async for r in stmt.cursor(30, prefetch=4)]
    assert got == list(range(1, 31))
    cur = await stmt.cursor(5)
    assert [r["g"] for r in await cur.fetch(10)] == [1, 2, 3, 4, 5]


async def test_cursor_dropped_unfinished_gives_the_connection_back(conn):
    cur = await conn.cursor(SERIES, 100)
    await cur.fetch(1)
    del cur
    gc.collect()
    assert await asyncio.wait_for(conn.fetchval("SELECT 10"), HANG_GUARD) == 10


def _rss() -> int:
    """The process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.slow
async def test_stream_of_five_million_rows_keeps_memory_bounded(conn):
    # Resident memory sampled while reading: a stream that kept its rows would grow by
    # several hundred MB (5M records of two values).
    gc.collect()
    before = _rss()
    peak = before
    count = 0
    async for _ in conn.stream(SERIES, 5_000_000, window=1000):
        count += 1
        if count % 50_000 == 0:
            peak = max(peak, _rss())
    assert count == 5_000_000
    assert peak - before < 64 * 2**20


async def test_a_cursor_whose_window_failed_never_reads_as_ended(conn):
    # As asyncpg: the timeout cancelled the fetch and so failed the block; the next fetch
    # says so instead of returning an empty window.
    async with conn.transaction():
        cur = await conn.cursor("SELECT pg_sleep(10)")
        with pytest.raises(asyncio.TimeoutError):
            await cur.fetchrow(timeout=0.1)
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await cur.fetch(1)
    assert await conn.fetchval("SELECT 1") == 1


async def test_an_exhausted_cursor_in_a_block_releases_its_locks(conn):
    async with conn.transaction():
        await conn.execute(
            "CREATE TABLE exhausted_cursor (id int); INSERT INTO exhausted_cursor VALUES (0), (1)"
        )
        got = [r async for r in conn.cursor("SELECT * FROM exhausted_cursor")]
        # The portal is closed with this request, so the table is not in use any more.
        await conn.execute("DROP TABLE exhausted_cursor")
    assert [tuple(r) for r in got] == [(0,), (1,)]


async def test_prefetch_is_for_iterable_cursors_only(conn):
    stmt = await conn.prepare("SELECT generate_series(1, 3)")
    async with conn.transaction():
        with pytest.raises(exceptions.InterfaceError, match="prefetch argument"):
            await stmt.cursor(prefetch=10)
