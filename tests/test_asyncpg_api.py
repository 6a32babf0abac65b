"""asyncpg's API beyond queries, against a real server: named prepared statements,
``reset()``, ``reload_schema_state()``, a pool's ``init_size``, and the exception classes of
every server version."""

from __future__ import annotations

import asyncio

import pgoxide
import pytest
from pgoxide import exceptions


async def test_prepare_with_a_name(conn: pgoxide.Connection) -> None:
    stmt = await conn.prepare("SELECT $1::int * 2", name="doubler")
    assert stmt.get_name() == "doubler"
    assert await stmt.fetchval(21) == 42
    assert (
        await conn.fetchval("SELECT count(*) FROM pg_prepared_statements WHERE name = 'doubler'")
        == 1
    )
    # The same name twice is the server's error, as in asyncpg.
    with pytest.raises(exceptions.DuplicatePreparedStatementError):
        await conn.prepare("SELECT 1", name="doubler")
    generated = await conn.prepare("SELECT 1")
    assert generated.get_name().startswith("__pgoxide_")
    with pytest.raises(exceptions.InterfaceError, match="must be a str"):
        await conn.prepare("SELECT 1", name=1)  # type: ignore[arg-type]


async def test_prepare_with_a_name_without_a_statement_cache(dsn: str) -> None:
    conn = await pgoxide.connect(dsn, statement_cache_size=0)
    try:
        stmt = await conn.prepare("SELECT $1::text", name="named_anyway")
        assert await stmt.fetchval("x") == "x"
        assert stmt.get_name() == "named_anyway"
    finally:
        await conn.close()


async def test_reset(conn: pgoxide.Connection) -> None:
    seen: list[str] = []
    await conn.add_listener("resetting", lambda *args: seen.append(args[2]))
    await conn.execute("SET application_name = 'before reset'")
    await conn.execute("SELECT pg_advisory_lock(7)")
    await conn.execute("BEGIN; DECLARE held CURSOR WITH HOLD FOR SELECT 1; COMMIT")
    await conn.execute("BEGIN")
    assert conn.is_in_transaction()
    await conn.reset()
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SHOW application_name") == ""
    assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    assert await conn.fetchval("SELECT count(*) FROM pg_cursors WHERE name = 'held'") == 0
    assert conn.get_reset_query() == (
        "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;\n"
    )


async def test_reload_schema_state_sees_a_changed_composite(conn: pgoxide.Connection) -> None:
    await conn.execute("CREATE TYPE pg_temp.reloaded AS (a int)")
    assert await conn.fetchval("SELECT ROW(1)::reloaded") == (1,)
    # Same oid, new layout: what the connection looked up is stale until reloaded.
    await conn.execute("ALTER TYPE pg_temp.reloaded ADD ATTRIBUTE b text")
    await conn.reload_schema_state()
    row = await conn.fetchval("SELECT ROW(1, 'x')::reloaded")
    assert tuple(row) == (1, "x")


async def test_pool_init_size(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, init_size=3, min_size=1, max_size=4) as pool:
        assert pool.get_init_size() == 3
        assert pool.get_size() == 3
    async with pgoxide.create_pool(dsn, min_size=2, max_size=2) as pool:
        assert pool.get_init_size() == 2
    for init_size, message in ((0, "smaller than min_size"), (5, "greater than max_size")):
        with pytest.raises(ValueError, match=f"init_size is {message}"):
            pgoxide.create_pool(dsn, init_size=init_size, min_size=1, max_size=4)


def test_exception_classes_of_every_server_version() -> None:
    # 16 and 17 added these; 17 removed snapshot_too_old. Each has its class.
    assert exceptions.InvalidArgumentForXqueryError.sqlstate == "10608"
    assert issubclass(exceptions.TransactionTimeoutError, exceptions.InvalidTransactionStateError)
    assert issubclass(exceptions.FileNameTooLongError, exceptions.PostgresSystemError)
    assert exceptions.SnapshotTooOldError.sqlstate == "72000"


async def test_a_server_error_names_its_query(conn: pgoxide.Connection) -> None:
    for call in (conn.execute, conn.fetch, conn.prepare):
        with pytest.raises(exceptions.UndefinedTableError) as info:
            await call("SELECT * FROM _nonexistent_")
        assert info.value.query == "SELECT * FROM _nonexistent_"
        assert info.value.position == "15"
    with pytest.raises(exceptions.DivisionByZeroError) as info:
        await conn.fetchval("SELECT $1::int / 0", 1)
    assert info.value.query == "SELECT $1::int / 0"


def test_exports_as_asyncpg() -> None:
    for name in ("PostgresError", "SubstringError", "InterfaceError"):
        assert name in pgoxide.__all__ and hasattr(pgoxide, name)
    # The message base class stays in pgoxide.exceptions, as in asyncpg.
    assert not hasattr(pgoxide, "PostgresMessage")
    assert "PostgresMessage" not in pgoxide.__all__
    assert exceptions.PostgresMessage is not None
    assert pgoxide.PostgresError.schema_name is None


async def test_invalid_timeouts_are_value_errors(conn: pgoxide.Connection, dsn: str) -> None:
    for command_timeout in ("a", False, -1, 0):
        with pytest.raises(ValueError, match="invalid command_timeout"):
            await pgoxide.connect(dsn, command_timeout=command_timeout)
    for timeout in ("a", False):
        with pytest.raises(ValueError, match="invalid timeout"):
            await conn.execute("SELECT 1", timeout=timeout)
    assert await conn.fetchval("SELECT 1", timeout=5) == 1


async def test_asyncpg_style_construction(dsn: str) -> None:
    loop = asyncio.get_running_loop()
    conn = await pgoxide.connect(dsn, loop=loop)
    await conn.close()
    pool = pgoxide.Pool(
        dsn,
        min_size=1,
        max_size=2,
        max_queries=100,
        max_inactive_connection_lifetime=60.0,
        loop=loop,
        connection_class=pgoxide.Connection,
        record_class=pgoxide.Record,
    )
    await pool
    assert await pool.fetchval("SELECT 1") == 1
    await pool.close()


def test_terminate_a_pool_outside_the_loop(dsn: str) -> None:
    # asyncpg's terminate() is synchronous: test teardowns call it after the loop stopped.
    loop = asyncio.new_event_loop()
    try:
        pool = loop.run_until_complete(pgoxide.create_pool(dsn, min_size=1, max_size=1))
        pool.terminate()
        loop.run_until_complete(asyncio.sleep(0))
        assert pool.get_size() == 0
    finally:
        loop.close()
