"""Run the benchmark: the same workloads on pgoxide, asyncpg, psycopg 3 and psqlpy.

    python benches/run.py [--loop asyncio|uvloop|both] [--repeat N] [--drivers a,b]
                          [--suite all|foundation|types|pipelining|copy|pool|tracing
                           | --workloads w1,w2]
                          [--dsn URI] [--json PATH] [--chart PATH]

Without ``--dsn`` (or ``PGOXIDE_DSN``) a throwaway cluster is started with
``pgoxide.cluster.Cluster``.  The workloads with a latency (``gather_2ms``, ``queries_2ms``)
run on a second connection per driver, made through benches/latency_proxy.py; one that uses
several connections (``copyfrom``) gets the others opened before it and closed after, one
that uses a pool (the ``pool`` suite) gets the driver's pool opened before it and closed
after, and a traced one (``queries_otel``) gets a connection with the driver's OpenTelemetry
instrumentation on, opened before it and closed after (asyncpg's instrumentation is turned
off again then); a line after a traced workload shows each driver's overhead against the
workload it repeats (``queries``).  Each cell of the printed tables is the median of
``--repeat`` timed runs; see benches/README.md for how to read them.  A driver that fails a
workload is reported (``error`` in the tables, the reason in the notes), its connection is
opened again, and the run goes on.  A driver that has no way to run a workload (e.g. no COPY
TO STDOUT) is not run on it and shown as ``n/a``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, Union

from drivers import DRIVERS, REQUIRED, Driver, Target, load_drivers
from latency_proxy import LISTEN_HOST, LatencyProxy
from telemetry import Telemetry
from timing import Measurement, measure
from workloads import (
    SUITES,
    CopyRecordsOutWorkload,
    FetchWorkload,
    RepeatedFetchWorkload,
    TracedSequentialWorkload,
    Workload,
    build_workloads,
)

T = TypeVar("T")

_SETTINGS_SHOWN = ("fsync", "synchronous_commit", "shared_buffers", "jit")

#: Seconds a timed run may take (times --scale when larger) before the driver is reported as
#: hanging; the slowest published run (asyncpg's gather_2ms) takes about 5 s.
_RUN_TIMEOUT = 300.0
#: Seconds to open or close a connection, when one is replaced after an error.
_CONNECT_TIMEOUT = 30.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    workload_names = [w.name for w in build_workloads()]
    p = argparse.ArgumentParser(
        description="Compare pgoxide with asyncpg, psycopg 3 and psqlpy on the same workloads.",
    )
    p.add_argument(
        "--loop",
        choices=("asyncio", "uvloop", "both"),
        default="both",
        help="event loop(s) to run under (default: both)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="timed runs per driver and workload; the median is reported (default: 5)",
    )
    p.add_argument(
        "--drivers",
        default=",".join(DRIVERS),
        help=f"comma-separated subset of {','.join(DRIVERS)} (default: all)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--suite",
        choices=tuple(SUITES),
        default="all",
        help="a named group of workloads: "
        + "; ".join(f"{k}: {','.join(v)}" for k, v in SUITES.items())
        + " (default: all)",
    )
    which.add_argument(
        "--workloads",
        help=f"comma-separated subset of {','.join(workload_names)} (instead of --suite)",
    )
    p.add_argument(
        "--dsn",
        default=os.environ.get("PGOXIDE_DSN"),
        help="postgresql:// URI of an existing server to use instead of a throwaway cluster "
        "(default: $PGOXIDE_DSN); tables named pgoxide_bench_* are created and dropped there",
    )
    p.add_argument(
        "--no-gc",
        action="store_true",
        help="disable Python's garbage collector inside the clock (isolates decoding speed "
        "from the cost of collections; the default keeps it on, as applications do)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument(
        "--chart",
        metavar="PATH",
        help="also draw the rates as a bar chart to PATH (.svg or .png; needs matplotlib, in "
        "the bench extra); benches/chart.py redraws it from a --json file",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every row/query count (for quick checks while developing; the "
        "published numbers use 1.0)",
    )
    args = p.parse_args(argv)
    args.drivers = _names(p, "--drivers", args.drivers, list(DRIVERS))
    if args.workloads is None:
        args.workloads = [n for n in workload_names if n in SUITES[args.suite]]
    else:
        args.workloads = _names(p, "--workloads", args.workloads, workload_names)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.scale <= 0:
        p.error("--scale must be positive")
    if args.chart is not None:
        # Before the run, not after minutes of it.
        if importlib.util.find_spec("matplotlib") is None:
            p.error(
                "--chart needs matplotlib, which is not installed: pip install matplotlib "
                "(it is in the bench extra)"
            )
        if os.path.splitext(args.chart)[1].lower() not in (".svg", ".png"):
            p.error("--chart: PATH must end in .svg or .png")
    return args


def _names(p: argparse.ArgumentParser, opt: str, value: str, known: list[str]) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        p.error(f"{opt}: unknown or empty {unknown or value!r}; choose from {','.join(known)}")
    return [n for n in known if n in names]  # report order


def run_in_loop(kind: str, main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` to completion in a new event loop of the given kind."""
    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


@contextlib.contextmanager
def server(dsn: str | None) -> Iterator[tuple[Target, str]]:
    """The server to measure against: ``dsn``'s, or a throwaway cluster's."""
    if dsn:
        yield Target.from_uri(dsn), "existing server"
        return
    from pgoxide.cluster import Cluster

    with Cluster() as cluster:
        target = Target(cluster.host, cluster.port, cluster.superuser, "postgres")
        yield target, f"throwaway cluster (pgoxide.cluster, {cluster.bindir})"


async def _admin(target: Target, statements: Sequence[str]) -> dict[str, str]:
    """Run setup/teardown statements through asyncpg; return server facts."""
    import asyncpg

    conn = await asyncpg.connect(target.uri())
    try:
        for sql in statements:
            await conn.execute(sql)
        facts = {"server_version": await conn.fetchval("SHOW server_version")}
        for name in _SETTINGS_SHOWN:
            facts[name] = await conn.fetchval(f"SHOW {name}")
        return facts
    finally:
        await conn.close()


async def _references(target: Target, workloads: Sequence[Workload]) -> None:
    """Give each workload the rows of its reference query (after every setup: the tables
    created there can change catalogue results)."""
    import asyncpg

    conn = await asyncpg.connect(target.uri())
    try:
        for w in workloads:
            query = w.reference_query()
            if query is not None:
                sql, args = query
                w.set_reference([tuple(r) for r in await conn.fetch(sql, *args)])
    finally:
        await conn.close()


async def _connect(driver: Driver, target: Target) -> None:
    await driver.connect(target)
    driver.backend_pid = int(await driver.scalar("SELECT pg_backend_pid()"))


async def _replace_connection(driver: Driver, target: Target) -> str | None:
    """Close ``driver``'s connection and open a new one, so a workload that left it broken
    or busy does not fail the next ones; return why that failed, or None."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(driver.close(), _CONNECT_TIMEOUT)
    try:
        await asyncio.wait_for(_connect(driver, target), _CONNECT_TIMEOUT)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


async def _open_peers(driver: Driver, target: Target, n: int) -> str | None:
    """Open ``n`` more connections of ``driver``'s kind as its ``peers``; return why that
    failed (then none is left open), or None."""
    try:
        for _ in range(n):
            peer = type(driver)(driver.module)
            await asyncio.wait_for(_connect(peer, target), _CONNECT_TIMEOUT)
            driver.peers.append(peer)
    except Exception as e:
        why = f"could not open connection {len(driver.peers) + 2}: {type(e).__name__}: {e}"
        await _close_peers(driver)
        return why
    return None


async def _close_peers(driver: Driver) -> None:
    peers, driver.peers = driver.peers, []
    for peer in peers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(peer.close(), _CONNECT_TIMEOUT)


async def _open_pool(driver: Driver, target: Target, size: int) -> str | None:
    """Open ``driver``'s pool of ``size`` connections; return why that failed (then none is
    left open), or None."""
    try:
        await asyncio.wait_for(driver.open_pool(target, size), _CONNECT_TIMEOUT)
    except Exception as e:
        await _close_pool(driver)
        return f"could not open a pool of {size}: {type(e).__name__}: {e}"
    return None


async def _close_pool(driver: Driver) -> None:
    if driver.pool is None:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(driver.close_pool(), _CONNECT_TIMEOUT)
    driver.pool = None
    driver.pool_pids = []


async def _open_traced(driver: Driver, target: Target, telemetry: Telemetry) -> str | None:
    """Put a connection with ``driver``'s OpenTelemetry instrumentation on in place of its
    own; return why that failed (then nothing changed), or None."""
    try:
        await asyncio.wait_for(driver.open_traced(target, telemetry), _CONNECT_TIMEOUT)
    except Exception as e:
        await _close_traced(driver)
        return f"could not open a traced connection: {type(e).__name__}: {e}"
    return None


async def _close_traced(driver: Driver) -> None:
    if not driver.traced:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(driver.close_traced(), _CONNECT_TIMEOUT)


async def _open_json(driver: Driver, target: Target) -> str | None:
    """Put a connection that parses json into Python objects in place of ``driver``'s own;
    return why that failed (then nothing changed), or None."""
    try:
        await asyncio.wait_for(driver.open_json(target), _CONNECT_TIMEOUT)
    except Exception as e:
        await _close_json(driver)
        return f"could not open a json-parsing connection: {type(e).__name__}: {e}"
    return None


async def _close_json(driver: Driver) -> None:
    if not driver.json:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(driver.close_json(), _CONNECT_TIMEOUT)


async def _open_extra(w: Workload, driver: Driver, target: Target) -> str | None:
    """Open the connections ``w`` needs besides ``driver``'s own (its peers, its pool, or a
    traced or json-parsing connection in its place); return why that failed, or None."""
    if w.json_objects:
        why = await _open_json(driver, target)
        if why is not None:
            return why
    telemetry = w.telemetry()
    if telemetry is not None:
        why = await _open_traced(driver, target, telemetry)
        if why is not None:
            return why
    if w.connections > 1:
        why = await _open_peers(driver, target, w.connections - 1)
        if why is not None:
            return why
    if w.pool_size > 0:
        return await _open_pool(driver, target, w.pool_size)
    return None


async def _bench_loop(
    loop_kind: str,
    target: Target,
    proxies: Mapping[float, Target],
    drivers: list[Driver],
    workloads: list[Workload],
    repeat: int,
    collect_garbage: bool,
    timeout: float,
) -> list[Measurement]:
    # One connection per driver, and per proxy another one through it (a fresh adapter of
    # the same driver): each workload runs on the connections of its latency.
    targets: dict[float, Target] = {0.0: target, **proxies}
    by_latency: dict[float, list[Driver]] = {0.0: drivers}
    for latency in proxies:
        by_latency[latency] = [type(d)(d.module) for d in drivers]
    opened: list[Driver] = []
    try:
        for latency, ds in by_latency.items():
            for d in ds:
                await _connect(d, targets[latency])
                opened.append(d)
        out: list[Measurement] = []
        for w in workloads:
            started = time.perf_counter()
            # A driver that cannot run the workload gets no measurement (n/a in the tables).
            ds = [d for d in by_latency[w.latency_ms] if w.unsupported_by(d) is None]
            failed: list[Measurement] = []
            try:
                for d in list(ds):
                    why = await _open_extra(w, d, targets[w.latency_ms])
                    if why is not None:
                        ds.remove(d)
                        failed.append(
                            Measurement(
                                loop_kind,
                                w.name,
                                d.name,
                                w.unit,
                                w.count,
                                repetitions=w.repetitions,
                                error=why,
                            )
                        )
                results = await measure(
                    w, ds, repeat, loop_kind, collect_garbage=collect_garbage, timeout=timeout
                )
            finally:
                for d in by_latency[w.latency_ms]:
                    await _close_json(d)
                    await _close_traced(d)
                    await _close_peers(d)
                    await _close_pool(d)
            out += results + failed
            _progress(f"  {loop_kind:8} {w.name:25} {time.perf_counter() - started:6.1f} s")
            for m in failed:
                _progress(f"    {m.driver}: error: {m.error}")
            for d, m in zip(ds, results):
                if m.error is None:
                    continue
                _progress(f"    {d.name}: error: {m.error}")
                why = await _replace_connection(d, targets[w.latency_ms])
                if why is not None:
                    _progress(f"    {d.name}: could not reconnect: {why}")
        return out
    finally:
        for d in opened:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(d.close(), _CONNECT_TIMEOUT)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _fmt_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.0f}"  # the proxied sequential queries: a few hundred per second


def _fmt_ratio(value: float | str) -> str:
    return f"{value:.2f}x" if isinstance(value, float) else value


def _fmt_count(m: Measurement) -> str:
    if m.repetitions == 1:
        return f"{m.count:,}"
    return f"{m.count // m.repetitions:,}x{m.repetitions:,}"


def group_geomeans(
    results: list[Measurement], driver_names: list[str], workloads: list[Workload]
) -> dict[str, tuple[int, dict[str, float | str]]]:
    """Per group of at least two workloads (``Workload.group``): how many workloads it has,
    and per driver other than asyncpg the geometric mean of its ratios to asyncpg over them,
    or ``n/a`` if the driver cannot run one of them, ``-`` if a run failed."""
    by_key = {(m.workload, m.driver): m for m in results}
    groups: dict[str, list[str]] = {}
    for w in workloads:
        if w.group:
            groups.setdefault(w.group, []).append(w.name)
    out: dict[str, tuple[int, dict[str, float | str]]] = {}
    for group, names in groups.items():
        if len(names) < 2 or "asyncpg" not in driver_names:
            continue
        cells: dict[str, float | str] = {}
        for d in driver_names:
            if d == "asyncpg":
                continue
            ratios: list[float] = []
            cell = ""
            for name in names:
                m, base = by_key.get((name, d)), by_key.get((name, "asyncpg"))
                if m is None:
                    cell = "n/a"
                    break
                if base is None or not base.ok or not m.ok:
                    cell = "-"
                    continue
                ratios.append(m.rate / base.rate)
            cells[d] = cell or math.exp(statistics.fmean(math.log(r) for r in ratios))
        out[group] = (len(names), cells)
    return out


#: One driver's overhead in a workload against its baseline (see :func:`overheads`), or why
#: there is none: "n/a" (it cannot run one of them) or "-" (a run failed).
Overhead = Union[dict[str, float], str]


def overheads(
    results: list[Measurement], driver_names: list[str], workloads: list[Workload]
) -> dict[str, tuple[str, dict[str, Overhead]]]:
    """Per workload whose ``baseline`` also ran: the baseline's name and, per driver, the
    overhead of the workload against it, from the medians of the same loop: ``percent``,
    the time per item with / without - 1 (= rate without / rate with - 1), in percent;
    ``wall_us`` and ``client_cpu_us``, how many microseconds of wall and client CPU time
    one operation takes more; the two rates (items/s)."""
    by_key = {(m.workload, m.driver): m for m in results}
    present = {w.name: w for w in workloads if any(m.workload == w.name for m in results)}
    out: dict[str, tuple[str, dict[str, Overhead]]] = {}
    for w in present.values():
        base_w = present.get(w.baseline) if w.baseline else None
        if base_w is None:
            continue
        ops, base_ops = w.operations()[0], base_w.operations()[0]
        cells: dict[str, Overhead] = {}
        for d in driver_names:
            m, base = by_key.get((w.name, d)), by_key.get((base_w.name, d))
            if m is None or base is None:
                cells[d] = "n/a"
                continue
            if not (m.ok and base.ok and m.client_cpu and base.client_cpu):
                cells[d] = "-"
                continue
            per_item, base_per_item = m.median / m.count, base.median / base.count
            cells[d] = {
                "percent": (per_item / base_per_item - 1) * 100,
                "wall_us": (m.median / ops - base.median / base_ops) * 1e6,
                "client_cpu_us": (
                    statistics.median(m.client_cpu) / ops
                    - statistics.median(base.client_cpu) / base_ops
                )
                * 1e6,
                "rate": m.rate,
                "baseline_rate": base.rate,
            }
        out[w.name] = (base_w.name, cells)
    return out


def _fmt_overhead(cell: Overhead) -> str:
    return f"{cell['percent']:+.1f}%" if isinstance(cell, dict) else cell


def format_table(
    loop_kind: str,
    results: list[Measurement],
    driver_names: list[str],
    repeat: int,
    workloads: list[Workload],
) -> str:
    """An aligned table: per workload, each driver's rate and its ratio to asyncpg; after the
    last workload of a group, the geometric mean of each driver's ratios over the group."""
    by_key = {(m.workload, m.driver): m for m in results}
    names = list(dict.fromkeys(m.workload for m in results))
    ratio_drivers = [n for n in driver_names if n != "asyncpg"] if "asyncpg" in driver_names else []
    header = ["workload", "count", "unit"]
    header += [f"{n} /s" for n in driver_names]
    header += [f"{n}/asyncpg" for n in ratio_drivers]
    present = [w for w in workloads if w.name in names]
    geomeans = group_geomeans(results, driver_names, present)
    extra = overheads(results, driver_names, present)
    last_of_group = {w.group: w.name for w in present if w.group}
    rows: list[list[str]] = []
    for w in names:
        first = next(m for m in results if m.workload == w)
        row = [w, _fmt_count(first), first.unit]
        # No measurement: the driver cannot run the workload (n/a).
        for n in driver_names:
            m = by_key.get((w, n))
            if m is None:
                row.append("n/a")
            else:
                row.append(f"{_fmt_rate(m.rate)} ±{m.spread * 100:.0f}%" if m.ok else "error")
        base = by_key.get((w, "asyncpg")) if ratio_drivers else None
        for n in ratio_drivers:
            m = by_key.get((w, n))
            if m is None:
                row.append("n/a")
                continue
            ok = base is not None and base.ok and m.ok
            row.append(f"{m.rate / base.rate:.2f}x" if ok and base is not None else "-")
        rows.append(row)
        for group, (size, cells) in geomeans.items():
            if w == last_of_group[group]:
                row = [f"{group} geomean", f"{size} workloads", "ratio"]
                row += [""] * len(driver_names)
                row += [_fmt_ratio(cells[n]) for n in ratio_drivers]
                rows.append(row)
        if w in extra:
            baseline, per_driver = extra[w]
            row = [f"{w} overhead", f"vs {baseline}", "time/item"]
            row += [_fmt_overhead(per_driver[n]) for n in driver_names]
            row += [""] * len(ratio_drivers)
            rows.append(row)
    title = (
        f"loop: {loop_kind}  (rate = median of {repeat} timed runs, in items/s; "
        "±: (slowest - fastest) / median; ratio > 1: faster than asyncpg; "
        "count RxN: R rows per fetch, N fetches per timed run; n/a: the driver has no way "
        "to run the workload; a 'geomean' line: the geometric mean of the ratios above it "
        "in its group; an 'overhead' line: how much more time per item the workload above "
        "it took than the one it names, = rate there / rate here - 1)"
    )
    return "\n".join([title, *_aligned(header, rows, left={0, 2})])


def _aligned(header: list[str], rows: list[list[str]], left: set[int]) -> list[str]:
    """Header, rule and rows in columns; columns in `left` left-aligned, others right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i in left else c.rjust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _us(seconds: list[float], ops: int) -> str:
    return f"{statistics.median(seconds) / ops * 1e6:,.0f}" if seconds else "-"


def format_cpu_table(
    loop_kind: str,
    results: list[Measurement],
    driver_names: list[str],
    workloads: list[Workload],
) -> str:
    """Per workload and driver: wall, client CPU and server CPU time per operation (a fetch,
    a query, an executemany batch or a copy: see ``Workload.operations``).  With several
    connections or a pool the server CPU time is the sum over all of their backends."""
    by_key = {(m.workload, m.driver): m for m in results}
    header = ["workload", "per"] + [f"{n} wall/client/server" for n in driver_names]
    rows: list[list[str]] = []
    for w in workloads:
        ops, op = w.operations()
        row = [w.name, op]
        for n in driver_names:
            m = by_key.get((w.name, n))
            if m is None:
                row.append("n/a")
                continue
            if not m.ok:
                row.append("error")
                continue
            row.append(
                " / ".join([_us(m.seconds, ops), _us(m.client_cpu, ops), _us(m.server_cpu, ops)])
            )
        rows.append(row)
    title = (
        f"loop: {loop_kind}  (microseconds per operation named in 'per', medians: wall time / "
        "CPU time of this process / CPU time of the connection's server process; server CPU "
        "close to wall: bound by the server; pipelined queries share round trips; with "
        "several connections or a pool, server CPU is the sum over all of their server "
        "processes, which can exceed wall time)"
    )
    return "\n".join([title, *_aligned(header, rows, left={0, 1})])


def type_notes(workloads: list[Workload], results: list[Measurement]) -> list[str]:
    """Columns that drivers return as different Python types (per loop they agree)."""
    notes: list[str] = []
    for w in workloads:
        if not isinstance(w, (FetchWorkload, RepeatedFetchWorkload, CopyRecordsOutWorkload)):
            continue
        types: dict[str, tuple[str, ...]] = {}
        for m in results:
            if m.workload == w.name and m.result_types is not None:
                types.setdefault(m.driver, m.result_types)
        for i, col in enumerate(w.column_names):
            per_driver = {d: t[i] for d, t in types.items() if i < len(t)}
            if len(set(per_driver.values())) > 1:
                shown = ", ".join(f"{d}={t}" for d, t in per_driver.items())
                notes.append(f"{w.name}.{col} ({w.columns[i][1]}): {shown}")
    return notes


def machine() -> dict[str, Any]:
    """What the numbers were measured on, for the JSON and the chart's caption."""
    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                cpu_model = value.strip()
                break
    os_name = platform.system()
    with contextlib.suppress(OSError):
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME", os_name)
    return {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "os": os_name,
        "kernel": platform.release(),
        "arch": platform.machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything, print the report, return the exit status."""
    args = parse_args(argv)
    wall_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    skipped_loops: dict[str, str] = {}
    if "uvloop" in loops:
        try:
            import uvloop  # noqa: F401
        except ImportError as e:
            if args.loop == "uvloop":
                print(f"uvloop is not installed: {e}", file=sys.stderr)
                return 2
            loops.remove("uvloop")
            skipped_loops["uvloop"] = "not installed"

    needed = list(dict.fromkeys([*args.drivers, *REQUIRED]))
    loaded, missing = load_drivers(needed)
    for name in REQUIRED:
        if name in missing:
            print(f"{name} is required: {missing[name]}", file=sys.stderr)
            return 2
    drivers = [d for d in loaded if d.name in args.drivers]
    workloads = [w for w in build_workloads(args.scale) if w.name in args.workloads]
    latencies = sorted({w.latency_ms for w in workloads if w.latency_ms > 0})

    versions = {d.name: d.version() for d in drivers}
    if "uvloop" in loops:
        versions["uvloop"] = importlib.metadata.version("uvloop")

    results: list[Measurement] = []
    with server(args.dsn) as (target, server_kind), contextlib.ExitStack() as stack:
        # One proxy process per latency, for the whole run; leaving the block stops them.
        proxies: dict[float, Target] = {}
        for ms in latencies:
            proxy = stack.enter_context(LatencyProxy(target.host, target.port, ms))
            proxies[ms] = dataclasses.replace(target, host=LISTEN_HOST, port=proxy.port)
        setup = [sql for w in workloads for sql in w.setup_sql()]
        _progress(f"setting up tables on {target.host}:{target.port} ...")
        facts = run_in_loop("asyncio", lambda: _admin(target, setup))
        run_in_loop("asyncio", lambda: _references(target, workloads))

        header = [
            "pgoxide benchmark",
            f"PostgreSQL {facts['server_version']} at {target.host}:{target.port}, "
            f"{server_kind}; "
            + ", ".join(f"{k}={facts[k]}" for k in _SETTINGS_SHOWN)
            + "; TLS off (sslmode=disable)",
            f"Python {platform.python_version()} ({platform.python_implementation()}) on "
            f"{platform.platform()}, {os.cpu_count()} CPUs",
            "drivers: " + ", ".join(f"{n} {v}" for n, v in versions.items()),
        ]
        for name, why in missing.items():
            header.append(f"missing: {name}: {why} (skipped)")
        for name, why in skipped_loops.items():
            header.append(f"skipped loop: {name}: {why}")
        for ms, via in proxies.items():
            names = ", ".join(w.name for w in workloads if w.latency_ms == ms)
            header.append(
                f"latency proxy: {ms:g} ms each way (benches/latency_proxy.py on "
                f"{via.host}:{via.port}) for {names}; a second connection per driver"
            )
        if args.no_gc:
            header.append("NOTE: --no-gc: the garbage collector is off inside the clock")
        if args.scale != 1.0:
            header.append(f"NOTE: --scale {args.scale}: counts differ from the published ones")
        print("\n".join(header), flush=True)

        try:
            for loop_kind in loops:
                _progress(f"running under {loop_kind} ...")
                loop_results = run_in_loop(
                    loop_kind,
                    functools.partial(
                        _bench_loop,
                        loop_kind,
                        target,
                        proxies,
                        drivers,
                        workloads,
                        args.repeat,
                        not args.no_gc,
                        _RUN_TIMEOUT * max(1.0, args.scale),
                    ),
                )
                results += loop_results
                table = format_table(
                    loop_kind, loop_results, [d.name for d in drivers], args.repeat, workloads
                )
                print("\n" + table, flush=True)
                cpu_table = format_cpu_table(
                    loop_kind, loop_results, [d.name for d in drivers], workloads
                )
                print("\n" + cpu_table, flush=True)
        finally:
            teardown = [sql for w in workloads for sql in w.teardown_sql()]
            with contextlib.suppress(Exception):
                run_in_loop("asyncio", lambda: _admin(target, teardown))

    unsupported = {
        w.name: {d.name: reason for d in drivers if (reason := w.unsupported_by(d)) is not None}
        for w in workloads
    }
    notes = [f"workloads: {w.name}: {w.details()}" for w in workloads]
    notes += [f"how {d.name} is called: {d.usage}" for d in drivers]
    notes += [f"n/a: {w}/{d}: {r}" for w, ds in unsupported.items() for d, r in ds.items()]
    notes += [f"result types differ: {n}" for n in type_notes(workloads, results)]
    geomeans = {
        loop_kind: group_geomeans(
            [m for m in results if m.loop == loop_kind], [d.name for d in drivers], workloads
        )
        for loop_kind in loops
    }
    for group in dict.fromkeys(g for per_loop in geomeans.values() for g in per_loop):
        for d in drivers:
            if d.name == "asyncpg":
                continue
            shown = ", ".join(
                f"{loop_kind} {_fmt_ratio(per_loop[group][1][d.name])}"
                for loop_kind, per_loop in geomeans.items()
                if group in per_loop
            )
            size = next(per_loop[group][0] for per_loop in geomeans.values() if group in per_loop)
            notes.append(
                f"{group} geomean: geometric mean of {d.name}/asyncpg over the {size} "
                f"{group} workloads: {shown}"
            )
    extra = {
        loop_kind: overheads(
            [m for m in results if m.loop == loop_kind], [d.name for d in drivers], workloads
        )
        for loop_kind in loops
    }
    for name in dict.fromkeys(w for per_loop in extra.values() for w in per_loop):
        for d in drivers:
            cells_here = [
                per_loop[name][1][d.name] for per_loop in extra.values() if name in per_loop
            ]
            if all(cell == "n/a" for cell in cells_here):
                continue  # the n/a line above says why
            parts: list[str] = []
            for loop_kind, per_loop in extra.items():
                if name not in per_loop:
                    continue
                baseline, cells = per_loop[name]
                cell = cells[d.name]
                if isinstance(cell, str):
                    parts.append(f"{loop_kind} {cell}")
                    continue
                _, op = next(w for w in workloads if w.name == name).operations()
                parts.append(
                    f"{loop_kind} {cell['percent']:+.1f}% ({_fmt_rate(cell['baseline_rate'])}/s "
                    f"-> {_fmt_rate(cell['rate'])}/s; {cell['wall_us']:+.1f} us wall, "
                    f"{cell['client_cpu_us']:+.1f} us client CPU per {op})"
                )
            notes.append(
                f"{name} overhead: {d.name}'s time per item in {name} against {baseline} "
                f"(rate in {baseline} / rate in {name} - 1): {'; '.join(parts)}"
            )
    notes += [f"error: {m.loop}/{m.workload}/{m.driver}: {m.error}" for m in results if m.error]
    elapsed = time.perf_counter() - wall_start
    notes.append(f"total wall time {elapsed:.0f} s")
    print("\nnotes:\n" + "\n".join(f"  - {n}" for n in notes))

    # What --json writes and --chart draws.
    doc: dict[str, Any] = {
        "started": started.isoformat(),
        "postgresql": facts,
        "server": server_kind,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "machine": machine(),
        "versions": versions,
        "missing": missing,
        "loops": loops,
        "repeat": args.repeat,
        "statistic": "median",
        "scale": args.scale,
        "gc_in_clock": not args.no_gc,
        "workloads": {
            w.name: {
                "description": w.details(),
                "unit": w.unit,
                "count": w.count,
                "repetitions": w.repetitions,
                "latency_ms": w.latency_ms,
                "connections": w.connections,
                "pool_size": w.pool_size,
                "group": w.group,
                "baseline": w.baseline,
                "traced": isinstance(w, TracedSequentialWorkload),
            }
            for w in workloads
        },
        "usage": {d.name: d.usage for d in drivers},
        "unsupported": {w: per_driver for w, per_driver in unsupported.items() if per_driver},
        "results": [m.to_json() for m in results],
        # Per loop and group, per driver: the geometric mean of its ratios to asyncpg,
        # or "n/a" (it cannot run one of the workloads) or "-" (a run failed).
        "geomeans": {
            loop_kind: {group: cells for group, (_, cells) in per_loop.items()}
            for loop_kind, per_loop in geomeans.items()
        },
        # Per loop and workload with a baseline: the baseline, and per driver the overhead
        # (percent, wall_us, client_cpu_us, rate, baseline_rate), or "n/a" or "-".
        "overheads": {
            loop_kind: {
                name: {"baseline": baseline, "drivers": cells}
                for name, (baseline, cells) in per_loop.items()
            }
            for loop_kind, per_loop in extra.items()
        },
        "wall_seconds": elapsed,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if args.chart:
        import chart  # only now: it needs matplotlib, which the rest of the run does not

        try:
            chart.write_chart(doc, args.chart)
        except chart.ChartError as e:
            print(f"no chart: {e}", file=sys.stderr)
            return 2
        _progress(f"chart written to {args.chart}")
    return 1 if any(m.error for m in results) else 0


if __name__ == "__main__":
    sys.exit(main())
