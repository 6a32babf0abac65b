"""pgoxide in one file: connect, create, insert in a batch, query, listen, transact.

Uses $PGOXIDE_DSN when set (a libpq URI or key=value string); otherwise starts a throwaway
PostgreSQL cluster of its own and removes it afterwards.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pgoxide
from pgoxide.cluster import Cluster


async def main(dsn: str) -> None:
    conn = await pgoxide.connect(dsn)
    version = conn.get_server_version()
    pid = conn.get_server_pid()
    print(f"connected to PostgreSQL {version.major}.{version.minor} (backend pid {pid})")

    await conn.execute(
        """
        CREATE TEMP TABLE orders (
            id int PRIMARY KEY,
            customer text NOT NULL,
            amount numeric(10, 2) NOT NULL,
            placed timestamptz NOT NULL,
            tags text[]
        )
        """
    )
    now = datetime.now(timezone.utc)
    rows = [
        (i, f"customer-{i % 7}", Decimal(i) / 4, now, ["web"] if i % 2 else None)
        for i in range(1, 1001)
    ]
    await conn.executemany("INSERT INTO orders VALUES ($1, $2, $3, $4, $5)", rows)
    print(
        "inserted",
        await conn.fetchval("SELECT count(*) FROM orders"),
        "orders in one pipelined batch",
    )

    top = await conn.fetch(
        "SELECT customer, sum(amount) AS total, count(*) AS n FROM orders"
        " GROUP BY customer ORDER BY total DESC LIMIT $1",
        3,
    )
    for record in top:
        print(f"  {record['customer']}: {record['total']} over {record['n']} orders")

    try:
        await conn.execute("INSERT INTO orders VALUES ($1, 'dup', 1, now(), NULL)", 1)
    except pgoxide.UniqueViolationError as e:
        print(f"duplicate rejected: {e.sqlstate} {e.constraint_name!r}: {e.detail}")

    async with conn.transaction():
        await conn.execute("UPDATE orders SET amount = amount * 2 WHERE id = $1", 10)
    print("order 10 now costs", await conn.fetchval("SELECT amount FROM orders WHERE id = 10"))

    got: asyncio.Queue[str] = asyncio.Queue()
    await conn.add_listener("orders", lambda c, pid, channel, payload: got.put_nowait(payload))
    await conn.execute("SELECT pg_notify('orders', 'order 1001 placed')")
    print("notification:", await asyncio.wait_for(got.get(), 10))

    await conn.close()


@contextlib.contextmanager
def database() -> Iterator[str]:
    """$PGOXIDE_DSN, or a throwaway cluster for the duration of the example."""
    dsn = os.environ.get("PGOXIDE_DSN")
    if dsn:
        yield dsn
        return
    print("PGOXIDE_DSN is not set: starting a throwaway PostgreSQL cluster")
    with Cluster() as cluster:
        yield cluster.dsn(user="postgres")


if __name__ == "__main__":
    with database() as dsn:
        asyncio.run(main(dsn))
