//! Logical replication in the binding: the stream's messages as Python objects, pgoutput
//! decoded against a relation cache with the connection's type codecs, and the positions the
//! consumer reports.
//!
//! Positions and times are kept as integers and turned into `Lsn`/`datetime` only when read,
//! so a consumer that never looks at them does not pay for them.

mod pgoutput;
mod stream;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

pub use self::pgoutput::{
    Begin, BeginPrepare, ChangeDecoder, Commit, CommitPrepared, Delete, Insert, LogicalMessage,
    Origin, PgOutputDecoder, Prepare, Relation, RelationColumn, RollbackPrepared, StreamAbort,
    StreamCommit, StreamPrepare, StreamStart, StreamStop, Truncate, TypeDefinition, Update,
};
pub use self::stream::{Keepalive, Stream, XLogData};
use crate::codec::timestamptz;
use crate::pycache;

fn lsn(py: Python<'_>, value: u64) -> PyResult<Bound<'_, PyAny>> {
    pycache::lsn_type(py)?.call1((value,))
}

fn opt_lsn(py: Python<'_>, value: Option<u64>) -> PyResult<Option<Bound<'_, PyAny>>> {
    value.map(|v| lsn(py, v)).transpose()
}

fn time(py: Python<'_>, usecs: i64) -> PyResult<Bound<'_, PyAny>> {
    Ok(timestamptz(py, usecs)?.into_any())
}

fn opt_time(py: Python<'_>, usecs: Option<i64>) -> PyResult<Option<Bound<'_, PyAny>>> {
    usecs.map(|v| time(py, v)).transpose()
}

/// The value pgoutput sends for a TOASTed column that did not change: distinct from `None`.
#[pyclass(frozen, module = "pgoxide.replication", name = "UnchangedToast")]
pub struct UnchangedToast;

#[pymethods]
#[allow(clippy::unused_self)]
impl UnchangedToast {
    fn __repr__(&self) -> &'static str {
        "UNCHANGED"
    }

    fn __bool__(&self) -> bool {
        false
    }
}

static UNCHANGED: PyOnceLock<Py<UnchangedToast>> = PyOnceLock::new();

/// The one `UnchangedToast` instance.
pub fn unchanged(py: Python<'_>) -> PyResult<&Py<UnchangedToast>> {
    UNCHANGED.get_or_try_init(py, || Py::new(py, UnchangedToast))
}

/// Whether a `values` argument asks for values as sent.
pub fn raw(values: &str) -> PyResult<bool> {
    match values {
        "typed" => Ok(false),
        "raw" => Ok(true),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "values must be 'typed' or 'raw', not {other:?}"
        ))),
    }
}
