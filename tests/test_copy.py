"""COPY against a real server: asyncpg's four methods, records streamed out, raw COPY both
ways, and every way a COPY can fail leaving the table and the connection as they should be."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import gc
import io
import ipaddress
import json
import resource
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pgoxide
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgoxide import exceptions
from pgoxide.types import BitString, Box, Circle, Lsn, Point, Polygon, Range
from test_types import CASES, _same
from test_types_extended import SCHEMA as TYPES_SCHEMA


@pytest.fixture
async def table(conn: pgoxide.Connection) -> str:
    await conn.execute(
        "CREATE TEMP TABLE copied (id int PRIMARY KEY, name text, score float8, "
        "at timestamptz, amount numeric, CHECK (id >= 0))"
    )
    return "copied"


ROWS = [
    (1, "one", 1.5, datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
     decimal.Decimal("1.10")),
    (2, None, None, None, None),
    (3, "tab\there\nnewline \\ backslash", -0.0, None, decimal.Decimal("-3")),
]  # fmt: skip


async def rows_of(conn: pgoxide.Connection, table: str = "copied") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]


# -- copy_records_to_table ---------------------------------------------------------------------


async def test_records_round_trip(conn: pgoxide.Connection, table: str) -> None:
    tag = await conn.copy_records_to_table(table, records=ROWS)
    assert tag == "COPY 3"
    assert await rows_of(conn) == ROWS
    back = [
        tuple(r) async for r in conn.copy_records_from_query("SELECT * FROM copied ORDER BY id")
    ]
    assert back == ROWS


async def test_records_from_an_async_iterable_and_columns(
    conn: pgoxide.Connection, table: str
) -> None:
    async def gen() -> AsyncIterator[tuple[Any, ...]]:
        for i in range(2500):
            yield (i, str(i))

    tag = await conn.copy_records_to_table(table, records=gen(), columns=["id", "name"])
    assert tag == "COPY 2500"
    assert await conn.fetchval("SELECT count(*) FROM copied WHERE name = id::text") == 2500


async def test_records_may_be_records(conn: pgoxide.Connection, table: str) -> None:
    source = await conn.fetch("SELECT i AS id, 'n' || i AS name FROM generate_series(1, 3) i")
    await conn.copy_records_to_table(table, records=source, columns=("id", "name"))
    assert await conn.fetchval("SELECT string_agg(name, ',' ORDER BY id) FROM copied") == "n1,n2,n3"


async def test_empty_records(conn: pgoxide.Connection, table: str) -> None:
    assert await conn.copy_records_to_table(table, records=[]) == "COPY 0"

    async def nothing() -> AsyncIterator[tuple[Any, ...]]:
        return
        yield  # pragma: no cover

    assert await conn.copy_records_to_table(table, records=nothing()) == "COPY 0"


async def test_schema_quoted_identifiers_and_where(conn: pgoxide.Connection) -> None:
    await conn.execute('CREATE SCHEMA "Odd Schema"')
    try:
        await conn.execute('CREATE TABLE "Odd Schema"."We""ird" ("Col A" int, b text)')
        tag = await conn.copy_records_to_table(
            'We"ird',
            schema_name="Odd Schema",
            records=[(1, "a"), (2, "b"), (3, "c")],
            where='"Col A" <> 2',
        )
        assert tag == "COPY 2"
        got = await conn.fetch('SELECT "Col A" FROM "Odd Schema"."We""ird" ORDER BY 1')
        assert [r[0] for r in got] == [1, 3]
        out = [
            tuple(r)
            async for r in conn.copy_records_from_table(
                'We"ird', schema_name="Odd Schema", columns=["b"], where='"Col A" > 1'
            )
        ]
        assert out == [("c",)]
    finally:
        await conn.execute('DROP SCHEMA "Odd Schema" CASCADE')


async def test_jsonb_and_a_custom_codec_through_binary_copy(
    conn: pgoxide.Connection, dsn: str
) -> None:
    await conn.execute("CREATE TABLE docs (id int, doc jsonb, j json)")
    try:
        await _json_through_copy(conn, dsn)
    finally:
        await conn.execute("DROP TABLE docs")


async def _json_through_copy(conn: pgoxide.Connection, dsn: str) -> None:
    # json and jsonb are their text, as in asyncpg; a str is JSON text already.
    records = [(1, {"a": [1, 2]}, [True, None]), (0, '"null"', "null")]
    await conn.copy_records_to_table("docs", records=records)
    query = "SELECT doc, j FROM docs ORDER BY id"
    got = await conn.fetch(query)
    assert [tuple(r) for r in got] == [('"null"', "null"), ('{"a": [1, 2]}', "[true, null]")]
    streamed = [r async for r in conn.copy_records_from_query(query)]
    assert streamed == got
    # parse_json=True: Python objects both ways.
    async with await pgoxide.connect(dsn, parse_json=True) as parsed:
        expected = [("null", None), ({"a": [1, 2]}, [True, None])]
        assert [tuple(r) for r in await parsed.fetch(query)] == expected
        assert [tuple(r) async for r in parsed.copy_records_from_query(query)] == expected
        await parsed.copy_records_to_table("docs", records=[(3, {"c": None}, '{"d": 1}')])
        assert await parsed.fetchrow("SELECT doc, j FROM docs WHERE id = 3") == (
            {"c": None},
            {"d": 1},
        )
    # A custom codec (asyncpg's #762): orjson-style text codec for jsonb.
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: "[" + json.dumps(v) + "]",
        decoder=lambda s: ("decoded", json.loads(s)), format="text",
    )  # fmt: skip
    await conn.copy_records_to_table("docs", records=[(2, {"b": 1})], columns=["id", "doc"])
    assert await conn.fetchval("SELECT doc::text FROM docs WHERE id = 2") == '[{"b": 1}]'
    got = [r async for r in conn.copy_records_from_query("SELECT doc FROM docs WHERE id = 2")]
    assert got[0][0] == ("decoded", [{"b": 1}])


async def test_text_fallback_for_a_type_with_only_a_text_codec(conn: pgoxide.Connection) -> None:
    # A binary codec user codec on int4 makes no difference; a text codec on a type whose
    # binary form is not its text (here: point) forces text COPY for the whole call.
    await conn.execute("CREATE TEMP TABLE shapes (id int, p point, tag text, n numeric, b bytea)")
    await conn.set_type_codec(
        "point", schema="pg_catalog", encoder=lambda v: f"({v[0]},{v[1]})",
        decoder=lambda s: tuple(float(x) for x in s.strip("()").split(",")), format="text",
    )  # fmt: skip
    records = [
        (1, (1.5, 2.0), "a\tb", decimal.Decimal("2.5"), b"\x00\xff"),
        (2, None, None, None, None),
    ]
    assert await conn.copy_records_to_table("shapes", records=records) == "COPY 2"
    got = await conn.fetch("SELECT * FROM shapes ORDER BY id")
    assert [tuple(r) for r in got] == [
        (1, (1.5, 2.0), "a\tb", decimal.Decimal("2.5"), b"\x00\xff"),
        (2, None, None, None, None),
    ]
    streamed = [r async for r in conn.copy_records_from_query("SELECT * FROM shapes ORDER BY id")]
    assert streamed == got


@pytest.mark.parametrize("text_copy", [False, True], ids=["binary", "text"])
@pytest.mark.parametrize("infinity", ["max", "raise"])
async def test_infinities_and_intervals_through_copy(
    dsn: str, text_copy: bool, infinity: str
) -> None:
    """COPY uses the statements' codecs: max and min are the infinities under asyncpg's
    mapping (and the real dates under infinity="raise"), an Interval keeps its months, in
    binary COPY and in the text COPY used when a column has only a text codec."""
    conn = await pgoxide.connect(dsn, infinity=infinity)
    try:
        await conn.execute(
            "SET TimeZone = 'UTC'; CREATE TEMP TABLE times (id int, d date, ts timestamp, "
            "tz timestamptz, iv interval, p point)"
        )
        if text_copy:
            await conn.set_type_codec(
                "point", schema="pg_catalog", encoder=lambda v: f"({v[0]},{v[1]})",
                decoder=lambda s: tuple(float(x) for x in s.strip("()").split(",")),
                format="text",
            )  # fmt: skip
        utc = datetime.timezone.utc
        interval = pgoxide.types.Interval(months=-13, days=2, microseconds=-1)
        records = [
            (1, datetime.date.max, datetime.datetime.max, datetime.datetime.max.replace(tzinfo=utc),
             interval, None),
            (2, datetime.date.min, datetime.datetime.min, datetime.datetime.min.replace(tzinfo=utc),
             datetime.timedelta(hours=-1), (1.0, 2.0)),
        ]  # fmt: skip
        await conn.copy_records_to_table("times", records=records)
        texts = await conn.fetch(
            "SELECT d::text, ts::text, tz::text, iv::text FROM times ORDER BY id"
        )
        if infinity == "max":
            assert [tuple(r) for r in texts] == [
                ("infinity", "infinity", "infinity", "-1 years -1 mons +2 days -00:00:00.000001"),
                ("-infinity", "-infinity", "-infinity", "-1 days +23:00:00"),
            ]
        else:
            assert [tuple(r) for r in texts] == [
                ("9999-12-31", "9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999+00",
                 "-1 years -1 mons +2 days -00:00:00.000001"),
                ("0001-01-01", "0001-01-01 00:00:00", "0001-01-01 00:00:00+00",
                 "-1 days +23:00:00"),
            ]  # fmt: skip
        # With p, records come out of a text COPY when p has a text codec.
        query = "SELECT d, ts, tz, iv, p FROM times ORDER BY id"
        streamed = [tuple(r)[:4] async for r in conn.copy_records_from_query(query)]
        if infinity == "max":
            # Read back as asyncpg reads infinities: naive max and min, for timestamptz too.
            assert streamed == [
                (datetime.date.max, datetime.datetime.max, datetime.datetime.max, interval),
                (datetime.date.min, datetime.datetime.min, datetime.datetime.min,
                 datetime.timedelta(hours=-1)),
            ]  # fmt: skip
        else:
            assert streamed == [tuple(r[1:5]) for r in records]
        assert streamed[0][3].fields == interval.fields
        assert streamed == [tuple(r) for r in await conn.fetch(query.replace(", p", ""))]
        if infinity == "raise":
            await conn.execute("UPDATE times SET d = 'infinity' WHERE id = 1")
            with pytest.raises(exceptions.DataError, match="date value infinity"):
                [r async for r in conn.copy_records_from_query(query)]
    finally:
        await conn.close()


async def test_records_out_in_text_when_a_column_has_only_a_text_codec(
    conn: pgoxide.Connection,
) -> None:
    query = (
        "SELECT i, 'a b'::tsvector AS v, E'tab\\there\\\\' || i AS t, NULL::int AS n, "
        "ARRAY[i, NULL] AS a, timestamptz '2024-05-06 07:08:09.5+02' AS at "
        "FROM generate_series(1, 3000) i"
    )
    fetched = await conn.fetch(query)
    streamed = [r async for r in conn.copy_records_from_query(query)]
    assert streamed == fetched
    assert streamed[0]["t"] == "tab\there\\1"


# -- bad records: a clear error, nothing written, the connection usable ------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((5, "x", "not a float", None, None), 'record 4, column "score"'),
        ((5, "x"), "record 4 has 2 values, the COPY has 5 columns"),
        ((2**40, "x", 1.0, None, None), 'record 4, column "id"'),
    ],
)
async def test_a_bad_record_names_itself_and_nothing_is_written(
    conn: pgoxide.Connection, table: str, bad: tuple[Any, ...], message: str
) -> None:
    records = [(i, "ok", 1.0, None, None) for i in range(4)] + [bad]
    with pytest.raises(exceptions.DataError, match=message):
        await conn.copy_records_to_table(table, records=records)
    assert await rows_of(conn) == []
    assert await conn.fetchval("SELECT 1") == 1


async def test_bad_record_in_a_later_chunk(conn: pgoxide.Connection, table: str) -> None:
    records: list[Any] = [(i, "x" * 100, 1.0, None, None) for i in range(20000)]
    records.append(("bad",))
    with pytest.raises(exceptions.DataError, match="record 20000"):
        await conn.copy_records_to_table(table, records=records)
    assert await conn.fetchval("SELECT count(*) FROM copied") == 0


async def test_source_raising_sends_copyfail_and_reraises(
    conn: pgoxide.Connection, table: str
) -> None:
    class Boom(Exception):
        pass

    async def gen() -> AsyncIterator[tuple[Any, ...]]:
        for i in range(3000):
            yield (i, None, None, None, None)
        raise Boom("producer failed")

    with pytest.raises(Boom):
        await conn.copy_records_to_table(table, records=gen())
    assert await rows_of(conn) == []
    assert await conn.fetchval("SELECT 2") == 2


async def test_a_source_error_that_cannot_print_itself_still_fails_the_copy(
    conn: pgoxide.Connection, table: str
) -> None:
    class Unprintable(ValueError):
        def __str__(self) -> str:
            raise AssertionError("cannot format exception")

    async def gen() -> AsyncIterator[tuple[Any, ...]]:
        yield (1, "x" * 524288, None, None, None)  # a CopyData goes out first
        raise Unprintable

    with pytest.raises(Unprintable):
        await conn.copy_records_to_table(table, records=gen())
    assert await rows_of(conn) == []
    assert await conn.fetchval("SELECT 2") == 2


async def test_server_error_stops_the_producer(conn: pgoxide.Connection, table: str) -> None:
    pulled = 0

    async def gen() -> AsyncIterator[tuple[Any, ...]]:
        nonlocal pulled
        # A duplicate key in the first batch, then a producer that waits for ever: only the
        # server's error can end the COPY.
        for i in [1, 1, *range(2, 1024)]:
            pulled += 1
            yield (i, None, None, None, None)
        await asyncio.Event().wait()
        yield (0, None, None, None, None)  # pragma: no cover

    with pytest.raises(exceptions.UniqueViolationError) as info:
        await conn.copy_records_to_table(table, records=gen())
    assert "line 2" in (info.value.context or "")
    assert pulled == 1024
    assert await rows_of(conn) == []


async def test_cancelled_copy_writes_nothing(conn: pgoxide.Connection, table: str) -> None:
    started = asyncio.Event()

    async def gen() -> AsyncIterator[tuple[Any, ...]]:
        for i in range(10):
            yield (i, None, None, None, None)
        started.set()
        await asyncio.Event().wait()  # never

    task = asyncio.ensure_future(conn.copy_records_to_table(table, records=gen()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await rows_of(conn) == []


async def test_timeout_covers_the_source(conn: pgoxide.Connection, table: str) -> None:
    async def gen() -> AsyncIterator[tuple[Any, ...]]:
        yield (1, None, None, None, None)
        await asyncio.Event().wait()  # a producer that stalls

    with pytest.raises(asyncio.TimeoutError):
        await conn.copy_records_to_table(table, records=gen(), timeout=0.5)
    assert await rows_of(conn) == []


async def test_failed_copy_inside_a_transaction_fails_it(
    conn: pgoxide.Connection, table: str
) -> None:
    with pytest.raises(exceptions.UniqueViolationError):
        async with conn.transaction():
            await conn.execute("INSERT INTO copied (id) VALUES (100)")
            with pytest.raises(exceptions.UniqueViolationError):
                await conn.copy_records_to_table(table, records=[(7,) + (None,) * 4] * 2)
            assert conn._session.transaction_status == "E"
            with pytest.raises(exceptions.InFailedSQLTransactionError):
                await conn.execute("SELECT 1")
            raise exceptions.UniqueViolationError("leave")
    assert await rows_of(conn) == []


async def test_check_violation_carries_the_line(conn: pgoxide.Connection, table: str) -> None:
    with pytest.raises(exceptions.CheckViolationError) as info:
        await conn.copy_records_to_table(table, records=[(1,) + (None,) * 4, (-1,) + (None,) * 4])
    assert "line 2" in (info.value.context or "")


# -- copy_to_table: sources and options --------------------------------------------------------


CSV = b'id,name\n1,alpha\n2,\n3,"quoted, comma"\n'


async def test_every_kind_of_source(conn: pgoxide.Connection, table: str, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(CSV)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(CSV), 7):
            yield CSV[i : i + 7]

    for source in (
        CSV,
        bytearray(CSV),
        memoryview(CSV),
        str(path),
        path,
        io.BytesIO(CSV),
        chunks(),
    ):
        await conn.execute("TRUNCATE copied")
        tag = await conn.copy_to_table(
            table, source=source, columns=["id", "name"], format="csv", header=True
        )
        assert tag == "COPY 3", source
        got = await conn.fetch("SELECT id, name FROM copied ORDER BY id")
        assert [tuple(r) for r in got] == [(1, "alpha"), (2, None), (3, "quoted, comma")]


async def test_copy_to_table_options(conn: pgoxide.Connection, table: str) -> None:
    data = b"1|NIL|x\n2|b|NIL\n"
    await conn.execute("CREATE TEMP TABLE opts (id int, a text, b text)")
    tag = await conn.copy_to_table(
        "opts", source=data, delimiter="|", null="NIL", format="text", freeze=False,
        encoding="utf-8",
    )  # fmt: skip
    assert tag == "COPY 2"
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM opts ORDER BY id")] == [
        (1, None, "x"),
        (2, "b", None),
    ]
    csv = b"3;'';'q''x'\n4;;''\n"
    await conn.copy_to_table(
        "opts", source=csv, format="csv", delimiter=";", quote="'", escape="'",
        force_not_null=["a"], force_null=["b"], where="id > 3",
    )  # fmt: skip
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM opts WHERE id > 2")] == [
        (4, "", None)
    ]


async def test_bad_text_line_names_the_line(conn: pgoxide.Connection, table: str) -> None:
    with pytest.raises(exceptions.InvalidTextRepresentationError) as info:
        await conn.copy_to_table(table, source=b"1\tx\n2\ty\nthree\tz\n", columns=["id", "name"])
    assert "line 3" in (info.value.context or "")
    assert await rows_of(conn) == []


async def test_source_of_the_wrong_kind(conn: pgoxide.Connection, table: str) -> None:
    with pytest.raises(TypeError, match="source must be"):
        await conn.copy_to_table(table, source=12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary mode"):
        await conn.copy_to_table(table, source=io.StringIO("1\n"))  # type: ignore[arg-type]
    assert await conn.fetchval("SELECT 3") == 3


async def test_missing_table(conn: pgoxide.Connection) -> None:
    with pytest.raises(exceptions.UndefinedTableError):
        await conn.copy_to_table("no_such_table", source=b"1\n")
    with pytest.raises(exceptions.UndefinedTableError):
        await conn.copy_records_to_table("no_such_table", records=[(1,)])
    assert await conn.fetchval("SELECT 4") == 4


# -- copy_from_table / copy_from_query: outputs and options -------------------------------------


async def test_every_kind_of_output(conn: pgoxide.Connection, table: str, tmp_path: Path) -> None:
    await conn.copy_records_to_table(table, records=ROWS)
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    path = tmp_path / "out.csv"
    buf = io.BytesIO()
    for output in (sink, str(path), buf):
        tag = await conn.copy_from_table(table, columns=["id", "name"], output=output, format="csv")
        assert tag == "COPY 3"
    csv = b"".join(chunks)
    assert csv == path.read_bytes() == buf.getvalue()
    assert csv == b'1,one\n2,\n3,"tab\there\nnewline \\ backslash"\n'


async def test_copy_from_query_with_arguments_and_options(conn: pgoxide.Connection) -> None:
    out = io.BytesIO()
    tag = await conn.copy_from_query(
        "SELECT i, $2::text || i FROM generate_series(1, $1) i WHERE i <> ALL($3)",
        4, "n'", [2], output=out, format="csv", header=True, delimiter=";",
        force_quote=True, null="-",
    )  # fmt: skip
    assert tag == "COPY 3"
    assert out.getvalue() == b'i;?column?\n"1";"n\'1"\n"3";"n\'3"\n"4";"n\'4"\n'


async def test_slow_sink_gets_every_chunk(conn: pgoxide.Connection) -> None:
    got = bytearray()

    async def slow(chunk: bytes) -> None:
        await asyncio.sleep(0)
        got.extend(chunk)

    tag = await conn.copy_from_query(
        "SELECT i, repeat('x', 100) FROM generate_series(1, 50000) i", output=slow
    )
    assert tag == "COPY 50000"
    assert got.count(b"\n") == 50000


async def test_a_slow_sink_pauses_reading(conn: pgoxide.Connection) -> None:
    # 1M lines of ~100 bytes: if the data were read while the sink lags, the queue would
    # hold most of the 100 MB; paused reading keeps it to a few reads.
    gc.collect()
    before = peak = _rss()
    lines = 0

    async def slow(chunk: bytes) -> None:
        nonlocal peak, lines
        lines += chunk.count(b"\n")
        for _ in range(20):
            await asyncio.sleep(0)
        peak = max(peak, _rss())

    sql = "SELECT i, repeat('x', 100) FROM generate_series(1, 1000000) i"
    assert await conn.copy_from_query(sql, output=slow) == "COPY 1000000"
    assert lines == 1_000_000
    assert peak - before < 32 * 2**20


async def test_copy_out_timeouts_cancel_the_query(conn: pgoxide.Connection) -> None:
    async def sink(chunk: bytes) -> None:
        pass

    with pytest.raises(asyncio.TimeoutError):
        await conn.copy_from_query("SELECT pg_sleep(60)", output=sink, timeout=0.3)
    assert await conn.fetchval("SELECT 9") == 9
    with pytest.raises(asyncio.TimeoutError):
        async for _ in conn.copy_records_from_query("SELECT pg_sleep(60)", timeout=0.3):
            pass
    # The server was told to cancel, so the next call does not wait out the sleep.
    assert await asyncio.wait_for(conn.fetchval("SELECT 10"), 30) == 10


async def test_a_slow_server_side_copy_in_is_cancelled_on_timeout(
    conn: pgoxide.Connection,
) -> None:
    await conn.execute("CREATE TEMP TABLE slow (i int)")
    await conn.execute(
        "CREATE FUNCTION pg_temp.nap() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$"
    )
    await conn.execute(
        "CREATE TRIGGER nap BEFORE INSERT ON slow FOR EACH ROW EXECUTE FUNCTION pg_temp.nap()"
    )
    with pytest.raises(asyncio.TimeoutError):
        await conn.copy_records_to_table("slow", records=[(1,)], timeout=0.3)
    assert await asyncio.wait_for(conn.fetchval("SELECT count(*) FROM slow"), 30) == 0


async def test_copy_through_execute_points_to_the_copy_methods(
    conn: pgoxide.Connection, table: str
) -> None:
    with pytest.raises(exceptions.InterfaceError, match="copy_to_table"):
        await conn.execute("COPY copied FROM STDIN")
    with pytest.raises(exceptions.InterfaceError, match="copy_from_query"):
        await conn.execute("COPY copied TO STDOUT")
    with pytest.raises(exceptions.InterfaceError, match="copy_from_query"):
        await conn.fetch("COPY (SELECT 1) TO STDOUT")
    assert await conn.fetchval("SELECT 5") == 5


# -- records out ------------------------------------------------------------------------------


async def test_leaving_early_cancels_and_keeps_the_connection(conn: pgoxide.Connection) -> None:
    n = 0
    async for _ in conn.copy_records_from_query("SELECT i FROM generate_series(1, 10000000) i"):
        n += 1
        if n == 10:
            break
    assert await conn.fetchval("SELECT 6") == 6


async def test_records_out_record_class_and_errors(conn: pgoxide.Connection) -> None:
    class Mine(pgoxide.Record):
        pass

    got = [r async for r in conn.copy_records_from_query("SELECT 1 AS a", record_class=Mine)]
    assert type(got[0]) is Mine and got[0]["a"] == 1
    with pytest.raises(exceptions.DivisionByZeroError):
        async for _ in conn.copy_records_from_query(
            "SELECT 1 / (i - 3) FROM generate_series(1, 5) i"
        ):
            pass
    with pytest.raises(exceptions.UndefinedTableError):
        async for _ in conn.copy_records_from_query("SELECT * FROM nothing_here"):
            pass
    assert await conn.fetchval("SELECT 7") == 7


async def test_calling_the_connection_while_iterating_raises(conn: pgoxide.Connection) -> None:
    with pytest.raises(exceptions.InterfaceError, match="reads a COPY"):
        async for _ in conn.copy_records_from_query("SELECT 1"):
            await conn.fetchval("SELECT 1")
    assert await conn.fetchval("SELECT 8") == 8


# -- raw copy_in / copy_out --------------------------------------------------------------------


async def test_raw_copy_out_and_in(conn: pgoxide.Connection, table: str) -> None:
    await conn.copy_records_to_table(table, records=ROWS)
    stream = conn.copy_out(
        "COPY (SELECT * FROM copied WHERE id >= $1 ORDER BY id) TO STDOUT (FORMAT binary)", 2
    )
    data = b"".join([bytes(c) async for c in stream])
    assert stream.status == "COPY 2"
    assert data.startswith(b"PGCOPY\n\xff\r\n\0")
    await conn.execute("CREATE TEMP TABLE copied2 (LIKE copied)")
    tag = await conn.copy_in("COPY copied2 FROM STDIN (FORMAT binary)", data)
    assert tag == "COPY 2"
    assert await rows_of(conn, "copied2") == ROWS[1:]


# -- every type, both ways, compared with fetch ------------------------------------------------


def _catalogue() -> list[tuple[str, list[object]]]:
    """test_types' cases, and the extended types (their schema is created by the test)."""
    extended: list[tuple[str, list[object]]] = [
        ("json", ['{"a": [1, null, "x"]}', "[]", "1.5", '"null"']),
        ("jsonb", ['{"a": {"b": [true, false]}}', "[]", "0", '"null"']),
        ("tx.mood", ["sad", "happy"]),
        ("tx.posint", [1, 2**31 - 1]),
        ("tx.point3", [(1.0, 2.0, 3.0)]),
        ("int4range", [Range(1, 5), Range(empty=True), Range(None, 3)]),
        ("tstzrange", [Range(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), None)]),
        ("int4multirange", [[Range(1, 3), Range(5, 8)], []]),
        ("hstore", ['"a"=>"1", "b"=>NULL', ""]),
        ("aclitem", ["postgres=arwdDxt/postgres"]),
        ("money", ["$1.50"]),
        ("inet", [ipaddress.ip_address("10.1.2.3"), ipaddress.ip_interface("::1/64")]),
        ("cidr", [ipaddress.ip_network("10.0.0.0/8")]),
        ("macaddr", ["08:00:2b:01:02:03"]),
        ("varbit", [BitString("10101"), BitString("")]),
        ("pg_lsn", [Lsn("16/B374D848")]),
        ("xid8", [2**40]),
        ("point", [Point(1.5, -2)]),
        ("box", [Box((2, 2), (0, 0))]),
        ("circle", [Circle((1, 1), 2)]),
        ("polygon", [Polygon((0, 0), (1, 1), (2, 0))]),
        ("xml", ["<a>b</a>"]),
    ]
    return [*CASES, *extended]


@pytest.mark.parametrize(("sqltype", "values"), _catalogue(), ids=[c[0] for c in _catalogue()])
async def test_every_type_round_trips_through_copy(
    conn: pgoxide.Connection, sqltype: str, values: list[object]
) -> None:
    await conn.execute(TYPES_SCHEMA)
    await conn.execute(f"CREATE TEMP TABLE typed (i int, v {sqltype}, a {sqltype}[])")
    # A list value inside an array would read as another dimension: those go without one.
    records = [(i, v, None if isinstance(v, list) else [v, None]) for i, v in enumerate(values)]
    records.append((len(values), None, None))
    tag = await conn.copy_records_to_table("typed", records=records)
    assert tag == f"COPY {len(records)}"
    fetched = await conn.fetch("SELECT * FROM typed ORDER BY i")
    for record, row in zip(records, fetched):
        assert _matches(list(row), list(record)), (sqltype, record, row)
    streamed = [r async for r in conn.copy_records_from_query("SELECT * FROM typed ORDER BY i")]
    assert streamed == fetched


def _matches(got: object, want: object) -> bool:
    """``_same``, with composites (decoded as Records) compared field by field."""
    if isinstance(got, pgoxide.Record):
        return _matches(list(got), list(want))  # type: ignore[call-overload]
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_matches(g, w) for g, w in zip(got, want))
    return _same(want, got)


# -- hypothesis: random rows in and out ---------------------------------------------------------


@pytest.fixture(scope="module")
def loop_conn(dsn: str) -> Iterator[tuple[asyncio.AbstractEventLoop, pgoxide.Connection]]:
    loop = asyncio.new_event_loop()
    # parse_json: the jsonb column's dicts come back as dicts.
    conn = loop.run_until_complete(pgoxide.connect(dsn, parse_json=True))
    loop.run_until_complete(
        conn.execute(
            "CREATE TEMP TABLE hypo (k int, i int8, t text, f float8, n numeric, at timestamptz, "
            "b bytea, j jsonb, a int4[])"
        )
    )
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
_ROW = st.tuples(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), st.floats(allow_nan=False)),
    st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False, places=3)),
    st.one_of(
        st.none(),
        st.datetimes(
            min_value=datetime.datetime(1, 1, 2),
            max_value=datetime.datetime(9999, 12, 30),
            timezones=st.just(datetime.timezone.utc),
        ),
    ),
    st.one_of(st.none(), st.binary()),
    st.one_of(st.none(), st.dictionaries(_TEXT, st.integers(-1000, 1000), max_size=3)),
    st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)))),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_ROW, max_size=20))
def test_hypothesis_rows_through_copy(
    loop_conn: tuple[asyncio.AbstractEventLoop, pgoxide.Connection], rows: list[tuple[Any, ...]]
) -> None:
    loop, conn = loop_conn
    records = [(k, *row) for k, row in enumerate(rows)]

    async def run() -> None:
        await conn.execute("TRUNCATE hypo")
        await conn.copy_records_to_table("hypo", records=records)
        fetched = await conn.fetch("SELECT * FROM hypo ORDER BY k")
        assert [tuple(r) for r in fetched] == records
        query = "SELECT * FROM hypo ORDER BY k"
        assert [r async for r in conn.copy_records_from_query(query)] == fetched

    loop.run_until_complete(run())


# -- bounded memory for any size ----------------------------------------------------------------


def _rss() -> int:
    """The process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.slow
async def test_five_million_rows_in_and_out_keep_memory_bounded(conn: pgoxide.Connection) -> None:
    # Resident memory sampled during both copies: holding the rows would take several hundred
    # MB either way (5M records of two values).
    await conn.execute("CREATE TEMP TABLE big (i int8, t text)")
    n = 5_000_000
    gc.collect()
    before = _rss()
    peak = before

    async def produce() -> AsyncIterator[tuple[int, str]]:
        nonlocal peak
        for i in range(n):
            if i % 100_000 == 0:
                peak = max(peak, _rss())
            yield (i, "row")

    assert await conn.copy_records_to_table("big", records=produce()) == f"COPY {n}"
    grown_in = peak - before
    peak = before = _rss()
    count = 0
    async for _ in conn.copy_records_from_query("SELECT * FROM big"):
        count += 1
        if count % 100_000 == 0:
            peak = max(peak, _rss())
    assert count == n
    assert grown_in < 64 * 2**20
    assert peak - before < 64 * 2**20


async def test_copy_from_table_options(conn: pgoxide.Connection, table: str) -> None:
    await conn.copy_records_to_table(table, records=ROWS[:2])
    out = io.BytesIO()
    tag = await conn.copy_from_table(
        table, columns=["id", "name"], output=out, format="csv", header=True, delimiter="|",
        null="<null>", quote="'", escape="\\", force_quote=["name"], encoding="UTF8",
    )  # fmt: skip
    assert tag == "COPY 2"
    assert out.getvalue() == b"id|name\n1|'one'\n2|<null>\n"
