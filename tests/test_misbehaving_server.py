"""A server that misbehaves on purpose (tests/support/fake_server.py): every call ends in a
named pgoxide error within its timeout, and the event loop keeps running meanwhile."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import pgoxide
import pytest
from pgoxide import exceptions
from support.fake_server import (
    FakeClient,
    cstr,
    data_row,
    error_fields,
    fake_server,
    message,
)

pytestmark = pytest.mark.both_loops

HANG_GUARD = 60
TEXT = 25  # the text type's OID


@pytest.fixture(autouse=True)
async def no_error_reaches_the_event_loop():
    """Every failure must reach a caller as a pgoxide error, never the loop's handler."""
    loop = asyncio.get_running_loop()
    seen: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: seen.append(context))
    yield
    loop.set_exception_handler(previous)
    assert not seen, seen


async def _connected(client: FakeClient) -> None:
    assert await client.read_startup() is not None
    client.ready()


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


async def _expect_protocol_error(
    answer: Callable[[FakeClient], Awaitable[None]], *, describe: bool = True
) -> None:
    """Connects, runs one fetch that ``answer`` answers (after a proper description of the
    statement, with ``describe``), and checks it fails with a ProtocolError that closes the
    connection."""

    async def script(client: FakeClient) -> None:
        await _connected(client)
        if describe:
            await client.answer_prepare([("t", TEXT)])
        await answer(client)
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        with pytest.raises(exceptions.ProtocolError):
            await asyncio.wait_for(conn.fetch("SELECT t"), HANG_GUARD)
        assert conn.is_closed()


async def test_a_data_row_with_the_wrong_number_of_columns():
    async def answer(client: FakeClient) -> None:
        await client.answer_execute(data_row([b"a", b"b"]))

    await _expect_protocol_error(answer)


async def test_a_malformed_data_row():
    async def answer(client: FakeClient) -> None:
        await client.read_until_sync()
        # One column announced as 100 bytes long, 3 sent.
        client.send(message(b"2") + message(b"D", struct.pack("!hi", 1, 100) + b"abc"))

    await _expect_protocol_error(answer)


async def test_an_unexpected_message_type():
    async def answer(client: FakeClient) -> None:
        await client.read_until_sync()
        client.send(message(b"2") + message(b"!", b"what is this"))

    await _expect_protocol_error(answer)


async def test_a_bad_message_length():
    async def answer(client: FakeClient) -> None:
        await client.read_until_sync()
        client.send(message(b"2") + b"D" + struct.pack("!i", 2))  # shorter than its header

    await _expect_protocol_error(answer)


async def test_a_malformed_row_description():
    async def answer(client: FakeClient) -> None:
        await client.read_until_sync()
        client.send(
            message(b"1")
            + message(b"t", struct.pack("!h", 0))
            + message(b"T", struct.pack("!h", 3) + cstr("only one"))
        )

    await _expect_protocol_error(answer, describe=False)


async def test_an_array_claiming_huge_dimensions_with_no_elements_allocates_nothing():
    # Found by the core's fuzzer: dimensions (2**31 - 1, 0) hold no element, so the value is
    # an empty list, not two billion empty ones.
    int4_array = 1007
    header = (
        struct.pack("!iiI", 2, 0, 23) + struct.pack("!ii", 2**31 - 1, 1) + struct.pack("!ii", 0, 1)
    )

    async def script(client: FakeClient) -> None:
        await _connected(client)
        await client.answer_prepare([("a", int4_array)])
        await client.answer_execute(data_row([header]))
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        assert await asyncio.wait_for(conn.fetchval("SELECT a"), HANG_GUARD) == []


async def test_a_wrong_scram_server_signature_is_refused():
    async def script(client: FakeClient) -> None:
        await client.read_startup()
        await client.scram_challenge(4096)
        wrong = "v=" + "A" * 43 + "="  # a well-formed signature of 32 zero bytes
        client.send(message(b"R", struct.pack("!i", 12) + wrong.encode()))
        client.send(message(b"R", struct.pack("!i", 0)))
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        with pytest.raises(exceptions.InterfaceError, match="signature"):
            await asyncio.wait_for(pgoxide.connect(dsn), HANG_GUARD)


async def test_notices_and_notifications_between_rows():
    async def script(client: FakeClient) -> None:
        await _connected(client)
        await client.answer_prepare([("t", TEXT)])
        notice = message(b"N", error_fields("NOTICE", "00000", "between rows"))
        notification = message(b"A", struct.pack("!i", 77) + cstr("chan") + cstr("payload"))
        rows = data_row([b"one"]) + notice + notification + data_row([b"two"])
        await client.answer_execute(rows, "SELECT 2")
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        notices: asyncio.Queue = asyncio.Queue()
        conn.add_log_listener(lambda c, m: notices.put_nowait(m.message))
        # The notification goes to the listeners of its channel; none is needed to decode it.
        rows = await asyncio.wait_for(conn.fetch("SELECT t"), HANG_GUARD)
        assert [r[0] for r in rows] == ["one", "two"]
        assert await asyncio.wait_for(notices.get(), HANG_GUARD) == "between rows"
        assert not conn.is_closed()
        conn.terminate()


async def test_a_timeout_after_a_timeout_is_honoured():
    """A server that stalls mid-result and ignores the CancelRequest: the first call times
    out; the next one, waiting for the first to drain, times out too and closes the
    connection instead of hanging."""
    cancels = 0

    async def script(client: FakeClient) -> None:
        nonlocal cancels
        if await client.read_startup() is None:
            cancels += 1  # a CancelRequest: ignored
            return
        client.ready()
        await client.answer_prepare([("t", TEXT)])
        await client.read_until_sync()
        client.send(message(b"2") + data_row([b"first row"]))  # then nothing, ever
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(conn.fetch("SELECT t", timeout=0.2), HANG_GUARD)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(conn.fetch("SELECT t", timeout=0.3), HANG_GUARD)
        assert conn.is_closed()
        assert cancels >= 1
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await conn.fetch("SELECT t")


# -- COPY ------------------------------------------------------------------------------------


def _copy_response(tag: bytes, binary: bool, columns: int) -> bytes:
    fmt = int(binary)
    return message(tag, struct.pack("!bh", fmt, columns) + struct.pack("!h", fmt) * columns)


async def _records_out_fails(data: list[bytes]) -> None:
    """copy_records_from_query, answered by a binary COPY carrying ``data``: a ProtocolError
    that closes the connection."""

    async def script(client: FakeClient) -> None:
        await _connected(client)
        await client.answer_prepare([("t", TEXT)])
        tag, _ = await client.read_message()
        assert tag == b"Q"
        client.send(_copy_response(b"H", True, 1))
        client.send(b"".join(message(b"d", d) for d in data) + message(b"c"))
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)

        async def read() -> None:
            async for _ in conn.copy_records_from_query("SELECT t"):
                pass

        with pytest.raises(exceptions.ProtocolError):
            await asyncio.wait_for(read(), HANG_GUARD)
        assert conn.is_closed()


async def test_binary_copy_data_without_its_signature():
    await _records_out_fails([b"not a copy at all"])


async def test_binary_copy_data_cut_short():
    header = b"PGCOPY\n\xff\r\n\0" + b"\0" * 8
    await _records_out_fails([header, struct.pack("!hi", 1, 10) + b"abc"])


async def test_binary_copy_tuple_with_the_wrong_number_of_fields():
    header = b"PGCOPY\n\xff\r\n\0" + b"\0" * 8
    tuple_ = struct.pack("!hi", 2, 1) + b"a" + struct.pack("!i", -1)
    await _records_out_fails([header + tuple_ + b"\xff\xff"])


async def test_copy_data_from_the_server_during_copy_in():
    async def script(client: FakeClient) -> None:
        await _connected(client)
        tag, _ = await client.read_message()
        assert tag == b"Q"
        client.send(_copy_response(b"G", False, 1) + message(b"d", b"unexpected\n"))
        await client.drain()
        await asyncio.Event().wait()

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        with pytest.raises(exceptions.ProtocolError):
            await asyncio.wait_for(conn.copy_to_table("t", source=b"1\n"), HANG_GUARD)
        assert conn.is_closed()


async def test_a_server_that_never_answers_the_copy_in_times_out():
    cancelled = asyncio.Event()

    async def script(client: FakeClient) -> None:
        if await client.read_startup() is None:
            cancelled.set()  # the CancelRequest for the abandoned COPY
            return
        client.ready()
        await client.read_message()
        await asyncio.Event().wait()  # neither CopyInResponse nor an error

    async with fake_server(script) as dsn:
        conn = await pgoxide.connect(dsn)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                conn.copy_records_to_table("t", records=[(1,)], timeout=0.2), HANG_GUARD
            )
        await asyncio.wait_for(cancelled.wait(), HANG_GUARD)
        conn.terminate()
