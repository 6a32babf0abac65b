//! Python objects looked up once per interpreter.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule, PyType};

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MAKE_DECIMAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID_INT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UUID_IS_SAFE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SAFE_UUID_UNKNOWN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static INTERVAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static JSON_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static IPADDRESS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static LSN: PyOnceLock<Py<PyType>> = PyOnceLock::new();

pub fn decimal(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

/// `create_decimal` of a context with the largest precision and exponent range, so that
/// nothing rounds: the Decimal that `Decimal(text)` makes, about a sixth faster, as the
/// constructor parses keyword arguments and looks up the thread's context on every call.
pub fn make_decimal(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    MAKE_DECIMAL
        .get_or_try_init(py, || -> PyResult<_> {
            let decimal = py.import("decimal")?;
            let unbounded = PyDict::new(py);
            for (arg, limit) in [
                ("prec", "MAX_PREC"),
                ("Emax", "MAX_EMAX"),
                ("Emin", "MIN_EMIN"),
            ] {
                unbounded.set_item(arg, decimal.getattr(limit)?)?;
            }
            let context = decimal.getattr("Context")?.call((), Some(&unbounded))?;
            Ok(context.getattr("create_decimal")?.unbind())
        })
        .map(|o| o.bind(py))
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

/// `pgoxide.types.Interval`: intervals with months.
pub fn interval_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INTERVAL.import(py, "pgoxide.types", "Interval")
}

/// `pgoxide.types.Lsn`: WAL positions.
pub fn lsn_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    LSN.import(py, "pgoxide.types", "Lsn")
}

/// `pgoxide.types.Array`: arrays whose lower bounds are not all 1.
pub fn array_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    ARRAY.import(py, "pgoxide.types", "Array")
}

/// `json.dumps`, for json parameters given as Python objects.
pub fn json_dumps(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    JSON_DUMPS.import(py, "json", "dumps")
}

/// `json.loads`, for JSON values nested deeper than the Rust parser goes.
pub fn json_loads(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    JSON_LOADS.import(py, "json", "loads")
}

/// A class of `pgoxide.types` (Range, Point, BitString, Lsn, ...).
pub fn types_attr<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    TYPES
        .get_or_try_init(py, || -> PyResult<_> {
            Ok(py.import("pgoxide.types")?.unbind())
        })?
        .bind(py)
        .getattr(name)
}

/// The `ipaddress` module.
pub fn ipaddress(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    IPADDRESS
        .get_or_try_init(py, || -> PyResult<_> {
            Ok(py.import("ipaddress")?.unbind())
        })
        .map(|m| m.bind(py))
}
