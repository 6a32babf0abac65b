//! User codecs (asyncpg's `set_type_codec`): the value handed to the user's callables in their
//! exchange format (text, the binary form, or a tuple) and taken back from them.

use pgoxide_proto::codec::{self, datetime as dt, JSONB_VERSION};
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{composites, core_error, expected, str_bytes, text, Codec, EncodeResult};
use crate::errors::data_error;
use crate::registry::{ExchangeFormat, UserCodec};

/// A value handed to a user codec's decoder in its exchange format.
pub fn decode<'py>(
    py: Python<'py>,
    user: &UserCodec,
    inner: &Codec,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let exchanged = match user.format {
        ExchangeFormat::Text => match inner {
            // Text-like types travel in binary (so they also nest in arrays): strip the
            // version byte where the binary form has one.
            Codec::Scalar(Builtin::Jsonb | Builtin::Jsonpath) => {
                text(py, codec::decode_jsonb(data).map_err(core_error(py))?)?
            }
            _ => text(py, data)?,
        },
        ExchangeFormat::Binary => PyBytes::new(py, data).into_any(),
        ExchangeFormat::Tuple => decode_tuple(py, inner, data)?,
    };
    user.decoder.bind(py).call1((exchanged,))
}

/// A value in asyncpg's `tuple` exchange format, for the types that have one.
fn decode_tuple<'py>(py: Python<'py>, inner: &Codec, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match inner {
        // The attribute values as a plain tuple.
        Codec::Composite(c) => {
            let record = composites::decode(py, c, data)?;
            // The tuple is Python's and tracked: what the record holds must be too.
            crate::record::track_lists(record.as_ptr());
            // SAFETY: `record` is live; a new reference or NULL with an exception set.
            unsafe {
                Bound::from_owned_ptr_or_err(py, pyo3::ffi::PySequence_Tuple(record.as_ptr()))?
            }
        }
        Codec::Scalar(Builtin::Date) => (codec::decode_i32(data).map_err(core)?,)
            .into_pyobject(py)?
            .into_any(),
        Codec::Scalar(Builtin::Timestamp | Builtin::TimestampTz | Builtin::Time) => {
            (codec::decode_i64(data).map_err(core)?,)
                .into_pyobject(py)?
                .into_any()
        }
        Codec::Scalar(Builtin::TimeTz) => {
            let raw: [u8; 12] = codec::fixed(data, "timetz").map_err(core)?;
            let usecs = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
            // The zone as sent: seconds west of UTC, as asyncpg passes it.
            let west = i32::from_be_bytes(raw[8..].try_into().expect("4 bytes"));
            (usecs, west).into_pyobject(py)?.into_any()
        }
        Codec::Scalar(Builtin::Interval) => {
            let iv = dt::decode_interval(data).map_err(core)?;
            (iv.months, iv.days, iv.microseconds)
                .into_pyobject(py)?
                .into_any()
        }
        _ => {
            return Err(data_error(
                py,
                "format='tuple' is not supported for this type".into(),
            ))
        }
    })
}

/// Encodes what a user codec's encoder returns, in its exchange format.
pub fn encode(
    user: &UserCodec,
    inner: &Codec,
    v: &Bound<'_, PyAny>,
    buf: &mut Vec<u8>,
) -> EncodeResult {
    let exchanged = user
        .encoder
        .bind(v.py())
        .call1((v,))
        .map_err(|e| format!("encoder failed: {e}"))?;
    match user.format {
        ExchangeFormat::Text => {
            if matches!(inner, Codec::Scalar(Builtin::Jsonb | Builtin::Jsonpath)) {
                buf.push(JSONB_VERSION);
            }
            if let Ok(b) = exchanged.cast::<PyBytes>() {
                buf.extend_from_slice(b.as_bytes());
            } else {
                buf.extend_from_slice(
                    str_bytes(&exchanged).map_err(|e| format!("encoder result: {e}"))?,
                );
            }
        }
        ExchangeFormat::Binary => {
            if let Ok(b) = exchanged.cast::<PyBytes>() {
                buf.extend_from_slice(b.as_bytes());
            } else if let Ok(b) = pyo3::buffer::PyBuffer::<u8>::get(&exchanged) {
                // bytearray, memoryview and other byte buffers.
                buf.extend_from_slice(&b.to_vec(v.py()).map_err(|e| e.to_string())?);
            } else {
                return Err(format!(
                    "encoder result: {}",
                    expected("bytes, bytearray or memoryview", &exchanged)
                ));
            }
        }
        ExchangeFormat::Tuple => encode_tuple(inner, &exchanged, buf)?,
    }
    Ok(())
}

/// Encodes a value given in asyncpg's `tuple` exchange format, for the types that have one.
fn encode_tuple(inner: &Codec, t: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    if let Codec::Composite(c) = inner {
        // The attribute values in order, each through its own codec.
        return composites::encode(c, t, buf).map_err(|e| format!("encoder result: {e}"));
    }
    let items: Vec<i64> = t
        .extract()
        .map_err(|_| format!("encoder result: {}", expected("a tuple of ints", t)))?;
    let want = |n: usize| {
        if items.len() == n {
            Ok(())
        } else {
            Err(format!("encoder result: expected a tuple of {n} ints"))
        }
    };
    let narrow =
        |x: i64| i32::try_from(x).map_err(|_| "encoder result: value out of int4 range".to_owned());
    match inner {
        Codec::Scalar(Builtin::Date) => {
            want(1)?;
            buf.extend_from_slice(&narrow(items[0])?.to_be_bytes());
        }
        Codec::Scalar(Builtin::Timestamp | Builtin::TimestampTz | Builtin::Time) => {
            want(1)?;
            buf.extend_from_slice(&items[0].to_be_bytes());
        }
        Codec::Scalar(Builtin::TimeTz) => {
            want(2)?;
            buf.extend_from_slice(&items[0].to_be_bytes());
            buf.extend_from_slice(&narrow(items[1])?.to_be_bytes());
        }
        Codec::Scalar(Builtin::Interval) => {
            want(3)?;
            dt::encode_interval(
                buf,
                dt::Interval {
                    months: narrow(items[0])?,
                    days: narrow(items[1])?,
                    microseconds: items[2],
                },
            );
        }
        _ => return Err("format='tuple' is not supported for this type".into()),
    }
    Ok(())
}
