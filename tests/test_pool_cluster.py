"""The pool cluster against a real primary and a pg_basebackup streaming standby: reads on
the replica, writes on the primary, the standby stopped mid-run, and both fallbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pgoxide
import pytest
from pgoxide.cluster import Cluster
from pgoxide.pool_cluster import NoReplicaAvailableError

HANG_GUARD = 60


@pytest.fixture(scope="module")
def primary() -> Iterator[Cluster]:
    with Cluster() as cluster:
        yield cluster


@pytest.fixture
def standby(primary: Cluster) -> Iterator[Cluster]:
    """A hot standby of ``primary``, for one test (some stop it)."""
    cluster = primary.make_standby()
    try:
        yield cluster
    finally:
        cluster.cleanup()


def _uri(cluster: Cluster) -> str:
    return f"postgresql://{cluster.superuser}@{cluster.host}:{cluster.port}/postgres"


async def test_reads_go_to_the_replica_and_writes_to_the_primary(
    primary: Cluster, standby: Cluster
) -> None:
    async with pgoxide.create_pool_cluster(
        _uri(primary), [_uri(standby)], min_size=1, max_size=2
    ) as cluster:
        assert await cluster.fetchval("SELECT pg_is_in_recovery()") is True
        assert await cluster.execute("CREATE TABLE IF NOT EXISTS routed (i int)") == "CREATE TABLE"
        async with cluster.primary.acquire() as conn:
            assert await conn.fetchval("SELECT pg_is_in_recovery()") is False
        conn = await cluster.acquire(read_only=True)
        try:
            assert await conn.fetchval("SELECT pg_is_in_recovery()") is True
        finally:
            await cluster.release(conn)
        conn = await cluster.acquire()
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO routed VALUES (1)")
        finally:
            await cluster.release(conn)
        await cluster.execute("DROP TABLE routed")


async def test_a_primary_dsn_listing_the_standby_first_still_finds_the_primary(
    primary: Cluster, standby: Cluster
) -> None:
    hosts = f"{standby.host}:{standby.port},{primary.host}:{primary.port}"
    dsn = f"postgresql://{primary.superuser}@{hosts}/postgres"
    cluster = pgoxide.create_pool_cluster(dsn, [], min_size=1, max_size=1)
    async with cluster, cluster.primary.acquire() as conn:
        assert await conn.fetchval("SELECT pg_is_in_recovery()") is False


async def test_the_standby_stopped_mid_run_falls_back_to_the_primary(
    primary: Cluster, standby: Cluster
) -> None:
    reasons: list[BaseException] = []
    async with pgoxide.create_pool_cluster(
        _uri(primary),
        [_uri(standby)],
        min_size=1,
        max_size=2,
        fallback_timeout=1.0,
        on_fallback=reasons.append,
    ) as cluster:
        assert await cluster.fetchval("SELECT pg_is_in_recovery()") is True
        # Reads under load while the standby stops: every one completes or fails, none hangs.
        standby_pool = cluster.replicas[0]

        async def reader() -> bool:
            return bool(await cluster.fetchval("SELECT pg_is_in_recovery()"))

        readers = [asyncio.ensure_future(reader()) for _ in range(20)]
        await asyncio.get_running_loop().run_in_executor(None, standby.stop)
        results = await asyncio.wait_for(
            asyncio.gather(*readers, return_exceptions=True), HANG_GUARD
        )
        assert all(isinstance(r, (bool, Exception)) for r in results)
        # From now on reads come from the primary, and the hook says why.
        assert await asyncio.wait_for(reader(), HANG_GUARD) is False
        assert reasons
        assert standby_pool.stats().connections_lost >= 1


async def test_fallback_none_raises(primary: Cluster, standby: Cluster) -> None:
    async with pgoxide.create_pool_cluster(
        _uri(primary), [_uri(standby)], min_size=1, max_size=1, fallback="none",
        fallback_timeout=0.5,
    ) as cluster:  # fmt: skip
        await asyncio.get_running_loop().run_in_executor(None, standby.stop)
        with pytest.raises(NoReplicaAvailableError):
            for _ in range(5):  # until the replica's connection is seen to be gone
                await asyncio.wait_for(cluster.fetchval("SELECT 1"), HANG_GUARD)
        assert await cluster.execute("SELECT 1") == "SELECT 1"


async def test_a_dead_replica_at_start_is_skipped(primary: Cluster, standby: Cluster) -> None:
    standby.stop()
    async with pgoxide.create_pool_cluster(
        _uri(primary), [_uri(standby)], min_size=1, max_size=1
    ) as cluster:
        assert await cluster.fetchval("SELECT pg_is_in_recovery()") is False
