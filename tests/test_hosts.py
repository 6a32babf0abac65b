"""Claims of the README's connection rows that need a test of their own: every address of a
host is tried, as libpq does, and ``sslcertmode=require`` is refused clearly."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pgoxide
import pytest
from pgoxide import exceptions
from pgoxide.cluster import Cluster


def _resolving(loop: asyncio.AbstractEventLoop, name: str, addresses: list[str]) -> Any:
    """A getaddrinfo that resolves ``name`` to ``addresses``, in that order."""
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return await real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, int(port)))
            for a in addresses
        ]

    return getaddrinfo


async def test_every_address_of_a_host_is_tried(pg_cluster: Cluster, monkeypatch):
    loop = asyncio.get_running_loop()
    # 127.0.0.2 is loopback too, but the server listens on 127.0.0.1 only: refused.
    monkeypatch.setattr(
        loop, "getaddrinfo", _resolving(loop, "db.test", ["127.0.0.2", "127.0.0.1"])
    )
    conn = await pgoxide.connect(
        host="db.test", port=pg_cluster.port, user="postgres", sslmode="disable"
    )
    try:
        assert await conn.fetchval("SELECT inet_server_addr()::text") == "127.0.0.1/32"
    finally:
        await conn.close()


async def test_a_host_whose_addresses_all_fail_lists_each(pg_cluster: Cluster, monkeypatch):
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(
        loop, "getaddrinfo", _resolving(loop, "db.test", ["127.0.0.2", "127.0.0.3"])
    )
    with pytest.raises(exceptions.ConnectionFailedError) as info:
        await pgoxide.connect(
            host="db.test", port=pg_cluster.port, user="postgres", sslmode="disable"
        )
    attempts = [where for where, _ in info.value.attempts]
    assert len(attempts) == 2
    assert "127.0.0.2" in attempts[0] and "127.0.0.3" in attempts[1]


async def test_sslcertmode_require_is_refused(dsn):
    with pytest.raises(exceptions.ClientConfigurationError, match='sslcertmode value "require"'):
        await pgoxide.connect(dsn, sslmode="require", sslcertmode="require")
