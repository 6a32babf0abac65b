"""Queries: execute/fetch*, Record, executemany atomicity, errors, bad parameters,
cancellation and timeouts, notifications, notices, transactions and the statement cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pgoxide
import pytest
from pgoxide import exceptions

pytestmark = pytest.mark.both_loops


@pytest.fixture
async def conn(dsn) -> AsyncIterator[pgoxide.Connection]:
    c = await pgoxide.connect(dsn)
    try:
        yield c
    finally:
        await c.close()


async def test_execute_simple_protocol(conn):
    tag = await conn.execute(
        "CREATE TEMP TABLE t(a int); INSERT INTO t VALUES (1), (2); UPDATE t SET a = a + 1"
    )
    assert tag == "UPDATE 2"
    assert await conn.execute("") == ""
    assert await conn.execute("INSERT INTO t VALUES ($1)", 5) == "INSERT 0 1"
    assert await conn.execute("SELECT 1") == "SELECT 1"


async def test_fetch_variants(conn):
    rows = await conn.fetch("SELECT g AS n, g * 2 AS d FROM generate_series(1, 3) g")
    assert [tuple(r) for r in rows] == [(1, 2), (2, 4), (3, 6)]
    assert await conn.fetch("SELECT 1 WHERE false") == []
    row = await conn.fetchrow("SELECT 1 AS a, 'x' AS b")
    assert (row["a"], row["b"]) == (1, "x")
    assert await conn.fetchrow("SELECT 1 WHERE false") is None
    assert await conn.fetchval("SELECT 1, 2, 3", column=2) == 3
    assert await conn.fetchval("SELECT 1 AS one, 2 AS two", column="two") == 2
    assert await conn.fetchval("SELECT 1 WHERE false") is None
    assert await conn.fetchval("SELECT NULL") is None


async def test_fetchrow_of_returning_applies_every_row(conn):
    await conn.execute("CREATE TEMP TABLE r(a int)")
    first = await conn.fetchrow("INSERT INTO r SELECT generate_series(1, 5) RETURNING a")
    assert first["a"] == 1
    assert await conn.fetchval("SELECT count(*) FROM r") == 5


async def test_record_behaviour(conn):
    r = await conn.fetchrow("SELECT 1 AS a, 'two' AS b, NULL::int AS c")
    assert len(r) == 3
    assert r[0] == 1 and r[-1] is None and r["b"] == "two"
    assert r[0:2] == (1, "two") and r[::-1] == (None, "two", 1)
    assert r.get("b") == "two" and r.get("zz") is None and r.get("zz", 7) == 7
    assert list(r.keys()) == ["a", "b", "c"]
    assert list(r.values()) == [1, "two", None]
    assert list(r.items()) == [("a", 1), ("b", "two"), ("c", None)]
    assert list(r) == [1, "two", None]
    assert dict(r.items()) == {"a": 1, "b": "two", "c": None}
    assert "a" in r and "zz" not in r
    assert r == (1, "two", None) and r != (1, "two")
    assert hash(r) == hash((1, "two", None))
    assert repr(r) == "<Record a=1 b='two' c=None>"
    with pytest.raises(KeyError):
        r["zz"]
    with pytest.raises(IndexError):
        r[3]
    with pytest.raises(TypeError):
        r[1.5]
    same = await conn.fetchrow("SELECT 1 AS x, 'two' AS y, NULL::int AS z")
    assert r == same and hash(r) == hash(same)
    # Duplicate names: the last one wins a lookup by name, as in asyncpg.
    dup = await conn.fetchrow("SELECT 1 AS a, 2 AS b, 3 AS a")
    assert dup["a"] == 3 and dup["b"] == 2 and len(dup) == 3
    assert list(dup.items()) == [("a", 1), ("b", 2), ("a", 3)]
    assert repr(dup) == "<Record a=1 b=2 a=3>"
    assert isinstance(r, pgoxide.Record)
    with pytest.raises(TypeError, match=r"cannot create 'pgoxide\.Record' instances"):
        pgoxide.Record()


async def test_record_classes(conn):
    class MyRecord(pgoxide.Record):
        pass

    r = await conn.fetchrow("SELECT 1 AS a, '2' AS b", record_class=MyRecord)
    assert isinstance(r, MyRecord) and repr(r) == "<MyRecord a=1 b='2'>"

    class WithInit(pgoxide.Record):
        def __init__(self) -> None:
            raise AssertionError("not called")

    class WithNew(pgoxide.Record):
        def __new__(cls) -> WithNew:
            raise AssertionError("not called")

    for bad in (WithInit, WithNew):
        with pytest.raises(pgoxide.InterfaceError, match="must not redefine __new__ or __init__"):
            await conn.fetchrow("SELECT 1", record_class=bad)
    with pytest.raises(pgoxide.InterfaceError, match="expected to be a subclass"):
        await conn.fetchrow("SELECT 1", record_class=dict)


async def test_records_and_the_garbage_collector(conn, dsn):
    import gc
    import weakref

    class Node:
        pass

    atomic = await conn.fetchrow("SELECT 1 AS a, 'x' AS b, 1.5::numeric AS c")
    # Immutable and holding only atomic values: it can never be part of a cycle.
    assert not gc.is_tracked(atomic)
    holder = await conn.fetchrow("SELECT ARRAY[1, 2] AS a")
    assert gc.is_tracked(holder)
    assert gc.is_tracked(holder["a"])
    grid = await conn.fetchval("SELECT '{{1,2},{3,4}}'::int4[]")
    assert gc.is_tracked(grid)
    assert all(gc.is_tracked(inner) for inner in grid)
    node = Node()
    node.record = holder
    holder["a"].append(node)
    ref = weakref.ref(node)
    del holder, node
    # The finished operation's future (which holds the rows) lives until this task step ends.
    await asyncio.sleep(0)
    gc.collect()
    assert ref() is None, "a cycle through a record is collected"

    # The same through a jsonb dict, and through an instance of a record_class (whose
    # traversal CPython runs before handing over to Record's).
    class MyRecord(pgoxide.Record):
        pass

    parsing = await pgoxide.connect(dsn, parse_json=True)
    for record_class in (None, MyRecord):
        row = await parsing.fetchrow(
            """SELECT '{"k": 1}'::jsonb AS d, ARRAY[1] AS a""", record_class=record_class
        )
        node = Node()
        node.record = row
        row["d"]["node"] = node
        row["a"].append(node)
        ref = weakref.ref(node)
        del row, node
        await asyncio.sleep(0)
        gc.collect()
        assert ref() is None, f"a cycle through a {record_class} is collected"
    await parsing.close()

    # And through the array of a composite value (a record the decoder builds, like the row).
    await conn.execute("CREATE TEMP TABLE gc_composite (arr int4[], n int4)")
    row = await conn.fetchrow("SELECT ROW(ARRAY[1], 2)::gc_composite AS v, 1 AS k")
    assert gc.is_tracked(row) and gc.is_tracked(row["v"]) and gc.is_tracked(row["v"]["arr"])
    node = Node()
    node.record = row
    row["v"]["arr"].append(node)
    ref = weakref.ref(node)
    del row, node
    await asyncio.sleep(0)
    gc.collect()
    assert ref() is None, "a cycle through a composite value is collected"

    # Arrays whose first element is NULL: every list and record inside is tracked all the same.
    arr = await conn.fetchval("SELECT ARRAY[NULL, ROW(ARRAY[1], 2)::gc_composite]")
    assert gc.is_tracked(arr) and gc.is_tracked(arr[1]) and gc.is_tracked(arr[1]["arr"])
    grid = await conn.fetchval("SELECT '{{NULL,2},{3,4}}'::int4[]")
    assert all(gc.is_tracked(inner) for inner in [grid, *grid])

    # And through the array of an anonymous record (a tuple, which Python tracks itself).
    row = await conn.fetchrow("SELECT ROW(ARRAY[1], 2) AS v")
    assert gc.is_tracked(row["v"]) and gc.is_tracked(row["v"][0])
    node = Node()
    node.record = row
    row["v"][0].append(node)
    ref = weakref.ref(node)
    del row, node
    await asyncio.sleep(0)
    gc.collect()
    assert ref() is None, "a cycle through an anonymous record is collected"


async def test_rows_of_a_result_share_their_names(conn):
    rows = await conn.fetch("SELECT g AS n FROM generate_series(1, 3) g")
    keys = [r.keys() for r in rows]
    assert all(list(k) == ["n"] for k in keys)


async def test_large_result_and_unicode(conn):
    rows = await conn.fetch("SELECT g, repeat('é☃', g % 50) AS s FROM generate_series(1, 200000) g")
    assert len(rows) == 200000
    assert rows[-1]["s"] == "é☃" * (200000 % 50)
    assert sum(r[0] for r in rows) == 200000 * 200001 // 2


async def test_executemany_inserts_all_rows(conn):
    await conn.execute("CREATE TEMP TABLE m(a int PRIMARY KEY, b text, c float8)")
    await conn.executemany(
        "INSERT INTO m VALUES ($1, $2, $3)", [(i, str(i), i / 2) for i in range(5000)]
    )
    assert await conn.fetchval("SELECT count(*) FROM m") == 5000
    assert await conn.fetchval("SELECT sum(c) FROM m") == sum(i / 2 for i in range(5000))
    await conn.executemany("INSERT INTO m VALUES ($1, $2, $3)", [])
    assert await conn.fetchval("SELECT count(*) FROM m") == 5000


async def test_executemany_is_atomic_on_server_error(conn):
    await conn.execute("CREATE TEMP TABLE m(a int PRIMARY KEY)")
    rows = [(i,) for i in range(100)] + [(5,)] + [(i,) for i in range(100, 200)]
    with pytest.raises(exceptions.UniqueViolationError):
        await conn.executemany("INSERT INTO m VALUES ($1)", rows)
    assert await conn.fetchval("SELECT count(*) FROM m") == 0


async def test_executemany_bad_row_sends_nothing(conn):
    await conn.execute("CREATE TEMP TABLE m(a int)")
    with pytest.raises(
        exceptions.DataError,
        match=r"query argument \$1 in element #2 of executemany\(\) sequence: 'three' "
        r"\(an integer is required, got str; \$1 is of type int4\)",
    ):
        await conn.executemany("INSERT INTO m VALUES ($1)", [(1,), (2,), ("three",)])
    assert await conn.fetchval("SELECT count(*) FROM m") == 0


async def test_executemany_bad_row_in_a_later_chunk_rolls_back(conn):
    """The first chunks are already on the wire when a bad row turns up: nothing commits."""
    await conn.execute("CREATE TEMP TABLE m(a int, b text)")
    pad = "x" * 1000
    rows = [(i, pad) for i in range(2000)] + [("bad", pad)]  # ~2 MB: several chunks
    with pytest.raises(exceptions.DataError, match="an integer is required"):
        await conn.executemany("INSERT INTO m VALUES ($1, $2)", rows)
    assert await conn.fetchval("SELECT count(*) FROM m") == 0
    assert not conn.is_in_transaction()


async def test_executemany_generator_error_rolls_back(conn):
    await conn.execute("CREATE TEMP TABLE m(a int, b text)")

    def rows():
        for i in range(3000):
            yield (i, "y" * 500)
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed"):
        await conn.executemany("INSERT INTO m VALUES ($1, $2)", rows())
    assert await conn.fetchval("SELECT count(*) FROM m") == 0


async def test_executemany_inside_transaction(conn):
    await conn.execute("CREATE TEMP TABLE m(a int PRIMARY KEY)")
    async with conn.transaction():
        await conn.execute("INSERT INTO m VALUES (-1)")
        await conn.executemany("INSERT INTO m VALUES ($1)", [(i,) for i in range(10)])
    assert await conn.fetchval("SELECT count(*) FROM m") == 11
    with pytest.raises(exceptions.UniqueViolationError):
        async with conn.transaction():
            await conn.executemany("INSERT INTO m VALUES ($1)", [(100,), (100,)])
    assert await conn.fetchval("SELECT count(*) FROM m") == 11


async def test_server_error_classes_and_fields(conn):
    await conn.execute("CREATE TEMP TABLE u(id int CONSTRAINT u_pk PRIMARY KEY)")
    await conn.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(exceptions.UniqueViolationError) as info:
        await conn.execute("INSERT INTO u VALUES ($1)", 1)
    e = info.value
    assert isinstance(e, exceptions.IntegrityConstraintViolationError)
    assert isinstance(e, exceptions.PostgresError)
    assert e.sqlstate == "23505"
    assert e.constraint_name == "u_pk" and e.table_name == "u"
    assert e.schema_name.startswith("pg_temp")
    assert e.detail == "Key (id)=(1) already exists."
    assert e.severity == "ERROR" and e.server_source_function
    assert e.as_dict()["constraint_name"] == "u_pk"

    with pytest.raises(exceptions.PostgresSyntaxError) as info:
        await conn.fetch("SELECT * FROM WHERE")
    assert info.value.sqlstate == "42601" and info.value.position == "15"

    with pytest.raises(exceptions.RaiseError) as info:
        await conn.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'custom'"
            " USING DETAIL = 'd', HINT = 'h', ERRCODE = 'P0001'; END $$"
        )
    assert (info.value.message, info.value.detail, info.value.hint) == ("custom", "d", "h")
    # PostgreSQL's error context for a RAISE in an anonymous code block.
    assert info.value.context == "PL/pgSQL function inline_code_block line 1 at RAISE"

    with pytest.raises(exceptions.UndefinedTableError):
        await conn.fetch("SELECT * FROM no_such_table")
    # The connection is usable after every one of these.
    assert await conn.fetchval("SELECT 42") == 42


async def test_error_in_transaction_then_failed_state(conn):
    with pytest.raises(exceptions.DivisionByZeroError):
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE x(a int)")
            await conn.fetchval("SELECT 1 / 0")
    assert not conn.is_in_transaction()
    await conn.execute("BEGIN")
    with pytest.raises(exceptions.DivisionByZeroError):
        await conn.fetchval("SELECT 1 / 0")
    with pytest.raises(exceptions.InFailedSQLTransactionError):
        await conn.fetchval("SELECT 1")
    await conn.execute("ROLLBACK")
    assert await conn.fetchval("SELECT 1") == 1


async def test_bad_parameter_fails_before_sending(conn):
    await conn.execute("CREATE TEMP SEQUENCE s")
    query = "SELECT nextval('s'), $1::int4, $2::text"
    with pytest.raises(exceptions.DataError) as info:
        await conn.fetchrow(query, "not an int", "ok")
    msg = str(info.value)
    assert "$1" in msg and "int4" in msg and "str" in msg
    with pytest.raises(
        exceptions.DataError,
        match=r"\$1: 2147483648 \(value out of int32 range; \$1 is of type int4\)",
    ):
        await conn.fetchrow(query, 2**31, "ok")
    with pytest.raises(
        exceptions.DataError,
        match=r"\$2: b'bytes' \(expected str, got bytes; \$2 is of type text\)",
    ):
        await conn.fetchrow(query, 1, b"bytes")
    with pytest.raises(
        exceptions.InterfaceError, match="expects 2 arguments for this query, 1 was passed"
    ):
        await conn.fetchrow(query, 1)
    # None of the above reached the server: the sequence was never advanced.
    row = await conn.fetchrow(query, 7, "x")
    assert tuple(row) == (1, 7, "x")


async def test_arguments_longer_than_a_message_fail_before_sending(conn):
    # 2 x 600 MiB: each argument is fine, the Bind message is longer than the server reads.
    big = bytes(600 * 2**20)
    await conn.execute("CREATE TEMP SEQUENCE s")
    with pytest.raises(exceptions.DataError, match="more than PostgreSQL accepts in one message"):
        await conn.fetchval("SELECT nextval('s'), length($1::bytea), length($2::bytea)", big, big)
    del big
    assert await conn.fetchval("SELECT nextval('s')") == 1


async def test_cancelled_task_leaves_connection_usable(conn):
    started = asyncio.Event()
    conn.add_log_listener(lambda c, m: started.set())
    task = asyncio.ensure_future(
        conn.execute("DO $$ BEGIN RAISE NOTICE 'started'; PERFORM pg_sleep(600); END $$")
    )
    await asyncio.wait_for(started.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server-side statement was cancelled (no 600 s wait); the next result is ours.
    assert await asyncio.wait_for(conn.fetchval("SELECT 'after'"), 60) == "after"
    assert not conn.is_in_transaction()


async def test_timeout_cancels_on_server(conn):
    with pytest.raises(asyncio.TimeoutError):
        await conn.execute("SELECT pg_sleep(600)", timeout=0.1)
    assert await asyncio.wait_for(conn.fetchval("SELECT 2"), 60) == 2


async def test_command_timeout(dsn):
    conn = await pgoxide.connect(dsn, command_timeout=0.1)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await conn.fetch("SELECT pg_sleep(600)")
        assert await asyncio.wait_for(conn.fetchval("SELECT 3"), 60) == 3
    finally:
        await conn.close()


async def test_notifications(conn, dsn):
    got: asyncio.Queue = asyncio.Queue()
    await conn.add_listener(
        "chan", lambda c, pid, ch, payload: got.put_nowait((c, pid, ch, payload))
    )
    async with await pgoxide.connect(dsn) as other:
        await other.execute("SELECT pg_notify('chan', 'hello')")
        c, pid, ch, payload = await asyncio.wait_for(got.get(), 60)
        assert (c, pid, ch, payload) == (conn, other.get_server_pid(), "chan", "hello")


async def test_async_listener_and_remove(conn, dsn):
    got: asyncio.Queue = asyncio.Queue()

    async def listener(c, pid, ch, payload):
        await got.put(payload)

    await conn.add_listener("c2", listener)
    await conn.execute("NOTIFY c2, 'one'")
    assert await asyncio.wait_for(got.get(), 60) == "one"
    await conn.remove_listener("c2", listener)
    assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0


async def test_log_listener(conn):
    got: asyncio.Queue = asyncio.Queue()
    conn.add_log_listener(lambda c, msg: got.put_nowait(msg))
    await conn.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42 USING HINT = 'hint'; END $$")
    msg = await asyncio.wait_for(got.get(), 60)
    assert isinstance(msg, exceptions.PostgresLogMessage)
    assert msg.message == "hello 42" and msg.hint == "hint" and msg.severity == "NOTICE"


async def test_transactions(conn):
    await conn.execute("CREATE TEMP TABLE tx(a int)")
    async with conn.transaction():
        await conn.execute("INSERT INTO tx VALUES (1)")
        with pytest.raises(ZeroDivisionError):
            async with conn.transaction():
                await conn.execute("INSERT INTO tx VALUES (2)")
                raise ZeroDivisionError
        await conn.execute("INSERT INTO tx VALUES (3)")
    assert [r[0] for r in await conn.fetch("SELECT a FROM tx ORDER BY a")] == [1, 3]
    tr = conn.transaction(isolation="serializable", readonly=True)
    await tr.start()
    assert await conn.fetchval("SHOW transaction_isolation") == "serializable"
    assert await conn.fetchval("SHOW transaction_read_only") == "on"
    await tr.rollback()
    assert not conn.is_in_transaction()
    await conn.execute("BEGIN")
    with pytest.raises(exceptions.InterfaceError, match="manually started"):
        await conn.transaction().start()
    await conn.execute("ROLLBACK")


async def test_statement_cache_closes_evicted_statements(dsn):
    conn = await pgoxide.connect(dsn, statement_cache_size=2)
    try:
        for i in range(5):
            assert await conn.fetchval(f"SELECT {i}::int + $1", 1) == i + 1
        prepared = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")
        assert prepared <= 2
    finally:
        await conn.close()


async def test_statement_cache_disabled_leaves_no_named_statements(dsn):
    conn = await pgoxide.connect(dsn, statement_cache_size=0)
    try:
        for i in range(3):
            assert await conn.fetchval("SELECT $1::int * 2", i) == i * 2
        assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0
    finally:
        await conn.close()


async def test_copy_from_stdin_through_execute_is_refused_cleanly(conn):
    await conn.execute("CREATE TEMP TABLE cp(a int)")
    with pytest.raises(exceptions.InterfaceError, match="copy_records_to_table"):
        await conn.execute("COPY cp FROM STDIN")
    assert await conn.fetchval("SELECT count(*) FROM cp") == 0
    with pytest.raises(exceptions.InterfaceError, match="copy_from_query"):
        await conn.execute("COPY (SELECT 1) TO STDOUT")
    assert await conn.fetchval("SELECT 2") == 2


async def test_max_message_size(dsn):
    conn = await pgoxide.connect(dsn, max_message_size=4096)
    assert await conn.fetchval("SELECT repeat('x', 1000)") == "x" * 1000
    with pytest.raises(exceptions.ProtocolError, match="exceeds max_message_size"):
        await conn.fetchval("SELECT repeat('x', 100000)")
    assert conn.is_closed()
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await conn.fetchval("SELECT 1")
