#!/usr/bin/env python3
"""Generate ``python/pgoxide/exceptions/_sqlstate.py`` from PostgreSQL's ``errcodes.txt``.

Usage::

    python tools/gen_sqlstate.py [ERRCODES_TXT] [--output PATH] [--check]

Without ``ERRCODES_TXT`` the newest ``/usr/share/postgresql/*/errcodes.txt`` is used.
Each SQLSTATE becomes one exception class. The class-level code of each SQLSTATE class
(``XX000``) subclasses ``PostgresError`` (``01000`` is ``PostgresWarning``, the root of the
warning classes 01 and 02); every other code in the class subclasses its class-level class.
Class names follow asyncpg's so that code written against asyncpg keeps working after
switching the import.
"""

from __future__ import annotations

import argparse
import builtins
import glob
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "python" / "pgoxide" / "exceptions" / "_sqlstate.py"

# Codes whose spec name would give a clumsy class name; asyncpg spells these by hand.
NAME_OVERRIDES: dict[str, str] = {
    "08001": "ClientCannotConnectError",
    "08004": "ConnectionRejectionError",
    "08006": "ConnectionFailureError",
    "38002": "ModifyingExternalRoutineSQLDataNotPermittedError",
    "38003": "ProhibitedExternalRoutineSQLStatementAttemptedError",
    "38004": "ReadingExternalRoutineSQLDataNotPermittedError",
    "39004": "NullValueInExternalRoutineNotAllowedError",
    "42000": "SyntaxOrAccessError",
    "XX000": "InternalServerError",
}

# Words kept in upper case inside class names.
ACRONYMS: dict[str, str] = {"fdw": "FDW", "io": "IO", "plpgsql": "PLPGSQL", "sql": "SQL"}

# Class-level codes that are not errors: ``01000`` is the root of the warning classes
# (asyncpg's ``PostgresWarning``); ``02000`` (no data) is "also a warning class per the SQL
# standard". ``00000`` (successful completion) gets no class; a message carrying it maps to
# the plain ``PostgresLogMessage``.
WARNING_ROOT = "01000"
SKIPPED = frozenset({"00000"})

# Codes of other PostgreSQL versions than the errcodes.txt read, added when it lacks them, so
# every server's codes have a class (as asyncpg has): those added after PostgreSQL 15 and
# those removed since. (sqlstate, kind, spec name.)
OTHER_VERSIONS = (
    ("10608", "E", "invalid_argument_for_xquery"),  # 16
    ("25P04", "E", "transaction_timeout"),  # 17
    ("58P03", "E", "file_name_too_long"),  # 17
    ("72000", "E", "snapshot_too_old"),  # removed in 17
)


@dataclass(frozen=True)
class Code:
    """One SQLSTATE line of errcodes.txt."""

    sqlstate: str
    kind: str  # "E" error, "W" warning, "S" success
    spec_name: str

    @property
    def class_code(self) -> str:
        """The SQLSTATE of this code's class-level condition (``XX000``)."""
        return self.sqlstate[:2] + "000"


def class_name(code: Code) -> str:
    """The Python class name for ``code``, spelled as asyncpg spells it."""
    if code.sqlstate in NAME_OVERRIDES:
        return NAME_OVERRIDES[code.sqlstate]
    words = [ACRONYMS.get(word, word.capitalize()) for word in code.spec_name.split("_")]
    if words[-1] in ("Exception", "Failure"):
        words[-1] = "Error"
    elif words[-1] != "Error" and code.kind != "W":
        words.append("Error")
    name = "".join(words)
    # ``warning``, ``connection_exception``, ``syntax_error`` ... would shadow builtins.
    if hasattr(builtins, name):
        name = "Postgres" + name
    return name


def parse_errcodes(text: str) -> list[Code]:
    """Codes with a spec name, in file order; macro-only aliases are skipped."""
    codes: list[Code] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("Section:"):
            continue
        fields = line.split()
        if len(fields) < 4:
            continue  # an alias macro for a code listed with its spec name elsewhere
        sqlstate, kind, _macro, spec_name = fields[:4]
        if not re.fullmatch(r"[0-9A-Z]{5}", sqlstate) or kind not in ("E", "W", "S"):
            raise ValueError(f"unexpected errcodes.txt line: {line!r}")
        codes.append(Code(sqlstate, kind, spec_name))
    return codes


def with_other_versions(codes: list[Code]) -> list[Code]:
    """``codes`` and the :data:`OTHER_VERSIONS` codes it lacks, each after the last code of
    its class (or at the end)."""
    result = list(codes)
    known = {code.sqlstate for code in codes}
    for sqlstate, kind, spec_name in OTHER_VERSIONS:
        if sqlstate in known:
            continue
        code = Code(sqlstate, kind, spec_name)
        same_class = [i for i, c in enumerate(result) if c.class_code == code.class_code]
        result.insert(same_class[-1] + 1 if same_class else len(result), code)
    return result


@dataclass(frozen=True)
class GeneratedClass:
    """A class to emit: its name, base expression, SQLSTATE and condition name."""

    name: str
    base: str
    sqlstate: str
    spec_name: str


def build_classes(codes: list[Code]) -> list[GeneratedClass]:
    """Resolve names and bases; class-level classes come first within each class."""
    by_state = {code.sqlstate: code for code in codes}
    names: dict[str, str] = {}
    for code in codes:
        if code.sqlstate in SKIPPED:
            continue
        name = class_name(code)
        if name in names.values():
            raise ValueError(f"duplicate class name {name} for SQLSTATE {code.sqlstate}")
        names[code.sqlstate] = name

    result: list[GeneratedClass] = []
    seen_classes: list[str] = []
    groups: dict[str, list[Code]] = {}
    for code in codes:
        if code.sqlstate in SKIPPED:
            continue
        if code.class_code not in groups:
            seen_classes.append(code.class_code)
        groups.setdefault(code.class_code, []).append(code)

    for class_code in seen_classes:
        members = groups[class_code]
        # A class without an ``XX000`` code (class 10, XQuery, has only 10608) is headed
        # by its first listed code, as in asyncpg.
        head = by_state.get(class_code, members[0])
        if head.sqlstate == WARNING_ROOT:
            head_base = "PostgresLogMessage, Warning"
        elif head.kind == "W":
            head_base = names[WARNING_ROOT]
        else:
            head_base = "PostgresError"
        result.append(
            GeneratedClass(names[head.sqlstate], head_base, head.sqlstate, head.spec_name)
        )
        for code in members:
            if code is not head:
                result.append(
                    GeneratedClass(
                        names[code.sqlstate], names[head.sqlstate], code.sqlstate, code.spec_name
                    )
                )
    return result


def render(classes: list[GeneratedClass], source: str, command: str) -> str:
    """The text of ``_sqlstate.py``."""
    out = [
        "# GENERATED FILE -- DO NOT EDIT.",
        f"# Generated by tools/gen_sqlstate.py from {source}",
        f"# Command: {command}",
        '"""Exception classes for PostgreSQL SQLSTATE codes, one per code, grouped by class."""',
        "",
        "from __future__ import annotations",
        "",
        "from . import PostgresError, PostgresLogMessage",
        "",
    ]
    for cls in classes:
        out += [
            "",
            f"class {cls.name}({cls.base}):",
            f'    """SQLSTATE {cls.sqlstate}: {cls.spec_name}."""',
            "",
            f'    sqlstate = "{cls.sqlstate}"',
            "",
        ]
    out += ["", "__all__ = ("]
    out += [f'    "{name}",' for name in sorted(cls.name for cls in classes)]
    out += [")", ""]
    return "\n".join(out)


def newest_installed_errcodes() -> Path:
    """The errcodes.txt of the newest PostgreSQL installed under /usr/share/postgresql."""

    def version_key(path: str) -> tuple[int, ...]:
        version = Path(path).parent.name
        return tuple(int(part) for part in re.findall(r"\d+", version))

    candidates = sorted(glob.glob("/usr/share/postgresql/*/errcodes.txt"), key=version_key)
    if not candidates:
        raise SystemExit(
            "no /usr/share/postgresql/*/errcodes.txt found; pass the path to errcodes.txt"
        )
    return Path(candidates[-1])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "errcodes", nargs="?", type=Path, help="errcodes.txt (default: newest installed)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output file is not up to date"
    )
    args = parser.parse_args(argv)

    source = args.errcodes if args.errcodes is not None else newest_installed_errcodes()
    source = source.resolve()
    command = "python tools/gen_sqlstate.py"
    if args.errcodes is not None:
        command += f" {args.errcodes}"
    if args.output != DEFAULT_OUTPUT:
        command += f" --output {args.output}"
    classes = build_classes(with_other_versions(parse_errcodes(source.read_text(encoding="utf-8"))))
    text = render(classes, str(source), command)

    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run: {command}", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(classes)} classes to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
