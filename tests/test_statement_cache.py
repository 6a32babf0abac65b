"""The statement cache never returns wrong data after the schema changes, and prepared
statements behave as asyncpg's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pgoxide
import pytest
from pgoxide import exceptions


@pytest.fixture
async def conn(dsn) -> AsyncIterator[pgoxide.Connection]:
    c = await pgoxide.connect(dsn)
    await c.execute(
        "DROP SCHEMA IF EXISTS sc_a, sc_b CASCADE; CREATE SCHEMA sc_a; CREATE SCHEMA sc_b"
    )
    try:
        yield c
    finally:
        await c.execute("DROP SCHEMA IF EXISTS sc_a, sc_b CASCADE")
        await c.close()


async def _prepared_names(conn: pgoxide.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")


async def test_alter_table_between_calls_is_retried(conn):
    await conn.execute("CREATE TABLE sc_a.t(a int); INSERT INTO sc_a.t VALUES (1)")
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM sc_a.t")] == [(1,)]
    await conn.execute("ALTER TABLE sc_a.t ADD COLUMN b text DEFAULT 'x'")
    rows = await conn.fetch("SELECT * FROM sc_a.t")
    assert [tuple(r) for r in rows] == [(1, "x")]
    assert list(rows[0].keys()) == ["a", "b"]


async def test_stale_statement_inside_a_transaction_says_what_happened(conn):
    await conn.execute("CREATE TABLE sc_a.t(a int); INSERT INTO sc_a.t VALUES (1)")
    await conn.fetch("SELECT * FROM sc_a.t")
    await conn.execute("ALTER TABLE sc_a.t ADD COLUMN b int")
    tr = conn.transaction()
    await tr.start()
    with pytest.raises(exceptions.InvalidCachedStatementError) as info:
        await conn.fetch("SELECT * FROM sc_a.t")
    assert "roll back and retry the transaction" in str(info.value)
    assert isinstance(info.value.__cause__, exceptions.PostgresError)
    await tr.rollback()
    # Evicted: the next call outside the transaction prepares it afresh.
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM sc_a.t")] == [(1, None)]


async def test_changed_search_path(conn):
    await conn.execute(
        "CREATE TABLE sc_a.t(a int); INSERT INTO sc_a.t VALUES (1);"
        "CREATE TABLE sc_b.t(x text, y text); INSERT INTO sc_b.t VALUES ('p', 'q')"
    )
    await conn.execute("SET search_path = sc_a")
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM t")] == [(1,)]
    await conn.execute("SET search_path = sc_b")
    rows = await conn.fetch("SELECT * FROM t")
    assert [tuple(r) for r in rows] == [("p", "q")]
    assert list(rows[0].keys()) == ["x", "y"]


async def test_column_type_change(conn):
    await conn.execute("CREATE TABLE sc_a.t(a int)")
    await conn.execute("INSERT INTO sc_a.t VALUES ($1)", 1)
    assert await conn.fetchval("SELECT a FROM sc_a.t") == 1
    await conn.execute("ALTER TABLE sc_a.t ALTER COLUMN a TYPE text")
    # The result type changed: the cached plan is replaced, never misread.
    assert await conn.fetchval("SELECT a FROM sc_a.t") == "1"
    # The cached INSERT's parameter type (int4) no longer fits a str: prepared again.
    await conn.execute("INSERT INTO sc_a.t VALUES ($1)", "two")
    assert sorted(r[0] for r in await conn.fetch("SELECT a FROM sc_a.t")) == ["1", "two"]


async def test_same_sql_with_different_parameter_types(conn):
    await conn.execute(
        "CREATE FUNCTION sc_a.f(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'int ' || x $$;"
        "CREATE FUNCTION sc_b.f(x text) RETURNS text LANGUAGE sql AS $$ SELECT 'text ' || x $$"
    )
    await conn.execute("SET search_path = sc_a")
    assert await conn.fetchval("SELECT f($1)", 5) == "int 5"
    await conn.execute("SET search_path = sc_b")
    # The cached statement takes an int4; this str must not be forced into it.
    assert await conn.fetchval("SELECT f($1)", "five") == "text five"
    with pytest.raises(exceptions.DataError, match=r"\$1 of type text"):
        await conn.fetchval("SELECT f($1)", 5)


async def test_statements_dropped_on_the_server_are_prepared_again(conn):
    assert await conn.fetchval("SELECT $1::int + 1", 1) == 2
    await conn.execute("DEALLOCATE ALL")
    assert await conn.fetchval("SELECT $1::int + 1", 2) == 3


async def test_recreated_type_is_looked_up_again(conn):
    await conn.execute("CREATE TYPE sc_a.mood AS ENUM ('sad', 'ok')")
    assert await conn.fetchval("SELECT $1::sc_a.mood", "ok") == "ok"
    await conn.execute("DROP TYPE sc_a.mood; CREATE TYPE sc_a.mood AS ENUM ('ok', 'happy')")
    assert await conn.fetchval("SELECT $1::sc_a.mood", "happy") == "happy"


async def test_cache_size_zero_leaves_no_named_statement(dsn):
    async with await pgoxide.connect(dsn, statement_cache_size=0) as conn:
        for i in range(3):
            assert await conn.fetchval("SELECT $1::int * 2", i) == i * 2
        stmt = await conn.prepare("SELECT $1::int + 10")
        assert await stmt.fetchval(1) == 11
        assert await conn.fetchval("SELECT 'other query'") == "other query"
        assert await stmt.fetchval(2) == 12
        await conn.executemany("SELECT $1::int", [(1,), (2,)])
        assert await _prepared_names(conn) == 0


async def test_evicted_statements_are_closed_with_the_next_request(dsn):
    async with await pgoxide.connect(dsn, statement_cache_size=2) as conn:
        for i in range(6):
            assert await conn.fetchval(f"SELECT {i}::int + $1", 1) == i + 1
        # Two cached plus the count query itself at most.
        assert await _prepared_names(conn) <= 3


async def test_statements_expire_after_their_lifetime(dsn):
    async with await pgoxide.connect(dsn, max_cached_statement_lifetime=0.01) as conn:
        expired = asyncio.Event()
        statements = conn._statements
        evict = statements.evict

        def watch(query: str, stmt: object = None) -> None:
            evict(query, stmt)  # type: ignore[arg-type]
            if stmt is not None:  # the expiry timer names the statement it expires
                expired.set()

        statements.evict = watch  # type: ignore[method-assign]
        query = "SELECT $1::int + 100"
        assert await conn.fetchval(query, 1) == 101
        await asyncio.wait_for(expired.wait(), 30)
        statements._lifetime = 0  # the statement prepared next must stay for the count below
        # Evicted; its Close rides with the next request, which prepares the query afresh.
        assert await conn.fetchval(query, 2) == 102
        names = await conn.fetch("SELECT statement FROM pg_prepared_statements")
        assert [r[0] for r in names].count(query) == 1


async def test_prepared_statement_api(conn):
    await conn.execute("CREATE TABLE sc_a.p(id int PRIMARY KEY, label text)")
    ins = await conn.prepare("INSERT INTO sc_a.p VALUES ($1, $2) RETURNING id, label")
    assert [(t.name, t.kind, t.schema) for t in ins.get_parameters()] == [
        ("int4", "scalar", "pg_catalog"),
        ("text", "scalar", "pg_catalog"),
    ]
    assert [(a.name, a.type.name) for a in ins.get_attributes()] == [
        ("id", "int4"),
        ("label", "text"),
    ]
    rows = await ins.fetch(1, "one")
    assert [tuple(r) for r in rows] == [(1, "one")]
    assert ins.get_statusmsg() == "INSERT 0 1"
    await ins.executemany([(2, "two"), (3, "three")])
    sel = await conn.prepare("SELECT label FROM sc_a.p WHERE id = ANY($1) ORDER BY id")
    assert [r[0] for r in await sel.fetch([1, 3])] == ["one", "three"]
    assert await sel.fetchval([2]) == "two"
    assert sel.get_query().startswith("SELECT label")
    plan = await sel.explain([1])
    assert plan[0]["Plan"]["Node Type"]
    analyzed = await ins.explain(4, "four", analyze=True)
    assert "Actual Rows" in analyzed[0]["Plan"]
    # explain(analyze=True) ran the insert inside a rolled-back transaction.
    assert await conn.fetchval("SELECT count(*) FROM sc_a.p WHERE id = 4") == 0


async def test_prepared_statement_is_closed_when_dropped(conn):
    import gc

    query = "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT 41 + 1'"
    stmt = await conn.prepare("SELECT 41 + 1")
    assert await stmt.fetchval() == 42
    assert await conn.fetchval(query) == 1
    del stmt
    gc.collect()
    # The Close rides with this request, ahead of it.
    assert await conn.fetchval(query) == 0
