//! The per-column and per-parameter codec of a statement, chosen once from the type OID.

use pgoxide_proto::types::{self, Builtin, Oid};

/// How values of one type travel: a builtin binary format, or an array of them. Types without
/// a binary codec travel as text, which is what `Scalar(Builtin::Text)` with format code 0
/// does both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    Scalar(Builtin),
    Array(Box<Codec>, Oid),
}

/// The codec of types received and sent as text.
pub const TEXT: Codec = Codec::Scalar(Builtin::Text);

impl Codec {
    /// The binary codec of a type, `None` when it must travel as text.
    pub fn for_type(oid: Oid) -> Option<Self> {
        if let Some(b) = types::builtin(oid) {
            return Some(Self::Scalar(b));
        }
        let elem = types::array_element(oid)?;
        Some(Self::Array(Box::new(Self::for_type(elem)?), elem))
    }

    /// The codec for `oid` and its format code: binary when it has one, else text.
    pub fn with_format(oid: Oid) -> (Self, i16) {
        Self::for_type(oid).map_or((TEXT, 0), |c| (c, 1))
    }
}
