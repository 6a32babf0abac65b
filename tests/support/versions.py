"""Skips for a server feature the running PostgreSQL lacks: one wording everywhere, naming
the feature and the version that brought it, so every skip of a version-matrix run (.ci/run)
says what it did not test and why."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

__all__ = ["require_postgresql"]


def require_postgresql(server: Sequence[int], major: int, feature: str) -> None:
    """Skips the test unless ``server`` (a version tuple: ``Cluster.version``,
    ``Connection.get_server_version()``) is PostgreSQL ``major`` or later. The skip is
    reported at the calling test's line (-rs), not here."""
    __tracebackhide__ = True
    if tuple(server[:1]) < (major,):
        pytest.skip(f"needs PostgreSQL {major}+: {feature} (this server is {server[0]})")
