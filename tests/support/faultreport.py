"""The fault matrix's tally: outcomes per operation and fault, printed after the run."""

from __future__ import annotations

import re
from collections import Counter

from .faultproxy import Fault

__all__ = ["OUTCOMES", "record_outcome", "table"]

#: (operation, fault kind and direction, outcome) → cases
OUTCOMES: Counter[tuple[str, str, str]] = Counter()


def record_outcome(operation: str, fault: Fault | str, outcome: str) -> None:
    """Counts one case; a proxy's fault is named without its byte offset, so its cut points
    add up; a server-side fault is given by its label."""
    OUTCOMES[(operation, re.sub(r" (at byte|after) \d+( B)?", "", str(fault)), outcome)] += 1


def table() -> list[str]:
    """The tally as Markdown rows: operation, fault, and each outcome with its count."""
    cells: dict[tuple[str, str], Counter[str]] = {}
    for (operation, fault, outcome), count in OUTCOMES.items():
        cells.setdefault((operation, fault), Counter())[outcome] += count
    lines = ["| operation | fault | cases | outcomes |", "|---|---|---:|---|"]
    for (operation, fault), outcomes in cells.items():
        text = ", ".join(f"{o} {n}" for o, n in sorted(outcomes.items()))
        lines.append(f"| {operation} | {fault} | {sum(outcomes.values())} | {text} |")
    return lines
