"""The benchmark workloads: what is run, on which tables, and how a run is checked.

Every driver runs the same SQL (only the parameter markers differ) over the same rows.  The
tables are created once per benchmark run by :func:`setup_sql` and dropped by
:func:`teardown_sql`; their names start with ``pgoxide_bench_``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers import Driver

__all__ = [
    "ExecuteManyWorkload",
    "FetchWorkload",
    "SequentialWorkload",
    "Workload",
    "WorkloadError",
    "build_workloads",
]

_PREFIX = "pgoxide_bench_"


class WorkloadError(Exception):
    """A driver returned something other than what the workload expects."""


@dataclass
class Workload(abc.ABC):
    """One measured operation; ``count`` items (rows or queries) per timed run."""

    name: str
    description: str
    unit: str
    count: int

    def setup_sql(self) -> list[str]:
        """Statements creating what the workload reads or writes (run once, untimed)."""
        return []

    def teardown_sql(self) -> list[str]:
        """Statements removing what :meth:`setup_sql` created."""
        return []

    async def prepare(self, driver: Driver) -> Any:
        """Untimed work before each run; its result is passed to :meth:`run`."""
        return None

    @abc.abstractmethod
    async def run(self, driver: Driver, arg: Any) -> Any:
        """The timed part."""

    @abc.abstractmethod
    async def verify(self, driver: Driver, result: Any) -> None:
        """Check the run did what it should (untimed); raise :class:`WorkloadError` if not."""

    def result_types(self, result: Any) -> tuple[str, ...] | None:
        """The Python types of one result row, to show where drivers return different
        objects for the same columns; None when that is not meaningful."""
        return None


@dataclass
class FetchWorkload(Workload):
    """``SELECT * FROM table``, every row materialised as Python objects."""

    table: str = ""
    #: (name, SQL type, expression of the series value ``i``) per column.
    columns: tuple[tuple[str, str, str], ...] = ()

    @property
    def sql(self) -> str:
        return f"SELECT * FROM {self.table}"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _, _ in self.columns]

    def setup_sql(self) -> list[str]:
        ddl = ", ".join(f"{name} {type_}" for name, type_, _ in self.columns)
        exprs = ", ".join(expr for _, _, expr in self.columns)
        return [
            f"DROP TABLE IF EXISTS {self.table}",
            f"CREATE TABLE {self.table} ({ddl})",
            f"INSERT INTO {self.table} SELECT {exprs} FROM generate_series(1, {self.count}) AS i",
            # Set hint bits and statistics now, so no timed scan does that work.
            f"VACUUM (FREEZE, ANALYZE) {self.table}",
        ]

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"]

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.fetch_all(self.sql)

    async def verify(self, driver: Driver, result: Any) -> None:
        if len(result) != self.count:
            raise WorkloadError(f"{driver.name}: {len(result)} rows, expected {self.count}")

    def result_types(self, result: Any) -> tuple[str, ...] | None:
        return tuple(type(v).__name__ for v in result[0]) if result else None


@dataclass
class SequentialWorkload(Workload):
    """``count`` parameterised queries, each awaited before the next."""

    template: str = ""

    async def run(self, driver: Driver, arg: Any) -> Any:
        return await driver.sequential(self.template.format(*driver.placeholders(1)), self.count)

    async def verify(self, driver: Driver, result: Any) -> None:
        # The last query is run with count - 1.
        if result != self.count:
            raise WorkloadError(f"{driver.name}: last value {result!r}, expected {self.count}")


@dataclass
class ExecuteManyWorkload(Workload):
    """``executemany`` of an INSERT with ``count`` parameter rows into an emptied table."""

    table: str = ""
    #: The column definitions of the target table.
    ddl: str = ""
    make_row: Callable[[int], tuple[Any, ...]] | None = None
    _rows: list[tuple[Any, ...]] = field(default_factory=list, init=False, repr=False)

    def rows(self) -> list[tuple[Any, ...]]:
        """The parameter rows, built once and shared by every driver."""
        if not self._rows:
            assert self.make_row is not None
            self._rows = [self.make_row(i) for i in range(self.count)]
        return self._rows

    def setup_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}", f"CREATE TABLE {self.table} ({self.ddl})"]

    def teardown_sql(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.table}"]

    def sql(self, driver: Driver) -> str:
        marks = ", ".join(driver.placeholders(len(self.rows()[0])))
        return f"INSERT INTO {self.table} VALUES ({marks})"

    async def prepare(self, driver: Driver) -> Any:
        await driver.execute(f"TRUNCATE {self.table}")
        return self.sql(driver), driver.adapt_rows(self.rows())

    async def run(self, driver: Driver, arg: Any) -> Any:
        sql, rows = arg
        await driver.executemany(sql, rows)

    async def verify(self, driver: Driver, result: Any) -> None:
        n = await driver.scalar(f"SELECT count(*) FROM {self.table}")
        if n != self.count:
            raise WorkloadError(f"{driver.name}: {n} rows inserted, expected {self.count}")


#: (name, type, expression of i) for each column of the wide table.
_WIDE: tuple[tuple[str, str, str], ...] = (
    ("id", "int4", "i"),
    ("big", "int8", "i::int8 * 1000003"),
    ("score", "float8", "i * 0.25"),
    ("name", "text", "'customer-' || i"),
    ("active", "bool", "i % 3 = 0"),
    ("created", "timestamptz", "timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute'"),
    ("amount", "numeric(14, 4)", "(i * 1.2345)::numeric(14, 4)"),
    ("uid", "uuid", "md5(i::text)::uuid"),
    ("day", "date", "date '2000-01-01' + i % 10000"),
    ("tags", "int4[]", "ARRAY[i, i + 1, i % 7]"),
    ("doc", "jsonb", "jsonb_build_object('id', i, 'tag', 'tag-' || i % 100, 'ok', i % 2 = 0)"),
)
_INTS: tuple[tuple[str, str, str], ...] = (
    ("a", "int4", "i"),
    ("b", "int4", "i + 1"),
    ("c", "int4", "i * 2"),
    ("d", "int4", "i % 1000"),
    ("e", "int4", "-i"),
)
_TEXT: tuple[tuple[str, str, str], ...] = (("t", "text", "md5(i::text)"),)


def _insert_row(i: int) -> tuple[int, str, float]:
    return (i, f"row number {i}", i * 0.5)


def build_workloads(scale: float = 1.0) -> list[Workload]:
    """All workloads, in report order; ``scale`` multiplies every count (1.0 is the
    published configuration)."""

    def n(count: int) -> int:
        return max(1, round(count * scale))

    return [
        FetchWorkload(
            name="wide",
            description="SELECT * of 11 columns (int4, int8, float8, text, bool, timestamptz, "
            "numeric, uuid, date, int4[], jsonb)",
            unit="rows",
            count=n(100_000),
            table=_PREFIX + "wide",
            columns=_WIDE,
        ),
        FetchWorkload(
            name="ints",
            description="SELECT * of 5 int4 columns",
            unit="rows",
            count=n(200_000),
            table=_PREFIX + "ints",
            columns=_INTS,
        ),
        FetchWorkload(
            name="text",
            description="SELECT * of one text column (32 characters)",
            unit="rows",
            count=n(200_000),
            table=_PREFIX + "text",
            columns=_TEXT,
        ),
        SequentialWorkload(
            name="queries",
            description="SELECT $1::int + 1, one query at a time",
            unit="queries",
            count=n(5_000),
            template="SELECT {0}::int + 1",
        ),
        ExecuteManyWorkload(
            name="executemany",
            description="INSERT (int4, text, float8) rows with executemany",
            unit="rows",
            count=n(20_000),
            table=_PREFIX + "insert",
            ddl="a int4, b text, c float8",
            make_row=_insert_row,
        ),
    ]
