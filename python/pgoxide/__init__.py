"""pgoxide: an asyncio PostgreSQL driver with a Rust core and asyncpg's API."""

from __future__ import annotations

from . import exceptions, types
from ._pgoxide import UUID, Record
from .connection import Connection, ConnectionSettings
from .establish import AuthEvent, connect
from .exceptions import *  # noqa: F403  (asyncpg exposes its exceptions at the top level)
from .pool import Pool, create_pool
from .pool_cluster import PoolCluster, create_pool_cluster
from .prepared_stmt import PreparedStatement
from .tracing import LoggedQuery, Tracer
from .transaction import Transaction
from .types import *  # noqa: F403  (and its value types)

__version__ = "0.1.0"

__all__ = (
    "AuthEvent",
    "Connection",
    "ConnectionSettings",
    "LoggedQuery",
    "Pool",
    "PoolCluster",
    "PreparedStatement",
    "Record",
    "Tracer",
    "Transaction",
    "UUID",
    "connect",
    "create_pool",
    "create_pool_cluster",
    "exceptions",
    "types",
    *exceptions.__all__,
    *types.__all__,
)
