"""Query arguments: what is accepted where asyncpg accepts it and nothing is lost (integral
floats for integers, str for numeric, any sized iterable for arrays, asyncpg's range
shorthand, user codec results), what is refused and how (a DataError naming the parameter,
before anything is sent), the argument count limit, and executemany's batches (bad rows,
stopping once the server has failed the batch, client failures inside a transaction)."""

from __future__ import annotations

import asyncio
import re
import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from fractions import Fraction

import pgoxide
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgoxide import exceptions
from pgoxide.types import Range


@pytest.fixture
async def schema(conn: pgoxide.Connection) -> AsyncIterator[str]:
    """A schema of this test's own (types and tables go there), dropped afterwards."""
    name = f"params_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        if not conn.is_closed():
            await conn.execute(f"DROP SCHEMA {name} CASCADE")


# -- how a refused argument is reported ------------------------------------------------------

# asyncpg's words for each situation (its test_codecs.py::test_invalid_input), which pgoxide's
# reasons start with; pgoxide then names the type that came, and the parameter's type.
_ASYNCPG_WORDS = [
    ("bytea", 1, "a bytes-like object is required, got int"),
    ("bytea", "aaa", "a bytes-like object is required, got str"),
    ("bool", 1, "a boolean is required, got int"),
    ("int2", "2", "an integer is required, got str"),
    ("int4", "aa", "an integer is required, got str"),
    ("int8", b"2", "an integer is required, got bytes"),
    ("int2", 2**256, "value out of int16 range"),
    ("int2", Decimal("2000000000000000000000000000000"), "value out of int16 range"),
    ("int2", 32768, "value out of int16 range"),
    ("int2", -32769, "value out of int16 range"),
    ("int4", 2**31, "value out of int32 range"),
    ("int4", -(2**31) - 1, "value out of int32 range"),
    ("int8", 2**63, "value out of int64 range"),
    ("int8", -(2**63) - 1, "value out of int64 range"),
    ("oid", 2**32, "value out of uint32 range"),
    ("oid", -1, "value out of uint32 range"),
    ("xid8", -1, "value out of uint64 range"),
    ("float4", 4.1 * 10**40, "value out of float32 range"),
    ("float4", -4.1 * 10**40, "value out of float32 range"),
    ("float8", "1.5", "must be real number, not str"),
    ("text", b"foo", "expected str, got bytes"),
    ("text", [1], "expected str, got list"),
    ("tid", b"foo", "list or tuple expected, got bytes"),
    ("tid", [], "invalid number of elements in tid tuple, expecting 2, got 0"),
    ("tid", (4,), "invalid number of elements in tid tuple, expecting 2, got 1"),
    ("tid", [1, 2, 3], "invalid number of elements in tid tuple, expecting 2, got 3"),
    ("tid", (-1, 0), "tuple id block value out of uint32 range"),
    ("tid", (2**32, 0), "tuple id block value out of uint32 range"),
    ("tid", (0, -1), "tuple id offset value out of uint16 range"),
    ("tid", (0, 65536), "tuple id offset value out of uint16 range"),
    ("tid", ("1", 0), "an integer is required, got str"),
    ("txid_snapshot", b"x", "list or tuple expected, got bytes"),
    ("txid_snapshot", (1, 2), "invalid number of elements in txid_snapshot tuple, expecting 3"),
    ("timestamp", "foo", "expected a datetime.date or datetime.datetime instance, got 'str'"),
    ("timestamptz", 5, "expected a datetime.date or datetime.datetime instance, got 'int'"),
]


@pytest.mark.parametrize(("sqltype", "value", "why"), _ASYNCPG_WORDS)
async def test_refused_argument_in_asyncpgs_words(conn, sqltype, value, why):
    """`invalid input for query argument $N: <value> (<why>; $N is of type <type>)`: asyncpg's
    shape and reasons, and the parameter's type, which asyncpg does not name."""
    with pytest.raises(exceptions.DataError) as info:
        await conn.fetchval(f"SELECT $2::int4, $1::{sqltype}", value, 1)
    msg = str(info.value)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    assert msg.startswith(f"invalid input for query argument $1: {shown} ({why}"), msg
    assert msg.endswith(f"; $1 is of type {sqltype})"), msg
    # What asyncpg's own test matches.
    assert re.search(r"invalid input for query argument \$1:.*" + re.escape(why), msg)
    assert await conn.fetchval("SELECT 1") == 1  # nothing was sent


async def test_refused_argument_in_executemany_names_the_element(conn):
    with pytest.raises(exceptions.DataError) as info:
        await conn.executemany("SELECT $1::int2, $2::tid", [(1, (0, 0)), (2, (0, 2**16))])
    assert str(info.value) == (
        "invalid input for query argument $2 in element #1 of executemany() sequence: "
        "(0, 65536) (tuple id offset value out of uint16 range; $2 is of type tid)"
    )


async def test_tids_and_snapshots_from_lists(conn):
    """asyncpg takes a list where a tuple is expected."""
    assert await conn.fetchval("SELECT $1::tid", [3, 4]) == (3, 4)
    assert await conn.fetchval("SELECT $1::tid", (0xFFFFFFFF, 0xFFFF)) == (0xFFFFFFFF, 0xFFFF)
    assert await conn.fetchval("SELECT $1::txid_snapshot", [5, 9, [6, 7]]) == (5, 9, (6, 7))


# -- integers ---------------------------------------------------------------------------------


class _Index:
    def __index__(self) -> int:
        return 5


class _IntOnly:
    """int() works, but nothing says it equals the result: refused (asyncpg truncates)."""

    def __int__(self) -> int:
        return 7


@pytest.mark.parametrize("sqltype", ["int2", "int4", "int8"])
async def test_integral_values_for_integers(conn, sqltype):
    for value, want in [
        (11.0, 11),
        (-0.0, 0),
        (Decimal("3"), 3),
        (Decimal("3.000"), 3),
        (Fraction(8, 2), 4),
        (True, 1),
        (_Index(), 5),
    ]:
        assert await conn.fetchval(f"SELECT $1::{sqltype}", value) == want, value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (11.5, "would lose something"),
        (Decimal("3.5"), "would lose something"),
        (Fraction(1, 3), "would lose something"),
        (_IntOnly(), "would lose something"),
        (float("nan"), "NaN is not an integer"),
        (float("inf"), "out of int32 range"),
        (1e30, "out of int32 range"),
        (2.0**31, "out of int32 range"),
        ("5", "an integer is required, got str"),
        (b"5", "an integer is required, got bytes"),
    ],
)
async def test_lossy_values_for_integers_are_refused(conn, value, why):
    with pytest.raises(exceptions.DataError, match=why) as info:
        await conn.fetchval("SELECT $2::int4, $1::int4", 1, value)
    assert "query argument $2: " in str(info.value)
    assert "; $2 is of type int4)" in str(info.value)
    assert await conn.fetchval("SELECT 1") == 1  # nothing was sent


@pytest.fixture(scope="module")
def loop_conn(dsn) -> Iterator[tuple[asyncio.AbstractEventLoop, pgoxide.Connection]]:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(pgoxide.connect(dsn))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


_HYPO = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_HYPO
@given(st.integers(-(2**53), 2**53))
def test_hypothesis_integral_floats_round_trip(loop_conn, n):
    loop, conn = loop_conn
    assert loop.run_until_complete(conn.fetchval("SELECT $1::int8", float(n))) == n


@_HYPO
@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15).filter(
        lambda f: not f.is_integer()
    )
)
def test_hypothesis_non_integral_floats_raise(loop_conn, f):
    loop, conn = loop_conn
    with pytest.raises(exceptions.DataError, match=r"argument \$1: .*; \$1 is of type int8\)$"):
        loop.run_until_complete(conn.fetchval("SELECT $1::int8", f))


# -- numeric ----------------------------------------------------------------------------------


async def test_numeric_from_str_bool_and_nan(conn):
    for value, want in [
        ("0.001", Decimal("0.001")),
        (" 12 ", Decimal("12")),
        ("1e5", Decimal("1E+5")),
        ("-1.50", Decimal("-1.50")),
        ("Infinity", Decimal("Infinity")),
        ("-inf", Decimal("-Infinity")),
        (True, Decimal(1)),
        (False, Decimal(0)),
    ]:
        assert await conn.fetchval("SELECT $1::numeric", value) == want, value
    for nan in ["NaN", "nan", "sNaN", Decimal("sNaN"), Decimal("-NaN"), float("nan")]:
        assert (await conn.fetchval("SELECT $1::numeric", nan)).is_nan(), nan
    assert await conn.fetchval("SELECT $1::numeric[]", ["0.5", 1, Decimal("2")]) == [
        Decimal("0.5"),
        Decimal(1),
        Decimal(2),
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("abc", "invalid numeric value: 'abc'"),
        ("", "invalid numeric value"),
        ("1.2.3", "invalid numeric value"),
        (b"1", "expected Decimal, int, float or str, got bytes"),
        (Fraction(1, 3), "expected Decimal, int, float or str, got Fraction"),
    ],
)
async def test_numeric_refusals_name_the_parameter(conn, value, why):
    with pytest.raises(exceptions.DataError, match=why) as info:
        await conn.fetchval("SELECT $1::numeric", value)
    assert "query argument $1: " in str(info.value)
    assert "; $1 is of type numeric)" in str(info.value)


# -- arrays -----------------------------------------------------------------------------------


class _Sized:
    def __init__(self, *items: object) -> None:
        self.items = items

    def __iter__(self) -> Iterator[object]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class _Container:
    def __contains__(self, item: object) -> bool:
        return False


async def test_arrays_from_sized_iterables(conn):
    assert await conn.fetchval("SELECT $1::int[]", _Sized(1, 2, 3)) == [1, 2, 3]
    assert await conn.fetchval("SELECT $1::int[]", (1, 2)) == [1, 2]
    assert await conn.fetchval("SELECT $1::int[]", {7}) == [7]
    assert await conn.fetchval("SELECT $1::int[]", range(3)) == [0, 1, 2]
    assert await conn.fetchval("SELECT $1::int[]", {4: "x"}.keys()) == [4]
    assert await conn.fetchval("SELECT $1::int[]", [_Sized(1, 2), _Sized(3, 4)]) == [
        [1, 2],
        [3, 4],
    ]
    assert await conn.fetchval("SELECT $1::text[]", _Sized("a", None)) == ["a", None]
    assert await conn.fetchval("SELECT $1::int[]", _Sized()) == []


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (1, "sized iterable container expected .* got int"),
        ("12", "sized iterable container expected .* got str"),
        (b"12", "sized iterable container expected .* got bytes"),
        ({1: 2}, "sized iterable container expected .* got dict"),
        (_Container(), "sized iterable container expected .* got _Container"),
        ((x for x in [1]), "sized iterable container expected .* got generator"),
        ([1, [1]], "non-homogeneous"),
        ([[1], 1, [2]], "non-homogeneous"),
        ([[1, 2], _Sized(3)], "non-homogeneous"),
        ([1, "t", 2], "invalid array element: an integer is required, got str"),
        ([[[[[[[1]]]]]]], "dimensions"),
    ],
)
async def test_array_refusals(conn, value, why):
    with pytest.raises(exceptions.DataError, match=why) as info:
        await conn.fetchval("SELECT $1::int[]", value)
    assert "query argument $1: " in str(info.value)
    assert "; $1 is of type int4[])" in str(info.value)


async def test_text_array_refuses_a_str(conn):
    with pytest.raises(exceptions.DataError, match="sized iterable container expected"):
        await conn.fetchval("SELECT $1::text[]", "ab")


# -- ranges -----------------------------------------------------------------------------------


async def test_range_shorthand_as_asyncpg(conn):
    cases = [
        ((1, 9), Range(1, 10)),
        ([1, 9], Range(1, 10)),
        ((), Range(empty=True)),
        ((None, 2), Range(None, 3)),
        ((2,), Range(2, None)),
        ((2, None), Range(2, None)),
        ((None, None), Range(None, None)),
        (Range(0, 9, lower_inc=False, upper_inc=True), Range(1, 10)),
    ]
    for value, want in cases:
        assert await conn.fetchval("SELECT $1::int4range", value) == want, value
    assert await conn.fetchval("SELECT $1::int4multirange", [()]) == []
    assert await conn.fetchval("SELECT $1::int4multirange", [(1, 9), (9, 11)]) == [Range(1, 12)]
    with pytest.raises(exceptions.DataError, match="list, tuple or Range object expected"):
        await conn.fetchval("SELECT $1::int4range", "aa")
    with pytest.raises(exceptions.DataError, match="expected 0, 1 or 2 elements"):
        await conn.fetchval("SELECT $1::int4range", (0, 2, 3))
    with pytest.raises(exceptions.DataError, match="expected a sequence"):
        await conn.fetchval("SELECT $1::int4multirange", 1)


# -- user codecs ------------------------------------------------------------------------------


async def test_binary_codec_may_return_any_bytes_like(conn):
    for kind in (bytes, bytearray, memoryview):
        await conn.set_type_codec(
            "int4",
            schema="pg_catalog",
            encoder=lambda v, kind=kind: kind(struct.pack("!i", v * 2)),
            decoder=lambda b: struct.unpack("!i", b)[0],
            format="binary",
        )
        assert await conn.fetchval("SELECT $1::int4", 21) == 42, kind
    await conn.set_type_codec(
        "int4", schema="pg_catalog", encoder=lambda v: 5, decoder=bytes, format="binary"
    )
    with pytest.raises(exceptions.DataError, match="expected bytes, bytearray or memoryview"):
        await conn.fetchval("SELECT $1::int4", 1)
    await conn.reset_type_codec("int4", schema="pg_catalog")
    assert await conn.fetchval("SELECT $1::int4", 3) == 3


async def test_tuple_codec_on_a_composite(conn, schema):
    await conn.execute(f"CREATE TYPE {schema}.mycomplex AS (r float8, i float8)")
    await conn.set_type_codec(
        "mycomplex",
        schema=schema,
        encoder=lambda x: (x.real, x.imag),
        decoder=lambda t: complex(t[0], t[1]),
        format="tuple",
    )
    assert await conn.fetchval(f"SELECT $1::{schema}.mycomplex", 1 + 2j) == 1 + 2j
    assert await conn.fetchval(f"SELECT $1::{schema}.mycomplex[]", [3j, None]) == [3j, None]
    with pytest.raises(exceptions.UnsupportedClientFeatureError, match="only tuple-format codecs"):
        await conn.set_type_codec("mycomplex", schema=schema, encoder=str, decoder=str)


async def test_codec_refused_on_domains_and_arrays(conn, schema):
    await conn.execute(f"CREATE DOMAIN {schema}.dom AS int")
    with pytest.raises(
        exceptions.UnsupportedClientFeatureError, match="custom codecs on domain types"
    ):
        await conn.set_type_codec("dom", schema=schema, encoder=str, decoder=int)
    with pytest.raises(exceptions.InterfaceError, match="cannot use custom codec on type"):
        await conn.set_type_codec("_int4", schema="pg_catalog", encoder=str, decoder=str)
    with pytest.raises(exceptions.InterfaceError, match="cannot use custom codec on type"):
        await conn.set_type_codec("int4range", schema="pg_catalog", encoder=str, decoder=str)


@pytest.mark.parametrize(
    "name",
    [
        "smallint",
        "int",
        "integer",
        "bigint",
        "decimal",
        "real",
        "double precision",
        "timestamp with timezone",
        "timestamp with time zone",
        "time without timezone",
        "char",
        "character",
        "character varying",
        "bit varying",
        "CHARACTER VARYING",
        "Double  Precision",
    ],
)
async def test_codec_on_sql_type_names(conn, name):
    await conn.set_type_codec(
        name, schema="pg_catalog", encoder=str, decoder=lambda s: f"<{s}>", format="text"
    )
    try:
        if name.lower() in ("int", "integer"):
            assert await conn.fetchval("SELECT $1::int4", 5) == "<5>"
    finally:
        await conn.reset_type_codec(name, schema="pg_catalog")
    with pytest.raises(ValueError, match=r"unknown type: pg_catalog\.no such type"):
        await conn.set_type_codec("no such type", schema="pg_catalog", encoder=str, decoder=str)


# -- anonymous records, argument count -------------------------------------------------------


async def test_anonymous_record_argument(conn):
    with pytest.raises(
        exceptions.UnsupportedClientFeatureError,
        match=r"query argument \$1: input of anonymous composite types is not supported",
    ) as info:
        await conn.fetchval("SELECT (1, 'foo') = $1", (1, "foo"))
    assert info.value.hint and "cast" in info.value.hint
    assert await conn.fetchval("SELECT 1") == 1


async def test_argument_count_limit(conn):
    n = 40000  # over asyncpg's 32767: PostgreSQL takes up to 65535
    query = "SELECT ARRAY[{}]".format(",".join(f"${i}::int" for i in range(1, n + 1)))
    assert await conn.fetchval(query, *range(n)) == list(range(n))
    with pytest.raises(exceptions.InterfaceError, match="cannot exceed 65535"):
        await conn.fetchval("SELECT 1", *range(65536))
    assert await conn.fetchval("SELECT 2") == 2


# -- executemany ------------------------------------------------------------------------------


@pytest.fixture
async def exmany(conn, schema) -> str:
    table = f"{schema}.exmany"
    await conn.execute(f"CREATE TABLE {table} (a text, b int PRIMARY KEY)")
    return table


async def test_executemany_bad_rows(conn, exmany):
    with pytest.raises(
        exceptions.DataError,
        match=r"invalid input in executemany\(\) argument sequence element #1: "
        r"expected a sequence, got dict",
    ):
        await conn.executemany(f"INSERT INTO {exmany} (b) VALUES ($1)", [(0,), {1: 0}])
    with pytest.raises(
        exceptions.DataError,
        match=r"invalid input for query argument \$1 in element #2 of executemany\(\) "
        r"sequence: 'bad' \(an integer is required, got str; \$1 is of type int4\)",
    ):
        await conn.executemany(f"INSERT INTO {exmany} (b) VALUES ($1)", [(0,), (1,), ("bad",)])
    assert await conn.fetch(f"SELECT b FROM {exmany}") == []
    await conn.executemany(f"INSERT INTO {exmany} (b) VALUES ($1)", [(1.0,), (Decimal(2),)])
    assert [r[0] for r in await conn.fetch(f"SELECT b FROM {exmany} ORDER BY b")] == [1, 2]


async def test_executemany_stops_sending_once_the_server_failed(conn, exmany):
    pulled = 0

    def rows() -> Iterator[tuple[str, int]]:
        nonlocal pulled
        while pulled < 400:
            pulled += 1
            yield ("a", 0) if pulled < 3 else ("a" * 32768, pulled)

    with pytest.raises(exceptions.UniqueViolationError):
        await conn.executemany(f"INSERT INTO {exmany} VALUES ($1, $2)", rows())
    assert pulled < 400, "should stop early"
    assert await conn.fetch(f"SELECT b FROM {exmany}") == []
    await conn.executemany(f"INSERT INTO {exmany} VALUES ($1, $2)", [("x", 1)])
    assert await conn.fetchval(f"SELECT count(*) FROM {exmany}") == 1


def _failing_rows() -> Iterator[tuple[str, float]]:
    # 11.0, 10.0, ... then 1 / 0: a client-side failure after two chunks went out.
    return (("a" * 32768, y + y / y) for y in range(10, -1, -1))


async def test_executemany_client_failure_outside_a_transaction(conn, exmany):
    with pytest.raises(ZeroDivisionError):
        await conn.executemany(f"INSERT INTO {exmany} VALUES ($1, $2)", _failing_rows())
    assert await conn.fetch(f"SELECT b FROM {exmany}") == []  # the batch rolled back
    assert await conn.fetchval("SELECT 1") == 1


async def test_executemany_client_failure_in_a_transaction(conn, exmany):
    tx = conn.transaction()
    await tx.start()
    with pytest.raises(ZeroDivisionError):
        await asyncio.wait_for(
            conn.executemany(f"INSERT INTO {exmany} VALUES ($1, $2)", _failing_rows()), 30
        )
    # As asyncpg: the chunks already sent stay applied and the block stays usable.
    got = [r[0] for r in await conn.fetch(f"SELECT b FROM {exmany}")]
    assert got == list(range(11, 11 - len(got), -1))
    assert 0 < len(got) < 11
    await tx.rollback()
    assert await conn.fetch(f"SELECT b FROM {exmany}") == []
