//! A prepared statement with its per-statement codec tables, built once when it is described.

use std::sync::Arc;

use pgoxide_proto::backend::Column;
use pgoxide_proto::effects;
use pgoxide_proto::types::{self, Oid};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::codec::{Codec, Resolver};
use crate::record::RecordDesc;
use crate::registry::{Registry, TypeInfo, TypeKind};

#[pyclass(frozen, module = "pgoxide._pgoxide")]
pub struct Statement {
    /// Server-side name; empty for the unnamed statement.
    #[pyo3(get)]
    pub name: String,
    #[pyo3(get)]
    pub query: String,
    pub param_oids: Vec<u32>,
    pub param_codecs: Vec<Codec>,
    pub param_formats: Vec<i16>,
    /// Readable type names for messages (`int4`, `tx.mood[]`).
    pub param_type_names: Vec<String>,
    pub columns: Vec<Column>,
    pub column_codecs: Vec<Codec>,
    pub result_formats: Vec<i16>,
    pub column_type_names: Vec<String>,
    pub desc: Py<RecordDesc>,
    /// What executing it may change in the session (`pgoxide_proto::effects`).
    pub effects: u8,
}

/// The protocol's compact form of format codes: none (all text), one for all, or one each.
fn compact(mut formats: Vec<i16>) -> Vec<i16> {
    if formats.windows(2).all(|w| w[0] == w[1]) {
        formats.truncate(1);
    }
    formats
}

impl Statement {
    /// Chooses the codecs for a described statement. `Err` carries the type OIDs that must be
    /// introspected first; with `unknown_as_text` they travel as text instead.
    pub fn build(
        py: Python<'_>,
        described: &Described,
        registry: &Arc<Registry>,
        unknown_as_text: bool,
    ) -> PyResult<Result<Self, Vec<Oid>>> {
        let mut resolver = Resolver::new(registry);
        let param_codecs = described
            .param_oids
            .iter()
            .map(|&oid| resolver.codec(py, oid))
            .collect::<PyResult<Vec<_>>>()?;
        let column_codecs = described
            .columns
            .iter()
            .map(|c| resolver.codec(py, c.type_oid))
            .collect::<PyResult<Vec<_>>>()?;
        if !resolver.unknown.is_empty() && !unknown_as_text {
            return Ok(Err(resolver.unknown));
        }
        let param_formats = compact(param_codecs.iter().map(Codec::format).collect());
        let result_formats = compact(column_codecs.iter().map(Codec::format).collect());
        let names: Vec<String> = described.columns.iter().map(|c| c.name.clone()).collect();
        let name_of = |oid: Oid| type_name(registry, oid);
        Ok(Ok(Self {
            param_type_names: described.param_oids.iter().map(|&o| name_of(o)).collect(),
            column_type_names: described
                .columns
                .iter()
                .map(|c| name_of(c.type_oid))
                .collect(),
            name: described.name.clone(),
            query: described.query.clone(),
            param_oids: described.param_oids.clone(),
            param_codecs,
            param_formats,
            columns: described.columns.clone(),
            column_codecs,
            result_formats,
            desc: RecordDesc::new(py, &names)?,
            effects: effects::session_effects(&described.query),
        }))
    }
}

/// A readable name for a type: the builtin's, or `schema.name` of an introspected one (with
/// `[]` for arrays).
pub fn type_name(registry: &Registry, oid: Oid) -> String {
    if let Some(name) = types::name(oid) {
        return name;
    }
    match registry.types.get(&oid) {
        Some(TypeInfo {
            kind: TypeKind::Array { element },
            ..
        }) => format!("{}[]", type_name(registry, *element)),
        Some(info) => format!("{}.{}", info.schema, info.name),
        None => format!("type with OID {oid}"),
    }
}

impl Statement {
    /// Whether this statement's columns travel in the same formats as `other`'s (so rows a
    /// Bind requested for `other` can be decoded with this one's codecs).
    pub fn result_formats_match(&self, other: &Statement) -> bool {
        let per_column = |s: &Statement| -> Vec<i16> {
            match s.result_formats.as_slice() {
                [one] => vec![*one; s.column_codecs.len()],
                many => many.to_vec(),
            }
        };
        self.column_codecs.len() == other.column_codecs.len()
            && per_column(self) == per_column(other)
    }
}

/// What the server said about a statement (Parse + Describe), before codecs are chosen.
#[pyclass(frozen, module = "pgoxide._pgoxide")]
pub struct Described {
    #[pyo3(get)]
    pub name: String,
    #[pyo3(get)]
    pub query: String,
    pub param_oids: Vec<Oid>,
    pub columns: Vec<Column>,
}

#[pymethods]
impl Statement {
    /// Parameter type OIDs, as the server inferred them.
    #[getter]
    fn param_types<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.param_oids)
    }

    /// `(name, type_oid, table_oid, column_number, type_modifier)` for each result column.
    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.columns.iter().map(|c| {
                (
                    c.name.as_str(),
                    c.type_oid,
                    c.table_oid,
                    c.column_id,
                    c.type_modifier,
                )
            }),
        )
    }

    /// The names of the columns whose type travels as text (it has only a text codec): a
    /// binary COPY of them is impossible.
    #[getter]
    fn text_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .zip(&self.column_codecs)
            .filter(|(_, codec)| codec.format() == 0)
            .map(|(c, _)| c.name.as_str())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("<Statement {:?} {:?}>", self.name, self.query)
    }
}
