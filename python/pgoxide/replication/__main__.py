"""Stream a publication's changes as JSON lines: ``python -m pgoxide.replication``.

    python -m pgoxide.replication "postgresql://repl@db/shop" --publication shop --slot cdc

One line per change on stdout (insert, update, delete, truncate, with the table, the row
values by column name and the commit's position and time); a progress line on stderr. Each
transaction is acknowledged once its lines are written and flushed, so the slot only moves
past what reached stdout: run the same command again and it resumes where it stopped
(at least once: the last transactions may come again). Without a DSN (and without
$PGOXIDE_DSN) it demonstrates itself on a throwaway cluster with a writer inserting rows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import decimal
import ipaddress
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any, TextIO

from .. import Record
from . import (
    UNCHANGED,
    Commit,
    Delete,
    Insert,
    Keepalive,
    Relation,
    StreamCommit,
    Truncate,
    Update,
    connect_replication,
)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pgoxide.replication",
        description="Stream a publication's changes as JSON lines.",
    )
    p.add_argument("dsn", nargs="?", help="connection string (default: $PGOXIDE_DSN, else a demo)")
    p.add_argument("--publication", default="pgoxide_demo", help="publication(s), comma-separated")
    p.add_argument("--slot", default="pgoxide_demo", help="replication slot name")
    p.add_argument("--create-slot", action="store_true", help="create the slot if missing")
    p.add_argument("--temporary", action="store_true", help="created slot is temporary")
    p.add_argument("--start", default="0/0", help="start position (default: where the slot is)")
    p.add_argument(
        "--proto-version",
        type=int,
        choices=[1, 2, 3, 4],
        help="pgoutput protocol version (default: the highest the server speaks)",
    )
    p.add_argument("--binary", action="store_true", help="ask for binary tuple data")
    p.add_argument("--status-interval", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--limit", type=int, default=0, help="stop after this many changes (0: never)")
    return p.parse_args(argv)


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID, datetime.timedelta)):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Record):
        return {k: _json_value(v) for k, v in value.items()}
    return str(value)


def _row(record: Record | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Column values by name, and the names of unchanged TOASTed columns (not sent)."""
    if record is None:
        return None, []
    values: dict[str, Any] = {}
    unchanged: list[str] = []
    for name, value in record.items():
        if value is UNCHANGED:
            unchanged.append(name)
        else:
            values[name] = value
    return values, unchanged


def _table(relation: Relation) -> dict[str, str]:
    return {"schema": relation.schema, "table": relation.table}


def change_line(change: Insert | Update | Delete | Truncate) -> dict[str, Any]:
    """The JSON object written for one change."""
    line: dict[str, Any] = {}
    if isinstance(change, Truncate):
        line["op"] = "truncate"
        line["tables"] = [_table(r) for r in change.relations]
        line["cascade"] = change.cascade
        line["restart_identity"] = change.restart_identity
    else:
        line["op"] = type(change).__name__.lower()
        line.update(_table(change.relation))
        if not isinstance(change, Delete):
            new, unchanged = _row(change.new)
            line["new"] = new
            if unchanged:
                line["unchanged_toast"] = unchanged
        if not isinstance(change, Insert):
            old, _ = _row(change.old)
            line["old"] = old
            line["old_kind"] = change.old_kind
    line["commit_lsn"] = str(change.commit_lsn) if change.commit_lsn is not None else None
    line["commit_time"] = change.commit_time.isoformat() if change.commit_time else None
    if change.xid is not None:
        line["xid"] = change.xid
    return line


class Progress:
    """Counts, and a line on stderr at most once a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.changes = 0
        self.transactions = 0
        self.acked = "0/0"
        self._last = 0.0

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 1.0:
            self._last = now
            print(
                f"pgoxide.replication: {self.changes} changes in {self.transactions} "
                f"transactions, acknowledged up to {self.acked}",
                file=self.out,
                flush=True,
            )


async def stream_changes(
    dsn: str | None,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    started: asyncio.Event | None = None,
) -> int:
    """Streams until interrupted or ``--limit`` changes; returns the number of changes.
    ``started`` is set once the stream runs."""
    # json and jsonb columns as JSON values in the JSON lines, not as strings of JSON.
    conn = await connect_replication(dsn, parse_json=True)
    progress = Progress(err)
    try:
        if args.create_slot:
            exists = await conn.fetchval(
                "SELECT count(*) FROM pg_catalog.pg_replication_slots "
                "WHERE slot_name = '" + args.slot.replace("'", "''") + "'"
            )
            if not exists:
                await conn.create_replication_slot(
                    args.slot, temporary=args.temporary, snapshot="nothing"
                )
        major = conn.get_server_version().major
        proto = args.proto_version or (
            4 if major >= 16 else 3 if major >= 15 else 2 if major >= 14 else 1
        )
        options: dict[str, object] = {
            "proto_version": proto,
            "publication_names": args.publication,
        }
        if args.binary:
            options["binary"] = True
        stream = await conn.start_replication(
            args.slot, args.start, options, status_interval=args.status_interval
        )
        if started is not None:
            started.set()
        async for item in stream:
            if isinstance(item, Keepalive):
                progress.report()
                continue
            message = item.message
            if isinstance(message, (Insert, Update, Delete, Truncate)):
                out.write(json.dumps(change_line(message), default=_json_value) + "\n")
                progress.changes += 1
            elif isinstance(message, (Commit, StreamCommit)):
                # The transaction's lines are out: only now may the slot move past it.
                out.flush()
                end = message.end_lsn
                if end is not None:  # always set on these two; None only types the field
                    stream.ack(end)
                    progress.acked = str(end)
                progress.transactions += 1
                if args.limit and progress.changes >= args.limit:
                    await stream.stop()
                    break
            progress.report()
        progress.report(force=True)
        return progress.changes
    finally:
        await conn.close()


async def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """A throwaway cluster, a table, a publication and a writer; stream what it writes."""
    import pgoxide
    from pgoxide.cluster import Cluster

    print("pgoxide.replication: no DSN, starting a throwaway cluster for a demo", file=err)
    with Cluster(settings={"wal_level": "logical"}) as cluster:
        dsn = cluster.dsn()
        setup = await pgoxide.connect(dsn)
        await setup.execute(
            "CREATE TABLE demo_orders (id serial PRIMARY KEY, item text, qty int, "
            "price numeric(10,2), placed timestamptz DEFAULT now());"
            f"CREATE PUBLICATION {args.publication} FOR TABLE demo_orders"
        )
        args.create_slot = True
        args.temporary = True
        args.limit = args.limit or 12

        async def writer() -> None:
            for i in range(1, 5):
                async with setup.transaction():
                    await setup.executemany(
                        "INSERT INTO demo_orders (item, qty, price) VALUES ($1, $2, $3)",
                        [(f"widget-{i}-{j}", j, decimal.Decimal(f"{i}.{j}5")) for j in range(3)],
                    )
            await setup.execute("UPDATE demo_orders SET qty = qty + 10 WHERE id % 2 = 0")

        started = asyncio.Event()
        consumer = asyncio.ensure_future(stream_changes(dsn, args, out, err, started))
        # Write once the slot exists and streams, so the stream sees every row.
        waiting = asyncio.ensure_future(started.wait())
        await asyncio.wait([waiting, consumer], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        try:
            if not consumer.done():
                await writer()
            return await asyncio.wait_for(consumer, 60)
        finally:
            consumer.cancel()
            await setup.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    dsn = args.dsn or os.environ.get("PGOXIDE_DSN")
    try:
        if dsn:
            asyncio.run(stream_changes(dsn, args, sys.stdout, sys.stderr))
        else:
            asyncio.run(_demo(args, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
