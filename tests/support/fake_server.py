"""A fake PostgreSQL server on loopback that plays a scripted misbehaviour.

It speaks just enough of the protocol for a script to take a client through startup and
then do what a real server would not: a script is an async function given a
:class:`FakeClient` (the accepted connection), and whatever it does is what the client sees.
Use it where a real server cannot be made to misbehave; everything else is tested against
real servers.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

PROTOCOL_3_0 = 196608
CANCEL_REQUEST = 80877102


def message(tag: bytes, body: bytes = b"") -> bytes:
    """One backend message."""
    return tag + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def error_fields(severity: str, code: str, text: str) -> bytes:
    """The body of an ErrorResponse or NoticeResponse."""
    return (
        b"S"
        + cstr(severity)
        + b"V"
        + cstr(severity)
        + b"C"
        + cstr(code)
        + b"M"
        + cstr(text)
        + b"\0"
    )


def row_description(columns: list[tuple[str, int]]) -> bytes:
    """The body of a RowDescription of text-format columns."""
    body = struct.pack("!h", len(columns))
    for name, oid in columns:
        body += cstr(name) + struct.pack("!ihihih", 0, 0, oid, -1, -1, 0)
    return body


def data_row(values: list[bytes | None]) -> bytes:
    """A DataRow message."""
    body = struct.pack("!h", len(values))
    for value in values:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return message(b"D", body)


class FakeClient:
    """The client's connection, as the fake server sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.startup: dict[str, str] = {}

    async def read_startup(self) -> dict[str, str] | None:
        """Reads the StartupMessage (refusing an SSLRequest first, if one comes); None for a
        CancelRequest, which this server ignores. A later 3.x than 3.0 (3.2 when the run sets
        PGMAXPROTOCOLVERSION) is answered as PostgreSQL 17 does: NegotiateProtocolVersion 3.0."""
        while True:
            (length,) = struct.unpack("!i", await self.reader.readexactly(4))
            body = await self.reader.readexactly(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code == PROTOCOL_3_0:
                break
            if code >> 16 == 3:
                self.writer.write(message(b"v", struct.pack("!ii", PROTOCOL_3_0, 0)))
                break
            if code == CANCEL_REQUEST:
                return None
            self.writer.write(b"N")  # SSLRequest or GSSENCRequest: not here
        parts = body[4:].split(b"\0")
        self.startup = {
            parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 2, 2)
        }
        return self.startup

    async def read_message(self) -> tuple[bytes, bytes]:
        """The next frontend message: its tag and body."""
        tag = await self.reader.readexactly(1)
        (length,) = struct.unpack("!i", await self.reader.readexactly(4))
        return tag, await self.reader.readexactly(length - 4)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    def ready(self, parameters: dict[str, str] | None = None) -> None:
        """AuthenticationOk, the usual ParameterStatus messages, BackendKeyData and
        ReadyForQuery: the client is connected."""
        params = {
            "server_version": "17.0",
            "client_encoding": "UTF8",
            "server_encoding": "UTF8",
            "DateStyle": "ISO, MDY",
            "integer_datetimes": "on",
            "standard_conforming_strings": "on",
            "TimeZone": "UTC",
            **(parameters or {}),
        }
        out = message(b"R", struct.pack("!i", 0))
        for name, value in params.items():
            out += message(b"S", cstr(name) + cstr(value))
        out += message(b"K", struct.pack("!ii", 4242, 1234))
        out += message(b"Z", b"I")
        self.send(out)

    async def read_until_sync(self) -> list[bytes]:
        """The tags of the frontend messages up to and including the next Sync."""
        tags = []
        while True:
            tag, _ = await self.read_message()
            tags.append(tag)
            if tag == b"S":
                return tags

    async def answer_prepare(self, columns: list[tuple[str, int]]) -> None:
        """Answers a statement's Parse/Describe/Sync: no parameters, these (name, type OID)
        result columns."""
        await self.read_until_sync()
        self.send(
            message(b"1")
            + message(b"t", struct.pack("!h", 0))
            + message(b"T", row_description(columns))
            + message(b"Z", b"I")
        )

    async def answer_execute(self, rows: bytes, tag: str = "SELECT 1") -> None:
        """Answers Bind/Execute/Sync with BindComplete, ``rows`` (raw messages), the tag and
        ReadyForQuery."""
        await self.read_until_sync()
        self.send(message(b"2") + rows + message(b"C", cstr(tag)) + message(b"Z", b"I"))

    async def scram_challenge(self, iterations: int) -> bytes:
        """Asks for SCRAM-SHA-256 and answers the client's first message with ``iterations``;
        returns the client's final message once it arrives."""
        self.send(message(b"R", struct.pack("!i", 10) + cstr("SCRAM-SHA-256") + b"\0"))
        _, body = await self.read_message()  # SASLInitialResponse
        mechanism_end = body.index(b"\0")
        first = body[mechanism_end + 5 :].decode()
        client_nonce = first.split("r=", 1)[1]
        salt = base64.b64encode(b"0123456789abcdef").decode()
        server_first = f"r={client_nonce}server-nonce,s={salt},i={iterations}"
        self.send(message(b"R", struct.pack("!i", 11) + server_first.encode()))
        _, final = await self.read_message()
        return final


Script = Callable[[FakeClient], Awaitable[None]]


@asynccontextmanager
async def fake_server(script: Script) -> AsyncIterator[str]:
    """Serves ``script`` to each connection; yields a DSN that reaches it."""
    failures: list[BaseException] = []
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await script(FakeClient(reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server stops: what the script checks, if any
        except BaseException as e:  # surfaced when the server stops
            failures.append(e)
            raise
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"host=127.0.0.1 port={port} user=fake dbname=fake password=pw sslmode=disable"
    finally:
        server.close()
        # Scripts that wait forever end with the server (before Python 3.12, closing it
        # leaves its connections' handlers running).
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
    if failures:
        raise failures[0]
