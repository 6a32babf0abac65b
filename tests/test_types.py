"""Every foundation type round-trips through the server in binary format, with NULL, edge
values and arrays; hypothesis drives random values through the server too."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import math
import pickle
import time as time_module
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pgoxide
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgoxide import exceptions
from support.versions import require_postgresql

TZ_PLUS = timezone(timedelta(hours=5, minutes=30))
TZ_MINUS = timezone(-timedelta(hours=9))

# (SQL type, values that must come back equal)
CASES: list[tuple[str, list[object]]] = [
    ("bool", [True, False]),
    ("int2", [0, -32768, 32767]),
    ("int4", [0, -(2**31), 2**31 - 1]),
    ("int8", [0, -(2**63), 2**63 - 1]),
    ("float4", [0.0, 1.5, -2.25, 3.4028234663852886e38, float("inf"), float("-inf")]),
    ("float8", [0.0, -0.0, 1e308, 5e-324, 0.1, float("inf"), float("-inf")]),
    (
        "numeric",
        [
            Decimal("0"),
            Decimal("-1.50"),
            Decimal("0.000"),
            Decimal("123456789012345678901234567890.123456789"),
            Decimal("0.00000000000000000001"),
            Decimal("-99999999999999999999"),
            Decimal("10000"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
        ],
    ),
    ("text", ["", "héllo", "☃" * 1000, "😀 emoji", "tab\tnewline\n"]),
    ("varchar", ["", "abc"]),
    ("name", ["", "a_name"]),
    ('"char"', [b"a", b"Z", b"\x00"]),
    ("bytea", [b"", b"\x00\xff" * 100, bytes(range(256))]),
    (
        "date",
        [
            date(1, 1, 1),
            date(9999, 12, 31),
            date(2000, 1, 1),
            date(1999, 12, 31),
            date(2024, 2, 29),
        ],
    ),
    ("time", [time(0, 0), time(23, 59, 59, 999999), time(12, 34, 56, 789)]),
    (
        "timetz",
        [
            time(12, 0, tzinfo=TZ_PLUS),
            time(0, 0, 1, tzinfo=TZ_MINUS),
            time(23, 59, tzinfo=timezone.utc),
        ],
    ),
    (
        "timestamp",
        [
            datetime(1, 1, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
            datetime(2000, 1, 1),
            datetime(1970, 1, 1, 0, 0, 0, 1),
        ],
    ),
    (
        "timestamptz",
        [
            datetime(2020, 5, 17, 10, 30, tzinfo=timezone.utc),
            datetime(2020, 5, 17, 10, 30, 0, 1, tzinfo=TZ_PLUS),
            datetime(1, 1, 2, tzinfo=timezone.utc),
            datetime(9999, 12, 30, tzinfo=TZ_MINUS),
        ],
    ),
    (
        "interval",
        [
            timedelta(0),
            timedelta(days=-1, microseconds=1),
            timedelta(days=999999, seconds=86399),
            timedelta(microseconds=-5),
        ],
    ),
    (
        "uuid",
        [
            uuid.UUID(int=0),
            uuid.UUID(int=2**128 - 1),
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ],
    ),
    ("oid", [0, 4294967295]),
]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, uuid.UUID):
        # Decoded uuids are pgoxide.UUID, a uuid.UUID subclass (see the test below).
        return a == b and isinstance(b, uuid.UUID)
    return a == b and type(a) is type(b)


@pytest.fixture(scope="module")
def loop_conn(dsn) -> Iterator[tuple[asyncio.AbstractEventLoop, pgoxide.Connection]]:
    """One event loop and connection for the synchronous (hypothesis) tests of this module."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(pgoxide.connect(dsn))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


@pytest.mark.parametrize(("sqltype", "values"), CASES, ids=[c[0] for c in CASES])
async def test_round_trip(dsn, sqltype, values):
    async with await pgoxide.connect(dsn) as conn:
        for v in values:
            got = await conn.fetchval(f"SELECT $1::{sqltype}", v)
            assert _same(got, v), (sqltype, v, got)
        assert await conn.fetchval(f"SELECT $1::{sqltype}", None) is None
        # One-dimensional arrays with a NULL element, and the empty array.
        arr = [*values, None]
        got = await conn.fetchval(f"SELECT $1::{sqltype}[]", arr)
        assert _same(got, arr), (sqltype, got)
        assert await conn.fetchval(f"SELECT $1::{sqltype}[]", []) == []
        # Values written by the server (not by our encoder) decode the same.
        for v in values:
            text = await conn.fetchval(f"SELECT $1::{sqltype}::text", v)
            assert _same(await conn.fetchval(f"SELECT $1::text::{sqltype}", text), v)


async def test_nan(dsn):
    async with await pgoxide.connect(dsn) as conn:
        assert math.isnan(await conn.fetchval("SELECT $1::float8", float("nan")))
        assert math.isnan(await conn.fetchval("SELECT $1::float4", float("nan")))
        assert (await conn.fetchval("SELECT $1::numeric", Decimal("NaN"))).is_nan()
        assert (await conn.fetchval("SELECT 'NaN'::numeric")).is_nan()


def _asyncpg_numeric(text: str) -> Decimal:
    """The Decimal asyncpg 0.32 makes of a numeric the server prints as ``text``: the digits
    as sent in base 10000, so an integer's trailing zeros in whole groups of four are the
    exponent (``10000`` is ``Decimal('1E+4')``, ``100`` is ``Decimal('100')``); a value with a
    display scale has exactly its scale's digits, as ``Decimal(text)``."""
    if "." in text or not text.lstrip("-").isdigit():
        return Decimal(text)
    digits = text.lstrip("-")
    k = (len(digits) - len(digits.rstrip("0"))) // 4 * 4
    if k == 0 or digits == "0":
        return Decimal(text)
    return Decimal(f"{'-' if text.startswith('-') else ''}{digits[:-k]}E+{k}")


async def test_numeric_digits_are_never_rounded(dsn):
    """Numerics far past Decimal's default 28 digits, and far out of its default exponent
    range, come back digit for digit, in asyncpg's shape."""
    async with await pgoxide.connect(dsn) as conn:
        for expr in (
            "1::numeric / 7",
            "repeat('9', 1000)::numeric + 0.5",
            "-('0.' || repeat('0', 16000) || '123')::numeric",
            "('1' || repeat('0', 130000))::numeric",
            "('1' || repeat('0', 130000) || '.5')::numeric",
            "'Infinity'::numeric",
            "'-Infinity'::numeric",
        ):
            got, text = await conn.fetchrow(f"SELECT x, x::text FROM (SELECT {expr} AS x) s")
            assert type(got) is Decimal and got == Decimal(text), expr
            assert got.as_tuple() == _asyncpg_numeric(text).as_tuple(), expr


async def test_numeric_has_asyncpg_digits_and_exponent(dsn):
    """Each Decimal as asyncpg 0.32 decodes it (checked against asyncpg itself)."""
    cases = {
        "0": (0, (0,), 0),
        "0.00": (0, (0,), -2),
        "-0.00": (0, (0,), -2),
        "1E+1000": (0, (1,), 1000),
        "100": (0, (1, 0, 0), 0),
        "10000": (0, (1,), 4),
        "-100000": (1, (1, 0), 4),
        "120000.00": (0, (1, 2, 0, 0, 0, 0, 0, 0), -2),
        "1.10": (0, (1, 1, 0), -2),
        "1000.0": (0, (1, 0, 0, 0, 0), -1),
        "-0.001": (1, (1,), -3),
        "0.000000001": (0, (1,), -9),
        "1E-1000": (0, (1,), -1000),
    }
    async with await pgoxide.connect(dsn) as conn:
        for text, expected in cases.items():
            got = await conn.fetchval(f"SELECT '{text}'::numeric")
            assert tuple(got.as_tuple()) == expected, text
            # The same from a parameter, and inside an array.
            assert tuple((await conn.fetchval("SELECT $1::numeric", got)).as_tuple()) == expected
            [item] = await conn.fetchval(f"SELECT ARRAY['{text}'::numeric]")
            assert tuple(item.as_tuple()) == expected, text
            # And from the text format (a COPY with a text-only column is a text COPY).
            query = f"SELECT '{text}'::numeric, ''::tsvector"
            [(item, _)] = [r async for r in conn.copy_records_from_query(query)]
            assert tuple(item.as_tuple()) == expected, text
        for text in ("NaN", "Infinity", "-Infinity"):
            got = await conn.fetchval(f"SELECT '{text}'::numeric")
            assert str(got) == text


async def test_text_rendering_matches_server(dsn):
    """What we send is what the server understands: compare with its text output."""
    async with await pgoxide.connect(dsn) as conn:
        await conn.execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'"
        )
        checks = [
            ("numeric", Decimal("-12.500"), "-12.500"),
            ("date", date(2024, 2, 29), "2024-02-29"),
            ("timestamp", datetime(2001, 2, 3, 4, 5, 6, 7), "2001-02-03 04:05:06.000007"),
            (
                "timestamptz",
                datetime(2001, 2, 3, 4, 5, 6, tzinfo=TZ_PLUS),
                "2001-02-02 22:35:06+00",
            ),
            ("time", time(1, 2, 3, 4), "01:02:03.000004"),
            ("timetz", time(1, 2, 3, tzinfo=TZ_MINUS), "01:02:03-09"),
            ("interval", timedelta(days=3, seconds=3661, microseconds=5), "3 days 01:01:01.000005"),
            ("bytea", b"\x00\xab", "\\x00ab"),
            ("uuid", uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
            ("int8[]", [1, None, 3], "{1,NULL,3}"),
            ("text[]", ["a b", '"q"', ""], '{"a b","\\"q\\"",""}'),
            ("bool", True, "true"),
        ]
        for sqltype, value, text in checks:
            assert await conn.fetchval(f"SELECT $1::{sqltype}::text", value) == text, sqltype


async def test_json_and_jsonb_are_their_text(dsn):
    """As asyncpg: json and jsonb come back as their JSON text (jsonb as the server renders
    it); a str parameter is JSON text already, never serialised again."""
    async with await pgoxide.connect(dsn) as conn:
        assert await conn.fetchval("""SELECT '{"a": [1, 2.5]}'::json""") == '{"a": [1, 2.5]}'
        assert await conn.fetchval("""SELECT '{"a":[1,2.5]}'::jsonb""") == '{"a": [1, 2.5]}'
        for sqltype in ("json", "jsonb"):
            assert await conn.fetchval(f"SELECT $1::{sqltype}", '"null"') == '"null"'
            assert await conn.fetchval(f"SELECT $1::{sqltype}", "null") == "null"
            got = await conn.fetchval(f"SELECT $1::{sqltype}[]", ['"null"', "22", None])
            assert got == ['"null"', "22", None]
            # Other objects are still serialised with json.dumps (asyncpg refuses them).
            assert json.loads(await conn.fetchval(f"SELECT $1::{sqltype}", {"a": 1})) == {"a": 1}
        got = await conn.fetchval("""SELECT ROW('{"k": 1}'::jsonb, 2)""")
        assert got == ('{"k": 1}', 2)
        with pytest.raises(exceptions.InvalidTextRepresentationError):
            await conn.fetchval("SELECT $1::jsonb", "{not json")


async def test_json_and_jsonb_decode_to_python_objects_with_parse_json(dsn):
    async with await pgoxide.connect(dsn, parse_json=True) as conn:
        doc = {"a": [1, 2.5, None, "x"], "b": {"c": True}, "big": 2**70}
        for sqltype in ("json", "jsonb"):
            # Python objects are serialised; a str is taken as JSON text, as asyncpg does.
            assert await conn.fetchval(f"SELECT $1::{sqltype}", doc) == doc
            assert await conn.fetchval(f"SELECT $1::{sqltype}", json.dumps(doc)) == doc
            assert await conn.fetchval(f"SELECT $1::{sqltype}", [1, "two"]) == [1, "two"]
            assert (
                await conn.fetchval(f"SELECT $1::{sqltype}", '"just a string"') == "just a string"
            )
            arr = await conn.fetchval(f"SELECT $1::{sqltype}[]", ["1", "{}", None])
            assert arr == [1, {}, None]
        assert await conn.fetchval("""SELECT ROW('{"k": 1}'::jsonb, 2)""") == ({"k": 1}, 2)
        with pytest.raises(exceptions.InvalidTextRepresentationError):
            await conn.fetchval("SELECT $1::jsonb", "{not json")
        with pytest.raises(exceptions.DataError, match="cannot serialise to JSON"):
            await conn.fetchval("SELECT $1::jsonb", {"x": object()})
        assert await conn.fetchval("SELECT 1") == 1
        # A user codec still wins over parse_json, and resetting it goes back to parsing.
        await conn.set_type_codec(
            "jsonb", schema="pg_catalog", encoder=json.dumps, decoder=lambda s: ("user", s)
        )
        assert await conn.fetchval("SELECT '[1]'::jsonb") == ("user", "[1]")
        await conn.reset_type_codec("jsonb", schema="pg_catalog")
        assert await conn.fetchval("SELECT '[1]'::jsonb") == [1]


async def test_parse_json_through_a_pool(dsn):
    pool = await pgoxide.create_pool(dsn, min_size=1, max_size=2, parse_json=True)
    try:
        assert await pool.fetchval("SELECT '[1]'::jsonb") == [1]
        async with pool.acquire() as conn:
            assert await conn.fetchval("""SELECT '{"a": 1}'::json""") == {"a": 1}
    finally:
        await pool.close()
    pool = await pgoxide.create_pool(dsn, min_size=1, max_size=2)
    try:
        assert await pool.fetchval("SELECT '[1]'::jsonb") == "[1]"
    finally:
        await pool.close()


async def test_char_void_and_text_only_arrays(dsn):
    """asyncpg's shapes: "char" as bytes, void as None, arrays of types with only a text
    form (aclitem, money) as lists of str, both ways."""
    async with await pgoxide.connect(dsn) as conn:
        assert await conn.fetchval("SELECT 'r'::\"char\"") == b"r"
        assert await conn.fetchval("SELECT ''::\"char\"") == b"\x00"
        assert await conn.fetchval('SELECT $1::"char"', b"x") == b"x"
        assert await conn.fetchval('SELECT $1::"char"', "x") == b"x"
        assert await conn.fetchval("""SELECT ARRAY['a'::"char", NULL]""") == [b"a", None]
        assert await conn.fetchval("SELECT pg_sleep(0)") is None
        assert await conn.fetchval("SELECT $1::void IS NULL", "") is False
        acl = await conn.fetchval("SELECT '{postgres=arwdDxt/postgres}'::aclitem[]")
        assert acl == ["postgres=arwdDxt/postgres"]
        got = await conn.fetchval("SELECT $1::aclitem[]", ["postgres=r/postgres", None])
        assert got == ["postgres=r/postgres", None]
        assert await conn.fetchval("SELECT '{{1,2},{3,NULL}}'::money[]::text") == (
            "{{$1.00,$2.00},{$3.00,NULL}}"
        )
        assert await conn.fetchval("SELECT '{{1,2},{3,NULL}}'::money[]") == [
            ["$1.00", "$2.00"],
            ["$3.00", None],
        ]
        odd = ['a "quoted" \\ value', "{braces}, commas", "", "NULL"]
        assert await conn.fetchval("SELECT $1::tsvector[]::text[]", odd) == (
            await conn.fetchval("SELECT $1::text[]::tsvector[]::text[]", odd)
        )
        assert await conn.fetchval("SELECT $1::money[]", ["1.5", "$2.00"]) == ["$1.50", "$2.00"]
        assert await conn.fetchval("SELECT $1::money[]", []) == []
        # The literal itself is still taken.
        assert await conn.fetchval("SELECT $1::money[]", "{1,2}") == ["$1.00", "$2.00"]


async def test_multidimensional_arrays(dsn):
    async with await pgoxide.connect(dsn) as conn:
        grid = [[1, 2, 3], [4, None, 6]]
        assert await conn.fetchval("SELECT $1::int4[]", grid) == grid
        assert await conn.fetchval("SELECT '{{a,b},{c,d}}'::text[]") == [["a", "b"], ["c", "d"]]
        with pytest.raises(exceptions.DataError, match="rectangular"):
            await conn.fetchval("SELECT $1::int4[]", [[1, 2], [3]])
        assert await conn.fetchval("SELECT $1::int4[]", (1, 2)) == [1, 2]


async def test_text_like_and_text_format_types(dsn):
    async with await pgoxide.connect(dsn) as conn:
        assert await conn.fetchval("SELECT $1::bpchar(5)", "ab") == "ab   "
        assert await conn.fetchval("SELECT $1", "untyped") == "untyped"
        # Types without a binary codec come back as their text form...
        assert await conn.fetchval("SELECT 'a b'::tsvector") == "'a' 'b'"
        assert await conn.fetchval("SELECT 'pg_class'::regclass") == "pg_class"
        # ...and accept a str parameter, sent as text for the server to parse.
        assert await conn.fetchval("SELECT $1::tsvector::text", "b a") == "'a' 'b'"
        with pytest.raises(exceptions.DataError, match="expected str"):
            await conn.fetchval("SELECT $1::tsvector", 5)


async def test_out_of_range_dates_raise_clearly(dsn):
    async with await pgoxide.connect(dsn) as conn:
        for query, what in [
            ("SELECT '10000-01-01'::date AS d", "out of the range"),
            ("SELECT '0001-01-01 BC'::timestamp AS d", "out of the range"),
        ]:
            with pytest.raises(exceptions.DataError, match=what) as info:
                await conn.fetchval(query)
            assert 'column "d"' in str(info.value)
        assert await conn.fetchval("SELECT '24:00:00'::time::text") == "24:00:00"
        with pytest.raises(exceptions.DataError, match="24:00:00"):
            await conn.fetchval("SELECT '24:00:00'::time")


INFINITIES = [
    ("date", date.max, date.min),
    ("timestamp", datetime.max, datetime.min),
    # Naive for timestamptz too, as asyncpg returns them.
    ("timestamptz", datetime.max, datetime.min),
]


async def test_infinities_are_max_and_min_as_in_asyncpg(dsn):
    async with await pgoxide.connect(dsn) as conn:
        await conn.execute("SET TimeZone = 'UTC'")
        for sqltype, plus, minus in INFINITIES:
            row = await conn.fetchrow(f"SELECT 'infinity'::{sqltype}, '-infinity'::{sqltype}")
            assert tuple(row) == (plus, minus), sqltype
            assert getattr(row[0], "tzinfo", None) is None
            both = await conn.fetchrow(
                f"SELECT $1::{sqltype}::text, $2::{sqltype}::text", plus, minus
            )
            assert tuple(both) == ("infinity", "-infinity"), sqltype
            # Inside arrays and as range bounds, which differ from unbounded ranges.
            assert await conn.fetchval(
                f"SELECT ARRAY['infinity', NULL, '-infinity']::{sqltype}[]"
            ) == [plus, None, minus]
            assert await conn.fetchval(f"SELECT $1::{sqltype}[]::text", [plus, minus]) == (
                "{infinity,-infinity}"
            )
        utc = timezone.utc
        for aware, text in [
            (datetime.max.replace(tzinfo=utc), "infinity"),
            (datetime.min.replace(tzinfo=utc), "-infinity"),
            # The same UTC instant as datetime.max, as asyncpg compares it.
            (
                datetime(9999, 12, 31, 22, 59, 59, 999999, tzinfo=timezone(-timedelta(hours=1))),
                "infinity",
            ),
            (
                datetime(9999, 12, 31, 23, 59, 59, 999998, tzinfo=utc),
                "9999-12-31 23:59:59.999998+00",
            ),
        ]:
            assert await conn.fetchval("SELECT $1::timestamptz::text", aware) == text
        assert await conn.fetchval("SELECT ROW('infinity'::date, 1)") == (date.max, 1)
        bounded = await conn.fetchval("SELECT '[2020-01-01,infinity)'::daterange")
        assert bounded == pgoxide.types.Range(date(2020, 1, 1), date.max)
        unbounded = await conn.fetchval("SELECT '[2020-01-01,)'::daterange")
        assert unbounded == pgoxide.types.Range(date(2020, 1, 1), None)
        assert await conn.fetchval("SELECT $1::daterange::text", bounded) == "[2020-01-01,infinity)"
        assert await conn.fetchval("SELECT $1::daterange::text", unbounded) == "[2020-01-01,)"
        # The one ambiguous value: the real last day reads as date.max, which is sent back as
        # infinity (likewise 9999-12-31 23:59:59.999999 and the first day of the year 1).
        real_last = await conn.fetchval("SELECT '9999-12-31'::date")
        assert real_last == date.max
        assert await conn.fetchval("SELECT $1::date::text", real_last) == "infinity"


async def test_infinity_raise(dsn):
    async with await pgoxide.connect(dsn, infinity="raise") as conn:
        await conn.execute("SET TimeZone = 'UTC'")
        for sqltype, _, _ in INFINITIES:
            for sign in ("", "-"):
                what = "date" if sqltype == "date" else "datetime"
                query = f"SELECT '{sign}infinity'::{sqltype} AS d"
                with pytest.raises(
                    exceptions.DataError, match=f"{what} value {sign}infinity"
                ) as info:
                    await conn.fetchval(query)
                assert 'column "d"' in str(info.value)
                with pytest.raises(exceptions.DataError, match="infinity"):
                    await conn.fetchval(f"SELECT ARRAY['{sign}infinity'::{sqltype}]")
        # max and min are the real dates and times, both ways.
        for sqltype, value, text in [
            ("date", date.max, "9999-12-31"),
            ("date", date.min, "0001-01-01"),
            ("timestamp", datetime.max, "9999-12-31 23:59:59.999999"),
            ("timestamp", datetime.min, "0001-01-01 00:00:00"),
            (
                "timestamptz",
                datetime.max.replace(tzinfo=timezone.utc),
                "9999-12-31 23:59:59.999999+00",
            ),
        ]:
            assert await conn.fetchval(f"SELECT $1::{sqltype}::text", value) == text
            assert await conn.fetchval(f"SELECT '{text}'::{sqltype}") == value
        with pytest.raises(exceptions.DataError, match="date value infinity"):
            await conn.fetchval("SELECT ROW('infinity'::date, 1)")
        # An infinite range bound raises; an unbounded range does not.
        with pytest.raises(exceptions.DataError, match="infinity"):
            await conn.fetchval("SELECT '[2020-01-01,infinity)'::daterange")
        assert await conn.fetchval("SELECT '[2020-01-01,)'::daterange") == pgoxide.types.Range(
            date(2020, 1, 1), None
        )
        # A bad value in the middle of a result fails that call only.
        with pytest.raises(exceptions.DataError):
            await conn.fetch(
                "SELECT CASE WHEN g = 500 THEN 'infinity' ELSE now() END::date"
                " FROM generate_series(1, 1000) g"
            )
        assert await conn.fetchval("SELECT 24") == 24
    # The option is the connection's: another connection keeps asyncpg's mapping.
    async with await pgoxide.connect(dsn) as conn:
        assert await conn.fetchval("SELECT 'infinity'::date") == date.max


async def test_infinite_intervals(dsn):
    async with await pgoxide.connect(dsn) as conn:
        require_postgresql(conn.get_server_version(), 17, "infinite intervals")
        plus, minus = await conn.fetchrow("SELECT 'infinity'::interval, '-infinity'::interval")
        assert plus == timedelta.max and minus == timedelta.min
        assert plus.fields == (2**31 - 1, 2**31 - 1, 2**63 - 1)
        assert await conn.fetchval("SELECT $1::interval::text", minus) == "-infinity"
    async with await pgoxide.connect(dsn, infinity="raise") as conn:
        with pytest.raises(exceptions.DataError, match="interval value infinity"):
            await conn.fetchval("SELECT 'infinity'::interval")


async def test_parameter_type_errors(dsn):
    async with await pgoxide.connect(dsn) as conn:
        bad = [
            ("bool", 1, "a boolean is required, got int"),
            ("int2", 40000, "value out of int16 range"),
            ("int8", 1.5, "would lose something"),
            ("int8", "1", "an integer is required, got str"),
            ("float8", "1.5", "must be real number, not str"),
            ("float4", 1e300, "value out of float32 range"),
            ("numeric", "abc", "invalid numeric value"),
            ("numeric", b"1", "expected Decimal, int, float or str"),
            ("text", 5, "expected str"),
            ("bytea", "str", "a bytes-like object is required, got str"),
            ("date", datetime(2020, 1, 1), "not datetime.datetime"),
            ("timestamp", datetime(2020, 1, 1, tzinfo=timezone.utc), "naive datetime"),
            (
                "timestamptz",
                5,
                "expected a datetime.date or datetime.datetime instance, got 'int'",
            ),
            ("interval", 5, "expected datetime.timedelta"),
            ("uuid", 5, "expected uuid.UUID or str"),
            ("uuid", "not-a-uuid", "invalid UUID"),
            ("int4[]", 5, "sized iterable container expected"),
            ("int4[]", "12", "sized iterable container expected"),
            ("int4[]", ["a"], "array element: an integer is required"),
            ('"char"', b"ab", "single byte"),
            ('"char"', 5, "expected bytes"),
        ]
        for sqltype, value, why in bad:
            with pytest.raises(exceptions.DataError, match=why) as info:
                await conn.fetchval(f"SELECT $1::{sqltype}", value)
            # asyncpg's shape, with the parameter's type last.
            assert str(info.value).startswith("invalid input for query argument $1: ")
            assert str(info.value).endswith(f"; $1 is of type {sqltype})")
        assert await conn.fetchval(
            "SELECT $1::uuid", "12345678123456781234567812345678"
        ) == uuid.UUID("12345678-1234-5678-1234-567812345678")
        # A date for a timestamp is its midnight, as in asyncpg (local time for timestamptz).
        assert await conn.fetchval("SELECT $1::timestamp", date(2020, 1, 2)) == datetime(2020, 1, 2)
        assert await conn.fetchval("SELECT $1::timestamptz", date(2020, 1, 2)) == datetime(
            2020, 1, 2
        ).astimezone(timezone.utc)
        assert await conn.fetchval("SELECT $1::numeric", 7) == Decimal(7)
        assert await conn.fetchval("SELECT $1::float8", 7) == 7.0
        assert await conn.fetchval("SELECT $1::bytea", bytearray(b"ab")) == b"ab"
        assert await conn.fetchval("SELECT $1::bytea", memoryview(b"cd")) == b"cd"


@pytest.fixture
def india_time() -> Iterator[None]:
    """The process's local time zone is UTC+05:30 (a POSIX TZ rule: no tzdata needed, no
    daylight saving) for the test, then what it was."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "IST-05:30")
        time_module.tzset()
        try:
            yield
        finally:
            mp.undo()
            time_module.tzset()


async def test_naive_timestamptz_is_local_time(dsn, india_time):
    assert time_module.timezone == -(5 * 3600 + 30 * 60)  # the zone really is in effect
    async with await pgoxide.connect(dsn) as conn:
        naive = datetime(2021, 6, 1, 12, 0)
        # 12:00 local time is 06:30 UTC; read as UTC it would come back as 12:00 UTC.
        got = await conn.fetchval("SELECT $1::timestamptz", naive)
        assert got == datetime(2021, 6, 1, 6, 30, tzinfo=timezone.utc)
        # The server got the instant too (the text form is independent of the decoder).
        utc_text = "SELECT ($1::timestamptz AT TIME ZONE 'UTC')::text"
        assert await conn.fetchval(utc_text, naive) == "2021-06-01 06:30:00"
        # A date is its local midnight.
        assert await conn.fetchval(utc_text, date(2021, 6, 1)) == "2021-05-31 18:30:00"


async def test_intervals_as_asyncpg_reads_them_with_exact_months(dsn):
    Interval = pgoxide.types.Interval
    async with await pgoxide.connect(dsn) as conn:
        got = await conn.fetchval("SELECT '1 year 2 months 3 days 04:05:06'::interval")
        # asyncpg's timedelta (a year 365 days, a month 30), keeping the fields exactly.
        assert type(got) is Interval and isinstance(got, timedelta)
        assert got == timedelta(days=365 + 60 + 3, hours=4, minutes=5, seconds=6)
        assert got.fields == (14, 3, 14706000000)
        assert await conn.fetchval("SELECT $1::interval::text", got) == (
            "1 year 2 mons 3 days 04:05:06"
        )
        # The values asyncpg 0.32 returns, checked against it.
        for text, days, seconds in [
            ("1 mon", 30, 0),
            ("-1 mon", -30, 0),
            ("13 mons", 395, 0),
            ("-13 mons", -395, 0),
            ("-1 mon +2 days -03:00:00", -29, 75600),
            ("1 mon -40 days", -10, 0),
            ("1000000 years", 365000000, 0),
        ]:
            got = await conn.fetchval(f"SELECT '{text}'::interval")
            assert got == timedelta(days=days, seconds=seconds), text
            assert await conn.fetchval(
                "SELECT $1::interval::text = $2::text::interval::text", got, text
            ), text
        # Without months: a plain timedelta, as in asyncpg (the day/time split is not kept).
        for text, value in [
            ("3 days 00:00:01", timedelta(days=3, seconds=1)),
            ("25:00:00", timedelta(hours=25)),
            ("-01:00:00", timedelta(hours=-1)),
            ("24:00:00", timedelta(days=1)),
        ]:
            got = await conn.fetchval(f"SELECT '{text}'::interval")
            assert type(got) is timedelta and got == value, text
        # An Interval sends its fields as they are, months or not.
        assert await conn.fetchval("SELECT $1::interval::text", Interval(0, 0, 86_400_000_000)) == (
            "24:00:00"
        )
        # As in PostgreSQL, a month of 30 days compares equal to 30 days.
        assert await conn.fetchval("SELECT '1 mon'::interval = '30 days'::interval")
        assert Interval(months=1) == timedelta(days=30) == Interval(days=30)
        # Longer than a timedelta: asyncpg raises OverflowError, pgoxide a DataError.
        with pytest.raises(exceptions.DataError, match="beyond the range of Python's timedelta"):
            await conn.fetchval("SELECT '3000000 years'::interval")
        assert await conn.fetchval("SELECT 1") == 1


# -- hypothesis: random values through the server -------------------------------------------

_HYPO = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _through(loop_conn, sqltype: str, value: object) -> object:
    loop, conn = loop_conn
    return loop.run_until_complete(conn.fetchval(f"SELECT $1::{sqltype}", value))


@_HYPO
@given(st.integers(-(2**63), 2**63 - 1))
def test_hypothesis_int8(loop_conn, v):
    assert _through(loop_conn, "int8", v) == v


@_HYPO
@given(st.floats(allow_nan=False))
def test_hypothesis_float8(loop_conn, v):
    assert _through(loop_conn, "float8", v) == v


@_HYPO
@given(
    st.decimals(allow_nan=False, places=None).filter(
        lambda d: d.is_infinite() or abs(d.adjusted()) < 1000
    )
)
def test_hypothesis_numeric(loop_conn, v):
    loop, conn = loop_conn
    got, text = loop.run_until_complete(
        conn.fetchrow("SELECT x, x::text FROM (SELECT $1::numeric AS x) s", v)
    )
    assert got == v
    # asyncpg's digits and exponent, whatever the value.
    assert got.as_tuple() == _asyncpg_numeric(text).as_tuple()
    if v.is_finite() and v.as_tuple().exponent < 0:
        # PostgreSQL keeps the display scale: the same digits come back.
        assert got.as_tuple().exponent == v.as_tuple().exponent


@_HYPO
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_hypothesis_text(loop_conn, v):
    assert _through(loop_conn, "text", v) == v


@_HYPO
@given(st.binary())
def test_hypothesis_bytea(loop_conn, v):
    assert _through(loop_conn, "bytea", v) == v


@_HYPO
@given(st.dates())
def test_hypothesis_date(loop_conn, v):
    assert _through(loop_conn, "date", v) == v


@_HYPO
@given(st.datetimes())
def test_hypothesis_timestamp(loop_conn, v):
    assert _through(loop_conn, "timestamp", v) == v


@_HYPO
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_hypothesis_timestamptz(loop_conn, v):
    got = _through(loop_conn, "timestamptz", v)
    # Compared in UTC: PEP 495 makes times in a DST fold unequal to every other zone.
    assert got == v.astimezone(timezone.utc) and got.tzinfo is timezone.utc


@_HYPO
@given(st.times())
def test_hypothesis_time(loop_conn, v):
    assert _through(loop_conn, "time", v) == v


@_HYPO
@given(st.timedeltas(min_value=timedelta(days=-999999), max_value=timedelta(days=999999)))
def test_hypothesis_interval(loop_conn, v):
    got = _through(loop_conn, "interval", v)
    assert type(got) is timedelta and got == v


def _asyncpg_interval(months: int, days: int, microseconds: int) -> timedelta:
    """asyncpg 0.32's reading (pgproto's interval_decode): years and months split towards
    zero, a year 365 days, a month 30."""
    years = abs(months) // 12 * (1 if months >= 0 else -1)
    rest = months - years * 12
    return timedelta(days=days + years * 365 + rest * 30, microseconds=microseconds)


@_HYPO
@given(
    st.integers(-20_000_000, 20_000_000),
    st.integers(-300_000_000, 300_000_000),
    st.integers(-80_000_000 * 86_400_000_000, 80_000_000 * 86_400_000_000),
)
def test_hypothesis_interval_fields(loop_conn, months, days, micros):
    value = pgoxide.types.Interval(months, days, micros)
    assert value == _asyncpg_interval(months, days, micros)
    got = _through(loop_conn, "interval", value)
    assert got == _asyncpg_interval(months, days, micros)
    if months:
        # Exactly the fields sent, through the server's binary form and back.
        assert type(got) is pgoxide.types.Interval and got.fields == (months, days, micros)
        loop, conn = loop_conn
        text = loop.run_until_complete(conn.fetchval("SELECT $1::interval::text", got))
        assert text == str(value)
    else:
        assert type(got) is timedelta


@pytest.fixture(scope="module")
def loop_conn_raise(dsn) -> Iterator[tuple[asyncio.AbstractEventLoop, pgoxide.Connection]]:
    """As ``loop_conn``, connected with ``infinity="raise"``."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(pgoxide.connect(dsn, infinity="raise"))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


_DATE_EXTREMES = st.sampled_from([date.min, date.max])
_DATETIME_EXTREMES = st.sampled_from([datetime.min, datetime.max])


@_HYPO
@given(st.dates() | _DATE_EXTREMES, st.datetimes() | _DATETIME_EXTREMES)
def test_hypothesis_infinity_modes(loop_conn, loop_conn_raise, d, ts):
    query = "SELECT $1::date, $1::date::text, $2::timestamp, $2::timestamp::text"
    for lc, mapped in ((loop_conn, True), (loop_conn_raise, False)):
        loop, conn = lc
        got_d, text_d, got_ts, text_ts = loop.run_until_complete(conn.fetchrow(query, d, ts))
        # Both modes round-trip every value; only the default sends max/min as infinities.
        assert (got_d, got_ts) == (d, ts)
        if d in (date.min, date.max):
            assert text_d == (("infinity" if d == date.max else "-infinity") if mapped else str(d))
        if ts in (datetime.min, datetime.max):
            want = ("infinity" if ts == datetime.max else "-infinity") if mapped else str(ts)
            assert text_ts == want


@_HYPO
@given(st.uuids())
def test_hypothesis_uuid(loop_conn, v):
    assert _through(loop_conn, "uuid", v) == v


async def test_decoded_uuid_is_a_complete_uuid(dsn):
    """A decoded uuid is a pgoxide.UUID: a uuid.UUID that stores its bytes and makes its int
    on first use. Everything uuid.UUID offers must answer as for the same uuid.UUID."""
    expected = uuid.UUID("12345678-9abc-4def-8123-456789abcdef")
    async with await pgoxide.connect(dsn) as conn:
        got = await conn.fetchval("SELECT $1::uuid", str(expected))
        # Sent back as a parameter (the encoder reads its bytes directly).
        assert await conn.fetchval("SELECT $1::uuid::text", got) == str(expected)
        assert await conn.fetchval("SELECT $1::uuid = $2::uuid", got, expected) is True
    assert type(got) is pgoxide.UUID and isinstance(got, uuid.UUID)
    assert got.int == expected.int and got.int is got.int  # made once, then kept
    assert got.is_safe is uuid.SafeUUID.unknown
    assert (str(got), repr(got), got.version, got.hex, got.bytes, got.fields, got.urn) == (
        str(expected),
        repr(expected),
        4,
        expected.hex,
        expected.bytes,
        expected.fields,
        expected.urn,
    )
    assert hash(got) == hash(expected) and got == expected and expected == got
    assert {expected: 1}[got] == 1
    assert uuid.UUID(int=0) < got < uuid.UUID(int=2**128 - 1)
    # Pickles and copies are plain uuid.UUIDs, readable without pgoxide.
    for copied in (pickle.loads(pickle.dumps(got)), copy.copy(got), copy.deepcopy(got)):
        assert type(copied) is uuid.UUID and copied == expected
    assert not gc.is_tracked(got)
    with pytest.raises(TypeError):
        got.int = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        object.__setattr__(got, "int", 5)
    with pytest.raises(TypeError, match=r"make a uuid\.UUID"):
        type(got)(str(expected))
    assert got == expected


@_HYPO
@given(st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=50))
def test_hypothesis_int4_array(loop_conn, v):
    assert _through(loop_conn, "int4[]", v) == v


def _numeric_arrays() -> st.SearchStrategy[tuple[str, list[object]]]:
    """(type, list) for the array element types decoded by the fixed-width fast path."""
    elements = {
        "int2[]": st.integers(-(2**15), 2**15 - 1),
        "int8[]": st.integers(-(2**63), 2**63 - 1),
        "float4[]": st.floats(width=32, allow_nan=False),
        "float8[]": st.floats(allow_nan=False),
    }
    return st.sampled_from(sorted(elements)).flatmap(
        lambda t: st.tuples(st.just(t), st.lists(st.one_of(st.none(), elements[t]), max_size=30))
    )


@_HYPO
@given(_numeric_arrays())
def test_hypothesis_numeric_arrays(loop_conn, case):
    sqltype, v = case
    assert _through(loop_conn, sqltype, v) == v
