"""The COPY methods of :class:`~pgoxide.Connection`: asyncpg's four (same names and keyword
arguments) and pgoxide's own record streams and raw COPY. They build the COPY statement and
hand it to the connection's :class:`~pgoxide.copy.Copier`."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _pgoxide, tracing
from . import copy as _copy

if TYPE_CHECKING:
    from .operations import OperationPath

Record = _pgoxide.Record


class CopyMethods:
    """Mixed into :class:`~pgoxide.Connection`."""

    _copier: _copy.Copier
    _ops: OperationPath
    _record_class: type[Record] | None
    _tracer: tracing.Tracer | None

    async def _traced_copy(self, direction: str, sql: str, run: Awaitable[str]) -> str:
        """``run`` between the tracer's copy hooks, if there is a tracer."""
        tracer = self._tracer
        if tracer is None:
            return await run
        event = tracing.CopyStart(direction, sql, self._ops.server)
        return await tracing.traced(tracer, "copy", event, run, _copy_outcome)  # type: ignore[no-any-return]

    async def _statement(self, query: str, deadline: float | None) -> _pgoxide.Statement:
        raise NotImplementedError

    def _check_record_class(self, record_class: type[Record] | None) -> None:
        raise NotImplementedError

    async def copy_to_table(
        self,
        table_name: str,
        *,
        source: _copy.Source,
        columns: Iterable[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        format: str | None = None,
        oids: bool | None = None,
        freeze: bool | None = None,
        delimiter: str | None = None,
        null: str | None = None,
        header: bool | None = None,
        quote: str | None = None,
        escape: str | None = None,
        force_quote: bool | Iterable[str] | None = None,
        force_not_null: Iterable[str] | None = None,
        force_null: Iterable[str] | None = None,
        encoding: str | None = None,
        where: str | None = None,
    ) -> str:
        """Copies data into a table (COPY FROM STDIN); returns the tag (``'COPY 100'``).

        ``source`` is a path, a binary file object, an async iterable of bytes or a
        bytes-like object; the other arguments are COPY's options, as in asyncpg. ``timeout``
        covers the whole copy, the time spent reading ``source`` included."""
        opts = _copy.options_sql(
            format=format, oids=oids, freeze=freeze, delimiter=delimiter, null=null,
            header=header, quote=quote, escape=escape, force_quote=force_quote,
            force_not_null=force_not_null, force_null=force_null, encoding=encoding,
        )  # fmt: skip
        sql = f"COPY {_copy.table_sql(table_name, schema_name, columns)} FROM STDIN {opts}"
        if where:
            sql += f" WHERE {where}"
        return await self._traced_copy(
            "in", sql, self._copier.within(timeout, self._copier.copy_in(sql, source))
        )

    async def copy_records_to_table(
        self,
        table_name: str,
        *,
        records: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
        columns: Iterable[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        where: str | None = None,
    ) -> str:
        """Copies ``records`` (tuples or Records, from an iterable or an async iterable) into
        a table; returns the tag. They are encoded in Rust with the connection's codecs
        (custom codecs included) as binary COPY, or as text COPY when a column's type has
        only a text codec. A record that cannot be encoded raises DataError naming it and
        its column, and nothing is written."""
        columns = list(columns) if columns is not None else None
        describe = _copy.select_sql(table_name, schema_name, columns, None) + " LIMIT 0"
        target = _copy.table_sql(table_name, schema_name, columns)

        def sql(text: bool) -> str:
            fmt = "text" if text else "binary"
            return f"COPY {target} FROM STDIN (FORMAT {fmt})" + (f" WHERE {where}" if where else "")

        run = self._copier.within(timeout, self._copier.copy_records_in(sql, describe, records))
        return await self._traced_copy("in", f"COPY {target} FROM STDIN", run)

    async def copy_from_table(
        self,
        table_name: str,
        *,
        output: _copy.Sink,
        columns: Iterable[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,
        format: str | None = None,
        oids: bool | None = None,
        delimiter: str | None = None,
        null: str | None = None,
        header: bool | None = None,
        quote: str | None = None,
        escape: str | None = None,
        force_quote: bool | Iterable[str] | None = None,
        encoding: str | None = None,
    ) -> str:
        """Copies a table's contents to ``output`` (a path, a binary file object, or a
        coroutine function called with each chunk: reading pauses while it runs); returns
        the tag."""
        opts = _copy.options_sql(
            format=format, oids=oids, delimiter=delimiter, null=null, header=header,
            quote=quote, escape=escape, force_quote=force_quote, encoding=encoding,
        )  # fmt: skip
        sql = f"COPY {_copy.table_sql(table_name, schema_name, columns)} TO STDOUT {opts}"
        return await self._traced_copy(
            "out", sql, self._copier.within(timeout, self._copier.copy_out(sql, output))
        )

    async def copy_from_query(
        self,
        query: str,
        *args: Any,
        output: _copy.Sink,
        timeout: float | None = None,
        format: str | None = None,
        oids: bool | None = None,
        delimiter: str | None = None,
        null: str | None = None,
        header: bool | None = None,
        quote: str | None = None,
        escape: str | None = None,
        force_quote: bool | Iterable[str] | None = None,
        encoding: str | None = None,
    ) -> str:
        """Copies the result of ``query`` to ``output`` (as :meth:`copy_from_table`).
        ``args`` are written into the query as literals of their parameter types, since COPY
        takes no parameters."""
        opts = _copy.options_sql(
            format=format, oids=oids, delimiter=delimiter, null=null, header=header,
            quote=quote, escape=escape, force_quote=force_quote, encoding=encoding,
        )  # fmt: skip
        copier = self._copier

        async def run() -> str:
            query_sql = await self._literal_query(query, args)
            return await copier.copy_out(f"COPY ({query_sql}) TO STDOUT {opts}", output)

        return await self._traced_copy("out", query, copier.within(timeout, run()))

    def copy_records_from_query(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> _copy.CopyOutStream:
        """``async for record in conn.copy_records_from_query(query, *args)``: the rows of
        ``query`` through binary COPY, decoded in Rust a read at a time, with bounded memory
        whatever the size. Leaving early cancels the COPY; the connection stays usable."""
        return self._records_out(query, args, timeout, record_class)

    def copy_records_from_table(
        self,
        table_name: str,
        *,
        columns: Iterable[str] | None = None,
        schema_name: str | None = None,
        where: str | None = None,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> _copy.CopyOutStream:
        """``async for record in conn.copy_records_from_table(...)``: a table's rows (those
        ``where`` selects) as :meth:`copy_records_from_query` streams them."""
        query = _copy.select_sql(table_name, schema_name, columns, where)
        return self._records_out(query, (), timeout, record_class)

    def copy_out(self, sql: str, *args: Any, timeout: float | None = None) -> _copy.CopyOutStream:
        """``async for chunk in conn.copy_out("COPY ... TO STDOUT ...")``: the data of any
        COPY TO STDOUT statement, as the bytes of each read (``status`` is the tag once it
        has ended). ``args`` are written into the statement as literals."""
        ops = self._ops

        async def statement(_: object) -> str:
            return _copy.substitute(sql, [_copy.literal(a) for a in args]) if args else sql

        return _copy.CopyOutStream(self._copier, statement, None, None, ops.deadline(timeout))

    async def copy_in(
        self, sql: str, source: _copy.Source, *args: Any, timeout: float | None = None
    ) -> str:
        """Runs any COPY FROM STDIN statement with the data of ``source`` (as for
        :meth:`copy_to_table`); returns the tag. ``args`` are written into the statement as
        literals."""
        if args:
            sql = _copy.substitute(sql, [_copy.literal(a) for a in args])
        return await self._traced_copy(
            "in", sql, self._copier.within(timeout, self._copier.copy_in(sql, source))
        )

    def _records_out(
        self,
        query: str,
        args: Sequence[Any],
        timeout: float | None,
        record_class: type[Record] | None,
    ) -> _copy.CopyOutStream:
        if record_class is None:
            record_class = self._record_class
        else:
            self._check_record_class(record_class)
        deadline = self._ops.deadline(timeout)

        async def describe() -> _pgoxide.Statement:
            return await self._statement(query, deadline)

        async def sql(stmt: _pgoxide.Statement | None) -> str:
            literal = await self._copier.literal_query(query, args, deadline)
            # A column whose type has only a text codec makes the whole COPY text.
            fmt = "text" if stmt is not None and stmt.text_columns else "binary"
            return f"COPY ({literal}) TO STDOUT (FORMAT {fmt})"

        return _copy.CopyOutStream(self._copier, sql, describe, record_class, deadline)

    async def _literal_query(self, query: str, args: Sequence[Any]) -> str:
        """``query`` with ``args`` written in as literals (takes a turn for the lookup)."""
        if not args:
            return query
        ops = self._ops
        await ops.take(None)
        try:
            return await self._copier.literal_query(query, args, None)
        finally:
            ops.release()


def _copy_outcome(tag: str) -> tuple[int | None, str | None]:
    """The rows a COPY's tag (``COPY 1000``) reports."""
    count = tag.rpartition(" ")[2]
    return (int(count) if count.isdigit() else None), tag
