"""Type introspection: one query that describes non-builtin types and everything they depend on
(array elements, domain bases, range subtypes, composite attributes).

Builtin types (OIDs below 10000) are known from the driver's catalogue and never looked up.
"""

from __future__ import annotations

from . import _pgoxide
from .types import Type

FIRST_UNPINNED_OID = 10_000


def types_query(server_version_num: int) -> str:
    """The introspection query for ``$1::oid[]``; multiranges exist from PostgreSQL 14."""
    multirange = server_version_num >= 140000
    multirange_dep = (
        "UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid"
        if multirange
        else ""
    )
    multirange_of = "coalesce(mr.rngtypid, 0)::oid" if multirange else "0::oid"
    multirange_join = (
        "LEFT JOIN pg_catalog.pg_range mr ON mr.rngmultitypid = t.oid" if multirange else ""
    )
    return f"""
WITH RECURSIVE wanted(oid) AS (
    SELECT unnest($1::pg_catalog.oid[])
  UNION
    SELECT d.dep
    FROM wanted w
    JOIN pg_catalog.pg_type t ON t.oid = w.oid
    CROSS JOIN LATERAL (
        SELECT t.typelem WHERE t.typlen = -1 AND t.typelem <> 0
        UNION ALL SELECT t.typbasetype WHERE t.typbasetype <> 0
        UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
        {multirange_dep}
        UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    ) AS d(dep)
    WHERE d.dep >= {FIRST_UNPINNED_OID}
)
SELECT t.oid,
       n.nspname::text,
       t.typname::text,
       t.typtype::text,
       CASE WHEN t.typlen = -1 AND t.typelem <> 0 THEN t.typelem ELSE 0 END::oid,
       t.typbasetype,
       coalesce(r.rngsubtype, 0)::oid,
       {multirange_of},
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum),
       ARRAY(SELECT a.atttypid FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
{multirange_join}
WHERE t.oid IN (SELECT oid FROM wanted)
"""


TYPE_BY_NAME_QUERY = """
SELECT t.oid, t.typtype::text, (t.typlen = -1 AND t.typelem <> 0) AS is_array
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typname = $1 AND n.nspname = $2
"""

#: SQL's spellings of builtin types (and asyncpg's, e.g. ``timestamp with timezone``) and
#: their names in ``pg_catalog.pg_type``, for ``set_type_codec(..., schema='pg_catalog')``.
#: ``char`` is SQL's ``character`` (bpchar), as in asyncpg; the one-byte type is ``"char"``.
SQL_TYPE_NAMES: dict[str, str] = {
    "smallint": "int2",
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "decimal": "numeric",
    "real": "float4",
    "double precision": "float8",
    "float": "float8",
    "boolean": "bool",
    "timestamp with time zone": "timestamptz",
    "timestamp with timezone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "timestamp without timezone": "timestamp",
    "time with time zone": "timetz",
    "time with timezone": "timetz",
    "time without time zone": "time",
    "time without timezone": "time",
    "char": "bpchar",
    "character": "bpchar",
    "character varying": "varchar",
    "bit varying": "varbit",
    '"char"': "char",
}


def pg_type_name(typename: str, schema: str) -> str:
    """The ``pg_type`` name of ``typename`` in ``schema``: SQL's aliases of builtin types are
    resolved in ``pg_catalog``, case-insensitively (asyncpg does the same)."""
    if schema == "pg_catalog":
        return SQL_TYPE_NAMES.get(" ".join(typename.lower().split()), typename)
    return typename


def type_of(session: _pgoxide.Session, oid: int) -> Type:
    """What the connection knows of a type: builtin, introspected, or only its OID."""
    info = session.type_info(oid)
    if info is None:
        return Type(oid, f"oid {oid}", "scalar", "")
    schema, name, kind = info
    return Type(oid, name, kind, schema)
