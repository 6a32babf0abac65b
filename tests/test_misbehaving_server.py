"""A server that misbehaves on purpose (tests/support/fake_server.py): every call ends in a
named pgoxide error within its timeout, and the event loop keeps running meanwhile."""

from __future__ import annotations

import asyncio
import struct

import pgoxide
import pytest
from pgoxide import exceptions
from support.fake_server import FakeClient, cstr, error_fields, fake_server, message

HANG_GUARD = 60


class _Ticker:
    """Counts event-loop iterations while it runs: a loop blocked by the client counts none."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.ticks += 1

    def stop(self) -> int:
        self._task.cancel()
        return self.ticks


async def test_scram_key_derivation_does_not_block_the_event_loop():
    final_message = asyncio.get_running_loop().create_future()

    async def script(client: FakeClient) -> None:
        await client.read_startup()
        # 9M iterations: about a second of PBKDF2, under the cap.
        final_message.set_result(await client.scram_challenge(9_000_000))
        client.send(message(b"E", error_fields("FATAL", "28P01", "password authentication failed")))
        await client.drain()

    async with fake_server(script) as dsn:
        connecting = asyncio.ensure_future(pgoxide.connect(dsn))
        ticker = _Ticker()
        await asyncio.wait_for(asyncio.shield(final_message), HANG_GUARD)
        ticks = ticker.stop()
        with pytest.raises(exceptions.InvalidPasswordError):
            await asyncio.wait_for(connecting, HANG_GUARD)
    # Derived in a worker thread: the loop went round many times while it ran.
    assert ticks > 1000


async def test_absurd_scram_iteration_counts_are_refused():
    async def script(client: FakeClient) -> None:
        await client.read_startup()
        await client.scram_challenge(100_000_000)

    async with fake_server(script) as dsn:
        with pytest.raises(exceptions.InterfaceError, match="100000000 SCRAM iterations"):
            await asyncio.wait_for(pgoxide.connect(dsn), HANG_GUARD)


async def test_connect_timeout_applies_during_the_key_derivation():
    async def script(client: FakeClient) -> None:
        await client.read_startup()
        await client.scram_challenge(9_000_000)
        await asyncio.Event().wait()  # never answers

    async with fake_server(script) as dsn:
        with pytest.raises(exceptions.ConnectionFailedError):
            await asyncio.wait_for(pgoxide.connect(dsn, connect_timeout=0.2), HANG_GUARD)


async def test_a_flood_of_distinct_parameters_is_refused():
    async def script(client: FakeClient) -> None:
        await client.read_startup()
        client.ready()
        await client.read_message()  # the first query
        flood = b"".join(message(b"S", cstr(f"p{i}") + cstr("v")) for i in range(5000))
        client.send(flood)
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        with pytest.raises(exceptions.ProtocolError, match="distinct parameters"):
            await asyncio.wait_for(conn.execute("SELECT 1"), HANG_GUARD)
        assert conn.is_closed()


async def test_many_updates_of_known_parameters_are_fine():
    async def script(client: FakeClient) -> None:
        await client.read_startup()
        client.ready()
        await client.read_message()
        # 40k reports of a few parameters, then the query's answer.
        updates = b"".join(
            message(b"S", cstr(f"application_name{i % 8}") + cstr(str(i))) for i in range(40_000)
        )
        client.send(updates + message(b"C", cstr("SELECT 0")) + message(b"Z", b"I"))
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        assert await asyncio.wait_for(conn.execute("SELECT 1"), HANG_GUARD) == "SELECT 0"
        assert conn.get_settings().application_name7 == "39999"
        conn.terminate()


async def test_an_error_during_startup_is_the_servers_error():
    async def script(client: FakeClient) -> None:
        await client.read_startup()
        client.send(message(b"E", error_fields("FATAL", "3D000", 'database "fake" does not exist')))
        await client.drain()

    async with fake_server(script) as dsn:
        with pytest.raises(exceptions.InvalidCatalogNameError, match="does not exist"):
            await asyncio.wait_for(pgoxide.connect(dsn), HANG_GUARD)


async def test_a_socket_closed_mid_message_fails_the_call():
    async def script(client: FakeClient) -> None:
        await client.read_startup()
        client.ready()
        await client.read_message()
        row_description = (
            struct.pack("!h", 1) + cstr("n") + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0)
        )
        client.send(message(b"T", row_description)[:12])  # the socket closes inside it
        await client.drain()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await asyncio.wait_for(conn.execute("SELECT 1"), HANG_GUARD)
        assert conn.is_closed()
