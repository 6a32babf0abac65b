"""The SQLAlchemy dialect ``postgresql+pgoxide://`` (pgoxide.sqlalchemy): engine, Core, ORM,
reflection, the types applications use, transactions and savepoints.

Expected values are what SQLAlchemy's asyncpg dialect gives over asyncpg 0.32 on the same
server (the dialect is that one with pgoxide as the driver).  Skipped without SQLAlchemy
(``pip install pgoxide[sqlalchemy]``).  Everything runs in a database of its own, created
here, so that the extensions and tables never meet the other tests'.
"""

from __future__ import annotations

import datetime
import decimal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("greenlet")  # SQLAlchemy's async engine runs the sync core in greenlets

import pgoxide  # noqa: E402
from pgoxide.sqlalchemy import PGDialect_pgoxide  # noqa: E402
from sqlalchemy import (  # noqa: E402
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    exc,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy import types as sqltypes  # noqa: E402
from sqlalchemy.dialects import postgresql as pg  # noqa: E402
from sqlalchemy.dialects import registry  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine  # noqa: E402
from sqlalchemy.orm import (  # noqa: E402
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    selectinload,
)

# What the pyproject entry point does for an installed pgoxide; an editable install made
# before the entry point existed does not have it.
registry.register("postgresql.pgoxide", "pgoxide.sqlalchemy", "PGDialect_pgoxide")

DATABASE = "pgx_sqlalchemy"


@pytest.fixture(scope="module")
def sqla_url(pg_cluster, pg_roles) -> str:
    pg_cluster.psql(
        f"DROP DATABASE IF EXISTS {DATABASE};\n"
        f"CREATE DATABASE {DATABASE} OWNER {pg_roles.trust} ENCODING 'UTF8' TEMPLATE template0;"
    )
    pg_cluster.psql("CREATE EXTENSION IF NOT EXISTS hstore;", database=DATABASE)
    yield (f"postgresql+pgoxide://{pg_roles.trust}@{pg_cluster.host}:{pg_cluster.port}/{DATABASE}")
    pg_cluster.psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE);")


@pytest.fixture
async def engine(sqla_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(sqla_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def metadata(engine: AsyncEngine) -> AsyncIterator[MetaData]:
    """A MetaData whose tables are dropped after the test."""
    md = MetaData()
    yield md
    async with engine.begin() as c:
        await c.run_sync(md.drop_all)


async def scalar(engine: AsyncEngine, stmt):
    async with engine.connect() as c:
        return (await c.execute(stmt)).scalar_one()


# -- the dialect -------------------------------------------------------------------------


def test_url_loads_the_pgoxide_dialect_with_pgoxide_as_driver() -> None:
    url = sqlalchemy.engine.make_url("postgresql+pgoxide://u:p@h:5433/d")
    cls = url.get_dialect()
    assert cls is PGDialect_pgoxide
    assert cls.driver == "pgoxide"
    assert cls.import_dbapi().asyncpg is pgoxide
    args, kwargs = cls().create_connect_args(url)
    assert (args, kwargs) == ([], {"host": "h", "port": 5433, "user": "u", "password": "p",
                                   "database": "d"})  # fmt: skip


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_entry_point_is_declared() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    points = project["entry-points"]["sqlalchemy.dialects"]
    assert points["postgresql.pgoxide"] == "pgoxide.sqlalchemy:PGDialect_pgoxide"
    module, _, name = points["postgresql.pgoxide"].partition(":")
    assert getattr(__import__(module, fromlist=[name]), name) is PGDialect_pgoxide


async def test_engine_connects_and_reports_server_and_driver(engine: AsyncEngine) -> None:
    async with engine.connect() as c:
        assert (await c.execute(text("SELECT 1"))).scalar_one() == 1
        raw = await c.get_raw_connection()
        assert isinstance(raw.driver_connection, pgoxide.Connection)
    assert engine.dialect.driver == "pgoxide"
    assert engine.dialect.server_version_info >= (9,)
    assert engine.dialect.dbapi_version == sqlalchemy.util.parse_version_string(pgoxide.__version__)


async def test_server_errors_become_sqlalchemy_errors(engine: AsyncEngine, metadata) -> None:
    t = Table("uniq", metadata, Column("id", Integer, primary_key=True))
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
        await c.execute(insert(t), {"id": 1})
    async with engine.connect() as c:
        with pytest.raises(exc.IntegrityError) as info:
            await c.execute(insert(t), {"id": 1})
        assert info.value.orig.pgcode == "23505"
        assert isinstance(info.value.orig.__cause__, pgoxide.UniqueViolationError)
    async with engine.connect() as c:
        with pytest.raises(exc.ProgrammingError) as info:
            await c.execute(text("SELECT * FROM no_such_table"))
        assert info.value.orig.sqlstate == "42P01"
    async with engine.connect() as c:
        with pytest.raises(exc.DBAPIError) as info:
            await c.execute(text("SELECT 1/0"))
        assert info.value.orig.pgcode == "22012"


async def test_invalidated_connection_is_detected_and_replaced(
    engine: AsyncEngine, pg_cluster
) -> None:
    async with engine.connect() as c:
        pid = (await c.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await c.commit()
        pg_cluster.psql(f"SELECT pg_terminate_backend({int(pid)})")
        with pytest.raises(exc.DBAPIError) as info:
            await c.execute(text("SELECT 1"))
        assert info.value.connection_invalidated
    async with engine.connect() as c:  # the pool hands out a new connection
        assert (await c.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid


async def test_pool_pre_ping(sqla_url: str, pg_cluster) -> None:
    eng = create_async_engine(sqla_url, pool_pre_ping=True)
    try:
        async with eng.connect() as c:
            pid = (await c.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        pg_cluster.psql(f"SELECT pg_terminate_backend({int(pid)})")
        async with eng.connect() as c:
            assert (await c.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await eng.dispose()


# -- Core --------------------------------------------------------------------------------


async def test_core_insert_select_update_delete(engine: AsyncEngine, metadata) -> None:
    users = Table(
        "users",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(50), nullable=False),
        Column("score", sqltypes.Numeric(10, 2)),
    )
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
        result = await c.execute(
            insert(users).returning(users.c.id),
            [{"name": "ann", "score": decimal.Decimal("1.5")}, {"name": "bob", "score": None}],
        )
        assert sorted(result.scalars()) == [1, 2]
        await c.execute(insert(users), [{"name": f"u{i}", "score": i} for i in range(10)])

    async with engine.connect() as c:
        rows = (await c.execute(select(users).where(users.c.id <= 2).order_by(users.c.id))).all()
        assert rows == [(1, "ann", decimal.Decimal("1.50")), (2, "bob", None)]
        assert rows[0].name == "ann"
        assert rows[0]._mapping["score"] == decimal.Decimal("1.50")
        count = (await c.execute(select(func.count()).select_from(users))).scalar_one()
        assert count == 12
        updated = await c.execute(
            update(users).where(users.c.name.like("u%")).values(score=users.c.score + 1)
        )
        assert updated.rowcount == 10
        deleted = await c.execute(users.delete().where(users.c.id > 5))
        assert deleted.rowcount == 7
        # an executemany: the pipelined pgoxide.Connection.executemany under the dialect
        await c.execute(
            users.update().where(users.c.id == bindparam("b_id")).values(name=bindparam("n")),
            [{"b_id": 1, "n": "anne"}, {"b_id": 2, "n": "bobby"}],
        )
        names = (await c.execute(select(users.c.name).order_by(users.c.id))).scalars().all()
        assert names[:2] == ["anne", "bobby"]
        await c.commit()


async def test_server_side_cursor_streams(engine: AsyncEngine) -> None:
    async with engine.connect() as c:
        result = await c.stream(text("SELECT g FROM generate_series(1, 2500) AS g"))
        seen = [row[0] async for row in result]
        assert seen == list(range(1, 2501))
        result = await c.stream(text("SELECT g FROM generate_series(1, 30) AS g"))
        assert [r[0] for r in await result.fetchmany(7)] == list(range(1, 8))
        assert len(await result.fetchall()) == 23


# -- ORM ---------------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "orm_author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    key: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4)
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "orm_book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    tags: Mapped[list[str]] = mapped_column(pg.ARRAY(sqltypes.Text), default=list)
    meta: Mapped[dict] = mapped_column(pg.JSONB, default=dict)
    author_id: Mapped[int] = mapped_column(ForeignKey("orm_author.id"))
    author: Mapped[Author] = relationship(back_populates="books")


@pytest.fixture
async def orm_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    async with engine.begin() as c:
        await c.run_sync(Base.metadata.create_all)
    yield
    async with engine.begin() as c:
        await c.run_sync(Base.metadata.drop_all)


async def test_orm_round_trip(engine: AsyncEngine, orm_tables) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        ann = Author(name="Ann", books=[Book(title="One", tags=["a", "b"], meta={"p": 1})])
        ann.books.append(Book(title="Two"))
        s.add(ann)
        await s.commit()
        assert ann.id is not None
        assert isinstance(ann.key, uuid.UUID)

    async with AsyncSession(engine) as s:
        author = (
            await s.execute(
                select(Author).options(selectinload(Author.books)).where(Author.name == "Ann")
            )
        ).scalar_one()
        assert author.key == ann.key
        assert [(b.title, b.tags, b.meta) for b in author.books] == [
            ("One", ["a", "b"], {"p": 1}),
            ("Two", [], {}),
        ]
        author.books[1].meta = {"n": [1, 2]}
        author.books[0].tags = [*author.books[0].tags, "c"]
        await s.commit()

    async with AsyncSession(engine) as s:
        book = await s.get(Book, 1)
        assert book.tags == ["a", "b", "c"]
        rows = (
            await s.execute(select(Book.title).where(Book.meta["n"][1].as_integer() == 2))
        ).all()
        assert rows == [("Two",)]
        assert (
            await s.execute(select(Book.title).where(Book.tags.contains(["c"])))
        ).scalar_one() == "One"
        await s.delete(book)
        await s.commit()
        assert (await s.execute(select(func.count(Book.id)))).scalar_one() == 1


async def test_orm_rollback_discards_the_unit_of_work(engine: AsyncEngine, orm_tables) -> None:
    async with AsyncSession(engine) as s:
        s.add(Author(name="Temp"))
        await s.flush()
        await s.rollback()
        assert (await s.execute(select(func.count(Author.id)))).scalar_one() == 0


# -- reflection --------------------------------------------------------------------------


async def test_reflection(engine: AsyncEngine, metadata) -> None:
    Table(
        "parent",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("code", String(8), unique=True),
        Column("doc", pg.JSONB),
        Column("ts", sqltypes.DateTime(timezone=True), server_default=func.now()),
        comment="the parent",
    )
    Table(
        "child",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", ForeignKey("parent.id", ondelete="CASCADE"), index=True),
        Column("vals", pg.ARRAY(sqltypes.Integer)),
        Column("h", pg.HSTORE),
    )
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)

    def reflect(sync_conn):
        insp = inspect(sync_conn)
        return {
            "tables": sorted(insp.get_table_names()),
            "columns": {c["name"]: c for c in insp.get_columns("parent")},
            "child_columns": {c["name"]: c for c in insp.get_columns("child")},
            "pk": insp.get_pk_constraint("child"),
            "fks": insp.get_foreign_keys("child"),
            "indexes": insp.get_indexes("child"),
            "uniques": insp.get_unique_constraints("parent"),
            "comment": insp.get_table_comment("parent"),
            "reflected": Table("child", MetaData(), autoload_with=sync_conn),
        }

    async with engine.connect() as c:
        r = await c.run_sync(reflect)
    assert {"parent", "child"} <= set(r["tables"])
    cols = r["columns"]
    assert isinstance(cols["id"]["type"], sqltypes.Integer)
    assert isinstance(cols["code"]["type"], sqltypes.String)
    assert cols["code"]["type"].length == 8
    assert isinstance(cols["doc"]["type"], pg.JSONB)
    assert isinstance(cols["ts"]["type"], pg.TIMESTAMP)
    assert cols["ts"]["type"].timezone is True
    child = r["child_columns"]
    assert isinstance(child["vals"]["type"], pg.ARRAY)
    assert isinstance(child["h"]["type"], pg.HSTORE)
    assert r["pk"]["constrained_columns"] == ["id"]
    (fk,) = r["fks"]
    assert fk["referred_table"] == "parent"
    assert fk["constrained_columns"] == ["parent_id"]
    assert fk["options"]["ondelete"] == "CASCADE"
    assert [i["column_names"] for i in r["indexes"]] == [["parent_id"]]
    assert [u["column_names"] for u in r["uniques"]] == [["code"]]
    assert r["comment"] == {"text": "the parent"}
    assert set(r["reflected"].c.keys()) == {"id", "parent_id", "vals", "h"}


async def test_reflected_server_default_is_a_default(engine: AsyncEngine, metadata) -> None:
    Table(
        "defaults",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("ts", sqltypes.DateTime(timezone=True), server_default=func.now()),
    )
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    async with engine.connect() as c:
        cols = await c.run_sync(lambda sync: inspect(sync).get_columns("defaults"))
    ts = {col["name"]: col for col in cols}["ts"]
    assert ts["default"] == "now()"
    assert "computed" not in ts


# -- types -------------------------------------------------------------------------------


TYPE_CASES = [
    pytest.param(
        select(cast(literal('{"a": [1, 2.5, null]}'), pg.JSON)), {"a": [1, 2.5, None]}, id="json"
    ),
    pytest.param(select(cast(literal('{"a": [1, "x"]}'), pg.JSONB)), {"a": [1, "x"]}, id="jsonb"),
    pytest.param(
        select(bindparam("v", {"k": ["é", True]}, type_=pg.JSONB)),
        {"k": ["é", True]},
        id="jsonb-param",
    ),
    pytest.param(text("SELECT '[1, {\"b\": null}]'::json"), [1, {"b": None}], id="json-text"),
    pytest.param(
        select(bindparam("v", uuid.UUID(int=5), type_=pg.UUID)), uuid.UUID(int=5), id="uuid"
    ),
    pytest.param(
        select(bindparam("v", str(uuid.UUID(int=5)), type_=pg.UUID(as_uuid=False))),
        str(uuid.UUID(int=5)),
        id="uuid-as-str",
    ),
    pytest.param(
        select(bindparam("v", [1, None, 3], type_=pg.ARRAY(sqltypes.Integer))),
        [1, None, 3],
        id="int[]",
    ),
    pytest.param(
        select(
            bindparam("v", [["a", "b"], ["c", None]], type_=pg.ARRAY(sqltypes.Text, dimensions=2))
        ),
        [["a", "b"], ["c", None]],
        id="text[][]",
    ),
    pytest.param(
        select(bindparam("v", [uuid.UUID(int=1)], type_=pg.ARRAY(pg.UUID))),
        [uuid.UUID(int=1)],
        id="uuid[]",
    ),
    pytest.param(
        select(bindparam("v", {"a": "1", "b": None}, type_=pg.HSTORE)),
        {"a": "1", "b": None},
        id="hstore",
    ),
    pytest.param(text("SELECT 12.34::money"), "$12.34", id="money"),
    pytest.param(
        text("SELECT ARRAY[1.5, 2]::money[]"),
        ["$1.50", "$2.00"],
        id="money[]",
    ),
    pytest.param(
        text("SELECT 'a'::\"char\""),
        b"a",
        id="char",
    ),
    pytest.param(
        text("SELECT pg_sleep(0)"),
        None,
        id="void",
    ),
    pytest.param(
        select(bindparam("v", datetime.timedelta(days=3, seconds=5), type_=pg.INTERVAL)),
        datetime.timedelta(days=3, seconds=5),
        id="interval",
    ),
    pytest.param(
        text("SELECT '1 year 2 mons 3 days'::interval"),
        datetime.timedelta(days=428),
        id="interval-months",
    ),
    pytest.param(
        select(bindparam("v", decimal.Decimal("1.50"), type_=sqltypes.Numeric(10, 2))),
        decimal.Decimal("1.50"),
        id="numeric",
    ),
    pytest.param(
        select(bindparam("v", decimal.Decimal("1.5"), type_=sqltypes.Numeric(asdecimal=False))),
        1.5,
        id="numeric-as-float",
    ),
    pytest.param(text("SELECT 'NaN'::numeric"), decimal.Decimal("NaN"), id="numeric-nan"),
    pytest.param(select(bindparam("v", 2.5, type_=sqltypes.Float)), 2.5, id="float"),
    pytest.param(
        select(bindparam("v", pg.Range(1, 5), type_=pg.INT4RANGE)), pg.Range(1, 5), id="range"
    ),
    pytest.param(
        select(bindparam("v", b"\x00\xff", type_=sqltypes.LargeBinary)), b"\x00\xff", id="bytea"
    ),
    pytest.param(
        select(bindparam("v", datetime.date(2024, 2, 29), type_=sqltypes.Date)),
        datetime.date(2024, 2, 29),
        id="date",
    ),
    pytest.param(
        select(
            bindparam(
                "v",
                datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                type_=sqltypes.DateTime(timezone=True),
            )
        ),
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        id="timestamptz",
    ),
]


@pytest.mark.parametrize(("stmt", "expected"), TYPE_CASES)
async def test_type_round_trip(engine: AsyncEngine, stmt, expected) -> None:
    value = await scalar(engine, stmt)
    if isinstance(expected, decimal.Decimal) and expected.is_nan():
        assert value.is_nan()
    else:
        assert value == expected
        assert type(value) is type(expected) or isinstance(value, type(expected))


async def test_numeric_keeps_asyncpg_exponent(engine: AsyncEngine) -> None:
    value = await scalar(engine, text("SELECT 1e20::numeric"))
    assert value == decimal.Decimal("1E+20")
    assert str(value) == "1E+20"


async def test_types_stored_in_a_table(engine: AsyncEngine, metadata) -> None:
    t = Table(
        "typed",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("j", pg.JSON),
        Column("jb", pg.JSONB),
        Column("u", pg.UUID),
        Column("a", pg.ARRAY(sqltypes.Integer)),
        Column("iv", pg.INTERVAL),
        Column("n", sqltypes.Numeric(12, 4)),
        Column("e", sqltypes.Enum("red", "green", name="colour")),
        Column("r", pg.TSTZRANGE),
    )
    now = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    row = {
        "id": 1,
        "j": [1, "two", None],
        "jb": {"nested": {"x": 1}},
        "u": uuid.UUID(int=7),
        "a": [3, 2, 1],
        "iv": datetime.timedelta(hours=25),
        "n": decimal.Decimal("3.1416"),
        "e": "green",
        "r": pg.Range(now, None, bounds="[)"),
    }
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
        await c.execute(insert(t), row)
        await c.execute(insert(t), {"id": 2})
    async with engine.connect() as c:
        got = (await c.execute(select(t).order_by(t.c.id))).mappings().all()
        assert dict(got[0]) == row
        assert dict(got[1]) == {k: (2 if k == "id" else None) for k in row}
        # JSON null vs SQL NULL, and querying into jsonb
        found = (
            await c.execute(select(t.c.id).where(t.c.jb["nested"]["x"].as_integer() == 1))
        ).scalar_one()
        assert found == 1


async def test_hstore_column(engine: AsyncEngine, metadata) -> None:
    t = Table("hs", metadata, Column("id", Integer, primary_key=True), Column("h", pg.HSTORE))
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
        await c.execute(insert(t), {"id": 1, "h": {"k": "v", "n": None}})
    async with engine.connect() as c:
        assert (await c.execute(select(t.c.h))).scalar_one() == {"k": "v", "n": None}
        found = (await c.execute(select(t.c.id).where(t.c.h["k"] == "v"))).scalar_one()
        assert found == 1


# -- transactions ------------------------------------------------------------------------


async def test_commit_rollback_and_savepoints(engine: AsyncEngine, metadata) -> None:
    t = Table("tx", metadata, Column("id", Integer, primary_key=True))
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)

    async with engine.connect() as c:
        await c.execute(insert(t), {"id": 1})
        await c.rollback()
        await c.execute(insert(t), {"id": 2})
        sp = await c.begin_nested()
        await c.execute(insert(t), {"id": 3})
        await sp.rollback()
        async with c.begin_nested():
            await c.execute(insert(t), {"id": 4})
        with pytest.raises(exc.IntegrityError):
            async with c.begin_nested():
                await c.execute(insert(t), {"id": 4})
        await c.execute(insert(t), {"id": 5})  # the outer transaction survived
        await c.commit()

    async with engine.connect() as c:
        assert (await c.execute(select(t.c.id).order_by(t.c.id))).scalars().all() == [2, 4, 5]


async def test_orm_savepoint(engine: AsyncEngine, orm_tables) -> None:
    async with AsyncSession(engine) as s:
        s.add(Author(name="kept"))
        await s.flush()
        async with s.begin_nested():
            s.add(Author(name="kept too"))
        nested = await s.begin_nested()
        s.add(Author(name="dropped"))
        await s.flush()
        await nested.rollback()
        await s.commit()
        names = (await s.execute(select(Author.name).order_by(Author.id))).scalars().all()
        assert names == ["kept", "kept too"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("READ COMMITTED", "read committed"),
        ("REPEATABLE READ", "repeatable read"),
        ("SERIALIZABLE", "serializable"),
    ],
)
async def test_isolation_levels(engine: AsyncEngine, level: str, expected: str) -> None:
    async with engine.connect() as c:
        await c.execution_options(isolation_level=level)
        shown = (await c.execute(text("SHOW transaction_isolation"))).scalar_one()
        assert shown == expected


async def test_autocommit_and_readonly(engine: AsyncEngine) -> None:
    async with engine.connect() as c:
        await c.execution_options(isolation_level="AUTOCOMMIT")
        # VACUUM cannot run inside a transaction block
        await c.execute(text("VACUUM pg_class"))
    async with engine.connect() as c:
        await c.execution_options(postgresql_readonly=True)
        assert (await c.execute(text("SHOW transaction_read_only"))).scalar_one() == "on"
        with pytest.raises(exc.DBAPIError) as info:
            await c.execute(text("CREATE TEMP TABLE nope (i int)"))
        assert info.value.orig.pgcode == "25006"


async def test_two_connections_see_committed_work_only(engine: AsyncEngine, metadata) -> None:
    t = Table("vis", metadata, Column("id", Integer, primary_key=True))
    async with engine.begin() as c:
        await c.run_sync(metadata.create_all)
    async with engine.connect() as writer, engine.connect() as reader:
        await writer.execute(insert(t), {"id": 1})
        count = select(func.count()).select_from(t)
        assert (await reader.execute(count)).scalar_one() == 0
        await reader.rollback()
        await writer.commit()
        assert (await reader.execute(count)).scalar_one() == 1
