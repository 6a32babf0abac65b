"""A dead peer, with real kernel networking: the server's host vanishes and every packet to
it is silently dropped, so nothing (no RST, no ICMP, no end-of-file) tells the client.

The fault proxy (tests/support/faultproxy.py) cannot show this: it still acknowledges every
byte at the TCP level. Here the client's packets cross a veth pair into a network namespace
and the namespace's end of the pair is set down: the frames are dropped without a word to
the sender, and TCP retransmits until it gives up. Only the kernel's own detectors
(``tcp_user_timeout``, keepalives) or the caller's timeout end the wait.

Topology (one per test, see :class:`DeadPath`)::

    client (this process) --> 10.213.X.2:P  tcpforward.py inside namespace pgxdp<pid>x<n>
                          --> 10.213.X.1:Q  tcpforward.py on the host
                          --> 127.0.0.1:<pg_cluster.port>

The host keeps a permanent neighbour (ARP) entry for 10.213.X.2, so a dead link is not
reported as "no route to host" when the entry would otherwise be flushed: even a new
connection's SYNs vanish, as they do when a remote host dies behind a router.

Needs root and ``ip netns`` (iproute2); skipped otherwise, and the skip is listed among the
missing components at the end of the run (conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pgoxide
import pytest
from pgoxide import exceptions

HANG_GUARD = 60  # no call may get anywhere near this: reaching it is a hang

_T = TypeVar("_T")
_FORWARDER = Path(__file__).parent / "support" / "tcpforward.py"
_SKIP = "root and ip netns (iproute2) are needed to drop packets silently"
_counter = itertools.count()


async def guarded(aw: Awaitable[_T], what: str) -> _T:
    """Awaits ``aw`` and returns its result (or raises its error), failing the test if it has
    not ended within HANG_GUARD."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=HANG_GUARD)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        pytest.fail(f"hang: {what} did not end within {HANG_GUARD} s")
    return task.result()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _sweep_stale_namespaces() -> None:
    """Deletes the namespaces of earlier runs whose process is gone (killed before teardown)."""
    listed = _ip("netns", "list", check=False).stdout
    for name in re.findall(r"^(pgxdp(\d+)x\d+)", listed, re.MULTILINE):
        ns, pid = name
        if not Path(f"/proc/{pid}").exists():
            _ip("netns", "del", ns, check=False)


def _free_subnet(seed: int) -> int:
    """An index i such that 10.213.(i // 64).(i % 64 * 4)/30 is on no interface here."""
    used = set(re.findall(r"inet 10\.213\.(\d+)\.(\d+)/", _ip("-4", "-o", "addr").stdout))
    taken = {int(a) * 64 + int(b) // 4 for a, b in used}
    for step in range(64 * 256):
        i = (seed + step) % (64 * 256)
        if i not in taken:
            return i
    raise RuntimeError("no free /30 in 10.213.0.0/16")


class DeadPath:
    """The client's path to the session's server through a namespace, which :meth:`kill`
    turns into a dead peer and :meth:`restore` brings back."""

    def __init__(self) -> None:
        pid, n = os.getpid(), next(_counter)
        self.ns = f"pgxdp{pid}x{n}"
        self.host_dev = f"dph{pid}n{n}"
        self.ns_dev = f"dpn{pid}n{n}"
        i = _free_subnet(pid * 7 + n)
        prefix = f"10.213.{i // 64}.{i % 64 * 4}"
        self.host_ip = prefix.rsplit(".", 1)[0] + f".{i % 64 * 4 + 1}"
        self.ns_ip = prefix.rsplit(".", 1)[0] + f".{i % 64 * 4 + 2}"
        self.port = 0  # where the client connects, on ns_ip
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self, server_port: int) -> None:
        ns, host_dev, ns_dev = self.ns, self.host_dev, self.ns_dev
        _ip("netns", "add", ns)
        _ip("link", "add", host_dev, "type", "veth", "peer", "name", ns_dev)
        _ip("link", "set", ns_dev, "netns", ns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", host_dev)
        _ip("link", "set", host_dev, "up")
        _ip("-n", ns, "addr", "add", f"{self.ns_ip}/30", "dev", ns_dev)
        _ip("-n", ns, "link", "set", ns_dev, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        # Without a permanent entry the host flushes its ARP entry when the link goes down,
        # and every send fails at once with EHOSTUNREACH: not a silent drop.
        mac = _ip("-n", ns, "link", "show", ns_dev).stdout
        lladdr = re.search(r"link/ether ([0-9a-f:]+)", mac)
        assert lladdr is not None, mac
        _ip(
            "neigh", "replace", self.ns_ip, "lladdr", lladdr[1], "dev", host_dev, "nud", "permanent"
        )
        # The namespace's forwarder reaches the server through one on the host's end.
        host_port = await self._forwarder([], self.host_ip, "127.0.0.1", server_port)
        self.port = await self._forwarder(
            ["ip", "netns", "exec", ns], self.ns_ip, self.host_ip, host_port
        )

    async def _forwarder(self, prefix: list[str], listen: str, to_host: str, to_port: int) -> int:
        process = await asyncio.create_subprocess_exec(
            *prefix,
            sys.executable,
            str(_FORWARDER),
            listen,
            "0",
            to_host,
            str(to_port),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._processes.append(process)
        assert process.stdout is not None
        line = await guarded(process.stdout.readline(), "the forwarder's start")
        match = re.fullmatch(rb"listening \S+ (\d+)\n", line)
        assert match is not None, f"forwarder did not start: {line!r}"
        return int(match[1])

    def kill(self) -> None:
        """From now on every packet between the client and the namespace is dropped, with no
        error to either side."""
        _ip("-n", self.ns, "link", "set", self.ns_dev, "down")

    def restore(self) -> None:
        _ip("-n", self.ns, "link", "set", self.ns_dev, "up")

    def dsn(self, pg_roles: Any, **settings: object) -> str:
        options = {
            "host": self.ns_ip,
            "port": self.port,
            "user": pg_roles.trust,
            "dbname": pg_roles.database,
            "sslmode": "disable",
            "connect_timeout": 10,
            **settings,
        }
        return " ".join(f"{key}={value}" for key, value in options.items())

    async def close(self) -> None:
        for process in self._processes:
            if process.returncode is None:
                process.kill()
            await process.wait()
        # The namespace's end of the pair goes with the namespace, and the host's with it;
        # deleting the host's end too covers a namespace that never got it.
        _ip("netns", "del", self.ns, check=False)
        _ip("link", "del", self.host_dev, check=False)


def _missing() -> str | None:
    """Why this machine cannot drop packets here, or None (checked before any server starts)."""
    if os.geteuid() != 0:
        return f"{_SKIP}: not running as root"
    if shutil.which("ip") is None:
        return f"{_SKIP}: iproute2 is not installed"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _require_netns() -> None:
    probe = f"pgxdp{os.getpid()}xprobe"
    added = _ip("netns", "add", probe, check=False)
    if added.returncode != 0:
        pytest.skip(f"{_SKIP}: ip netns add failed: {added.stderr.strip()}")
    _ip("netns", "del", probe, check=False)


@pytest.fixture
async def path(pg_cluster) -> AsyncIterator[DeadPath]:
    _require_netns()
    _sweep_stale_namespaces()
    dead = DeadPath()
    try:
        await dead.start(pg_cluster.port)
        yield dead
    finally:
        await dead.close()


async def _termination(conn: pgoxide.Connection) -> asyncio.Event:
    ended = asyncio.Event()
    conn.add_termination_listener(lambda _conn: ended.set())
    return ended


async def test_tcp_user_timeout_ends_a_call_without_timeout(path: DeadPath, pg_roles) -> None:
    """``tcp_user_timeout`` (ms) bounds how long sent data may stay unacknowledged: a call
    with no timeout of its own, on a connection whose peer died, fails with the connection
    lost (the kernel's ETIMEDOUT) instead of waiting for the OS's retransmissions to run out,
    and the connection is closed."""
    conn = await pgoxide.connect(path.dsn(pg_roles, keepalives=0, tcp_user_timeout=1000))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        path.kill()
        with pytest.raises(exceptions.ConnectionDoesNotExistError) as caught:
            await guarded(conn.fetchval("SELECT 1"), "fetchval on a dead peer")
        assert isinstance(caught.value.__cause__, TimeoutError), repr(caught.value.__cause__)
        assert conn.is_closed()
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await guarded(conn.fetchval("SELECT 1"), "a call on the closed connection")
    finally:
        conn.terminate()


async def test_keepalives_end_an_idle_connection(path: DeadPath, pg_roles) -> None:
    """Keepalives (``keepalives_idle``/``_interval`` in seconds, ``_count`` probes) detect a
    dead peer on a connection that sends nothing: the kernel ends it, the termination
    listeners are called, and the next call fails with the connection lost."""
    conn = await pgoxide.connect(
        path.dsn(pg_roles, keepalives_idle=1, keepalives_interval=1, keepalives_count=1)
    )
    try:
        ended = await _termination(conn)
        assert await conn.fetchval("SELECT 1") == 1
        path.kill()
        await guarded(ended.wait(), "the termination listener")
        assert conn.is_closed()
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await guarded(conn.fetchval("SELECT 1"), "a call on the ended connection")
    finally:
        conn.terminate()


async def test_without_detection_a_timeout_bounds_each_call(path: DeadPath, pg_roles) -> None:
    """With neither keepalives nor ``tcp_user_timeout``, nothing tells the client that the
    peer died: a call without a timeout waits until the OS gives up retransmitting (on Linux
    ``net.ipv4.tcp_retries2`` = 15, about 15 minutes). A call's ``timeout`` (or the
    connection's ``command_timeout``) bounds it: the call raises TimeoutError; the query is
    then abandoned and a CancelRequest is attempted over a new connection to the same dead
    address (whose SYNs vanish too); the next call, whose deadline passes while that is
    unanswered, closes the connection instead of hanging; and closing it does not hang."""
    conn = await pgoxide.connect(path.dsn(pg_roles, keepalives=0))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        path.kill()
        with pytest.raises(asyncio.TimeoutError):
            await guarded(conn.fetchval("SELECT 1", timeout=0.5), "fetchval(timeout=0.5)")
        # Its turn never comes (the abandoned query is unanswered): it times out, and ends
        # the connection rather than let every later call wait too.
        with pytest.raises(asyncio.TimeoutError):
            await guarded(conn.fetchval("SELECT 1", timeout=0.5), "the next fetchval")
        assert conn.is_closed()
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await guarded(conn.fetchval("SELECT 1"), "a call on the closed connection")
        await guarded(conn.close(), "close()")
    finally:
        conn.terminate()


async def test_close_is_bounded_on_a_dead_peer(path: DeadPath, pg_roles) -> None:
    """``close(timeout=)`` with a query in flight first cancels it, over a new connection to
    the same (dead) address: that attempt counts against the close's timeout too."""
    conn = await pgoxide.connect(path.dsn(pg_roles, keepalives=0))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        path.kill()
        query = asyncio.ensure_future(conn.fetchval("SELECT 1"))
        await asyncio.sleep(0)  # one pass of the loop: the query is written
        assert conn._protocol.in_flight, "the query should be in flight"
        await guarded(conn.close(timeout=1), "close(timeout=1)")
        assert conn.is_closed()
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await guarded(query, "the query in flight")
    finally:
        conn.terminate()


async def test_pool_replaces_a_connection_whose_peer_died(path: DeadPath, pg_roles) -> None:
    """A pooled connection with ``tcp_user_timeout`` whose peer dies: the pool call fails with
    the connection lost, the pool discards the connection, and once the path is back the next
    call succeeds on a new one."""
    dsn = path.dsn(pg_roles, keepalives=0, tcp_user_timeout=1000)
    async with pgoxide.create_pool(dsn, min_size=1, max_size=1) as pool:
        before = await guarded(pool.fetchval("SELECT pg_backend_pid()"), "the first call")
        path.kill()
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await guarded(pool.fetchval("SELECT 1"), "a pool call on a dead peer")
        path.restore()
        after = await guarded(pool.fetchval("SELECT pg_backend_pid()"), "the call after")
        assert after != before
