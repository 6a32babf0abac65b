"""Profile pgoxide's client-side decoding of one fetch workload, without the socket.

    python benches/profile.py WORKLOAD [--query SQL] [--repeat N] [--dsn URI] [--callgrind]

WORKLOAD is one of the fetch workloads of ``benches/run.py`` (wide, ints, text, intarray,
pgtype, bytea).  The script creates its table, fetches it once through pgoxide while recording
the bytes the server sent, then feeds those bytes to the connection's session ``--repeat``
times, as the protocol would: the timed part is pgoxide decoding the response into records
(and the ``gc.collect(1)`` that ``benches/run.py`` also charges), with no server, socket or
event loop in it.  It prints the median and fastest replay.  ``--query`` replays another
query over the workload's table instead (``"SELECT doc::text FROM pgoxide_bench_wide"``), to
see what one column or one conversion costs.

With ``--callgrind``, run it under valgrind and only the replays are instrumented, so the
instruction counts are repeatable from one run to the next::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.out \\
        $PYTHON benches/profile.py wide --repeat 3 --callgrind
    callgrind_annotate --inclusive=yes cg.out | head -60

Under ``perf record -p PID`` (PID printed before the replays start) the same loop gives
a time profile.  ``$PYTHON`` must be the interpreter's binary (``sys.executable``),
not a wrapper script such as a pyenv shim, or valgrind instruments the wrapper.
benches/PROFILE.md has what these showed.

It reaches into the connection's private parts (``_protocol``, ``_session``, ``_statements``),
so it is a development tool that follows the driver's internals, not an example.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pgoxide
from pgoxide.protocol import _DONE  # the kind of item that carries an operation's result
from workloads import FetchWorkload, RepeatedFetchWorkload, build_workloads


def _fetch_workloads() -> dict[str, FetchWorkload | RepeatedFetchWorkload]:
    return {
        w.name: w
        for w in build_workloads()
        if isinstance(w, (FetchWorkload, RepeatedFetchWorkload))
    }


@contextlib.contextmanager
def _server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from pgoxide.cluster import Cluster

    with Cluster() as cluster:
        yield cluster.dsn(sslmode="disable")


def _query(w: FetchWorkload | RepeatedFetchWorkload) -> tuple[str, tuple[Any, ...]]:
    if isinstance(w, FetchWorkload):
        return w.sql, ()
    return w.template.format(*(f"${i}" for i in range(1, len(w.args) + 1))), w.args


def _callgrind(switch: str) -> None:
    """Turns callgrind's instrumentation of this process on or off."""
    try:
        out = subprocess.run(
            ["callgrind_control", "-i", switch, str(os.getpid())], capture_output=True, text=True
        )
    except OSError as e:
        raise SystemExit(f"--callgrind: cannot run callgrind_control: {e}") from e
    # It exits with 0 even when the process is not running under callgrind.
    if out.returncode != 0 or "Error" in out.stdout + out.stderr:
        raise SystemExit(f"--callgrind: not running under callgrind?\n{out.stdout}{out.stderr}")


async def _profile(dsn: str, name: str, query: str | None, repeat: int, callgrind: bool) -> None:
    w = _fetch_workloads()[name]
    sql, args = (query, ()) if query else _query(w)
    conn = await pgoxide.connect(dsn)
    try:
        for statement in w.setup_sql():
            await conn.execute(statement)
        await conn.fetch(sql, *args)  # prepares and caches the statement
        protocol = conn._protocol
        received: list[bytes] = []
        feed = protocol.data_received

        def record(data: bytes | memoryview) -> None:
            received.append(bytes(data))
            feed(data)

        protocol.data_received = record  # type: ignore[method-assign]
        rows = await conn.fetch(sql, *args)
        protocol.data_received = feed  # type: ignore[method-assign]
        count = len(rows)
        del rows
        # The loop's wake-up handle holds the last result until this task step ends.
        await asyncio.sleep(0)
        stmt = conn._statements.get(sql)
        session = conn._session
        response = b"".join(received)
        # Fed in 64 KiB pieces, about what a reader that keeps up gets per read.
        pieces = [response[i : i + 65536] for i in range(0, len(response), 65536)]
        print(
            f"{query or name}: {count:,} rows, {len(response):,} bytes per response; "
            f"replaying {repeat} times in process {os.getpid()}",
            flush=True,
        )
        times: list[float] = []
        # Everything alive now goes to the permanent generation, so the collections below
        # see only what the replays build.
        gc.collect()
        gc.freeze()
        if callgrind:
            _callgrind("on")
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter()
            session.bind_execute(stmt, args, 0, None)
            result = None
            for piece in pieces:
                for kind, payload in session.feed(piece) or ():
                    if kind == _DONE:
                        result = payload
            gc.collect(1)
            times.append(time.perf_counter() - start)
            if result is None or len(result[0]) != count:
                raise RuntimeError("the replay did not produce the recorded result")
            del result, payload
        if callgrind:
            _callgrind("off")
        print(
            f"decode + gc.collect(1) per response: median {statistics.median(times) * 1e3:.3f} ms,"
            f" fastest {min(times) * 1e3:.3f} ms"
        )
    finally:
        for statement in w.teardown_sql():
            await conn.execute(statement)
        await conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", choices=sorted(_fetch_workloads()))
    p.add_argument("--query", help="replay this query instead of the workload's")
    p.add_argument("--repeat", type=int, default=20, help="replays (default: 20)")
    p.add_argument("--dsn", default=os.environ.get("PGOXIDE_DSN"), help="an existing server")
    p.add_argument(
        "--callgrind", action="store_true", help="instrument only the replays (under valgrind)"
    )
    args = p.parse_args()
    with _server(args.dsn) as dsn:
        asyncio.run(_profile(dsn, args.workload, args.query, args.repeat, args.callgrind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
