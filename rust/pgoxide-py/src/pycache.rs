//! Python objects looked up once per interpreter.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyModule, PyType};

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID_INT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UUID_IS_SAFE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SAFE_UUID_UNKNOWN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

pub fn decimal(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

pub fn uuid_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UUID.import(py, "uuid", "UUID")
}

/// The slot descriptors of `uuid.UUID` (`int`, `is_safe`), used to build UUIDs without
/// running `UUID.__init__`'s argument parsing for every value.
pub fn uuid_slots(
    py: Python<'_>,
) -> PyResult<(&Bound<'_, PyAny>, &Bound<'_, PyAny>, &Bound<'_, PyAny>)> {
    let slot = |cell: &'static PyOnceLock<Py<PyAny>>, name: &'static str| {
        cell.get_or_try_init(py, || -> PyResult<_> {
            Ok(uuid_type(py)?.getattr("__dict__")?.get_item(name)?.unbind())
        })
        .map(|o| o.bind(py))
    };
    let unknown = SAFE_UUID_UNKNOWN
        .get_or_try_init(py, || -> PyResult<_> {
            Ok(py
                .import("uuid")?
                .getattr("SafeUUID")?
                .getattr("unknown")?
                .unbind())
        })?
        .bind(py);
    Ok((
        slot(&UUID_INT, "int")?,
        slot(&UUID_IS_SAFE, "is_safe")?,
        unknown,
    ))
}

/// An exception class of `pgoxide.exceptions`.
pub fn exception<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = EXCEPTIONS
        .get_or_try_init(py, || -> PyResult<_> {
            Ok(py.import("pgoxide.exceptions")?.unbind())
        })?
        .bind(py);
    Ok(module.getattr(name)?.cast_into()?)
}
