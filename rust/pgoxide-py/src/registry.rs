//! What one connection knows about types beyond the builtin catalogue: non-builtin types
//! introspected from the server, and the codecs the user registered.

use std::collections::HashMap;
use std::sync::Arc;

use pgoxide_proto::types::{Builtin, Oid};
use pyo3::prelude::*;

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

/// A user codec: Python callables for one type.
#[derive(Debug)]
pub struct UserCodec {
    pub encoder: Py<PyAny>,
    pub decoder: Py<PyAny>,
    pub format: ExchangeFormat,
}

/// The per-connection registry. Cloned cheaply (copy on write) into statements that decode
/// anonymous records, which name their field types only in the data.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub types: HashMap<Oid, TypeInfo>,
    pub user_codecs: HashMap<Oid, Arc<UserCodec>>,
    /// `set_builtin_type_codec`: a type that travels in a builtin's binary format.
    pub builtin_formats: HashMap<Oid, Builtin>,
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
}
