//! hstore (`hstore_send` in contrib/hstore): Int32 pair count, then per pair the key as Int32
//! length + bytes and the value as Int32 length (-1 for NULL) + bytes.
//!
//! Keys and values are text in the database encoding; checking UTF-8 is left to the caller.
//! The server sends pairs in its storage order (by key length, then bytes) with unique keys;
//! on receipt it sorts and keeps the first of duplicate keys, and limits keys and values to
//! 0x3FFFFFFF bytes.

use super::nested::{unencodable, write_nullable, CountedWriter, ValueReader};
use crate::error::Result;

/// HSTORE_MAX_KEY_LEN and HSTORE_MAX_VALUE_LEN.
pub const MAX_STRING_LEN: usize = 0x3FFF_FFFF;

/// A key and its value (`None` for NULL), as bytes.
pub type Pair<'a> = (&'a [u8], Option<&'a [u8]>);

pub fn decode_hstore(data: &[u8]) -> Result<Vec<Pair<'_>>> {
    let mut r = ValueReader::new(data, "hstore");
    // Each pair is at least its two lengths.
    let count = r.count(8)?;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let key = r.non_null("key")?;
        let value = r.nullable()?;
        pairs.push((key, value));
    }
    r.finish()?;
    Ok(pairs)
}

/// Fails (leaving the buffer as it was) when a key or value is longer than hstore allows.
pub fn encode_hstore<'a, I>(buf: &mut Vec<u8>, pairs: I) -> Result<()>
where
    I: IntoIterator<Item = Pair<'a>>,
{
    let mut list = CountedWriter::begin(buf, "hstore");
    for (key, value) in pairs {
        if key.len() > MAX_STRING_LEN {
            return Err(unencodable("hstore", "key too long"));
        }
        if value.is_some_and(|v| v.len() > MAX_STRING_LEN) {
            return Err(unencodable("hstore", "value too long"));
        }
        write_nullable(list.buf(), Some(key), "hstore")?;
        write_nullable(list.buf(), value, "hstore")?;
        list.item_done();
    }
    list.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nested::hex;
    use proptest::prelude::*;

    /// Wire hex and the pairs as text.
    type Case<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

    /// From PostgreSQL 15.18 (`hstore_send`).
    #[test]
    fn server_vectors() {
        let cases: [Case<'_>; 6] = [
            // 'a=>1,b=>NULL'
            (
                "00000002000000016100000001310000000162ffffffff",
                &[("a", Some("1")), ("b", None)],
            ),
            // ''
            ("00000000", &[]),
            // 'zz=>1, a=>"", b=>x': shorter keys first
            (
                "0000000300000001610000000000000001620000000178000000027a7a0000000131",
                &[("a", Some("")), ("b", Some("x")), ("zz", Some("1"))],
            ),
            // '"ключ"=>"значение"'
            (
                "0000000100000008d0bad0bbd18ed18700000010d0b7d0bdd0b0d187d0b5d0bdd0b8d0b5",
                &[("ключ", Some("значение"))],
            ),
            // 'a=>1,a=>2' keeps the first
            ("0000000100000001610000000131", &[("a", Some("1"))]),
            // '""=>NULL'
            ("0000000100000000ffffffff", &[("", None)]),
        ];
        for (wire, expected) in cases {
            let wire = hex(wire);
            let expected: Vec<Pair<'_>> = expected
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.map(str::as_bytes)))
                .collect();
            assert_eq!(decode_hstore(&wire).unwrap(), expected);
            let mut buf = Vec::new();
            encode_hstore(&mut buf, expected.iter().copied()).unwrap();
            assert_eq!(buf, wire);
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "ffffffff",
            "00000001",
            "00000001ffffffffffffffff",   // NULL key
            "000000010000000161",         // value length missing
            "00000001000000016100000002", // value truncated
            "0000000100000001610000000131ff",
            "0000000200000001610000000131",
        ] {
            assert!(decode_hstore(&hex(bad)).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(pairs in proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..8),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            ),
            0..10,
        )) {
            let mut buf = Vec::new();
            encode_hstore(&mut buf, pairs.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))).unwrap();
            let back = decode_hstore(&buf).unwrap();
            prop_assert_eq!(back.len(), pairs.len());
            for ((k, v), (bk, bv)) in pairs.iter().zip(back) {
                prop_assert_eq!(k.as_slice(), bk);
                prop_assert_eq!(v.as_deref(), bv);
            }
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = decode_hstore(&data);
        }
    }
}
