"""Tracing hooks against a real server: each pair holds on success, server error,
cancellation, timeout and a connection dying mid-call; contexts flow from start to end; a
raising hook changes nothing; parameters only when asked; asyncpg's query loggers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pgoxide
import pytest
from pgoxide import exceptions, tracing

HANG_GUARD = 60


class Recorder(pgoxide.Tracer):
    """Records every start and end, each start's context being its index."""

    def __init__(self, capture: bool = False) -> None:
        self.capture_parameters = capture
        self.calls: list[tuple[str, Any, Any]] = []

    def _start(self, what: str, event: Any) -> int:
        self.calls.append((f"{what}_start", event, None))
        return len(self.calls) - 1

    def _end(self, what: str, context: int, end: tracing.End) -> None:
        self.calls.append((f"{what}_end", context, end))

    def on_connect_start(self, event: Any) -> Any:
        return self._start("connect", event)

    def on_connect_end(self, context: Any, end: tracing.End) -> None:
        self._end("connect", context, end)

    def on_query_start(self, event: Any) -> Any:
        return self._start("query", event)

    def on_query_end(self, context: Any, end: tracing.End) -> None:
        self._end("query", context, end)

    def on_prepare_start(self, event: Any) -> Any:
        return self._start("prepare", event)

    def on_prepare_end(self, context: Any, end: tracing.End) -> None:
        self._end("prepare", context, end)

    def on_copy_start(self, event: Any) -> Any:
        return self._start("copy", event)

    def on_copy_end(self, context: Any, end: tracing.End) -> None:
        self._end("copy", context, end)

    def on_pool_acquire_start(self, event: Any) -> Any:
        return self._start("pool_acquire", event)

    def on_pool_acquire_end(self, context: Any, end: tracing.End) -> None:
        self._end("pool_acquire", context, end)

    def on_pool_release_start(self, event: Any) -> Any:
        return self._start("pool_release", event)

    def on_pool_release_end(self, context: Any, end: tracing.End) -> None:
        self._end("pool_release", context, end)

    def ends(self, what: str) -> list[tuple[Any, tracing.End]]:
        return [(ctx, end) for name, ctx, end in self.calls if name == f"{what}_end"]

    def paired(self) -> bool:
        """Every start has exactly one end, which got the start's context."""
        starts = {i for i, (name, _, _) in enumerate(self.calls) if name.endswith("_start")}
        ended = [ctx for name, ctx, _ in self.calls if name.endswith("_end")]
        return sorted(ended) == sorted(starts)


async def test_connect_and_query_hooks(dsn: str) -> None:
    rec = Recorder()
    conn = await pgoxide.connect(dsn, tracer=rec)
    try:
        assert await conn.fetchval("SELECT $1::int + 1", 1) == 2
        assert await conn.execute("SELECT 1") == "SELECT 1"
        assert len(await conn.fetch("SELECT generate_series(1, 3)")) == 3
        await conn.executemany("SELECT $1::int", [(1,), (2,)])
        stmt = await conn.prepare("SELECT 7")
        assert await stmt.fetchval() == 7
    finally:
        await conn.close()
    assert rec.paired()
    ((_, connected),) = rec.ends("connect")
    assert connected.error is None and "host" in connected.details
    assert connected.details["auth_method"] is None or isinstance(
        connected.details["auth_method"], str
    )
    kinds = [event.kind for name, event, _ in rec.calls if name == "query_start"]
    assert kinds == ["fetchval", "execute", "fetch", "executemany", "fetchval"]
    ends = [end for _, end in rec.ends("query")]
    assert [e.rows for e in ends] == [1, None, 3, None, 1]
    # The prepared statement's execution is a query of its own (asyncpg's instrumentation
    # has none for them).
    assert [e.query for n, e, _ in rec.calls if n == "query_start"][-1] == "SELECT 7"
    # fetchval reads one row (the portal is suspended, so no tag comes).
    assert [e.status for e in ends][:3] == [None, "SELECT 1", "SELECT 3"]
    assert all(e.error is None and e.elapsed >= 0 for e in ends)
    # Parameters are left out unless asked for.
    assert all(event.args is None for name, event, _ in rec.calls if name == "query_start")
    assert len(rec.ends("prepare")) == 1


async def test_parameters_when_asked(dsn: str) -> None:
    rec = Recorder(capture=True)
    async with await pgoxide.connect(dsn, tracer=rec) as conn:
        await conn.fetchval("SELECT $1::text", "secret-ish")
    (event,) = [e for name, e, _ in rec.calls if name == "query_start"]
    assert event.args == ("secret-ish",)


async def test_pairing_on_error_cancellation_timeout_and_death(
    dsn: str, other: pgoxide.Connection
) -> None:
    rec = Recorder()
    conn = await pgoxide.connect(dsn, tracer=rec)
    with pytest.raises(exceptions.DivisionByZeroError):
        await conn.fetchval("SELECT 1 / 0")
    task = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(60)"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(asyncio.TimeoutError):
        await conn.fetchval("SELECT pg_sleep(60)", timeout=0.1)
    dying = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(60)"))
    running = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_s%'"
    for _ in range(10_000):  # until the server runs it
        if await other.fetchval(running, conn.get_server_pid()):
            break
    await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    with pytest.raises((exceptions.AdminShutdownError, exceptions.ConnectionDoesNotExistError)):
        await asyncio.wait_for(dying, HANG_GUARD)
    assert rec.paired()
    errors = [end.error for _, end in rec.ends("query")]
    assert isinstance(errors[0], exceptions.DivisionByZeroError)
    assert rec.ends("query")[0][1].sqlstate == "22012"
    assert isinstance(errors[1], asyncio.CancelledError)
    assert isinstance(errors[2], asyncio.TimeoutError)
    assert errors[3] is not None


async def test_a_raising_hook_changes_nothing(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(pgoxide.Tracer):
        def on_query_start(self, event: Any) -> Any:
            raise RuntimeError("start hook bug")

        def on_query_end(self, context: Any, end: Any) -> None:
            raise RuntimeError("end hook bug")

    with caplog.at_level(logging.ERROR, logger="pgoxide.tracing"):
        async with await pgoxide.connect(dsn, tracer=Broken()) as conn:
            for _ in range(3):
                assert await conn.fetchval("SELECT 1") == 1
    assert len([r for r in caplog.records if "raised" in r.message]) == 1


async def test_copy_and_pool_hooks(dsn: str) -> None:
    rec = Recorder()
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1, tracer=rec) as pool:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE traced (i int)")
            assert await conn.copy_records_to_table("traced", records=[(1,), (2,)]) == "COPY 2"
            out: list[bytes] = []

            async def sink(chunk: bytes) -> None:
                out.append(chunk)

            await conn.copy_from_query("SELECT 1", output=sink)
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    assert rec.paired()
    copies = [end for _, end in rec.ends("copy")]
    assert [c.rows for c in copies] == [2, 1]
    directions = [e.direction for name, e, _ in rec.calls if name == "copy_start"]
    assert directions == ["in", "out"]
    acquires = [end for _, end in rec.ends("pool_acquire")]
    assert len(acquires) == 2 and all(a.error is None for a in acquires)
    releases = [end.details for _, end in rec.ends("pool_release")]
    # The temporary table needed a reset; the plain query none.
    assert releases == [
        {"reset": True, "closed": False, "handed_to_waiter": False},
        {"reset": False, "closed": False, "handed_to_waiter": False},
    ]
    assert len(rec.ends("connect")) == 1


async def test_no_tracer_no_hooks(conn: pgoxide.Connection) -> None:
    assert conn._tracer is None


async def test_asyncpg_query_loggers(dsn: str) -> None:
    rec = Recorder()
    async with await pgoxide.connect(dsn, tracer=rec) as conn:
        logged: list[pgoxide.LoggedQuery] = []
        with conn.query_logger(logged.append):
            await conn.fetchval("SELECT $1::int", 5, timeout=10)
            with pytest.raises(exceptions.DivisionByZeroError):
                await conn.execute("SELECT 1 / 0")
        await conn.fetchval("SELECT 2")  # after the block: not logged
        await conn.fetchval("SELECT 3")  # let the loggers' calls run
        assert [q.query for q in logged] == ["SELECT $1::int", "SELECT 1 / 0"]
        assert logged[0].args == (5,) and logged[0].timeout == 10
        assert logged[0].exception is None
        assert isinstance(logged[1].exception, exceptions.DivisionByZeroError)
        assert logged[0].elapsed >= 0 and logged[0].conn_addr is not None
        # The connection's own tracer went on seeing every query, without the parameters.
        assert len(rec.ends("query")) == 4
        assert all(e.args is None for n, e, _ in rec.calls if n == "query_start")
        assert conn._tracer is rec


async def test_one_fetch_hook_per_window_never_per_row(dsn: str) -> None:
    class Windows(Recorder):
        def on_fetch_start(self, event: Any) -> Any:
            return self._start("fetch", event)

        def on_fetch_end(self, context: Any, end: tracing.End) -> None:
            self._end("fetch", context, end)

    rec = Windows()
    async with await pgoxide.connect(dsn, tracer=rec) as conn:
        n = 0
        async for _ in conn.stream("SELECT generate_series(1, 2500)", window=1000):
            n += 1
        assert n == 2500
        async with conn.transaction():
            cursor = await conn.cursor("SELECT generate_series(1, 10)")
            assert len(await cursor.fetch(4)) == 4
    assert rec.paired()
    rows = [end.rows for _, end in rec.ends("fetch")]
    assert rows == [1000, 1000, 500, 4] or rows == [1000, 1000, 500, 0, 4]


async def test_pipeline_hooks(dsn: str) -> None:
    class Pipelines(Recorder):
        def on_pipeline_start(self, event: Any) -> Any:
            return self._start("pipeline", event)

        def on_pipeline_end(self, context: Any, end: tracing.End) -> None:
            self._end("pipeline", context, end)

    rec = Pipelines()
    async with await pgoxide.connect(dsn, tracer=rec) as conn:
        async with conn.pipeline() as p:
            p.fetchval("SELECT 1")
            p.fetchval("SELECT 2")
        with pytest.raises(exceptions.DivisionByZeroError):
            async with conn.pipeline(atomic=True) as p:
                p.fetchval("SELECT 1 / 0")
    assert rec.paired()
    (_, ok), (_, failed) = rec.ends("pipeline")
    assert ok.error is None and ok.details == {"operations": 2}
    assert isinstance(failed.error, exceptions.DivisionByZeroError)
    assert [e.atomic for n, e, _ in rec.calls if n == "pipeline_start"] == [False, True]


async def test_advisory_hooks(dsn: str) -> None:
    class Advised(pgoxide.Tracer):
        def __init__(self) -> None:
            self.seen: list[tuple[str, Any]] = []

        def on_notice(self, message: Any) -> None:
            self.seen.append(("notice", message.message))

        def on_leaked_advisory_locks(self, count: int) -> None:
            self.seen.append(("leaked", count))

        def on_cleanup_failed(self, what: str, error: BaseException) -> None:
            self.seen.append(("cleanup", what))

    advised = Advised()
    pool = pgoxide.create_pool(
        dsn, min_size=1, max_size=1, tracer=advised, reset_timeout=0.2,
        on_leaked_advisory_locks=lambda n: None,
    )  # fmt: skip
    async with pool:
        async with pool.acquire() as conn:
            await conn.execute("DO $$ BEGIN RAISE NOTICE 'hello'; END $$")
            await conn.advisory_lock(3).acquire()
        # A reset that cannot finish in time: the pool closes the connection instead.
        conn = await pool.acquire()
        await conn.execute("SET work_mem = '5MB'")
        await conn.fetchval("SELECT pg_sleep($1)", 0)  # prepared: the next call is one request
        waiting = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep($1)", 60))
        await asyncio.sleep(0)  # sent
        with pytest.warns(RuntimeWarning, match="could not reset"):
            await pool.release(conn)
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await waiting
        async with pool.acquire() as fresh:
            assert await fresh.fetchval("SELECT 1") == 1
    assert ("notice", "hello") in advised.seen
    assert ("leaked", 1) in advised.seen
    assert ("cleanup", "reset") in advised.seen


async def test_pairing_holds_for_copy_fetch_and_acquire_failures(dsn: str) -> None:
    class All(Recorder):
        def on_fetch_start(self, event: Any) -> Any:
            return self._start("fetch", event)

        def on_fetch_end(self, context: Any, end: tracing.End) -> None:
            self._end("fetch", context, end)

    rec = All()
    pool = pgoxide.create_pool(dsn, min_size=1, max_size=1, tracer=rec)
    async with pool, pool.acquire() as conn:
        await conn.execute("CREATE TEMP TABLE pairs (i int PRIMARY KEY)")
        with pytest.raises(exceptions.UniqueViolationError):
            await conn.copy_records_to_table("pairs", records=[(1,), (1,)])

        async def stalled() -> Any:
            yield (2,)
            await asyncio.Event().wait()

        with pytest.raises(asyncio.TimeoutError):
            await conn.copy_records_to_table("pairs", records=stalled(), timeout=0.2)
        with pytest.raises(asyncio.TimeoutError):
            async for _ in conn.stream("SELECT pg_sleep(60)", timeout=0.2):
                pass  # pragma: no cover
        # Another acquire while the only connection is held: it times out.
        with pytest.raises(asyncio.TimeoutError):
            await pool.acquire(timeout=0.05)
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert rec.paired()
    copy_errors = [type(end.error) for _, end in rec.ends("copy")]
    assert copy_errors == [exceptions.UniqueViolationError, asyncio.TimeoutError]
    assert rec.ends("copy")[0][1].sqlstate == "23505"
    assert any(isinstance(end.error, asyncio.TimeoutError) for _, end in rec.ends("fetch"))
    acquire_errors = [type(end.error) for _, end in rec.ends("pool_acquire") if end.error]
    assert acquire_errors == [asyncio.TimeoutError, asyncio.CancelledError]


async def test_copy_streams_are_copy_events(dsn: str) -> None:
    rec = Recorder()
    conn = await pgoxide.connect(dsn, tracer=rec)
    try:
        query = "SELECT i FROM generate_series(1, 5000) i"
        assert len([r async for r in conn.copy_records_from_query(query)]) == 5000
        async for _ in conn.copy_records_from_table("pg_class"):
            break
        chunks = [c async for c in conn.copy_out("COPY (SELECT 1) TO STDOUT")]
        assert b"".join(chunks) == b"1\n"
        with pytest.raises(exceptions.DivisionByZeroError):
            async for _ in conn.copy_records_from_query("SELECT 1 / 0"):
                pass  # pragma: no cover
        assert await conn.fetchval("SELECT 2") == 2
    finally:
        await conn.close()
    assert rec.paired()
    starts = [e for name, e, _ in rec.calls if name == "copy_start"]
    assert [s.direction for s in starts] == ["out"] * 4
    assert starts[0].sql.startswith("COPY (SELECT i FROM generate_series")
    whole, left, raw, failed = (end for _, end in rec.ends("copy"))
    assert (whole.rows, whole.status, whole.error) == (5000, "COPY 5000", None)
    assert left.details == {"abandoned": True} and left.error is None
    assert (raw.rows, raw.status) == (1, "COPY 1")
    assert isinstance(failed.error, exceptions.DivisionByZeroError)
    assert failed.sqlstate == "22012"


async def _terminate_while_reading(
    rows: Any, conn: pgoxide.Connection, other: pgoxide.Connection
) -> None:
    """Reads ``rows`` to the end, terminating ``conn``'s backend at the first row (the
    operation is then running on the server)."""
    terminated = False
    async for _ in rows:
        if not terminated:
            terminated = True
            await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())


async def test_pairing_when_the_connection_dies_mid_copy_and_mid_stream(
    dsn: str, other: pgoxide.Connection
) -> None:
    class All(Recorder):
        def on_fetch_start(self, event: Any) -> Any:
            return self._start("fetch", event)

        def on_fetch_end(self, context: Any, end: tracing.End) -> None:
            self._end("fetch", context, end)

    rec = All()
    lost = (exceptions.AdminShutdownError, exceptions.ConnectionDoesNotExistError)
    for kind in ("copy", "stream"):
        conn = await pgoxide.connect(dsn, tracer=rec)
        if kind == "copy":
            rows = conn.copy_records_from_query("SELECT i FROM generate_series(1, 10000000) i")
        else:
            rows = conn.stream("SELECT i FROM generate_series(1, 10000000) i")
        with pytest.raises(lost):
            await asyncio.wait_for(_terminate_while_reading(rows, conn, other), HANG_GUARD)
        await asyncio.wait_for(conn._protocol.wait_closed(), HANG_GUARD)
    assert rec.paired()
    assert isinstance(rec.ends("copy")[-1][1].error, lost)
    # The stream's loss ends the window in flight, unless it was seen between windows.
    assert all(e.error is None or isinstance(e.error, lost) for _, e in rec.ends("fetch"))


async def test_logging_lifecycle_at_debug_advisories_at_warning(
    pg_cluster: Any, pg_roles: Any, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = pg_roles[pg_roles.password]
    with caplog.at_level(logging.DEBUG, logger="pgoxide"):
        with pytest.warns(pgoxide.InsecureAuthWarning):
            conn = await pgoxide.connect(
                host=["127.0.0.1", "127.0.0.1"],
                port=[1, pg_cluster.port],  # the first refuses: a failed attempt, then success
                user=pg_roles.password,
                password=password,
                database=pg_roles.database,
                sslmode="disable",
            )
        pid = conn.get_server_pid()
        await conn.fetchval("SELECT $1::text", "a parameter")
        await conn.close()
        async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
            pooled = await pool.acquire()
            await pooled.advisory_lock(42).acquire()
            with pytest.warns(ResourceWarning):
                await pool.release(pooled)
    by_logger: dict[str, list[tuple[int, str]]] = {}
    for r in caplog.records:
        by_logger.setdefault(r.name, []).append((r.levelno, r.getMessage()))
    lifecycle = by_logger["pgoxide.connection"]
    assert any(level == logging.DEBUG and "port 1 failed" in m for level, m in lifecycle)
    assert (logging.DEBUG, f"connected to 127.0.0.1:{pg_cluster.port}") in [
        (level, m.partition(" as ")[0]) for level, m in lifecycle
    ]
    assert any(level == logging.WARNING and "cleartext" in m for level, m in lifecycle)
    assert any(level == logging.DEBUG and f"(backend {pid}) closed" in m for level, m in lifecycle)
    pool_records = by_logger["pgoxide.pool"]
    assert any(level == logging.DEBUG and "opened a connection" in m for level, m in pool_records)
    assert any(level == logging.WARNING and "advisory lock" in m for level, m in pool_records)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert password not in everything and "a parameter" not in everything
