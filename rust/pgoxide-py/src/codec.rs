//! The per-column and per-parameter codec of a statement, resolved once from the type OID, the
//! builtin catalogue and the connection's registry.

use std::sync::Arc;

use pgoxide_proto::types::{self, Builtin, Oid, FIRST_UNPINNED_OID};
use pyo3::prelude::*;

use crate::record::RecordDesc;
use crate::registry::{ExchangeFormat, Registry, TypeKind, UserCodec};

/// How values of one type travel. Every variant but `Text` (and a user codec exchanging text)
/// uses the binary format.
#[derive(Debug, Clone)]
pub enum Codec {
    Scalar(Builtin),
    /// Text format: the value as `str`. Types without a binary codec travel this way, and so
    /// does a container whose elements cannot travel in binary.
    Text,
    Array(Box<Codec>, Oid),
    Composite(Arc<Composite>),
    /// The anonymous `record` type: field types are named only in the data, so they are
    /// resolved at decode time against a snapshot of the registry.
    Record(Arc<Registry>),
    Range(Box<Codec>, Oid),
    Multirange(Box<Codec>, Oid),
    Hstore,
    /// A user codec, and the type's own codec beneath it (for `binary`/`tuple` exchange and
    /// for text-like types inside arrays).
    User(Arc<UserCodec>, Box<Codec>),
}

/// A composite type's fields and the names its decoded records share.
#[derive(Debug)]
pub struct Composite {
    pub type_name: String,
    pub fields: Vec<(Oid, Codec)>,
    pub names: Vec<String>,
    pub desc: Py<RecordDesc>,
}

impl Codec {
    /// The format code this codec asks for: 0 text, 1 binary.
    pub fn format(&self) -> i16 {
        i16::from(self.binary())
    }

    /// Whether values travel in binary. A user codec exchanging text does too when the type's
    /// binary form is its text (enums, text-like types, json): then it also works inside
    /// arrays and composites, which are always binary.
    fn binary(&self) -> bool {
        match self {
            Codec::Text => false,
            Codec::User(user, inner) => user.format != ExchangeFormat::Text || inner.text_like(),
            _ => true,
        }
    }

    /// Whether values can sit inside a binary container (array, range, composite).
    fn nests_in_binary(&self) -> bool {
        self.binary()
    }

    /// Whether a value is itself a sequence (a tuple or list), so that inside an array only
    /// lists mark a further dimension.
    pub fn sequence_valued(&self) -> bool {
        match self {
            Codec::Composite(_) | Codec::Record(_) | Codec::Range(..) => true,
            Codec::Scalar(b) => matches!(
                b,
                Builtin::Point
                    | Builtin::Line
                    | Builtin::Lseg
                    | Builtin::Box
                    | Builtin::Path
                    | Builtin::Polygon
                    | Builtin::Circle
                    | Builtin::Tid
                    | Builtin::Snapshot
            ),
            Codec::User(user, inner) => {
                user.format == ExchangeFormat::Tuple || inner.sequence_valued()
            }
            _ => false,
        }
    }

    /// Types whose binary form is (a version byte plus) their text form.
    pub fn text_like(&self) -> bool {
        matches!(
            self,
            Codec::Scalar(
                Builtin::Text | Builtin::Char | Builtin::Json | Builtin::Jsonb | Builtin::Jsonpath
            )
        )
    }
}

/// Resolves codecs for a statement's types, collecting the OIDs the registry does not know
/// yet (they must be introspected before the statement can be built).
pub struct Resolver<'a> {
    pub registry: &'a Arc<Registry>,
    pub unknown: Vec<Oid>,
}

impl Resolver<'_> {
    pub fn new(registry: &Arc<Registry>) -> Resolver<'_> {
        Resolver {
            registry,
            unknown: Vec::new(),
        }
    }

    /// The codec for `oid`, with a user codec applied if one is registered.
    pub fn codec(&mut self, py: Python<'_>, oid: Oid) -> PyResult<Codec> {
        if let Some(user) = self.registry.user_codecs.get(&oid) {
            let inner = self.own_codec(py, oid)?;
            return Ok(Codec::User(user.clone(), Box::new(inner)));
        }
        self.own_codec(py, oid)
    }

    /// The codec for `oid` ignoring user codecs on `oid` itself.
    fn own_codec(&mut self, py: Python<'_>, oid: Oid) -> PyResult<Codec> {
        if let Some(b) = self.registry.builtin_formats.get(&oid) {
            return Ok(Codec::Scalar(*b));
        }
        if oid == types::RECORD {
            return Ok(Codec::Record(self.registry.clone()));
        }
        if let Some(b) = types::builtin(oid) {
            return Ok(Codec::Scalar(b));
        }
        if let Some(elem) = types::array_element(oid) {
            return self.array(py, elem);
        }
        if let Some(sub) = types::range_subtype(oid) {
            return self.container(py, sub, |c| Codec::Range(Box::new(c), sub));
        }
        if let Some(range) = types::multirange_range(oid) {
            return self.container(py, range, |c| Codec::Multirange(Box::new(c), range));
        }
        if oid < FIRST_UNPINNED_OID {
            // A builtin without a binary codec here (money, tsvector, reg*, ...).
            return Ok(Codec::Text);
        }
        let Some(info) = self.registry.types.get(&oid) else {
            self.unknown.push(oid);
            return Ok(Codec::Text);
        };
        match &info.kind {
            // An enum's binary form is its label.
            TypeKind::Enum => Ok(Codec::Scalar(Builtin::Text)),
            TypeKind::Domain { base } => self.codec(py, *base),
            TypeKind::Array { element } => self.array(py, *element),
            TypeKind::Range { subtype } => {
                let sub = *subtype;
                self.container(py, sub, |c| Codec::Range(Box::new(c), sub))
            }
            TypeKind::Multirange { range } => {
                let range = *range;
                self.container(py, range, |c| Codec::Multirange(Box::new(c), range))
            }
            TypeKind::Composite { fields } => {
                let fields = fields.clone();
                let type_name = format!("{}.{}", info.schema, info.name);
                let mut codecs = Vec::with_capacity(fields.len());
                for (_, field_oid) in &fields {
                    let c = self.codec(py, *field_oid)?;
                    if !c.nests_in_binary() {
                        return Ok(Codec::Text);
                    }
                    codecs.push((*field_oid, c));
                }
                let names: Vec<String> = fields.into_iter().map(|(n, _)| n).collect();
                let desc = RecordDesc::new(py, &names)?;
                Ok(Codec::Composite(Arc::new(Composite {
                    type_name,
                    fields: codecs,
                    names,
                    desc,
                })))
            }
            TypeKind::Base => Ok(match info.name.as_str() {
                "hstore" => Codec::Hstore,
                // citext travels as text in both formats.
                "citext" => Codec::Scalar(Builtin::Text),
                _ => Codec::Text,
            }),
        }
    }

    fn array(&mut self, py: Python<'_>, elem: Oid) -> PyResult<Codec> {
        self.container(py, elem, |c| Codec::Array(Box::new(c), elem))
    }

    /// A binary container of `inner`, or text when `inner` cannot nest in binary.
    fn container(
        &mut self,
        py: Python<'_>,
        inner: Oid,
        wrap: impl FnOnce(Codec) -> Codec,
    ) -> PyResult<Codec> {
        let c = self.codec(py, inner)?;
        Ok(if c.nests_in_binary() {
            wrap(c)
        } else {
            Codec::Text
        })
    }
}
