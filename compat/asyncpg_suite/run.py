#!/usr/bin/env python3
"""Run asyncpg 0.32.0's own test suite with pgoxide as the driver under test.

    python3 compat/asyncpg_suite/run.py [--files test_codecs,test_execute,...] [--json out.json]

Downloads the asyncpg sdist (once, into the cache directory), copies its ``tests/`` into a
work directory, starts a throwaway PostgreSQL cluster with ``pgoxide.cluster`` (never port
5432), exports ``PGHOST``/``PGPORT``/``PGUSER``/``PGDATABASE`` so that asyncpg's ``_testbase``
uses it as a running cluster, and runs pytest once per test file with ``plugin.py`` (which
makes ``import asyncpg`` mean pgoxide).  Prints per-file counts; ``--json`` writes every
test's outcome and failure text.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = "0.32.0"
DEFAULT_FILES = (
    "test_codecs,test_execute,test_prepare,test_transaction,test_exceptions,test_listeners,"
    "test_timeout,test_record,test_cache_invalidation,test_pool,test_cursor,test_copy"
)
PYTEST_INI = """\
[pytest]
addopts = --assert=plain --tb=native --import-mode=importlib
filterwarnings = default
"""
OUTCOMES = ("passed", "failed", "error", "skipped", "excluded", "collection-error")
# A test reported more than once (a failed call and a failed teardown) counts as its worst.
_RANK = {
    o: i
    for i, o in enumerate(("passed", "skipped", "excluded", "failed", "error", "collection-error"))
}


def ensure_sdist(cache: str) -> str:
    sdist_dir = os.path.join(cache, f"asyncpg-{VERSION}")
    if os.path.isdir(os.path.join(sdist_dir, "tests")):
        return sdist_dir
    os.makedirs(cache, exist_ok=True)
    archive = os.path.join(cache, f"asyncpg-{VERSION}.tar.gz")
    if not os.path.exists(archive):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                f"asyncpg=={VERSION}",
                "--no-binary",
                ":all:",
                "--no-deps",
                "-d",
                cache,
            ],
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(cache)
    return sdist_dir


def prepare_workdir(cache: str, sdist_dir: str) -> str:
    work = os.path.join(cache, "work")
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work)
    # Only tests/: the sdist's asyncpg/ package must never be importable from here.
    shutil.copytree(os.path.join(sdist_dir, "tests"), os.path.join(work, "tests"))
    with open(os.path.join(work, "pytest.ini"), "w") as f:
        f.write(PYTEST_INI)
    return work


def start_cluster():
    from pgoxide.cluster import Cluster

    # What asyncpg's ClusterTestCase.get_server_settings() asks of a cluster it starts.
    cluster = Cluster(settings={"log_connections": "on", "jit": "off"}, superuser="postgres")
    cluster.start()
    assert cluster.port != 5432
    return cluster


RESET_SQL = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE pid <> pg_backend_pid() AND backend_type = 'client backend';
DROP SCHEMA IF EXISTS public CASCADE;
CREATE SCHEMA public;
GRANT ALL ON SCHEMA public TO PUBLIC;
"""


def reset_database(cluster) -> None:
    """Throw away what earlier tests left in the postgres database (tables, types,
    extensions live in ``public``)."""
    cluster.psql(RESET_SQL)


def aggregate(records: list[dict]) -> dict[str, dict]:
    tests: dict[str, dict] = {}
    for r in records:
        if r.get("outcome") == "meta":
            continue
        old = tests.get(r["id"])
        if old is None or _RANK[r["outcome"]] > _RANK[old["outcome"]]:
            tests[r["id"]] = r
    return tests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--files",
        default=DEFAULT_FILES,
        help="comma-separated test modules of asyncpg's tests/ (default: %(default)s)",
    )
    ap.add_argument("--json", help="write all outcomes and failure texts here")
    ap.add_argument(
        "--cache",
        default=os.environ.get("ASYNCPG_SUITE_CACHE", "/tmp/asyncpg_suite_cache"),
        help="where the sdist, the work dir and the logs go (default: %(default)s)",
    )
    ap.add_argument("--timeout", type=int, default=60, help="per-test timeout (pytest-timeout)")
    ap.add_argument("--file-timeout", type=int, default=1800, help="wall-clock limit per file")
    ap.add_argument(
        "--strict", action="store_true", help="disable the harness adapters A1-A4 (see plugin.py)"
    )
    ap.add_argument(
        "--no-isolate",
        action="store_true",
        help="do not re-run each failing test alone to rule out order effects",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a test fails that known.py does not list, or one it lists passes",
    )
    ap.add_argument("-k", help="passed to pytest -k")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args()

    sdist_dir = ensure_sdist(args.cache)
    work = prepare_workdir(args.cache, sdist_dir)
    logs = os.path.join(args.cache, "logs")
    os.makedirs(logs, exist_ok=True)
    files = [f.strip().removesuffix(".py") for f in args.files.split(",") if f.strip()]

    cluster = start_cluster()
    print(
        f"cluster: PostgreSQL {'.'.join(map(str, cluster.version))} on 127.0.0.1:{cluster.port}",
        flush=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=cluster.host,
        PGPORT=str(cluster.port),
        PGUSER="postgres",
        PGDATABASE="postgres",
        ASYNCPG_SDIST_DIR=sdist_dir,
        PYTHONPATH=os.pathsep.join([HERE, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    if args.strict:
        env["PGOXIDE_SUITE_STRICT"] = "1"
    all_records: list[dict] = []
    rows = []

    def run_pytest(targets: list[str], results: str, log_path: str, timeout: int) -> object:
        if os.path.exists(results):
            os.unlink(results)
        env["PGOXIDE_SUITE_RESULTS"] = results
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *targets,
            "-p",
            "plugin",
            "-p",
            "no:asyncio",
            "-p",
            "no:cacheprovider",
            "-p",
            "timeout",
            "--timeout",
            str(args.timeout),
            "-q",
            "-rN",
            "--color=no",
        ]
        if args.k and len(targets) == 1 and "::" not in targets[0]:
            cmd += ["-k", args.k]
        cmd += args.pytest_args
        with open(log_path, "a") as log:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            try:
                return subprocess.run(
                    cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
                ).returncode
            except subprocess.TimeoutExpired:
                return "timeout"

    def read(results: str) -> list[dict]:
        if not os.path.exists(results):
            return []
        with open(results) as f:
            return [json.loads(line) for line in f if line.strip()]

    try:
        for name in files:
            started = time.monotonic()
            log_path = os.path.join(logs, f"{name}.log")
            open(log_path, "w").close()
            reset_database(cluster)
            results = os.path.join(logs, f"{name}.jsonl")
            rc = run_pytest([f"tests/{name}.py"], results, log_path, args.file_timeout)
            records = read(results)
            tests = aggregate(records)
            isolated = 0
            if not args.no_isolate:
                # Re-run every failure alone, on a clean schema: a test that hangs or leaves
                # tables behind must not be blamed for the next ones.
                for tid, rec in sorted(tests.items()):
                    if rec["outcome"] not in ("failed", "error"):
                        continue
                    isolated += 1
                    reset_database(cluster)
                    one = os.path.join(logs, f"{name}.isolated.jsonl")
                    run_pytest([f"tests/{tid}"], one, log_path, args.timeout * 3 + 60)
                    again = aggregate(read(one)).get(tid)
                    if again is None:
                        rec["isolated"] = "no-result"
                        continue
                    rec["isolated"] = again["outcome"]
                    rec["first_pass_message"] = rec.get("message", "")
                    if again["outcome"] == "passed":
                        rec["outcome"] = "passed"
                        rec["order_dependent"] = True
                    else:
                        rec.update(
                            {
                                k: again[k]
                                for k in ("outcome", "when", "message", "text")
                                if k in again
                            }
                        )
                    records.extend(r for r in read(one) if r.get("outcome") == "meta")
            elapsed = time.monotonic() - started
            for r in tests.values():
                r["file"] = name
            all_records.extend(tests.values())
            all_records.extend(r for r in records if r.get("outcome") == "meta")
            counts = collections.Counter(r["outcome"] for r in tests.values())
            counts["order-dependent"] = sum(1 for r in tests.values() if r.get("order_dependent"))
            rows.append((name, counts, rc, elapsed))
            print(
                f"{name:28s} "
                + " ".join(f"{o}={counts.get(o, 0)}" for o in OUTCOMES)
                + f" order-dependent={counts['order-dependent']}"
                + f"  (rc={rc}, {isolated} re-run alone, {elapsed:.0f}s)",
                flush=True,
            )
    finally:
        cluster.cleanup()

    total = collections.Counter()
    for _, counts, _, _ in rows:
        total.update(counts)
    print()
    print(f"{'file':28s} " + " ".join(f"{o[:10]:>10s}" for o in (*OUTCOMES, "order-dependent")))
    cols = (*OUTCOMES, "order-dependent")
    for name, counts, _, _ in rows:
        print(f"{name:28s} " + " ".join(f"{counts.get(o, 0):10d}" for o in cols))
    print(f"{'TOTAL':28s} " + " ".join(f"{total.get(o, 0):10d}" for o in cols))
    adapters = [r for r in all_records if r.get("outcome") == "meta"]
    if adapters:
        used = collections.Counter()
        for r in adapters:
            used.update(r["adapters"])
        print("harness adapters used:", dict(used), "(strict)" if args.strict else "")
    print(f"logs: {logs}")
    if args.json:
        tests = {r["id"]: r for r in all_records if r.get("outcome") != "meta"}
        with open(args.json, "w") as f:
            json.dump(
                {
                    "asyncpg_version": VERSION,
                    "strict": args.strict,
                    "files": {name: dict(counts) for name, counts, _, _ in rows},
                    "tests": sorted(tests.values(), key=lambda r: r["id"]),
                },
                f,
                indent=1,
            )
        print(f"json: {args.json}")
    if args.check:
        return check(all_records)
    return 0


def check(records: list[dict]) -> int:
    """Compares the outcomes with known.py: every failure must be listed there with its
    reason, and every listed test must still fail (so the list only shrinks)."""
    from known import KNOWN, UNSTABLE

    failed = {
        r["id"]: r.get("message", "")
        for r in records
        if r.get("outcome") in ("failed", "error", "collection-error")
    }
    ran = {r["id"] for r in records if r.get("outcome") != "meta"}
    for tid in sorted(set(UNSTABLE) & set(failed)):
        print(f"unstable, failed this time: {tid}: {UNSTABLE[tid]}")
    failed = {t: m for t, m in failed.items() if t not in UNSTABLE}
    unexpected = sorted(set(failed) - set(KNOWN))
    fixed = sorted(t for t in KNOWN if t in ran and t not in failed)
    for tid in unexpected:
        print(f"UNEXPECTED FAILURE {tid}: {failed[tid][:200]}")
    for tid in fixed:
        print(f"NOW PASSES (remove from known.py): {tid}")
    print(
        f"check: {len(failed)} failing, {len(failed) - len(unexpected)} of them known; "
        f"{len(unexpected)} unexpected, {len(fixed)} known ones now pass"
    )
    return 1 if unexpected or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
