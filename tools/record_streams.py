"""Records real client/server byte streams for the Rust core's replay tests.

Runs each scenario through pgoxide against a throwaway cluster, with a proxy in between that
writes every chunk it forwards to ``rust/pgoxide-proto/tests/streams/<scenario>.txt`` as
``C <hex>`` (client to server) and ``S <hex>`` (server to client) lines.

    python tools/record_streams.py
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sys
from collections.abc import Awaitable, Callable

import pgoxide
from pgoxide import replication
from pgoxide.cluster import Cluster

OUT = pathlib.Path(__file__).resolve().parent.parent / "rust/pgoxide-proto/tests/streams"

HBA = [
    "host all trust_user 127.0.0.1/32 trust",
    "host all md5_user 127.0.0.1/32 md5",
    "host all clear_user 127.0.0.1/32 password",
    "local all all trust",
]
BOOTSTRAP = """
CREATE ROLE trust_user LOGIN SUPERUSER;
SET password_encryption = 'md5';
CREATE ROLE md5_user LOGIN PASSWORD 'secret';
CREATE ROLE clear_user LOGIN PASSWORD 'secret';
"""


class Recorder:
    """A TCP proxy that logs each forwarded chunk, in order."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.lines: list[str] = []
        self.done = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, tag: str) -> None:
            while data := await src.read(65536):
                self.lines.append(f"{tag} {data.hex()}")
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(
            pipe(reader, up_writer, "C"), pipe(up_reader, writer, "S"), return_exceptions=True
        )
        self.done.set()


async def _simple(conn: pgoxide.Connection) -> None:
    await conn.execute(
        "CREATE TEMP TABLE t(a int, b text); INSERT INTO t VALUES (1, 'x'), (2, NULL)"
    )
    with contextlib.suppress(pgoxide.DivisionByZeroError):
        await conn.execute("SELECT 1; SELECT 1/0; SELECT 3")


async def _extended(conn: pgoxide.Connection) -> None:
    await conn.fetch("SELECT g AS n, 'v' || g AS s, NULL::int AS z FROM generate_series(1, 3) g")
    await conn.fetchval("SELECT $1::int + 1", 41)


async def _pipeline_error(conn: pgoxide.Connection) -> None:
    await conn.execute("CREATE TEMP TABLE u(a int PRIMARY KEY)")
    with contextlib.suppress(pgoxide.UniqueViolationError):
        await conn.executemany("INSERT INTO u VALUES ($1)", [(1,), (2,), (2,), (3,)])


async def _notices(conn: pgoxide.Connection) -> None:
    await conn.execute("LISTEN ch")
    await conn.execute(
        "DO $$ BEGIN RAISE NOTICE 'note'; PERFORM pg_notify('ch', 'payload'); END $$"
    )
    await conn.execute("COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT")


async def _replication(conn: replication.ReplicationConnection, direct: pgoxide.Connection) -> None:
    """A logical replication stream: slot, pgoutput v3 with messages and two-phase, one of
    each change, and a graceful stop."""
    await direct.execute(
        "CREATE TABLE rt (id int PRIMARY KEY, v text, n numeric);CREATE PUBLICATION rp FOR TABLE rt"
    )
    slot = await conn.create_replication_slot(
        "rec_slot", temporary=True, snapshot="nothing", two_phase=True
    )
    stream = await conn.start_replication(
        "rec_slot",
        slot.consistent_point,
        {"proto_version": 3, "publication_names": "rp", "messages": True, "two_phase": True},
    )
    await direct.execute("INSERT INTO rt VALUES (1, 'one', 1.5), (2, NULL, -2)")
    await direct.execute("UPDATE rt SET v = 'uno' WHERE id = 1")
    await direct.execute("DELETE FROM rt WHERE id = 2")
    await direct.execute("SELECT pg_logical_emit_message(true, 'rec', 'hello')")
    await direct.execute(
        "BEGIN; INSERT INTO rt VALUES (3, 'prepared', 0); PREPARE TRANSACTION 'rec_gid'"
    )
    await direct.execute("COMMIT PREPARED 'rec_gid'")
    await direct.execute("TRUNCATE rt")
    ends = 0
    async for item in stream:
        message = getattr(item, "message", None)
        if isinstance(message, (replication.Commit, replication.CommitPrepared)):
            stream.ack(message.end_lsn)
            ends += 1
            if ends == 6:
                break
    await stream.stop()


SCENARIOS: dict[str, tuple[str, str | None, Callable[[pgoxide.Connection], Awaitable[None]]]] = {
    "startup_trust": ("trust_user", None, lambda c: c.fetchval("SELECT 1")),
    "startup_md5": ("md5_user", "secret", lambda c: c.fetchval("SELECT 1")),
    "startup_cleartext": ("clear_user", "secret", lambda c: c.fetchval("SELECT 1")),
    "simple_query": ("trust_user", None, _simple),
    "extended_query": ("trust_user", None, _extended),
    "pipeline_error": ("trust_user", None, _pipeline_error),
    "notices_and_copy_out": ("trust_user", None, _notices),
}


async def record(cluster: Cluster) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    direct = await pgoxide.connect(cluster.dsn(user="trust_user"))
    scenarios = {**SCENARIOS, "logical_replication": ("trust_user", None, None)}
    for name, (user, password, run) in scenarios.items():
        recorder = Recorder(cluster.port)
        server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connect = replication.connect_replication if run is None else pgoxide.connect
        conn = await connect(
            host="127.0.0.1",
            port=port,
            user=user,
            password=password,
            dbname="postgres",
            sslmode="disable",
            application_name="recorder",
        )
        if run is None:
            assert isinstance(conn, replication.ReplicationConnection)
            await _replication(conn, direct)
        else:
            await run(conn)
        await conn.close()
        await recorder.done.wait()
        server.close()
        await server.wait_closed()
        header = (
            f"# {name}: recorded by tools/record_streams.py against PostgreSQL {cluster.version[0]}"
        )
        (OUT / f"{name}.txt").write_text("\n".join([header, *recorder.lines]) + "\n")
        print(f"{name}: {len(recorder.lines)} chunks", file=sys.stderr)


def main() -> None:
    settings = {"wal_level": "logical", "max_prepared_transactions": "5"}
    with Cluster(hba=HBA, bootstrap_sql=BOOTSTRAP, settings=settings) as cluster:
        asyncio.run(record(cluster))


if __name__ == "__main__":
    main()
