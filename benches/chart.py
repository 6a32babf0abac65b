"""Draw the benchmark's rates as a bar chart, from what ``run.py --json`` writes.

    python benches/chart.py RESULTS.json OUT.svg [--loop asyncio|uvloop] [--workloads a,b]

One group of horizontal bars per workload, one bar per driver in fixed colours, each
labelled with its rate (median of the timed runs) in the workload's unit. The workloads
differ in scale by three orders of magnitude, so each group is scaled to its own fastest
driver: bars compare within a workload, the labels give the absolute rates. The caption says
what the numbers were measured on (CPU, OS, Python, PostgreSQL, each driver's version, the
date, how many timed runs).

``run.py --chart PATH`` calls :func:`write_chart` with the same document after a run.
matplotlib (in the ``bench`` extra) is imported only when a chart is drawn, so the rest of
the benchmark runs without it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

#: The workloads the chart shows when it is not told which: those of README.md's benchmark
#: table, in its order. A document that has none of them gets all of its own.
README_WORKLOADS = ("wide", "ints", "text", "queries", "executemany", "intarray", "pgtype", "bytea")

#: Drivers in the order of their bars (top to bottom), their names and colours
#: (Okabe-Ito, which stays distinguishable with colour-blindness). Others come after, grey.
DRIVER_ORDER = ("pgoxide", "asyncpg", "psycopg", "psqlpy")
DRIVER_LABELS = {"psycopg": "psycopg 3"}
DRIVER_COLOURS = {
    "pgoxide": "#D55E00",
    "asyncpg": "#0072B2",
    "psycopg": "#009E73",
    "psqlpy": "#CC79A7",
}
_OTHER_COLOUR = "#999999"

#: Width of the figure in inches; at 100 dpi, the width of a README on GitHub.
_WIDTH = 9.0
_BAR = 0.16  # inches per bar
_GAP = 0.20  # inches between workloads
_CAPTION_CHARS = 118  # characters per caption line that fit the width at its font size


class ChartError(Exception):
    """The document cannot be drawn (no matplotlib, or nothing to draw)."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise ChartError(
            "drawing the chart needs matplotlib, which is not installed: pip install "
            "matplotlib (it is in pgoxide's bench extra)"
        ) from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def default_loop(doc: Mapping[str, Any]) -> str:
    """uvloop if the run measured it, else the first loop it ran."""
    loops = list(doc.get("loops") or [])
    loops += [r["loop"] for r in doc["results"] if r["loop"] not in loops]
    if not loops:
        raise ChartError("the document has no results")
    return "uvloop" if "uvloop" in loops else loops[0]


def chosen_workloads(doc: Mapping[str, Any], loop: str) -> list[str]:
    """README_WORKLOADS that have results under ``loop``, or, if none has, every workload
    with results, in the document's order."""
    present = list(dict.fromkeys(r["workload"] for r in doc["results"] if r["loop"] == loop))
    shown = [w for w in README_WORKLOADS if w in present]
    return shown or present


def _rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e3:
        return f"{rate / 1e3:.0f}k" if rate >= 1e5 else f"{rate / 1e3:.1f}k"
    return f"{rate:.0f}"


def _count(count: int, repetitions: int) -> str:
    if repetitions > 1:
        return f"{count // repetitions:,}x{repetitions:,}"  # as run.py's table
    return f"{count:,}"


def _short_version(version: str) -> str:
    # pgoxide's says when its extension was built: useful in the run's header, noise here.
    return re.sub(r" \(extension built [^)]*\)", "", version)


def caption(doc: Mapping[str, Any], loop: str) -> str:
    """What the numbers were measured on, and how, in a few lines."""
    m = doc.get("machine") or {}
    cpus = m.get("cpus", doc.get("cpus"))
    cpu = m.get("cpu_model") or "unknown CPU"
    system = m.get("os") or doc.get("platform", "")
    if m.get("kernel"):
        system += f", kernel {m['kernel']}"
    pg = doc.get("postgresql") or {}
    # "15.18 (Debian 15.18-0+deb12u1)": the packager's suffix is noise here.
    server = f"PostgreSQL {str(pg.get('server_version', '?')).split()[0]}"
    settings = [f"{k}={pg[k]}" for k in ("fsync", "synchronous_commit") if k in pg]
    if settings:
        server += f" ({', '.join(settings)})"
    if str(doc.get("server", "")).startswith("throwaway"):
        server += " on the same machine"
    versions = dict(doc.get("versions") or {})
    drivers = ", ".join(f"{n} {_short_version(v)}" for n, v in versions.items() if n != "uvloop")
    if loop == "uvloop" and "uvloop" in versions:
        loop_text = f"uvloop {versions['uvloop']}"
    else:
        loop_text = f"{loop} event loop"
    python = f"{doc.get('python_implementation', 'Python')} {doc.get('python', '?')}"
    date = str(doc.get("started", ""))[:10]
    repeat = doc.get("repeat", "?")
    runs = f"median of {repeat} timed run{'s' if repeat != 1 else ''}"
    if doc.get("scale", 1.0) != 1.0:
        runs += f", --scale {doc['scale']:g} (not the published counts)"
    if not doc.get("gc_in_clock", True):
        runs += ", --no-gc"
    lines = [
        f"{cpu}, {cpus} cores; {system}; {python}; {server}, TCP, no TLS",
        f"{drivers}; {loop_text}; {runs}" + (f"; {date}" if date else ""),
    ]
    return "\n".join(textwrap.fill(line, _CAPTION_CHARS, subsequent_indent="  ") for line in lines)


def write_chart(
    doc: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    loop: str | None = None,
    workloads: Sequence[str] | None = None,
) -> None:
    """Draw ``doc`` (what ``run.py --json`` writes) to ``path``, an .svg or .png file.

    ``loop``: the event loop whose results to show (default: :func:`default_loop`);
    ``workloads``: which, in that order (default: :func:`chosen_workloads`)."""
    plt = _pyplot()
    loop = loop or default_loop(doc)
    names = list(workloads) if workloads else chosen_workloads(doc, loop)
    results = {(r["workload"], r["driver"]): r for r in doc["results"] if r["loop"] == loop}
    if not results:
        loops = ", ".join(dict.fromkeys(r["loop"] for r in doc["results"]))
        raise ChartError(f"no results under {loop} (the document has: {loops or 'none'})")
    absent = [name for name in names if not any(w == name for w, _ in results)]
    if absent or not names:
        present = ", ".join(dict.fromkeys(w for w, _ in results))
        raise ChartError(
            f"no results under {loop} for {', '.join(absent) or 'no workload'} "
            f"(the document has: {present})"
        )
    seen = list(dict.fromkeys(d for _, d in results))
    drivers = [d for d in DRIVER_ORDER if d in seen] + [d for d in seen if d not in DRIVER_ORDER]
    meta = doc.get("workloads") or {}

    n_bars = len(drivers)
    group = n_bars * _BAR + _GAP
    plot_height = len(names) * group
    footer = caption(doc, loop)
    # Inches above the bars for the title and legend, and below them for the axis and caption.
    top, bottom = 0.8, 0.55 + 0.15 * (footer.count("\n") + 1)
    fig = plt.figure(figsize=(_WIDTH, plot_height + top + bottom))
    ax = fig.add_axes((0.17, bottom / fig.get_figheight(), 0.80, plot_height / fig.get_figheight()))
    ax.set_ylim(plot_height, 0)
    ax.set_xlim(0, 1.3)  # room for the labels right of the fastest bar

    ticks, labels = [], []
    for i, name in enumerate(names):
        y0 = i * group + _GAP / 2
        rows = {d: results.get((name, d)) for d in drivers}
        rates = {d: r["rate_per_second"] for d, r in rows.items() if r and r["rate_per_second"]}
        fastest = max(rates.values(), default=0.0)
        unit = next((r["unit"] for r in rows.values() if r), meta.get(name, {}).get("unit", ""))
        some = next((r for r in rows.values() if r), None)
        count = _count(some["count"], some.get("repetitions", 1)) if some is not None else ""
        ticks.append(y0 + n_bars * _BAR / 2)
        labels.append(f"{name}\n{count} {unit}".rstrip())
        for j, d in enumerate(drivers):
            y = y0 + (j + 0.5) * _BAR
            r = rows[d]
            rate = rates.get(d)
            if rate is None:
                why = "n/a" if r is None else "error"
                ax.text(0.005, y, why, va="center", ha="left", fontsize=7.5, color="#666666")
                continue
            colour = DRIVER_COLOURS.get(d, _OTHER_COLOUR)
            ax.barh(y, rate / fastest, height=_BAR * 0.86, color=colour, edgecolor="none")
            ax.text(
                rate / fastest + 0.01,
                y,
                f"{_rate(rate)} {unit}/s",
                va="center",
                ha="left",
                fontsize=7.5,
                fontweight="bold" if d == "pgoxide" else "normal",
            )
        if i:
            ax.axhline(i * group, color="#dddddd", linewidth=0.6)

    ax.set_yticks(ticks, labels, fontsize=8.5)
    ax.tick_params(axis="y", length=0)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25%", "50%", "75%", "100%"], fontsize=7.5)
    ax.set_xlabel(
        "rate relative to the fastest driver of each workload (longer is faster)", fontsize=8
    )
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.spines["bottom"].set_bounds(0, 1)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)

    handles = [
        plt.Rectangle((0, 0), 1, 1, color=DRIVER_COLOURS.get(d, _OTHER_COLOUR)) for d in drivers
    ]
    fig.legend(
        handles,
        [DRIVER_LABELS.get(d, d) for d in drivers],
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.38 / fig.get_figheight()),
        ncol=len(drivers),
        frameon=False,
        fontsize=9,
    )
    fig.suptitle(
        f"Rows or queries per second, per workload ({loop})",
        y=1 - 0.12 / fig.get_figheight(),
        fontsize=11,
        va="top",
    )
    fig.text(
        0.01,
        0.08 / fig.get_figheight(),
        footer,
        fontsize=7,
        color="#444444",
        va="bottom",
        ha="left",
        linespacing=1.4,
    )
    # Reproducible files: no creation date, and the same element ids every time.
    metadata = {"Date": None} if str(path).lower().endswith(".svg") else {}
    with plt.rc_context({"svg.hashsalt": "pgoxide-bench"}):
        fig.savefig(path, dpi=150, facecolor="white", metadata=metadata)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Draw run.py --json results as a bar chart.")
    p.add_argument("results", help="a JSON file written by benches/run.py --json")
    p.add_argument("out", help="the chart to write: PATH.svg or PATH.png")
    p.add_argument("--loop", help="the event loop to show (default: uvloop if measured)")
    p.add_argument(
        "--workloads",
        help="comma-separated workloads to show, in that order (default: README.md's "
        f"{','.join(README_WORKLOADS)} that the file has, or all of its own)",
    )
    args = p.parse_args(argv)
    if os.path.splitext(args.out)[1].lower() not in (".svg", ".png"):
        p.error("OUT must end in .svg or .png")
    with open(args.results) as f:
        doc = json.load(f)
    workloads = [w.strip() for w in args.workloads.split(",")] if args.workloads else None
    try:
        write_chart(doc, args.out, loop=args.loop, workloads=workloads)
    except ChartError as e:
        print(f"chart.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
