//! A prepared statement with its per-statement codec tables, built once when it is described.

use pgoxide_proto::backend::Column;
use pgoxide_proto::types;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::codec::Codec;
use crate::record::RecordDesc;

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
    pub columns: Vec<Column>,
    pub column_codecs: Vec<Codec>,
    pub result_formats: Vec<i16>,
    pub desc: Py<RecordDesc>,
}

/// The protocol's compact form of format codes: none (all text), one for all, or one each.
fn compact(mut formats: Vec<i16>) -> Vec<i16> {
    if formats.windows(2).all(|w| w[0] == w[1]) {
        formats.truncate(1);
    }
    formats
}

impl Statement {
    pub fn new(
        py: Python<'_>,
        name: String,
        query: String,
        param_oids: Vec<u32>,
        columns: Vec<Column>,
    ) -> PyResult<Self> {
        let (param_codecs, param_formats): (Vec<Codec>, Vec<i16>) = param_oids
            .iter()
            .map(|&oid| Codec::with_format(oid))
            .unzip();
        let (column_codecs, result_formats): (Vec<Codec>, Vec<i16>) = columns
            .iter()
            .map(|c| Codec::with_format(c.type_oid))
            .unzip();
        let (param_formats, result_formats) = (compact(param_formats), compact(result_formats));
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        Ok(Self {
            name,
            query,
            param_oids,
            param_codecs,
            param_formats,
            desc: RecordDesc::new(py, &names)?,
            columns,
            column_codecs,
            result_formats,
        })
    }

    pub fn type_name(oid: u32) -> String {
        types::name(oid).map_or_else(|| format!("type with OID {oid}"), str::to_owned)
    }
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

    fn __repr__(&self) -> String {
        format!("<Statement {:?} {:?}>", self.name, self.query)
    }
}
