//! Decoded `uuid` values: `pgoxide.UUID`, a subclass of `uuid.UUID` that keeps the 16 bytes
//! and makes its `int` when first asked.
//!
//! `uuid.UUID` holds a 128-bit `int`. Making that int was half the cost of decoding a uuid,
//! and 48 of the bytes each value kept alive, though most decoded UUIDs are only compared,
//! hashed or printed, if that. So, as asyncpg's own UUID class does, ours stores the bytes
//! inline and answers `int` from them; everything `uuid.UUID` builds on `int` (str, repr,
//! hex, bytes, hash, equality with any `uuid.UUID`, ordering) works unchanged. The int, once
//! made, is kept in `uuid.UUID`'s own `int` slot. Pickles and copies are plain `uuid.UUID`s,
//! so they do not depend on pgoxide. Parameters are any `uuid.UUID`, or its text.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use pgoxide_proto::codec;
use pgoxide_proto::types::Builtin;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple, PyType};

use super::{core_error, expected, EncodeResult};
use crate::pycache;

static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static LAYOUT: OnceLock<Layout> = OnceLock::new();

/// Where an instance keeps what it holds, as byte offsets into the object.
struct Layout {
    /// The 16 bytes, after `uuid.UUID`'s own slots.
    raw: isize,
    /// `uuid.UUID`'s `int` slot, where the int is kept once made; `None` if that slot is not
    /// a plain object slot on this interpreter (then the int is made on every access).
    int_slot: Option<isize>,
}

/// Decodes a uuid (the one type of this family).
#[inline]
pub fn decode<'py>(py: Python<'py>, _: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    new(
        py,
        codec::fixed::<16>(data, "uuid").map_err(core_error(py))?,
    )
}

/// Encodes a uuid from a `uuid.UUID` or its text.
pub fn encode(_: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    if let Some(raw) = raw_of(v) {
        buf.extend_from_slice(&raw);
        return Ok(());
    }
    let py = v.py();
    let uuid_type = pycache::uuid_type(py).map_err(|e| e.to_string())?;
    let value = if v.is_instance(uuid_type).unwrap_or(false) {
        v.clone()
    } else if v.is_instance_of::<PyString>() {
        uuid_type
            .call1((v,))
            .map_err(|e| format!("invalid UUID: {e}"))?
            .into_any()
    } else {
        return Err(expected("uuid.UUID or str", v));
    };
    let n: u128 = value
        .getattr("int")
        .and_then(|i| i.extract())
        .map_err(|e| e.to_string())?;
    buf.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// A new `pgoxide.UUID` of `raw` (big-endian, as sent).
fn new(py: Python<'_>, raw: [u8; 16]) -> PyResult<Bound<'_, PyAny>> {
    let ty = class(py)?;
    let layout = LAYOUT.get().expect("set with the type");
    // SAFETY: `PyType_GenericAlloc` returns a zeroed instance of our type (or NULL with an
    // error set), whose `raw` offset is inside the object and ours alone.
    unsafe {
        let obj = Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(ty.as_type_ptr(), 0))?;
        obj.as_ptr()
            .byte_offset(layout.raw)
            .cast::<[u8; 16]>()
            .write(raw);
        // It holds only its type and, once made, an int, and nothing can be stored in it, so
        // it can never be part of a cycle; the collector need not walk a result's many UUIDs.
        ffi::PyObject_GC_UnTrack(obj.as_ptr().cast());
        Ok(obj)
    }
}

/// The 16 bytes of `value` if it is a `pgoxide.UUID` (the encoder's shortcut).
fn raw_of(value: &Bound<'_, PyAny>) -> Option<[u8; 16]> {
    let ty = TYPE.get(value.py())?;
    if !ptr::eq(value.get_type_ptr(), ty.as_ptr().cast()) {
        return None;
    }
    // SAFETY: `value` is an instance of our type, so it was made by `new`.
    Some(unsafe { raw(value.as_ptr()) })
}

/// The class (made on first use, or when the module is imported).
pub fn class(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    TYPE.get_or_try_init(py, || make_class(py))
        .map(|ty| ty.bind(py))
}

fn make_class(py: Python<'_>) -> PyResult<Py<PyType>> {
    let base = pycache::uuid_type(py)?;
    // SAFETY: reading the size of a ready type.
    let base_size = unsafe { (*base.as_type_ptr()).tp_basicsize };
    let int_slot = base
        .getattr("__dict__")
        .and_then(|d| d.get_item("int"))
        .ok()
        .and_then(|descriptor| pycache::member_offset(base, &descriptor));
    LAYOUT.get_or_init(|| Layout {
        raw: base_size,
        int_slot,
    });
    // The definitions must outlive the type, which lives until the process ends.
    let getset: &'static mut [ffi::PyGetSetDef] = Box::leak(Box::new([
        ffi::PyGetSetDef {
            name: c"int".as_ptr(),
            get: Some(get_int),
            set: None,
            doc: c"The UUID as a 128-bit integer.".as_ptr(),
            closure: ptr::null_mut(),
        },
        ffi::PyGetSetDef {
            name: c"is_safe".as_ptr(),
            get: Some(get_is_safe),
            set: None,
            doc: c"Always SafeUUID.unknown: the server does not say.".as_ptr(),
            closure: ptr::null_mut(),
        },
        ffi::PyGetSetDef::default(),
    ]));
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"__reduce__".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: reduce,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"Pickles and copies as a plain uuid.UUID.".as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = [
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: c"A uuid.UUID decoded by pgoxide: the same value, with its 16 bytes stored \
                     and its int made on first use."
                .as_ptr()
                .cast_mut()
                .cast(),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_getset,
            pfunc: getset.as_mut_ptr().cast(),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_methods,
            pfunc: methods.as_mut_ptr().cast(),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_new,
            pfunc: refuse_new as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: ptr::null_mut(),
        },
    ];
    let mut spec = ffi::PyType_Spec {
        name: c"pgoxide.UUID".as_ptr(),
        basicsize: c_int::try_from(base_size + 16).expect("a small type"),
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as _,
        slots: slots.as_mut_ptr(),
    };
    let bases = PyTuple::new(py, [base])?;
    // SAFETY: the spec and its slots are valid for the call (CPython copies them); the
    // getset and method tables it points to are leaked, so they outlive the type.
    unsafe {
        Ok(Bound::from_owned_ptr_or_err(
            py,
            ffi::PyType_FromSpecWithBases(&mut spec, bases.as_ptr()),
        )?
        .cast_into_unchecked::<PyType>()
        .unbind())
    }
}

/// The 16 bytes of an instance of our type.
unsafe fn raw(obj: *mut ffi::PyObject) -> [u8; 16] {
    let layout = LAYOUT.get().expect("set with the type");
    // SAFETY: the caller passes an instance of our type, which has the bytes at that offset.
    unsafe { obj.byte_offset(layout.raw).cast::<[u8; 16]>().read() }
}

/// `int`: made from the bytes, and kept in `uuid.UUID`'s slot for the next time.
unsafe extern "C" fn get_int(obj: *mut ffi::PyObject, _closure: *mut c_void) -> *mut ffi::PyObject {
    let layout = LAYOUT.get().expect("set with the type");
    // SAFETY: CPython calls a getter with the GIL held and an instance of the type that
    // defines it; the slot, when known, is a plain object slot of that instance.
    unsafe {
        let slot = layout
            .int_slot
            .map(|offset| obj.byte_offset(offset).cast::<*mut ffi::PyObject>());
        if let Some(slot) = slot {
            if !(*slot).is_null() {
                ffi::Py_INCREF(*slot);
                return *slot;
            }
        }
        let py = Python::assume_attached();
        let int = u128::from_be_bytes(raw(obj)).into_pyobject(py);
        let int = match int {
            Ok(int) => int.into_ptr(),
            Err(never) => match never {},
        };
        if let Some(slot) = slot {
            ffi::Py_INCREF(int);
            *slot = int;
        }
        int
    }
}

/// `is_safe`: the server says nothing about how a UUID was made.
unsafe extern "C" fn get_is_safe(
    _obj: *mut ffi::PyObject,
    _closure: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a getter with the GIL held.
    let py = unsafe { Python::assume_attached() };
    into_result(py, pycache::safe_uuid_unknown(py).cloned())
}

/// `__reduce__`: rebuild as `uuid.UUID(bytes=...)`.
unsafe extern "C" fn reduce(
    obj: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called with the GIL held on an instance of our type.
    let (py, raw) = unsafe { (Python::assume_attached(), raw(obj)) };
    let result = pycache::uuid_type(py).and_then(|base| {
        let args = (py.None(), PyBytes::new(py, &raw));
        (base, args).into_pyobject(py).map(Bound::into_any)
    });
    into_result(py, result)
}

/// `tp_new`: instances come only from the decoder.
unsafe extern "C" fn refuse_new(
    _ty: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_new with the GIL held.
    let py = unsafe { Python::assume_attached() };
    into_result(
        py,
        Err(PyTypeError::new_err(
            "pgoxide.UUID instances come from the decoder; make a uuid.UUID instead",
        )),
    )
}

/// A new reference, or NULL with the error set, as a C slot returns.
fn into_result(py: Python<'_>, result: PyResult<Bound<'_, PyAny>>) -> *mut ffi::PyObject {
    match result {
        Ok(value) => value.into_ptr(),
        Err(e) => {
            e.restore(py);
            ptr::null_mut()
        }
    }
}
