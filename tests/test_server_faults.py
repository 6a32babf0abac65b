"""Server-side faults, per operation kind (tests/support/faultops.py): the backend terminated
(``pg_terminate_backend``) while an operation runs and between operations, ``statement_timeout``
firing during an operation, ``idle_in_transaction_session_timeout`` firing while a
transaction or cursor block is idle, and the server restarting (fast and immediate
shutdown), for single connections, a pool and a logical replication stream.

Nothing here sleeps to synchronise. An operation is frozen mid-flight by a *gate*: on a
connection that opts in (``srvfault.gate = on``), the row-generating query's ``lpad`` (found
first on that connection's search_path) and a row trigger on the written table both reach,
at row 100 of 200, a function that sends a NOTICE and then waits for an advisory lock the
admin session holds. Once the NOTICE has arrived the statement is running and cannot finish
until the admin lets go: the fault then certainly hits it mid-operation (half of a query's
rows already received, half of a COPY's or executemany's rows already inserted).

For every case:
- the call returns or raises within ``HANG_GUARD``: nothing hangs;
- what it raises is a named pgoxide error (the connection lost: ``ConnectionDoesNotExistError``
  with the server's reason as its cause; a cancelled statement: ``QueryCanceledError``),
  never a Python internal error;
- no data is lost or duplicated: an operation cut midway committed none of its rows;
- the connection afterwards is usable (a cancelled statement) or closed (a lost backend),
  never half-used; a pool replaces a lost connection and later calls succeed.

The outcomes are tallied per operation and fault (support/faultreport.py) and printed at the
end of this module's run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

import pgoxide
import pytest
from pgoxide import exceptions
from pgoxide import replication as r
from pgoxide.cluster import Cluster
from support.faultops import OPERATIONS, ROWS, Case, Operation, outcome_of
from support.faultreport import record_outcome

# The listen operation leaves its listener on the connection it is given, a pool's too.
pytestmark = pytest.mark.filterwarnings("ignore:.*active notification listener")

HANG_GUARD = 60  # no case may get anywhere near this: reaching it is a hang
GATE_KEY = 734_001  # the advisory lock the gate waits for
# Every operation but ``listen`` runs a statement the gate can hold (listen's LISTEN, NOTIFY
# and SELECT 1 have no rows to gate).
GATED = [op for op in OPERATIONS if op.name != "listen"]

TERMINATED = "pg_terminate_backend mid-operation"
TERMINATED_IDLE = "pg_terminate_backend between operations"
TERMINATED_POOLED = "pg_terminate_backend of a pooled connection"
STATEMENT_TIMEOUT = "statement_timeout mid-operation"
IDLE_IN_TRANSACTION = "idle_in_transaction_session_timeout, then the operation"

GATE_SQL = f"""
CREATE SCHEMA IF NOT EXISTS srvfault;
CREATE OR REPLACE FUNCTION srvfault.gate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('srvfault.gate', true) = 'on' THEN
        RAISE NOTICE 'srvfault gate';
        PERFORM pg_advisory_lock_shared({GATE_KEY});
        PERFORM pg_advisory_unlock_shared({GATE_KEY});
    END IF;
END $$;
-- Shadows pg_catalog.lpad for connections with srvfault first on their search_path: the
-- operations' row query (faultops._QUERY) pads every row's number with it.
CREATE OR REPLACE FUNCTION srvfault.lpad(s text, n int, fill text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF s = '100' THEN
        PERFORM srvfault.gate();
    END IF;
    RETURN pg_catalog.lpad(s, n, fill);
END $$;
CREATE OR REPLACE FUNCTION srvfault.gate_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srvfault.gate();
    RETURN NEW;
END $$;
"""

# What a gated connection sets at startup (plus the fault's own settings).
GATED_SETTINGS = {"search_path": "srvfault, pg_catalog, public", "srvfault.gate": "on"}

_names = itertools.count()


@pytest.fixture(scope="module")
def _gate_installed(pg_cluster, pg_roles) -> None:
    pg_cluster.psql(GATE_SQL, database=pg_roles.database)


@pytest.fixture
async def admin(dsn, _gate_installed) -> AsyncIterator[pgoxide.Connection]:
    c = await pgoxide.connect(dsn)
    try:
        yield c
    finally:
        await c.close()


async def _table(admin: pgoxide.Connection) -> str:
    """A table for one case, whose row 100 waits at the gate when inserted."""
    name = f"srvfault_{next(_names)}"
    await admin.execute(
        f"CREATE TABLE {name} (id int PRIMARY KEY, v text);"
        f"CREATE TRIGGER gate BEFORE INSERT ON {name} FOR EACH ROW WHEN (NEW.id = 100)"
        " EXECUTE FUNCTION srvfault.gate_row()"
    )
    return name


async def _gated(dsn: str, **settings: str) -> pgoxide.Connection:
    return await pgoxide.connect(dsn, server_settings={**GATED_SETTINGS, **settings})


async def _until_gated(op: Operation, case: Case) -> asyncio.Task[None]:
    """Starts ``op`` and returns once its statement is waiting at the gate (the admin holds
    the gate's lock)."""
    reached = asyncio.Event()
    case.conn.add_log_listener(lambda c, m: reached.set() if m.message == "srvfault gate" else None)
    task = asyncio.ensure_future(op.run(case))
    waiting = asyncio.ensure_future(reached.wait())
    await asyncio.wait_for(
        asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED), HANG_GUARD
    )
    waiting.cancel()
    if task.done():
        task.result()  # it failed before reaching the gate: that error is the finding
        pytest.fail(f"{op.name} finished without reaching the gate")
    return task


async def _error_of(task: asyncio.Future[None]) -> BaseException | None:
    try:
        await asyncio.wait_for(task, HANG_GUARD)
    except Exception as e:
        return e
    return None


async def _rows(admin: pgoxide.Connection, table_name: str) -> int:
    return await admin.fetchval(f"SELECT count(*) FROM {table_name}")  # type: ignore[no-any-return]


async def _usable(conn: pgoxide.Connection) -> bool:
    return await asyncio.wait_for(conn.fetchval("SELECT 41 + 1"), HANG_GUARD) == 42


async def _check_closed(conn: pgoxide.Connection, op: Operation, admin: pgoxide.Connection):
    """A closed connection stays closed: every later call fails with the named error."""
    assert conn.is_closed()
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await asyncio.wait_for(op.run(Case(conn, admin, "unused")), HANG_GUARD)


def _lost(error: BaseException | None, label: str, reason: type[BaseException]) -> None:
    """The call failed because the connection was lost, the server's reason its cause."""
    assert isinstance(error, exceptions.ConnectionDoesNotExistError), f"{label}: {error!r}"
    assert isinstance(error.__cause__, reason), f"{label}: cause {error.__cause__!r}"


# -- pg_terminate_backend ---------------------------------------------------------------------


@pytest.mark.parametrize("op", GATED, ids=lambda op: op.name)
async def test_terminate_mid_operation(admin, dsn, op):
    table_name = await _table(admin)
    conn = await _gated(dsn)
    closed = asyncio.Event()
    conn.add_termination_listener(lambda c: closed.set())
    await admin.execute("SELECT pg_advisory_lock($1)", GATE_KEY)
    try:
        task = await _until_gated(op, Case(conn, admin, table_name))
        # With a timeout, pg_terminate_backend returns once the backend has exited: it can no
        # longer commit anything.
        assert await admin.fetchval(
            "SELECT pg_terminate_backend($1, $2)", conn.get_server_pid(), HANG_GUARD * 1000
        )
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", GATE_KEY)
    error = await _error_of(task)
    outcome = outcome_of(error)
    record_outcome(op.name, TERMINATED, f"{outcome} → {'closed' if conn.is_closed() else 'open'}")
    _lost(error, f"{op.name}, {TERMINATED}", exceptions.AdminShutdownError)
    await asyncio.wait_for(closed.wait(), HANG_GUARD)
    await _check_closed(conn, op, admin)
    # Half of the rows were inserted when the backend went: none of them were committed.
    assert await _rows(admin, table_name) == 0
    await admin.execute(f"DROP TABLE {table_name}")


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
async def test_terminate_between_operations(admin, dsn, op):
    table_name = await _table(admin)
    conn = await pgoxide.connect(dsn)
    case = Case(conn, admin, table_name)
    await op.run(case)
    closed = asyncio.Event()
    conn.add_termination_listener(lambda c: closed.set())
    assert await admin.fetchval(
        "SELECT pg_terminate_backend($1, $2)", conn.get_server_pid(), HANG_GUARD * 1000
    )
    # The idle connection reads the server's FATAL and end-of-file, and closes.
    await asyncio.wait_for(closed.wait(), HANG_GUARD)
    if op.writes is not None:
        await admin.execute(f"TRUNCATE {table_name}")
    error = await _error_of(asyncio.ensure_future(op.run(case)))
    record_outcome(op.name, TERMINATED_IDLE, outcome_of(error) + " → closed")
    assert isinstance(error, exceptions.ConnectionDoesNotExistError), repr(error)
    assert conn.is_closed()
    if op.writes is not None:
        assert await _rows(admin, table_name) == 0
    await admin.execute(f"DROP TABLE {table_name}")


async def _until(pool: pgoxide.Pool, condition, what: str) -> None:
    """Waits for the pool's state changes until ``condition()`` holds."""

    async def wait() -> None:
        while not condition():
            await pool._next_change()

    try:
        await asyncio.wait_for(wait(), HANG_GUARD)
    except asyncio.TimeoutError:
        pytest.fail(f"never happened: {what}")


def _pids(pool: pgoxide.Pool) -> set[int]:
    return {slot.conn.get_server_pid() for slot in pool._slots}


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
async def test_pool_replaces_a_terminated_connection(admin, dsn, op):
    """Both connections of a pool terminated, one idle and one in use mid-operation: the
    pool's caller gets the named error, the pool opens new connections, later calls work."""
    table_name = await _table(admin)
    async with pgoxide.create_pool(
        dsn, min_size=2, max_size=2, server_settings=GATED_SETTINGS
    ) as pool:
        old = _pids(pool)
        outcome = "not gated"
        if op in GATED:
            await admin.execute("SELECT pg_advisory_lock($1)", GATE_KEY)
            try:
                async with pool.acquire(timeout=HANG_GUARD) as conn:
                    task = await _until_gated(op, Case(conn, admin, table_name))
                    assert await admin.fetchval(
                        "SELECT bool_and(pg_terminate_backend(pid, $2)) FROM unnest($1::int[]) pid",
                        list(old),
                        HANG_GUARD * 1000,
                    )
                    error = await _error_of(task)
                    outcome = outcome_of(error)
                    _lost(error, f"pooled {op.name}", exceptions.AdminShutdownError)
            finally:
                await admin.execute("SELECT pg_advisory_unlock($1)", GATE_KEY)
            assert await _rows(admin, table_name) == 0
        else:
            assert await admin.fetchval(
                "SELECT bool_and(pg_terminate_backend(pid, $2)) FROM unnest($1::int[]) pid",
                list(old),
                HANG_GUARD * 1000,
            )
        await _until(
            pool,
            lambda: pool.get_size() == 2 and not old & _pids(pool),
            "both connections replaced",
        )
        assert pool.stats().connections_lost == 2
        # Later calls succeed, the operation itself included.
        async with pool.acquire(timeout=HANG_GUARD) as conn:
            if op.writes is not None:
                await admin.execute(f"TRUNCATE {table_name}")
            await asyncio.wait_for(op.run(Case(conn, admin, table_name)), HANG_GUARD)
        if op.writes is not None:
            assert await _rows(admin, table_name) == op.writes
        assert await pool.fetchval("SELECT 1") == 1
    record_outcome(op.name, TERMINATED_POOLED, f"{outcome}, pool replaced both → later calls ok")
    await admin.execute(f"DROP TABLE {table_name}")


# -- statement_timeout ----------------------------------------------------------------------


@pytest.mark.parametrize("op", GATED, ids=lambda op: op.name)
async def test_statement_timeout_mid_operation(admin, dsn, op):
    """The gate holds the statement past its statement_timeout: the server cancels it."""
    table_name = await _table(admin)
    conn = await _gated(dsn, statement_timeout="100ms")
    await admin.execute("SELECT pg_advisory_lock($1)", GATE_KEY)
    try:
        # The admin holds the gate until the operation has ended: no timing to guess.
        error = await _error_of(asyncio.ensure_future(op.run(Case(conn, admin, table_name))))
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", GATE_KEY)
    outcome = outcome_of(error)
    usable = not conn.is_closed() and await _usable(conn)
    record_outcome(op.name, STATEMENT_TIMEOUT, f"{outcome} → {'usable' if usable else 'closed'}")
    assert isinstance(error, exceptions.QueryCanceledError), f"{op.name}: {error!r}"
    assert "statement timeout" in str(error)
    # The connection is usable, outside any transaction, and nothing was committed.
    assert usable
    assert not conn.is_in_transaction()
    assert await _rows(admin, table_name) == 0
    # And the operation works on it once the gate is open.
    if op.writes is not None:
        await asyncio.wait_for(op.run(Case(conn, admin, table_name)), HANG_GUARD)
        assert await _rows(admin, table_name) == op.writes
    await conn.close()
    await admin.execute(f"DROP TABLE {table_name}")


# -- idle_in_transaction_session_timeout ----------------------------------------------------


async def _idle_in_transaction(dsn: str) -> tuple[pgoxide.Connection, asyncio.Event]:
    conn = await pgoxide.connect(
        dsn, server_settings={"idle_in_transaction_session_timeout": "50ms"}
    )
    closed = asyncio.Event()
    conn.add_termination_listener(lambda c: closed.set())
    return conn, closed


_ENDED = (exceptions.ConnectionDoesNotExistError, exceptions.IdleInTransactionSessionTimeoutError)


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
async def test_idle_in_transaction_timeout_then_operation(admin, dsn, op):
    """A transaction left idle is ended by the server; the next operation fails named, the
    transaction's insert is not committed, the connection is closed."""
    table_name = await _table(admin)
    conn, closed = await _idle_in_transaction(dsn)
    tr = conn.transaction()
    await tr.start()
    await conn.execute(f"INSERT INTO {table_name} VALUES (-1, 'uncommitted')")
    # Awaits the server's doing, not a clock: the timeout fires and the connection closes.
    await asyncio.wait_for(closed.wait(), HANG_GUARD)
    error = await _error_of(asyncio.ensure_future(op.run(Case(conn, admin, table_name))))
    record_outcome(op.name, IDLE_IN_TRANSACTION, outcome_of(error) + " → closed")
    assert isinstance(error, _ENDED), f"{op.name}: {error!r}"
    assert conn.is_closed()
    # Ending the transaction now fails named too, and leaves nothing behind.
    with pytest.raises(_ENDED):
        await tr.rollback()
    assert await _rows(admin, table_name) == 0
    await admin.execute(f"DROP TABLE {table_name}")


async def test_idle_in_transaction_timeout_in_a_transaction_block(admin, dsn):
    table_name = await _table(admin)
    conn, closed = await _idle_in_transaction(dsn)
    with pytest.raises(_ENDED) as info:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {table_name} VALUES (1, 'a')")
            await asyncio.wait_for(closed.wait(), HANG_GUARD)
            await conn.execute(f"INSERT INTO {table_name} VALUES (2, 'b')")
    # The cause is the server's reason.
    if isinstance(info.value, exceptions.ConnectionDoesNotExistError):
        assert isinstance(info.value.__cause__, exceptions.IdleInTransactionSessionTimeoutError), (
            repr(info.value.__cause__)
        )
    assert conn.is_closed()
    assert await _rows(admin, table_name) == 0
    await admin.execute(f"DROP TABLE {table_name}")


async def test_idle_in_transaction_timeout_in_a_cursor_block(admin, dsn):
    conn, closed = await _idle_in_transaction(dsn)
    with pytest.raises(_ENDED):
        async with conn.transaction():
            cur = await conn.cursor("SELECT g FROM generate_series(1, $1) g", ROWS)
            assert [row[0] for row in await cur.fetch(30)] == list(range(1, 31))
            await asyncio.wait_for(closed.wait(), HANG_GUARD)
            await cur.fetch(30)
    assert conn.is_closed()


async def test_pool_replaces_a_connection_left_idle_in_transaction(admin, dsn):
    table_name = await _table(admin)
    async with pgoxide.create_pool(
        dsn,
        min_size=1,
        max_size=1,
        server_settings={"idle_in_transaction_session_timeout": "50ms"},
    ) as pool:
        old = _pids(pool)
        with pytest.raises(_ENDED):
            async with pool.acquire(timeout=HANG_GUARD) as conn:
                closed = asyncio.Event()
                conn.add_termination_listener(lambda c: closed.set())
                async with conn.transaction():
                    await conn.execute(f"INSERT INTO {table_name} VALUES (1, 'a')")
                    await asyncio.wait_for(closed.wait(), HANG_GUARD)
                    await conn.execute(f"INSERT INTO {table_name} VALUES (2, 'b')")
        await _until(pool, lambda: pool.get_size() == 1 and not old & _pids(pool), "replaced")
        assert await pool.fetchval("SELECT 1") == 1
    assert await _rows(admin, table_name) == 0
    await admin.execute(f"DROP TABLE {table_name}")


# -- server restart -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def restart_cluster() -> Iterator[Cluster]:
    """A cluster of this module's own, which its tests stop and start."""
    settings = {"wal_level": "logical", "max_wal_senders": "10", "max_replication_slots": "10"}
    with Cluster(settings=settings) as cluster:
        cluster.psql(GATE_SQL)
        yield cluster


_SHUTDOWN_CAUSE = {
    # A fast shutdown terminates each backend as pg_terminate_backend does.
    "fast": exceptions.AdminShutdownError,
    # An immediate one sends each backend SIGQUIT: its last word, if it gets one out before
    # the postmaster kills it, is "terminating connection due to immediate shutdown command"
    # (an AdminShutdownError too); else the socket just ends.
    "immediate": (
        exceptions.AdminShutdownError,
        exceptions.CrashShutdownError,
        exceptions.ConnectionDoesNotExistError,
        ConnectionResetError,
    ),
}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_server_restart(restart_cluster, mode):
    """One restart hits every operation kind at once: each mid-operation at the gate on its
    own connection, each idle on another, and a pool. Afterwards nothing of the cut
    operations was committed, every old connection is closed for good, and the pool
    serves every operation kind again."""
    cluster = restart_cluster
    dsn = cluster.dsn()
    admin = await pgoxide.connect(dsn)
    names = {op.name: await _table(admin) for op in OPERATIONS}
    pool = await pgoxide.create_pool(dsn, min_size=2, max_size=2)
    idle: dict[str, pgoxide.Connection] = {}
    for op in OPERATIONS:
        idle[op.name] = await pgoxide.connect(dsn)
        await op.run(Case(idle[op.name], admin, names[op.name]))
        if op.writes is not None:
            await admin.execute(f"TRUNCATE {names[op.name]}")
    busy: dict[str, tuple[pgoxide.Connection, asyncio.Task[None]]] = {}
    await admin.execute("SELECT pg_advisory_lock($1)", GATE_KEY)
    for op in GATED:
        conn = await _gated(dsn)
        busy[op.name] = conn, await _until_gated(op, Case(conn, admin, names[op.name]))

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, cluster.stop, mode)
    try:
        label = f"server restart ({mode}) mid-operation"
        for op in GATED:
            conn, task = busy[op.name]
            error = await _error_of(task)
            state = "closed" if conn.is_closed() else "open"
            record_outcome(op.name, label, f"{outcome_of(error)} → {state}")
            assert isinstance(error, exceptions.ConnectionDoesNotExistError), (
                f"{op.name}: {error!r}"
            )
            assert isinstance(error.__cause__, _SHUTDOWN_CAUSE[mode]), repr(error.__cause__)
            assert conn.is_closed()
    finally:
        await loop.run_in_executor(None, cluster.start)

    label = f"server restart ({mode}) between operations"
    for op in OPERATIONS:
        conn = idle[op.name]
        error = await _error_of(asyncio.ensure_future(op.run(Case(conn, admin, names[op.name]))))
        record_outcome(op.name, label, outcome_of(error) + " → closed")
        assert isinstance(error, exceptions.ConnectionDoesNotExistError), f"{op.name}: {error!r}"
        assert conn.is_closed()
    assert admin.is_closed()
    admin = await pgoxide.connect(dsn)
    for op in GATED:
        if op.writes is not None:
            assert await _rows(admin, names[op.name]) == 0, op.name
    # The pool lost both connections with the server and serves every operation again.
    for op in OPERATIONS:
        async with pool.acquire(timeout=HANG_GUARD) as conn:
            await asyncio.wait_for(op.run(Case(conn, admin, names[op.name])), HANG_GUARD)
        if op.writes is not None:
            assert await _rows(admin, names[op.name]) == op.writes, op.name
        record_outcome(op.name, f"server restart ({mode}), then a pool's call", "ok")
    assert pool.stats().connections_lost >= 2
    await pool.close()
    for name in names.values():
        await admin.execute(f"DROP TABLE {name}")
    await admin.close()


# -- replication ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["terminate", "immediate restart"])
async def test_replication_stream_cut(restart_cluster, fault):
    """The walsender goes mid-stream: iterating raises the named error; a new replication
    connection from the acknowledged position delivers every unacknowledged change again."""
    cluster = restart_cluster
    n = next(_names)
    tbl, pub, slot = f"srvfault_rt_{n}", f"srvfault_rp_{n}", f"srvfault_rs_{n}"
    conn = await pgoxide.connect(cluster.dsn())
    await conn.execute(
        f"CREATE TABLE {tbl} (id int PRIMARY KEY); CREATE PUBLICATION {pub} FOR TABLE {tbl}"
    )
    rconn = await r.connect_replication(cluster.dsn())
    created = await rconn.create_replication_slot(slot, snapshot="nothing")
    options = {"proto_version": 1, "publication_names": pub}
    stream = await rconn.start_replication(slot, created.consistent_point, options)
    for i in (1, 2, 3):
        await conn.execute(f"INSERT INTO {tbl} VALUES ({i})")

    async def next_message():
        while True:
            item = await asyncio.wait_for(stream.__anext__(), HANG_GUARD)
            if not isinstance(item, r.Keepalive):
                return item.message

    got: list[int] = []
    ends = []
    while len(ends) < 3:
        message = await next_message()
        if isinstance(message, r.Insert):
            got.append(message.new["id"])
        elif isinstance(message, r.Commit):
            ends.append(message.end_lsn)
    # The first two are handled; the server has the status once it answered the reply request.
    stream.send_standby_status(ends[1], reply=True)
    while not isinstance(await asyncio.wait_for(stream.__anext__(), HANG_GUARD), r.Keepalive):
        pass
    if fault == "terminate":
        assert await conn.fetchval(
            "SELECT pg_terminate_backend($1, $2)", rconn.get_server_pid(), HANG_GUARD * 1000
        )
        cause: tuple[type[BaseException], ...] = (exceptions.AdminShutdownError,)
        label = "walsender: pg_terminate_backend"
    else:
        # Not a fast shutdown: that waits for the walsender's client to confirm everything
        # sent as flushed, which this one (transaction 3 unacknowledged) rightly never does.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, cluster.stop, "immediate")
        await loop.run_in_executor(None, cluster.start)
        cause = _SHUTDOWN_CAUSE["immediate"]
        label = "walsender: server restart (immediate)"
    error = None
    try:
        while True:
            await asyncio.wait_for(stream.__anext__(), HANG_GUARD)
    except StopAsyncIteration:
        pass
    except Exception as e:
        error = e
    record_outcome(
        "replication", label, f"{outcome_of(error)} → {'closed' if rconn.is_closed() else 'open'}"
    )
    _lost(error, f"replication, {label}", cause)
    assert rconn.is_closed()
    if conn.is_closed():
        conn = await pgoxide.connect(cluster.dsn())
    await conn.execute(f"INSERT INTO {tbl} VALUES (4)")
    rconn = await r.connect_replication(cluster.dsn())
    stream = await rconn.start_replication(slot, 0, options)
    again: list[int] = []
    while 4 not in again:
        message = await next_message()
        if isinstance(message, r.Insert):
            again.append(message.new["id"])
    if fault == "terminate":
        # Nothing acknowledged is sent again, nothing unacknowledged is lost.
        assert again == [3, 4]
    else:
        # After a crash the slot resumes from its last saved position, at or before the
        # acknowledged one: acknowledged changes may come again, unacknowledged ones do.
        assert again in ([1, 2, 3, 4], [2, 3, 4], [3, 4]), again
    await stream.stop()
    await rconn.drop_replication_slot(slot)
    await rconn.close()
    await conn.execute(f"DROP PUBLICATION {pub}; DROP TABLE {tbl}")
    await conn.close()
