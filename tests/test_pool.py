"""The connection pool against a real server: asyncpg's API, the floor, FIFO waiters, health
checks, cancel-safe acquire and release, resets only where needed, recycling and closing."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pgoxide
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from pgoxide import exceptions
from pgoxide.cluster import Cluster
from pgoxide.pool import Pool, PoolConnectionProxy, reset_sql

HANG_GUARD = 60


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[Pool]:
    async with pgoxide.create_pool(dsn, min_size=2, max_size=4) as p:
        yield p


async def _backend_pids(pool: Pool) -> set[int]:
    return _pids_now(pool)


def _pids_now(pool: Pool) -> set[int]:
    return {slot.conn.get_server_pid() for slot in pool._slots}


async def until(pool: Pool, condition: Callable[[], bool], what: str) -> None:
    """Waits for the pool's state changes until ``condition()`` holds."""

    async def wait() -> None:
        while not condition():
            await pool._next_change()

    try:
        await asyncio.wait_for(wait(), HANG_GUARD)
    except asyncio.TimeoutError:
        pytest.fail(f"never happened: {what}")


async def running_on(other: pgoxide.Connection, pid: int, query: str) -> None:
    """Polls the server until backend ``pid`` runs ``query``."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query = $2"
    for _ in range(10_000):
        if await other.fetchval(sql, pid, query):
            return
    pytest.fail(f"backend {pid} never ran {query!r}")


# -- asyncpg's API ---------------------------------------------------------------------------


async def test_create_acquire_release_and_sizes(dsn: str) -> None:
    pool = await pgoxide.create_pool(dsn, min_size=2, max_size=3)
    try:
        assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
        assert (pool.get_min_size(), pool.get_max_size()) == (2, 3)
        async with pool.acquire() as conn:
            assert isinstance(conn, PoolConnectionProxy)
            assert await conn.fetchval("SELECT 1") == 1
            assert pool.get_idle_size() == 1
        conn2 = await pool.acquire()
        await pool.release(conn2)
        assert pool.get_idle_size() == 2
        assert await pool.fetchval("SELECT $1::int + 1", 1) == 2
        assert await pool.fetchrow("SELECT 1 AS a") == (1,)
        assert [tuple(r) for r in await pool.fetch("SELECT 1 UNION ALL SELECT 2")] == [(1,), (2,)]
        assert await pool.execute("SELECT 1") == "SELECT 1"
        await pool.execute("CREATE TABLE IF NOT EXISTS pool_t (i int)")
        await pool.executemany("INSERT INTO pool_t VALUES ($1)", [(1,), (2,)])
        assert await pool.copy_records_to_table("pool_t", records=[(3,)]) == "COPY 1"
        assert await pool.fetchval("SELECT count(*) FROM pool_t") == 3
        await pool.execute("DROP TABLE pool_t")
        assert not pool.is_closing()
    finally:
        await pool.close()
    assert pool.is_closing()
    assert pool.get_size() == 0


async def test_use_after_release_raises(pool: Pool) -> None:
    conn = await pool.acquire()
    stmt = await conn.prepare("SELECT 1")
    await pool.release(conn)
    with pytest.raises(exceptions.InterfaceError, match="released back to the pool"):
        await conn.fetchval("SELECT 1")
    with pytest.raises(exceptions.InterfaceError, match="released"):
        await stmt.fetchval()
    await pool.release(conn)  # again: nothing to do, as in asyncpg
    with pytest.raises(exceptions.InterfaceError, match="is not a member of this pool"):
        await pool.release(conn._con if conn._con is not None else object())
    conn = await pool.acquire()
    await conn.transaction().start()
    cursor = await conn.cursor("SELECT generate_series(1, 10)")
    await cursor.fetch(2)
    await pool.release(conn)  # rolled back
    with pytest.raises(exceptions.InterfaceError, match="released"):
        await cursor.fetch(2)


async def test_a_connection_released_in_the_middle_of_something_is_replaced(pool: Pool) -> None:
    conn = await pool.acquire()
    pid = conn.get_server_pid()
    stream = conn.stream("SELECT generate_series(1, 1000000)", window=10)
    await stream.__anext__()  # the portal keeps the connection's turn
    waiting = asyncio.ensure_future(conn.fetchval("SELECT 1"))  # waits for the turn
    await pool.release(conn)
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await asyncio.wait_for(waiting, HANG_GUARD)
    async with pool.acquire() as again:
        assert await again.fetchval("SELECT 2") == 2
        assert again.get_server_pid() != pid
    del stream


async def test_init_setup_and_reset_hooks(dsn: str) -> None:
    calls: list[str] = []

    async def init(conn: pgoxide.Connection) -> None:
        calls.append("init")
        await conn.execute("SET application_name = 'pooled'")

    async def setup(conn: PoolConnectionProxy) -> None:
        calls.append("setup")

    async def reset(conn: pgoxide.Connection) -> None:
        calls.append("reset")

    async with pgoxide.create_pool(
        dsn, min_size=1, max_size=1, init=init, setup=setup, reset=reset
    ) as pool:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "pooled"
        assert calls == ["init", "setup", "reset"]


async def test_a_wrong_dsn_fails_create_pool(dsn: str) -> None:
    with pytest.raises(exceptions.InvalidCatalogNameError):
        await pgoxide.create_pool(dsn + "_no_such_db", min_size=1, max_size=1)


# -- the floor, the lost, the dead ----------------------------------------------------------


async def test_min_size_is_a_floor(dsn: str, other: pgoxide.Connection) -> None:
    async with pgoxide.create_pool(dsn, min_size=3, max_size=5) as pool:
        pids = await _backend_pids(pool)
        await other.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", list(pids)
        )
        await until(
            pool,
            lambda: pool.get_size() == 3 and not pids & _pids_now(pool),
            "the pool back at min_size with new connections",
        )
        assert pool.stats().connections_lost == 3
        assert await pool.fetchval("SELECT 1") == 1


async def test_a_terminated_busy_connection_fails_only_its_call(
    dsn: str, other: pgoxide.Connection
) -> None:
    async with pgoxide.create_pool(dsn, min_size=2, max_size=2) as pool:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            running = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(60)"))
            await running_on(other, pid, "SELECT pg_sleep(60)")
            await other.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(
                (exceptions.AdminShutdownError, exceptions.ConnectionDoesNotExistError)
            ):
                await asyncio.wait_for(running, HANG_GUARD)
        await until(pool, lambda: pool.get_size() == 2, "the pool refilled")
        # Every later call works.
        assert await asyncio.gather(*(pool.fetchval("SELECT 1") for _ in range(10))) == [1] * 10


async def test_dead_idle_connection_is_replaced_by_the_check(
    dsn: str, other: pgoxide.Connection
) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1, check_idle_after=0) as pool:
        slot = next(iter(pool._slots))
        # The server side vanishes without the client noticing (no FIN reaches it): pause
        # reading so the termination is not seen until the check.
        slot.conn._protocol.pause_reading()
        await other.execute("SELECT pg_terminate_backend($1)", slot.conn.get_server_pid())
        async with pool.acquire(timeout=HANG_GUARD) as conn:
            assert await conn.fetchval("SELECT 1") == 1
        stats = pool.stats()
        assert stats.health_checks >= 1 and stats.health_check_failures == 1


# -- waiting, fairness, timeouts, cancellation -----------------------------------------------


async def test_waiters_are_served_in_order(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        order: list[int] = []
        first = await pool.acquire()

        async def waiter(i: int) -> None:
            async with pool.acquire() as conn:
                order.append(i)
                await conn.fetchval("SELECT 1")

        tasks = []
        for i in range(10):
            tasks.append(asyncio.ensure_future(waiter(i)))
            await until(pool, lambda n=i: pool.stats().waiters == n + 1, "the waiter queued")
        await pool.release(first)
        await asyncio.gather(*tasks)
        assert order == list(range(10))


async def test_acquire_timeout_and_cancellation_never_leak(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        held = await pool.acquire()
        with pytest.raises(asyncio.TimeoutError):
            await pool.acquire(timeout=0.05)
        task = asyncio.ensure_future(pool.acquire())
        await until(pool, lambda: pool.stats().waiters == 1, "the acquire queued")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await pool.release(held)
        assert (pool.get_size(), pool.get_idle_size(), pool.stats().waiters) == (1, 1, 0)
        stats = pool.stats()
        assert stats.acquire_timeouts == 1


async def test_cancelled_at_every_point_of_acquire_and_release(dsn: str) -> None:
    # Cancels a cycle of acquire, query, release after 0, 1, 2, ... event-loop iterations,
    # until a cycle completes: every point of the cycle is hit, and none leaks.
    async with pgoxide.create_pool(dsn, min_size=1, max_size=2, check_idle_after=0) as pool:

        async def cycle() -> None:
            async with pool.acquire() as conn:
                await conn.execute("SET search_path = public")  # needs a reset round trip

        for steps in range(200):
            task = asyncio.ensure_future(cycle())
            for _ in range(steps):
                await asyncio.sleep(0)
            if task.done():
                await task
                break
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(
                pool,
                lambda: pool.stats().in_use == 0 and not pool._tasks - {pool._maintainer},
                "every connection back",
            )
        else:
            pytest.fail("the cycle never completed")
        assert pool.get_size() == pool.get_idle_size() >= 1
        assert await pool.fetchval("SHOW search_path") == '"$user", public'


# -- resets: only what is needed ------------------------------------------------------------


def test_reset_sql() -> None:
    from pgoxide import _pgoxide as m

    assert reset_sql(0, False) == ""
    assert reset_sql(0, True) == "ROLLBACK"
    assert reset_sql(m.EFFECT_SETTINGS | m.EFFECT_LISTEN, False) == "UNLISTEN *; RESET ALL"
    assert reset_sql(m.EFFECT_TEMP, True) == "ROLLBACK; DISCARD TEMP"
    assert reset_sql(m.EFFECT_UNKNOWN, False) == (
        "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL"
    )


async def test_release_resets_only_what_changed(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        assert pool.stats().resets == 0
        async with pool.acquire() as conn:
            await conn.execute("SET work_mem = '7MB'")
            await conn.execute("LISTEN pool_chan")
            await conn.fetchval("SELECT pg_advisory_lock(42)")
            await conn.execute("CREATE TEMP TABLE pool_tmp (i int)")
        assert pool.stats().resets == 1
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW work_mem") != "7MB"
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            assert (
                await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
                == 0
            )
            assert await conn.fetchval("SELECT to_regclass('pg_temp.pool_tmp')") is None
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("CREATE TABLE pool_rolled_back (i int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pool_rolled_back')") is None
        with pytest.raises(exceptions.InterfaceError):
            await tx.commit()


async def test_listeners_are_dropped_on_release(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        got: list[str] = []
        with pytest.warns(exceptions.InterfaceWarning, match="active notification listener"):
            async with pool.acquire() as conn:
                await conn.add_listener("chan", lambda *a: got.append(a[3]))
        async with pool.acquire() as conn:
            await conn.execute("NOTIFY chan, 'x'")
            await conn.fetchval("SELECT 1")
        assert got == []


# -- recycling and closing --------------------------------------------------------------------


async def test_max_queries_and_expire_replace_connections(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1, max_queries=3) as pool:
        pids = set()
        for _ in range(6):
            async with pool.acquire() as conn:
                pids.add(conn.get_server_pid())
                await conn.fetchval("SELECT 1")
        assert len(pids) >= 2
        before = await _backend_pids(pool)
        await pool.expire_connections()
        await until(pool, lambda: pool.get_size() == 1, "replaced")
        assert not before & await _backend_pids(pool)


async def test_max_lifetime_recycles(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1, max_lifetime=0.0) as pool:
        async with pool.acquire() as conn:
            first = conn.get_server_pid()
        async with pool.acquire() as conn:
            assert conn.get_server_pid() != first


async def test_close_waits_then_terminates(dsn: str) -> None:
    pool = await pgoxide.create_pool(dsn, min_size=1, max_size=2)
    conn = await pool.acquire()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await asyncio.wait_for(pool.close(timeout=0.1), HANG_GUARD)
    assert any("not released" in str(w.message) for w in caught)
    assert pool.get_size() == 0
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await conn.fetchval("SELECT 1")
    with pytest.raises(exceptions.InterfaceError, match="closing"):
        await pool.acquire()


async def test_close_closes_every_connection_on_the_server(
    dsn: str, other: pgoxide.Connection
) -> None:
    pool = await pgoxide.create_pool(dsn, min_size=4, max_size=4)
    pids = _pids_now(pool)
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    await pool.close()
    alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
    for _ in range(10_000):  # the server notices each Terminate a moment after it arrives
        if await other.fetchval(alive, list(pids)) == 0:
            break
    assert await other.fetchval(alive, list(pids)) == 0


async def test_close_returns_when_connections_come_back(dsn: str) -> None:
    pool = await pgoxide.create_pool(dsn, min_size=1, max_size=2)
    conn = await pool.acquire()
    closing = asyncio.ensure_future(pool.close())
    await until(pool, pool.is_closing, "closing")
    assert not closing.done()
    await pool.release(conn)
    await asyncio.wait_for(closing, HANG_GUARD)
    assert pool.get_size() == 0


async def test_no_connection_objects_leak(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        for _ in range(50):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
    gc.collect()
    assert pool.get_size() == 0


# -- advisory locks with leak tracking ---------------------------------------------------------


async def test_advisory_locks(conn: pgoxide.Connection, other: pgoxide.Connection) -> None:
    async with conn.advisory_lock(7) as got:
        assert got is True
        async with other.try_advisory_lock(7) as theirs:
            assert theirs is False
        with pytest.raises(asyncio.TimeoutError):
            async with other.advisory_lock(7, timeout=0.2):
                pass  # pragma: no cover
        async with other.advisory_lock(7, shared=True, wait=False) as shared:
            assert shared is False
    async with other.try_advisory_lock(7) as theirs:
        assert theirs is True
    async with conn.advisory_lock((1, 2), shared=True), other.advisory_lock((1, 2), shared=True):
        pass
    with pytest.raises(exceptions.InterfaceError, match="transaction block"):
        await conn.advisory_xact_lock(9)
    async with conn.transaction():
        assert await conn.advisory_xact_lock(9) is True
        assert await other.fetchval("SELECT pg_try_advisory_lock(9)") is False
    assert await other.fetchval("SELECT pg_try_advisory_lock(9)") is True
    with pytest.raises(TypeError):
        conn.advisory_lock("key")  # type: ignore[arg-type]
    assert not conn._advisory_locks


async def test_leaked_advisory_locks_are_reported_and_released(dsn: str) -> None:
    leaks: list[int] = []
    async with pgoxide.create_pool(
        dsn, min_size=1, max_size=1, on_leaked_advisory_locks=leaks.append
    ) as pool:
        async with pool.acquire() as conn:
            await conn.advisory_lock(11).acquire()
            await conn.advisory_lock(12, shared=True).acquire()
            lock = conn.advisory_lock(13)
            await lock.acquire()
            await lock.release()
        assert leaks == [2]
        assert pool.stats().leaked_advisory_locks == 2
        async with pool.acquire() as conn:
            assert (
                await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
                == 0
            )
        # Locks taken and released through the API need no reset.
        resets = pool.stats().resets
        async with pool.acquire() as conn, conn.advisory_lock(14):
            pass
        assert pool.stats().resets == resets
    pool = pgoxide.create_pool(dsn, min_size=1, max_size=1)
    async with pool:
        conn = await pool.acquire()
        await conn.advisory_lock(15).acquire()
        with pytest.warns(ResourceWarning, match="advisory lock"):
            await pool.release(conn)


# -- notifications that survive reconnects -------------------------------------------------


async def test_pool_listen_reconnects_and_says_so(dsn: str, other: pgoxide.Connection) -> None:
    from pgoxide.notifications import Notification, Reconnected

    async with pgoxide.create_pool(dsn, min_size=1, max_size=2) as pool:
        async with pool.listen("jobs") as stream:
            await other.execute("NOTIFY jobs, 'one'")
            first = await asyncio.wait_for(stream.__anext__(), HANG_GUARD)
            assert isinstance(first, Notification) and first.payload == "one"
            listening = stream._conn.get_server_pid()  # type: ignore[union-attr]
            await other.execute("SELECT pg_terminate_backend($1)", listening)
            marker = await asyncio.wait_for(stream.__anext__(), HANG_GUARD)
            assert isinstance(marker, Reconnected)
            assert stream._conn.get_server_pid() != listening  # type: ignore[union-attr]
            await other.execute("NOTIFY jobs, 'two'")
            again = await asyncio.wait_for(stream.__anext__(), HANG_GUARD)
            assert isinstance(again, Notification) and again.payload == "two"
        await until(pool, lambda: pool.stats().in_use == 0, "the listening connection back")


# -- the server going away under load ----------------------------------------------------------


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster this test may stop and restart."""
    with Cluster() as cluster:
        yield cluster


async def test_server_restart_under_load(own_cluster: Cluster) -> None:
    dsn = f"postgresql://{own_cluster.superuser}@{own_cluster.host}:{own_cluster.port}/postgres"
    async with pgoxide.create_pool(dsn, min_size=5, max_size=10) as pool:
        stop = asyncio.Event()
        errors: list[BaseException] = []

        async def worker() -> int:
            done = 0
            while not stop.is_set():
                try:
                    assert await pool.fetchval("SELECT $1::int", done) == done
                    done += 1
                except (exceptions.PostgresError, exceptions.InterfaceError, OSError) as e:
                    errors.append(e)  # only calls running when the server went away
            return done

        workers = [asyncio.ensure_future(worker()) for _ in range(50)]
        await until(pool, lambda: pool.stats().acquired > 500, "the load running")
        await asyncio.get_running_loop().run_in_executor(None, own_cluster.restart)
        served = pool.stats().acquired
        await until(pool, lambda: pool.stats().acquired > served + 500, "served again")
        stop.set()
        done = await asyncio.wait_for(asyncio.gather(*workers), HANG_GUARD)
        assert all(n > 0 for n in done)
        assert len(errors) <= 10  # at most the calls in flight on 10 connections
        assert pool.stats().connections_lost >= 5
        await until(pool, lambda: pool.get_size() >= 5 and not pool._opening, "refilled")
        assert pool.get_size() == pool.get_idle_size()


# -- hypothesis: any sequence of acquire, release, cancel and terminate ---------------------------


async def dirty_up(conn: PoolConnectionProxy, work_mem: str) -> None:
    """A SET (so the release needs a reset), unless the backend was terminated by an
    earlier step: its FATAL may arrive only now."""
    with contextlib.suppress(exceptions.PostgresError, exceptions.ConnectionDoesNotExistError):
        if not conn.is_closed():
            await conn.execute(f"SET work_mem = '{work_mem}'")


def test_stateful_sizes_hold(dsn: str) -> None:
    loop = asyncio.new_event_loop()
    killer = loop.run_until_complete(pgoxide.connect(dsn))

    class PoolMachine(RuleBasedStateMachine):
        """The pool's sizes are true after every step: open = idle + held, within max_size,
        no waiter left behind, and at least min_size once the background work is done."""

        def __init__(self) -> None:
            super().__init__()
            self.pool = loop.run_until_complete(
                pgoxide.create_pool(dsn, min_size=2, max_size=3, check_idle_after=None)
            )
            self.held: list[PoolConnectionProxy] = []

        def run(self, coro: Any) -> Any:
            return loop.run_until_complete(asyncio.wait_for(coro, HANG_GUARD))

        @rule()
        def acquire(self) -> None:
            if len(self.held) < 3:
                self.held.append(self.run(self.pool.acquire()))

        @rule()
        def acquire_times_out(self) -> None:
            if len(self.held) == 3:
                with pytest.raises(asyncio.TimeoutError):
                    self.run(self.pool.acquire(timeout=0.01))

        @rule(steps=st.integers(0, 6))
        def acquire_cancelled(self, steps: int) -> None:
            async def cancel_after() -> None:
                task = asyncio.ensure_future(self.pool.acquire())
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    self.held.append(await task)  # it won the race

            self.run(cancel_after())

        @rule(i=st.integers(0, 2), dirty=st.booleans())
        def release(self, i: int, dirty: bool) -> None:
            if i < len(self.held):
                conn = self.held.pop(i)

                async def go() -> None:
                    if dirty:
                        await dirty_up(conn, "5MB")
                    await self.pool.release(conn)

                self.run(go())

        # At least one step: a task cancelled before it first runs never calls release().
        @rule(i=st.integers(0, 2), steps=st.integers(1, 4))
        def release_cancelled(self, i: int, steps: int) -> None:
            if i < len(self.held):
                conn = self.held.pop(i)

                async def go() -> None:
                    await dirty_up(conn, "6MB")
                    task = asyncio.ensure_future(self.pool.release(conn))
                    for _ in range(steps):
                        await asyncio.sleep(0)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

                self.run(go())

        @rule(i=st.integers(0, 2))
        def terminate_held_backend(self, i: int) -> None:
            if i < len(self.held) and not self.held[i].is_closed():
                pid = self.held[i].get_server_pid()
                self.run(killer.execute("SELECT pg_terminate_backend($1)", pid))

        @rule()
        def terminate_idle_backend(self) -> None:
            idle = [s for s in self.pool._idle if not s.conn.is_closed()]
            if idle:
                pid = idle[0].conn.get_server_pid()
                self.run(killer.execute("SELECT pg_terminate_backend($1)", pid))

        @rule()
        def expire(self) -> None:
            self.run(self.pool.expire_connections())

        @invariant()
        def sizes_are_true(self) -> None:
            pool = self.pool
            self.run(self.settled())
            held = len(self.held)
            assert pool.get_size() == pool.get_idle_size() + held
            assert pool.get_size() <= 3
            assert pool._size == pool.get_size() + pool._opening
            assert pool.stats().waiters == 0
            # A loss noticed just now may still be being replaced.
            assert pool.get_size() + pool._opening >= 2

        async def settled(self) -> None:
            """Until the pool's background work is done (refills, releases, closes)."""
            pool = self.pool
            while pool._tasks - {pool._maintainer} or pool._opening:
                await pool._next_change()

        def teardown(self) -> None:
            async def close() -> None:
                for conn in self.held:
                    await self.pool.release(conn)
                await self.pool.close()

            self.run(close())

    try:
        run_state_machine_as_test(
            PoolMachine,
            settings=settings(
                max_examples=15,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
            ),
        )
    finally:
        loop.run_until_complete(killer.close())
        loop.close()


async def test_set_connect_args_and_inactive_lifetime(dsn: str) -> None:
    async with pgoxide.create_pool(
        dsn, min_size=1, max_size=3, max_inactive_connection_lifetime=0.2
    ) as pool:
        held = [await pool.acquire() for _ in range(3)]
        for conn in held:
            await pool.release(conn)
        assert pool.get_size() == 3
        # Idle above min_size for longer than the lifetime: closed, down to the floor.
        await until(pool, lambda: pool.get_size() == 1, "idle connections closed")
        pool.set_connect_args(dsn, server_settings={"application_name": "renamed"})
        await pool.expire_connections()
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "renamed"


async def test_listeners_of_a_pooled_connection_get_the_proxy_and_dangle_with_a_warning(
    dsn: str,
) -> None:
    got: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        con = await pool.acquire()
        await con.add_listener("pooled", lambda *args: got.put_nowait(args))
        await con.execute("NOTIFY pooled, 'x'")
        args = await asyncio.wait_for(got.get(), HANG_GUARD)
        # As asyncpg: the callback gets what the caller holds, the proxy.
        assert args[0] is con and args[2:] == ("pooled", "x")
        with pytest.warns(exceptions.InterfaceWarning, match="1 active notification listener"):
            await pool.release(con)
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0


async def test_release_refuses_what_the_pool_did_not_give(dsn: str) -> None:
    async with (
        pgoxide.create_pool(dsn, min_size=1, max_size=1) as one,
        pgoxide.create_pool(dsn, min_size=1, max_size=1) as other,
    ):
        conn = await one.acquire()
        for wrong_pool, given in ((one, conn._con), (other, conn)):
            with pytest.raises(exceptions.InterfaceError, match="is not a member of this pool"):
                await wrong_pool.release(given)
        await one.release(conn)


async def test_a_failing_setup_closes_the_connection(dsn: str) -> None:
    calls: list[Any] = []

    async def setup(con: Any) -> None:
        calls.append(con)
        if len(calls) == 1:
            raise RuntimeError("setup failed")

    async with pgoxide.create_pool(dsn, min_size=1, max_size=1, setup=setup) as pool:
        with pytest.raises(RuntimeError, match="setup failed"):
            await pool.acquire()
        # The connection is not trusted again: closed, and replaced.
        assert calls[0].is_closed()
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT 1") == 1
            assert con._con is not calls[0]._con


async def test_connect_must_give_a_connection(dsn: str) -> None:
    async def bad_connect(*args: Any, **kwargs: Any) -> int:
        return 1

    with pytest.raises(exceptions.InterfaceError, match="got 'int'"):
        await pgoxide.create_pool(dsn, min_size=1, max_size=1, connect=bad_connect)


async def test_using_a_pool_still_initializing_says_so(dsn: str) -> None:
    pool = pgoxide.create_pool(dsn, min_size=1, max_size=1)
    starting = asyncio.ensure_future(pool)
    await asyncio.sleep(0)
    with pytest.raises(exceptions.InterfaceError, match="being initialized, but not yet ready"):
        await pool.fetchval("SELECT 1")
    await starting
    await pool.close()


async def test_objects_of_a_released_connection_refuse_at_call_time(dsn: str) -> None:
    # As asyncpg: the call itself raises, before anything is awaited.
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        async with pool.acquire() as con:
            ps = await con.prepare("SELECT 1")
            txn = con.transaction()
            async with con.transaction():
                cur = await con.cursor("SELECT 1")
        assert "[released]" in repr(con)
        for meth in ("fetchval", "fetchrow", "fetch", "explain", "get_query", "get_parameters"):
            with pytest.raises(exceptions.InterfaceError, match=rf"PreparedStatement\.{meth}"):
                getattr(ps, meth)()
        for meth in ("fetch", "fetchrow", "forward"):
            with pytest.raises(exceptions.InterfaceError, match=rf"Cursor\.{meth}.*released"):
                getattr(cur, meth)(1) if meth != "fetchrow" else cur.fetchrow()
        for meth in ("start", "commit", "rollback"):
            with pytest.raises(exceptions.InterfaceError, match=rf"Transaction\.{meth}"):
                getattr(txn, meth)()


async def test_a_block_left_open_in_a_generator_closed_after_release(dsn: str) -> None:
    async def rows(con: Any) -> Any:
        async with con.transaction():
            for record in await con.fetch("SELECT 1"):
                yield record

    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        with pytest.raises(ZeroDivisionError):
            async with pool.acquire() as con:
                gen = rows(con)
                async for _ in gen:
                    1 / 0  # noqa: B018
        await gen.aclose()  # the block's exit after the release: nothing to do, no error
        assert await pool.fetchval("SELECT 1") == 1


async def test_a_proxy_is_a_connection(dsn: str) -> None:
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool, pool.acquire() as con:
        assert isinstance(con, pgoxide.Connection)
        assert not isinstance(con, list)
        assert con.execute.__name__ == "execute"
    assert not isinstance(object(), pgoxide.Connection)


async def test_a_failing_init_reaches_the_caller_waiting_for_the_connection(dsn: str) -> None:
    class Refused(Exception):
        pass

    calls = 0

    async def init(con: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Refused

    async with pgoxide.create_pool(dsn, min_size=0, max_size=1, init=init) as pool:
        with pytest.raises(Refused):
            await asyncio.wait_for(pool.acquire(), HANG_GUARD)
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT 1") == 1
    with pytest.raises(Refused):  # at creation too
        calls = 0
        await pgoxide.create_pool(dsn, min_size=1, max_size=1, init=init)
