"""The fault matrix: every operation kind, run through a fault-injecting proxy
(tests/support/faultproxy.py) that cuts, stalls, delays, trickles or corrupts the byte
stream at many points in either direction.

For every case:
- the call returns or raises within its timeout: nothing hangs (``HANG_GUARD`` catches it);
- what it raises is a named pgoxide error: the connection was lost, a ``ProtocolError`` for
  corrupt bytes, ``TimeoutError`` for a stall, or the server's own error, never a Python
  internal error;
- no data is lost or duplicated: a COPY, ``executemany``, pipeline or transaction cut midway
  committed all of its rows or none;
- the connection afterwards is either usable or closed, never half-used.

The outcomes are tallied per operation and fault and printed at the end of the run
("fault matrix" section, see conftest.py).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pgoxide
import pytest
from pgoxide import exceptions, replication
from support.faultops import OPERATIONS, Case, Operation, outcome_of
from support.faultproxy import Fault, FaultProxy
from support.faultreport import record_outcome

HANG_GUARD = 60  # no case may get anywhere near this: reaching it is a hang
STALL_TIMEOUT = 0.5  # the command timeout for cases whose stream stalls for good
TIMEOUT = 30  # the command timeout otherwise

_names = itertools.count()


def cut_points(size: int) -> list[int]:
    """Where to cut a stream of ``size`` bytes: its start, its end and between."""
    points = {0, 1, 4, 5, size // 8, size // 4, size // 2, 3 * size // 4, size - 5, size - 1}
    return sorted(p for p in points if 0 <= p < size)


@pytest.fixture
async def proxy(pg_cluster) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", pg_cluster.port) as p:
        yield p


@pytest.fixture
async def admin(dsn) -> AsyncIterator[pgoxide.Connection]:
    c = await pgoxide.connect(dsn)
    try:
        yield c
    finally:
        await c.close()


async def _table(admin: pgoxide.Connection) -> str:
    name = f"fault_{next(_names)}"
    await admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    return name


async def _connect(proxy: FaultProxy, pg_roles, command_timeout: float) -> pgoxide.Connection:
    return await pgoxide.connect(
        host="127.0.0.1",
        port=proxy.port,
        user=pg_roles.trust,
        database=pg_roles.database,
        sslmode="disable",
        command_timeout=command_timeout,
    )


async def _settle(conn: pgoxide.Connection, label: str) -> str:
    """After a failed call: the connection is closed, or usable, or (if the server never
    answers again) closed by the next call's deadline. Returns which."""
    if conn.is_closed():
        return "closed"
    error: BaseException | None = None
    try:
        value = await asyncio.wait_for(
            conn.fetchval("SELECT 41 + 1", timeout=STALL_TIMEOUT), HANG_GUARD
        )
    except Exception as e:
        error = e
    if error is None:
        assert value == 42, label
        return "usable"
    assert not outcome_of(error).startswith("internal"), f"{label}, then {error!r}"
    assert conn.is_closed(), f"{label}, then {error!r} left the connection open"
    return "closed"


async def run_case(
    proxy: FaultProxy, admin: pgoxide.Connection, pg_roles, op: Operation, fault: Fault, table: str
) -> str:
    """Runs ``op`` with ``fault`` armed right after connecting; returns the outcome."""
    if op.writes is not None:
        await admin.execute(f"TRUNCATE {table}")
    # A flipped length byte can leave either side waiting for bytes that never come: a stall.
    stall = fault.kind == "flip" or (fault.kind == "stall" and fault.seconds is None)
    conn = await _connect(proxy, pg_roles, STALL_TIMEOUT if stall else TIMEOUT)
    link = proxy.link_of(conn)
    link.arm(fault)
    case = Case(conn, admin, table)
    error: BaseException | None = None
    try:
        await asyncio.wait_for(op.run(case), HANG_GUARD)
    except Exception as e:
        error = e
    assert link.fired, f"{op.name} under {fault}: the fault was not reached"
    outcome = outcome_of(error)
    assert not outcome.startswith("internal"), f"{op.name} under {fault}: {outcome}"
    if outcome == "ok" and case.altered:
        # Only a flipped byte may change a value and still be accepted.
        assert fault.kind == "flip", f"{op.name} under {fault} returned wrong data"
        outcome = "ok, value altered"
    state = (
        await _settle(conn, f"{op.name} under {fault}: {outcome}") if outcome != "ok" else "usable"
    )
    conn.terminate()
    # The backend can no longer commit anything once it has closed its socket.
    await asyncio.wait_for(proxy.backends_gone(), HANG_GUARD)
    if op.writes is not None:
        count = await admin.fetchval(f"SELECT count(*) FROM {table}")
        assert count in (0, op.writes), f"{op.name} under {fault}: {count} of {op.writes} rows"
        if outcome == "ok":
            assert count == op.writes
    outcome = f"{outcome} → {state}" if outcome != "ok" else outcome
    record_outcome(op.name, fault, outcome)
    return outcome


async def _measure(
    proxy: FaultProxy, admin, pg_roles, op: Operation, table: str
) -> tuple[int, int]:
    """The bytes ``op`` sends and receives when nothing goes wrong."""
    if op.writes is not None:
        await admin.execute(f"TRUNCATE {table}")
    conn = await _connect(proxy, pg_roles, TIMEOUT)
    link = proxy.link_of(conn)
    up, down = link.up.count, link.down.count
    case = Case(conn, admin, table)
    await op.run(case)
    assert not case.altered
    sizes = link.up.count - up, link.down.count - down
    await conn.close()
    return sizes


def _faults(up: int, down: int) -> list[Fault]:
    faults = [Fault("cut", "up", p) for p in cut_points(up)]
    faults += [Fault("cut", "down", p) for p in cut_points(down)]
    faults += [Fault("flip", "up", p) for p in cut_points(up)]
    faults += [Fault("flip", "down", p) for p in cut_points(down)]
    faults += [
        Fault("stall", "up", up // 2),
        Fault("stall", "down", down // 2),
        Fault("stall", "up", up // 2, seconds=0.05),
        Fault("stall", "down", down // 2, seconds=0.05),
        Fault("delay", "up", seconds=0.002),
        Fault("delay", "down", seconds=0.002),
        Fault("trickle", "up"),
        Fault("trickle", "down", max(down - 300, 0)),
    ]
    return faults


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
async def test_operation_under_faults(proxy, admin, pg_roles, op):
    table = await _table(admin)
    up, down = await _measure(proxy, admin, pg_roles, op, table)
    outcomes = []
    for fault in _faults(up, down):
        outcomes.append(await run_case(proxy, admin, pg_roles, op, fault, table))
    # The faults that only slow the stream down change nothing.
    slow = [
        o
        for f, o in zip(_faults(up, down), outcomes)
        if f.kind in ("delay", "trickle") or (f.kind == "stall" and f.seconds)
    ]
    assert set(slow) == {"ok"}
    await admin.execute(f"DROP TABLE {table}")


# -- connecting and authenticating --------------------------------------------------------

# (role in pg_roles, TLS): every auth method the session cluster offers, with and without TLS.
_LOGINS = [
    ("trust", False),
    ("password", False),
    ("md5", False),
    ("scram", False),
    ("trust", True),
    ("password", True),
    ("md5", True),
    ("scram", True),  # SCRAM-SHA-256-PLUS: channel binding to the server's certificate
    ("cert", True),
]


def _login_kwargs(pg_roles, pg_certs, role: str, tls: bool) -> dict[str, object]:
    user = getattr(pg_roles, role)
    kwargs: dict[str, object] = {"user": user, "password": pg_roles.passwords.get(user)}
    kwargs["database"] = "postgres"
    if tls:
        # verify-ca, not verify-full: the client reaches the server through the proxy's
        # address, which the certificate does name (127.0.0.1), but the CA is what matters.
        kwargs |= {"sslmode": "verify-ca", "sslrootcert": str(pg_certs.ca_cert)}
        if role == "cert":
            kwargs |= {"sslcert": str(pg_certs.client_cert), "sslkey": str(pg_certs.client_key)}
    else:
        kwargs["sslmode"] = "disable"
    return kwargs


@pytest.mark.parametrize(
    ("role", "tls"), _LOGINS, ids=[f"{r}-{'tls' if t else 'plain'}" for r, t in _LOGINS]
)
async def test_connect_under_faults(proxy, pg_roles, pg_certs, role, tls):
    kwargs = _login_kwargs(pg_roles, pg_certs, role, tls)
    conn = await pgoxide.connect(host="127.0.0.1", port=proxy.port, **kwargs)
    link = proxy.link_of(conn)
    up, down = link.up.count, link.down.count
    await conn.close()
    label = f"connect {role} {'TLS' if tls else 'plain'}"
    slow = []
    for fault in _faults(up, down):
        stall = fault.kind == "flip" or (fault.kind == "stall" and fault.seconds is None)
        proxy.arm_next(fault)
        error: BaseException | None = None
        conn = None
        try:
            conn = await asyncio.wait_for(
                pgoxide.connect(
                    host="127.0.0.1",
                    port=proxy.port,
                    timeout=STALL_TIMEOUT if stall else TIMEOUT,
                    **kwargs,
                ),
                HANG_GUARD,
            )
        except Exception as e:
            error = e
        outcome = outcome_of(error)
        if isinstance(error, OSError):
            # While connecting, a connection lost or refused (TLS included) is an OSError,
            # as with asyncpg: ConnectionError, ssl.SSLError, ConnectionFailedError.
            outcome = type(error).__name__
        assert not outcome.startswith("internal"), f"{label} under {fault}: {outcome}"
        if conn is not None:
            # A connection that was made works.
            assert await conn.fetchval("SELECT 1", timeout=TIMEOUT) == 1
            conn.terminate()
        record_outcome(label, fault, outcome)
        if fault.kind in ("delay", "trickle") or (fault.kind == "stall" and fault.seconds):
            slow.append(outcome)
    assert set(slow) == {"ok"}
    await asyncio.wait_for(proxy.backends_gone(), HANG_GUARD)


# -- the pool -----------------------------------------------------------------------------


async def test_pool_under_faults(proxy, pg_roles):
    """A fault on a pooled connection fails that acquisition's call with a named error; the
    pool then replaces the connection and the next call succeeds. A fault while the pool
    opens a connection fails that acquire alone."""
    kwargs = {"user": pg_roles.trust, "database": pg_roles.database, "sslmode": "disable"}
    # min_size=0: the pool opens a connection only when a caller needs one, so a fault armed
    # for the next link meets the pool's own connect.
    pool = await pgoxide.create_pool(
        host="127.0.0.1",
        port=proxy.port,
        min_size=0,
        max_size=1,
        command_timeout=STALL_TIMEOUT,
        **kwargs,
    )

    async def pooled_link() -> Any:
        async with pool.acquire() as c:
            return proxy.link_of(c)

    try:
        assert await pool.fetchval("SELECT $1::int", 7) == 7  # prepared and cached from here on
        link = await pooled_link()
        up, down = link.up.count, link.down.count
        assert await pool.fetchval("SELECT $1::int", 7) == 7
        up, down = link.up.count - up, link.down.count - down
        for fault in _faults(up, down):
            assert await pool.fetchval("SELECT $1::int", 7) == 7  # as measured: cached
            link = await pooled_link()
            link.arm(fault)
            error: BaseException | None = None
            try:
                assert await asyncio.wait_for(pool.fetchval("SELECT $1::int", 7), HANG_GUARD) == 7
            except Exception as e:
                error = e
            assert link.fired, f"pool call under {fault}: the fault was not reached"
            outcome = outcome_of(error)
            assert not outcome.startswith("internal"), f"pool call under {fault}: {outcome}"
            record_outcome("pool acquire + call", fault, outcome)
            # Whatever happened, the pool goes on: a new connection if the old one was lost.
            second = await asyncio.wait_for(pool.fetchval("SELECT 2", timeout=TIMEOUT), HANG_GUARD)
            assert second == 2
        # A fault while the pool connects: that acquire fails (or succeeds), the next works.
        probe = await pgoxide.connect(host="127.0.0.1", port=proxy.port, **kwargs)
        login = proxy.link_of(probe)
        login_up, login_down = login.up.count, login.down.count
        await probe.close()
        for fault in [Fault("cut", "up", p) for p in cut_points(login_up)] + [
            Fault("cut", "down", p) for p in cut_points(login_down)
        ]:
            # Every connection expired: the next call needs a new one, and meets the fault
            # (the pool may then try again for its caller, on a link of its own).
            await pool.expire_connections()
            first = len(proxy.links)
            proxy.arm_next(fault)
            error = None
            try:
                await asyncio.wait_for(pool.fetchval("SELECT 1"), HANG_GUARD)
            except Exception as e:
                error = e
            outcome = outcome_of(error)
            if isinstance(error, OSError):
                outcome = type(error).__name__  # connecting: asyncpg's OSErrors
            assert not outcome.startswith("internal"), f"pool connect under {fault}: {outcome}"
            assert proxy.links[first].fired, f"pool connect under {fault}: not reached"
            if error is None:
                outcome = "ok (the pool connected again for its caller)"
            record_outcome("pool opening a connection", fault, outcome)
            assert await asyncio.wait_for(pool.fetchval("SELECT 3"), HANG_GUARD) == 3
    finally:
        await pool.close()


# -- logical replication ------------------------------------------------------------------

TRANSACTIONS = 10


async def _consume(stream: Any, seen: list[int], acked: set[int], last: int) -> None:
    """Reads changes into ``seen`` and acknowledges each transaction (its ids into
    ``acked``) until the one inserting ``last``."""
    pending: list[int] = []
    async for item in stream:
        message = getattr(item, "message", None)
        if isinstance(message, replication.Insert):
            pending.append(message.new["id"])
        elif isinstance(message, replication.Commit):
            seen.extend(pending)
            stream.ack(message.end_lsn)
            acked.update(pending)
            if last in pending:
                return
            pending = []


async def test_replication_under_faults(proxy, admin, pg_cluster, pg_roles):
    """A stream cut or corrupted midway fails with a named error; started again from the
    slot, it delivers every change not acknowledged before the fault, at least once."""
    table = await _table(admin)
    await admin.execute(f"CREATE PUBLICATION pub_{table} FOR TABLE {table}")
    kwargs = {"user": pg_roles.trust, "database": pg_roles.database, "sslmode": "disable"}
    direct = await replication.connect_replication(host="127.0.0.1", port=pg_cluster.port, **kwargs)
    options = {"proto_version": 1, "publication_names": f"pub_{table}"}
    first = 0

    async def case(fault: Fault | None) -> tuple[str, int]:
        """Returns the outcome and the bytes the server sent."""
        nonlocal first
        slot = f"slot_{table}_{first}"
        await direct.create_replication_slot(slot, snapshot="nothing")
        ids = list(range(first, first + TRANSACTIONS))
        first += TRANSACTIONS
        await admin.execute(
            "".join(f"BEGIN; INSERT INTO {table} VALUES ({i}, 'r'); COMMIT;" for i in ids)
        )
        rconn = await replication.connect_replication(host="127.0.0.1", port=proxy.port, **kwargs)
        link = proxy.link_of(rconn)
        before = link.down.count
        stream = await rconn.start_replication(slot, 0, options)
        if fault is not None:
            link.arm(fault)
        seen: list[int] = []
        acked: set[int] = set()
        error: BaseException | None = None
        try:
            # A replication stream has no command timeout (see the README): the consumer
            # bounds its own wait, which a byte flipped into a length can make endless.
            await asyncio.wait_for(_consume(stream, seen, acked, ids[-1]), STALL_TIMEOUT * 4)
        except Exception as e:
            error = e
        size = link.down.count - before
        rconn.terminate()
        await asyncio.wait_for(proxy.backends_gone(), HANG_GUARD)
        outcome = outcome_of(error)
        assert not outcome.startswith("internal"), f"replication under {fault}: {outcome}"
        if error is None:
            assert seen == ids, f"replication under {fault}: {seen}"
        else:
            # Started again from the slot: nothing acknowledged-and-confirmed is required,
            # nothing unacknowledged is missing.
            again: list[int] = []
            restarted = await replication.connect_replication(
                host="127.0.0.1", port=pg_cluster.port, **kwargs
            )
            stream = await restarted.start_replication(slot, 0, options)
            await asyncio.wait_for(_consume(stream, again, set(), ids[-1]), HANG_GUARD)
            await restarted.close()
            assert set(ids) - acked <= set(again), f"replication under {fault}: lost changes"
            assert set(seen) | set(again) == set(ids)
        await direct.drop_replication_slot(slot, wait=True)
        if fault is not None:
            record_outcome("replication stream", fault, outcome)
        return outcome, size

    try:
        _, down = await case(None)
        for fault in _faults(60, down):
            # Streaming, the client sends only a status update every status_interval (10 s),
            # none in a stream this short; a stall for good is the consumer's to bound.
            if (fault.kind == "stall" and fault.seconds is None) or fault.direction == "up":
                continue
            await case(fault)
    finally:
        await direct.close()


# -- what the matrix found, pinned ----------------------------------------------------------


async def test_an_atomic_pipeline_whose_commit_never_came_raises(proxy, admin, pg_roles):
    """The Sync of an atomic pipeline is its commit: when the server never gets it (here a
    corrupted byte makes it refuse the message and close), the block raises though every
    call's answer arrived, and nothing is committed. It used to report success."""
    table = await _table(admin)

    async def pipeline(conn: pgoxide.Connection) -> None:
        async with conn.pipeline(atomic=True) as p:
            for i in range(3):
                p.execute(f"INSERT INTO {table} VALUES ($1, 'p')", i)

    conn = await _connect(proxy, pg_roles, TIMEOUT)
    await pipeline(conn)  # the statement is prepared and cached from here on
    await admin.execute(f"TRUNCATE {table}")
    link = proxy.link_of(conn)
    before = link.up.count
    await pipeline(conn)
    sent = link.up.count - before  # Bind/Execute x3, then Sync (5 bytes)
    await admin.execute(f"TRUNCATE {table}")
    link.arm(Fault("flip", "up", sent - 5))
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await asyncio.wait_for(pipeline(conn), HANG_GUARD)
    assert conn.is_closed()
    await asyncio.wait_for(proxy.backends_gone(), HANG_GUARD)
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_a_refused_commit_does_not_leave_the_transaction_open(proxy, admin, pg_roles):
    """A COMMIT the server refuses without ending the transaction (here its text corrupted
    into invalid UTF-8) fails the block, which then rolls back: the connection is not left
    inside an aborted transaction."""
    table = await _table(admin)
    conn = await _connect(proxy, pg_roles, TIMEOUT)
    with pytest.raises(exceptions.CharacterNotInRepertoireError):
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {table} VALUES (1, 't')")
            # The next bytes out are Query("COMMIT"): type, length, then the C of COMMIT.
            proxy.link_of(conn).arm(Fault("flip", "up", 5))
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SELECT 1") == 1
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 0
    await conn.close()
