"""pgoxide: an asyncio PostgreSQL driver with a Rust core and asyncpg's API."""

from __future__ import annotations

from . import exceptions
from ._pgoxide import Record
from .connection import Connection, ConnectionSettings, ServerVersion, connect
from .exceptions import *  # noqa: F403  (asyncpg exposes its exceptions at the top level)
from .transaction import Transaction

__version__ = "0.1.0"

__all__ = (
    "Connection",
    "ConnectionSettings",
    "Record",
    "ServerVersion",
    "Transaction",
    "connect",
    "exceptions",
    *exceptions.__all__,
)
