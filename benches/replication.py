"""Logical replication benchmarks.

    python benches/replication.py [--rows N] [--per-transaction N] [--repeat N]
                                  [--proto-version V] [--binary] [--dsn URI] [--json PATH]

1. ``consume``: a backlog of ``--rows`` inserted rows (``--per-transaction`` per
   transaction, 5 columns: int4, numeric, timestamptz, text, int8) is streamed through a
   pgoutput slot end to end by ``pg_recvlogical`` (raw bytes to /dev/null, the reference) and
   by pgoxide (every value decoded to a Python object and read, each transaction
   acknowledged). Each run has its own slot, created before the rows were written, so every
   run streams the same WAL; the order alternates between runs.
2. ``decode``: the same stream's pgoutput messages, captured once, decoded in memory: by
   pgoxide's decoder with values decoded by type (``Decimal``, ``datetime``, ...) and with
   values left as text (``values="raw"``, the same output as pypgoutput's), and by the
   pure-Python ``pypgoutput`` decoder (values as text). Only decoding is timed, not reading
   the results. pypgoutput's wheel is downloaded with pip (no dependencies) and only its
   ``decoders`` module is loaded: its package imports psycopg2.

Without ``--dsn`` a throwaway cluster (pgoxide.cluster, wal_level=logical) is used. Rates
are medians of ``--repeat`` runs; ratios above 1 favour pgoxide.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pgoxide
from pgoxide import replication as r
from pgoxide.cluster import Cluster

TABLE = "pgoxide_bench_repl"
PUBLICATION = "pgoxide_bench_repl_pub"
PYPGOUTPUT = "0.0.3"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--per-transaction", type=int, default=1_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--proto-version", type=int, default=1, choices=[1, 2, 3, 4])
    p.add_argument("--binary", action="store_true", help="binary tuple data (default: text)")
    p.add_argument("--dsn", default=os.environ.get("PGOXIDE_DSN"))
    p.add_argument("--json", help="also write the timings as JSON")
    return p.parse_args(argv)


@contextmanager
def server(dsn: str | None) -> Iterator[tuple[str, str]]:
    """A DSN and the directory holding pg_recvlogical."""
    if dsn:
        bindir = (
            os.environ.get("PGOXIDE_PG_BINDIR")
            or subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        yield dsn, bindir
        return
    settings = {"wal_level": "logical", "max_replication_slots": "40", "max_wal_senders": "20"}
    with Cluster(settings=settings) as cluster:
        yield cluster.dsn(), cluster.bindir


def options(args: argparse.Namespace) -> dict[str, object]:
    opts: dict[str, object] = {
        "proto_version": args.proto_version,
        "publication_names": PUBLICATION,
    }
    if args.binary:
        opts["binary"] = True
    return opts


async def setup(dsn: str, args: argparse.Namespace, slots: list[str]) -> tuple[int, int]:
    """Creates the table, the slots, then the backlog; returns (transactions, end LSN)."""
    conn = await pgoxide.connect(dsn)
    rconn = await r.connect_replication(dsn)
    try:
        await conn.execute(
            f"DROP PUBLICATION IF EXISTS {PUBLICATION}; DROP TABLE IF EXISTS {TABLE};"
            f"CREATE TABLE {TABLE} (id int PRIMARY KEY, amount numeric(12, 2),"
            " at timestamptz, label text, total int8);"
            f"CREATE PUBLICATION {PUBLICATION} FOR TABLE {TABLE}"
        )
        for slot in slots:
            await conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                f"WHERE slot_name = '{slot}'"
            )
            await rconn.create_replication_slot(slot, snapshot="nothing")
        transactions = 0
        for start in range(1, args.rows + 1, args.per_transaction):
            end = min(start + args.per_transaction - 1, args.rows)
            await conn.execute(
                f"INSERT INTO {TABLE} SELECT g, g * 1.25, timestamptz '2024-01-01 00:00:00+00'"
                f" + g * interval '1 second', 'label-' || g, g::int8 * 1000003"
                f" FROM generate_series({start}, {end}) g"
            )
            transactions += 1
        end_lsn = int(r.Lsn(await conn.fetchval("SELECT pg_current_wal_lsn()::text")))
        return transactions, end_lsn
    finally:
        await rconn.close()
        await conn.close()


def run_pg_recvlogical(
    bindir: str, dsn: str, slot: str, args: argparse.Namespace, end_lsn: int
) -> float:
    cmd = [
        os.path.join(bindir, "pg_recvlogical"),
        "-d",
        dsn,
        "-S",
        slot,
        "--start",
        "--no-loop",
        "-E",
        str(r.Lsn(end_lsn)),
        "-f",
        os.devnull,
    ]
    for name, value in options(args).items():
        cmd += ["-o", f"{name}={str(value).lower() if isinstance(value, bool) else value}"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


async def run_pgoxide(
    dsn: str, slot: str, args: argparse.Namespace, transactions: int, capture: bool = False
) -> tuple[float, int, list[bytes], int]:
    """Streams the backlog, reading every value; returns (seconds, rows, payloads, the last
    commit's end position)."""
    rconn = await r.connect_replication(dsn)
    try:
        started = time.perf_counter()
        stream = await rconn.start_replication(slot, 0, options(args), decode=not capture)
        rows = 0
        commits = 0
        payloads: list[bytes] = []
        last_end = 0
        async for item in stream:
            if not isinstance(item, r.XLogData):
                continue
            if capture:
                payloads.append(item.data)
                if item.data[:1] == b"C":
                    commits += 1
                    if commits == transactions:
                        last_end = int(item.data_start)
                        break
                continue
            message = item.message
            if isinstance(message, r.Insert):
                rows += len(tuple(message.new))
            elif isinstance(message, r.Commit):
                stream.ack(message.end_lsn)
                commits += 1
                if commits == transactions:
                    break
        elapsed = time.perf_counter() - started
        await stream.stop()
        return elapsed, rows // 5, payloads, last_end
    finally:
        await rconn.close()


def load_pypgoutput() -> ModuleType:
    """pypgoutput's ``decoders`` module, from its wheel (downloaded once, no dependencies)."""
    cache = pathlib.Path(tempfile.gettempdir()) / f"pgoxide-bench-pypgoutput-{PYPGOUTPUT}"
    source = cache / "pypgoutput" / "decoders.py"
    if not source.exists():
        cache.mkdir(exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "--disable-pip-version-check",
                "-d",
                str(cache),
                f"pypgoutput=={PYPGOUTPUT}",
            ],
            check=True,
        )
        import zipfile

        wheel = next(cache.glob("pypgoutput-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extract("pypgoutput/decoders.py", cache)
    spec = importlib.util.spec_from_file_location("pypgoutput_decoders", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decode_pgoxide(payloads: list[bytes], values: str) -> float:
    decode = r.PgOutputDecoder(values=values).decode
    started = time.perf_counter()
    for payload in payloads:
        decode(payload)
    return time.perf_counter() - started


def decode_pypgoutput(module: ModuleType, payloads: list[bytes]) -> float:
    classes = {
        ord("B"): module.Begin,
        ord("C"): module.Commit,
        ord("R"): module.Relation,
        ord("I"): module.Insert,
        ord("U"): module.Update,
        ord("D"): module.Delete,
        ord("T"): module.Truncate,
    }
    started = time.perf_counter()
    for payload in payloads:
        classes[payload[0]](payload)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.binary and args.proto_version < 2:
        print("note: binary tuple data with proto_version 1 (PostgreSQL 14+ accepts it)")
    recv_slots = [f"pgoxide_bench_recv_{i}" for i in range(args.repeat)]
    px_slots = [f"pgoxide_bench_px_{i}" for i in range(args.repeat)]
    capture_slot = "pgoxide_bench_capture"
    results: dict[str, Any] = {"args": vars(args), "consume": [], "decode": []}
    with server(args.dsn) as (dsn, bindir):
        transactions, _ = asyncio.run(setup(dsn, args, [*recv_slots, *px_slots, capture_slot]))
        version = subprocess.run(
            [os.path.join(bindir, "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()
        print(f"{version}; Python {platform.python_version()}; pgoxide {pgoxide.__version__}")
        print(
            f"{args.rows:,} rows in {transactions} transactions; pgoutput proto_version "
            f"{args.proto_version}, {'binary' if args.binary else 'text'} tuple data"
        )
        # The captured stream, and where the last transaction ends: pg_recvlogical stops there.
        _, _, payloads, end_lsn = asyncio.run(
            run_pgoxide(dsn, capture_slot, args, transactions, True)
        )
        recv_times, px_times = [], []
        for i in range(args.repeat):
            order = ("recv", "px") if i % 2 == 0 else ("px", "recv")
            for who in order:
                if who == "recv":
                    recv_times.append(run_pg_recvlogical(bindir, dsn, recv_slots[i], args, end_lsn))
                else:
                    elapsed, rows, _, _ = asyncio.run(
                        run_pgoxide(dsn, px_slots[i], args, transactions)
                    )
                    assert rows == args.rows, f"pgoxide read {rows} rows, expected {args.rows}"
                    px_times.append(elapsed)
        asyncio.run(_drop_slots(dsn, [*recv_slots, *px_slots, capture_slot]))

    recv_rate = args.rows / statistics.median(recv_times)
    px_rate = args.rows / statistics.median(px_times)
    print(f"\nconsume (end to end, rows/s, median of {args.repeat}):")
    print(f"  pg_recvlogical (raw bytes to /dev/null)  {recv_rate:12,.0f}")
    print(f"  pgoxide (every value decoded and read)   {px_rate:12,.0f}")
    print(f"  pgoxide / pg_recvlogical                 {px_rate / recv_rate:12.2f}x")
    results["consume"] = {"pg_recvlogical_s": recv_times, "pgoxide_s": px_times}

    pypgoutput = load_pypgoutput() if not args.binary else None
    typed, raw, theirs = [], [], []
    for _ in range(args.repeat):
        typed.append(decode_pgoxide(payloads, "typed"))
        raw.append(decode_pgoxide(payloads, "raw"))
        if pypgoutput is not None:
            theirs.append(decode_pypgoutput(pypgoutput, payloads))
    n = len(payloads)
    print(f"\ndecode ({n:,} captured messages in memory, messages/s, median):")
    typed_rate = n / statistics.median(typed)
    raw_rate = n / statistics.median(raw)
    print(f"  pgoxide, values by type (Decimal, datetime...)  {typed_rate:12,.0f}")
    print(f"  pgoxide, values as text (values='raw')          {raw_rate:12,.0f}")
    if theirs:
        theirs_rate = n / statistics.median(theirs)
        print(f"  pypgoutput {PYPGOUTPUT}, values as text             {theirs_rate:12,.0f}")
        print(f"  pgoxide / pypgoutput, same output (text)        {raw_rate / theirs_rate:12.1f}x")
        print(
            f"  pgoxide typed / pypgoutput text                 {typed_rate / theirs_rate:12.1f}x"
        )
    else:
        print("  pypgoutput cannot read binary tuple data: not compared")
    results["decode"] = {
        "messages": n,
        "pgoxide_typed_s": typed,
        "pgoxide_raw_s": raw,
        "pypgoutput_s": theirs,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


async def _drop_slots(dsn: str, slots: list[str]) -> None:
    conn = await pgoxide.connect(dsn)
    try:
        for slot in slots:
            await conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                f"WHERE slot_name = '{slot}'"
            )
        await conn.execute(
            f"DROP PUBLICATION IF EXISTS {PUBLICATION}; DROP TABLE IF EXISTS {TABLE}"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
