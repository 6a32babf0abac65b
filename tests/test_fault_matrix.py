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

import pgoxide
import pytest
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
    try:
        value = await asyncio.wait_for(
            conn.fetchval("SELECT 41 + 1", timeout=STALL_TIMEOUT), HANG_GUARD
        )
    except Exception as error:
        assert not outcome_of(error).startswith("internal"), f"{label}, then {error!r}"
        assert conn.is_closed(), f"{label}, then {error!r} left the connection open"
        return "closed"
    assert value == 42, label
    return "usable"


async def run_case(
    proxy: FaultProxy, admin: pgoxide.Connection, pg_roles, op: Operation, fault: Fault, table: str
) -> str:
    """Runs ``op`` with ``fault`` armed right after connecting; returns the outcome."""
    if op.writes is not None:
        await admin.execute(f"TRUNCATE {table}")
    # A flipped length byte can leave either side waiting for bytes that never come: a stall.
    stall = fault.kind == "flip" or (fault.kind == "stall" and fault.seconds is None)
    conn = await _connect(proxy, pg_roles, STALL_TIMEOUT if stall else TIMEOUT)
    proxy.links[-1].arm(fault)
    case = Case(conn, admin, table)
    error: BaseException | None = None
    try:
        await asyncio.wait_for(op.run(case), HANG_GUARD)
    except Exception as e:
        error = e
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
    link = proxy.links[-1]
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
