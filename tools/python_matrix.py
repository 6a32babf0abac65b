#!/usr/bin/env python3
"""Build pgoxide for every CPython 3.10-3.13 on this machine and test each build; then build
the sdist, install it into a clean virtual environment and run the quick start from there.

    python3 tools/python_matrix.py [--versions 3.10,3.12,3.13] [--no-sdist]

For each version: a release wheel built with maturin, a new virtual environment with that
wheel and the test dependencies, and the unit tests plus one integration file per
capability, run from a copy of tests/ so that the installed wheel (not the source tree) is
what they import. A version this machine does not have is reported as skipped, by name. The
full suite runs on the main interpreter (the README's test command); this is the rest of
the matrix. Exits 1 if any build or test fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSIONS = ("3.10", "3.11", "3.12", "3.13")
# One integration file per capability, and the unit tests.
TESTS = (
    "tests/unit",
    "tests/test_connect.py",  # connection strings, hosts, timeouts
    "tests/test_auth_policy.py",  # authentication
    "tests/test_tls.py",  # TLS and channel binding
    "tests/test_query.py",  # queries and records
    "tests/test_types.py",  # the type system
    "tests/test_transactions.py",
    "tests/test_operations.py",  # the operation path: pipelining, cancellation
    "tests/test_cursor.py",
    "tests/test_copy.py",
    "tests/test_pool.py",
    "tests/test_listeners.py",
    "tests/test_tracing.py",
    "tests/test_replication.py",
    "tests/test_asyncpg_api.py",
)
TEST_DEPS = (
    "pytest>=8",
    "pytest-asyncio>=1.0",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "cryptography>=42",
    "uvloop>=0.19",
    "asyncpg>=0.30",
    "opentelemetry-api>=1.27",
    "opentelemetry-sdk>=1.27",
)


def find_python(version: str) -> str | None:
    """An interpreter of ``version``: on PATH, or one of pyenv's."""
    for name in (f"python{version}",):
        found = shutil.which(name)
        if found and _runs(found, version):
            return found
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for candidate in sorted(
        glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python3")), reverse=True
    ):
        if _runs(candidate, version):
            return candidate
    return None


def _runs(python: str, version: str) -> bool:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def run(cmd: list[str], **kwargs: object) -> int:
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, **kwargs).returncode  # type: ignore[call-overload]


def venv_with(python: str, where: str, packages: list[str]) -> str | None:
    if run([python, "-m", "venv", where]) != 0:
        return None
    vpy = os.path.join(where, "bin", "python")
    if run([vpy, "-m", "pip", "install", "-q", *packages]) != 0:
        return None
    return vpy


def test_version(version: str, python: str, work: str) -> str:
    wheels = os.path.join(work, f"wheels-{version}")
    # A target directory of its own, so the editable build in target/ is left alone.
    env = {**os.environ, "CARGO_TARGET_DIR": os.path.join(ROOT, "target", "matrix")}
    build = ["maturin", "build", "--release", "-q", "-i", python, "-o", wheels]
    if run(build, cwd=ROOT, env=env) != 0:
        return "build failed"
    (wheel,) = glob.glob(os.path.join(wheels, "*.whl"))
    vpy = venv_with(python, os.path.join(work, f"venv-{version}"), [wheel, *TEST_DEPS])
    if vpy is None:
        return "install failed"
    # The tests run from a copy, so `import pgoxide` finds the wheel, not python/ here.
    tests_copy = os.path.join(work, f"tests-{version}")
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(tests_copy, "tests"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tests_copy)
    check = [
        vpy,
        "-c",
        "import pgoxide, sys; assert 'site-packages' in pgoxide.__file__, pgoxide.__file__",
    ]
    if run(check, cwd=tests_copy) != 0:
        return "the wheel is not what the tests import"
    code = run([vpy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=tests_copy)
    return "passed" if code == 0 else f"tests failed (pytest exit {code})"


def test_sdist(python: str, work: str) -> str:
    dist = os.path.join(work, "sdist")
    if run(["maturin", "sdist", "-o", dist], cwd=ROOT) != 0:
        return "sdist failed"
    (sdist,) = glob.glob(os.path.join(dist, "*.tar.gz"))
    vpy = venv_with(python, os.path.join(work, "venv-sdist"), [sdist])
    if vpy is None:
        return "install from the sdist failed"
    # The quick start, from a directory outside the source tree.
    example = shutil.copy(os.path.join(ROOT, "examples", "quickstart.py"), work)
    env = {k: v for k, v in os.environ.items() if k != "PGOXIDE_DSN"}
    code = run([vpy, example], cwd=work, env=env)
    return "passed" if code == 0 else f"the quick start failed (exit {code})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--versions", default=",".join(VERSIONS), help="default: %(default)s")
    ap.add_argument("--no-sdist", action="store_true", help="skip the sdist install check")
    args = ap.parse_args()
    results: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pgoxide-matrix-") as work:
        for version in args.versions.split(","):
            started = time.monotonic()
            python = find_python(version)
            outcome = (
                "skipped: no CPython " + version + " here"
                if python is None
                else test_version(version, python, work)
            )
            results.append((f"CPython {version}", outcome, time.monotonic() - started))
        if not args.no_sdist:
            started = time.monotonic()
            results.append(
                (
                    "sdist + quick start",
                    test_sdist(sys.executable, work),
                    time.monotonic() - started,
                )
            )
    print()
    for what, outcome, took in results:
        print(f"{what:22s} {outcome}  ({took:.0f} s)")
    failed = [r for r in results if not (r[1] == "passed" or r[1].startswith("skipped"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
