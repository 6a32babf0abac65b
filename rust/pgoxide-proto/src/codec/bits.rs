//! bit and varbit (one format): Int32 bit length, then the bits packed most significant first
//! into exactly ceil(length / 8) bytes.
//!
//! The pad bits after the last real bit are zero in everything a current server sends, but
//! `varbit_recv` zeroes them rather than rejecting them, and servers before that fix could
//! store non-zero padding; so the decoder tolerates them and [`BitString::get`] and
//! [`BitString::iter`] never look at them. The encoder insists on zeros.

use super::nested::{unencodable, ValueReader};
use crate::error::Result;

/// PostgreSQL's VARBITMAXLEN.
pub const MAX_BITS: usize = i32::MAX as usize - 7;

/// A bit string: `len` bits packed into `bytes` (`bytes.len() == len.div_ceil(8)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitString<'a> {
    pub len: usize,
    pub bytes: &'a [u8],
}

impl<'a> BitString<'a> {
    pub fn get(&self, index: usize) -> Option<bool> {
        if index >= self.len {
            return None;
        }
        let byte = self.bytes.get(index / 8)?;
        Some(byte & (0x80 >> (index % 8)) != 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = bool> + 'a {
        let copy = *self;
        (0..self.len).map(move |i| copy.get(i).unwrap_or(false))
    }

    /// Whether the bits after `len` in the last byte are all zero.
    pub fn has_zero_padding(&self) -> bool {
        let used = self.len % 8;
        used == 0 || self.bytes.last().map_or(true, |b| b & (0xFF >> used) == 0)
    }
}

pub fn decode_bits(data: &[u8]) -> Result<BitString<'_>> {
    let mut r = ValueReader::new(data, "bit string");
    let len = r.i32()?;
    let len = usize::try_from(len).map_err(|_| r.error("negative length"))?;
    if len > MAX_BITS {
        return Err(r.error("length too large"));
    }
    let bytes = r.rest();
    if bytes.len() != len.div_ceil(8) {
        return Err(r.error(&format!(
            "{len} bits need {} bytes, got {}",
            len.div_ceil(8),
            bytes.len()
        )));
    }
    Ok(BitString { len, bytes })
}

/// Fails when the byte count does not match the length or a pad bit is set.
pub fn encode_bits(buf: &mut Vec<u8>, bits: BitString<'_>) -> Result<()> {
    if bits.len > MAX_BITS {
        return Err(unencodable("bit string", "too long"));
    }
    if bits.bytes.len() != bits.len.div_ceil(8) {
        return Err(unencodable(
            "bit string",
            &format!(
                "{} bits need {} bytes, got {}",
                bits.len,
                bits.len.div_ceil(8),
                bits.bytes.len()
            ),
        ));
    }
    if !bits.has_zero_padding() {
        return Err(unencodable(
            "bit string",
            "bits after the length in the last byte must be zero",
        ));
    }
    buf.extend_from_slice(&(bits.len as i32).to_be_bytes());
    buf.extend_from_slice(bits.bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nested::hex;
    use proptest::prelude::*;

    fn text(bits: &BitString<'_>) -> String {
        bits.iter().map(|b| if b { '1' } else { '0' }).collect()
    }

    /// From PostgreSQL 15.18 (`bit_send`, `varbit_send`).
    #[test]
    fn server_vectors() {
        for (wire, expected) in [
            ("00000005a8", "10101"),
            ("00000008f0", "11110000"),
            ("00000000", ""),
            ("0000000caab0", "101010101011"),
            ("0000000180", "1"),
            ("00000010f0f0", "1111000011110000"),
            ("00000021aaaaaaaa80", "101010101010101010101010101010101"),
        ] {
            let wire = hex(wire);
            let bits = decode_bits(&wire).unwrap();
            assert_eq!(text(&bits), expected);
            assert_eq!(bits.len, expected.len());
            let mut buf = Vec::new();
            encode_bits(&mut buf, bits).unwrap();
            assert_eq!(buf, wire);
        }
    }

    #[test]
    fn padding_is_tolerated_on_decode_and_refused_on_encode() {
        let wire = hex("00000005af");
        let bits = decode_bits(&wire).unwrap();
        assert_eq!(text(&bits), "10101");
        assert!(!bits.has_zero_padding());
        assert!(encode_bits(&mut Vec::new(), bits).is_err());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "000000",
            "00000005",
            "00000005a800",
            "0000000000",
            "ffffffff",
        ] {
            assert!(decode_bits(&hex(bad)).is_err(), "{bad}");
        }
        let mut buf = Vec::new();
        assert!(encode_bits(
            &mut buf,
            BitString {
                len: 9,
                bytes: &[0]
            }
        )
        .is_err());
        assert!(encode_bits(
            &mut buf,
            BitString {
                len: 0,
                bytes: &[0]
            }
        )
        .is_err());
        assert!(buf.is_empty());
    }

    proptest! {
        #[test]
        fn round_trip(bools in proptest::collection::vec(any::<bool>(), 0..100)) {
            let mut bytes = vec![0u8; bools.len().div_ceil(8)];
            for (i, b) in bools.iter().enumerate() {
                if *b {
                    bytes[i / 8] |= 0x80 >> (i % 8);
                }
            }
            let mut buf = Vec::new();
            encode_bits(&mut buf, BitString { len: bools.len(), bytes: &bytes }).unwrap();
            let decoded = decode_bits(&buf).unwrap();
            prop_assert_eq!(decoded.iter().collect::<Vec<_>>(), bools);
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..20)) {
            if let Ok(bits) = decode_bits(&data) {
                let _ = bits.iter().count();
            }
        }
    }
}
