"""Exceptions raised by pgoxide, named and arranged as asyncpg's.

Server errors and notices become instances of the class generated for their SQLSTATE (see
``_sqlstate.py``), carrying every field of the ErrorResponse/NoticeResponse. Client-side
failures raise the ``InterfaceError`` / ``InternalClientError`` families below.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, cast

# ErrorResponse/NoticeResponse field codes and the attributes they fill, in asyncpg's order.
_FIELD_ATTRIBUTES: Mapping[str, str] = types.MappingProxyType(
    {
        "S": "severity",
        "V": "severity_en",
        "C": "sqlstate",
        "M": "message",
        "D": "detail",
        "H": "hint",
        "P": "position",
        "p": "internal_position",
        "q": "internal_query",
        "W": "context",
        "s": "schema_name",
        "t": "table_name",
        "c": "column_name",
        "d": "data_type_name",
        "n": "constraint_name",
        "F": "server_source_filename",
        "L": "server_source_line",
        "R": "server_source_function",
    }
)
_KEYWORD_ATTRIBUTES = frozenset(_FIELD_ATTRIBUTES.values()) | {"query"}

# SQLSTATE -> the class defined for it (generated classes and any user subclass that sets
# ``sqlstate`` in its own body, as asyncpg allows).
_CLASS_BY_SQLSTATE: dict[str, type[PostgresMessage]] = {}

_INVALID_CACHED_STATEMENT_MESSAGE = (
    "cached statement plan is invalid due to a database schema or configuration change"
)


def _class_for_sqlstate(sqlstate: str | None) -> type[PostgresMessage] | None:
    """The class for ``sqlstate``, else its class-level (``XX000``) class, else None."""
    if not sqlstate:
        return None
    found = _CLASS_BY_SQLSTATE.get(sqlstate)
    if found is None:
        found = _CLASS_BY_SQLSTATE.get(sqlstate[:2] + "000")
    return found


class PostgresMessage:
    """Base of everything the server reports: errors, warnings and notices.

    Each attribute holds the matching protocol field as sent (strings), or None if absent.
    On a class, ``sqlstate`` is the code the class stands for; on an instance built from a
    server message it is the code the server sent.
    """

    sqlstate: str | None = None
    severity: str | None = None
    severity_en: str | None = None
    message: str | None = None
    detail: str | None = None
    hint: str | None = None
    position: str | None = None
    internal_position: str | None = None
    internal_query: str | None = None
    context: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None
    data_type_name: str | None = None
    constraint_name: str | None = None
    server_source_filename: str | None = None
    server_source_line: str | None = None
    server_source_function: str | None = None
    query: str | None = None
    """The query that caused the message, if the driver knows it."""
    extra_fields: Mapping[str, str] = types.MappingProxyType({})
    """Fields with codes this version does not know, keyed by their one-character code."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        sqlstate = cls.__dict__.get("sqlstate")
        if sqlstate is None:
            return
        existing = _CLASS_BY_SQLSTATE.get(sqlstate)
        same_definition = existing is not None and (
            (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
        )
        if existing is not None and not same_definition:
            raise TypeError(
                f"{cls.__qualname__} has SQLSTATE {sqlstate}, "
                f"which {existing.__qualname__} already has"
            )
        _CLASS_BY_SQLSTATE[sqlstate] = cls

    def __init__(self, *args: Any, **fields: str | None) -> None:
        """Build a message client-side: ``DataError("invalid input ...", detail=...)``.

        The first argument becomes ``message``; keyword arguments set the other fields by
        attribute name.
        """
        unknown = fields.keys() - _KEYWORD_ATTRIBUTES
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        if isinstance(self, BaseException):
            super().__init__(*args)
        else:
            super().__init__()
        if args and "message" not in fields:
            fields["message"] = args[0] if isinstance(args[0], str) else str(args[0])
        self.__dict__.update(fields)

    def as_dict(self) -> dict[str, str]:
        """The fields that are set, keyed by attribute name (unknown codes by their code)."""
        result = {}
        for name in _FIELD_ATTRIBUTES.values():
            value = getattr(self, name)
            if value is not None:
                result[name] = value
        result.update(self.extra_fields)
        return result

    @classmethod
    def _from_fields(
        cls, target: type[PostgresMessage], fields: Mapping[str, str], query: str | None
    ) -> PostgresMessage:
        """An instance of ``target`` (or a refinement of it) holding ``fields``."""
        attributes: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for code, value in fields.items():
            name = _FIELD_ATTRIBUTES.get(code)
            if name is None:
                extra[code] = value
            else:
                attributes[name] = value
        attributes["query"] = query
        if extra:
            attributes["extra_fields"] = extra

        text = attributes.get("message") or ""
        # A plan invalidated by DDL fails with a generic 0A000 from RevalidateCachedQuery;
        # the message is localized, so the source function is what identifies it.
        if (
            target is _sqlstate.FeatureNotSupportedError
            and attributes.get("server_source_function") == "RevalidateCachedQuery"
        ):
            target = InvalidCachedStatementError
            text = _INVALID_CACHED_STATEMENT_MESSAGE

        # Prepared statements that vanish or collide are the mark of a pooler in transaction
        # or statement mode between us and the server: say what to do, as asyncpg does.
        if fields.get("C") in _PREPARED_STATEMENT_SQLSTATES:
            hint = attributes.get("hint")
            attributes["hint"] = f"{hint}\n{_POOLER_NOTE}" if hint else _POOLER_NOTE

        instance = target(text)
        instance.__dict__.update(attributes)
        return instance


# duplicate_prepared_statement, invalid_sql_statement_name.
_PREPARED_STATEMENT_SQLSTATES = frozenset({"42P05", "26000"})
_POOLER_NOTE = (
    "NOTE: pgbouncer (or another pooler) in transaction or statement pool mode does not keep "
    "prepared statements from one transaction to the next. Connect with "
    "statement_cache_size=0 behind such a pooler (pgoxide then prepares unnamed statements "
    "in each request), or use pgoxide's own pool."
)


class PostgresError(PostgresMessage, Exception):
    """Base class for all Postgres errors."""

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else (self.message or "")
        if self.detail:
            text += f"\nDETAIL:  {self.detail}"
        if self.hint:
            text += f"\nHINT:  {self.hint}"
        return text

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], query: str | None = None) -> PostgresError:
        """The exception for an ErrorResponse, given its fields keyed by protocol code.

        The class is the one for the SQLSTATE (``fields['C']``); an unknown code in a known
        class gets the class-level class (``23xxx`` -> ``IntegrityConstraintViolationError``);
        anything else gets ``UnknownPostgresError``.
        """
        target = _class_for_sqlstate(fields.get("C"))
        if target is None or not issubclass(target, PostgresError):
            target = UnknownPostgresError
        return cast("PostgresError", cls._from_fields(target, fields, query))


class FatalPostgresError(PostgresError):
    """A fatal error that should result in server disconnection."""


class UnknownPostgresError(FatalPostgresError):
    """An error with an unknown SQLSTATE code."""


class PostgresLogMessage(PostgresMessage):
    """A base class for non-error server messages (NoticeResponse). Instances are immutable."""

    def __str__(self) -> str:
        return f"{type(self).__name__}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        # Dunder attributes stay settable so that exception machinery (add_note) works.
        if name.startswith("__") and name.endswith("__"):
            super().__setattr__(name, value)
            return
        raise TypeError(f"instances of {type(self).__name__} are immutable")

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        if state:
            self.__dict__.update(state)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], query: str | None = None) -> PostgresMessage:
        """The message object for a NoticeResponse, given its fields keyed by protocol code.

        Picks the class for the SQLSTATE like ``PostgresError.from_fields`` (so a notice can
        be, say, a ``DuplicateTableError``); without one, ``PostgresWarning`` for severity
        WARNING and ``PostgresLogMessage`` otherwise.
        """
        target = _class_for_sqlstate(fields.get("C"))
        if target is None:
            severity = fields.get("V") or fields.get("S") or ""
            if severity.upper() == "WARNING":
                target = _sqlstate.PostgresWarning
            else:
                target = PostgresLogMessage
        return cls._from_fields(target, fields, query)


class InterfaceMessage:
    """Mixin for client-side messages: optional ``detail`` and ``hint`` shown by ``str()``."""

    args: tuple[Any, ...]

    def __init__(self, *, detail: str | None = None, hint: str | None = None) -> None:
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""
        if self.detail:
            text += f"\nDETAIL:  {self.detail}"
        if self.hint:
            text += f"\nHINT:  {self.hint}"
        return text


class InterfaceError(InterfaceMessage, Exception):
    """An error caused by improper use of the pgoxide API."""

    def __init__(self, msg: str, *, detail: str | None = None, hint: str | None = None) -> None:
        InterfaceMessage.__init__(self, detail=detail, hint=hint)
        Exception.__init__(self, msg)

    def with_msg(self, msg: str) -> InterfaceError:
        """A copy of this error (same class, detail, hint, traceback) with another message."""
        return type(self)(msg, detail=self.detail, hint=self.hint).with_traceback(
            self.__traceback__
        )


class InterfaceWarning(InterfaceMessage, UserWarning):
    """A warning caused by improper use of the pgoxide API."""

    def __init__(self, msg: str, *, detail: str | None = None, hint: str | None = None) -> None:
        InterfaceMessage.__init__(self, detail=detail, hint=hint)
        UserWarning.__init__(self, msg)


class InsecureAuthWarning(InterfaceWarning):
    """The password went to the server in cleartext over a connection without TLS."""


class DeprecatedAuthWarning(InterfaceWarning):
    """The server asked for MD5 password authentication, deprecated since PostgreSQL 18."""


class ClientConfigurationError(InterfaceError, ValueError):
    """An error caused by improper client configuration."""


class UnsupportedClientFeatureError(InterfaceError):
    """The requested feature is not supported by pgoxide."""


class UnsupportedServerFeatureError(InterfaceError):
    """The requested feature is not supported by the PostgreSQL server."""


class PipelineAbortedError(InterfaceError):
    """A call of an atomic pipeline was not run: an earlier call of it failed, and the
    server skipped the rest (``__cause__`` is that failure)."""


class AuthenticationPolicyError(InterfaceError):
    """The client refused to authenticate as the server asked (require_auth, channel_binding)."""


class InternalClientError(Exception):
    """All unexpected errors not classified otherwise."""


class ProtocolError(InternalClientError):
    """The server sent something malformed, unexpected or oversized."""


class TargetServerAttributeNotMatched(InternalClientError):
    """No host satisfies the requested target_session_attrs."""


class ConnectionFailedError(OSError):
    """Every host (and address) was tried and none gave a connection.

    The message lists each attempt's failure; ``attempts`` holds them as ``(where, error)``
    pairs in the order they were made.
    """

    def __init__(self, msg: str, attempts: list[tuple[str, BaseException]]) -> None:
        super().__init__(msg)
        self.attempts = attempts


class OutdatedSchemaCacheError(InternalClientError):
    """A value could not be decoded because the schema changed before rows were fetched."""

    def __init__(
        self,
        msg: str,
        *,
        schema: str | None = None,
        data_type: str | None = None,
        position: str | None = None,
    ) -> None:
        super().__init__(msg)
        self.schema_name = schema
        self.data_type_name = data_type
        self.position = position


# The generated classes need the bases above, and the class below needs a generated class.
from . import _sqlstate  # noqa: E402
from ._sqlstate import *  # noqa: E402, F403

# Tracebacks and pickles name the public module, as asyncpg's do (asyncpg.exceptions.X).
for _name in _sqlstate.__all__:
    getattr(_sqlstate, _name).__module__ = __name__
del _name


class InvalidCachedStatementError(_sqlstate.FeatureNotSupportedError):
    """A cached statement plan became invalid after a schema or configuration change."""


__all__ = (
    "AuthenticationPolicyError",
    "ClientConfigurationError",
    "ConnectionFailedError",
    "DeprecatedAuthWarning",
    "FatalPostgresError",
    "InsecureAuthWarning",
    "InterfaceError",
    "InterfaceWarning",
    "InternalClientError",
    "InvalidCachedStatementError",
    "OutdatedSchemaCacheError",
    "PipelineAbortedError",
    "PostgresError",
    "PostgresLogMessage",
    "ProtocolError",
    "TargetServerAttributeNotMatched",
    "UnknownPostgresError",
    "UnsupportedClientFeatureError",
    "UnsupportedServerFeatureError",
    *_sqlstate.__all__,
)
