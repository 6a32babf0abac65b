//! What one connection knows about types beyond the builtin catalogue: non-builtin types
//! introspected from the server, and the codecs the user registered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pgoxide_proto::types::{self, Builtin, Oid};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::interface_error;

/// One row of `pgoxide.introspection.TYPES_QUERY`: oid, schema, name, typtype, element,
/// base type, range subtype, the range a multirange is of, attribute names and types.
pub type TypeRow = (
    Oid,
    String,
    String,
    String,
    Oid,
    Oid,
    Oid,
    Oid,
    Vec<String>,
    Vec<Oid>,
);

/// A non-builtin type, as introspection found it.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    pub schema: String,
    pub name: String,
    pub kind: TypeKind,
}

#[derive(Debug, Clone)]
pub enum TypeKind {
    Enum,
    Domain {
        base: Oid,
    },
    Composite {
        fields: Vec<(String, Oid)>,
    },
    Range {
        subtype: Oid,
    },
    Multirange {
        range: Oid,
    },
    Array {
        element: Oid,
    },
    /// A base type from an extension (hstore, citext, ...), known by name.
    Base,
}

/// What a user codec's callables exchange with the driver (asyncpg's `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeFormat {
    /// `str` in the type's text form (sent and received in text format).
    Text,
    /// `bytes` in the type's binary form.
    Binary,
    /// A type-specific tuple (composites, date/time types, interval).
    Tuple,
}

impl ExchangeFormat {
    /// The `format` argument of `set_type_codec`.
    pub fn parse(format: &str) -> PyResult<Self> {
        match format {
            "text" => Ok(Self::Text),
            "binary" => Ok(Self::Binary),
            "tuple" => Ok(Self::Tuple),
            other => Err(PyValueError::new_err(format!(
                "format must be 'text', 'binary' or 'tuple', not {other:?}"
            ))),
        }
    }
}

/// How a type declared wire-compatible with a builtin travels (`set_builtin_type_codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinAlias {
    /// In the builtin's binary format.
    Binary(Builtin),
    /// Only in the text format, read and written by the text codec of the builtin type
    /// `oid`, whose binary format is `Builtin` (`format='text'`).
    Text(Builtin, Oid),
}

/// A user codec: Python callables for one type.
#[derive(Debug)]
pub struct UserCodec {
    pub encoder: Py<PyAny>,
    pub decoder: Py<PyAny>,
    pub format: ExchangeFormat,
}

/// A connection's choices of value shapes, where asyncpg's shape is the default
/// (`connect(parse_json=, infinity=)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueOptions {
    /// json and jsonb as parsed Python objects instead of `str`.
    pub parse_json: bool,
    /// Infinite dates and timestamps raise instead of mapping to `date.max`/`datetime.max`.
    pub infinity_raises: bool,
}

/// The per-connection registry. Cloned cheaply (copy on write) into statements that decode
/// anonymous records, which name their field types only in the data.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub options: ValueOptions,
    pub types: HashMap<Oid, TypeInfo>,
    pub user_codecs: HashMap<Oid, Arc<UserCodec>>,
    /// `set_builtin_type_codec`: a type that travels as a builtin does.
    pub builtin_formats: HashMap<Oid, BuiltinAlias>,
    /// Types decoded by the hstore codec, as dicts (`set_builtin_type_codec(..,
    /// codec_name='pg_contrib.hstore')`); otherwise hstore is text, as in asyncpg.
    pub hstore_codecs: HashSet<Oid>,
}

impl Registry {
    /// Reads the rows of the introspection query (see `python/pgoxide/introspection.py`):
    /// `(oid, schema, name, typtype, element, base, range_subtype, multirange_of,
    /// attribute_names, attribute_types)`.
    pub fn add_types(&mut self, rows: Vec<TypeRow>) {
        for (oid, schema, name, typtype, element, base, subtype, multirange_of, anames, atypes) in
            rows
        {
            let kind = match typtype.as_str() {
                "e" => TypeKind::Enum,
                "d" => TypeKind::Domain { base },
                "c" => TypeKind::Composite {
                    fields: anames.into_iter().zip(atypes).collect(),
                },
                "r" => TypeKind::Range { subtype },
                "m" => TypeKind::Multirange {
                    range: multirange_of,
                },
                _ if element != 0 => TypeKind::Array { element },
                _ => TypeKind::Base,
            };
            self.types.insert(oid, TypeInfo { schema, name, kind });
        }
    }

    /// `(schema, name, kind)` of a type, from the builtin catalogue or the registry; kind is
    /// asyncpg's: scalar, array, composite, range, multirange, domain, enum.
    /// Named as asyncpg names types: an array by its element's name and `[]`, a domain as its
    /// base type.
    pub fn type_info(&self, oid: Oid) -> Option<(String, String, &'static str)> {
        if let Some(t) = pgoxide_proto::catalog::lookup(oid) {
            if t.element != 0 {
                if let Some((_, element, _)) = self.type_info(t.element) {
                    return Some(("pg_catalog".to_owned(), format!("{element}[]"), "array"));
                }
            }
            let kind = match (t.element, t.kind) {
                (e, _) if e != 0 => "array",
                (_, b'c') => "composite",
                (_, b'r') => "range",
                (_, b'm') => "multirange",
                _ => "scalar",
            };
            return Some(("pg_catalog".to_owned(), t.name.to_owned(), kind));
        }
        let info = self.types.get(&oid)?;
        match info.kind {
            TypeKind::Domain { base } if base != oid => return self.type_info(base),
            TypeKind::Array { element } if element != oid => {
                if let Some((_, name, _)) = self.type_info(element) {
                    return Some((info.schema.clone(), format!("{name}[]"), "array"));
                }
            }
            _ => {}
        }
        let kind = match info.kind {
            TypeKind::Enum => "enum",
            TypeKind::Domain { .. } => "domain",
            TypeKind::Composite { .. } => "composite",
            TypeKind::Range { .. } => "range",
            TypeKind::Multirange { .. } => "multirange",
            TypeKind::Array { .. } => "array",
            TypeKind::Base => "scalar",
        };
        Some((info.schema.clone(), info.name.clone(), kind))
    }

    /// Registers a user codec for `oid` (asyncpg's `set_type_codec`).
    pub fn set_user_codec(&mut self, oid: Oid, codec: UserCodec) {
        self.builtin_formats.remove(&oid);
        self.hstore_codecs.remove(&oid);
        self.user_codecs.insert(oid, Arc::new(codec));
    }

    /// Makes `oid` travel as a builtin does (see [`builtin_format`]); `None`: as hstore
    /// (asyncpg's `set_builtin_type_codec`).
    pub fn set_builtin_format(&mut self, oid: Oid, format: Option<BuiltinAlias>) {
        self.user_codecs.remove(&oid);
        if let Some(b) = format {
            self.hstore_codecs.remove(&oid);
            self.builtin_formats.insert(oid, b);
        } else {
            self.builtin_formats.remove(&oid);
            self.hstore_codecs.insert(oid);
        }
    }

    /// Removes a user or builtin codec set for `oid` (asyncpg's `reset_type_codec`).
    pub fn reset_codec(&mut self, oid: Oid) {
        self.user_codecs.remove(&oid);
        self.builtin_formats.remove(&oid);
        self.hstore_codecs.remove(&oid);
    }
}

/// How a type aliased to the builtin codec named `builtin_name` (`int4`, `pg_catalog.text`,
/// ...) travels: in its binary format, or with `text` in its text format; `None` for hstore,
/// which is not a builtin type but has a (binary) codec of its own.
pub fn builtin_format(
    py: Python<'_>,
    builtin_name: &str,
    text: bool,
) -> PyResult<Option<BuiltinAlias>> {
    let no_codec = |format: &str| {
        interface_error(py, format!("there is no {format} codec for {builtin_name}"))
    };
    if matches!(builtin_name, "hstore" | "pg_contrib.hstore") {
        return if text {
            Err(no_codec("text"))
        } else {
            Ok(None)
        };
    }
    let name = builtin_name.trim_start_matches("pg_catalog.");
    let Some(t) = pgoxide_proto::catalog::CATALOG
        .iter()
        .find(|t| t.name == name)
    else {
        return Err(PyValueError::new_err(format!(
            "{builtin_name:?} is not a builtin codec"
        )));
    };
    let builtin = types::builtin(t.oid);
    if !text {
        return builtin
            .map(|b| Some(BuiltinAlias::Binary(b)))
            .ok_or_else(|| no_codec("binary"));
    }
    match builtin {
        Some(b) if has_text_codec(b) => Ok(Some(BuiltinAlias::Text(b, t.oid))),
        // A type with only a text form (money, the reg* types, ...): its text, as `str`.
        None if t.kind == b'b' && t.element == 0 => {
            Ok(Some(BuiltinAlias::Text(Builtin::Text, types::TEXT)))
        }
        _ => Err(no_codec("text")),
    }
}

/// The builtins whose text form pgoxide reads and writes itself (see `Codec::BuiltinText`).
fn has_text_codec(b: Builtin) -> bool {
    matches!(
        b,
        Builtin::Text
            | Builtin::Numeric
            | Builtin::Bool
            | Builtin::Int2
            | Builtin::Int4
            | Builtin::Int8
            | Builtin::Oid
            | Builtin::Float4
            | Builtin::Float8
    )
}
