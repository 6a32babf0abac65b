"""Records text output / binary send pairs of builtin types for the Rust core's text transcoder.

Logical replication (pgoutput) may deliver a column in text form; ``codec::text::to_binary``
turns that text into the bytes the type's send function would have produced, so the binary
decoders can be reused. This tool asks a throwaway server, for each case below, for the text
its output function prints under the settings a replication connection uses and for the bytes
its send function produces, and writes them to
``rust/pgoxide-proto/tests/vectors/text_pg<major>.txt``:

    python tools/record_text_vectors.py

Each line is ``oid|send hex|text|expression``. In the text, ``%``, ``|`` and control
characters are written as ``%XX`` (their byte in hex) so that every case fits on one line;
everything else, backslashes and non-ASCII included, is verbatim. An expression recorded
under another time zone than UTC is prefixed ``[TimeZone=<zone>]``.
"""

from __future__ import annotations

import asyncio
import pathlib
import struct
import sys

import pgoxide
from pgoxide.cluster import Cluster

OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "rust/pgoxide-proto/tests/vectors"

#: What the replication connection sets; the transcoder relies on these output formats.
SESSION_SETTINGS = {
    "DateStyle": "ISO",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}

FLOAT4 = 700
FLOAT8 = 701

SCALARS = [
    # bool, integers, unsigned 32-bit ids
    "true",
    "false",
    "0::int2",
    "1::int2",
    "(-1)::int2",
    "32767::int2",
    "(-32768)::int2",
    "0::int4",
    "42::int4",
    "(-7)::int4",
    "2147483647::int4",
    "(-2147483648)::int4",
    "0::int8",
    "1234567890123::int8",
    "9223372036854775807::int8",
    "(-9223372036854775808)::int8",
    "0::oid",
    "1259::oid",
    "4294967295::oid",
    "'0'::xid",
    "'12345'::xid",
    "'4294967295'::xid",
    "'0'::cid",
    "'4294967295'::cid",
    # float4: shortest round-trip output, denormals, extremes, special values
    "'0'::float4",
    "'-0'::float4",
    "'1'::float4",
    "'-1.5'::float4",
    "'0.1'::float4",
    "'3.14159'::float4",
    "'123456.79'::float4",
    "'16777217'::float4",
    "'1e10'::float4",
    "'1.5e-10'::float4",
    "'1e-45'::float4",
    "'1.17549435e-38'::float4",
    "'3.4028235e38'::float4",
    "'-3.4028235e38'::float4",
    "'NaN'::float4",
    "'Infinity'::float4",
    "'-Infinity'::float4",
    # float8
    "'0'::float8",
    "'-0'::float8",
    "'0.1'::float8",
    "1/3.0::float8",
    "pi()",
    "'-2.5e-7'::float8",
    "'1e22'::float8",
    "'1e23'::float8",
    "'123456789012345680'::float8",
    "'9007199254740993'::float8",
    "'5e-324'::float8",
    "'2.2250738585072014e-308'::float8",
    "'1.7976931348623157e308'::float8",
    "'-1.7976931348623157e308'::float8",
    "'NaN'::float8",
    "'Infinity'::float8",
    "'-Infinity'::float8",
    # numeric
    "0::numeric",
    "'0.00'::numeric",
    "'-0.00'::numeric",
    "1::numeric",
    "(-1)::numeric",
    "'-0.5'::numeric",
    "'0.1'::numeric",
    "'0.0001'::numeric",
    "'12345.678'::numeric",
    "'-123456789.000000001'::numeric",
    "9999::numeric",
    "10000::numeric",
    "100000000::numeric",
    "'1e100'::numeric",
    "'1e-100'::numeric",
    "'1e1000'::numeric",
    "round(1::numeric / 3, 1000)",
    "'NaN'::numeric",
    "'Infinity'::numeric",
    "'-Infinity'::numeric",
    # strings: the send output is the text itself
    "''::text",
    "'hello'::text",
    "'héllo wörld ✓ 日本語 🎉'::text",
    "E'line1\\nline2\\ttab\\r'::text",
    "'a|b%c'::text",
    "'back\\slash'::text",
    "'\"quoted\"'::text",
    "'  spaces  '::text",
    "repeat('x', 300)::text",
    "'abc'::varchar(10)",
    "''::varchar",
    "'ab'::char(5)",
    "'x'::char",
    "''::char(3)",
    "'pg_class'::name",
    "'Ünïcode'::name",
    "repeat('n', 70)::name",
    "'a'::\"char\"",
    "''::\"char\"",
    "'\\'::\"char\"",
    '\'"\'::"char"',
    'chr(233)::"char"',
    "'\\377'::\"char\"",
    "'abc'::unknown",
    "'<a b=\"1\">x &amp; y</a>'::xml",
    "'<?xml version=\"1.0\"?><r/>'::xml",
    '\'{"b": 1, "a": [1, 2.50, null]}\'::json',
    "'  [1,2]  '::json",
    "'\"\\u00e9\"'::json",
    # jsonb: a version byte, then the (normalised) text
    '\'{"b": 1, "a": [1, 2.50, null]}\'::jsonb',
    "'null'::jsonb",
    "'[]'::jsonb",
    "'\"é\\n\"'::jsonb",
    "'{\"k\": 1e40}'::jsonb",
    # bytea
    "''::bytea",
    "'\\x00ff10'::bytea",
    "'abc'::bytea",
    "decode(repeat('ab', 100), 'hex')",
    # uuid
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
    "'00000000-0000-0000-0000-000000000000'::uuid",
    "'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'::uuid",
    # date
    "'2000-01-01'::date",
    "'1999-12-31'::date",
    "'1970-01-01'::date",
    "'2024-02-29'::date",
    "'1900-02-28'::date",
    "'0001-01-01'::date",
    "'0001-12-31 BC'::date",
    "'0044-03-15 BC'::date",
    "'4714-11-24 BC'::date",
    "'10000-01-01'::date",
    "'5874897-12-31'::date",
    "'infinity'::date",
    "'-infinity'::date",
    # time
    "'00:00:00'::time",
    "'01:02:03'::time",
    "'12:34:56.7'::time",
    "'12:34:56.78'::time",
    "'12:34:56.789'::time",
    "'12:34:56.7891'::time",
    "'12:34:56.78912'::time",
    "'12:34:56.789123'::time",
    "'23:59:59.999999'::time",
    "'24:00:00'::time",
    # timetz: the send output stores the zone in seconds west of UTC
    "'00:00:00+00'::timetz",
    "'12:34:56.789+05:30'::timetz",
    "'23:59:59.999999-08'::timetz",
    "'04:05:06+05:30:15'::timetz",
    "'04:05:06-03:30'::timetz",
    "'24:00:00-15:59'::timetz",
    "'00:00:00+15:59'::timetz",
    # timestamp
    "'2000-01-01 00:00:00'::timestamp",
    "'1999-12-31 23:59:59.999999'::timestamp",
    "'1970-01-01 00:00:00'::timestamp",
    "'2024-02-29 12:00:00.5'::timestamp",
    "'2024-02-29 12:00:00.05'::timestamp",
    "'2024-02-29 12:00:00.005'::timestamp",
    "'2024-02-29 12:00:00.0005'::timestamp",
    "'2024-02-29 12:00:00.00005'::timestamp",
    "'2024-02-29 12:00:00.000005'::timestamp",
    "'0001-01-01 00:00:00'::timestamp",
    "'0001-12-31 23:59:59.999999 BC'::timestamp",
    "'0500-06-15 12:00:00 BC'::timestamp",
    "'4714-11-24 00:00:00 BC'::timestamp",
    "'294276-12-31 23:59:59.999999'::timestamp",
    "'infinity'::timestamp",
    "'-infinity'::timestamp",
    # timestamptz, printed in UTC
    "'2000-01-01 00:00:00+00'::timestamptz",
    "'2000-01-01 00:00:00+05:30'::timestamptz",
    "'1999-12-31 23:59:59.123456-08'::timestamptz",
    "'1969-07-20 20:17:40.1+00'::timestamptz",
    "'0001-01-01 00:00:00+00'::timestamptz",
    "'0001-12-31 23:59:59.99+00 BC'::timestamptz",
    "'4714-11-24 00:00:00+00 BC'::timestamptz",
    "'294276-12-31 23:59:59.999999+00'::timestamptz",
    "'infinity'::timestamptz",
    "'-infinity'::timestamptz",
    # interval (IntervalStyle postgres), every sign mix
    "'0'::interval",
    "'1 year'::interval",
    "'2 years'::interval",
    "'-1 year'::interval",
    "'1 mon'::interval",
    "'-3 mons'::interval",
    "'1 day'::interval",
    "'-1 days'::interval",
    "'1 year 2 mons 3 days 04:05:06.789'::interval",
    "'-1 year -2 mons -3 days -04:05:06.789'::interval",
    "'1 year -1 mon'::interval",
    "'-1 year 1 mon'::interval",
    "'-1 days 2 hours 3 minutes'::interval",
    "'1 day -1 second'::interval",
    "'-1 mon 1 day -1 microsecond'::interval",
    "'-1 year 2 days -1 second'::interval",
    "'1 year -2 days 1 second'::interval",
    "'1 mon -1 day 1 microsecond'::interval",
    "'-1.5 seconds'::interval",
    "'0.000001 seconds'::interval",
    "'-0.000001 seconds'::interval",
    "'00:00:00.1'::interval",
    "'100 hours'::interval",
    "'23:59:59.999999'::interval",
    "'P1Y2M3DT4H5M6.5S'::interval",
    "'178956970 years 7 mons'::interval",
    "'-178956970 years -8 mons'::interval",
    "'2147483647 days'::interval",
    "'-2147483648 days'::interval",
    "'2562047788:00:54.775807'::interval",
    "'-2562047788:00:54.775807'::interval - '0.000001 seconds'::interval",
    "'178956970 years 7 mons 2147483647 days 2562047788:00:54.775807'::interval",
    # pg_lsn
    "'0/0'::pg_lsn",
    "'16/B374D848'::pg_lsn",
    "'FFFFFFFF/FFFFFFFF'::pg_lsn",
    # inet, cidr
    "'192.168.0.1/24'::inet",
    "'10.1.2.3'::inet",
    "'0.0.0.0/0'::inet",
    "'255.255.255.255'::inet",
    "'10.0.0.0/8'::cidr::inet",
    "'2001:db8::1/64'::inet",
    "'::1'::inet",
    "'::'::inet",
    "'::ffff:1.2.3.4'::inet",
    "'fe80::1:2:3:4/10'::inet",
    "'2001:db8:85a3::8a2e:370:7334'::inet",
    "'192.168.0.0/24'::cidr",
    "'10/8'::cidr",
    "'0.0.0.0/0'::cidr",
    "'192.168.1.1/32'::cidr",
    "'2001:db8::/32'::cidr",
    "'::/0'::cidr",
    "'::1/128'::cidr",
    # macaddr, macaddr8
    "'08:00:2b:01:02:03'::macaddr",
    "'FF-FF-FF-FF-FF-FF'::macaddr",
    "'00:00:00:00:00:00'::macaddr",
    "'08:00:2b:01:02:03:04:05'::macaddr8",
    "'08:00:2b:01:02:03'::macaddr8",
]

ARRAYS = [
    "'{}'::int4[]",
    "ARRAY[1, 2, NULL]::int4[]",
    "ARRAY[NULL]::int4[]",
    "'{{1,2},{3,4}}'::int4[]",
    "'{{{1}},{{2}}}'::int4[]",
    "'{{{{{{7}}}}}}'::int4[]",
    "'[2:3]={5,6}'::int4[]",
    "'[0:1][-1:0]={{1,2},{3,NULL}}'::int4[]",
    "'[-5:-5]={-5}'::int4[]",
    "ARRAY[-32768, 32767]::int2[]",
    "ARRAY[-9223372036854775808, 9223372036854775807]::int8[]",
    "ARRAY[0, 4294967295]::oid[]",
    "ARRAY['1'::xid, '2']",
    "ARRAY['3'::cid]",
    "ARRAY[true, false, NULL]",
    "ARRAY[1.5, NULL, 'NaN', '-Infinity', '-0']::float4[]",
    "ARRAY[0.1, 1e300, 'Infinity', '5e-324']::float8[]",
    "ARRAY['1.50', '-0.001', 'NaN', NULL]::numeric[]",
    "'{}'::text[]",
    "ARRAY['a b', 'c\"d', NULL, 'NULL', 'null', '', 'x\\y', '{}', ',', ' lead', 'é', E'\\n']",
    "ARRAY[' ', E'\\t', 'trail ', 'a|b%c', 'NULLx', '[1:2]={}']",
    "'{{a,b},{\"c d\",NULL}}'::text[]",
    "ARRAY['abc', '']::varchar[]",
    "ARRAY['ab', NULL]::char(3)[]",
    "ARRAY['pg_class', 'a b']::name[]",
    "ARRAY['a', '', '\\', '\"', ',']::\"char\"[]",
    "ARRAY['<a/>']::xml[]",
    "ARRAY['{\"a\": [1, 2]}', 'null']::json[]",
    "ARRAY['{\"a\": \"x,y\"}', '[]']::jsonb[]",
    "ARRAY['\\x0102', '', NULL]::bytea[]",
    "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL]::uuid[]",
    "ARRAY['2000-01-01', '0044-03-15 BC', 'infinity', '-infinity']::date[]",
    "ARRAY['00:00:00', '24:00:00', '12:34:56.5']::time[]",
    "ARRAY['12:34:56.789+05:30', '00:00:00-08']::timetz[]",
    "ARRAY['2000-01-01 00:00:00', '0001-12-31 23:59:59 BC', 'infinity']::timestamp[]",
    "ARRAY['2000-01-01 00:00:00.25+00', '-infinity']::timestamptz[]",
    "ARRAY['1 year 2 mons', '-1 days +02:03:00', '00:00:00', NULL]::interval[]",
    "ARRAY['16/B374D848', '0/0']::pg_lsn[]",
    "ARRAY['192.168.0.1/24', '::1']::inet[]",
    "ARRAY['10.0.0.0/8', '2001:db8::/32']::cidr[]",
    "ARRAY['08:00:2b:01:02:03']::macaddr[]",
    "ARRAY['08:00:2b:01:02:03:04:05']::macaddr8[]",
    "'[0:0][1:2]={{\"2000-01-01 00:00:00+00\",NULL}}'::timestamptz[]",
]

#: (time zone, expression): timestamptz and timestamptz[] printed with non-UTC offsets,
#: including local mean time offsets with seconds and BC dates.
IN_ZONES = [
    ("Asia/Kolkata", "'2000-01-01 00:00:00+00'::timestamptz"),
    ("Asia/Kathmandu", "'2020-06-01 12:00:00.5+00'::timestamptz"),
    ("America/Los_Angeles", "'2000-01-01 00:00:00+00'::timestamptz"),
    ("America/St_Johns", "'2000-01-01 00:00:00+00'::timestamptz"),
    ("Europe/Amsterdam", "'1900-01-01 00:00:00+00'::timestamptz"),
    ("America/Los_Angeles", "'0100-01-01 00:00:00+00 BC'::timestamptz"),
    ("Asia/Kolkata", "'294276-12-31 00:00:00+00'::timestamptz"),
    # The local date lies outside the range of dates; the instant is within that of timestamps.
    ("Asia/Kolkata", "'294276-12-31 23:59:59.999999+00'::timestamptz"),
    ("America/Los_Angeles", "'4714-11-24 00:00:00+00 BC'::timestamptz"),
    ("Asia/Kolkata", "ARRAY['2000-01-01 00:00:00+00']::timestamptz[]"),
]


def escape(text: str) -> str:
    """The text with ``%``, ``|`` and control characters as ``%XX`` (see the module doc)."""
    out = []
    for ch in text:
        if ch in "%|" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def check_float(oid: int, text: str, send_hex: str) -> None:
    """The shortest text of a float must parse to exactly the bits the server sends."""
    fmt = {FLOAT4: ">f", FLOAT8: ">d"}.get(oid)
    if fmt is None:
        return
    parsed = struct.pack(fmt, float(text)).hex()
    if parsed != send_hex:
        raise SystemExit(f"float {text!r}: parses to {parsed}, server sends {send_hex}")


async def record_one(conn: pgoxide.Connection, expression: str) -> tuple[int, str, str]:
    """(oid, text output, send output in hex) of one expression."""
    row = await conn.fetchrow(
        f"SELECT t.oid::int8, t.typoutput::text, t.typsend::text "
        f"FROM pg_type t WHERE t.oid = pg_typeof({expression})"
    )
    oid, output_fn, send_fn = row[0], row[1], row[2]
    # The output function itself, not a cast to text: bool::text says "true" where boolout
    # says "t", and bpchar::text drops the padding.
    row = await conn.fetchrow(
        f"SELECT textin({output_fn}({expression})), encode({send_fn}({expression}), 'hex')"
    )
    return int(oid), row[0], row[1]


async def record(cluster: Cluster) -> tuple[str, list[str]]:
    conn = await pgoxide.connect(cluster.dsn())
    try:
        version = await conn.fetchval("SHOW server_version")
        for name, value in SESSION_SETTINGS.items():
            await conn.execute(f"SET {name} = '{value}'")
        cases = [(None, e) for e in SCALARS + ARRAYS] + IN_ZONES
        lines = []
        for zone, expression in cases:
            await conn.execute(f"SET TimeZone = '{zone or SESSION_SETTINGS['TimeZone']}'")
            try:
                oid, text, send_hex = await record_one(conn, expression)
            except pgoxide.PostgresError as e:
                raise SystemExit(f"{expression}: {e}") from e
            check_float(oid, text, send_hex)
            label = f"[TimeZone={zone}] {expression}" if zone else expression
            lines.append(f"{oid}|{send_hex}|{escape(text)}|{label}")
        return version, lines
    finally:
        await conn.close()


def main() -> None:
    with Cluster() as cluster:
        version, lines = asyncio.run(record(cluster))
        major = cluster.version[0]
    settings = ", ".join(f"{k}={v}" for k, v in SESSION_SETTINGS.items())
    header = [
        f"# Text output and binary send output of builtin types, recorded from PostgreSQL "
        f"{version} by tools/record_text_vectors.py.",
        f"# Session settings: {settings}.",
        "# Format: oid|send hex|text|expression. The text is the output function's result with",
        "# '%', '|' and control characters written as %XX; the send hex is",
        "# encode(<typsend>(expression), 'hex'). [TimeZone=Z] marks a case recorded in zone Z.",
    ]
    path = OUT_DIR / f"text_pg{major}.txt"
    path.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(f"{path}: {len(lines)} vectors", file=sys.stderr)


if __name__ == "__main__":
    main()
