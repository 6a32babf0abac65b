"""Several hosts, as libpq tries them: a real primary and streaming standby for every
target_session_attrs value, a standby refusing connections (57P03), dead hosts (a closed
port and an address that never answers) with connect_timeout and the overall timeout,
load_balance_hosts, hostaddr, and the TCP keepalive settings."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import pgoxide
import pytest
from pgoxide import establish, exceptions
from pgoxide.cluster import Cluster


@pytest.fixture(scope="module")
def primary() -> Iterator[Cluster]:
    with Cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def standby(primary: Cluster) -> Iterator[Cluster]:
    """A hot standby streaming from ``primary`` (pg_basebackup -R)."""
    cluster = primary.make_standby()
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="module")
def cold_standby(primary: Cluster) -> Iterator[Cluster]:
    """A standby with hot_standby off: it answers every connection with 57P03."""
    cluster = primary.make_standby(settings={"hot_standby": "off"})
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose SYNs go unanswered: its listen queue is full and never drained, so a
    new connection neither succeeds nor fails until the client gives up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        fillers.append(s)
    try:
        yield port
    finally:
        for s in fillers:
            s.close()
        server.close()


async def _role(conn: pgoxide.Connection) -> str:
    return "standby" if await conn.fetchval("SELECT pg_is_in_recovery()") else "primary"


async def _connect(clusters: list[Cluster] | list[int], **kwargs: object) -> pgoxide.Connection:
    ports = [c if isinstance(c, int) else c.port for c in clusters]
    kwargs.setdefault("sslmode", "disable")
    return await pgoxide.connect(
        host=["127.0.0.1"] * len(ports), port=ports, user="postgres", **kwargs
    )


_EXPECTED = {
    # mode: (chosen with [primary, standby], chosen with [standby, primary])
    "any": ("primary", "standby"),
    "read-write": ("primary", "primary"),
    "read-only": ("standby", "standby"),
    "primary": ("primary", "primary"),
    "standby": ("standby", "standby"),
    "prefer-standby": ("standby", "standby"),
}


@pytest.mark.parametrize("mode", list(_EXPECTED))
async def test_target_session_attrs(primary, standby, mode):
    chosen = []
    for order in ([primary, standby], [standby, primary]):
        conn = await _connect(order, target_session_attrs=mode)
        chosen.append(await _role(conn))
        await conn.close()
    assert tuple(chosen) == _EXPECTED[mode]


async def test_prefer_standby_falls_back_to_any(primary, closed_port):
    conn = await _connect([closed_port, primary], target_session_attrs="prefer-standby")
    assert await _role(conn) == "primary"
    await conn.close()


@pytest.mark.parametrize(
    ("mode", "message"),
    [("standby", "server is not in hot standby mode"), ("read-only", "session is not read-only")],
)
async def test_no_host_of_the_wanted_kind(primary, mode, message):
    with pytest.raises(exceptions.TargetServerAttributeNotMatched, match=message):
        await _connect([primary], target_session_attrs=mode)
    with pytest.raises(exceptions.TargetServerAttributeNotMatched) as info:
        await _connect([primary, primary], target_session_attrs=mode)
    assert str(info.value).count(message) == 2


async def test_read_only_follows_default_transaction_read_only(primary, standby):
    # A primary whose sessions are read-only by default counts as read-only.
    read_only = {"server_settings": {"default_transaction_read_only": "on"}}
    conn = await _connect([primary, standby], target_session_attrs="read-only", **read_only)
    assert await _role(conn) == "primary"
    await conn.close()
    with pytest.raises(exceptions.TargetServerAttributeNotMatched, match="session is read-only"):
        await _connect([primary], target_session_attrs="read-write", **read_only)


async def test_cannot_connect_now_moves_to_the_next_host(primary, cold_standby):
    conn = await _connect([cold_standby, primary])
    assert await _role(conn) == "primary"
    await conn.close()
    with pytest.raises(exceptions.CannotConnectNowError):
        await _connect([cold_standby])


async def test_a_refused_host_first(primary, closed_port):
    conn = await _connect([closed_port, primary])
    assert await _role(conn) == "primary"
    await conn.close()


async def test_a_silent_host_first_with_connect_timeout(primary, silent_port):
    conn = await _connect([silent_port, primary], connect_timeout=1)
    assert await _role(conn) == "primary"
    await conn.close()


async def test_the_overall_timeout_bounds_everything(silent_port):
    with pytest.raises(asyncio.TimeoutError):
        await _connect([silent_port, silent_port], timeout=0.5)


async def test_every_failure_is_listed(cold_standby, closed_port, silent_port):
    with pytest.raises(exceptions.ConnectionFailedError) as info:
        await _connect([closed_port, cold_standby, silent_port], connect_timeout=1)
    error = info.value
    assert isinstance(error, OSError)
    assert [where for where, _ in error.attempts] == [
        f'connection to server at "127.0.0.1", port {port}'
        for port in (closed_port, cold_standby.port, silent_port)
    ]
    message = str(error)
    assert "could not connect to any host" in message
    assert "not accepting connections" in message  # the 57P03
    assert "timeout expired" in message


async def test_an_authentication_failure_ends_the_attempt(primary, pg_cluster, pg_roles):
    # The role exists only on the second server: libpq does not try it after the first
    # refused the role.
    with pytest.raises(exceptions.InvalidAuthorizationSpecificationError, match="does not exist"):
        await pgoxide.connect(
            host=["127.0.0.1", "127.0.0.1"],
            port=[primary.port, pg_cluster.port],
            user=pg_roles.trust,
            dbname="postgres",
            sslmode="disable",
        )
    conn = await pgoxide.connect(
        host="127.0.0.1", port=pg_cluster.port, user=pg_roles.trust, dbname="postgres"
    )
    await conn.close()


async def test_load_balance_hosts(primary, standby):
    async def roles(**kwargs: object) -> set[str]:
        seen = set()
        for _ in range(40):
            conn = await _connect([primary, standby], **kwargs)
            seen.add(await _role(conn))
            await conn.close()
        return seen

    assert await roles(load_balance_hosts="disable") == {"primary"}
    # Both orders occur (all 40 the same by chance: 2**-39).
    assert await roles(load_balance_hosts="random") == {"primary", "standby"}


async def test_hostaddr_and_unresolvable_names(primary):
    # hostaddr is used as given: the names need no DNS at all.
    conn = await pgoxide.connect(
        host="db.invalid", hostaddr="127.0.0.1", port=primary.port, user="postgres"
    )
    await conn.close()
    # A name that does not resolve moves on to the next host.
    conn = await pgoxide.connect(
        host=["db.invalid", "127.0.0.1"], port=primary.port, user="postgres"
    )
    assert await _role(conn) == "primary"
    await conn.close()


def _sockopt(conn: pgoxide.Connection, level: int, name: int) -> int:
    sock = conn._protocol.transport.get_extra_info("socket")
    return int(sock.getsockopt(level, name))


async def test_keepalives_and_tcp_user_timeout(primary):
    conn = await pgoxide.connect(
        primary.dsn(),
        keepalives_idle=7,
        keepalives_interval=3,
        keepalives_count=4,
        tcp_user_timeout=9000,
    )
    try:
        assert _sockopt(conn, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert _sockopt(conn, socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
        assert _sockopt(conn, socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
        assert _sockopt(conn, socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
        assert _sockopt(conn, socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 9000
    finally:
        await conn.close()
    conn = await pgoxide.connect(primary.dsn(), keepalives=0)
    try:
        assert _sockopt(conn, socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", list(_EXPECTED))
async def test_servers_that_do_not_report_their_state_are_asked(primary, standby, mode):
    # PostgreSQL 14+ reports in_hot_standby and default_transaction_read_only; for older
    # servers libpq asks with SHOW transaction_read_only or pg_is_in_recovery(). Run that
    # path against the real servers by withholding the reported values.
    for cluster in (primary, standby):
        conn = await _connect([cluster])
        try:
            asked = await establish._session_mismatch(conn, mode, {})
            told = await establish._session_mismatch(conn, mode)
        finally:
            await conn.close()
        assert asked == told


def test_session_verdicts():
    standby = {"in_hot_standby": "on", "default_transaction_read_only": "off"}
    primary = {"in_hot_standby": "off", "default_transaction_read_only": "off"}
    assert establish.session_verdict("primary", standby) == "server is in hot standby mode"
    assert establish.session_verdict("standby", primary) == "server is not in hot standby mode"
    assert establish.session_verdict("read-write", standby) == "session is read-only"
    assert establish.session_verdict("read-only", primary) == "session is not read-only"
    assert establish.session_verdict("any", {}) is None
    with pytest.raises(LookupError, match="SHOW transaction_read_only"):
        establish.session_verdict("read-only", {"in_hot_standby": "off"})
    with pytest.raises(LookupError, match="pg_is_in_recovery"):
        establish.session_verdict("primary", {})
