//! Arrays: nested lists of their elements (a `pgoxide.types.Array` when a lower bound is not
//! 1), each element through its own codec, and int and float elements filled without the
//! per-element dispatch.

use pgoxide_proto::backend::Cursor;
use pgoxide_proto::codec::{array, text};
use pgoxide_proto::types::{Builtin, Oid};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyList, PyMapping, PyMemoryView, PyString, PyTuple,
};

use super::{Codec, EncodeResult};
use crate::errors::data_error;
use crate::pycache;

/// An array as nested lists, or a `pgoxide.types.Array` when a lower bound is not 1.
pub fn decode<'py>(
    py: Python<'py>,
    elem: &Codec,
    elem_oid: Oid,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let (header, mut cursor) =
        array::read_header(data).map_err(|e| data_error(py, e.to_string()))?;
    let dims = header.dims();
    // No dimension, or one of length 0 (whatever the others claim): no elements, and nothing
    // to allocate for them.
    if dims.is_empty() || dims.iter().any(|&(len, _)| len <= 0) {
        if !cursor.is_empty() {
            return Err(data_error(py, "invalid array value: trailing bytes".into()));
        }
        return Ok(PyList::empty(py).into_any());
    }
    if header.element_oid != elem_oid {
        return Err(data_error(
            py,
            format!(
                "array element type {} does not match the column's {elem_oid}",
                header.element_oid
            ),
        ));
    }
    let list = build_level(py, elem, dims, &mut cursor)?;
    if !cursor.is_empty() {
        return Err(data_error(py, "invalid array value: trailing bytes".into()));
    }
    if dims.iter().all(|&(_, lower)| lower == 1) {
        return Ok(list);
    }
    // Lower bounds other than 1 are kept: a list subclass that carries them. It is built by
    // Python and so tracked by the collector already; its nested lists must be too.
    crate::record::track_lists(list.as_ptr());
    let bounds: Vec<i32> = dims.iter().map(|&(_, lower)| lower).collect();
    let kwargs = PyDict::new(py);
    kwargs.set_item("lower_bounds", PyTuple::new(py, bounds)?)?;
    pycache::array_type(py)?.call((list,), Some(&kwargs))
}

/// Builds the nested lists of one dimension level.
fn build_level<'py>(
    py: Python<'py>,
    elem: &Codec,
    dims: &[(i32, i32)],
    cursor: &mut Cursor<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let n = dims[0].0 as usize;
    // SAFETY: PyList_New(n) makes a list of n NULL slots; each slot is set exactly once below
    // before the list is used, and on error the partially filled list is dropped (CPython's
    // list_dealloc skips NULL items).
    let list = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(n as ffi::Py_ssize_t))? };
    if dims.len() == 1 {
        if let Codec::Scalar(b) = elem {
            if fill_numbers(py, *b, &list, n, cursor)? {
                return Ok(list);
            }
        }
    }
    for i in 0..n {
        let item = if dims.len() > 1 {
            build_level(py, elem, &dims[1..], cursor)?
        } else {
            let bad = |_| data_error(py, "invalid array value: truncated".into());
            let len = cursor.i32().map_err(bad)?;
            if len == -1 {
                py.None().into_bound(py)
            } else {
                let len = usize::try_from(len)
                    .map_err(|_| data_error(py, "invalid array value: negative length".into()))?;
                elem.decode(py, cursor.bytes(len).map_err(bad)?)?
            }
        };
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) };
    }
    // Built untracked like the row holding it; `Record::track_result` tracks it when the
    // result is handed out.
    unsafe { ffi::PyObject_GC_UnTrack(list.as_ptr().cast()) };
    Ok(list)
}

/// Fills the `n` slots of `list` from an array level of int2, int4, int8, float4 or float8
/// elements, without the generic per-element dispatch (that dispatch was most of the cost of
/// decoding an `int[]`). Returns false, touching nothing, for other element types.
fn fill_numbers<'py>(
    py: Python<'py>,
    b: Builtin,
    list: &Bound<'py, PyAny>,
    n: usize,
    cursor: &mut Cursor<'_>,
) -> PyResult<bool> {
    // SAFETY (every arm): the constructors return a new reference, or NULL with an error set.
    unsafe {
        match b {
            Builtin::Int2 => fill_fixed(py, list, n, cursor, |d: [u8; 2]| {
                ffi::PyLong_FromLong(i16::from_be_bytes(d).into())
            }),
            Builtin::Int4 => fill_fixed(py, list, n, cursor, |d: [u8; 4]| {
                ffi::PyLong_FromLong(i32::from_be_bytes(d).into())
            }),
            Builtin::Int8 => fill_fixed(py, list, n, cursor, |d: [u8; 8]| {
                ffi::PyLong_FromLongLong(i64::from_be_bytes(d))
            }),
            Builtin::Float4 => fill_fixed(py, list, n, cursor, |d: [u8; 4]| {
                ffi::PyFloat_FromDouble(f32::from_be_bytes(d).into())
            }),
            Builtin::Float8 => fill_fixed(py, list, n, cursor, |d: [u8; 8]| {
                ffi::PyFloat_FromDouble(f64::from_be_bytes(d))
            }),
            _ => return Ok(false),
        }?;
    }
    // SAFETY: the list is complete; built untracked like its row (see `build_level`).
    unsafe { ffi::PyObject_GC_UnTrack(list.as_ptr().cast()) };
    Ok(true)
}

/// [`fill_numbers`] for one element width `W`: `make` turns an element's bytes into a new
/// reference (or NULL with a Python error set).
fn fill_fixed<'py, const W: usize>(
    py: Python<'py>,
    list: &Bound<'py, PyAny>,
    n: usize,
    cursor: &mut Cursor<'_>,
    make: impl Fn([u8; W]) -> *mut ffi::PyObject,
) -> PyResult<()> {
    let truncated = |_| data_error(py, "invalid array value: truncated".into());
    for i in 0..n {
        let len = cursor.i32().map_err(truncated)?;
        let item = if len == W as i32 {
            let raw = cursor.bytes(W).map_err(truncated)?;
            make(raw.try_into().expect("W bytes"))
        } else if len == -1 {
            py.None().into_ptr()
        } else {
            return Err(data_error(
                py,
                format!("invalid array value: element of {len} bytes, expected {W}"),
            ));
        };
        if item.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: slot `i` of a list of `n` NULL slots, set once; the list steals `item`.
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item) };
    }
    Ok(())
}

/// Encodes a (possibly nested) sized iterable (list, tuple, ...) as an array with lower
/// bounds 1.
pub fn encode(
    elem: &Codec,
    elem_oid: Oid,
    v: &Bound<'_, PyAny>,
    buf: &mut Vec<u8>,
) -> EncodeResult {
    if !is_sequence(v) {
        let got = v
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        return Err(format!(
            "a sized iterable container expected (list, tuple, ...), got {got}"
        ));
    }
    let v = &materialized(v)?;
    // Dimensions come from the first element at each depth; the rest must match.
    // Below the top level, a tuple is an element (not a dimension) when elements are
    // sequences themselves (composites, points, ...).
    let is_dimension = |x: &Bound<'_, PyAny>, top: bool| is_dimension(elem, x, top);
    let mut dims = Vec::new();
    let mut probe = v.clone();
    while is_dimension(&probe, dims.is_empty()) {
        let n = probe.len().map_err(|e| e.to_string())?;
        dims.push((
            i32::try_from(n).map_err(|_| "array too large".to_owned())?,
            1,
        ));
        if n == 0 || dims.len() > array::MAX_DIMS {
            break;
        }
        probe = materialized(&probe)?
            .get_item(0)
            .map_err(|e| e.to_string())?;
    }
    if dims.len() > array::MAX_DIMS {
        return Err(format!(
            "arrays have at most {} dimensions",
            array::MAX_DIMS
        ));
    }
    if dims[0].0 == 0 {
        dims.clear();
    }
    // A pgoxide.types.Array carries lower bounds other than 1.
    let array_type = pycache::array_type(v.py()).map_err(|e| e.to_string())?;
    if !dims.is_empty() && v.is_instance(array_type).unwrap_or(false) {
        let lower: Vec<i32> = v
            .getattr("lower_bounds")
            .and_then(|b| b.extract())
            .map_err(|e| format!("lower_bounds: {e}"))?;
        if lower.len() != dims.len() {
            return Err(format!(
                "lower_bounds has {} entries for {} dimensions",
                lower.len(),
                dims.len()
            ));
        }
        for (dim, l) in dims.iter_mut().zip(lower) {
            dim.1 = l;
        }
    }
    let start = buf.len();
    array::encode_header(
        buf,
        &array::ArrayHeader {
            element_oid: elem_oid,
            has_nulls: false,
            dims: dims.clone(),
        },
    );
    let mut has_nulls = false;
    if !dims.is_empty() {
        encode_level(elem, v, &dims, true, buf, &mut has_nulls)?;
    }
    if has_nulls {
        buf[start + array::HAS_NULLS_OFFSET + 3] = 1;
    }
    Ok(())
}

fn encode_level(
    elem: &Codec,
    v: &Bound<'_, PyAny>,
    dims: &[(i32, i32)],
    top: bool,
    buf: &mut Vec<u8>,
    has_nulls: &mut bool,
) -> EncodeResult {
    if !is_dimension(elem, v, top) {
        return Err(NON_HOMOGENEOUS.into());
    }
    let v = &materialized(v)?;
    if v.len().map_err(|e| e.to_string())? != dims[0].0 as usize {
        return Err(NON_HOMOGENEOUS.into());
    }
    for item in v.try_iter().map_err(|e| e.to_string())? {
        let item = item.map_err(|e| e.to_string())?;
        if dims.len() > 1 {
            encode_level(elem, &item, &dims[1..], false, buf, has_nulls)?;
        } else if item.is_none() {
            *has_nulls = true;
            buf.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            if is_dimension(elem, &item, false) {
                return Err(NON_HOMOGENEOUS.into());
            }
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            elem.encode(&item, buf)
                .map_err(|e| format!("invalid array element: {e}"))?;
            let len = (buf.len() - at - 4) as i32;
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

/// Whether `x` is a dimension of an array of `elem` (else it is an element). The array itself
/// (`top`) is any sized iterable. Below it, when elements are sequences themselves
/// (composites, points, ranges), only lists are dimensions; when they are plain scalars
/// (numbers, text, dates...), any sized iterable is; for other element types (bit strings,
/// json, user codecs, whose values may be iterables), lists and tuples.
fn is_dimension(elem: &Codec, x: &Bound<'_, PyAny>, top: bool) -> bool {
    if top {
        return is_sequence(x);
    }
    if elem.sequence_valued() {
        return x.is_instance_of::<PyList>();
    }
    match elem {
        Codec::Text | Codec::BuiltinText(..) => is_sequence(x),
        Codec::Scalar(b)
            if !matches!(
                b,
                Builtin::Bits | Builtin::Json | Builtin::Jsonb | Builtin::Jsonpath
            ) =>
        {
            is_sequence(x)
        }
        _ => x.is_instance_of::<PyList>() || x.is_instance_of::<PyTuple>(),
    }
}

const NON_HOMOGENEOUS: &str =
    "non-homogeneous array: multi-dimensional arrays must be rectangular lists";

/// Whether `v` can be an array or one of its dimensions, as asyncpg decides: a sized iterable
/// (list, tuple, set, a class with `__iter__` and `__len__`) that is not a str, bytes-like
/// object or mapping.
fn is_sequence(v: &Bound<'_, PyAny>) -> bool {
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        return true;
    }
    if v.is_instance_of::<PyString>()
        || v.is_instance_of::<PyBytes>()
        || v.is_instance_of::<PyByteArray>()
        || v.is_instance_of::<PyMemoryView>()
        || v.is_instance_of::<PyDict>()
        || v.cast::<PyMapping>().is_ok()
    {
        return false;
    }
    let ty = v.get_type();
    ty.hasattr("__iter__").unwrap_or(false) && ty.hasattr("__len__").unwrap_or(false)
}

/// `v` itself when it is a list or tuple, else its items as a list (read once).
fn materialized<'py>(v: &Bound<'py, PyAny>) -> Result<Bound<'py, PyAny>, String> {
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        return Ok(v.clone());
    }
    // SAFETY: `v` is live; a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(v.py(), ffi::PySequence_List(v.as_ptr())) }
        .map_err(|e| format!("cannot iterate over the array value: {e}"))
}

/// An array in the text format whose elements have only a text codec (see
/// [`Codec::TextArray`]): the literal read into a binary array of the elements' texts, then
/// decoded as any array, each element by `elem` (a `str`, or a text user codec's result).
pub fn decode_text_array<'py>(
    py: Python<'py>,
    elem: &Codec,
    elem_oid: Oid,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let mut binary = Vec::with_capacity(data.len() + 32);
    text::text_array_to_binary(0, elem_oid, data, &mut binary)
        .map_err(|e| data_error(py, e.to_string()))?;
    decode(py, elem, elem_oid, &binary)
}

/// An array parameter in the text format (see [`Codec::TextArray`]): a list as for a binary
/// array, each element's text from `elem`, written as an array literal; or a `str` that is
/// the literal already.
pub fn encode_text_array(elem: &Codec, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    if let Ok(s) = v.cast::<PyString>() {
        buf.extend_from_slice(s.to_str().map_err(|e| e.to_string())?.as_bytes());
        return Ok(());
    }
    let mut binary = Vec::new();
    // The element OID is not looked at: the binary form only carries the texts.
    encode(elem, 0, v, &mut binary)?;
    text::text_array_literal(&binary, buf).map_err(|e| e.to_string())
}
