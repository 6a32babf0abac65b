"""``python -m pgoxide.replication``: the demo on a throwaway cluster, and resuming a real
slot from where the previous run acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

import pgoxide
import pytest
from pgoxide import replication as r

# "N changes in M transactions, acknowledged up to X/Y": the last progress line on stderr.
_PROGRESS = re.compile(
    r"^pgoxide\.replication: (\d+) changes in (\d+) transactions, "
    r"acknowledged up to ([0-9A-F]+/[0-9A-F]+)$",
    re.MULTILINE,
)


async def _run(*args: str, env: dict[str, str] | None = None, expect: int = 0) -> tuple[str, str]:
    """Runs the CLI; its stdout and stderr, once it exited with ``expect``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pgoxide.replication",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == expect, err.decode()
    return out.decode(), err.decode()


def _last_progress(err: str) -> tuple[int, int, str]:
    found = _PROGRESS.findall(err)
    assert found, err
    changes, transactions, acked = found[-1]
    return int(changes), int(transactions), acked


async def test_bad_arguments_exit_with_usage():
    # argparse's exit status for a usage error is 2, with the usage on stderr.
    out, err = await _run("--proto-version", "9", expect=2)
    assert out == ""
    assert err.startswith("usage: python -m pgoxide.replication")
    assert "--proto-version: invalid choice: 9" in err


# Not through the ``pg_cluster`` fixture: the demo starts a cluster of its own.
@pytest.mark.integration
async def test_demo_without_a_dsn():
    env = {k: v for k, v in os.environ.items() if k != "PGOXIDE_DSN"}
    out, err = await _run(env=env)
    lines = [json.loads(line) for line in out.splitlines()]
    # --limit defaults to 12 in the demo; the writer commits 3 rows per transaction.
    assert len(lines) == 12
    first = lines[0]
    assert first["op"] == "insert" and first["table"] == "demo_orders"
    assert first["new"]["item"] == "widget-1-0" and first["commit_lsn"]
    assert [line["new"]["item"] for line in lines] == [
        f"widget-{i}-{j}" for i in range(1, 5) for j in range(3)
    ]
    assert "starting a throwaway cluster for a demo" in err
    changes, transactions, acked = _last_progress(err)
    assert (changes, transactions) == (12, 4)
    assert r.Lsn(acked) >= r.Lsn(lines[-1]["commit_lsn"])


async def test_a_second_run_resumes_after_the_first(pg_cluster, pg_roles):
    dsn = pg_cluster.dsn(user=pg_roles.trust)
    conn = await pgoxide.connect(dsn)
    rconn = await r.connect_replication(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS cli_t; CREATE TABLE cli_t (id int PRIMARY KEY, v text);"
            "DROP PUBLICATION IF EXISTS cli_p; CREATE PUBLICATION cli_p FOR TABLE cli_t"
        )
        await rconn.create_replication_slot("cli_slot", snapshot="nothing")
        for i in range(1, 6):
            await conn.execute("INSERT INTO cli_t VALUES ($1, $2)", i, f"row {i}")
        common = ["--publication", "cli_p", "--slot", "cli_slot"]
        out1, err1 = await _run(dsn, *common, "--limit", "3")
        out2, err2 = await _run(dsn, *common, "--limit", "2")
        ids = [[json.loads(line)["new"]["id"] for line in out.splitlines()] for out in (out1, out2)]
        assert ids == [[1, 2, 3], [4, 5]]
        # One transaction per INSERT; each run acknowledged what it wrote, and no further.
        progress1, progress2 = _last_progress(err1), _last_progress(err2)
        assert progress1[:2] == (3, 3) and progress2[:2] == (2, 2)
        assert r.Lsn(progress1[2]) < r.Lsn(progress2[2])
        confirmed = await conn.fetchval(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            "cli_slot",
        )
        assert r.Lsn(confirmed) == r.Lsn(progress2[2])
    finally:
        await rconn.drop_replication_slot("cli_slot")
        await rconn.close()
        await conn.close()
