//! Builtin type OIDs (from PostgreSQL's `pg_type.dat`) and the array-to-element map.

pub type Oid = u32;

pub const BOOL: Oid = 16;
pub const BYTEA: Oid = 17;
pub const CHAR: Oid = 18;
pub const NAME: Oid = 19;
pub const INT8: Oid = 20;
pub const INT2: Oid = 21;
pub const INT4: Oid = 23;
pub const TEXT: Oid = 25;
pub const OID: Oid = 26;
pub const JSON: Oid = 114;
pub const FLOAT4: Oid = 700;
pub const FLOAT8: Oid = 701;
pub const UNKNOWN: Oid = 705;
pub const BPCHAR: Oid = 1042;
pub const VARCHAR: Oid = 1043;
pub const DATE: Oid = 1082;
pub const TIME: Oid = 1083;
pub const TIMESTAMP: Oid = 1114;
pub const TIMESTAMPTZ: Oid = 1184;
pub const INTERVAL: Oid = 1186;
pub const TIMETZ: Oid = 1266;
pub const NUMERIC: Oid = 1700;
pub const UUID: Oid = 2950;
pub const JSONB: Oid = 3802;

/// The builtin types with a binary codec, by wire format. Several types share one format:
/// `Text` covers text, varchar, bpchar, name, json and unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
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
    Jsonb,
}

/// The binary format of a builtin scalar type, `None` for every other type (arrays included).
pub fn builtin(oid: Oid) -> Option<Builtin> {
    Some(match oid {
        BOOL => Builtin::Bool,
        INT2 => Builtin::Int2,
        INT4 => Builtin::Int4,
        INT8 => Builtin::Int8,
        OID => Builtin::Oid,
        FLOAT4 => Builtin::Float4,
        FLOAT8 => Builtin::Float8,
        NUMERIC => Builtin::Numeric,
        TEXT | VARCHAR | BPCHAR | NAME | JSON | UNKNOWN => Builtin::Text,
        CHAR => Builtin::Char,
        BYTEA => Builtin::Bytea,
        DATE => Builtin::Date,
        TIME => Builtin::Time,
        TIMETZ => Builtin::TimeTz,
        TIMESTAMP => Builtin::Timestamp,
        TIMESTAMPTZ => Builtin::TimestampTz,
        INTERVAL => Builtin::Interval,
        UUID => Builtin::Uuid,
        JSONB => Builtin::Jsonb,
        _ => return None,
    })
}

/// `(array type, element type)` for the builtin arrays we encode and decode.
pub const ARRAYS: &[(Oid, Oid)] = &[
    (1000, BOOL),
    (1001, BYTEA),
    (1002, CHAR),
    (1003, NAME),
    (1005, INT2),
    (1007, INT4),
    (1009, TEXT),
    (1014, BPCHAR),
    (1015, VARCHAR),
    (1016, INT8),
    (1021, FLOAT4),
    (1022, FLOAT8),
    (1028, OID),
    (1115, TIMESTAMP),
    (1182, DATE),
    (1183, TIME),
    (1185, TIMESTAMPTZ),
    (1187, INTERVAL),
    (1231, NUMERIC),
    (1270, TIMETZ),
    (199, JSON),
    (2951, UUID),
    (3807, JSONB),
];

/// The element type of a builtin array type.
pub fn array_element(array: Oid) -> Option<Oid> {
    ARRAYS.iter().find(|(a, _)| *a == array).map(|(_, e)| *e)
}

/// The array type whose elements are `element`.
pub fn array_of(element: Oid) -> Option<Oid> {
    ARRAYS.iter().find(|(_, e)| *e == element).map(|(a, _)| *a)
}

/// SQL name of a builtin type, for error messages.
pub fn name(oid: Oid) -> Option<&'static str> {
    Some(match oid {
        BOOL => "bool",
        BYTEA => "bytea",
        CHAR => "\"char\"",
        NAME => "name",
        INT8 => "int8",
        INT2 => "int2",
        INT4 => "int4",
        TEXT => "text",
        OID => "oid",
        JSON => "json",
        FLOAT4 => "float4",
        FLOAT8 => "float8",
        UNKNOWN => "unknown",
        BPCHAR => "bpchar",
        VARCHAR => "varchar",
        DATE => "date",
        TIME => "time",
        TIMESTAMP => "timestamp",
        TIMESTAMPTZ => "timestamptz",
        INTERVAL => "interval",
        TIMETZ => "timetz",
        NUMERIC => "numeric",
        UUID => "uuid",
        JSONB => "jsonb",
        _ => {
            let elem = array_element(oid)?;
            return ARRAY_NAMES
                .iter()
                .find(|(e, _)| *e == elem)
                .map(|(_, n)| *n);
        }
    })
}

const ARRAY_NAMES: &[(Oid, &str)] = &[
    (BOOL, "bool[]"),
    (BYTEA, "bytea[]"),
    (CHAR, "\"char\"[]"),
    (NAME, "name[]"),
    (INT2, "int2[]"),
    (INT4, "int4[]"),
    (TEXT, "text[]"),
    (BPCHAR, "bpchar[]"),
    (VARCHAR, "varchar[]"),
    (INT8, "int8[]"),
    (FLOAT4, "float4[]"),
    (FLOAT8, "float8[]"),
    (OID, "oid[]"),
    (TIMESTAMP, "timestamp[]"),
    (DATE, "date[]"),
    (TIME, "time[]"),
    (TIMESTAMPTZ, "timestamptz[]"),
    (INTERVAL, "interval[]"),
    (NUMERIC, "numeric[]"),
    (TIMETZ, "timetz[]"),
    (JSON, "json[]"),
    (UUID, "uuid[]"),
    (JSONB, "jsonb[]"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_array_element_has_a_binary_format() {
        for (_, e) in ARRAYS {
            assert!(builtin(*e).is_some(), "{e}");
        }
        assert_eq!(builtin(1007), None);
    }

    #[test]
    fn arrays_map_both_ways() {
        for (a, e) in ARRAYS {
            assert_eq!(array_element(*a), Some(*e));
            assert_eq!(array_of(*e), Some(*a));
            assert!(name(*a).is_some_and(|n| n.ends_with("[]")));
            assert!(name(*e).is_some());
        }
    }
}
