#!/usr/bin/env python3
"""Run SQLAlchemy's own PostgreSQL tests with asyncpg, then with pgoxide, and compare.

    python3 compat/sqlalchemy_suite/run.py [--drivers asyncpg,pgoxide] [--json out.json]

Downloads the sdist of the installed SQLAlchemy version (once, into the cache directory),
starts a throwaway PostgreSQL cluster with ``pgoxide.cluster`` (never port 5432), creates the
database SQLAlchemy's README.unittests.rst asks for (``test``, UTF8, the schemas
``test_schema`` and ``test_schema_2``, hstore and citext, English text search,
``max_prepared_transactions``), and runs the selected test paths of the sdist with pytest and
SQLAlchemy's plugin, once per driver (``--dburi postgresql+<driver>://``), on a freshly
recreated database each time.  Prints the pass/fail/skip/error counts side by side and lists
the tests that pass under asyncpg but not under pgoxide, grouped by their error.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATHS = "test/dialect/postgresql/,test/orm/test_query.py"
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")
_RANK = {o: i for i, o in enumerate(("passed", "xfailed", "skipped", "failed", "error"))}

DATABASE = "test"
PASSWORD = "tiger"  # README.unittests.rst's scott/tiger; ignored, the cluster trusts 127.0.0.1
# README.unittests.rst, "Database Configuration" and the docker example for PostgreSQL.
SETUP_SQL = """
CREATE SCHEMA test_schema;
CREATE SCHEMA test_schema_2;
CREATE EXTENSION hstore;
CREATE EXTENSION citext;
"""


def sqlalchemy_version() -> str:
    from importlib.metadata import version

    return version("sqlalchemy")


def ensure_sdist(cache: str, version: str) -> str:
    sdist_dir = os.path.join(cache, f"sqlalchemy-{version}")
    if os.path.isdir(os.path.join(sdist_dir, "test")):
        return sdist_dir
    os.makedirs(cache, exist_ok=True)
    archive = os.path.join(cache, f"sqlalchemy-{version}.tar.gz")
    if not os.path.exists(archive):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                f"sqlalchemy=={version}",
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


def start_cluster():
    from pgoxide.cluster import Cluster

    cluster = Cluster(
        settings={"max_prepared_transactions": "10", "jit": "off", "fsync": "off"},
        superuser="postgres",
    )
    cluster.start()
    assert cluster.port != 5432
    return cluster


def recreate_database(cluster) -> None:
    """A new, empty ``test`` database: the suite must start on an empty one, and the first
    driver's run must leave nothing for the second."""
    # A two-phase test that failed half-way leaves a prepared transaction holding locks.
    rows = cluster.psql("SELECT database, gid FROM pg_prepared_xacts", database="postgres")
    for row in rows.splitlines():
        database, _, gid = row.partition("|")
        if gid and re.fullmatch(r"[\w.:-]+", gid):
            cluster.psql(f"ROLLBACK PREPARED '{gid}'", database=database)
    cluster.psql(
        f"""
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = '{DATABASE}' AND pid <> pg_backend_pid();
        DROP DATABASE IF EXISTS {DATABASE};
        CREATE DATABASE {DATABASE} ENCODING 'UTF8' TEMPLATE template0;
        ALTER DATABASE {DATABASE} SET default_text_search_config = 'pg_catalog.english';
        """
    )
    cluster.psql(SETUP_SQL, database=DATABASE)
    # test_array_str_collation declares COLLATE "en_US"; the cluster's locale is C and the
    # machine may have no en_US locale, so take it from ICU when the server has ICU.
    try:
        cluster.psql(
            """CREATE COLLATION "en_US" (provider = icu, locale = 'en-US');""", database=DATABASE
        )
    except Exception as e:
        print(f"note: no en_US collation ({str(e).strip().splitlines()[-1]})", flush=True)


def parse_junit(path: str, driver: str) -> dict[str, dict]:
    """Outcomes by test id; SQLAlchemy names backend test classes after the URL
    (``AsyncPgTest_postgresql+asyncpg_async_15_18``), so ``+<driver>_`` in the class name
    becomes ``+DRIVER_`` for the two runs' ids to meet (test parameters may name drivers
    themselves and are left alone)."""
    tests: dict[str, dict] = {}
    if not os.path.exists(path):
        return tests
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        classname = (case.get("classname") or "").replace(f"+{driver}_", "+DRIVER_")
        tid = f"{classname}::{case.get('name')}"
        outcome, message, text = "passed", "", ""
        for child in case:
            tag = child.tag
            if tag in ("failure", "error"):
                outcome = "failed" if tag == "failure" else "error"
                message = child.get("message") or ""
                text = child.text or ""
                break
            if tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                message = child.get("message") or ""
        rec = {"id": tid, "outcome": outcome, "message": message, "text": text}
        old = tests.get(tid)
        if old is None or _RANK[outcome] > _RANK[old["outcome"]]:
            tests[tid] = rec
    return tests


def error_key(rec: dict) -> str:
    """The error, with the parts that differ between instances of one cause (numbers,
    quoted values, addresses) blanked, for grouping."""
    message = rec["message"] or rec["text"].strip().splitlines()[-1:][0:1] or [""]
    if isinstance(message, list):
        message = message[0]
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    first = re.sub(r"0x[0-9a-f]+", "0x…", first)
    first = re.sub(r"'[^']*'", "'…'", first)
    first = re.sub(r"\d+", "N", first)
    return first[:200]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--paths",
        default=DEFAULT_PATHS,
        help="comma-separated test paths inside the sdist (default: %(default)s)",
    )
    ap.add_argument(
        "--drivers",
        default="asyncpg,pgoxide",
        help="drivers to run, in order (default: %(default)s)",
    )
    ap.add_argument(
        "--cache",
        default=os.environ.get("SQLALCHEMY_SUITE_CACHE", "/tmp/sqlalchemy_suite_cache"),
        help="where the sdist and the logs go (default: %(default)s)",
    )
    ap.add_argument("--timeout", type=int, default=120, help="per-test timeout (pytest-timeout)")
    ap.add_argument("--run-timeout", type=int, default=5400, help="wall-clock limit per driver")
    ap.add_argument(
        "--pgoxide-own-name",
        action="store_true",
        help="do not let SQLAlchemy's '+asyncpg' test requirements apply to pgoxide "
        "(see pgoxide_sqla_plugin.py)",
    )
    ap.add_argument("--json", help="write every test's outcome per driver and the differences")
    ap.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a test passes under asyncpg and not under pgoxide (what CI runs)",
    )
    ap.add_argument("-k", help="passed to pytest -k")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="do not run; compare the junit files of the last run in the cache",
    )
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args()

    version = sqlalchemy_version()
    sdist_dir = ensure_sdist(args.cache, version)
    logs = os.path.join(args.cache, "logs")
    os.makedirs(logs, exist_ok=True)
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]

    results: dict[str, dict[str, dict]] = {}
    info: dict[str, dict] = {}
    cluster = None if args.reuse else start_cluster()
    try:
        if cluster is not None:
            print(
                f"SQLAlchemy {version}; cluster: PostgreSQL "
                f"{'.'.join(map(str, cluster.version))} on 127.0.0.1:{cluster.port}",
                flush=True,
            )
        for driver in drivers:
            junit = os.path.join(logs, f"{driver}.xml")
            log_path = os.path.join(logs, f"{driver}.log")
            if cluster is not None:
                recreate_database(cluster)
                # A password although the cluster trusts local TCP: test_multiple_host_real_connect
                # builds URLs from the password of --dburi.
                url = (
                    f"postgresql+{driver}://postgres:{PASSWORD}@127.0.0.1:{cluster.port}/{DATABASE}"
                )
                env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
                env["PYTHONPATH"] = os.pathsep.join([HERE, env.get("PYTHONPATH", "")]).rstrip(
                    os.pathsep
                )
                if not args.pgoxide_own_name:
                    env["PGOXIDE_SQLA_AS_ASYNCPG"] = "1"
                # -s: test/conftest.py puts the sdist's lib/ first on sys.path unless
                # user site-packages are off; -s keeps the installed (compiled) SQLAlchemy of
                # the same version, the one the dialect is used with.
                cmd = [
                    sys.executable,
                    "-s",
                    "-m",
                    "pytest",
                    *paths,
                    "--dburi",
                    url,
                    "-p",
                    "pgoxide_sqla_plugin",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "timeout",
                    "--timeout",
                    str(args.timeout),
                    "--junitxml",
                    junit,
                    "-o",
                    "junit_family=xunit1",
                    "-q",
                    "-rN",
                    "--color=no",
                    "-W",
                    "ignore::DeprecationWarning",
                ]
                if args.k:
                    cmd += ["-k", args.k]
                cmd += args.pytest_args
                if os.path.exists(junit):
                    os.unlink(junit)
                started = time.monotonic()
                with open(log_path, "w") as log:
                    log.write("$ " + " ".join(cmd) + "\n")
                    log.flush()
                    try:
                        rc: object = subprocess.run(
                            cmd,
                            cwd=sdist_dir,
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            timeout=args.run_timeout,
                        ).returncode
                    except subprocess.TimeoutExpired:
                        rc = "timeout"
                elapsed = time.monotonic() - started
                info[driver] = {"rc": rc, "seconds": round(elapsed), "url": url}
                print(f"{driver}: rc={rc}, {elapsed:.0f}s, log {log_path}", flush=True)
            results[driver] = parse_junit(junit, driver)
    finally:
        if cluster is not None:
            cluster.cleanup()

    counts = {d: collections.Counter(r["outcome"] for r in results[d].values()) for d in drivers}
    print()
    print(f"{'outcome':12s}" + "".join(f"{d:>12s}" for d in drivers))
    for o in (*OUTCOMES, "total"):
        print(
            f"{o:12s}"
            + "".join(
                f"{(len(results[d]) if o == 'total' else counts[d].get(o, 0)):12d}" for d in drivers
            )
        )

    worse: list[dict] = []
    better: list[str] = []
    if "asyncpg" in results and "pgoxide" in results:
        base, ours = results["asyncpg"], results["pgoxide"]
        for tid, rec in sorted(base.items()):
            other = ours.get(tid, {"outcome": "missing", "message": "", "text": ""})
            if rec["outcome"] == "passed" and other["outcome"] != "passed":
                worse.append({**other, "id": tid})
        better = sorted(
            tid
            for tid, rec in ours.items()
            if rec["outcome"] == "passed" and base.get(tid, {}).get("outcome") != "passed"
        )
        groups: dict[str, list[dict]] = collections.defaultdict(list)
        for rec in worse:
            groups[f"[{rec['outcome']}] {error_key(rec)}"].append(rec)
        print()
        print(f"passed under asyncpg, not under pgoxide: {len(worse)}")
        for key, recs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            print(f"\n  {len(recs):4d}  {key}")
            for rec in recs:
                print(f"          {rec['id']}")
        print(f"\npassed under pgoxide, not under asyncpg: {len(better)}")
        for tid in better:
            print(f"          {tid}  (asyncpg: {base.get(tid, {}).get('outcome', 'missing')})")
    print(f"\nlogs: {logs}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "sqlalchemy_version": version,
                    "paths": paths,
                    "runs": info,
                    "counts": {d: dict(c) for d, c in counts.items()},
                    "worse": worse,
                    "better": better,
                    "tests": {
                        d: sorted(results[d].values(), key=lambda r: r["id"]) for d in drivers
                    },
                },
                f,
                indent=1,
            )
        print(f"json: {args.json}")
    if args.check and worse:
        print(f"check: {len(worse)} tests pass under asyncpg and not under pgoxide")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
