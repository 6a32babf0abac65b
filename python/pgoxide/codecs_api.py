"""The type codec methods of :class:`~pgoxide.Connection`, as asyncpg's: ``set_type_codec``,
``reset_type_codec`` and ``set_builtin_type_codec``. A type is looked up by name (SQL's
names of builtin types work in ``pg_catalog``), introspected if the connection has not seen
it, and its codec is registered with the session; cached statements are dropped so the next
ones use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from . import _pgoxide, introspection
from .exceptions import InterfaceError, UnsupportedClientFeatureError

if TYPE_CHECKING:
    from .operations import OperationPath
    from .statement_cache import StatementCache

#: The SQL names asyncpg's ``set_builtin_type_codec`` takes for core codecs (its
#: BUILTIN_TYPE_NAME_MAP); ``char`` is bpchar there, not ``"char"``.
_BUILTIN_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "smallint": "int2",
    "decimal": "numeric",
    "real": "float4",
    "double precision": "float8",
    "timestamp with timezone": "timestamptz",
    "timestamp without timezone": "timestamp",
    "time with timezone": "timetz",
    "time without timezone": "time",
    "char": "bpchar",
    "character": "bpchar",
    "character varying": "varchar",
    "bit varying": "varbit",
}


class CodecMethods:
    """Mixed into :class:`~pgoxide.Connection`."""

    _ops: OperationPath
    _session: _pgoxide.Session
    _statements: StatementCache

    async def _execute(
        self,
        query: str,
        args: Sequence[Any],
        limit: int,
        timeout: float | None,
        record_class: type[_pgoxide.Record] | None,
        kind: str = "fetch",
        traced: bool = False,
    ) -> tuple[list[_pgoxide.Record], str | None]:
        raise NotImplementedError

    async def _introspect(self, oids: Sequence[int], deadline: float | None) -> None:
        raise NotImplementedError

    async def set_type_codec(
        self,
        typename: str,
        *,
        schema: str = "public",
        encoder: Callable[[Any], Any],
        decoder: Callable[[Any], Any],
        format: str = "text",
    ) -> None:
        """Uses ``encoder``/``decoder`` for a type, as asyncpg: ``format`` ``'text'`` exchanges
        ``str``, ``'binary'`` ``bytes``, ``'tuple'`` a tuple (composites, date/time types,
        interval). For json or jsonb, ``'text'`` plugs in another JSON library (e.g. orjson)."""
        if format not in ("text", "binary", "tuple"):
            raise ValueError(f"format must be 'text', 'binary' or 'tuple', not {format!r}")
        oid, kind, is_array = await self._type_row(typename, schema)
        if kind == "d":
            raise UnsupportedClientFeatureError(
                "custom codecs on domain types are not supported",
                hint="Set the codec on the base type.",
                detail="PostgreSQL does not distinguish domains from their base types in "
                "query results at the protocol level.",
            )
        if kind == "c":
            if format != "tuple":
                raise UnsupportedClientFeatureError(
                    "only tuple-format codecs can be used on composite types",
                    hint="Use set_type_codec(..., format='tuple') and pass/interpret data as "
                    "a Python tuple.",
                )
        elif kind not in ("b", "e") or is_array:
            raise InterfaceError(
                f"cannot use custom codec on type {schema}.{typename}: "
                "it is neither a scalar type nor a composite type"
            )
        await self._introspect_if_new(oid)
        self._session.set_user_codec(oid, encoder, decoder, format)
        self._statements.clear()

    async def reset_type_codec(self, typename: str, *, schema: str = "public") -> None:
        """Goes back to the driver's own codec for a type."""
        oid = await self._type_oid(typename, schema)
        self._session.reset_codec(oid)
        self._statements.clear()

    async def set_builtin_type_codec(
        self, typename: str, *, schema: str = "public", codec_name: str, format: str | None = None
    ) -> None:
        """Makes a type travel like a builtin one (e.g. an extension type that is
        wire-compatible with ``int4``), or use the ``pg_contrib.hstore`` codec.

        ``format='text'`` declares only the text format for the type: its values travel as
        text and are read and written by the builtin's text codec (numeric, bool, the integer
        and float types, text, and the types that have only a text form); without it, or with
        ``'binary'``, they travel in the builtin's binary format."""
        if format not in (None, "binary", "text"):
            raise ValueError(f"format must be 'text' or 'binary', not {format!r}")
        oid = await self._type_oid(typename, schema)
        builtin = _BUILTIN_ALIASES.get(codec_name, codec_name)
        try:
            self._session.set_builtin_format(oid, builtin, format == "text")
        except InterfaceError as e:
            raise InterfaceError(f"cannot alias {typename} to {codec_name}: {e}") from None
        self._statements.clear()

    async def _type_oid(self, typename: str, schema: str) -> int:
        oid, _, _ = await self._type_row(typename, schema)
        await self._introspect_if_new(oid)
        return oid

    async def _type_row(self, typename: str, schema: str) -> tuple[int, str, bool]:
        """``(oid, typtype, is_array)`` of a type by name; SQL's names of builtin types
        (``integer``, ``double precision``, ...) work in ``pg_catalog``."""
        name = introspection.pg_type_name(typename, schema)
        rows, _ = await self._execute(
            introspection.TYPE_BY_NAME_QUERY, (name, schema), 0, None, None
        )
        if not rows:
            raise ValueError(f"unknown type: {schema}.{typename}")
        oid, kind, is_array = rows[0]
        return oid, kind, is_array

    async def _introspect_if_new(self, oid: int) -> None:
        if oid >= introspection.FIRST_UNPINNED_OID and not self._session.knows_type(oid):
            ops = self._ops
            await ops.take(None)
            try:
                await self._introspect([oid], None)
            finally:
                ops.release()
