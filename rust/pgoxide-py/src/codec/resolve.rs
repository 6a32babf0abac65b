//! Choosing a statement's codecs: from the type OID, the builtin catalogue and the
//! connection's registry, once per statement.

use std::sync::Arc;

use pgoxide_proto::types::{self, Builtin, Oid, FIRST_UNPINNED_OID};
use pyo3::prelude::*;

use super::{Codec, Composite};
use crate::record::RecordDesc;
use crate::registry::{BuiltinAlias, Registry, TypeKind};

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
            let inner = match self.own_codec(py, oid)? {
                // The user's codec decodes the text; the type's own codec is the plain one.
                Codec::ParsedJson(b) => Codec::Scalar(b),
                inner => inner,
            };
            return Ok(Codec::User(user.clone(), Box::new(inner)));
        }
        let own = self.own_codec(py, oid)?;
        Ok(self.with_value_options(own))
    }

    /// The connection's value options applied to a builtin's codec (a user codec's own codec
    /// beneath it exchanges raw values, which no option changes).
    fn with_value_options(&self, codec: Codec) -> Codec {
        match codec {
            Codec::Scalar(
                b @ (Builtin::Date | Builtin::Timestamp | Builtin::TimestampTz | Builtin::Interval),
            ) if self.registry.options.infinity_raises => Codec::Finite(b),
            other => other,
        }
    }

    /// The codec for `oid` ignoring user codecs on `oid` itself.
    fn own_codec(&mut self, py: Python<'_>, oid: Oid) -> PyResult<Codec> {
        match self.registry.builtin_formats.get(&oid) {
            Some(BuiltinAlias::Binary(b)) => return Ok(self.scalar(*b)),
            Some(BuiltinAlias::Text(Builtin::Text, _)) => return Ok(Codec::Text),
            Some(BuiltinAlias::Text(b, builtin_oid)) => {
                return Ok(Codec::BuiltinText(*b, *builtin_oid))
            }
            None => {}
        }
        if self.registry.hstore_codecs.contains(&oid) {
            return Ok(Codec::Hstore);
        }
        if oid == types::RECORD {
            return Ok(Codec::Record(self.registry.clone()));
        }
        if oid == types::VOID {
            return Ok(Codec::Void);
        }
        if let Some(b) = types::builtin(oid) {
            return Ok(self.scalar(b));
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
            // hstore too (a str, as asyncpg gives it, unless its `pg_contrib.hstore` codec is
            // chosen: see above).
            TypeKind::Base => Ok(match info.name.as_str() {
                // citext travels as text in both formats.
                "citext" => Codec::Scalar(Builtin::Text),
                _ => Codec::Text,
            }),
        }
    }

    /// A builtin binary format's codec, in the shape the connection's options choose.
    fn scalar(&self, b: Builtin) -> Codec {
        match b {
            Builtin::Json | Builtin::Jsonb if self.registry.options.parse_json => {
                Codec::ParsedJson(b)
            }
            _ => Codec::Scalar(b),
        }
    }

    /// A binary array of `elem`, or, when its elements have only a text codec, an array in
    /// the text format whose elements go through that codec as text.
    fn array(&mut self, py: Python<'_>, elem: Oid) -> PyResult<Codec> {
        let c = self.codec(py, elem)?;
        Ok(if c.nests_in_binary() {
            Codec::Array(Box::new(c), elem)
        } else if c.decodes_text() {
            Codec::TextArray(Box::new(c), elem)
        } else {
            Codec::Text
        })
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
