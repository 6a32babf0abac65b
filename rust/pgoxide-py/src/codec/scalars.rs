//! The plain scalars: bool, the integers (int2, int4, int8, oid, xid8), float4 and float8,
//! numeric (as `Decimal`, with asyncpg's digits and exponent), text (as `str`), and `"char"`
//! and bytea (as `bytes`, as asyncpg gives them).

use pgoxide_proto::codec::{self, numeric};
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyString};

use super::{core_error, expected, new_ascii_str, required, str_bytes, text, EncodeResult};
use crate::errors::data_error;
use crate::pycache;

/// Decodes a value of one of the types of this family.
#[inline]
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match b {
        Builtin::Text => text(py, data)?,
        Builtin::Char => PyBytes::new(py, data).into_any(),
        Builtin::Int4 => codec::decode_i32(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Int8 => codec::decode_i64(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Int2 => codec::decode_i16(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Oid => codec::decode_u32(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Xid8 => u64::from_be_bytes(codec::fixed(data, "xid8").map_err(core)?)
            .into_pyobject(py)?
            .into_any(),
        Builtin::Bool => PyBool::new(py, codec::decode_bool(data).map_err(core)?)
            .to_owned()
            .into_any(),
        Builtin::Float8 => codec::decode_f64(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Float4 => f64::from(codec::decode_f32(data).map_err(core)?)
            .into_pyobject(py)?
            .into_any(),
        Builtin::Numeric => decimal(py, data)?,
        Builtin::Bytea => PyBytes::new(py, data).into_any(),
        _ => unreachable!("not a type of this family: {b:?}"),
    })
}

/// Encodes a value of one of the types of this family.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    match b {
        Builtin::Bool => {
            let b = v.cast::<PyBool>().map_err(|_| required("a boolean", v))?;
            buf.push(u8::from(b.is_true()));
        }
        // asyncpg's words for the ranges (value out of int16 range, ...).
        Builtin::Int2 => buf.extend_from_slice(&int::<i16>(v, OUT_OF_INT16)?.to_be_bytes()),
        Builtin::Int4 => buf.extend_from_slice(&int::<i32>(v, OUT_OF_INT32)?.to_be_bytes()),
        Builtin::Int8 => buf.extend_from_slice(&int::<i64>(v, OUT_OF_INT64)?.to_be_bytes()),
        Builtin::Oid => buf.extend_from_slice(&int::<u32>(v, OUT_OF_UINT32)?.to_be_bytes()),
        Builtin::Xid8 => buf.extend_from_slice(&int::<u64>(v, OUT_OF_UINT64)?.to_be_bytes()),
        Builtin::Float8 => buf.extend_from_slice(&float(v)?.to_be_bytes()),
        Builtin::Float4 => {
            let f = float(v)?;
            let narrow = f as f32;
            if narrow.is_infinite() && f.is_finite() {
                return Err("value out of float32 range".into());
            }
            buf.extend_from_slice(&narrow.to_be_bytes());
        }
        Builtin::Numeric => {
            if let Ok(b) = v.cast::<PyBool>() {
                buf.extend_from_slice(if b.is_true() { &ONE[..] } else { &ZERO[..] });
                return Ok(());
            }
            numeric::encode_from_text(&numeric_text(v)?, buf).map_err(|e| e.to_string())?;
        }
        Builtin::Text => buf.extend_from_slice(str_bytes(v)?),
        Builtin::Char => {
            // bytes as asyncpg takes them, and a str of one ASCII character as before.
            let b = match v.cast::<PyBytes>() {
                Ok(b) => b.as_bytes(),
                Err(_) => str_bytes(v).map_err(|_| expected("bytes", v))?,
            };
            if b.len() > 1 {
                return Err("\"char\" holds a single byte".into());
            }
            buf.extend_from_slice(b);
        }
        Builtin::Bytea => {
            if let Ok(b) = v.cast::<PyBytes>() {
                buf.extend_from_slice(b.as_bytes());
            } else if let Ok(b) = v.cast::<PyByteArray>() {
                buf.extend_from_slice(&b.to_vec());
            } else if let Ok(b) = pyo3::buffer::PyBuffer::<u8>::get(v) {
                buf.extend_from_slice(&b.to_vec(v.py()).map_err(|e| e.to_string())?);
            } else {
                return Err(required("a bytes-like object", v));
            }
        }
        _ => unreachable!("not a type of this family: {b:?}"),
    }
    Ok(())
}

const OUT_OF_INT16: &str = "value out of int16 range";
const OUT_OF_INT32: &str = "value out of int32 range";
const OUT_OF_INT64: &str = "value out of int64 range";
const OUT_OF_UINT32: &str = "value out of uint32 range";
const OUT_OF_UINT64: &str = "value out of uint64 range";

/// The text a numeric parameter is sent as: a `str` read as Decimal reads it (asyncpg's way:
/// so 'NaN', 'Infinity' and '1e5' work, and what Decimal refuses is refused here), or the text
/// of a Decimal, int or float, with numeric's one NaN for any of Decimal's.
fn numeric_text(v: &Bound<'_, PyAny>) -> Result<String, String> {
    let py = v.py();
    let text = if v.is_instance_of::<PyString>() {
        pycache::decimal(py)
            .and_then(|d| d.call1((v,)))
            .and_then(|d| d.str())
            .map_err(|_| format!("invalid numeric value: {}", repr(v)))?
    } else if let Ok(b) = v.cast::<PyBool>() {
        return Ok(if b.is_true() { "1" } else { "0" }.to_owned());
    } else if v
        .is_instance(pycache::decimal(py).map_err(|e| e.to_string())?)
        .unwrap_or(false)
        || v.is_instance_of::<PyInt>()
        || v.is_instance_of::<PyFloat>()
    {
        v.str().map_err(|e| e.to_string())?
    } else {
        return Err(expected("Decimal, int, float or str", v));
    };
    let text = text.to_cow().map_err(|e| e.to_string())?;
    // numeric has one NaN: a signalling one, or one with diagnostic digits, is it too.
    let unsigned = text.trim_start_matches(['-', '+']);
    if unsigned
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("nan"))
        || unsigned
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("snan"))
    {
        return Ok("NaN".to_owned());
    }
    Ok(text.into_owned())
}

/// Encodes a value in the text format of `b` (see `Codec::BuiltinText`): the same values
/// are taken, and refused in the same words, as by the binary format.
pub fn encode_text(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    use std::io::Write as _;
    let written = match b {
        Builtin::Bool => {
            let b = v.cast::<PyBool>().map_err(|_| required("a boolean", v))?;
            buf.push(if b.is_true() { b't' } else { b'f' });
            Ok(())
        }
        Builtin::Int2 => write!(buf, "{}", int::<i16>(v, OUT_OF_INT16)?),
        Builtin::Int4 => write!(buf, "{}", int::<i32>(v, OUT_OF_INT32)?),
        Builtin::Int8 => write!(buf, "{}", int::<i64>(v, OUT_OF_INT64)?),
        Builtin::Oid => write!(buf, "{}", int::<u32>(v, OUT_OF_UINT32)?),
        Builtin::Float8 => write_float(buf, float(v)?),
        Builtin::Float4 => {
            let f = float(v)?;
            let narrow = f as f32;
            if narrow.is_infinite() && f.is_finite() {
                return Err("value out of float32 range".into());
            }
            write_float(buf, narrow)
        }
        Builtin::Numeric => {
            let text = numeric_text(v)?;
            // Checked as the binary format checks it, so the server never sees a bad text.
            numeric::encode_from_text(&text, &mut Vec::new()).map_err(|e| e.to_string())?;
            buf.extend_from_slice(text.as_bytes());
            Ok(())
        }
        Builtin::Text => {
            buf.extend_from_slice(str_bytes(v)?);
            Ok(())
        }
        _ => unreachable!("no text codec here: {b:?}"),
    };
    written.map_err(|e| e.to_string())
}

/// A float in a text PostgreSQL reads back exactly: the shortest round-trip digits.
fn write_float<F: Into<f64> + std::fmt::LowerExp + Copy>(
    buf: &mut Vec<u8>,
    f: F,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let wide: f64 = f.into();
    if wide.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if wide.is_infinite() {
        buf.extend_from_slice(if wide > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
    } else {
        write!(buf, "{f:e}")?;
    }
    Ok(())
}

/// Decodes a value of the text format of `b`, the builtin type `builtin_oid` (see
/// `Codec::BuiltinText`), into what its binary format gives.
pub fn decode_text<'py>(
    py: Python<'py>,
    b: Builtin,
    builtin_oid: pgoxide_proto::types::Oid,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    match b {
        Builtin::Text => text(py, data),
        // Straight from the text: transcoding would only turn it into text again.
        Builtin::Numeric => {
            let s = std::str::from_utf8(data)
                .map_err(|_| data_error(py, "invalid numeric value: not UTF-8".into()))?;
            decimal_from_text(py, s)
        }
        _ => {
            let mut binary = Vec::new();
            pgoxide_proto::codec::text::to_binary(builtin_oid, data, &mut binary)
                .map_err(|e| data_error(py, e.to_string()))?;
            decode(py, b, &binary)
        }
    }
}

/// An integer parameter (an int, or an integral number that is not one), or `out_of_range`
/// when it does not fit `T`.
pub(super) fn int<T: TryFrom<i64> + TryFrom<i128>>(
    v: &Bound<'_, PyAny>,
    out_of_range: &str,
) -> Result<T, String> {
    let out_of_range = || out_of_range.to_owned();
    if v.is_exact_instance_of::<PyInt>() {
        // The common case, without the 128-bit conversion: an int that fits a C long long.
        let mut overflow = 0;
        // SAFETY: `v` is a live int; this cannot fail other than by overflowing.
        let n = unsafe { pyo3::ffi::PyLong_AsLongLongAndOverflow(v.as_ptr(), &mut overflow) };
        if overflow == 0 {
            return T::try_from(n).map_err(|_| out_of_range());
        }
    }
    if v.is_instance_of::<PyInt>() || v.hasattr("__index__").ok() == Some(true) {
        let wide: i128 = v.extract().map_err(|_| out_of_range())?;
        return T::try_from(wide).map_err(|_| out_of_range());
    }
    let wide = integral(v)?.ok_or_else(out_of_range)?;
    T::try_from(wide).map_err(|_| out_of_range())
}

/// numeric 1 and 0 (ndigits, weight, sign, dscale, digits), for True and False.
const ONE: [u8; 10] = [0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
const ZERO: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 0];

const LOSSY_INT: &str = "not an integral value: converting it to an integer would lose something";

/// An integral value that is not an int (`11.0`, `Decimal('3')`, `Fraction(4, 1)`), as
/// asyncpg takes them: `Ok(None)` when it is too large for 128 bits; an error when the value
/// has a fraction (asyncpg would truncate it) or is not a number at all.
fn integral(v: &Bound<'_, PyAny>) -> Result<Option<i128>, String> {
    if let Ok(f) = v.cast::<PyFloat>() {
        let f = f.value();
        if f.is_nan() {
            return Err("NaN is not an integer".into());
        }
        if f.is_infinite() {
            return Ok(None);
        }
        if f.fract() != 0.0 {
            return Err(LOSSY_INT.into());
        }
        // 2^127 is exact as a float; anything at or beyond it cannot fit.
        return Ok((f.abs() < 1.7014118346046923e38).then(|| f as i128));
    }
    if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
        return Err(required("an integer", v));
    }
    // Other numbers (Decimal, Fraction, numpy floats...): int() of it, kept only when it
    // compares equal to the value, so nothing is lost.
    let Ok(whole) = (unsafe {
        // SAFETY: `v` is live; a new reference or NULL with an exception set.
        Bound::from_owned_ptr_or_err(v.py(), pyo3::ffi::PyNumber_Long(v.as_ptr()))
    }) else {
        return Err(required("an integer", v));
    };
    if !whole.eq(v).unwrap_or(false) {
        return Err(LOSSY_INT.into());
    }
    Ok(whole.extract::<i128>().ok())
}

fn repr(v: &Bound<'_, PyAny>) -> String {
    v.repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string())
}

fn float(v: &Bound<'_, PyAny>) -> Result<f64, String> {
    // CPython's words, which asyncpg passes on.
    let not_real = || format!("must be real number, not {}", super::type_name(v));
    if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
        return Err(not_real());
    }
    v.extract::<f64>().map_err(|_| not_real())
}

thread_local! {
    /// The text of the numeric being decoded: one buffer reused for every value, as growing a
    /// fresh buffer cost more than the digits themselves.
    static NUMERIC_TEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `Decimal` of a binary numeric.
fn decimal<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // The buffer is released before Decimal() runs: nothing in between can run Python code
    // (making a str triggers no collection), so no finalizer can re-enter while it is held.
    // A malformed value's error is made after the buffer is released, too.
    let text = NUMERIC_TEXT.with_borrow_mut(|text| {
        text.clear();
        numeric::decode_to_decimal_text(data, text).map(|()| {
            // SAFETY: the text is ASCII; the result is a new str or NULL with an exception set.
            unsafe {
                Bound::from_owned_ptr_or_err(py, new_ascii_str(text))
                    .map(|s| s.cast_into_unchecked::<PyString>())
            }
        })
    });
    let text = text.map_err(|e| data_error(py, e.to_string()))??;
    decimal_of(py, &text)
}

/// The `Decimal` of a numeric's text output (as PostgreSQL prints it, including `NaN` and
/// `Infinity`, which Decimal reads the same way), in the shape the binary format gives (see
/// `numeric::decode_to_decimal_text`): an integer's zeros in whole groups of four are the
/// exponent, as the binary format does not send them (`10000` is `Decimal('1E+4')`).
pub fn decimal_from_text<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let zeros = digits.len() - digits.trim_end_matches('0').len();
    let groups = zeros / 4 * 4;
    if groups > 0 && groups < digits.len() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let shaped = format!("{}E+{groups}", &text[..text.len() - groups]);
        return decimal_of(py, &ascii_str(py, &shaped)?);
    }
    decimal_of(py, &ascii_str(py, text)?)
}

/// `Decimal(arg)`, exactly.
fn decimal_of<'py>(py: Python<'py>, arg: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    pycache::make_decimal(py)?.call(arg)
}

/// A `str` of `text`, copied without UTF-8 validation when it is ASCII (numbers, dates).
fn ascii_str<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
    if !text.is_ascii() {
        return Ok(PyString::new(py, text));
    }
    // SAFETY: checked just above; the result is a new str or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(py, new_ascii_str(text.as_bytes()))
            .map(|s| s.cast_into_unchecked())
    }
}
