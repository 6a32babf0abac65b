"""statement_cache_size=0: unnamed statements, one round trip per repeated query, and
correct results behind a real PgBouncer in transaction mode."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pgoxide
import pytest
from support.pgbouncer import find_pgbouncer, pgbouncer


@pytest.fixture
async def conn(dsn):
    c = await pgoxide.connect(dsn, statement_cache_size=0)
    try:
        yield c
    finally:
        await c.close()


def _count_requests(conn: pgoxide.Connection) -> list[bytes]:
    sent: list[bytes] = []
    send = conn._protocol.send

    def counting(data: bytes):
        sent.append(data)
        return send(data)

    conn._protocol.send = counting  # type: ignore[method-assign]
    return sent


async def test_repeated_queries_take_one_round_trip(conn):
    sent = _count_requests(conn)
    assert await conn.fetchval("SELECT $1::int + 1", 1) == 2
    assert len(sent) == 2, "first sight: describe, then execute"
    for i in range(5):
        assert await conn.fetchval("SELECT $1::int + 1", i) == i + 1
    assert len(sent) == 7, "then one request per query"
    assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0


async def test_changed_columns_are_noticed_before_decoding(conn):
    await conn.execute("DROP TABLE IF EXISTS pm; CREATE TABLE pm(a int4)")
    await conn.execute("INSERT INTO pm VALUES (7)")
    assert await conn.fetchval("SELECT a FROM pm") == 7
    # Same binary width, different type: decoding with the old description would misread.
    await conn.execute("ALTER TABLE pm ALTER COLUMN a TYPE float4")
    assert await conn.fetchval("SELECT a FROM pm") == 7.0
    await conn.execute("ALTER TABLE pm ADD COLUMN b text DEFAULT 'x'")
    assert tuple(await conn.fetchrow("SELECT * FROM pm")) == (7.0, "x")
    await conn.execute("DROP TABLE pm")


@pytest.fixture(scope="module")
def bouncer(pg_cluster, pg_roles) -> Iterator[str]:
    binary = find_pgbouncer()
    if binary is None:
        pytest.skip("PgBouncer is not installed (.ci/run installs Debian's pgbouncer)")
    with pgbouncer(binary, pg_cluster.port, pg_roles.database, pg_roles.trust) as port:
        # Protocol 3.0 even when the run asks for 3.2 (PGMAXPROTOCOLVERSION): PgBouncer 1.18
        # (Debian's) closes the connection on a 3.2 StartupMessage ("bad packet header")
        # instead of answering NegotiateProtocolVersion; so it does with libpq 18.
        yield (
            f"host=127.0.0.1 port={port} dbname={pg_roles.database}"
            f" user={pg_roles.trust} sslmode=disable max_protocol_version=3.0"
        )


async def test_behind_pgbouncer_in_transaction_mode(bouncer):
    """More clients than server connections, so consecutive requests of one client land on
    different server connections: any named statement would be missing there."""
    conns = [await pgoxide.connect(bouncer, statement_cache_size=0) for _ in range(5)]

    async def work(n: int, conn: pgoxide.Connection) -> None:
        stmt = await conn.prepare("SELECT $1::int * $2::int")
        for i in range(40):
            assert await conn.fetchval("SELECT $1::int + $2::int", i, n) == i + n
            assert [r[0] for r in await conn.fetch("SELECT generate_series(1, $1)", 3)] == [1, 2, 3]
            assert await stmt.fetchval(i, n) == i * n
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS pb(a int) ON COMMIT DROP")
            await conn.executemany("INSERT INTO pb VALUES ($1)", [(i,) for i in range(10)])
            assert await conn.fetchval("SELECT sum(a) FROM pb") == 45

    try:
        await asyncio.gather(*(work(n, c) for n, c in enumerate(conns)))
    finally:
        for c in conns:
            await c.close()
