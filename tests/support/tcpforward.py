"""A minimal TCP forwarder, run as its own process (tests/test_dead_peer.py runs it inside a
network namespace, where the test process cannot bind)::

    python3 tcpforward.py LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT

Listens on ``LISTEN_HOST:LISTEN_PORT`` (port 0: any free port) and forwards each accepted
connection, both ways, to ``TO_HOST:TO_PORT``. Once listening it prints one line,
``listening HOST PORT``, so the caller knows the port and that connections are accepted.
It runs until killed or until its standard input ends (so it never outlives a caller that
gives it a pipe there and dies). An end-of-file on one side is passed on to the other; an error ends
both sides of that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.transport.abort()


async def _main(listen_host: str, listen_port: int, to_host: str, to_port: int) -> None:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(to_host, to_port)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        for w in (writer, up_writer):
            with contextlib.suppress(OSError):
                w.close()

    server = await asyncio.start_server(accept, listen_host, listen_port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host} {port}", flush=True)
    async with server:
        await server.serve_forever()


def _exit_at_end_of_stdin() -> None:
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    threading.Thread(target=_exit_at_end_of_stdin, daemon=True).start()
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
