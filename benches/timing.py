"""Timing: one untimed warm-up per driver, then interleaved timed runs.

For each workload every driver first runs once untimed (which also fills its statement
cache and checks the result).  Then each of the ``repeat`` rounds runs every driver once, the
order rotated by one each round so no driver always goes first or last.  Only
``Workload.run`` is inside the clock; ``prepare`` (e.g. TRUNCATE), the result check and
freeing the result are outside it.  A full garbage collection runs before each timed run so
one driver's garbage is not collected on another's clock; by default the collector stays
enabled while timing, because collections triggered by a driver's own allocations are part of
its cost (``collect_garbage=False`` disables it inside the clock, to isolate decoding speed).

Besides wall time each run records the CPU time this process used (``time.process_time``:
the driver's work, the event loop and the kernel's work for this process) and, when the
server runs on this machine, the CPU time of the connection's server process (from
``/proc/<pid>/schedstat``); for a workload on several connections or a pool, the sum over
all of their server processes (``Driver.server_pids``).  A workload whose server CPU time is
close to its wall time is bound by the server: no client can make it much faster.

A driver that raises, returns a wrong result or exceeds the timeout is reported with the
error and skipped for the rest of that workload; the caller decides what to do with its
connection.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from drivers import Driver
from workloads import Workload

__all__ = ["Measurement", "measure"]


@dataclass
class Measurement:
    """The timed runs of one driver on one workload under one event loop."""

    loop: str
    workload: str
    driver: str
    unit: str
    count: int
    #: Operations per timed run that make up ``count`` (e.g. fetches of a small result).
    repetitions: int = 1
    seconds: list[float] = field(default_factory=list)
    #: CPU seconds of this process per timed run.
    client_cpu: list[float] = field(default_factory=list)
    #: CPU seconds of the driver's server processes (its connection's, or the sum over all
    #: of its connections or its pool's) per timed run (empty if unreadable).
    server_cpu: list[float] = field(default_factory=list)
    result_types: tuple[str, ...] | None = None
    #: Why the driver could not run the workload (then ``seconds`` may be short or empty).
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every run succeeded."""
        return self.error is None and bool(self.seconds)

    @property
    def median(self) -> float:
        """Median seconds per run."""
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Items (rows or queries) per second, from the median run."""
        return self.count / self.median

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median: how noisy the runs were."""
        return (max(self.seconds) - min(self.seconds)) / self.median

    def to_json(self) -> dict[str, object]:
        return {
            "loop": self.loop,
            "workload": self.workload,
            "driver": self.driver,
            "unit": self.unit,
            "count": self.count,
            "repetitions": self.repetitions,
            "seconds": self.seconds,
            "median_seconds": self.median if self.ok else None,
            "rate_per_second": self.rate if self.ok else None,
            "spread": self.spread if self.ok else None,
            "client_cpu_seconds": self.client_cpu,
            "server_cpu_seconds": self.server_cpu,
            "error": self.error,
        }


def server_cpu_seconds(pids: Sequence[int]) -> float | None:
    """CPU time the processes ``pids`` of this machine have used in all, or None if any of
    them cannot be read (no pids, a remote server, no /proc, or a process that has exited,
    e.g. a pool connection replaced during the run)."""
    if not pids:
        return None
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return total / 1e9


@dataclass
class _Run:
    seconds: float
    client_cpu: float
    server_cpu: float | None
    types: tuple[str, ...] | None


async def _run_once(workload: Workload, driver: Driver, collect_garbage: bool) -> _Run:
    arg = await workload.prepare(driver)
    # The event loop still holds the finished future that carried the previous run's result
    # until the current step of this task ends: yield once so that result is freed here, not
    # inside the next driver's clock.
    await asyncio.sleep(0)
    gc.collect()
    if not collect_garbage:
        gc.disable()
    # After prepare, which reads the pool's server processes for a pool workload.
    pids = driver.server_pids()
    try:
        server_start = server_cpu_seconds(pids)
        cpu_start = time.process_time()
        start = time.perf_counter()
        result = await workload.run(driver, arg)
        if collect_garbage:
            # Charge each driver the collector work its result causes, including what it
            # defers past the call (pgoxide tracks a result's rows only when it completes):
            # the young and middle generations are collected inside the clock.
            gc.collect(1)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        server_end = server_cpu_seconds(pids)
    finally:
        gc.enable()
    await workload.verify(driver, result)
    types = workload.result_types(result)
    del result, arg
    server = None
    if server_start is not None and server_end is not None:
        server = server_end - server_start
    return _Run(elapsed, cpu, server, types)


async def measure(
    workload: Workload,
    drivers: list[Driver],
    repeat: int,
    loop: str,
    *,
    collect_garbage: bool = True,
    timeout: float | None = None,
) -> list[Measurement]:
    """Warm up, then time ``repeat`` interleaved rounds of ``workload`` on ``drivers``.

    A driver that raises, or whose run (with its check) takes longer than ``timeout``
    seconds, is reported with its error and left out of the later rounds."""
    results = {
        d.name: Measurement(
            loop,
            workload.name,
            d.name,
            workload.unit,
            workload.count,
            repetitions=workload.repetitions,
        )
        for d in drivers
    }
    active = list(drivers)
    for round_no in range(-1, repeat):  # round -1 is the warm-up
        shift = max(round_no, 0) % max(len(active), 1)
        for d in active[shift:] + active[:shift]:
            m = results[d.name]
            try:
                # The timeout is outside the clock (it wraps the whole run), and only there so
                # that a driver that hangs is reported instead of stopping the benchmark.
                run = await asyncio.wait_for(_run_once(workload, d, collect_garbage), timeout)
            except Exception as e:
                m.error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                if isinstance(e, asyncio.TimeoutError) and timeout is not None:
                    m.error += f" (runs are stopped after {timeout:.0f} s)"
                active.remove(d)
                continue
            if round_no < 0:
                m.result_types = run.types
                continue
            m.seconds.append(run.seconds)
            m.client_cpu.append(run.client_cpu)
            if run.server_cpu is not None:
                m.server_cpu.append(run.server_cpu)
    return [results[d.name] for d in drivers]
