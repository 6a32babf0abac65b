"""``python -m pgoxide.replication``: the demo on a throwaway cluster, and resuming a real
slot from where the previous run acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pgoxide
from pgoxide import replication as r


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[str, str, int]:
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
    assert proc.returncode is not None
    return out.decode(), err.decode(), proc.returncode


async def test_demo_without_a_dsn():
    env = {k: v for k, v in os.environ.items() if k != "PGOXIDE_DSN"}
    out, err, code = await _run(env=env)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) >= 12
    first = lines[0]
    assert first["op"] == "insert" and first["table"] == "demo_orders"
    assert first["new"]["item"] == "widget-1-0" and first["commit_lsn"]
    assert "changes in" in err and "acknowledged up to" in err


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
        out1, err1, code1 = await _run(dsn, *common, "--limit", "3")
        out2, err2, code2 = await _run(dsn, *common, "--limit", "2")
        assert (code1, code2) == (0, 0), err1 + err2
        ids = [[json.loads(line)["new"]["id"] for line in out.splitlines()] for out in (out1, out2)]
        assert ids == [[1, 2, 3], [4, 5]]
    finally:
        await rconn.drop_replication_slot("cli_slot")
        await rconn.close()
        await conn.close()
