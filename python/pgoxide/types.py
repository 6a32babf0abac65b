"""Value types for PostgreSQL types that have no exact Python equivalent.

The names, constructors and behaviour follow ``asyncpg.types`` so that code written for asyncpg
keeps working; :class:`Interval`, :class:`Lsn` and :class:`Array` are pgoxide's own.  This
module is pure Python and never imports the compiled extension.
"""

from __future__ import annotations

import datetime
import operator
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    NamedTuple,
    SupportsFloat,
    SupportsIndex,
    TypeVar,
    Union,
    overload,
)

if TYPE_CHECKING:
    import builtins

    from typing_extensions import Self

__all__ = (
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
)

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1

_T = TypeVar("_T")
_Coordinate = Union[SupportsFloat, SupportsIndex, str, bytes, bytearray]


def _bounded_int(value: SupportsIndex, name: str, low: int, high: int) -> int:
    # operator.index rejects floats and Decimals, which would otherwise truncate silently.
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}")
    return number


def _trunc_divmod(value: int, divisor: int) -> tuple[int, int]:
    """divmod rounding towards zero, as C does; the remainder takes the sign of ``value``."""
    quotient = abs(value) // divisor
    if value < 0:
        quotient = -quotient
    return quotient, value - quotient * divisor


# --- catalog descriptions ----------------------------------------------------------------------


class Type(NamedTuple):
    """Database data type."""

    oid: int
    name: str
    kind: str
    schema: str


Type.oid.__doc__ = "OID of the type."
Type.name.__doc__ = 'Type name, for example "int2".'
Type.kind.__doc__ = 'Type kind: "scalar", "array", "composite" or "range".'
Type.schema.__doc__ = "Name of the database schema that defines the type."


class ServerVersion(NamedTuple):
    """The server's version, as asyncpg reports it."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int


class Attribute(NamedTuple):
    """Database relation attribute."""

    name: str
    type: Type


Attribute.name.__doc__ = "Attribute name."
Attribute.type.__doc__ = "Attribute data type, a :class:`Type`."


# --- range -------------------------------------------------------------------------------------


class Range(Generic[_T]):
    """Immutable PostgreSQL range.

    Bounds are kept as given: the server, not the driver, canonicalises discrete ranges
    (``[1,5]`` becomes ``[1,6)`` there).  As in asyncpg and PostgreSQL, an infinite bound
    (``None``) is never inclusive and an empty range has no bounds.
    """

    __slots__ = ("_empty", "_lower", "_lower_inc", "_upper", "_upper_inc")

    def __init__(
        self,
        lower: _T | None = None,
        upper: _T | None = None,
        *,
        lower_inc: bool = True,
        upper_inc: bool = False,
        empty: bool = False,
    ) -> None:
        self._empty = bool(empty)
        if self._empty:
            self._lower = self._upper = None
            self._lower_inc = self._upper_inc = False
        else:
            self._lower = lower
            self._upper = upper
            self._lower_inc = lower is not None and bool(lower_inc)
            self._upper_inc = upper is not None and bool(upper_inc)

    @property
    def lower(self) -> _T | None:
        """The lower bound, or None when unbounded or empty."""
        return self._lower

    @property
    def upper(self) -> _T | None:
        """The upper bound, or None when unbounded or empty."""
        return self._upper

    @property
    def lower_inc(self) -> bool:
        """Whether the lower bound is included."""
        return self._lower_inc

    @property
    def upper_inc(self) -> bool:
        """Whether the upper bound is included."""
        return self._upper_inc

    @property
    def lower_inf(self) -> bool:
        """Whether the range has no lower bound (an empty range has bounds on neither side)."""
        return self._lower is None and not self._empty

    @property
    def upper_inf(self) -> bool:
        """Whether the range has no upper bound (an empty range has bounds on neither side)."""
        return self._upper is None and not self._empty

    @property
    def isempty(self) -> bool:
        """Whether the range is empty."""
        return self._empty

    def _key(self) -> tuple[Any, ...]:
        return (self._lower, self._upper, self._lower_inc, self._upper_inc, self._empty)

    def issubset(self, other: Range[_T]) -> bool:
        """Whether every value in this range is also in ``other``, judged on the bounds alone."""
        if self._empty:
            return True
        if other._empty:
            return False
        return self._lower_within(other) and self._upper_within(other)

    def issuperset(self, other: Range[_T]) -> bool:
        """Whether every value in ``other`` is also in this range."""
        return other.issubset(self)

    def _lower_within(self, other: Range[_T]) -> bool:
        if other._lower is None:
            return True
        if self._lower is None:
            return False
        if self._lower == other._lower:
            return other._lower_inc or not self._lower_inc
        return bool(self._lower > other._lower)  # type: ignore[operator]

    def _upper_within(self, other: Range[_T]) -> bool:
        if other._upper is None:
            return True
        if self._upper is None:
            return False
        if self._upper == other._upper:
            return other._upper_inc or not self._upper_inc
        return bool(self._upper < other._upper)  # type: ignore[operator]

    def __bool__(self) -> bool:
        return not self._empty

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self._empty:
            return "<Range empty>"
        lower = "(" if not self._lower_inc else "["
        if self._lower is not None:
            lower += repr(self._lower)
        upper = repr(self._upper) if self._upper is not None else ""
        upper += "]" if self._upper_inc else ")"
        return f"<Range {lower}, {upper}>"

    __str__ = __repr__


# --- bit strings -------------------------------------------------------------------------------


class BitString:
    """Immutable PostgreSQL ``bit`` or ``varbit`` value.

    ``BitString('1010 1')`` takes bits as ``0`` and ``1`` characters; blanks are ignored.
    """

    __slots__ = ("_bitlength", "_bytes")

    _bytes: builtins.bytes
    _bitlength: int

    def __init__(self, bitstring: str | None = None) -> None:
        if not bitstring:
            self._bytes = b""
            self._bitlength = 0
            return
        if not isinstance(bitstring, str):
            raise TypeError(f"bitstring must be a str, not {type(bitstring).__name__}")
        bits = bitstring.replace(" ", "")
        if bits.strip("01"):
            position, char = next((i, c) for i, c in enumerate(bitstring) if c not in "01 ")
            raise ValueError(f"invalid bit value {char!r} at position {position}")
        self._bitlength = len(bits)
        if not bits:  # only blanks
            self._bytes = b""
            return
        # Bits are left-aligned in the bytes, the last byte zero-padded, as PostgreSQL sends them.
        value = int(bits, 2) << (-len(bits) % 8)
        self._bytes = value.to_bytes((len(bits) + 7) // 8, "big")

    @classmethod
    def frombytes(cls, bytes_: builtins.bytes | None = None, bitlength: int | None = None) -> Self:
        """Build from left-aligned bits in ``bytes_``, as PostgreSQL's binary format holds them.

        ``bitlength`` defaults to all bits of ``bytes_``; with no ``bytes_`` it gives that many
        zero bits.  Bits past ``bitlength`` in the last byte are cleared, as the server does.
        """
        if bytes_ is None:
            data = b""
            if bitlength is not None:
                if bitlength < 0:
                    raise ValueError(f"bit length must be non-negative, got {bitlength}")
                data = bytes((bitlength + 7) // 8)
        else:
            data = bytes_ if type(bytes_) is bytes else bytes(bytes_)
            if bitlength is None:
                bitlength = len(data) * 8
            elif bitlength < 0 or len(data) != (bitlength + 7) // 8:
                low = max(len(data) * 8 - 7, 0)
                raise ValueError(
                    f"invalid bit length {bitlength} for {len(data)} bytes: "
                    f"expected {low} to {len(data) * 8}"
                )
            padding = -bitlength % 8
            if padding and data[-1] & ((1 << padding) - 1):
                data = data[:-1] + bytes((data[-1] & (0xFF << padding) & 0xFF,))
        result = cls.__new__(cls)
        result._bytes = data
        result._bitlength = bitlength or 0
        return result

    @property
    def bytes(self) -> builtins.bytes:
        """The bits left-aligned in bytes, the last byte zero-padded."""
        return self._bytes

    def _bits(self) -> str:
        if not self._bitlength:
            return ""
        value = int.from_bytes(self._bytes, "big") >> (-self._bitlength % 8)
        return format(value, f"0{self._bitlength}b")

    def as_string(self) -> str:
        """The bits as ``0`` and ``1`` in groups of four separated by blanks, as asyncpg."""
        bits = self._bits()
        return " ".join(bits[i : i + 4] for i in range(0, len(bits), 4))

    def to_int(self, bitorder: Literal["big", "little"] = "big", *, signed: bool = False) -> int:
        """The bits as an integer, like :meth:`int.from_bytes`; the length is lost.

        With ``bitorder='big'`` (PostgreSQL's ``bit::int`` convention) the first bit is the
        most significant; with ``'little'`` the last one is.  ``signed`` reads two's complement.
        """
        value = int.from_bytes(self._bytes, "big") >> (-self._bitlength % 8)
        if bitorder == "little":
            value = _reverse_bits(value, self._bitlength)
        elif bitorder != "big":
            raise ValueError("bitorder must be either 'big' or 'little'")
        if signed and self._bitlength and value >> (self._bitlength - 1):
            value -= 1 << self._bitlength
        return value

    @classmethod
    def from_int(
        cls,
        x: int,
        length: int,
        bitorder: Literal["big", "little"] = "big",
        *,
        signed: bool = False,
    ) -> Self:
        """``length`` bits holding ``x``, like :meth:`int.to_bytes` (the inverse of :meth:`to_int`).

        A negative ``x`` needs ``signed=True`` and is stored in two's complement.  Raises
        OverflowError when ``x`` does not fit in ``length`` bits.
        """
        if length < 0:
            raise ValueError("length argument must be non-negative")
        if x < 0:
            if not signed:
                raise OverflowError("can't convert negative int to unsigned")
            if length == 0 or x < -(1 << (length - 1)):
                raise OverflowError("int too big to convert")
            x &= (1 << length) - 1
        elif x >> length:
            raise OverflowError("int too big to convert")
        if bitorder == "little":
            x = _reverse_bits(x, length)
        elif bitorder != "big":
            raise ValueError("bitorder must be either 'big' or 'little'")
        return cls.frombytes((x << (-length % 8)).to_bytes((length + 7) // 8, "big"), length)

    def __len__(self) -> int:
        return self._bitlength

    @overload
    def __getitem__(self, index: SupportsIndex) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> BitString: ...

    def __getitem__(self, index: SupportsIndex | slice) -> int | BitString:
        if isinstance(index, slice):
            return type(self)(self._bits()[index])
        i = operator.index(index)
        if i < 0:
            i += self._bitlength
        if not 0 <= i < self._bitlength:
            raise IndexError("BitString index out of range")
        return (self._bytes[i >> 3] >> (7 - (i & 7))) & 1

    def __iter__(self) -> Iterator[int]:
        return (int(bit) for bit in self._bits())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitString):
            return NotImplemented
        return self._bitlength == other._bitlength and self._bytes == other._bytes

    def __hash__(self) -> int:
        return hash((self._bytes, self._bitlength))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).frombytes, (self._bytes, self._bitlength))

    def __repr__(self) -> str:
        return f"<BitString {self.as_string()}>"

    __str__ = __repr__


def _reverse_bits(value: int, length: int) -> int:
    if not length:
        return 0
    return int(format(value, f"0{length}b")[::-1], 2)


# --- geometry ----------------------------------------------------------------------------------


def _tuple_repr(value: tuple[Any, ...]) -> str:
    return f"{type(value).__module__}.{type(value).__name__}({tuple.__repr__(value)})"


class Point(tuple[float, float]):
    """Immutable PostgreSQL ``point``: a tuple ``(x, y)`` of floats."""

    __slots__ = ()

    def __new__(cls, x: _Coordinate, y: _Coordinate) -> Self:
        return super().__new__(cls, (float(x), float(y)))

    def __getnewargs__(self) -> tuple[float, float]:
        return (self[0], self[1])

    @property
    def x(self) -> float:
        """The x coordinate."""
        return self[0]

    @property
    def y(self) -> float:
        """The y coordinate."""
        return self[1]

    __repr__ = _tuple_repr


class Box(tuple[Point, Point]):
    """Immutable PostgreSQL ``box``: a tuple ``(high, low)`` of opposite corners.

    The corners are kept as given; the server reorders them to upper right and lower left.
    """

    __slots__ = ()

    def __new__(cls, high: Sequence[float], low: Sequence[float]) -> Self:
        return super().__new__(cls, (Point(*high), Point(*low)))

    def __getnewargs__(self) -> tuple[Point, Point]:
        return (self[0], self[1])

    @property
    def high(self) -> Point:
        """The first corner, upper right in values from the server."""
        return self[0]

    @property
    def low(self) -> Point:
        """The second corner, lower left in values from the server."""
        return self[1]

    __repr__ = _tuple_repr


class Line(tuple[float, float, float]):
    """Immutable PostgreSQL ``line`` ``Ax + By + C = 0``: a tuple ``(A, B, C)`` of floats."""

    __slots__ = ()

    def __new__(cls, A: _Coordinate, B: _Coordinate, C: _Coordinate) -> Self:
        return super().__new__(cls, (float(A), float(B), float(C)))

    def __getnewargs__(self) -> tuple[float, float, float]:
        return (self[0], self[1], self[2])

    @property
    def A(self) -> float:
        """The coefficient of x."""
        return self[0]

    @property
    def B(self) -> float:
        """The coefficient of y."""
        return self[1]

    @property
    def C(self) -> float:
        """The constant term."""
        return self[2]

    __repr__ = _tuple_repr


class LineSegment(tuple[Point, Point]):
    """Immutable PostgreSQL ``lseg``: a tuple ``(p1, p2)`` of end points."""

    __slots__ = ()

    def __new__(cls, p1: Sequence[float], p2: Sequence[float]) -> Self:
        return super().__new__(cls, (Point(*p1), Point(*p2)))

    def __getnewargs__(self) -> tuple[Point, Point]:
        return (self[0], self[1])

    @property
    def p1(self) -> Point:
        """The first end point."""
        return self[0]

    @property
    def p2(self) -> Point:
        """The second end point."""
        return self[1]

    __repr__ = _tuple_repr


class Circle(tuple[Point, float]):
    """Immutable PostgreSQL ``circle``: a tuple ``(center, radius)``."""

    __slots__ = ()

    def __new__(cls, center: Sequence[float], radius: _Coordinate) -> Self:
        return super().__new__(cls, (Point(*center), float(radius)))

    def __getnewargs__(self) -> tuple[Point, float]:
        return (self[0], self[1])

    @property
    def center(self) -> Point:
        """The center point."""
        return self[0]

    @property
    def radius(self) -> float:
        """The radius."""
        return self[1]

    __repr__ = _tuple_repr


class Path:
    """Immutable PostgreSQL ``path``: a sequence of points, open or closed."""

    __slots__ = ("_is_closed", "_points")

    def __init__(self, *points: Sequence[float], is_closed: bool = False) -> None:
        self._points = tuple(Point(*p) for p in points)
        self._is_closed = bool(is_closed)

    @property
    def points(self) -> tuple[Point, ...]:
        """The points, in order."""
        return self._points

    @property
    def is_closed(self) -> bool:
        """Whether the last point connects back to the first."""
        return self._is_closed

    def __eq__(self, other: object) -> bool:
        # Like asyncpg, a Polygon equals the closed Path through the same points.
        if not isinstance(other, Path):
            return NotImplemented
        return self._points == other._points and self._is_closed == other._is_closed

    def __hash__(self) -> int:
        return hash((self._points, self._is_closed))

    def __iter__(self) -> Iterator[Point]:
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)

    @overload
    def __getitem__(self, index: SupportsIndex) -> Point: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Point, ...]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Point | tuple[Point, ...]:
        return self._points[index]

    def __contains__(self, point: object) -> bool:
        return point in self._points

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_path, (type(self), self._points, self._is_closed))

    def __repr__(self) -> str:
        args = [tuple.__repr__(p) for p in self._points]
        if type(self) is Path:
            args.append(f"is_closed={self._is_closed}")
        return f"{type(self).__module__}.{type(self).__name__}({', '.join(args)})"


class Polygon(Path):
    """Immutable PostgreSQL ``polygon``: a closed sequence of points."""

    __slots__ = ()

    def __init__(self, *points: Sequence[float]) -> None:
        super().__init__(*points, is_closed=True)


def _make_path(cls: type[Path], points: tuple[Point, ...], is_closed: bool) -> Path:
    path = cls.__new__(cls)
    path._points = points
    path._is_closed = is_closed
    return path


# --- interval ----------------------------------------------------------------------------------

_USECS_PER_SEC = 1_000_000
_USECS_PER_MINUTE = 60 * _USECS_PER_SEC
_USECS_PER_HOUR = 60 * _USECS_PER_MINUTE
_USECS_PER_DAY = 24 * _USECS_PER_HOUR
_MAX_DAYS = datetime.timedelta.max.days
# PostgreSQL 17's infinite intervals: every field at its extreme.
_INTERVAL_INFINITY = (_INT32_MAX, _INT32_MAX, _INT64_MAX)
_INTERVAL_NEG_INFINITY = (_INT32_MIN, _INT32_MIN, _INT64_MIN)


class Interval(datetime.timedelta):
    """A PostgreSQL ``interval`` with months: a :class:`datetime.timedelta` that also keeps the
    interval's three fields exactly.

    PostgreSQL stores months, days and microseconds apart because their lengths vary (a month
    has 28 to 31 days, a day 23 to 25 hours across a DST change).  As a timedelta, an Interval
    is the length asyncpg reads: each whole year of the months is 365 days, each remaining
    month 30 days (years and months split towards zero: ``-13 mons`` is -395 days), a day 24
    hours.  So ``Interval(months=14, days=3)`` is ``timedelta(days=428)``, and it compares,
    hashes, sorts and computes as that timedelta: it equals ``Interval(0, 428, 0)`` and
    ``timedelta(days=428)``.  ``1 mon`` equals ``30 days`` as in PostgreSQL, but ``1 year``
    equals ``365 days`` where PostgreSQL's comparison says ``360 days``.  Arithmetic gives
    plain timedeltas.

    The fields are :attr:`months` and :attr:`fields` ``(months, days, microseconds)``;
    :attr:`days`, :attr:`seconds` and :attr:`microseconds` are the timedelta's, normalised as
    in any timedelta.  Sent as a parameter, an Interval sends its fields unchanged.

    The driver returns an Interval for an interval with months, and a plain timedelta for one
    without (as asyncpg; ``24:00:00`` and ``1 day`` both read as ``timedelta(days=1)``).  It
    also returns one for PostgreSQL 17's ``infinity`` and ``-infinity``, whose timedelta is
    ``timedelta.max`` and ``timedelta.min``.  Intervals longer than a timedelta can hold
    (999999999 days) cannot be read.
    """

    __slots__ = ("_days_field", "_microseconds_field", "_months")

    _months: int
    _days_field: int
    _microseconds_field: int

    def __new__(cls, months: int = 0, days: int = 0, microseconds: int = 0) -> Self:
        months = _bounded_int(months, "months", _INT32_MIN, _INT32_MAX)
        days = _bounded_int(days, "days", _INT32_MIN, _INT32_MAX)
        microseconds = _bounded_int(microseconds, "microseconds", _INT64_MIN, _INT64_MAX)
        fields = (months, days, microseconds)
        if fields == _INTERVAL_INFINITY:
            self = super().__new__(cls, _MAX_DAYS, 86_399, 999_999)
        elif fields == _INTERVAL_NEG_INFINITY:
            self = super().__new__(cls, -_MAX_DAYS)
        else:
            years, rest = _trunc_divmod(months, 12)
            length = days + years * 365 + rest * 30
            try:
                self = super().__new__(cls, days=length, microseconds=microseconds)
            except OverflowError:
                raise OverflowError(
                    f"an interval of {months} months, {days} days and {microseconds} "
                    "microseconds is longer than a datetime.timedelta can be (999999999 days)"
                ) from None
        self._months = months
        self._days_field = days
        self._microseconds_field = microseconds
        return self

    @classmethod
    def from_timedelta(cls, td: datetime.timedelta) -> Self:
        """The interval a timedelta is sent as: its days, and its seconds as microseconds."""
        if not isinstance(td, datetime.timedelta):
            raise TypeError(f"expected a datetime.timedelta, not {type(td).__name__}")
        if isinstance(td, Interval):
            return cls(*td.fields)
        return cls(0, td.days, td.seconds * _USECS_PER_SEC + td.microseconds)

    def to_timedelta(self) -> datetime.timedelta:
        """This interval as a plain :class:`datetime.timedelta` of the same length."""
        return datetime.timedelta(self.days, self.seconds, self.microseconds)

    @property
    def months(self) -> int:
        """PostgreSQL's months field (a year is 12), between -2**31 and 2**31 - 1."""
        return self._months

    @property
    def fields(self) -> tuple[int, int, int]:
        """PostgreSQL's ``(months, days, microseconds)``, exactly as the interval stores them
        (the tuple of asyncpg's ``format='tuple'`` for intervals)."""
        return (self._months, self._days_field, self._microseconds_field)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.fields)

    def __repr__(self) -> str:
        months, days, usecs = self.fields
        return f"{type(self).__name__}(months={months}, days={days}, microseconds={usecs})"

    def __str__(self) -> str:
        """The interval in PostgreSQL's default ``postgres`` IntervalStyle."""
        months, days, usecs = self.fields
        # PostgreSQL 17 reserves the extreme values for infinite intervals.
        if self.fields == _INTERVAL_INFINITY:
            return "infinity"
        if self.fields == _INTERVAL_NEG_INFINITY:
            return "-infinity"
        # PostgreSQL's EncodeInterval: fields truncate towards zero, so each carries the sign
        # of its source, and a positive field right after a negative one gets an explicit "+".
        years, months = _trunc_divmod(months, 12)
        parts: list[str] = []
        after_negative = False
        for value, unit in ((years, "year"), (months, "mon"), (days, "day")):
            if value:
                plus = "+" if after_negative and value > 0 else ""
                parts.append(f"{plus}{value} {unit}{'' if value == 1 else 's'}")
                after_negative = value < 0
        if usecs or not parts:
            hours, rest = divmod(abs(usecs), _USECS_PER_HOUR)
            minutes, rest = divmod(rest, _USECS_PER_MINUTE)
            seconds, fraction = divmod(rest, _USECS_PER_SEC)
            sign = "-" if usecs < 0 else ("+" if after_negative else "")
            clock = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
            if fraction:
                clock += f".{fraction:06d}".rstrip("0")
            parts.append(clock)
        return " ".join(parts)


# --- pg_lsn ------------------------------------------------------------------------------------

# PostgreSQL's pg_lsn_in: one to eight hex digits on either side of the slash, nothing else.
_LSN_TEXT = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


class Lsn(int):
    """A PostgreSQL WAL location (``pg_lsn``): an unsigned 64-bit integer.

    ``Lsn('16/B374D848')`` parses the text form, ``Lsn(n)`` takes an int, ``str()`` gives the
    text form as PostgreSQL prints it.  Being an ``int``, an Lsn compares, sorts and hashes as
    its value; arithmetic gives plain ints (a byte distance, or a position to wrap in Lsn).
    """

    __slots__ = ()

    def __new__(cls, value: str | SupportsIndex = 0) -> Self:
        if isinstance(value, str):
            match = _LSN_TEXT.fullmatch(value)
            if match is None:
                raise ValueError(f"invalid input syntax for type pg_lsn: {value!r}")
            number = int(match[1], 16) << 32 | int(match[2], 16)
        else:
            try:
                number = operator.index(value)
            except TypeError:
                raise TypeError(
                    f"Lsn() takes a str or an int, not {type(value).__name__}"
                ) from None
            if not 0 <= number <= _UINT64_MAX:
                raise ValueError(f"an Lsn must be between 0 and 2**64 - 1, got {number}")
        return super().__new__(cls, number)

    def __str__(self) -> str:
        return f"{self >> 32:X}/{self & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self}')"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (int(self),))


# --- arrays ------------------------------------------------------------------------------------

_MAX_ARRAY_DIMENSIONS = 6  # PostgreSQL's MAXDIM


class Array(list[_T]):
    """A PostgreSQL array whose lower bounds are not all 1, such as ``'[0:2]={1,2,3}'``.

    It is a list of the elements (nested lists for more dimensions) with ``lower_bounds``, one
    per dimension.  The driver returns plain lists for arrays whose lower bounds are all 1 and
    sends an Array with its bounds.  An Array equals a plain list with the same elements;
    between two Arrays the bounds must match too, as in PostgreSQL.
    """

    __slots__ = ("_lower_bounds",)

    def __init__(self, elements: Iterable[_T], lower_bounds: Iterable[SupportsIndex]) -> None:
        super().__init__(elements)
        bounds = tuple(
            _bounded_int(b, "an array lower bound", _INT32_MIN, _INT32_MAX) for b in lower_bounds
        )
        if len(bounds) > _MAX_ARRAY_DIMENSIONS:
            raise ValueError(
                f"an array has at most {_MAX_ARRAY_DIMENSIONS} dimensions, got {len(bounds)} "
                "lower bounds"
            )
        if not bounds and len(self):
            raise ValueError("a non-empty array needs one lower bound per dimension")
        self._lower_bounds = bounds

    @property
    def lower_bounds(self) -> tuple[int, ...]:
        """The lower bound of each dimension, outermost first."""
        return self._lower_bounds

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Array) and self._lower_bounds != other._lower_bounds:
            return False
        return list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        # list.__ne__ would be found before the inverse of __eq__ and ignore the bounds.
        if isinstance(other, Array) and self._lower_bounds != other._lower_bounds:
            return True
        return list.__ne__(self, other)

    __hash__ = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self), self._lower_bounds))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list.__repr__(self)}, lower_bounds={self._lower_bounds!r})"
