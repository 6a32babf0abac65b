"""Explicit pipelines (``conn.pipeline()``) in both modes, and ``fetchmany``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pgoxide
import pytest
from pgoxide import exceptions

pytestmark = pytest.mark.both_loops

HANG_GUARD = 60


@pytest.fixture
async def conn(dsn) -> AsyncIterator[pgoxide.Connection]:
    c = await pgoxide.connect(dsn)
    await c.execute("CREATE TEMP TABLE p(i int PRIMARY KEY, t text)")
    try:
        yield c
    finally:
        c.terminate()


async def test_default_mode_keeps_each_failure_to_its_call(conn):
    async with conn.pipeline() as p:
        a = p.execute("INSERT INTO p VALUES ($1, $2)", 1, "one")
        b = p.execute("INSERT INTO p VALUES ($1, $2)", 1, "duplicate")
        c = p.fetchval("SELECT count(*) FROM p")
        d = p.fetch("SELECT i, t FROM p ORDER BY i")
        e = p.fetchrow("SELECT 1/0")
        f = p.executemany("INSERT INTO p VALUES ($1, $2)", [(2, "two"), (3, "three")])
        g = p.execute("SELECT 1")
    assert await a == "INSERT 0 1"
    with pytest.raises(exceptions.UniqueViolationError):
        await b
    assert await c == 1
    assert [tuple(r) for r in await d] == [(1, "one")]
    with pytest.raises(exceptions.DivisionByZeroError):
        await e
    assert await f is None
    assert await g == "SELECT 1"
    results = p.results
    assert results[0] == "INSERT 0 1"
    assert isinstance(results[1], exceptions.UniqueViolationError)
    assert isinstance(results[4], exceptions.DivisionByZeroError)
    assert await conn.fetchval("SELECT count(*) FROM p") == 3


async def test_calls_are_sent_together_when_one_is_awaited(conn):
    sent = []
    send = conn._protocol.send

    def counting(data: bytes) -> asyncio.Future:
        sent.append(data)
        return send(data)

    await conn.fetchval("SELECT $1::int", 0)  # cached, so the pipeline needs no Parse
    conn._protocol.send = counting  # type: ignore[method-assign]
    async with conn.pipeline() as p:
        first = p.fetchval("SELECT $1::int", 1)
        second = p.fetchval("SELECT $1::int", 2)
        assert sent == []
        assert await second == 2
        assert len(sent) == 2
        assert await first == 1
        third = p.fetchval("SELECT $1::int", 3)
    assert await third == 3
    assert len(sent) == 3


async def test_a_failing_block_sends_nothing_more(conn):
    with pytest.raises(RuntimeError):
        async with conn.pipeline() as p:
            p.execute("INSERT INTO p VALUES ($1, 'x')", 10)
            raise RuntimeError("changed my mind")
    assert await conn.fetchval("SELECT count(*) FROM p") == 0
    with pytest.raises(exceptions.InterfaceError, match="has ended"):
        p.execute("SELECT 1")


async def test_pipeline_timeout(conn):
    async with conn.pipeline(timeout=0.2) as p:
        slow = p.execute("SELECT pg_sleep(600)")
        fast = p.fetchval("SELECT 1")
    with pytest.raises(asyncio.TimeoutError):
        await slow
    with pytest.raises(asyncio.TimeoutError):
        await fast
    # Every call was abandoned, so the running one was cancelled on the server.
    assert await asyncio.wait_for(conn.fetchval("SELECT 2"), HANG_GUARD) == 2


async def test_atomic_mode_commits_everything(conn):
    async with conn.pipeline(atomic=True) as p:
        a = p.execute("INSERT INTO p VALUES ($1, $2)", 1, "one")
        b = p.executemany("INSERT INTO p VALUES ($1, $2)", [(2, "two"), (3, "three")])
        c = p.fetchval("SELECT count(*) FROM p")
        d = p.fetchrow("SELECT t FROM p WHERE i = $1", 2)
        e = p.execute("UPDATE p SET t = upper(t)")
    results = p.results
    assert results[:3] == ["INSERT 0 1", None, 3]
    assert tuple(results[3]) == ("two",)
    assert results[4] == "UPDATE 3"
    assert await a == "INSERT 0 1"
    assert await b is None
    assert await c == 3
    assert tuple(await d) == ("two",)
    assert await e == "UPDATE 3"
    assert sorted(r[0] for r in await conn.fetch("SELECT t FROM p")) == ["ONE", "THREE", "TWO"]


async def test_atomic_mode_error_in_the_middle_rolls_back_and_aborts_the_rest(conn):
    with pytest.raises(exceptions.UniqueViolationError):
        async with conn.pipeline(atomic=True) as p:
            first = p.execute("INSERT INTO p VALUES ($1, $2)", 1, "one")
            second = p.execute("INSERT INTO p VALUES ($1, $2)", 1, "again")
            third = p.fetchval("SELECT count(*) FROM p")
            fourth = p.execute("INSERT INTO p VALUES ($1, $2)", 4, "four")
    assert await first == "INSERT 0 1"  # it ran, then the transaction rolled back
    with pytest.raises(exceptions.UniqueViolationError):
        await second
    for call in (third, fourth):
        with pytest.raises(exceptions.PipelineAbortedError):
            await call
    assert await conn.fetchval("SELECT count(*) FROM p") == 0
    assert not conn.is_in_transaction()


async def test_atomic_mode_bad_parameter_sends_nothing_of_it_and_rolls_back(conn):
    with pytest.raises(exceptions.DataError):
        async with conn.pipeline(atomic=True) as p:
            p.execute("INSERT INTO p VALUES ($1, $2)", 1, "one")
            bad = p.execute("INSERT INTO p VALUES ($1, $2)", "not an int", "x")
            after = p.execute("INSERT INTO p VALUES ($1, $2)", 3, "three")
    with pytest.raises(exceptions.DataError, match=r"\$1"):
        await bad
    with pytest.raises(exceptions.PipelineAbortedError):
        await after
    assert await conn.fetchval("SELECT count(*) FROM p") == 0


async def test_atomic_mode_syntax_error_sends_nothing(conn):
    with pytest.raises(exceptions.PostgresSyntaxError):
        async with conn.pipeline(atomic=True) as p:
            p.execute("INSERT INTO p VALUES ($1, $2)", 1, "one")
            p.execute("INSRT INTO p VALUES (2)")
    assert isinstance(p.results[0], exceptions.PipelineAbortedError)
    assert isinstance(p.results[1], exceptions.PostgresSyntaxError)
    assert await conn.fetchval("SELECT count(*) FROM p") == 0


async def test_atomic_mode_inside_a_transaction_leaves_it_failed(conn):
    tr = conn.transaction()
    await tr.start()
    with pytest.raises(exceptions.DivisionByZeroError):
        async with conn.pipeline(atomic=True) as p:
            p.execute("INSERT INTO p VALUES ($1, 'x')", 1)
            p.fetchval("SELECT 1/0")
    with pytest.raises(exceptions.InFailedSQLTransactionError):
        await conn.fetchval("SELECT 1")
    await tr.rollback()
    assert await conn.fetchval("SELECT count(*) FROM p") == 0


async def test_fetchmany(conn):
    rows = await conn.fetchmany(
        "INSERT INTO p VALUES ($1, $2) RETURNING i, t", [(i, str(i)) for i in range(1, 6)]
    )
    assert [tuple(r) for r in rows] == [(i, str(i)) for i in range(1, 6)]
    assert await conn.fetchmany("SELECT $1::int", []) == []
    with pytest.raises(exceptions.UniqueViolationError):
        await conn.fetchmany("INSERT INTO p VALUES ($1, 'x') RETURNING i", [(10,), (1,)])
    # Atomic: the first row of the failed batch was rolled back too.
    assert await conn.fetchval("SELECT count(*) FROM p WHERE i = 10") == 0
    stmt = await conn.prepare("SELECT $1::int * 2 AS d")
    assert [r["d"] for r in await stmt.fetchmany([(1,), (2,), (3,)])] == [2, 4, 6]
