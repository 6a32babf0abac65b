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
    # Rolled back however the checks go: a transaction left open would make the fixture's
    # cleanup (another task) wait for it until the timeout instead of failing the test.
    try:
        with pytest.raises(exceptions.InvalidCachedStatementError) as info:
            await conn.fetch("SELECT * FROM sc_a.t")
    finally:
        await tr.rollback()
    assert "roll back and retry the transaction" in str(info.value)
    # The cause is the server's own error: 0A000 "cached plan must not change result type".
    cause = info.value.__cause__
    assert type(cause) is exceptions.InvalidCachedStatementError
    assert cause.sqlstate == "0A000" and cause.message == "cached plan must not change result type"
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
    with pytest.raises(exceptions.DataError, match=r"\$1 is of type text\)"):
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


def _count_requests(conn: pgoxide.Connection) -> list[bytes]:
    """Every request the connection writes from now on (as tests/test_pooler_mode.py)."""
    sent: list[bytes] = []
    send = conn._protocol.send

    def counting(data: bytes):
        sent.append(bytes(data))
        return send(data)

    conn._protocol.send = counting  # type: ignore[method-assign]
    return sent


def _close_message(name: str) -> bytes:
    """The frontend Close message for the prepared statement ``name``."""
    body = b"S" + name.encode() + b"\0"
    return b"C" + (4 + len(body)).to_bytes(4, "big") + body


async def _server_statements(conn: pgoxide.Connection) -> set[str]:
    """The SQL of the connection's prepared statements, as the server has them now. The
    snapshot is taken by a simple-protocol query, which prepares nothing and so evicts
    nothing; reading it back afterwards does (call this last)."""
    await conn.execute("CREATE TEMP TABLE sc_seen AS SELECT statement FROM pg_prepared_statements")
    return {r[0] for r in await conn.fetch("SELECT statement FROM sc_seen")}


async def test_the_least_recently_used_statement_is_evicted(dsn):
    a, b, c = (f"SELECT $1::int + 1 AS {name}" for name in "abc")
    async with await pgoxide.connect(dsn, statement_cache_size=2) as conn:
        for query in (a, b, a, c):
            assert await conn.fetchval(query, 1) == 2
        # a was used after b: b is the least recently used when c comes, not a (FIFO's pick).
        cache = conn._statements
        assert len(cache) == 2
        assert (a in cache, b in cache, c in cache) == (True, False, True)
        assert await _server_statements(conn) == {a, c}


async def test_evicted_statements_are_closed_with_the_next_request(dsn):
    queries = [f"SELECT $1::int + {i}" for i in range(4)]
    async with await pgoxide.connect(dsn, statement_cache_size=2) as conn:
        sent = _count_requests(conn)
        names: list[str] = []
        for i, query in enumerate(queries):
            before = len(sent)
            assert await conn.fetchval(query, 1) == i + 1
            # First sight: describe, then execute. An eviction costs no request of its own.
            assert len(sent) - before == 2
            stmt = conn._statements.get(query)  # the most recent already: order unchanged
            assert stmt is not None
            names.append(stmt.name)
            if i >= 2:
                # Caching this query evicted the one used two queries ago; its Close rode
                # with this query's execute request, and with no other.
                close = _close_message(names[i - 2])
                assert close in sent[-1]
                assert not any(close in request for request in sent[:-1])
        assert len(set(names)) == len(queries)
        # Nothing is left to close: the next request carries no Close ...
        before = len(sent)
        statements = await _server_statements(conn)
        assert sent[before].startswith(b"Q")
        # ... and the evicted statements were already gone when it ran.
        assert statements == set(queries[2:])


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
