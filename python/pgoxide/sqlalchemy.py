"""SQLAlchemy dialect ``postgresql+pgoxide://``: SQLAlchemy's asyncpg dialect over pgoxide.

::

    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("postgresql+pgoxide://user:secret@db.example/shop")

pgoxide speaks asyncpg's API, so the dialect is SQLAlchemy's own
:class:`~sqlalchemy.dialects.postgresql.asyncpg.PGDialect_asyncpg` with the pgoxide module
in the place of the asyncpg module: the same DBAPI adapter, type processors, JSON/JSONB codec
set-up, prepared-statement cache, URL grammar (``prepared_statement_cache_size``, several
hosts) and connect arguments (``connect_args`` go to :func:`pgoxide.connect`).

Registered as the ``sqlalchemy.dialects`` entry point ``postgresql.pgoxide`` (installing
pgoxide is enough); ``pip install pgoxide[sqlalchemy]`` brings SQLAlchemy 2.

The module is named after what it adapts to; it lives inside the ``pgoxide`` package, so
``import sqlalchemy`` below is the top-level SQLAlchemy (absolute imports), never this file.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import util
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi, PGDialect_asyncpg

__all__ = ("AsyncAdapt_pgoxide_dbapi", "PGDialect_pgoxide", "dialect")


class AsyncAdapt_pgoxide_dbapi(AsyncAdapt_asyncpg_dbapi):
    """SQLAlchemy's asyncpg DBAPI adapter around the pgoxide module.

    The adapter reaches the driver as ``self.asyncpg`` (``connect``, ``BitString``,
    ``Range``, ``PostgresError``), which pgoxide provides under asyncpg's names.  The one
    thing it does not take from there is its exception table, which imports ``asyncpg``
    itself: here it is built from ``pgoxide.exceptions``, so that pgoxide's errors become
    SQLAlchemy's ``IntegrityError``, ``ProgrammingError``, ... instead of passing through
    raw (or, with asyncpg not installed, failing with ImportError).
    """

    @util.memoized_property
    def _asyncpg_error_translate(self) -> dict[type[BaseException], type[Exception]]:
        exc = self.asyncpg.exceptions
        return {
            exc.IntegrityConstraintViolationError: self.IntegrityError,
            exc.PostgresError: self.Error,
            exc.SyntaxOrAccessError: self.ProgrammingError,
            exc.InterfaceError: self.InterfaceError,
            exc.InvalidCachedStatementError: self.InvalidCachedStatementError,
            exc.InternalServerError: self.InternalServerError,
            exc.RestrictViolationError: self.RestrictViolationError,
            exc.NotNullViolationError: self.NotNullViolationError,
            exc.ForeignKeyViolationError: self.ForeignKeyViolationError,
            exc.UniqueViolationError: self.UniqueViolationError,
            exc.CheckViolationError: self.CheckViolationError,
            exc.ExclusionViolationError: self.ExclusionViolationError,
            exc.InternalClientError: self.InternalClientError,
        }


class PGDialect_pgoxide(PGDialect_asyncpg):
    """``postgresql+pgoxide``: the asyncpg dialect with pgoxide as the driver."""

    driver = "pgoxide"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        import pgoxide

        return AsyncAdapt_pgoxide_dbapi(pgoxide)


dialect = PGDialect_pgoxide
