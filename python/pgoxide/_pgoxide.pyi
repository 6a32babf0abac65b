"""Type stubs of the compiled core, ``pgoxide._pgoxide`` (rust/pgoxide-py)."""

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final, final, overload

from typing_extensions import disjoint_base

from .types import Lsn

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "EFFECT_ADVISORY",
    "EFFECT_CURSORS",
    "EFFECT_LISTEN",
    "EFFECT_SETTINGS",
    "EFFECT_TEMP",
    "EFFECT_UNKNOWN",
    "ITEM_ABORTED",
    "ITEM_AUTH",
    "ITEM_CLIENT_ERROR",
    "ITEM_COPY_DATA",
    "ITEM_COPY_IN",
    "ITEM_COPY_ROWS",
    "ITEM_DONE",
    "ITEM_NOTICE",
    "ITEM_NOTIFICATION",
    "ITEM_REPLICATION",
    "ITEM_REPLICATION_STARTED",
    "ITEM_SEND",
    "ITEM_SERVER_ERROR",
    "ITEM_SERVER_ERROR_UNEXECUTED",
    "UNCHANGED",
    "UUID",
    "Begin",
    "BeginPrepare",
    "Commit",
    "CommitPrepared",
    "Delete",
    "Described",
    "Insert",
    "Keepalive",
    "LogicalMessage",
    "Origin",
    "PgOutputDecoder",
    "Prepare",
    "Record",
    "RecordDesc",
    "Relation",
    "RelationColumn",
    "RollbackPrepared",
    "Session",
    "Statement",
    "StreamAbort",
    "StreamCommit",
    "StreamPrepare",
    "StreamStart",
    "StreamStop",
    "Truncate",
    "TypeDefinition",
    "UnchangedToast",
    "Update",
    "XLogData",
    "cancel_request",
    "check_require_auth",
    "ssl_request",
    "verify_host_name",
]

DEFAULT_MAX_MESSAGE_SIZE: int

# The kinds of the ``(kind, payload)`` items ``Session.feed`` returns.
ITEM_DONE: Final = 0
"""An operation completed; the payload is its result."""
ITEM_SERVER_ERROR: Final = 1
"""An operation failed with a server error; the payload is its field dict."""
ITEM_CLIENT_ERROR: Final = 2
"""An operation failed on the client side; the payload is the exception."""
ITEM_NOTICE: Final = 3
"""A NoticeResponse; the payload is its field dict."""
ITEM_NOTIFICATION: Final = 4
"""A NotificationResponse; the payload is ``(pid, channel, payload)``."""
ITEM_SEND: Final = 5
"""Bytes to send now."""
ITEM_SERVER_ERROR_UNEXECUTED: Final = 6
"""A server error that arrived before the statement was bound: it never ran."""
ITEM_AUTH: Final = 7
"""The server asked for a password method and the session answered; the payload names it
(``password``, ``md5``, ``scram-sha-256``, ``scram-sha-256-plus``)."""
ITEM_REPLICATION: Final = 8
"""Replication stream items (``XLogData``/``Keepalive``), a list per feed."""
ITEM_REPLICATION_STARTED: Final = 9
"""START_REPLICATION was accepted: the stream runs (CopyBoth)."""
ITEM_ABORTED: Final = 10
ITEM_COPY_IN: Final = 11
ITEM_COPY_DATA: Final = 12
ITEM_COPY_ROWS: Final = 13

# What a statement may change in the session (Session.take_effects).
EFFECT_SETTINGS: Final = 1
EFFECT_LISTEN: Final = 2
EFFECT_ADVISORY: Final = 4
EFFECT_TEMP: Final = 8
EFFECT_CURSORS: Final = 16
EFFECT_UNKNOWN: Final = 32
"""An operation without a Sync of its own was skipped by the server: an earlier one of the
same Sync failed. No payload."""

def cancel_request(pid: int, key: bytes) -> bytes:
    """A CancelRequest packet for the backend ``pid`` with its secret ``key``."""

def ssl_request() -> bytes:
    """The SSLRequest packet."""

def verify_host_name(der: bytes, host: str) -> None:
    """Checks ``host`` against the server certificate ``der`` as libpq's verify-full does;
    raises ValueError with libpq's message when it does not match."""

def check_require_auth(text: str) -> None:
    """Checks a ``require_auth`` setting; raises ValueError with libpq's message."""

@final
class UUID(uuid.UUID):
    """A ``uuid.UUID`` decoded by pgoxide: the same value, with its 16 bytes stored and its
    ``int`` made on first use. Only the decoder makes them; pickles and copies are plain
    ``uuid.UUID``s."""

@final
class RecordDesc:
    """Column names of a result and their positions, shared by all its rows."""

@disjoint_base
class Record:
    """An immutable row, indexable by position, column name and slice. Subclasses can be
    given as ``record_class``."""

    def __new__(cls, desc: RecordDesc | None = None, values: list[Any] | None = None) -> Record:
        """Only the driver makes records; without both arguments this raises TypeError."""
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, key: int | str, /) -> Any: ...
    @overload
    def __getitem__(self, key: slice, /) -> tuple[Any, ...]: ...
    def get(self, key: int | str, default: Any = None) -> Any: ...
    def keys(self) -> Iterator[str]: ...
    def values(self) -> Iterator[Any]: ...
    def items(self) -> Iterator[tuple[str, Any]]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Statement:
    """A prepared statement with its per-statement codec tables."""

    @property
    def name(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def param_types(self) -> tuple[int, ...]: ...
    @property
    def columns(self) -> list[tuple[str, int, int, int, int]]:
        """``(name, type_oid, table_oid, column_number, type_modifier)`` per column."""
    @property
    def text_columns(self) -> list[str]:
        """Names of the columns whose type has only a text codec (no binary COPY)."""

@final
class Described:
    """A statement the server described, waiting for its types to be introspected."""

    @property
    def name(self) -> str: ...
    @property
    def query(self) -> str: ...

@final
class Session:
    """The protocol state machine and the FIFO of operations awaiting results.

    Request methods return the bytes to write and queue one operation; ``feed`` returns
    ``None`` or a list of ``(kind, payload)`` items, whose kinds are the ``ITEM_*``
    constants of this module.
    """

    def __new__(
        cls,
        user: str,
        database: str,
        params: list[tuple[str, str]],
        password: bytes | None,
        max_message_size: int,
        tls: bool = False,
        server_certificate: bytes | None = None,
        channel_binding: str = "prefer",
        require_auth: str | None = None,
        protocol_versions: tuple[int, int, int, int] = ...,  # (3, 0, 3, 0)
    ) -> Session: ...
    def startup(self) -> bytes: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, Any]] | None: ...
    def simple_query(self, sql: str) -> bytes: ...
    def simple_rows(self, sql: str) -> bytes:
        """Completes with the Records of the last result set, text values decoded by type."""
    def start_replication(
        self, command: str, start: int, decode: bool, parallel: bool = False, values: str = "typed"
    ) -> bytes:
        """Completes with the command tag when the stream ends."""
    def replication_status(self, reply_requested: bool = False) -> bytes: ...
    def replication_ack(self, lsn: int) -> None: ...
    def replication_positions(self) -> tuple[int, int]: ...
    def copy_done(self) -> bytes | None: ...
    def copy(
        self,
        sql: str,
        direction: str,
        stmt: Statement | None = None,
        record_class: type[Record] | None = None,
        text: bool = False,
    ) -> bytes:
        """A COPY of the COPY API (``"in"`` or ``"out"``); completes with its command tag."""
    @staticmethod
    def copy_data(data: bytes | bytearray | memoryview) -> bytes: ...
    @staticmethod
    def copy_records(
        stmt: Statement,
        rows: Iterator[Any],
        max_bytes: int,
        start: int,
        header: bool,
        text: bool = False,
    ) -> tuple[bytes, int, bool]:
        """``(copy_data_message, records_in_it, more)``."""
    @staticmethod
    def copy_in_done(trailer: bool) -> bytes: ...
    @staticmethod
    def copy_in_fail(message: str) -> bytes: ...
    def prepare(self, name: str, query: str) -> bytes:
        """Completes with a Statement, or ``(Described, unknown_type_oids)``."""
    def bind_execute(
        self,
        stmt: Statement,
        args: Sequence[Any],
        limit: int = 0,
        record_class: type[Record] | None = None,
        portal: str = "",
        sync: bool = True,
    ) -> bytes:
        """Bind + Execute + Sync (a Flush without ``sync``: the operation then ends with
        its Execute)."""
    def parse_bind_execute(
        self,
        stmt: Statement,
        args: Sequence[Any],
        limit: int = 0,
        record_class: type[Record] | None = None,
        portal: str = "",
        sync: bool = True,
    ) -> bytes:
        """Parse (unnamed) + Bind + Describe portal + Execute + Sync in one request."""
    def execute_portal(
        self,
        stmt: Statement,
        portal: str,
        limit: int,
        record_class: type[Record] | None = None,
        sync: bool = True,
    ) -> bytes:
        """Execute of an open portal: its next ``limit`` rows."""
    def close_portal(self, portal: str) -> bytes:
        """Close of a portal + Sync."""
    def sync(self, abort: bool = False) -> bytes:
        """A Sync of its own; with ``abort``, after an Execute that fails, so the implicit
        transaction rolls back."""
    def build_statement(self, described: Described) -> Statement: ...
    def add_types(
        self,
        rows: list[tuple[int, str, str, str, int, int, int, int, list[str], list[int]]],
    ) -> None: ...
    def set_value_options(self, parse_json: bool, infinity: str) -> None: ...
    def clear_types(self) -> None: ...
    def knows_type(self, oid: int) -> bool: ...
    def type_info(self, oid: int) -> tuple[str, str, str] | None: ...
    def set_user_codec(
        self, oid: int, encoder: Callable[[Any], Any], decoder: Callable[[Any], Any], format: str
    ) -> None: ...
    def set_builtin_format(self, oid: int, builtin_name: str, text: bool) -> None: ...
    def reset_codec(self, oid: int) -> None: ...
    def executemany(
        self,
        stmt: Statement,
        rows: Iterator[Any],
        max_bytes: int,
        first: bool,
        collect: bool = False,
        record_class: type[Record] | None = None,
    ) -> tuple[bytes, bool]:
        """One chunk of a batch; with ``collect`` it completes with ``(rows, tag)``."""
    def abort_batch(self) -> bytes: ...
    def close_statement(self, name: str) -> None: ...
    def close_portal_later(self, name: str) -> None: ...
    def terminate(self) -> bytes: ...
    def connection_lost(self, reason: str) -> None: ...
    def take_effects(self) -> int:
        """What statements run since the last call may have changed in the session
        (``EFFECT_*`` flags); clears them."""
    def add_effects(self, flags: int) -> None: ...
    @property
    def requests(self) -> int:
        """Requests submitted since the session started."""
    @property
    def pending_ops(self) -> int: ...
    @property
    def is_ready(self) -> bool: ...
    @property
    def authenticated(self) -> bool: ...
    @property
    def transaction_status(self) -> str: ...
    @property
    def backend_pid(self) -> int: ...
    @property
    def backend_key(self) -> bytes: ...
    @property
    def protocol_version(self) -> tuple[int, int]: ...
    @property
    def server_parameters(self) -> dict[str, str]: ...

# -- logical replication (pgoxide.replication) -------------------------------------------------

@final
class UnchangedToast:
    """The value of a TOASTed column that did not change and was not sent."""

    def __bool__(self) -> bool: ...

UNCHANGED: UnchangedToast

@final
class Keepalive:
    @property
    def wal_end(self) -> Lsn: ...
    @property
    def send_time(self) -> datetime: ...
    @property
    def reply_requested(self) -> bool: ...

@final
class XLogData:
    @property
    def data_start(self) -> Lsn: ...
    @property
    def wal_end(self) -> Lsn: ...
    @property
    def send_time(self) -> datetime: ...
    @property
    def data(self) -> bytes: ...
    @property
    def message(self) -> Any: ...

@final
class RelationColumn:
    @property
    def name(self) -> str: ...
    @property
    def type_oid(self) -> int: ...
    @property
    def type_modifier(self) -> int: ...
    @property
    def is_key(self) -> bool: ...

@final
class Relation:
    @property
    def oid(self) -> int: ...
    @property
    def schema(self) -> str: ...
    @property
    def table(self) -> str: ...
    @property
    def replica_identity(self) -> str: ...
    @property
    def columns(self) -> tuple[RelationColumn, ...]: ...
    @property
    def xid(self) -> int | None: ...

@final
class Begin:
    @property
    def xid(self) -> int: ...
    @property
    def final_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class Commit:
    @property
    def commit_lsn(self) -> Lsn | None: ...
    @property
    def end_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class Origin:
    @property
    def name(self) -> str: ...
    @property
    def lsn(self) -> Lsn | None: ...

@final
class TypeDefinition:
    @property
    def oid(self) -> int: ...
    @property
    def schema(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def xid(self) -> int | None: ...

@final
class Insert:
    @property
    def relation(self) -> Relation: ...
    @property
    def new(self) -> Record: ...
    @property
    def xid(self) -> int | None: ...
    @property
    def commit_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class Update:
    @property
    def relation(self) -> Relation: ...
    @property
    def old(self) -> Record | None: ...
    @property
    def old_kind(self) -> str | None: ...
    @property
    def new(self) -> Record: ...
    @property
    def xid(self) -> int | None: ...
    @property
    def commit_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class Delete:
    @property
    def relation(self) -> Relation: ...
    @property
    def old(self) -> Record: ...
    @property
    def old_kind(self) -> str: ...
    @property
    def xid(self) -> int | None: ...
    @property
    def commit_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class Truncate:
    @property
    def relations(self) -> tuple[Relation, ...]: ...
    @property
    def cascade(self) -> bool: ...
    @property
    def restart_identity(self) -> bool: ...
    @property
    def xid(self) -> int | None: ...
    @property
    def commit_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class LogicalMessage:
    @property
    def transactional(self) -> bool: ...
    @property
    def prefix(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def xid(self) -> int | None: ...
    @property
    def lsn(self) -> Lsn | None: ...

@final
class StreamStart:
    @property
    def xid(self) -> int: ...
    @property
    def first_segment(self) -> bool: ...

@final
class StreamStop: ...

@final
class StreamCommit:
    @property
    def xid(self) -> int: ...
    @property
    def commit_lsn(self) -> Lsn | None: ...
    @property
    def end_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class StreamAbort:
    @property
    def xid(self) -> int: ...
    @property
    def subxid(self) -> int: ...
    @property
    def abort_lsn(self) -> Lsn | None: ...
    @property
    def abort_time(self) -> datetime | None: ...

class _PrepareFields:
    @property
    def xid(self) -> int: ...
    @property
    def gid(self) -> str: ...
    @property
    def prepare_lsn(self) -> Lsn | None: ...
    @property
    def end_lsn(self) -> Lsn | None: ...
    @property
    def prepare_time(self) -> datetime | None: ...

@final
class BeginPrepare(_PrepareFields): ...

@final
class Prepare(_PrepareFields): ...

@final
class StreamPrepare(_PrepareFields): ...

@final
class CommitPrepared:
    @property
    def xid(self) -> int: ...
    @property
    def gid(self) -> str: ...
    @property
    def commit_lsn(self) -> Lsn | None: ...
    @property
    def end_lsn(self) -> Lsn | None: ...
    @property
    def commit_time(self) -> datetime | None: ...

@final
class RollbackPrepared:
    @property
    def xid(self) -> int: ...
    @property
    def gid(self) -> str: ...
    @property
    def prepare_end_lsn(self) -> Lsn | None: ...
    @property
    def rollback_end_lsn(self) -> Lsn | None: ...
    @property
    def prepare_time(self) -> datetime | None: ...
    @property
    def rollback_time(self) -> datetime | None: ...

@final
class PgOutputDecoder:
    """pgoutput decoding with its own relation cache."""

    def __new__(
        cls, *, parallel: bool = False, values: str = "typed", parse_json: bool = False
    ) -> PgOutputDecoder: ...
    def decode(self, data: bytes) -> Any: ...
