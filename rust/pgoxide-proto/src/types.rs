//! Builtin types: the OIDs we name, the binary format of each, and their relations (array
//! element, range subtype) from the generated catalogue.

use crate::catalog;

pub type Oid = u32;

/// OIDs at or above this are assigned at initdb time or later (information_schema, extensions,
/// user types) and differ between databases: they must be looked up on the server.
pub const FIRST_UNPINNED_OID: Oid = 10_000;

pub const BOOL: Oid = 16;
pub const BYTEA: Oid = 17;
pub const CHAR: Oid = 18;
pub const NAME: Oid = 19;
pub const INT8: Oid = 20;
pub const INT2: Oid = 21;
pub const INT4: Oid = 23;
pub const TEXT: Oid = 25;
pub const OID: Oid = 26;
pub const TID: Oid = 27;
pub const XID: Oid = 28;
pub const CID: Oid = 29;
pub const JSON: Oid = 114;
pub const XML: Oid = 142;
pub const RECORD: Oid = 2249;
pub const VOID: Oid = 2278;
pub const POINT: Oid = 600;
pub const LSEG: Oid = 601;
pub const PATH: Oid = 602;
pub const BOX: Oid = 603;
pub const POLYGON: Oid = 604;
pub const LINE: Oid = 628;
pub const CIDR: Oid = 650;
pub const FLOAT4: Oid = 700;
pub const FLOAT8: Oid = 701;
pub const UNKNOWN: Oid = 705;
pub const CIRCLE: Oid = 718;
pub const MACADDR8: Oid = 774;
pub const MACADDR: Oid = 829;
pub const INET: Oid = 869;
pub const BPCHAR: Oid = 1042;
pub const VARCHAR: Oid = 1043;
pub const DATE: Oid = 1082;
pub const TIME: Oid = 1083;
pub const TIMESTAMP: Oid = 1114;
pub const TIMESTAMPTZ: Oid = 1184;
pub const INTERVAL: Oid = 1186;
pub const TIMETZ: Oid = 1266;
pub const BIT: Oid = 1560;
pub const VARBIT: Oid = 1562;
pub const NUMERIC: Oid = 1700;
pub const UUID: Oid = 2950;
pub const TXID_SNAPSHOT: Oid = 2970;
pub const PG_LSN: Oid = 3220;
pub const JSONB: Oid = 3802;
pub const JSONPATH: Oid = 4072;
pub const PG_SNAPSHOT: Oid = 5038;
pub const XID8: Oid = 5069;

/// The builtin types with a binary codec, by wire format. Several types share one format:
/// `Text` covers text, varchar, bpchar, name, xml and unknown; `Inet` covers inet and cidr;
/// `Bits` covers bit and varbit; `Snapshot` covers pg_snapshot and txid_snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Bool,
    Int2,
    Int4,
    Int8,
    /// oid, xid, cid (unsigned 32-bit).
    Oid,
    /// xid8 (unsigned 64-bit).
    Xid8,
    Float4,
    Float8,
    Numeric,
    Text,
    /// `"char"`: one byte.
    Char,
    Bytea,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Jsonb,
    Jsonpath,
    Inet,
    Cidr,
    MacAddr,
    MacAddr8,
    Bits,
    Point,
    Line,
    Lseg,
    Box,
    Path,
    Polygon,
    Circle,
    Tid,
    PgLsn,
    Snapshot,
}

/// The binary format of a builtin scalar type, `None` for every other type (arrays included).
pub fn builtin(oid: Oid) -> Option<Builtin> {
    Some(match oid {
        BOOL => Builtin::Bool,
        INT2 => Builtin::Int2,
        INT4 => Builtin::Int4,
        INT8 => Builtin::Int8,
        OID | XID | CID => Builtin::Oid,
        XID8 => Builtin::Xid8,
        FLOAT4 => Builtin::Float4,
        FLOAT8 => Builtin::Float8,
        NUMERIC => Builtin::Numeric,
        TEXT | VARCHAR | BPCHAR | NAME | XML | UNKNOWN => Builtin::Text,
        CHAR => Builtin::Char,
        BYTEA => Builtin::Bytea,
        DATE => Builtin::Date,
        TIME => Builtin::Time,
        TIMETZ => Builtin::TimeTz,
        TIMESTAMP => Builtin::Timestamp,
        TIMESTAMPTZ => Builtin::TimestampTz,
        INTERVAL => Builtin::Interval,
        UUID => Builtin::Uuid,
        JSON => Builtin::Json,
        JSONB => Builtin::Jsonb,
        JSONPATH => Builtin::Jsonpath,
        INET => Builtin::Inet,
        CIDR => Builtin::Cidr,
        MACADDR => Builtin::MacAddr,
        MACADDR8 => Builtin::MacAddr8,
        BIT | VARBIT => Builtin::Bits,
        POINT => Builtin::Point,
        LINE => Builtin::Line,
        LSEG => Builtin::Lseg,
        BOX => Builtin::Box,
        PATH => Builtin::Path,
        POLYGON => Builtin::Polygon,
        CIRCLE => Builtin::Circle,
        TID => Builtin::Tid,
        PG_LSN => Builtin::PgLsn,
        TXID_SNAPSHOT | PG_SNAPSHOT => Builtin::Snapshot,
        _ => return None,
    })
}

/// The builtin format a type name stands for, for `set_builtin_type_codec`.
pub fn builtin_by_name(name: &str) -> Option<(Oid, Builtin)> {
    let t = catalog::CATALOG.iter().find(|t| t.name == name)?;
    builtin(t.oid).map(|b| (t.oid, b))
}

/// The element type of a builtin array type.
pub fn array_element(array: Oid) -> Option<Oid> {
    catalog::lookup(array)
        .map(|t| t.element)
        .filter(|&e| e != 0)
}

/// The subtype of a builtin range type.
pub fn range_subtype(range: Oid) -> Option<Oid> {
    catalog::lookup(range)
        .map(|t| t.range_subtype)
        .filter(|&s| s != 0)
}

/// The range type of a builtin multirange type.
pub fn multirange_range(multirange: Oid) -> Option<Oid> {
    catalog::lookup(multirange)
        .map(|t| t.multirange_of)
        .filter(|&r| r != 0)
}

/// SQL name of a builtin type, for messages: `int4`, `int4[]`.
pub fn name(oid: Oid) -> Option<String> {
    let t = catalog::lookup(oid)?;
    if t.element != 0 {
        return Some(format!("{}[]", name(t.element)?));
    }
    Some(if oid == CHAR {
        "\"char\"".to_owned()
    } else {
        t.name.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_relations() {
        assert_eq!(array_element(1007), Some(INT4));
        assert_eq!(array_element(INT4), None);
        assert_eq!(
            array_element(POINT),
            None,
            "fixed-size types are not arrays"
        );
        assert_eq!(
            array_element(22),
            Some(INT2),
            "int2vector travels as an array"
        );
        assert_eq!(range_subtype(3904), Some(INT4));
        assert_eq!(multirange_range(4451), Some(3904));
        assert_eq!(name(1007).as_deref(), Some("int4[]"));
        assert_eq!(name(CHAR).as_deref(), Some("\"char\""));
        assert_eq!(name(99_999), None);
    }

    #[test]
    fn every_builtin_format_has_a_catalogue_entry() {
        for t in catalog::CATALOG {
            if let Some(b) = builtin(t.oid) {
                assert_eq!(
                    builtin_by_name(t.name).map(|(_, f)| f),
                    Some(b),
                    "{}",
                    t.name
                );
            }
        }
        assert_eq!(builtin_by_name("int4"), Some((INT4, Builtin::Int4)));
        assert_eq!(builtin_by_name("no_such_type"), None);
    }
}
