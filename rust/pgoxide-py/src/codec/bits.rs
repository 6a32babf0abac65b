//! Bit strings: bit and varbit, as `pgoxide.types.BitString` (a str of 0s and 1s, and bytes,
//! are accepted too).

use pgoxide_proto::codec::bits;
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::{core_error, expected, EncodeResult};
use crate::pycache;

/// Decodes a bit string (the one format of this family).
pub fn decode<'py>(py: Python<'py>, _: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let bits = bits::decode_bits(data).map_err(core_error(py))?;
    pycache::types_attr(py, "BitString")?
        .call_method1("frombytes", (PyBytes::new(py, bits.bytes), bits.len))
}

/// Encodes a bit string.
pub fn encode(_: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let (bytes, len) = bits_of(v)?;
    bits::encode_bits(buf, bits::BitString { len, bytes: &bytes }).map_err(|e| e.to_string())
}

/// Bit string bytes and length from a `BitString`, a str of 0s and 1s, or (as asyncpg takes
/// them) bytes, eight bits each.
fn bits_of(v: &Bound<'_, PyAny>) -> Result<(Vec<u8>, usize), String> {
    if let Ok(b) = v.cast::<PyBytes>() {
        let bytes = b.as_bytes().to_vec();
        let len = bytes.len() * 8;
        return Ok((bytes, len));
    }
    // bytearray and memoryview too: asyncpg takes any bytes-like object.
    if let Ok(b) = pyo3::buffer::PyBuffer::<u8>::get(v) {
        let bytes = b.to_vec(v.py()).map_err(|e| e.to_string())?;
        let len = bytes.len() * 8;
        return Ok((bytes, len));
    }
    if let Ok(s) = v.cast::<PyString>() {
        let text = s.to_str().map_err(|e| e.to_string())?;
        let mut bytes = vec![0u8; text.len().div_ceil(8)];
        for (i, c) in text.chars().enumerate() {
            match c {
                '1' => bytes[i / 8] |= 0x80 >> (i % 8),
                '0' => {}
                _ => return Err(format!("{text:?} is not a bit string of 0s and 1s")),
            }
        }
        return Ok((bytes, text.len()));
    }
    let bytes: Vec<u8> = v
        .getattr("bytes")
        .and_then(|b| b.extract())
        .map_err(|_| expected("BitString, str or a bytes-like object", v))?;
    let len: usize = v.len().map_err(|e| e.to_string())?;
    Ok((bytes, len))
}
