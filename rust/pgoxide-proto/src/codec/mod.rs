//! Binary value formats of the builtin types, to and from plain Rust values.
//!
//! The binding turns these values into Python objects; keeping the wire arithmetic here means
//! it is tested once, without an interpreter.

pub mod array;
pub mod bits;
pub mod composite;
pub mod datetime;
pub mod geometry;
pub mod hstore;
pub mod misc;
pub mod nested;
pub mod network;
pub mod numeric;
pub mod range;
pub mod text;

use crate::error::{Error, Result};

/// Reads a fixed-size big-endian value, naming the type when the length is wrong.
#[inline]
pub fn fixed<const N: usize>(data: &[u8], type_name: &str) -> Result<[u8; N]> {
    data.try_into().map_err(|_| {
        Error::decode(format!(
            "invalid {type_name} value: expected {N} bytes, got {}",
            data.len()
        ))
    })
}

#[inline]
pub fn decode_bool(data: &[u8]) -> Result<bool> {
    match data {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(Error::decode("invalid bool value")),
    }
}

#[inline]
pub fn decode_i16(data: &[u8]) -> Result<i16> {
    Ok(i16::from_be_bytes(fixed(data, "int2")?))
}

#[inline]
pub fn decode_i32(data: &[u8]) -> Result<i32> {
    Ok(i32::from_be_bytes(fixed(data, "int4")?))
}

#[inline]
pub fn decode_i64(data: &[u8]) -> Result<i64> {
    Ok(i64::from_be_bytes(fixed(data, "int8")?))
}

#[inline]
pub fn decode_u32(data: &[u8]) -> Result<u32> {
    Ok(u32::from_be_bytes(fixed(data, "oid")?))
}

#[inline]
pub fn decode_f32(data: &[u8]) -> Result<f32> {
    Ok(f32::from_be_bytes(fixed(data, "float4")?))
}

#[inline]
pub fn decode_f64(data: &[u8]) -> Result<f64> {
    Ok(f64::from_be_bytes(fixed(data, "float8")?))
}

/// jsonb's binary form is a version byte (1) followed by the JSON text.
pub fn decode_jsonb(data: &[u8]) -> Result<&[u8]> {
    match data.split_first() {
        Some((1, text)) => Ok(text),
        Some((v, _)) => Err(Error::decode(format!(
            "unsupported jsonb format version {v}"
        ))),
        None => Err(Error::decode("invalid jsonb value: empty")),
    }
}

pub const JSONB_VERSION: u8 = 1;
