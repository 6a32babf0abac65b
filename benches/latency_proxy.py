"""A local TCP proxy that adds a fixed delay to every chunk, in each direction.

    python benches/latency_proxy.py --upstream-host HOST --upstream-port PORT [--delay-ms 2]

It listens on 127.0.0.1 (loopback only) on a free port, prints ``port N`` on stdout, and
forwards every accepted connection to the upstream server.  Each chunk read from one side
is written to the other ``--delay-ms`` milliseconds after it was read, in order: every
direction of every connection has a queue of (deadline, chunk) and one timer for the head
of the queue, so chunks read 0.1 ms apart leave 0.1 ms apart, each late by the delay (a
sleep per chunk would add the delays up instead).  A round trip through it therefore takes
twice the delay more than a direct one, however many requests are in flight, plus the time
the proxy takes to wake up and copy a chunk (about 0.1 ms a hop on a 2-core machine).

The loop uses ``selectors.SelectSelector``: the epoll and poll selectors round timeouts up to
whole milliseconds (and uvloop's timers count milliseconds), which would add up to a
millisecond to every delay and bunch chunks together; select waits to the microsecond.

It runs until SIGTERM or SIGINT, or with ``--exit-on-stdin-eof`` until its standard input
closes, so that it ends with the process that started it even if that one is killed.
:class:`LatencyProxy` starts it that way as a child process (so its work is neither on the
benchmark's event loop nor in its CPU time) and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import TracebackType

__all__ = ["LISTEN_HOST", "LatencyProxy"]

#: The only address the proxy listens on.
LISTEN_HOST = "127.0.0.1"


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; what it reads goes to ``out``, delayed."""

    def __init__(self, out: _Delayed, inbound: _Delayed, open_sides: set[_Side]) -> None:
        self.out = out
        #: The direction that writes to this socket (its source is paused while this
        #: socket's write buffer is full).
        self.inbound = inbound
        self.open_sides = open_sides
        self.transport: asyncio.Transport | None = None
        out.source = inbound.dest = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.open_sides.add(self)

    def data_received(self, data: bytes) -> None:
        self.out.push(data)

    def eof_received(self) -> bool:
        return False  # close this socket; connection_lost passes the end on

    def connection_lost(self, exc: Exception | None) -> None:
        self.open_sides.discard(self)
        self.out.push(None)

    def pause_writing(self) -> None:
        self.inbound.pause_source()

    def resume_writing(self) -> None:
        self.inbound.resume_source()


class _ClientSide(_Side):
    """The accepted socket: connects upstream, and reads nothing until that is done."""

    def __init__(
        self, out: _Delayed, inbound: _Delayed, open_sides: set[_Side], upstream: tuple[str, int]
    ) -> None:
        super().__init__(out, inbound, open_sides)
        self.upstream = upstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Leave the client's bytes in the kernel until there is somewhere to send them.
        assert self.transport is not None
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            _, server = await loop.create_connection(
                lambda: _Side(self.inbound, self.out, self.open_sides), *self.upstream
            )
        except OSError:
            self.transport.close()
            return
        if not self.transport.is_closing():
            self.transport.resume_reading()
        elif server.transport is not None:
            server.transport.close()  # the client left while we were connecting


class _Delayed:
    """One direction of a connection: chunks read by ``source`` written by ``dest``
    ``delay`` seconds after they were read.  ``None`` stands for the end of the stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self.delay = delay
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.source: _Side | None = None
        self.dest: _Side | None = None

    def push(self, data: bytes | None) -> None:
        self.queue.append((self.loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        queue = self.queue
        now = self.loop.time()
        # The timer was set for the head, so it is due even if the clock reads a hair early.
        _, data = queue.popleft()
        self._write(data)
        while queue and queue[0][0] <= now:
            _, data = queue.popleft()
            self._write(data)
        if queue:
            self.timer = self.loop.call_at(queue[0][0], self._flush)

    def _write(self, data: bytes | None) -> None:
        dest = self.dest.transport if self.dest is not None else None
        if dest is None or dest.is_closing():
            return
        if data is None:
            dest.close()  # sends what is buffered first
        else:
            dest.write(data)

    def pause_source(self) -> None:
        if self.source is not None and self.source.transport is not None:
            self.source.transport.pause_reading()

    def resume_source(self) -> None:
        if self.source is not None and self.source.transport is not None:
            self.source.transport.resume_reading()


async def _serve(upstream: tuple[str, int], delay: float, watch_stdin: bool) -> None:
    loop = asyncio.get_running_loop()
    open_sides: set[_Side] = set()

    def accept() -> _Side:
        to_server, to_client = _Delayed(loop, delay), _Delayed(loop, delay)
        return _ClientSide(to_server, to_client, open_sides, upstream)

    server = await loop.create_server(accept, LISTEN_HOST, 0)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)

    done = loop.create_future()

    def stop() -> None:
        if not done.done():
            done.set_result(None)

    def stdin_readable() -> None:
        try:
            if not os.read(stdin, 4096):
                stop()
        except OSError:
            stop()

    stdin = sys.stdin.fileno()
    if watch_stdin:
        loop.add_reader(stdin, stdin_readable)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await done
    finally:
        if watch_stdin:
            loop.remove_reader(stdin)
        server.close()
        for side in list(open_sides):
            if side.transport is not None:
                side.transport.abort()


def _reduce_timer_slack() -> None:
    """Ask Linux to wake this process on time: by default a timed wait may end up to 50 us
    late (the timer slack), twice per round trip here."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_timerslack = 29
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_timerslack, 1, 0, 0, 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy until a signal (or, if asked, the end of stdin) stops it."""
    p = argparse.ArgumentParser(description="A local TCP proxy that delays every chunk.")
    p.add_argument("--upstream-host", required=True, help="the server's host")
    p.add_argument("--upstream-port", type=int, required=True, help="the server's port")
    p.add_argument(
        "--delay-ms",
        type=float,
        default=2.0,
        help="delay added to each chunk in each direction, in milliseconds (default: 2)",
    )
    p.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="also stop when standard input closes (how benches/run.py starts it)",
    )
    args = p.parse_args(argv)
    if args.delay_ms < 0:
        p.error("--delay-ms must not be negative")
    _reduce_timer_slack()
    # select() has microsecond timeouts; see the module docstring.
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        upstream = (args.upstream_host, args.upstream_port)
        loop.run_until_complete(_serve(upstream, args.delay_ms / 1e3, args.exit_on_stdin_eof))
    finally:
        loop.close()
    return 0


class LatencyProxy:
    """The proxy as a child process, for ``with``: ``port`` is where to connect.

    Leaving the block closes the child's stdin, which stops it; it also stops if this
    process dies without leaving the block."""

    def __init__(self, upstream_host: str, upstream_port: int, delay_ms: float = 2.0) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.delay_ms = delay_ms
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> LatencyProxy:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--upstream-host",
            self.upstream_host,
            "--upstream-port",
            str(self.upstream_port),
            "--delay-ms",
            repr(self.delay_ms),
            "--exit-on-stdin-eof",
        ]
        self._process = proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("port "):
            self._stop()
            raise RuntimeError(f"the latency proxy did not start (exit status {proc.returncode})")
        self.port = int(line.split()[1])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        proc, self._process = self._process, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
