"""The complete type system: every type round-trips in binary with NULL, non-builtin types are
introspected once, and user codecs, record_class and the value types behave as documented."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pgoxide
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pgoxide import exceptions
from pgoxide.types import (
    Array,
    BitString,
    Box,
    Circle,
    Interval,
    Line,
    LineSegment,
    Lsn,
    Path,
    Point,
    Polygon,
    Range,
)

SCHEMA = """
DROP SCHEMA IF EXISTS tx CASCADE;
CREATE SCHEMA tx;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE tx.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN tx.posint AS int CHECK (VALUE > 0);
CREATE DOMAIN tx.moods AS tx.mood[];
CREATE TYPE tx.point3 AS (x float8, y float8, z float8);
CREATE TYPE tx.tagged AS (label text, at timestamptz, pos tx.point3, moods tx.mood[], n numeric);
CREATE TYPE tx.floatrange AS RANGE (subtype = float8);
"""


@pytest.fixture
async def conn(dsn) -> AsyncIterator[pgoxide.Connection]:
    c = await pgoxide.connect(dsn)
    await c.execute(SCHEMA)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def json_conn(dsn) -> AsyncIterator[pgoxide.Connection]:
    """A connection with ``parse_json=True``: json and jsonb as Python objects."""
    c = await pgoxide.connect(dsn, parse_json=True)
    try:
        yield c
    finally:
        await c.close()


async def _round_trip(conn: pgoxide.Connection, sqltype: str, value: object) -> None:
    """The value comes back equal, NULL comes back None, and the server's text rendering of
    our value decodes to the same thing (our binary decoding agrees with the server)."""
    assert await conn.fetchval(f"SELECT $1::{sqltype}", value) == value, sqltype
    assert await conn.fetchval(f"SELECT $1::{sqltype}", None) is None
    text = await conn.fetchval(f"SELECT $1::{sqltype}::text", value)
    assert await conn.fetchval(f"SELECT $1::text::{sqltype}", text) == value, (sqltype, text)


async def test_enums_and_domains(conn):
    await _round_trip(conn, "tx.mood", "happy")
    await _round_trip(conn, "tx.mood[]", ["sad", None, "ok"])
    await _round_trip(conn, "tx.posint", 5)
    await _round_trip(conn, "tx.moods", ["ok", "happy"])
    with pytest.raises(exceptions.CheckViolationError):
        await conn.fetchval("SELECT $1::tx.posint", -1)
    with pytest.raises(exceptions.InvalidTextRepresentationError):
        await conn.fetchval("SELECT $1::tx.mood", "angry")


async def test_composites(conn):
    at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    value = ("label", at, (1.0, 2.0, 3.0), ["ok", None], Decimal("1.50"))
    got = await conn.fetchval("SELECT $1::tx.tagged", value)
    assert isinstance(got, pgoxide.Record)
    assert list(got.keys()) == ["label", "at", "pos", "moods", "n"]
    assert got["pos"]["z"] == 3.0
    assert tuple(got) == ("label", at, got["pos"], ["ok", None], Decimal("1.50"))
    assert tuple(got["pos"]) == (1.0, 2.0, 3.0)
    # A mapping by attribute name, NULL attributes, and the record itself as input.
    by_name = {"label": "x", "pos": None, "n": 7}
    got2 = await conn.fetchval("SELECT $1::tx.tagged", by_name)
    assert tuple(got2) == ("x", None, None, None, Decimal(7))
    assert await conn.fetchval("SELECT $1::tx.tagged", got) == got
    arr = await conn.fetchval("SELECT $1::tx.point3[]", [(1, 2, 3), None, (4, 5, 6)])
    assert [tuple(p) if p else p for p in arr] == [(1.0, 2.0, 3.0), None, (4.0, 5.0, 6.0)]
    with pytest.raises(
        exceptions.DataError, match=r"\$1: .* got 2 values; \$1 is of type tx\.point3\)"
    ):
        await conn.fetchval("SELECT $1::tx.point3", (1, 2))
    with pytest.raises(exceptions.DataError, match=r'tx\.point3 has no attribute "w"'):
        await conn.fetchval("SELECT $1::tx.point3", {"w": 1})
    text = await conn.fetchval("SELECT $1::tx.tagged::text", value)
    assert await conn.fetchval("SELECT $1::text::tx.tagged", text) == got


async def test_anonymous_records(conn):
    assert await conn.fetchval("SELECT ROW(1, 'a', NULL::int, ARRAY[1.5]::float8[])") == (
        1,
        "a",
        None,
        [1.5],
    )
    assert await conn.fetchval("SELECT ROW(ROW(1, 2), 'x')") == ((1, 2), "x")
    # A record names its field types only in the data: a type the connection has not seen
    # yet cannot be decoded there, and the error says what to do.
    with pytest.raises(exceptions.DataError, match="cast the field to a known type"):
        await conn.fetchval("SELECT ROW('ok'::tx.mood)")
    assert await conn.fetchval("SELECT 'ok'::tx.mood") == "ok"  # now introspected
    assert await conn.fetchval("SELECT ROW('sad'::tx.mood)") == ("sad",)


async def test_ranges_and_multiranges(conn):
    await _round_trip(conn, "int4range", Range(1, 5))
    await _round_trip(conn, "int8range", Range(None, 10))
    await _round_trip(conn, "numrange", Range(Decimal("1.5"), Decimal("2.5"), upper_inc=True))
    await _round_trip(conn, "daterange", Range(date(2020, 1, 1), None))
    await _round_trip(conn, "tstzrange", Range(datetime(2020, 1, 1, tzinfo=timezone.utc), None))
    await _round_trip(conn, "tsrange", Range(datetime(2020, 1, 1), datetime(2021, 1, 1)))
    await _round_trip(conn, "int4range", Range(empty=True))
    await _round_trip(conn, "tx.floatrange", Range(1.5, 2.5, lower_inc=False, upper_inc=True))
    # The server canonicalises discrete ranges; the Range keeps what the server sent.
    assert await conn.fetchval("SELECT $1::int4range", Range(1, 5, upper_inc=True)) == Range(1, 6)
    # asyncpg's shorthand: a tuple or list of bounds, both inclusive; () is empty.
    assert await conn.fetchval("SELECT $1::int4range", (1, 5)) == Range(1, 6)
    assert await conn.fetchval("SELECT $1::int4range", [1, 5]) == Range(1, 6)
    assert await conn.fetchval("SELECT $1::int4range", (2,)) == Range(2, None)
    assert await conn.fetchval("SELECT $1::int4range", (None, 2)) == Range(None, 3)
    assert await conn.fetchval("SELECT $1::int4range", ()) == Range(empty=True)
    assert await conn.fetchval("SELECT $1::int4multirange", [()]) == []
    mr = [Range(1, 3), Range(5, 8)]
    await _round_trip(conn, "int4multirange", mr)
    assert await conn.fetchval("SELECT '{}'::int4multirange") == []
    await _round_trip(conn, "int4range[]", [Range(1, 2), None, Range(empty=True)])


async def test_hstore_is_text_as_in_asyncpg(conn):
    assert await conn.fetchval("SELECT 'a=>1, b=>NULL'::hstore") == '"a"=>"1", "b"=>NULL'
    assert await conn.fetchval("SELECT $1::hstore", "a=>1") == '"a"=>"1"'
    assert await conn.fetchval("SELECT ARRAY['a=>1'::hstore, NULL]") == ['"a"=>"1"', None]
    assert await conn.fetchval("SELECT $1::hstore[]", ["a=>1", None]) == ['"a"=>"1"', None]


async def test_hstore_codec_is_found_by_oid(conn):
    """asyncpg's opt-in hstore codec: dicts both ways, and pairs as parameters."""
    await conn.set_builtin_type_codec("hstore", codec_name="pg_contrib.hstore")
    value = {"a": "1", "b": None, "ü": "x y"}
    await _round_trip(conn, "hstore", value)
    await _round_trip(conn, "hstore[]", [value, None, {}])
    pairs = (("foo", "2"), ("bar", "3"))
    assert await conn.fetchval("SELECT $1::hstore", pairs) == {"foo": "2", "bar": "3"}
    with pytest.raises(exceptions.DataError, match="hstore values must be str or None"):
        await conn.fetchval("SELECT $1::hstore", {"a": 1})
    with pytest.raises(exceptions.DataError, match="null value not allowed in hstore key"):
        await conn.fetchval("SELECT $1::hstore", {None: "1"})
    # Back to text.
    await conn.reset_type_codec("hstore")
    assert await conn.fetchval("SELECT 'a=>1'::hstore") == '"a"=>"1"'


async def test_network_bits_money_and_system_types(conn):
    await _round_trip(conn, "inet", ipaddress.ip_address("192.168.0.1"))
    await _round_trip(conn, "inet", ipaddress.ip_interface("10.1.2.3/8"))
    await _round_trip(conn, "inet", ipaddress.ip_address("::1"))
    await _round_trip(conn, "cidr", ipaddress.ip_network("10.0.0.0/8"))
    await _round_trip(conn, "cidr", ipaddress.ip_network("2001:db8::/32"))
    assert await conn.fetchval("SELECT $1::inet", "10.0.0.1/16") == ipaddress.ip_interface(
        "10.0.0.1/16"
    )
    with pytest.raises(exceptions.DataError, match="not a valid cidr"):
        await conn.fetchval("SELECT $1::cidr", "10.0.0.1/8")
    await _round_trip(conn, "macaddr", "08:00:2b:01:02:03")
    await _round_trip(conn, "macaddr8", "08:00:2b:01:02:03:04:05")
    await _round_trip(conn, "bit(5)", BitString("10101"))
    await _round_trip(conn, "varbit", BitString("1" * 70))
    await _round_trip(conn, "varbit", BitString(""))
    assert await conn.fetchval("SELECT $1::varbit", "0110") == BitString("0110")
    # Bytes are eight bits each, as asyncpg takes them.
    assert await conn.fetchval("SELECT $1::varbit", b"\x01\x80") == BitString("0000000110000000")
    await _round_trip(conn, "pg_lsn", Lsn("16/B374D848"))
    assert await conn.fetchval("SELECT $1::pg_lsn::text", "0/1") == "0/1"
    await _round_trip(conn, "tid", (5, 7))
    await _round_trip(conn, "xid8", 2**40)
    await _round_trip(conn, "jsonpath", '$."a"[*]?(@ > 1)')
    await _round_trip(conn, "xml", "<a>b</a>")
    snapshot = await conn.fetchval("SELECT pg_current_snapshot()")
    assert len(snapshot) == 3 and isinstance(snapshot[2], tuple)
    await _round_trip(conn, "pg_snapshot", (10, 20, (12, 15)))
    assert await conn.fetchval("SELECT '12.34'::money") == "$12.34"


async def test_geometry(conn):
    await _round_trip(conn, "point", Point(1.5, -2))
    await _round_trip(conn, "line", Line(1, -1, 0))
    await _round_trip(conn, "lseg", LineSegment((0, 0), (1, 1)))
    await _round_trip(conn, "box", Box((2, 2), (0, 0)))
    await _round_trip(conn, "path", Path((0, 0), (1, 1), (2, 0), is_closed=True))
    await _round_trip(conn, "path", Path((0, 0), (1, 1)))
    # As asyncpg reads plain sequences: a tuple of points is closed, a list open.
    closed = await conn.fetchval("SELECT $1::path", ((0, 0), (1, 1)))
    opened = await conn.fetchval("SELECT $1::path", [(0, 0), (1, 1)])
    assert (closed.is_closed, opened.is_closed) == (True, False)
    await _round_trip(conn, "polygon", Polygon((0, 0), (1, 1), (2, 0)))
    await _round_trip(conn, "circle", Circle((1, 1), 2))
    assert await conn.fetchval("SELECT $1::point", (3, 4)) == Point(3, 4)


async def test_arrays_of_any_shape(conn):
    grid = [[[1, None], [3, 4]], [[5, 6], [None, 8]]]
    await _round_trip(conn, "int8[]", grid)
    shifted = await conn.fetchval("SELECT '[0:2]={1,2,3}'::int[]")
    assert isinstance(shifted, Array) and shifted == [1, 2, 3] and shifted.lower_bounds == (0,)
    await _round_trip(conn, "int4[]", shifted)
    assert (
        await conn.fetchval("SELECT $1::int[]::text", Array([[1, 2]], lower_bounds=(-1, 3)))
        == "[-1:-1][3:4]={{1,2}}"
    )
    await _round_trip(conn, "text[]", [["a", "b"], ["c", None]])
    await _round_trip(conn, "point[]", [Point(1, 2), None])
    await _round_trip(conn, "inet[]", [ipaddress.ip_address("1.2.3.4")])
    # An array of a type without a binary codec travels as text, and is a list of str.
    assert await conn.fetchval("SELECT ARRAY['a b'::tsvector]") == ["'a' 'b'"]
    assert await conn.fetchval("SELECT '[0:1]={x,y}'::tsvector[]") == Array(
        ["'x'", "'y'"], lower_bounds=(0,)
    )
    # A range of such a type is still its text.
    await conn.execute("CREATE TYPE tx.tsvrange AS RANGE (subtype = tsvector)")
    assert await conn.fetchval("SELECT tx.tsvrange('a', 'b')") == "['a','b')"


async def test_interval_type(conn):
    value = Interval(months=-13, days=2, microseconds=-1)
    await _round_trip(conn, "interval", value)
    assert (await conn.fetchval("SELECT $1::interval", value)).fields == value.fields
    assert await conn.fetchval("SELECT $1::interval", Interval(days=1)) == timedelta(days=1)
    # An interval nested in arrays, composites and records keeps its fields too.
    got = await conn.fetchval("SELECT ARRAY[$1::interval, NULL]", value)
    assert got == [value, None] and got[0].fields == value.fields
    got = await conn.fetchval("SELECT ROW($1::interval, 1)", value)
    assert got[0].fields == value.fields


async def test_introspection_once_per_connection_and_never_for_builtins(dsn):
    async with await pgoxide.connect(dsn) as conn:
        await conn.execute(SCHEMA)
        calls = []
        introspect = conn._introspect

        async def counting(oids, timeout):
            calls.append(list(oids))
            await introspect(oids, timeout)

        conn._introspect = counting
        await conn.fetch(
            "SELECT 1::int, 'x'::text, now(), ARRAY[1.5]::numeric[],"
            " '[1,2)'::int4range, '(1,2)'::point"
        )
        assert calls == [], "builtins never trigger introspection"
        await conn.fetchval("SELECT $1::tx.tagged", ("a", None, (1, 2, 3), ["ok"], 1))
        assert len(calls) == 1, "one query for the composite and everything it depends on"
        await conn.fetchval("SELECT $1::tx.mood[], $2::tx.point3", ["ok"], (1, 2, 3))
        await conn.fetchval("SELECT ROW('sad'::tx.mood)")
        assert len(calls) == 1, "types already seen are not looked up again"


async def test_user_codecs(conn):
    class Mood(str):
        pass

    await conn.set_type_codec("mood", schema="tx", encoder=str, decoder=Mood, format="text")
    got = await conn.fetchval("SELECT 'ok'::tx.mood")
    assert type(got) is Mood and got == "ok"
    arr = await conn.fetchval("SELECT ARRAY['ok', 'sad']::tx.mood[]")
    assert all(type(m) is Mood for m in arr), "a text codec on an enum applies inside arrays"

    await conn.set_type_codec(
        "interval",
        schema="pg_catalog",
        encoder=lambda t: t,
        decoder=lambda t: ("iv", t),
        format="tuple",
    )
    assert await conn.fetchval("SELECT '1 year 1 day 1 second'::interval") == (
        "iv",
        (12, 1, 1_000_000),
    )
    assert (
        await conn.fetchval("SELECT $1::interval::text", (1, 2, 3))
        == "1 mon 2 days 00:00:00.000003"
    )

    await conn.set_type_codec(
        "date", schema="pg_catalog", encoder=lambda t: t, decoder=lambda t: t[0], format="tuple"
    )
    # The tuple form reaches infinity, which datetime.date cannot hold.
    assert await conn.fetchval("SELECT 'infinity'::date") == 2**31 - 1

    await conn.set_type_codec(
        "int4",
        schema="pg_catalog",
        encoder=lambda v: v.to_bytes(4, "big"),
        decoder=lambda b: ("raw", b),
        format="binary",
    )
    assert await conn.fetchval("SELECT 258::int4") == ("raw", b"\x00\x00\x01\x02")
    assert await conn.fetchval("SELECT $1::int4::text", 7) == "7"
    await conn.reset_type_codec("int4", schema="pg_catalog")
    assert await conn.fetchval("SELECT 258::int4") == 258
    with pytest.raises(ValueError, match="unknown type"):
        await conn.set_type_codec("nope", encoder=str, decoder=str)


async def test_deeply_nested_json(json_conn):
    """Nesting past the Rust parser's limit (200) still decodes; nesting past what Python's
    json module can build is a DataError that says what to do, and the connection goes on."""
    conn = json_conn
    for sqltype in ("json", "jsonb"):
        deep = '{"k": ' * 150 + "[" * 150 + "1" + "]" * 150 + "}" * 150
        assert await conn.fetchval(f"SELECT $1::{sqltype}", json.loads(deep)) == json.loads(deep)
        assert await conn.fetchval(f"SELECT '{deep}'::{sqltype}") == json.loads(deep)
        too_deep = "[" * 5000 + "]" * 5000
        with pytest.raises(exceptions.DataError, match=r"nested too deeply.*as text"):
            await conn.fetchval(f"SELECT '{too_deep}'::{sqltype}")
        assert await conn.fetchval(f"SELECT '{too_deep}'::{sqltype}::text") == too_deep
    assert await conn.fetchval("SELECT 1") == 1


def _same_json(a: object, b: object) -> bool:
    """Equal, with the same types and key order all the way down (1, 1.0 and True are
    different JSON values, and so are 0.0 and -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same_json, a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


async def test_json_texts_decode_as_json_loads(conn, json_conn):
    """json keeps the text as sent, so its decoder meets every layout of JSON: each of these
    decodes to what json.loads makes of it, whichever of the two Rust parsers takes it
    (``parse_json=True``); by default the text comes back as it was."""
    texts = [
        '{"a": 1, "a": 2}',
        "999999999999999999",
        "-999999999999999999",
        "12345678901234567890123",
        "-12345678901234567890",
        "-0",
        "-0.0",
        "1E400",
        "-1e400",
        "1e-400",
        "0.1",
        "1.5e3",
        "2.5E-3",
        r'"\ud83d\ude00 \u00e9 \/ \b\f\n\r\t \" \\ end"',
        r'"\u0000"',
        r'{"caf\u00e9": 1, "café": 2, "k\"ey": 3, "": 4, "x": "ünï"}',
        ' \t\n[ 1 , { } , [ ] , "" , true,false , null ] \r\n',
        '{"' + "k" * 70 + '": 1}',
        '{"a":1}',
        '{"a": 1, "ab": 2, "abc": 3, "abcdefgh": 4, "abcdefghi": 5, "abcdefghij": 6}',
        "{" + ", ".join(f'"k{i}": {i}' for i in range(2000)) + "}",
    ]
    for text in texts:
        assert await conn.fetchval("SELECT $1::json", text) == text
    conn = json_conn
    for text in texts:
        got = await conn.fetchval("SELECT $1::json", text)
        assert _same_json(got, json.loads(text)), text
    # Keys cached from one document do not leak into the next.
    rows = await conn.fetch(
        "SELECT json_build_object('k' || (i % 700), i) AS d FROM generate_series(1, 3000) AS i"
    )
    assert all(r["d"] == {f"k{i % 700}": i} for i, r in enumerate(rows, 1))
    # Nor do keys that differ only in the middle.
    rows = await conn.fetch(
        "SELECT json_build_object('prefix__' || (i % 10) || '__suffix', i) AS d"
        " FROM generate_series(1, 100) AS i"
    )
    assert all(r["d"] == {f"prefix__{i % 10}__suffix": i} for i, r in enumerate(rows, 1))


async def test_pluggable_json(conn):
    loads_calls = []

    def loads(text: str) -> object:
        loads_calls.append(text)
        return json.loads(text, parse_float=Decimal)

    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=json.dumps, decoder=loads, format="text"
        )
    assert await conn.fetchval("SELECT $1::jsonb", {"a": 1.1}) == {"a": Decimal("1.1")}
    assert await conn.fetchval("SELECT '[1.5]'::json") == [Decimal("1.5")]
    assert await conn.fetchval("SELECT ARRAY['{\"x\": 2.5}'::jsonb]") == [{"x": Decimal("2.5")}]
    assert len(loads_calls) == 3


async def test_builtin_type_codec(conn):
    await conn.set_builtin_type_codec("hstore", schema="public", codec_name="pg_contrib.hstore")
    assert await conn.fetchval("SELECT 'a=>b'::hstore") == {"a": "b"}
    # An enum's labels are text on the wire: the builtin text codec reads them too.
    await conn.set_builtin_type_codec("mood", schema="tx", codec_name="text")
    assert await conn.fetchval("SELECT 'ok'::tx.mood") == "ok"
    with pytest.raises(ValueError, match="not a builtin codec"):
        await conn.set_builtin_type_codec("mood", schema="tx", codec_name="no_such_codec")
    # asyncpg's SQL names of core codecs (test_extra_codec_alias), in a composite with hstore.
    await conn.execute(
        "CREATE DOMAIN tx.my_dec AS decimal; CREATE TYPE tx.rec AS (i tx.my_dec, h hstore)"
    )
    await conn.set_builtin_type_codec("my_dec", schema="tx", codec_name="decimal")
    assert await conn.fetchval("SELECT $1::tx.my_dec", 44) == 44
    got = await conn.fetchval("SELECT ($1::tx.my_dec, 'a=>1'::hstore)::tx.rec", 44)
    assert tuple(got) == (44, {"a": "1"})


async def test_builtin_type_codec_in_the_text_format(conn):
    """`format='text'`: the type travels only as text, read and written by the builtin's text
    codec, into the builtin's values (asyncpg's test_extra_codec_alias)."""
    await conn.execute(
        "CREATE DOMAIN tx.my_dec AS decimal; CREATE TYPE tx.rec AS (i tx.my_dec, h hstore);"
        # Results name a domain's base type, so the types read back are enums.
        "CREATE TYPE tx.digits AS ENUM ('123', '5', 'abc');"
        "CREATE TYPE tx.flag AS ENUM ('t', 'f');"
        "CREATE DOMAIN tx.real_t AS text; CREATE DOMAIN tx.cash AS money"
    )
    await conn.set_builtin_type_codec("hstore", codec_name="pg_contrib.hstore")
    composite = "SELECT ($1::tx.my_dec, 'a=>1'::hstore)::tx.rec"
    assert tuple(await conn.fetchval(composite, 44)) == (44, {"a": "1"})
    await conn.set_builtin_type_codec("my_dec", schema="tx", codec_name="decimal", format="text")
    assert await conn.fetchval("SELECT $1::tx.my_dec", 44) == 44
    assert str(await conn.fetchval("SELECT $1::tx.my_dec", "1.50")) == "1.50"
    assert (await conn.fetchval("SELECT $1::tx.my_dec", Decimal("sNaN"))).is_nan()
    assert await conn.fetchval("SELECT $1::tx.my_dec", None) is None
    assert await conn.fetchval("SELECT $1::tx.my_dec[]", [1, None, Decimal("2.5")]) == [
        1,
        None,
        Decimal("2.5"),
    ]
    # The text format both ways: enum labels read and written as int8's text.
    await conn.set_builtin_type_codec("digits", schema="tx", codec_name="bigint", format="text")
    assert await conn.fetchval("SELECT '123'::tx.digits") == 123
    assert await conn.fetchval("SELECT $1::tx.digits", 5) == 5
    assert await conn.fetchval("SELECT $1::tx.digits::text", 5) == "5"
    with pytest.raises(exceptions.DataError, match="an integer is required, got str"):
        await conn.fetchval("SELECT $1::tx.digits", "123")
    with pytest.raises(exceptions.DataError, match="value out of int64 range"):
        await conn.fetchval("SELECT $1::tx.digits", 2**63)
    with pytest.raises(exceptions.DataError, match="int8"):
        await conn.fetchval("SELECT 'abc'::tx.digits")
    await conn.set_builtin_type_codec("flag", schema="tx", codec_name="bool", format="text")
    assert await conn.fetchval("SELECT 't'::tx.flag") is True
    assert await conn.fetchval("SELECT ($1::tx.flag)::text", False) == "f"
    await conn.set_builtin_type_codec("real_t", schema="tx", codec_name="real", format="text")
    for f in (1.1, -0.0, 3.4e38, float("inf"), float("-inf")):
        assert await conn.fetchval("SELECT $1::tx.real_t::float4", f) == float(
            await conn.fetchval("SELECT $1::float4", f)
        )
    assert math.isnan(await conn.fetchval("SELECT $1::tx.real_t::float4", float("nan")))
    with pytest.raises(exceptions.DataError, match="value out of float32 range"):
        await conn.fetchval("SELECT $1::tx.real_t", 1e300)
    # A type with only a text form: its text.
    await conn.set_builtin_type_codec("cash", schema="tx", codec_name="money", format="text")
    assert await conn.fetchval("SELECT $1::tx.cash", "12.50") == "$12.50"
    # The simple query protocol and text COPY read and write the same.
    assert await conn.fetch("SELECT 1.5::tx.my_dec AS x") == [(Decimal("1.5"),)]
    await conn.execute("CREATE TABLE tx.t (a tx.my_dec, b tx.digits)")
    await conn.copy_records_to_table("t", schema_name="tx", records=[(Decimal("1.25"), 5)])
    assert await conn.fetch("SELECT * FROM tx.t") == [(Decimal("1.25"), 5)]
    # A composite with a text-only field travels as its text (asyncpg raises
    # UnsupportedClientFeatureError: it does not decode composites in the text format).
    assert await conn.fetchval(composite, 44) == '(44,"""a""=>""1""")'
    # What has no text codec here, in asyncpg's words.
    with pytest.raises(
        exceptions.InterfaceError, match="cannot alias my_dec to uuid: there is no text codec"
    ):
        await conn.set_builtin_type_codec("my_dec", schema="tx", codec_name="uuid", format="text")
    with pytest.raises(ValueError, match="format must be 'text' or 'binary'"):
        await conn.set_builtin_type_codec("my_dec", schema="tx", codec_name="numeric", format="x")
    # Back to the binary format: the composite decodes.
    await conn.reset_type_codec("my_dec", schema="tx")
    await conn.set_builtin_type_codec("my_dec", schema="tx", codec_name="decimal")
    assert tuple(await conn.fetchval(composite, 44)) == (44, {"a": "1"})


async def test_record_class(dsn):
    class Row(pgoxide.Record):
        def __getattr__(self, name: str) -> object:
            return self[name]

    async with await pgoxide.connect(dsn, record_class=Row) as conn:
        row = await conn.fetchrow("SELECT 1 AS a, ARRAY[2] AS b")
        assert type(row) is Row and row.a == 1 and row.b == [2]
        plain = await conn.fetch("SELECT 1 AS a", record_class=pgoxide.Record)
        assert type(plain[0]) is pgoxide.Record
        stmt = await conn.prepare("SELECT 3 AS c")
        assert (await stmt.fetchrow()).c == 3
        with pytest.raises(exceptions.InterfaceError, match=r"subclass of pgoxide\.Record"):
            await conn.fetch("SELECT 1", record_class=dict)


# -- hypothesis: random values of the extended types through the server ---------------------

_HYPO = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def loop_conn(dsn) -> Iterator[tuple[asyncio.AbstractEventLoop, pgoxide.Connection]]:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(pgoxide.connect(dsn))
    loop.run_until_complete(conn.execute(SCHEMA))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


@pytest.fixture(scope="module")
def json_loop_conn(dsn) -> Iterator[tuple[asyncio.AbstractEventLoop, pgoxide.Connection]]:
    """As ``loop_conn``, with ``parse_json=True``."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(pgoxide.connect(dsn, parse_json=True))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


@pytest.fixture(scope="module")
def hstore_loop_conn(dsn) -> Iterator[tuple[asyncio.AbstractEventLoop, pgoxide.Connection]]:
    """As ``loop_conn``, with asyncpg's hstore codec (dicts)."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(pgoxide.connect(dsn))
    loop.run_until_complete(conn.execute("CREATE EXTENSION IF NOT EXISTS hstore"))
    loop.run_until_complete(conn.set_builtin_type_codec("hstore", codec_name="pg_contrib.hstore"))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


def _check(loop_conn, sqltype: str, value: object) -> None:
    loop, conn = loop_conn
    loop.run_until_complete(_round_trip(conn, sqltype, value))


_JSON_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_TEXT, inner, max_size=4),
    max_leaves=20,
)
#: Layouts of json.dumps: a json column keeps the text as it was sent.
_JSON_LAYOUTS = st.sampled_from(
    [
        {},
        {"indent": 2},
        {"separators": (",", ":")},
        {"ensure_ascii": False},
        {"indent": "\t", "ensure_ascii": False},
    ]
)


@_HYPO
@given(_JSON_VALUES, _JSON_LAYOUTS)
def test_hypothesis_json(loop_conn, json_loop_conn, value, layout):
    """By default json is the text that was sent, and jsonb the server's rendering of it.
    With parse_json=True, json decodes as json.loads reads the text that was sent; jsonb,
    which keeps its own normal form (numbers become numeric), as json.loads reads the
    server's rendering of it."""
    loop, conn = loop_conn
    text = json.dumps(value, **layout)
    got = loop.run_until_complete(conn.fetchval("SELECT $1::json", text))
    assert got == text
    got, rendered = loop.run_until_complete(
        conn.fetchrow("SELECT $1::jsonb, $1::jsonb::text", text)
    )
    assert got == rendered
    loop, conn = json_loop_conn
    got = loop.run_until_complete(conn.fetchval("SELECT $1::json", text))
    assert _same_json(got, json.loads(text))
    got, rendered = loop.run_until_complete(
        conn.fetchrow("SELECT $1::jsonb, $1::jsonb::text", text)
    )
    assert _same_json(got, json.loads(rendered))


@_HYPO
@given(st.ip_addresses())
def test_hypothesis_inet(loop_conn, v):
    _check(loop_conn, "inet", v)


@_HYPO
@given(st.integers(0, 2**64 - 1))
def test_hypothesis_pg_lsn(loop_conn, v):
    _check(loop_conn, "pg_lsn", Lsn(v))
    loop, conn = loop_conn
    assert loop.run_until_complete(conn.fetchval("SELECT $1::pg_lsn::text", Lsn(v))) == str(Lsn(v))


@_HYPO
@given(st.text(alphabet="01", max_size=200))
def test_hypothesis_varbit(loop_conn, v):
    _check(loop_conn, "varbit", BitString(v))


@_HYPO
@given(st.integers(-1000, 1000), st.integers(0, 1000), st.booleans(), st.booleans())
def test_hypothesis_numrange(loop_conn, lo, width, lo_inc, hi_inc):
    _check(
        loop_conn,
        "numrange",
        Range(Decimal(lo) / 4, Decimal(lo + width) / 4, lower_inc=lo_inc, upper_inc=hi_inc)
        if width
        else Range(empty=True),
    )


@_HYPO
@given(
    st.dictionaries(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
        st.none()
        | st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
        ),
        max_size=8,
    )
)
def test_hypothesis_hstore(loop_conn, hstore_loop_conn, v):
    _check(hstore_loop_conn, "hstore", v)
    # Without the codec: the server's text, which the codec's dict round-trips through.
    loop, conn = loop_conn
    text = loop.run_until_complete(conn.fetchval("SELECT $1::hstore", _hstore_literal(v)))
    assert text == loop.run_until_complete(conn.fetchval("SELECT $1::hstore::text", text))
    loop, conn = hstore_loop_conn
    assert loop.run_until_complete(conn.fetchval("SELECT $1::text::hstore", text)) == v


def _hstore_literal(v: dict[str, str | None]) -> str:
    def quote(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return ", ".join(f"{quote(k)}=>{'NULL' if x is None else quote(x)}" for k, x in v.items())


@_HYPO
@given(
    st.tuples(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_hypothesis_composite(loop_conn, v):
    loop, conn = loop_conn
    got = loop.run_until_complete(conn.fetchval("SELECT $1::tx.point3", v))
    assert tuple(got) == v


_INTERVAL_INFINITIES = ((2**31 - 1, 2**31 - 1, 2**63 - 1), (-(2**31), -(2**31), -(2**63)))


@_HYPO
@given(
    st.integers(-(2**31), 2**31 - 1) | st.integers(-30_000_000, 30_000_000),
    st.integers(-(2**31), 2**31 - 1) | st.integers(-100_000_000, 100_000_000),
    st.integers(-(2**63), 2**63 - 1),
)
@example(0, -(2**31), 0)  # days whose magnitude does not fit an int32
@example(2**31 - 1, 0, 0)
@example(-(2**31), 0, 0)
@example(0, 0, 2**31 * 3_600_000_000)  # 2**31 hours: PostgreSQL 14 cannot print it
def test_hypothesis_interval(loop_conn, months, days, micros):
    # PostgreSQL 17's infinities (tested in test_types.py) print differently before 17.
    assume((months, days, micros) not in _INTERVAL_INFINITIES)
    loop, conn = loop_conn
    years, rest = divmod(abs(months), 12)
    sign = 1 if months >= 0 else -1
    length = (days + sign * (years * 365 + rest * 30)) * 86_400_000_000 + micros
    if abs(length // 86_400_000_000) > timedelta.max.days:
        # Longer than a timedelta (asyncpg's reading): no Interval can hold it; the server
        # reading such a value is test_intervals_as_asyncpg_reads_them_with_exact_months.
        with pytest.raises(OverflowError, match=r"longer than a datetime\.timedelta"):
            Interval(months, days, micros)
        return
    value = Interval(months, days, micros)
    got = loop.run_until_complete(conn.fetchval("SELECT $1::interval", value))
    assert got == value  # the same timedelta
    if months:
        assert got.fields == value.fields
    else:
        assert type(got) is timedelta
    hours = abs(micros) // 3_600_000_000 * (1 if micros >= 0 else -1)
    if conn.get_server_version() < (15, 0) and not -(2**31) <= hours < 2**31:
        # Before 15 the text output holds the hours in an int: the server refuses.
        with pytest.raises(exceptions.DatetimeFieldOverflowError, match="interval out of range"):
            loop.run_until_complete(conn.fetchval("SELECT $1::interval::text", value))
        return
    text = loop.run_until_complete(conn.fetchval("SELECT $1::interval::text", value))
    assert text == str(value)


@_HYPO
@given(
    st.lists(
        st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), min_size=2, max_size=2),
        min_size=1,
        max_size=4,
    ),
    st.integers(-5, 5),
)
def test_hypothesis_2d_array_with_bounds(loop_conn, grid, lower):
    _check(loop_conn, "int4[]", Array(grid, lower_bounds=(lower, 1)) if lower != 1 else grid)
