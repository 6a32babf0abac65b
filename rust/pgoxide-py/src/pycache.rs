//! Python objects looked up once per interpreter.

use std::cell::Cell;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule, PyString, PyType};

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MAKE_DECIMAL: PyOnceLock<MakeDecimal> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
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
pub struct MakeDecimal {
    method: Py<PyAny>,
    /// The method's C function and its `self` (the context, which `method` keeps alive),
    /// when it takes an argument tuple (METH_VARARGS, as in CPython 3.11): then a call goes
    /// straight to it with a reused tuple, instead of through the generic call path, which
    /// builds and frees a tuple for every value.
    direct: Option<(ffi::PyCFunction, usize)>,
}

impl MakeDecimal {
    /// `Decimal(text)`, exactly.
    pub fn call<'py>(&self, text: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        let py = text.py();
        let Some((function, context)) = self.direct else {
            return self.method.bind(py).call1((text,));
        };
        // SAFETY: `function` is the METH_VARARGS C function of a builtin method whose `self`
        // is `context`, which `self.method` keeps alive; it gets a one-item tuple, as that
        // calling convention requires. The tuple is ours alone before and after the call
        // (its reference count says so), so its item can be replaced.
        unsafe {
            let args = take_args_tuple()?;
            let previous = ffi::PyTuple_GET_ITEM(args, 0);
            ffi::PyTuple_SET_ITEM(args, 0, text.clone().into_ptr());
            ffi::Py_XDECREF(previous);
            let result = function(context as *mut ffi::PyObject, args);
            give_back_args_tuple(args);
            Bound::from_owned_ptr_or_err(py, result)
        }
    }
}

thread_local! {
    /// A one-item argument tuple for [`MakeDecimal::call`], kept between calls holding None.
    /// Taken out while in use, so a re-entrant call simply makes its own.
    static ARGS_TUPLE: Cell<*mut ffi::PyObject> = const { Cell::new(std::ptr::null_mut()) };
}

/// A one-item tuple that nothing else references; its item is None or NULL (when new).
unsafe fn take_args_tuple() -> PyResult<*mut ffi::PyObject> {
    let spare = ARGS_TUPLE.with(|cell| cell.replace(std::ptr::null_mut()));
    if !spare.is_null() {
        return Ok(spare);
    }
    // SAFETY: the GIL is held; a new reference or NULL with an exception set.
    let args = unsafe { ffi::PyTuple_New(1) };
    if args.is_null() {
        // SAFETY: the GIL is held.
        return Err(PyErr::fetch(unsafe { Python::assume_attached() }));
    }
    Ok(args)
}

/// Keeps `args` for the next call when nothing else holds it (its item replaced by None, so
/// that no value stays alive in it); releases it otherwise.
unsafe fn give_back_args_tuple(args: *mut ffi::PyObject) {
    // SAFETY: `args` is a live one-item tuple we own a reference to, with the GIL held.
    unsafe {
        if ffi::Py_REFCNT(args) != 1 {
            ffi::Py_DECREF(args);
            return;
        }
        let item = ffi::PyTuple_GET_ITEM(args, 0);
        ffi::PyTuple_SET_ITEM(args, 0, ffi::Py_NewRef(ffi::Py_None()));
        ffi::Py_XDECREF(item);
        let previous = ARGS_TUPLE.with(|cell| cell.replace(args));
        if !previous.is_null() {
            ffi::Py_DECREF(previous);
        }
    }
}

pub fn make_decimal(py: Python<'_>) -> PyResult<&MakeDecimal> {
    MAKE_DECIMAL.get_or_try_init(py, || -> PyResult<_> {
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
        let method = context.getattr("create_decimal")?;
        // SAFETY: `method` is live; these read a builtin method's definition, nothing else.
        let direct = unsafe {
            let m = method.as_ptr();
            let is_varargs = ffi::PyCFunction_Check(m) != 0
                && ffi::PyCFunction_GetFlags(m) == ffi::METH_VARARGS
                && std::ptr::eq(ffi::PyCFunction_GetSelf(m), context.as_ptr());
            match ffi::PyCFunction_GetFunction(m) {
                Some(function) if is_varargs => Some((function, context.as_ptr() as usize)),
                _ => None,
            }
        };
        // Whatever went wrong in the probing above is not an error: the generic call works.
        if PyErr::occurred(py) {
            drop(PyErr::fetch(py));
        }
        Ok(MakeDecimal {
            method: method.unbind(),
            direct,
        })
    })
}

pub fn uuid_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    UUID.import(py, "uuid", "UUID")
}

/// `uuid.SafeUUID.unknown`.
pub fn safe_uuid_unknown(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    SAFE_UUID_UNKNOWN
        .get_or_try_init(py, || -> PyResult<_> {
            Ok(py
                .import("uuid")?
                .getattr("SafeUUID")?
                .getattr("unknown")?
                .unbind())
        })
        .map(|v| v.bind(py))
}

/// The offset of a writable object slot of `ty` (a `__slots__` entry), from its descriptor.
pub fn member_offset(ty: &Bound<'_, PyType>, descriptor: &Bound<'_, PyAny>) -> Option<isize> {
    // SAFETY: the descriptor is checked to be an exact member descriptor before its struct
    // is read; its definition lives as long as the type, which the cache keeps alive.
    unsafe {
        let d = descriptor.as_ptr();
        if !std::ptr::eq(
            ffi::Py_TYPE(d),
            std::ptr::addr_of_mut!(ffi::PyMemberDescr_Type),
        ) {
            return None;
        }
        let d = d.cast::<ffi::PyMemberDescrObject>();
        // CPython's d_member is a PyMemberDef on every version; pyo3-ffi declares it as a
        // PyGetSetDef before 3.11, hence the cast.
        let member = &*(*d).d_member.cast::<ffi::PyMemberDef>();
        let plain_object = member.type_code == ffi::Py_T_OBJECT_EX
            && member.flags & ffi::Py_READONLY == 0
            && std::ptr::eq((*d).d_common.d_type, ty.as_type_ptr());
        plain_object.then_some(member.offset)
    }
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
