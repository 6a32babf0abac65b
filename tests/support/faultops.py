"""The operation kinds the fault matrices run, and how their outcomes are classified.

Each operation runs on ``Case.conn`` and checks its own result; one that writes puts exactly
``Operation.writes`` rows into ``Case.table`` (``id int PRIMARY KEY, v text``) when it
succeeds, so after a fault the table must hold all of them or none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pgoxide
from pgoxide import exceptions

__all__ = ["OPERATIONS", "ROWS", "Case", "Operation", "outcome_of"]

ROWS = 200


@dataclass
class Case:
    """One operation run against ``conn`` (through the proxy), checked with ``admin``."""

    conn: pgoxide.Connection
    admin: pgoxide.Connection
    table: str
    altered: bool = field(default=False)  # a flipped byte changed a value on the way


@dataclass(frozen=True)
class Operation:
    name: str
    run: Callable[[Case], Awaitable[None]]
    # Rows this operation writes into the case's table when it succeeds (None: it writes
    # nothing there); after a fault the table must hold all of them or none.
    writes: int | None = None


def _expected_rows() -> list[tuple[int, str]]:
    return [(i, f"row {i:04d} " + "x" * 40) for i in range(ROWS)]


# The rows of ``_expected_rows``, made by the server.
_QUERY = (
    "SELECT g, 'row ' || lpad(g::text, 4, '0') || ' ' || repeat('x', 40)"
    " FROM generate_series(0, $1 - 1) g"
)


def _check_rows(case: Case, rows: list[Any]) -> None:
    if [tuple(r) for r in rows] != _expected_rows():
        # Only a flipped byte inside a value can get here (the protocol has no checksum of
        # its own; TCP's protects real networks).
        case.altered = True


async def _query(case: Case) -> None:
    _check_rows(case, await case.conn.fetch(_QUERY, ROWS))


async def _prepared(case: Case) -> None:
    stmt = await case.conn.prepare(_QUERY)
    _check_rows(case, await stmt.fetch(ROWS))


async def _executemany(case: Case) -> None:
    await case.conn.executemany(f"INSERT INTO {case.table} VALUES ($1, $2)", _expected_rows())


async def _transaction(case: Case) -> None:
    async with case.conn.transaction():
        rows = _expected_rows()
        await case.conn.execute(f"INSERT INTO {case.table} VALUES ($1, $2)", *rows[0])
        await case.conn.executemany(f"INSERT INTO {case.table} VALUES ($1, $2)", rows[1:])


async def _pipeline(case: Case) -> None:
    rows = _expected_rows()
    async with case.conn.pipeline(atomic=True) as p:
        for row in rows:
            p.execute(f"INSERT INTO {case.table} VALUES ($1, $2)", *row)
        count = p.fetchval(f"SELECT count(*) FROM {case.table}")
    if await count != ROWS:
        case.altered = True


async def _listen(case: Case) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()
    channel = f"fault_{case.table}"
    await case.conn.add_listener(channel, lambda c, pid, ch, payload: got.put_nowait(payload))
    await case.admin.execute(f"NOTIFY {channel}, 'hello'")
    # The notification arrives before this query's answer, on the same stream.
    assert await case.conn.fetchval("SELECT 1") == 1
    if got.empty() or got.get_nowait() != "hello":
        case.altered = True


async def _cursor(case: Case) -> None:
    async with case.conn.transaction():
        rows = [r async for r in case.conn.cursor(_QUERY, ROWS, prefetch=30)]
    _check_rows(case, rows)


async def _stream(case: Case) -> None:
    _check_rows(case, [r async for r in case.conn.stream(_QUERY, ROWS, window=30)])


async def _copy_in(case: Case) -> None:
    await case.conn.copy_records_to_table(case.table, records=_expected_rows())


async def _copy_out(case: Case) -> None:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    await case.conn.copy_from_query(_QUERY, ROWS, output=sink, format="csv")
    text = b"".join(chunks).decode("utf-8", "replace")
    if text != "".join(f"{i},{v}\n" for i, v in _expected_rows()):
        case.altered = True


OPERATIONS = [
    Operation("query", _query),
    Operation("prepared", _prepared),
    Operation("executemany", _executemany, writes=ROWS),
    Operation("transaction", _transaction, writes=ROWS),
    Operation("pipeline", _pipeline, writes=ROWS),
    Operation("listen", _listen),
    Operation("cursor", _cursor),
    Operation("stream", _stream),
    Operation("copy_in", _copy_in, writes=ROWS),
    Operation("copy_out", _copy_out),
]


# What a call may raise under a fault: the connection was lost, the bytes were corrupt, the
# deadline passed, or the server (or a decoder, for a corrupted value) reported an error.
_NAMED = (
    exceptions.ConnectionDoesNotExistError,
    exceptions.ConnectionFailedError,
    exceptions.ProtocolError,
    asyncio.TimeoutError,
    exceptions.PostgresError,
)


def outcome_of(error: BaseException | None) -> str:
    """``ok``, or the class of a named error; ``internal: ...`` fails the case."""
    if error is None:
        return "ok"
    if isinstance(error, _NAMED):
        return "TimeoutError" if isinstance(error, asyncio.TimeoutError) else type(error).__name__
    if isinstance(error, exceptions.InterfaceError) and any(
        what in str(error) for what in ("incorrect server signature", "nonce mismatch")
    ):
        # A corrupted SCRAM exchange fails the server's proof, as a forged one would.
        return "InterfaceError (SCRAM proof)"
    return f"internal: {error!r}"
