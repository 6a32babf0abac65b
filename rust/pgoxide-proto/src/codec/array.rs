//! The binary array header: dimensions, lower bounds, NULL flag and element type.

use crate::backend::Cursor;
use crate::error::{Error, Result};
use crate::types::Oid;

/// PostgreSQL's MAXDIM.
pub const MAX_DIMS: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayHeader {
    pub element_oid: Oid,
    pub has_nulls: bool,
    /// `(length, lower bound)` per dimension, outermost first. Empty for an empty array.
    pub dims: Vec<(i32, i32)>,
}

impl ArrayHeader {
    pub fn element_count(&self) -> usize {
        // Saturating: with a zero-length dimension after large ones (which a header may claim:
        // it holds no elements) the exact product is 0, and must not overflow on the way.
        if self.dims.is_empty() {
            0
        } else {
            self.dims
                .iter()
                .fold(1usize, |n, &(len, _)| n.saturating_mul(len as usize))
        }
    }
}

/// An array header as read, with its dimensions in place: what a decoder needs, without
/// allocating for each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadHeader {
    pub element_oid: Oid,
    pub has_nulls: bool,
    ndim: usize,
    dims: [(i32, i32); MAX_DIMS],
}

impl ReadHeader {
    /// `(length, lower bound)` per dimension, outermost first. Empty for an empty array.
    pub fn dims(&self) -> &[(i32, i32)] {
        &self.dims[..self.ndim]
    }
}

/// Parses the header and returns a cursor positioned at the first element.
pub fn decode_header(data: &[u8]) -> Result<(ArrayHeader, Cursor<'_>)> {
    let (header, c) = read_header(data)?;
    Ok((
        ArrayHeader {
            element_oid: header.element_oid,
            has_nulls: header.has_nulls,
            dims: header.dims().to_vec(),
        },
        c,
    ))
}

/// [`decode_header`] without the allocation.
pub fn read_header(data: &[u8]) -> Result<(ReadHeader, Cursor<'_>)> {
    let mut c = Cursor::new(data, "array");
    let bad = |m: &str| Error::decode(format!("invalid array value: {m}"));
    let ndim = c.i32().map_err(|_| bad("truncated"))?;
    let flags = c.i32().map_err(|_| bad("truncated"))?;
    let element_oid = c.u32().map_err(|_| bad("truncated"))?;
    if !(0..=MAX_DIMS as i32).contains(&ndim) || !(0..=1).contains(&flags) {
        return Err(bad("bad dimensions or flags"));
    }
    let ndim = ndim as usize;
    let mut dims = [(0, 0); MAX_DIMS];
    let mut total: i64 = 1;
    for dim in &mut dims[..ndim] {
        let len = c.i32().map_err(|_| bad("truncated"))?;
        let lower = c.i32().map_err(|_| bad("truncated"))?;
        if len < 0 {
            return Err(bad("negative dimension"));
        }
        total = total.saturating_mul(i64::from(len));
        *dim = (len, lower);
    }
    // Each element needs at least its 4-byte length, which bounds what a header may claim.
    if ndim > 0 && total > (c.remaining() / 4) as i64 {
        return Err(bad("more elements than data"));
    }
    Ok((
        ReadHeader {
            element_oid,
            has_nulls: flags == 1,
            ndim,
            dims,
        },
        c,
    ))
}

/// Writes the header; the caller appends each element as Int32 length (-1 for NULL) + bytes.
pub fn encode_header(buf: &mut Vec<u8>, header: &ArrayHeader) {
    buf.extend_from_slice(&(header.dims.len() as i32).to_be_bytes());
    buf.extend_from_slice(&i32::from(header.has_nulls).to_be_bytes());
    buf.extend_from_slice(&header.element_oid.to_be_bytes());
    for (len, lower) in &header.dims {
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&lower.to_be_bytes());
    }
}

/// Offset of the has-nulls flag, for patching it after the elements are written.
pub const HAS_NULLS_OFFSET: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = ArrayHeader {
            element_oid: 23,
            has_nulls: true,
            dims: vec![(2, 1), (3, 0)],
        };
        let mut b = Vec::new();
        encode_header(&mut b, &h);
        b.extend(std::iter::repeat_n([255u8, 255, 255, 255], 6).flatten());
        let (parsed, rest) = decode_header(&b).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.element_count(), 6);
        assert_eq!(rest.remaining(), 24);
    }

    /// Found by tests/fuzz.rs: dimensions (2^31 - 1, 0) pass the element-count check (no
    /// elements); `text_array_literal` then wrote 2^31 empty sub-arrays (6 GB), and
    /// `element_count` overflowed on (2^31 - 1, 2^31 - 1, 2^31 - 1, 0).
    #[test]
    fn a_zero_length_dimension_holds_no_elements() {
        for dims in [
            vec![(i32::MAX, 1), (0, 1)],
            vec![(0, 1), (i32::MAX, 1)],
            vec![(i32::MAX, 1), (i32::MAX, 1), (i32::MAX, 1), (0, 1)],
        ] {
            let mut b = Vec::new();
            encode_header(
                &mut b,
                &ArrayHeader {
                    element_oid: 25,
                    has_nulls: false,
                    dims,
                },
            );
            let (h, rest) = decode_header(&b).unwrap();
            assert_eq!((h.element_count(), rest.remaining()), (0, 0));
            let mut literal = Vec::new();
            crate::codec::text::text_array_literal(&b, &mut literal).unwrap();
            assert_eq!(literal, b"{}");
        }
    }

    #[test]
    fn lying_header_rejected() {
        let h = ArrayHeader {
            element_oid: 23,
            has_nulls: false,
            dims: vec![(1 << 30, 1)],
        };
        let mut b = Vec::new();
        encode_header(&mut b, &h);
        assert!(decode_header(&b).is_err());
        assert!(decode_header(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 23]).is_err());
    }
}
