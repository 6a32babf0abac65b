"""Transaction blocks (``conn.transaction()``) with asyncpg's semantics: savepoints, isolation
levels and access modes as the server runs them, the errors for misuse, cancellation and
timeouts inside a block, and a block's ownership of the connection."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import pgoxide
import pytest
from pgoxide import exceptions

pytestmark = pytest.mark.both_loops

# A generous guard against hangs; every call below must finish long before it.
HANG_GUARD = 60

# A statement that first tells the client it runs (a NOTICE), then runs until cancelled.
SLEEPER = "DO $$ BEGIN RAISE NOTICE 'started'; PERFORM pg_sleep(600); END $$"

LEVELS = {
    "read_committed": "read committed",
    "read_uncommitted": "read uncommitted",
    "repeatable_read": "repeatable read",
    "serializable": "serializable",
}


class Rollback(Exception):
    """Raised to leave a block by rolling it back."""


@pytest.fixture
async def table(conn) -> str:
    """A temporary table of ``conn``: ``a int PRIMARY KEY``."""
    await conn.execute("CREATE TEMP TABLE t(a int PRIMARY KEY)")
    return "t"


@pytest.fixture
def shared_table(pg_cluster, pg_roles) -> Iterator[str]:
    """A permanent table (temporary ones are writable in read-only transactions, and other
    sessions cannot see them), dropped afterwards."""
    name = f"tx_{uuid.uuid4().hex}"
    database = pg_roles.database
    pg_cluster.psql(f"CREATE TABLE {name}(a int PRIMARY KEY)", database=database)
    try:
        yield name
    finally:
        pg_cluster.psql(f"DROP TABLE {name}", database=database)


async def _assert_aborted(conn: pgoxide.Connection) -> None:
    """The block is aborted, as the server defines it: every statement fails until the
    rollback."""
    assert conn.is_in_transaction()
    with pytest.raises(exceptions.InFailedSQLTransactionError):
        await asyncio.wait_for(conn.fetchval("SELECT 1"), HANG_GUARD)
    with pytest.raises(exceptions.InFailedSQLTransactionError):
        await asyncio.wait_for(conn.execute("INSERT INTO t VALUES (2)"), HANG_GUARD)


async def _values(conn: pgoxide.Connection, table: str) -> list[int]:
    return [r[0] for r in await conn.fetch(f"SELECT a FROM {table} ORDER BY a")]


def _on_notice(conn: pgoxide.Connection) -> asyncio.Event:
    """An event set by the next notice the server sends ``conn``."""
    event = asyncio.Event()
    conn.add_log_listener(lambda c, m: event.set())
    return event


# -- savepoints ----------------------------------------------------------------------------


@pytest.mark.parametrize("outer_commits", [True, False], ids=["outer-commits", "outer-rolls-back"])
async def test_a_released_savepoint_follows_the_outer_block(conn, table, outer_commits):
    with contextlib.nullcontext() if outer_commits else pytest.raises(Rollback):
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
            # RELEASE SAVEPOINT keeps the inner changes, and the outer block is still open.
            assert conn.is_in_transaction()
            assert await _values(conn, table) == [1, 2]
            await conn.execute("INSERT INTO t VALUES (3)")
            if not outer_commits:
                raise Rollback
    assert not conn.is_in_transaction()
    assert await _values(conn, table) == ([1, 2, 3] if outer_commits else [])


@pytest.mark.parametrize("outer_commits", [True, False], ids=["outer-commits", "outer-rolls-back"])
async def test_a_released_savepoint_follows_the_outer_block_manually(conn, table, outer_commits):
    outer = conn.transaction()
    await outer.start()
    await conn.execute("INSERT INTO t VALUES (1)")
    inner = conn.transaction()
    await inner.start()
    await conn.execute("INSERT INTO t VALUES (2)")
    await inner.commit()
    assert conn.is_in_transaction()
    if outer_commits:
        await outer.commit()
    else:
        await outer.rollback()
    assert not conn.is_in_transaction()
    assert await _values(conn, table) == ([1, 2] if outer_commits else [])


async def test_a_savepoint_released_inside_one_rolled_back_is_undone(conn, table):
    async with conn.transaction():
        await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(Rollback):
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
                async with conn.transaction():
                    await conn.execute("INSERT INTO t VALUES (3)")
                assert await _values(conn, table) == [1, 2, 3]
                raise Rollback
        await conn.execute("INSERT INTO t VALUES (4)")
    assert await _values(conn, table) == [1, 4]


async def test_a_server_error_in_a_savepoint_rolls_back_only_the_savepoint(conn, table):
    async with conn.transaction():
        await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(exceptions.UniqueViolationError):
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
                await conn.execute("INSERT INTO t VALUES (1)")
        # Rolled back to the savepoint: the outer block is usable again, without 2.
        assert await _values(conn, table) == [1]
        await conn.execute("INSERT INTO t VALUES (3)")
    assert not conn.is_in_transaction()
    assert await _values(conn, table) == [1, 3]


async def test_a_server_error_in_a_manual_savepoint(conn, table):
    outer = conn.transaction()
    await outer.start()
    await conn.execute("INSERT INTO t VALUES (1)")
    inner = conn.transaction()
    await inner.start()
    with pytest.raises(exceptions.DivisionByZeroError):
        await conn.execute("INSERT INTO t VALUES (1 / 0)")
    with pytest.raises(exceptions.InFailedSQLTransactionError):
        await conn.execute("INSERT INTO t VALUES (2)")
    await inner.rollback()
    await conn.execute("INSERT INTO t VALUES (3)")
    await outer.commit()
    assert await _values(conn, table) == [1, 3]


# -- isolation levels and access modes -----------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["", "deferrable"])
@pytest.mark.parametrize("readonly", [False, True], ids=["", "readonly"])
@pytest.mark.parametrize("isolation", [None, *LEVELS])
async def test_the_server_runs_the_block_as_asked(conn, isolation, readonly, deferrable):
    # The session's default differs from the level asked for, so that a BEGIN that ignored
    # it would show. With no level asked for, the session's default applies.
    default = "repeatable read" if isolation == "serializable" else "serializable"
    await conn.execute(f"SET default_transaction_isolation = '{default}'")
    expected = LEVELS[isolation] if isolation else default
    async with conn.transaction(isolation=isolation, readonly=readonly, deferrable=deferrable):
        assert await conn.fetchval("SHOW transaction_isolation") == expected
        assert await conn.fetchval("SHOW transaction_read_only") == ("on" if readonly else "off")
        assert await conn.fetchval("SHOW transaction_deferrable") == ("on" if deferrable else "off")
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SHOW transaction_read_only") == "off"


@pytest.mark.parametrize("isolation", [None, *LEVELS])
async def test_a_write_in_a_readonly_block_fails(conn, shared_table, isolation):
    with pytest.raises(exceptions.ReadOnlySQLTransactionError):
        async with conn.transaction(isolation=isolation, readonly=True):
            assert await conn.fetchval(f"SELECT count(*) FROM {shared_table}") == 0
            await conn.execute(f"INSERT INTO {shared_table} VALUES (1)")
    assert not conn.is_in_transaction()
    # The same write in a read-write block of that level works.
    async with conn.transaction(isolation=isolation):
        await conn.execute(f"INSERT INTO {shared_table} VALUES (1)")
    assert await _values(conn, shared_table) == [1]


@pytest.mark.parametrize(
    ("isolation", "sees_later_commits"),
    [
        ("read_committed", True),
        ("read_uncommitted", True),
        ("repeatable_read", False),
        ("serializable", False),
    ],
)
async def test_the_isolation_level_governs_what_the_block_sees(
    conn, other, shared_table, isolation, sees_later_commits
):
    await conn.execute("SET default_transaction_isolation = 'read committed'")
    async with conn.transaction(isolation=isolation):
        assert await _values(conn, shared_table) == []  # takes the snapshot
        await other.execute(f"INSERT INTO {shared_table} VALUES (1)")
        assert await _values(conn, shared_table) == ([1] if sees_later_commits else [])


# -- misuse ------------------------------------------------------------------------------


async def test_a_transaction_cannot_be_started_twice(conn):
    tr = conn.transaction()
    await tr.start()
    with pytest.raises(exceptions.InterfaceError):
        await tr.start()
    with pytest.raises(exceptions.InterfaceError):
        async with tr:
            pass
    # The block itself is intact: still open, and it ends normally.
    assert conn.is_in_transaction()
    assert await conn.fetchval("SELECT 1") == 1
    await tr.commit()
    assert not conn.is_in_transaction()
    with pytest.raises(exceptions.InterfaceError):
        await tr.start()


async def test_ending_a_transaction_not_started_fails(conn):
    tr = conn.transaction()
    with pytest.raises(exceptions.InterfaceError):
        await tr.commit()
    with pytest.raises(exceptions.InterfaceError):
        await tr.rollback()
    assert not conn.is_in_transaction()
    # Neither sent anything: the object can still be used.
    await tr.start()
    assert conn.is_in_transaction()
    await tr.rollback()


async def test_a_transaction_ends_once(conn, table):
    tr = conn.transaction()
    await tr.start()
    await conn.execute("INSERT INTO t VALUES (1)")
    await tr.rollback()
    with pytest.raises(exceptions.InterfaceError):
        await tr.commit()
    with pytest.raises(exceptions.InterfaceError):
        await tr.rollback()
    assert await _values(conn, table) == []

    tr = conn.transaction()
    await tr.start()
    await conn.execute("INSERT INTO t VALUES (2)")
    await tr.commit()
    with pytest.raises(exceptions.InterfaceError):
        await tr.rollback()
    with pytest.raises(exceptions.InterfaceError):
        await tr.commit()
    assert await _values(conn, table) == [2]
    assert not conn.is_in_transaction()


@pytest.mark.parametrize(
    ("outer", "inner"),
    [("serializable", "read_committed"), (None, "serializable")],
)
async def test_a_nested_block_of_another_isolation_level_fails(conn, table, outer, inner):
    async with conn.transaction(isolation=outer):
        await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(exceptions.InterfaceError):
            async with conn.transaction(isolation=inner):
                await conn.execute("INSERT INTO t VALUES (2)")
        # Nothing was sent for the refused block: the outer one goes on.
        await conn.execute("INSERT INTO t VALUES (3)")
    assert await _values(conn, table) == [1, 3]


async def test_a_nested_block_naming_no_level_or_the_same_one_works(conn, table):
    async with conn.transaction(isolation="repeatable_read"):
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
        async with conn.transaction(isolation="repeatable_read"):
            await conn.execute("INSERT INTO t VALUES (2)")
        assert await conn.fetchval("SHOW transaction_isolation") == "repeatable read"
    assert await _values(conn, table) == [1, 2]


async def test_a_nested_level_equal_to_the_outer_blocks_effective_one_works(conn, table):
    async with conn.transaction():  # the session's default: read committed
        assert await conn.fetchval("SHOW transaction_isolation") == "read committed"
        async with conn.transaction(isolation="read_committed"):
            await conn.execute("INSERT INTO t VALUES (1)")
    assert await _values(conn, table) == [1]


async def test_a_block_in_a_manually_started_transaction_fails(conn, table):
    await conn.execute("BEGIN")
    await conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(exceptions.InterfaceError, match="manually started"):
        await conn.transaction().start()
    with pytest.raises(exceptions.InterfaceError, match="manually started"):
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (2)")
    # The manual transaction is untouched.
    assert conn.is_in_transaction()
    assert await _values(conn, table) == [1]
    await conn.execute("COMMIT")
    assert await _values(conn, table) == [1]


@pytest.mark.parametrize("isolation", ["snapshot", "READ COMMITTED", "read committed", ""])
async def test_an_unknown_isolation_level_is_a_value_error(conn, isolation):
    with pytest.raises(ValueError, match="isolation"):
        conn.transaction(isolation=isolation)
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SELECT 1") == 1


async def test_a_block_managed_by_async_with_cannot_be_ended_manually(conn, table):
    with pytest.raises(Rollback):
        async with conn.transaction() as tr:
            await conn.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(exceptions.InterfaceError):
                await tr.commit()
            with pytest.raises(exceptions.InterfaceError):
                await tr.rollback()
            assert conn.is_in_transaction()
            raise Rollback
    assert not conn.is_in_transaction()
    assert await _values(conn, table) == []


# -- cancellation and timeouts inside a block -----------------------------------------------


async def test_a_cancelled_statement_aborts_the_block(conn, table):
    started = _on_notice(conn)
    with pytest.raises(Rollback):
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
            # A task started inside the block runs its statement in it; it is cancelled
            # while the server runs the statement.
            task = asyncio.ensure_future(conn.execute(SLEEPER))
            await asyncio.wait_for(started.wait(), HANG_GUARD)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, HANG_GUARD)
            # The server cancelled the statement, which aborted the transaction: every
            # later statement fails until the rollback.
            await _assert_aborted(conn)
            raise Rollback
    assert not conn.is_in_transaction()
    assert await asyncio.wait_for(conn.fetchval("SELECT 'after'"), HANG_GUARD) == "after"
    assert await _values(conn, table) == []


async def test_a_task_cancelled_in_a_block_rolls_it_back(conn, table):
    started = _on_notice(conn)
    rolled_back = asyncio.Event()

    async def body() -> None:
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (1)")
                await conn.execute(SLEEPER)
        finally:
            rolled_back.set()

    task = asyncio.ensure_future(body())
    await asyncio.wait_for(started.wait(), HANG_GUARD)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG_GUARD)
    assert rolled_back.is_set()
    # `async with` rolled back: no transaction is open, nothing was kept.
    assert not conn.is_in_transaction()
    assert await asyncio.wait_for(conn.fetchval("SELECT 'after'"), HANG_GUARD) == "after"
    assert await _values(conn, table) == []
    # And a new block works.
    async with conn.transaction():
        await conn.execute("INSERT INTO t VALUES (2)")
    assert await _values(conn, table) == [2]


async def test_a_task_cancelled_twice_in_a_block_still_ends_it(conn, table):
    started = _on_notice(conn)

    async def body() -> None:
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
            await conn.execute(SLEEPER)

    task = asyncio.ensure_future(body())
    await asyncio.wait_for(started.wait(), HANG_GUARD)
    task.cancel()
    # One loop step: the task handles the cancellation and its `async with` exit starts
    # the ROLLBACK, which waits while the cancelled statement is being cancelled.
    await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG_GUARD)
    assert await asyncio.wait_for(conn.fetchval("SELECT 'after'"), HANG_GUARD) == "after"
    assert not conn.is_in_transaction()
    assert await _values(conn, table) == []


async def test_a_timeout_in_a_block_aborts_it(conn, table):
    with pytest.raises(Rollback):
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(asyncio.TimeoutError):
                await conn.execute("SELECT pg_sleep(600)", timeout=0.1)
            await _assert_aborted(conn)
            raise Rollback
    assert not conn.is_in_transaction()
    assert await asyncio.wait_for(conn.fetchval("SELECT 'after'"), HANG_GUARD) == "after"
    assert await _values(conn, table) == []


async def test_a_block_whose_statement_timed_out_commits_nothing(conn, table):
    # Leaving the block normally sends COMMIT, which the server answers by rolling the
    # aborted transaction back.
    async with conn.transaction():
        await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(asyncio.TimeoutError):
            await conn.execute("SELECT pg_sleep(600)", timeout=0.1)
    assert not conn.is_in_transaction()
    assert await _values(conn, table) == []


async def test_a_timeout_leaving_a_block_rolls_it_back(conn, table):
    with pytest.raises(asyncio.TimeoutError):
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
            await conn.execute("SELECT pg_sleep(600)", timeout=0.1)
    assert not conn.is_in_transaction()
    assert await asyncio.wait_for(conn.fetchval("SELECT 'after'"), HANG_GUARD) == "after"
    assert await _values(conn, table) == []


async def test_a_timeout_in_a_savepoint_rolls_back_only_the_savepoint(conn, table):
    async with conn.transaction():
        await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(asyncio.TimeoutError):
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
                await conn.execute("SELECT pg_sleep(600)", timeout=0.1)
        await asyncio.wait_for(conn.execute("INSERT INTO t VALUES (3)"), HANG_GUARD)
    assert not conn.is_in_transaction()
    assert await _values(conn, table) == [1, 3]


# -- ownership -------------------------------------------------------------------------


async def test_another_tasks_call_waits_for_the_block_and_runs_outside_it(conn, table):
    inside = asyncio.Event()
    issued = asyncio.Event()
    waiting: asyncio.Future[int] | None = None

    async def holder() -> None:
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES (1)")
            inside.set()
            await issued.wait()
            # The other task's call is queued; the block's own calls still run.
            assert await conn.fetchval("SELECT count(*) FROM t") == 1
            assert waiting is not None and not waiting.done()
            raise Rollback

    async def outsider() -> int:
        issued.set()  # the call below is made before this task next yields
        return await conn.fetchval("SELECT count(*) FROM t")  # type: ignore[no-any-return]

    holding = asyncio.ensure_future(holder())
    await asyncio.wait_for(inside.wait(), HANG_GUARD)
    waiting = asyncio.ensure_future(outsider())
    with pytest.raises(Rollback):
        await asyncio.wait_for(holding, HANG_GUARD)
    # It ran after the block had rolled back: had it run inside, it would have seen 1.
    assert await asyncio.wait_for(waiting, HANG_GUARD) == 0
    assert not conn.is_in_transaction()


async def test_another_tasks_call_does_not_join_a_manual_block(conn, table):
    go = asyncio.Event()
    issued = asyncio.Event()

    async def outsider() -> None:
        await go.wait()
        issued.set()  # the call below is made before this task next yields
        await conn.execute("INSERT INTO t VALUES (2)")

    # Started before the block: its task is not part of it.
    waiting = asyncio.ensure_future(outsider())
    tr = conn.transaction()
    await tr.start()
    await conn.execute("INSERT INTO t VALUES (1)")
    go.set()
    await asyncio.wait_for(issued.wait(), HANG_GUARD)
    assert await _values(conn, table) == [1]
    assert not waiting.done()
    await tr.rollback()
    await asyncio.wait_for(waiting, HANG_GUARD)
    assert await _values(conn, table) == [2]


async def test_tasks_started_inside_a_block_run_in_it(conn, table):
    inside = asyncio.Event()
    outside_result: list[int] = []

    async def outsider() -> None:
        await inside.wait()
        outside_result.append(await conn.fetchval("SELECT count(*) FROM t"))

    # Queued before the block's tasks make their calls, yet served after the block.
    queued = asyncio.ensure_future(outsider())
    with pytest.raises(Rollback):
        async with conn.transaction():
            xid = await conn.fetchval("SELECT pg_current_xact_id()::text")
            inside.set()
            await asyncio.gather(*(conn.execute("INSERT INTO t VALUES ($1)", i) for i in range(20)))
            xids = await asyncio.gather(
                *(conn.fetchval("SELECT pg_current_xact_id()::text") for _ in range(5))
            )
            assert set(xids) == {xid}
            assert await conn.fetchval("SELECT count(*) FROM t") == 20
            assert outside_result == []
            raise Rollback
    await asyncio.wait_for(queued, HANG_GUARD)
    # The block's tasks ran in it (rolled back with it), the outsider after it.
    assert outside_result == [0]
    assert await _values(conn, table) == []


async def test_a_block_started_in_a_task_started_inside_another_is_a_savepoint(conn, table):
    async def inner() -> None:
        with pytest.raises(Rollback):
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
                raise Rollback

    async with conn.transaction():
        await conn.execute("INSERT INTO t VALUES (1)")
        await asyncio.wait_for(asyncio.ensure_future(inner()), HANG_GUARD)
        await conn.execute("INSERT INTO t VALUES (3)")
    assert await _values(conn, table) == [1, 3]


def test_a_block_started_under_wait_for_belongs_to_its_caller(dsn):
    # A plain test (one event loop): the failure it shows costs HANG_GUARD.
    async def main() -> None:
        conn = await pgoxide.connect(dsn)
        try:
            tr = conn.transaction()
            await asyncio.wait_for(tr.start(), HANG_GUARD)
            assert await conn.fetchval("SELECT 1", timeout=HANG_GUARD) == 1
            await asyncio.wait_for(tr.rollback(), HANG_GUARD)
            assert not conn.is_in_transaction()
        finally:
            conn.terminate()

    asyncio.run(main())
