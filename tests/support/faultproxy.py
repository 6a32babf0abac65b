"""A fault-injecting TCP proxy on loopback, between a client and a real PostgreSQL server.

Every accepted connection is a :class:`Link` that forwards both ways. A :class:`Fault` armed
on a link (or on the next link to be accepted) acts in one direction once that many more
bytes have gone through: it cuts the connection, stalls it (for a while or for good), delays
each chunk, delivers byte by byte, or flips one byte.

A cut behaves like a peer that vanished: the client's socket is reset, and the server's sees
end-of-file. The proxy then keeps reading the server until its backend has closed the socket
(:meth:`FaultProxy.backends_gone`), so a test can check what the server committed knowing
the backend can no longer change it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Literal

__all__ = ["Fault", "FaultProxy", "Link"]

Direction = Literal["up", "down"]  # up: client to server; down: server to client
Kind = Literal["cut", "stall", "delay", "trickle", "flip"]
_CANCEL_REQUEST_CODE = 80877102


@dataclass(frozen=True)
class Fault:
    """What to do to one direction of a link once ``after`` more bytes have gone through.

    ``seconds`` is how long a stall lasts (None: until the link ends) or the delay before
    each chunk. A trickle delivers every byte from ``after`` on in its own write."""

    kind: Kind
    direction: Direction
    after: int = 0
    seconds: float | None = None

    def __str__(self) -> str:
        what = {"up": "client→server", "down": "server→client"}[self.direction]
        if self.kind == "stall":
            held = "forever" if self.seconds is None else f"{self.seconds:g} s"
            return f"stall {what} after {self.after} B for {held}"
        if self.kind == "delay":
            return f"delay {what} chunks by {self.seconds:g} s"
        return f"{self.kind} {what} at byte {self.after}"


class _Pipe:
    """One direction of a link: applies its fault to the bytes it forwards."""

    def __init__(self, link: Link, direction: Direction, writer: asyncio.StreamWriter) -> None:
        self.link = link
        self.direction = direction
        self.writer = writer
        self.count = 0  # bytes read from the source so far
        self.fault: Fault | None = None
        self.at = 0  # absolute offset where the fault acts
        self.held: bytearray | None = None  # bytes a stall is holding back
        self.fired = False

    def arm(self, fault: Fault) -> None:
        self.fault = fault
        self.at = self.count + fault.after
        self.fired = False

    async def forward(self, data: bytes) -> None:
        start, self.count = self.count, self.count + len(data)
        fault = self.fault
        if self.link.severed:
            return
        if self.held is not None:
            self.held += data
            return
        if fault is None or (self.count <= self.at and fault.kind != "delay"):
            self._write(data)
            return
        split = max(self.at - start, 0)
        head, tail = data[:split], data[split:]
        if fault.kind == "delay":
            self.fired = True
            await asyncio.sleep(fault.seconds or 0)
            self._write(data)
        elif fault.kind == "cut":
            self.fired = True
            self._write(head)
            await self.link.sever()
        elif fault.kind == "stall":
            self.fired = True
            self._write(head)
            self.fault = None
            self.held = bytearray(tail)
            if fault.seconds is not None:
                asyncio.get_running_loop().call_later(fault.seconds, self._release)
        elif fault.kind == "flip":
            self.fired = True
            self.fault = None
            self._write(head + bytes([tail[0] ^ 0xFF]) + tail[1:])
        elif fault.kind == "trickle":
            self.fired = True
            self._write(head)
            for i in range(len(tail)):
                self._write(tail[i : i + 1])
                # Let the reader see this byte alone before the next one is written.
                await self.writer.drain()
                await asyncio.sleep(0)

    def _release(self) -> None:
        held, self.held = self.held, None
        if held and not self.link.severed:
            self._write(bytes(held))

    def _write(self, data: bytes) -> None:
        if data and not self.writer.is_closing():
            self.writer.write(data)


class Link:
    """One proxied connection: the client's socket and the server's."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self._client_reader, self._client_writer = client
        self._server_reader, self._server_writer = server
        #: The client's address, as the client's socket names itself.
        self.client_address = self._client_writer.get_extra_info("peername")
        self.up = _Pipe(self, "up", self._server_writer)
        self.down = _Pipe(self, "down", self._client_writer)
        self.severed = False
        self.backend_gone = asyncio.Event()
        self._tasks = [
            asyncio.ensure_future(self._pump_up()),
            asyncio.ensure_future(self._pump_down()),
        ]

    def arm(self, fault: Fault) -> None:
        """Arms ``fault`` (in place of any fault armed before that has not acted), counting
        ``fault.after`` from the bytes forwarded so far."""
        self.up.fault = self.down.fault = None
        (self.up if fault.direction == "up" else self.down).arm(fault)

    @property
    def fired(self) -> bool:
        """Whether an armed fault has acted."""
        return self.up.fired or self.down.fired

    async def sever(self) -> None:
        """Cuts the link: the client's socket is reset, the server's gets end-of-file."""
        if self.severed:
            return
        self.severed = True
        self._client_writer.transport.abort()
        with contextlib.suppress(OSError):
            self._server_writer.write_eof()

    async def _pump_up(self) -> None:
        with contextlib.suppress(OSError):
            while data := await self._client_reader.read(65536):
                await self.up.forward(data)
        # The client hung up (or was cut off): the server's backend sees end-of-file.
        with contextlib.suppress(OSError, RuntimeError):
            if not self._server_writer.is_closing():
                self._server_writer.write_eof()

    async def _pump_down(self) -> None:
        # Reads the server until its backend closes the socket, even once the client is gone:
        # that end-of-file is when the backend can no longer commit anything.
        with contextlib.suppress(OSError):
            while data := await self._server_reader.read(65536):
                await self.down.forward(data)
        self.backend_gone.set()
        self._client_writer.close()
        self._server_writer.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._client_writer.transport.abort()
        self._server_writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class FaultProxy:
    """Listens on 127.0.0.1 and forwards each connection to ``(host, port)``."""

    def __init__(self, host: str, port: int, *, cancels: bool = True) -> None:
        self.upstream = (host, port)
        # False: CancelRequests are read and dropped, as by a server that ignores them.
        self.cancels = cancels
        self.links: list[Link] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._next: list[Fault] = []

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def link_of(self, conn: object) -> Link:
        """The link carrying pgoxide connection ``conn`` (a pool's proxy too): the one whose
        client address is the connection's own, not merely the latest link (a CancelRequest
        opens one too)."""
        address = conn._protocol.transport.get_extra_info("sockname")  # type: ignore[attr-defined]
        return next(link for link in self.links if link.client_address == address)

    def arm_next(self, *faults: Fault) -> None:
        """Arms ``faults`` on the next link accepted, counting from its first byte."""
        self._next = list(faults)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b""
        if not self.cancels:
            # The length and the code of the first message: 80877102 is a CancelRequest.
            with contextlib.suppress(asyncio.IncompleteReadError, OSError):
                head = await reader.readexactly(8)
            if len(head) < 8 or int.from_bytes(head[4:], "big") == _CANCEL_REQUEST_CODE:
                writer.close()
                return
        try:
            server = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        if head:
            server[1].write(head)
        link = Link((reader, writer), server)
        faults, self._next = self._next, []
        for fault in faults:
            link.arm(fault)
        self.links.append(link)

    async def backends_gone(self) -> None:
        """Waits until the server has closed every link whose client is gone."""
        await asyncio.gather(*(link.backend_gone.wait() for link in self.links if link.severed))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(link.close() for link in self.links))
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
