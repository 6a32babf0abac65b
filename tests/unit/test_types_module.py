"""pgoxide.types: the value types, checked on their own and against asyncpg's where it has one.

The interval texts were taken from PostgreSQL 15's ``interval_out`` (IntervalStyle postgres).
"""

from __future__ import annotations

import copy
import datetime
import pickle
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pgoxide import types
from pgoxide.types import (
    Array,
    Attribute,
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
    Type,
)

pytestmark = pytest.mark.unit

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def asyncpg_types() -> Any:
    """asyncpg.types, or skip the test."""
    return pytest.importorskip("asyncpg.types")


def assert_hash_contract(a: object, b: object) -> None:
    """Equality is symmetric and equal objects hash equal."""
    assert (a == b) == (b == a)
    assert (a != b) is not (a == b)
    if a == b:
        assert hash(a) == hash(b)


def roundtrips(value: object) -> None:
    assert pickle.loads(pickle.dumps(value)) == value
    assert type(pickle.loads(pickle.dumps(value))) is type(value)
    assert copy.deepcopy(value) == value


def test_all_is_explicit_and_complete() -> None:
    assert set(types.__all__) == {
        "Array",
        "Attribute",
        "BitString",
        "Box",
        "Circle",
        "Interval",
        "Line",
        "LineSegment",
        "Lsn",
        "Path",
        "Point",
        "Polygon",
        "Range",
        "ServerVersion",
        "Type",
    }
    for name in types.__all__:
        assert getattr(types, name).__doc__


def test_module_does_not_import_the_extension() -> None:
    with open(types.__file__, encoding="utf-8") as f:
        source = f.read()
    assert "_pgoxide" not in source


# --- Type, Attribute ---------------------------------------------------------------------------


def test_type_and_attribute() -> None:
    t = Type(23, "int4", "scalar", "pg_catalog")
    assert (t.oid, t.name, t.kind, t.schema) == (23, "int4", "scalar", "pg_catalog")
    a = Attribute("id", t)
    assert a.type is t
    assert a == ("id", (23, "int4", "scalar", "pg_catalog"))
    assert Type._fields == ("oid", "name", "kind", "schema")
    assert Attribute._fields == ("name", "type")


def test_type_and_attribute_match_asyncpg() -> None:
    apg = asyncpg_types()
    assert Type._fields == apg.Type._fields
    assert Attribute._fields == apg.Attribute._fields
    t = Type(23, "int4", "scalar", "pg_catalog")
    assert t == apg.Type(23, "int4", "scalar", "pg_catalog")
    assert hash(t) == hash(apg.Type(23, "int4", "scalar", "pg_catalog"))


# --- Range -------------------------------------------------------------------------------------


def test_range_defaults_and_properties() -> None:
    r = Range(1, 5)
    assert (r.lower, r.upper, r.lower_inc, r.upper_inc) == (1, 5, True, False)
    assert not r.lower_inf
    assert not r.upper_inf
    assert not r.isempty
    assert r
    assert repr(r) == str(r) == "<Range [1, 5)>"


def test_range_keeps_bounds_as_given() -> None:
    # No canonicalisation of discrete ranges: that is the server's job.
    r = Range(1, 5, lower_inc=False, upper_inc=True)
    assert (r.lower, r.upper, r.lower_inc, r.upper_inc) == (1, 5, False, True)
    assert repr(r) == "<Range (1, 5]>"
    assert Range(1, 5, upper_inc=True) != Range(1, 6)


def test_range_infinite_bounds_are_exclusive() -> None:
    r = Range(None, 5, lower_inc=True, upper_inc=True)
    assert r.lower_inf
    assert not r.lower_inc
    assert r.upper_inc
    assert repr(r) == "<Range (, 5]>"
    unbounded = Range()
    assert unbounded.lower_inf
    assert unbounded.upper_inf
    assert repr(unbounded) == "<Range (, )>"


def test_empty_range() -> None:
    r = Range(1, 5, lower_inc=True, upper_inc=True, empty=True)
    assert r.isempty
    assert not r
    assert (r.lower, r.upper, r.lower_inc, r.upper_inc) == (None, None, False, False)
    assert not r.lower_inf
    assert not r.upper_inf
    assert r == Range(empty=True)
    assert hash(r) == hash(Range(empty=True))
    assert repr(r) == "<Range empty>"


def test_range_equality() -> None:
    assert Range(1, 5) == Range(1, 5)
    assert hash(Range(1, 5)) == hash(Range(1, 5))
    assert Range(1, 5) != Range(1, 5, upper_inc=True)
    assert Range(1, 5) != Range(empty=True)
    assert Range(1, 5) != (1, 5)
    assert Range(datetime.date(2024, 1, 1)) == Range(datetime.date(2024, 1, 1), None)


@pytest.mark.parametrize(
    ("inner", "outer", "expected"),
    [
        (Range(2, 3), Range(1, 5), True),
        (Range(1, 5), Range(1, 5), True),
        (Range(1, 5), Range(1, 5, lower_inc=False), False),
        (Range(1, 5, lower_inc=False), Range(1, 5), True),
        (Range(1, 5, upper_inc=True), Range(1, 5), False),
        (Range(1, 5), Range(1, 5, upper_inc=True), True),
        (Range(0, 3), Range(1, 5), False),
        (Range(2, 6), Range(1, 5), False),
        (Range(None, 3), Range(1, 5), False),
        (Range(2, None), Range(1, 5), False),
        (Range(2, 3), Range(None, None), True),
        (Range(empty=True), Range(1, 5), True),
        (Range(empty=True), Range(empty=True), True),
        (Range(1, 5), Range(empty=True), False),
    ],
)
def test_range_issubset(inner: Range[int], outer: Range[int], expected: bool) -> None:
    assert inner.issubset(outer) is expected
    assert outer.issuperset(inner) is expected


def test_range_pickles() -> None:
    roundtrips(Range(1, 5, upper_inc=True))
    roundtrips(Range(empty=True))


RANGE_SAMPLES = [
    ((1, 5), {}),
    ((1, 5), {"lower_inc": False, "upper_inc": True}),
    ((None, 5), {"lower_inc": True, "upper_inc": True}),
    ((1, None), {"upper_inc": True}),
    ((None, None), {}),
    ((1, 5), {"empty": True}),
    ((3, 3), {"upper_inc": True}),
    ((datetime.date(2024, 1, 1), datetime.date(2024, 2, 1)), {}),
]


def range_view(r: Any) -> tuple[Any, ...]:
    return (
        r.lower,
        r.upper,
        r.lower_inc,
        r.upper_inc,
        r.lower_inf,
        r.upper_inf,
        r.isempty,
        bool(r),
        repr(r),
        str(r),
    )


def test_range_matches_asyncpg() -> None:
    apg = asyncpg_types()
    ours = [Range(*args, **kwargs) for args, kwargs in RANGE_SAMPLES]
    theirs = [apg.Range(*args, **kwargs) for args, kwargs in RANGE_SAMPLES]
    for a, b in zip(ours, theirs):
        assert range_view(a) == range_view(b)
    for i, (a1, b1) in enumerate(zip(ours, theirs)):
        for j, (a2, b2) in enumerate(zip(ours, theirs)):
            assert (a1 == a2) == (b1 == b2), (i, j)
            if i < len(RANGE_SAMPLES) - 1 and j < len(RANGE_SAMPLES) - 1:  # the ints only
                assert a1.issubset(a2) == b1.issubset(b2), (i, j)
                assert a1.issuperset(a2) == b1.issuperset(b2), (i, j)


bounds = st.one_of(st.none(), st.integers(-5, 5))
ranges = st.builds(
    Range,
    bounds,
    bounds,
    lower_inc=st.booleans(),
    upper_inc=st.booleans(),
    empty=st.booleans(),
)


@given(ranges, ranges)
def test_range_equality_is_reflexive_and_symmetric(a: Range[int], b: Range[int]) -> None:
    assert a == a
    assert a == copy.copy(a)
    assert hash(a) == hash(copy.copy(a))
    assert_hash_contract(a, b)


# --- BitString ---------------------------------------------------------------------------------


def test_bitstring_from_text() -> None:
    b = BitString("10101")
    assert len(b) == 5
    assert b.bytes == b"\xa8"
    assert b.as_string() == "1010 1"
    assert repr(b) == str(b) == "<BitString 1010 1>"
    assert list(b) == [1, 0, 1, 0, 1]
    assert b[0] == 1
    assert b[1] == 0
    assert b[-1] == 1
    assert b[-5] == 1
    assert BitString("1010 1") == b
    assert BitString("1111 0000 1") == BitString.frombytes(b"\xf0\x80", 9)


def test_empty_bitstring() -> None:
    for b in (BitString(), BitString(""), BitString(" "), BitString(None), BitString.frombytes()):
        assert len(b) == 0
        assert b.bytes == b""
        assert not b
        assert b.to_int() == 0
        assert list(b) == []
        assert repr(b) == "<BitString >"
        assert b == BitString()


@pytest.mark.parametrize("text", ["102", "10x", "1\t0", "1,0"])
def test_bitstring_rejects_other_characters(text: str) -> None:
    with pytest.raises(ValueError, match="invalid bit value"):
        BitString(text)


def test_bitstring_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        BitString(b"0101")  # type: ignore[arg-type]


def test_bitstring_index_errors() -> None:
    b = BitString("101")
    for index in (3, 100, -4):
        with pytest.raises(IndexError):
            b[index]
    assert b[1:] == BitString("01")
    assert b[::-1] == BitString("101")


def test_bitstring_frombytes() -> None:
    assert BitString.frombytes(b"\xa8", 5) == BitString("10101")
    assert BitString.frombytes(b"\xa8") == BitString("10101000")
    assert BitString.frombytes(bytearray(b"\xa8"), 5) == BitString("10101")
    assert BitString.frombytes(None, 10) == BitString("0000000000")
    assert BitString.frombytes(None, 10).bytes == b"\x00\x00"
    assert BitString.frombytes(b"", 0) == BitString()
    # Stray bits past the length are cleared, as the server does, so equality holds.
    assert BitString.frombytes(b"\xaf", 5) == BitString("10101")
    assert BitString.frombytes(b"\xaf", 5).bytes == b"\xa8"


@pytest.mark.parametrize(
    ("data", "bitlength"),
    [(b"", 1), (b"\x00", 0), (b"\x00", 9), (b"\x00\x00", 8), (b"\x00\x00", 17), (b"\x00", -1)],
)
def test_bitstring_frombytes_rejects_bad_lengths(data: bytes, bitlength: int) -> None:
    with pytest.raises(ValueError, match="invalid bit length"):
        BitString.frombytes(data, bitlength)


def test_bitstring_ints() -> None:
    assert BitString("1011").to_int() == 11
    assert BitString("1011").to_int("little") == 13
    assert BitString("1011").to_int(signed=True) == -5
    assert BitString.from_int(11, 4) == BitString("1011")
    assert BitString.from_int(-5, 4, signed=True) == BitString("1011")
    assert BitString.from_int(-8, 4, signed=True) == BitString("1000")
    assert BitString.from_int(13, 4, "little") == BitString("1011")
    assert BitString.from_int(0, 0) == BitString()
    assert BitString.from_int(5, 10) == BitString("0000000101")


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((16, 4), {}, OverflowError),
        ((-1, 4), {}, OverflowError),
        ((-9, 4), {"signed": True}, OverflowError),
        ((-1, 0), {"signed": True}, OverflowError),
        ((1, -1), {}, ValueError),
        ((1, 4, "middle"), {}, ValueError),
    ],
)
def test_bitstring_from_int_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        BitString.from_int(*args, **kwargs)


def test_bitstring_to_int_rejects_bad_bitorder() -> None:
    with pytest.raises(ValueError, match="bitorder"):
        BitString("1").to_int("middle")  # type: ignore[arg-type]


def test_bitstring_equality_and_hash() -> None:
    assert BitString("1010") == BitString("1010")
    assert hash(BitString("1010")) == hash(BitString.frombytes(b"\xa0", 4))
    assert BitString("1010") != BitString("10100")  # same bytes, different length
    assert BitString("1010") != "1010"
    roundtrips(BitString("10101"))


BIT_SAMPLES = ["", "0", "1", "10101", "1111 0000", "101010101", "0" * 17, "1" * 64 + "01"]


def test_bitstring_matches_asyncpg() -> None:
    apg = asyncpg_types()
    for text in BIT_SAMPLES:
        ours, theirs = BitString(text), apg.BitString(text)
        assert (ours.bytes, len(ours), ours.as_string(), repr(ours), str(ours)) == (
            theirs.bytes,
            len(theirs),
            theirs.as_string(),
            repr(theirs),
            str(theirs),
        )
        assert list(ours) == list(theirs)
        assert [ours[i] for i in range(len(ours))] == [theirs[i] for i in range(len(theirs))]
        for bitorder in ("big", "little"):
            for signed in (False, True):
                assert ours.to_int(bitorder, signed=signed) == theirs.to_int(
                    bitorder, signed=signed
                )
        copied = BitString.frombytes(theirs.bytes, len(theirs))
        assert copied == ours
    for x, length, bitorder, signed in [
        (11, 4, "big", False),
        (11, 4, "little", False),
        (-5, 4, "big", True),
        (-5, 9, "little", True),
        (0, 0, "big", False),
        (300, 12, "big", False),
    ]:
        ours = BitString.from_int(x, length, bitorder, signed=signed)
        theirs = apg.BitString.from_int(x, length, bitorder, signed=signed)
        assert (ours.bytes, len(ours)) == (theirs.bytes, len(theirs))
    for data, bitlength in [(b"\xa8", 5), (b"\xa8", None), (b"\xf0\x80", 9), (b"", 0)]:
        ours = BitString.frombytes(data, bitlength)
        theirs = apg.BitString.frombytes(data, bitlength)
        assert (ours.bytes, len(ours)) == (theirs.bytes, len(theirs))


@given(st.integers(0, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 2**n - 1))))
def test_bitstring_int_roundtrip(case: tuple[int, int]) -> None:
    length, x = case
    for bitorder in ("big", "little"):
        b = BitString.from_int(x, length, bitorder)  # type: ignore[arg-type]
        assert len(b) == length
        assert b.to_int(bitorder) == x  # type: ignore[arg-type]


@given(
    st.integers(1, 200).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(-(2 ** (n - 1)), 2 ** (n - 1) - 1))
    )
)
def test_bitstring_signed_int_roundtrip(case: tuple[int, int]) -> None:
    length, x = case
    assert BitString.from_int(x, length, signed=True).to_int(signed=True) == x


@given(st.text(alphabet="01", max_size=100))
def test_bitstring_text_roundtrip(bits: str) -> None:
    b = BitString(bits)
    assert len(b) == len(bits)
    assert b.as_string().replace(" ", "") == bits
    assert BitString(b.as_string()) == b
    assert "".join(map(str, b)) == bits
    assert BitString.frombytes(b.bytes, len(b)) == b
    assert hash(BitString.frombytes(b.bytes, len(b))) == hash(b)
    if bits:
        assert b.to_int() == int(bits, 2)


# --- geometry ----------------------------------------------------------------------------------


def test_point() -> None:
    p = Point(1, "2.5")
    assert (p.x, p.y) == (1.0, 2.5)
    assert isinstance(p.x, float)
    assert p == (1.0, 2.5)
    assert isinstance(p, tuple)
    assert repr(p) == "pgoxide.types.Point((1.0, 2.5))"
    with pytest.raises(ValueError, match="could not convert"):
        Point("x", 1)
    with pytest.raises(TypeError):
        Point(1)  # type: ignore[call-arg]


def test_box_keeps_corners_as_given() -> None:
    b = Box((0, 0), (1, 1))  # the server reorders to high (1,1), low (0,0)
    assert b.high == Point(0, 0)
    assert b.low == Point(1, 1)
    assert isinstance(b.high, Point)
    point = "pgoxide.types.Point"
    assert repr(b) == f"pgoxide.types.Box(({point}((0.0, 0.0)), {point}((1.0, 1.0))))"


def test_line_segment_and_circle() -> None:
    line = Line(1, 2, 3)
    assert (line.A, line.B, line.C) == (1.0, 2.0, 3.0)
    assert line == (1, 2, 3)
    assert repr(line) == "pgoxide.types.Line((1.0, 2.0, 3.0))"
    seg = LineSegment((0, 0), [1, 2])
    assert (seg.p1, seg.p2) == (Point(0, 0), Point(1, 2))
    assert isinstance(seg.p2, Point)
    circle = Circle((1, 2), 3)
    assert circle.center == Point(1, 2)
    assert isinstance(circle.center, Point)
    assert circle.radius == 3.0
    assert circle == ((1.0, 2.0), 3.0)


def test_path_and_polygon() -> None:
    path = Path((0, 0), (1, 1), (2, 0))
    assert not path.is_closed
    assert path.points == (Point(0, 0), Point(1, 1), Point(2, 0))
    assert len(path) == 3
    assert list(path) == list(path.points)
    assert path[1] == Point(1, 1)
    assert path[1:] == (Point(1, 1), Point(2, 0))
    assert (1, 1) in path
    assert (5, 5) not in path
    assert path != Path((0, 0), (1, 1), (2, 0), is_closed=True)
    assert repr(path) == "pgoxide.types.Path((0.0, 0.0), (1.0, 1.0), (2.0, 0.0), is_closed=False)"
    polygon = Polygon((0, 0), (1, 1), (2, 0))
    assert polygon.is_closed
    assert repr(polygon) == "pgoxide.types.Polygon((0.0, 0.0), (1.0, 1.0), (2.0, 0.0))"
    # As in asyncpg, a polygon equals the closed path through the same points.
    closed = Path((0, 0), (1, 1), (2, 0), is_closed=True)
    assert polygon == closed
    assert hash(polygon) == hash(closed)
    with pytest.raises(AttributeError):
        path.points = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    "value",
    [
        Point(1, 2),
        Box((1, 1), (0, 0)),
        Line(1, 2, 3),
        LineSegment((0, 0), (1, 1)),
        Circle((0, 0), 1),
        Path((0, 0), (1, 1), is_closed=True),
        Polygon((0, 0), (1, 1), (1, 0)),
    ],
)
def test_geometry_pickles_and_hashes(value: object) -> None:
    roundtrips(value)
    assert hash(value) == hash(copy.deepcopy(value))


def test_geometry_matches_asyncpg() -> None:
    apg = asyncpg_types()
    pairs = [
        (Point(1, 2), apg.Point(1, 2)),
        (Box((1, 1), (0, 0)), apg.Box((1, 1), (0, 0))),
        (LineSegment((0, 0), (1, 2)), apg.LineSegment((0, 0), (1, 2))),
        (Line(1.0, 2.0, 3.0), apg.Line(1.0, 2.0, 3.0)),
        (Circle(Point(1, 2), 3.0), apg.Circle(apg.Point(1, 2), 3.0)),
    ]
    for ours, theirs in pairs:
        assert ours == theirs  # both are tuples
        assert hash(ours) == hash(theirs)
        if type(theirs).__repr__ is not tuple.__repr__:
            assert repr(ours).replace("pgoxide.types", "asyncpg.pgproto.types") == repr(theirs)
    for cls, apg_cls, kwargs in [(Path, apg.Path, {"is_closed": True}), (Polygon, apg.Polygon, {})]:
        ours, theirs = cls((0, 0), (1, 2), **kwargs), apg_cls((0, 0), (1, 2), **kwargs)
        assert ours.points == theirs.points
        assert ours.is_closed == theirs.is_closed
        assert len(ours) == len(theirs)
        assert list(ours) == list(theirs)
        assert ((1, 2) in ours) == ((1, 2) in theirs)


# --- Interval ----------------------------------------------------------------------------------


def test_interval_fields() -> None:
    iv = Interval(14, 3, 14706000007)
    assert iv.fields == (14, 3, 14706000007)
    assert iv.months == 14
    # days, seconds and microseconds are the timedelta's: 12 months are 365 days, 2 are 60.
    assert (iv.days, iv.seconds, iv.microseconds) == (428, 14706, 7)
    assert Interval() == Interval(0, 0, 0)
    assert Interval(days=2).fields == (0, 2, 0)
    assert repr(iv) == "Interval(months=14, days=3, microseconds=14706000007)"
    assert bool(iv)
    assert not Interval()
    assert not Interval(1, -30, 0)  # a zero-length timedelta
    with pytest.raises(AttributeError):
        iv.months = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        iv.extra = 2  # type: ignore[attr-defined]
    roundtrips(iv)
    assert pickle.loads(pickle.dumps(iv)).fields == iv.fields
    assert copy.copy(iv).fields == copy.deepcopy(iv).fields == iv.fields


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"months": INT32[1] + 1}, ValueError, "months must be between"),
        ({"months": INT32[0] - 1}, ValueError, "months must be between"),
        ({"days": INT32[1] + 1}, ValueError, "days must be between"),
        ({"microseconds": INT64[1] + 1}, ValueError, "microseconds must be between"),
        ({"microseconds": INT64[0] - 1}, ValueError, "microseconds must be between"),
        ({"days": 1.5}, TypeError, "days must be an integer, not float"),
        ({"months": "1"}, TypeError, "months must be an integer, not str"),
        ({"months": INT32[1]}, OverflowError, "longer than a datetime.timedelta"),
        ({"days": INT32[0]}, OverflowError, "longer than a datetime.timedelta"),
        ({"days": -(10**9), "microseconds": INT64[0]}, OverflowError, "longer than a"),
    ],
)
def test_interval_validation(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Interval(**kwargs)


def test_interval_length_is_asyncpgs_reading() -> None:
    # The values asyncpg 0.32 returns (a year of months is 365 days, a month 30, both split
    # towards zero).
    for fields, length in [
        ((1, 0, 0), datetime.timedelta(days=30)),
        ((-1, 0, 0), datetime.timedelta(days=-30)),
        ((11, 0, 0), datetime.timedelta(days=330)),
        ((12, 0, 0), datetime.timedelta(days=365)),
        ((13, 0, 0), datetime.timedelta(days=395)),
        ((-13, 0, 0), datetime.timedelta(days=-395)),
        ((-1, 2, -10_800_000_000), datetime.timedelta(days=-29, seconds=75600)),
        ((1, -40, 0), datetime.timedelta(days=-10)),
        ((-35, -10, -7_200_800_000), datetime.timedelta(days=-1070, hours=-2, milliseconds=-800)),
    ]:
        iv = Interval(*fields)
        assert iv == length, fields
        assert hash(iv) == hash(length)
        assert iv.to_timedelta() == length and type(iv.to_timedelta()) is datetime.timedelta
        assert iv.total_seconds() == length.total_seconds()


def test_interval_is_a_timedelta() -> None:
    td = datetime.timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=7)
    iv = Interval.from_timedelta(td)
    assert isinstance(iv, datetime.timedelta)
    assert iv.fields == (0, 3, 14706000007)
    assert iv == td and td == iv
    assert hash(iv) == hash(td)
    assert {td: 1}[iv] == 1
    assert Interval.from_timedelta(datetime.timedelta(hours=-1)).fields == (0, -1, 82_800_000_000)
    assert Interval.from_timedelta(Interval(1, 2, 3)).fields == (1, 2, 3)
    # Equality is the timedelta's: these are different intervals of the same length.
    assert Interval(0, 0, 86_400_000_000) == Interval(0, 1, 0) == datetime.timedelta(days=1)
    assert Interval(1, 0, 0) == Interval(0, 30, 0) == datetime.timedelta(days=30)
    assert Interval(12, 0, 0) == datetime.timedelta(days=365)
    assert Interval(1, 0, 0) < Interval(0, 31, 0)
    # Arithmetic gives plain timedeltas.
    for result in (iv + iv, iv - td, -iv, abs(iv), iv * 2, iv / 2, +iv):
        assert type(result) is datetime.timedelta
    assert datetime.date(2024, 1, 1) + Interval(1, 0, 0) == datetime.date(2024, 1, 31)


def test_interval_infinities() -> None:
    plus = Interval(INT32[1], INT32[1], INT64[1])
    minus = Interval(INT32[0], INT32[0], INT64[0])
    assert plus == datetime.timedelta.max and minus == datetime.timedelta.min
    assert plus.fields == (INT32[1], INT32[1], INT64[1])
    roundtrips(plus)
    assert str(plus) == "infinity" and str(minus) == "-infinity"


def test_interval_rejects_other_types() -> None:
    assert Interval() != 0
    assert Interval() != (0, 0, 0)
    with pytest.raises(TypeError):
        Interval.from_timedelta(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ((0, 0, 0), "00:00:00"),
        ((14, 3, 14706000007), "1 year 2 mons 3 days 04:05:06.000007"),
        ((-1, 0, 0), "-1 mons"),
        ((-13, 0, 0), "-1 years -1 mons"),
        ((1, 0, 0), "1 mon"),
        ((12, 0, 0), "1 year"),
        ((24, 0, 0), "2 years"),
        ((0, 1, 0), "1 day"),
        ((0, -1, 0), "-1 days"),
        ((0, 2, 0), "2 days"),
        ((0, 0, -1), "-00:00:00.000001"),
        ((0, 0, 1), "00:00:00.000001"),
        ((-1, 3, 0), "-1 mons +3 days"),
        ((-1, -3, 3600000000), "-1 mons -3 days +01:00:00"),
        ((0, -1, 3600000000), "-1 days +01:00:00"),
        ((0, 1, -3600000000), "1 day -01:00:00"),
        ((1, -1, -500000), "1 mon -1 days -00:00:00.5"),
        ((0, 0, 500000), "00:00:00.5"),
        ((0, 0, 3456000000000), "960:00:00"),
        ((0, 0, 9223372036854775807), "2562047788:00:54.775807"),
        ((0, 0, -9223372036854775808), "-2562047788:00:54.775808"),
        ((32_000_000, 0, 0), "2666666 years 8 mons"),
        ((-32_000_000, 0, 0), "-2666666 years -8 mons"),
        ((-25, 2, -1), "-2 years -1 mons +2 days -00:00:00.000001"),
        ((-14, -3, -14706000007), "-1 years -2 mons -3 days -04:05:06.000007"),
        ((0, 0, 120000000), "00:02:00"),
        ((0, 0, 10), "00:00:00.00001"),
        ((5, 0, 100), "5 mons 00:00:00.0001"),
        ((-12, 1, 0), "-1 years +1 day"),
        ((-13, 1, 0), "-1 years -1 mons +1 day"),
        # PostgreSQL 17's infinite intervals.
        ((2147483647, 2147483647, 9223372036854775807), "infinity"),
        ((-2147483648, -2147483648, -9223372036854775808), "-infinity"),
    ],
)
def test_interval_str_as_postgresql_prints_it(fields: tuple[int, int, int], text: str) -> None:
    assert str(Interval(*fields)) == text


timedeltas = st.timedeltas(min_value=datetime.timedelta.min, max_value=datetime.timedelta.max)


@given(timedeltas)
def test_interval_timedelta_roundtrip(td: datetime.timedelta) -> None:
    iv = Interval.from_timedelta(td)
    assert iv.months == 0
    assert iv.to_timedelta() == td
    assert iv == td
    assert td == iv
    assert hash(iv) == hash(td)


@given(st.integers(-(10**8), 10**8), st.integers(-(10**17), 10**17))
def test_interval_without_months_equals_its_timedelta(days: int, microseconds: int) -> None:
    iv = Interval(0, days, microseconds)
    td = iv.to_timedelta()
    assert iv == td
    assert hash(iv) == hash(td)
    assert Interval.from_timedelta(td).to_timedelta() == td


interval_fields = st.tuples(
    st.integers(-30, 30) | st.integers(-(10**7), 10**7),
    st.integers(-30, 30) | st.integers(-(10**8), 10**8),
    st.integers(-(10**12), 10**12) | st.integers(*INT64),
)


def _length(fields: tuple[int, int, int]) -> int:
    """asyncpg's reading in microseconds."""
    months, days, micros = fields
    years, rest = divmod(abs(months), 12)
    sign = 1 if months >= 0 else -1
    return (days + sign * (years * 365 + rest * 30)) * 86_400_000_000 + micros


@given(interval_fields, interval_fields)
def test_interval_hash_contract(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    x, y = Interval(*a), Interval(*b)
    assert x == Interval(*a)
    assert hash(x) == hash(Interval(*a))
    assert_hash_contract(x, y)
    # Equal exactly when the lengths are (the fields may differ).
    assert (x == y) == (_length(a) == _length(b))
    assert x == datetime.timedelta(microseconds=_length(a))
    assert pickle.loads(pickle.dumps(x)).fields == a
    text = str(x)
    assert text
    assert re.fullmatch(r"[-+0-9a-z :.]+", text)


# --- Lsn ---------------------------------------------------------------------------------------


def test_lsn() -> None:
    lsn = Lsn("16/B374D848")
    assert int(lsn) == 0x16_B374D848
    assert isinstance(lsn, int)
    assert str(lsn) == f"{lsn}" == "16/B374D848"
    assert repr(lsn) == "Lsn('16/B374D848')"
    assert Lsn("16/b374d848") == lsn
    assert Lsn("00000016/0B374D84") == Lsn(0x16_0B374D84)  # leading zeros are accepted
    assert Lsn(0x16_B374D848) == lsn
    assert Lsn(lsn) == lsn
    assert Lsn() == 0
    assert str(Lsn()) == "0/0"
    assert str(Lsn(2**64 - 1)) == "FFFFFFFF/FFFFFFFF"
    assert str(Lsn("1/0000000A")) == "1/A"
    assert hash(lsn) == hash(0x16_B374D848)
    assert sorted([Lsn("1/0"), Lsn("0/FFFFFFFF"), Lsn("0/10")]) == [
        Lsn("0/10"),
        Lsn("0/FFFFFFFF"),
        Lsn("1/0"),
    ]
    assert Lsn("0/10") < Lsn("1/0")
    assert lsn + 8 == 0x16_B374D850
    roundtrips(lsn)


@pytest.mark.parametrize(
    "text",
    ["", "0", "/0", "0/", " 0/0", "0/0 ", "0/0\n", "123456789/0", "0/123456789", "g/0", "0x1/0"],
)
def test_lsn_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid input syntax for type pg_lsn"):
        Lsn(text)


def test_lsn_rejects_bad_numbers() -> None:
    for value in (-1, 2**64):
        with pytest.raises(ValueError, match="between 0 and 2\\*\\*64 - 1"):
            Lsn(value)
    with pytest.raises(TypeError, match="str or an int"):
        Lsn(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Lsn(b"0/0")  # type: ignore[arg-type]


@given(st.integers(0, 2**64 - 1))
def test_lsn_int_text_roundtrip(n: int) -> None:
    lsn = Lsn(n)
    text = str(lsn)
    assert re.fullmatch(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}", text)
    assert Lsn(text) == n
    assert Lsn(text.lower()) == n
    assert int(Lsn(text)) == n
    assert repr(lsn) == f"Lsn('{text}')"
    assert hash(lsn) == hash(n)


# --- Array -------------------------------------------------------------------------------------


def test_array() -> None:
    a = Array([1, 2, 3], lower_bounds=(0,))
    assert isinstance(a, list)
    assert a.lower_bounds == (0,)
    assert repr(a) == "Array([1, 2, 3], lower_bounds=(0,))"
    assert a == [1, 2, 3]
    assert [1, 2, 3] == a  # noqa: SIM300  (list.__eq__ first)
    assert not a != [1, 2, 3]  # noqa: SIM202
    assert a != [1, 2]
    assert a[0] == 1
    assert Array([[1, 2], [3, 4]], [-1, 5]).lower_bounds == (-1, 5)
    assert Array((x for x in "ab"), (0,)) == ["a", "b"]
    assert Array([], ()) == []
    with pytest.raises(AttributeError):
        a.lower_bounds = (1,)  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(a)
    roundtrips(a)


def test_arrays_compare_bounds_between_themselves() -> None:
    a = Array([1, 2, 3], lower_bounds=(0,))
    assert a == Array([1, 2, 3], lower_bounds=(0,))
    assert not a != Array([1, 2, 3], lower_bounds=(0,))  # noqa: SIM202
    assert a != Array([1, 2, 3], lower_bounds=(1,))
    assert not a == Array([1, 2, 3], lower_bounds=(1,))  # noqa: SIM201
    assert a != Array([1, 2], lower_bounds=(0,))


@pytest.mark.parametrize(
    ("elements", "bounds", "error", "message"),
    [
        ([1], (), ValueError, "needs one lower bound per dimension"),
        ([1], (1,) * 7, ValueError, "at most 6 dimensions"),
        ([1], (2**31,), ValueError, "between"),
        ([1], (1.0,), TypeError, "must be an integer"),
        ([1], 1, TypeError, "not iterable"),
    ],
)
def test_array_validation(
    elements: list[int], bounds: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Array(elements, bounds)
