"""pytest plugin for SQLAlchemy's own test suite run with ``--dburi postgresql+pgoxide://``.

Loaded by ``run.py`` with ``-p pgoxide_sqla_plugin`` (this directory on ``PYTHONPATH``).

1. Registers the dialect ``postgresql.pgoxide`` → ``pgoxide.sqlalchemy:PGDialect_pgoxide``
   (what the entry point does once pgoxide is installed; an editable install made before the
   entry point existed does not have it).
2. With ``PGOXIDE_SQLA_AS_ASYNCPG=1``: SQLAlchemy's test requirements name drivers
   (``only_on("+asyncpg")`` for ranges and multiranges, ``fails_on("+asyncpg")``,
   ``testing.against("postgresql+asyncpg")``).  pgoxide is meant to be asyncpg, so a spec
   naming the driver ``asyncpg`` also matches the driver ``pgoxide``: the same tests run, and
   are expected to behave the same, under both.  Without it, the asyncpg-only tests are
   skipped for pgoxide and the comparison hides them.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy.dialects import registry

registry.register("postgresql.pgoxide", "pgoxide.sqlalchemy", "PGDialect_pgoxide")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PGOXIDE_SQLA_AS_ASYNCPG") != "1":
        return
    from sqlalchemy.testing import exclusions

    original = exclusions.SpecPredicate.__call__

    def __call__(self, config):
        if (
            config is not None
            and getattr(config.db, "driver", None) == "pgoxide"
            and self.db.endswith("+asyncpg")
        ):
            dialect = self.db.split("+")[0]
            twin = exclusions.SpecPredicate(
                f"{dialect}+pgoxide", self.op, self.spec, self.description
            )
            return original(twin, config)
        return original(self, config)

    exclusions.SpecPredicate.__call__ = __call__
