"""Type stubs of the compiled core, ``pgoxide._pgoxide`` (rust/pgoxide-py)."""

from collections.abc import Callable, Iterator, Sequence
from typing import Any, final, overload

from typing_extensions import disjoint_base

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "Described",
    "Record",
    "RecordDesc",
    "Session",
    "Statement",
    "cancel_request",
    "check_require_auth",
    "ssl_request",
    "verify_host_name",
]

DEFAULT_MAX_MESSAGE_SIZE: int

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
class RecordDesc:
    """Column names of a result and their positions, shared by all its rows."""

@disjoint_base
class Record:
    """An immutable row, indexable by position, column name and slice. Subclasses can be
    given as ``record_class``."""

    def __new__(cls, desc: RecordDesc, values: list[Any]) -> Record: ...
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
    ``None`` or a list of ``(kind, payload)`` items: 0 done (result), 1 server error
    (field dict), 2 client error (exception), 3 notice (field dict), 4 notification
    ``(pid, channel, payload)``, 5 bytes to send, 6 server error before the statement ran
    (field dict), 7 password method answered (its ``require_auth`` name).
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
    ) -> Session: ...
    def startup(self) -> bytes: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, Any]] | None: ...
    def simple_query(self, sql: str) -> bytes: ...
    def prepare(self, name: str, query: str) -> bytes:
        """Completes with a Statement, or ``(Described, unknown_type_oids)``."""
    def bind_execute(
        self,
        stmt: Statement,
        args: Sequence[Any],
        limit: int = 0,
        record_class: type[Record] | None = None,
    ) -> bytes: ...
    def parse_bind_execute(
        self,
        stmt: Statement,
        args: Sequence[Any],
        limit: int = 0,
        record_class: type[Record] | None = None,
    ) -> bytes:
        """Parse (unnamed) + Bind + Describe portal + Execute + Sync in one request."""
    def build_statement(self, described: Described) -> Statement: ...
    def add_types(
        self,
        rows: list[tuple[int, str, str, str, int, int, int, int, list[str], list[int]]],
    ) -> None: ...
    def knows_type(self, oid: int) -> bool: ...
    def type_info(self, oid: int) -> tuple[str, str, str] | None: ...
    def set_user_codec(
        self, oid: int, encoder: Callable[[Any], Any], decoder: Callable[[Any], Any], format: str
    ) -> None: ...
    def set_builtin_format(self, oid: int, builtin_name: str) -> None: ...
    def reset_codec(self, oid: int) -> None: ...
    def executemany(
        self, stmt: Statement, rows: Iterator[Any], max_bytes: int, first: bool
    ) -> tuple[bytes, bool]: ...
    def abort_batch(self) -> bytes: ...
    def close_statement(self, name: str) -> None: ...
    def terminate(self) -> bytes: ...
    def connection_lost(self, reason: str) -> None: ...
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
    def server_parameters(self) -> dict[str, str]: ...
