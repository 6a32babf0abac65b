//! Composite types and anonymous records (`record_send`): Int32 field count, then per field
//! the field type's Oid and Int32 length (-1 for NULL) + the field's binary value.
//!
//! Dropped columns are not sent (the count is of live columns). On receipt `record_recv`
//! insists on the exact count and on each Oid matching the column's type, so an encoder needs
//! the composite's field types; for an anonymous `record` parameter the server cannot know
//! them and refuses binary input altogether.

use super::nested::{write_nullable, write_with, CountedWriter, ValueReader};
use crate::error::Result;
use crate::types::Oid;

/// The fields of a composite value. The framing is checked before the first field is
/// returned, so iterating cannot fail.
#[derive(Debug, Clone)]
pub struct CompositeFields<'a> {
    reader: ValueReader<'a>,
    left: usize,
}

pub fn decode_composite(data: &[u8]) -> Result<CompositeFields<'_>> {
    let mut r = ValueReader::new(data, "composite");
    // Each field is at least its Oid and its length.
    let count = r.count(8)?;
    let fields = CompositeFields {
        reader: r.clone(),
        left: count,
    };
    for _ in 0..count {
        r.u32()?;
        r.nullable()?;
    }
    r.finish()?;
    Ok(fields)
}

impl<'a> Iterator for CompositeFields<'a> {
    /// The field's type Oid and its value, `None` for NULL.
    type Item = (Oid, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Cannot fail: decode_composite walked the same bytes.
        let oid = self.reader.u32().ok()?;
        let value = self.reader.nullable().ok()?;
        Some((oid, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for CompositeFields<'_> {}

/// Writes a composite value: `begin`, one call per field in column order, `finish`. Dropped
/// without `finish` (for example when a field fails to encode and `?` returns), it removes
/// what it wrote.
#[derive(Debug)]
pub struct CompositeEncoder<'b> {
    list: CountedWriter<'b>,
}

impl<'b> CompositeEncoder<'b> {
    pub fn begin(buf: &'b mut Vec<u8>) -> Self {
        Self {
            list: CountedWriter::begin(buf, "composite"),
        }
    }

    /// Appends a field already encoded (`None` for NULL).
    pub fn field(&mut self, oid: Oid, value: Option<&[u8]>) -> Result<()> {
        let buf = self.list.buf();
        let start = buf.len();
        buf.extend_from_slice(&oid.to_be_bytes());
        write_nullable(buf, value, "composite").inspect_err(|_| buf.truncate(start))?;
        self.list.item_done();
        Ok(())
    }

    /// Appends a non-NULL field whose value `write` appends; its length is patched in after.
    pub fn field_with<F>(&mut self, oid: Oid, write: F) -> Result<()>
    where
        F: FnOnce(&mut Vec<u8>) -> Result<()>,
    {
        let buf = self.list.buf();
        let start = buf.len();
        buf.extend_from_slice(&oid.to_be_bytes());
        write_with(buf, "composite", write).inspect_err(|_| buf.truncate(start))?;
        self.list.item_done();
        Ok(())
    }

    /// Fields written so far.
    pub fn len(&self) -> usize {
        self.list.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(self) -> Result<()> {
        self.list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nested::hex;
    use crate::error::Error;
    use crate::types;
    use proptest::prelude::*;

    type Fields = Vec<(Oid, Option<Vec<u8>>)>;

    fn fields(wire: &[u8]) -> Fields {
        decode_composite(wire)
            .unwrap()
            .map(|(oid, v)| (oid, v.map(<[u8]>::to_vec)))
            .collect()
    }

    fn encode(fields: &Fields) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut enc = CompositeEncoder::begin(&mut buf);
        for (oid, value) in fields {
            enc.field(*oid, value.as_deref()).unwrap();
        }
        assert_eq!(enc.len(), fields.len());
        enc.finish().unwrap();
        buf
    }

    const RECORD: Oid = 2249;
    const INT4_ARRAY: Oid = 1007;
    const INNER_T: Oid = 16527;

    /// From PostgreSQL 15.18 (`record_send`).
    #[test]
    fn server_vectors() {
        let int4 = |v: i32| Some(v.to_be_bytes().to_vec());
        let cases: Vec<(&str, Fields)> =
            vec![
            // ROW(1, 'a')
            (
                "00000002000000170000000400000001000002c10000000161",
                vec![(types::INT4, int4(1)), (types::UNKNOWN, Some(b"a".to_vec()))],
            ),
            // ROW(1, NULL::text, 2::int8)
            (
                "0000000300000017000000040000000100000019ffffffff00000014000000080000000000000002",
                vec![
                    (types::INT4, int4(1)),
                    (types::TEXT, None),
                    (types::INT8, Some(2i64.to_be_bytes().to_vec())),
                ],
            ),
            // ROW() has no fields
            ("00000000", vec![]),
            // ROW(1, 2.5)::comp where comp was (a int4, b text, c float8) and b was dropped
            (
                "00000002000000170000000400000001000002bd000000084004000000000000",
                vec![
                    (types::INT4, int4(1)),
                    (types::FLOAT8, Some(2.5f64.to_be_bytes().to_vec())),
                ],
            ),
            // ROW(NULL, NULL, NULL)::outer_t
            (
                "000000030000408fffffffff000006a4ffffffff000003efffffffff",
                vec![(INNER_T, None), (types::NUMERIC, None), (INT4_ARRAY, None)],
            ),
        ];
        for (wire, expected) in cases {
            let wire = hex(wire);
            assert_eq!(fields(&wire), expected);
            assert_eq!(encode(&expected), wire);
        }
    }

    /// ROW(ROW(1,'x'), NULL::int4, ARRAY[1,2]): an anonymous record inside a record.
    #[test]
    fn nested_record() {
        let wire = hex("00000003000008c90000001900000002000000170000000400000001000002c1000000017800000017ffffffff000003ef00000024000000010000000000000017000000020000000100000004000000010000000400000002");
        let outer = fields(&wire);
        assert_eq!(outer.len(), 3);
        assert_eq!(outer[0].0, RECORD);
        assert_eq!(outer[1], (types::INT4, None));
        assert_eq!(outer[2].0, INT4_ARRAY);
        let inner = fields(outer[0].1.as_deref().unwrap());
        assert_eq!(
            inner,
            vec![
                (types::INT4, Some(vec![0, 0, 0, 1])),
                (types::UNKNOWN, Some(b"x".to_vec()))
            ]
        );

        // Built back with the inner record written in place.
        let mut buf = Vec::new();
        let mut enc = CompositeEncoder::begin(&mut buf);
        enc.field_with(RECORD, |b| {
            let mut inner_enc = CompositeEncoder::begin(b);
            inner_enc.field(types::INT4, Some(&[0, 0, 0, 1]))?;
            inner_enc.field(types::UNKNOWN, Some(b"x"))?;
            inner_enc.finish()
        })
        .unwrap();
        enc.field(types::INT4, None).unwrap();
        enc.field(INT4_ARRAY, outer[2].1.as_deref()).unwrap();
        enc.finish().unwrap();
        assert_eq!(buf, wire);
    }

    /// ROW(ROW(7,'hi')::inner_t, 1.5, '{3}')::outer_t: a named composite inside another.
    #[test]
    fn nested_named_composite() {
        let wire = hex("000000030000408f00000018000000020000001500000002000700000019000000026869000006a40000000c000200000000000100011388000003ef0000001c00000001000000000000001700000001000000010000000400000003");
        let outer = fields(&wire);
        assert_eq!(
            outer.iter().map(|f| f.0).collect::<Vec<_>>(),
            [INNER_T, types::NUMERIC, INT4_ARRAY]
        );
        assert_eq!(
            fields(outer[0].1.as_deref().unwrap()),
            vec![
                (types::INT2, Some(vec![0, 7])),
                (types::TEXT, Some(b"hi".to_vec()))
            ]
        );
        assert_eq!(encode(&outer), wire);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "000000",
            "ffffffff",                       // negative count
            "00000001",                       // field missing
            "0000000100000017",               // length missing
            "0000000100000017fffffffe",       // bad length
            "000000010000001700000004000000", // value truncated
            "0000000100000017ffffffff00",     // trailing byte
            "0000000200000017ffffffff",       // second field missing
        ] {
            assert!(decode_composite(&hex(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoder_rolls_back_on_failure() {
        let mut buf = vec![5];
        let outcome = (|| {
            let mut enc = CompositeEncoder::begin(&mut buf);
            enc.field(types::INT4, Some(&[0, 0, 0, 1]))?;
            enc.field_with(types::TEXT, |b| {
                b.extend_from_slice(b"partial");
                Err(Error::Encode("bad".into()))
            })?;
            enc.finish()
        })();
        assert!(outcome.is_err());
        assert_eq!(buf, [5]);
    }

    fn any_fields() -> impl Strategy<Value = Fields> {
        proptest::collection::vec(
            (
                any::<u32>(),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            ),
            0..8,
        )
    }

    proptest! {
        #[test]
        fn round_trip(value in any_fields()) {
            let wire = encode(&value);
            prop_assert_eq!(fields(&wire), value);
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..48)) {
            if let Ok(it) = decode_composite(&data) {
                let n = it.len();
                prop_assert_eq!(it.count(), n);
            }
        }
    }
}
