//! Ranges and multiranges, independent of the element type: bounds stay bytes, which the
//! caller decodes (or encodes) with the element's own codec.
//!
//! A range (`range_send`) is a flags byte, then the lower bound if it has one, then the upper,
//! each as Int32 length + the element's binary value. A bound is present unless the range is
//! empty or that bound is infinite (or marked NULL, a flag no server sets: `range_recv` masks
//! the NULL flags away, so an encoder must never rely on them). The server never sends an
//! infinite bound as inclusive (and drops that flag on receipt). A multirange (`multirange_send`, PostgreSQL 14+) is an Int32 count followed by
//! each range as Int32 length + range bytes; the server sorts and merges the ranges on receipt
//! and drops empty ones.

use std::ops::Bound;

use super::nested::{write_with, CountedWriter, ValueReader};
use crate::error::Result;

/// The range is empty (no bound follows).
pub const EMPTY: u8 = 0x01;
/// The lower bound is inclusive.
pub const LB_INC: u8 = 0x02;
/// The upper bound is inclusive.
pub const UB_INC: u8 = 0x04;
/// The lower bound is -infinity (none follows).
pub const LB_INF: u8 = 0x08;
/// The upper bound is +infinity (none follows).
pub const UB_INF: u8 = 0x10;
/// Lower bound NULL: defined by PostgreSQL but never set (none follows).
pub const LB_NULL: u8 = 0x20;
/// Upper bound NULL: defined by PostgreSQL but never set (none follows).
pub const UB_NULL: u8 = 0x40;
/// Every flag a range value may carry (0x80 marks GiST index pages, never values).
const VALUE_FLAGS: u8 = EMPTY | LB_INC | UB_INC | LB_INF | UB_INF | LB_NULL | UB_NULL;

/// A decoded range: its flags as sent and the bytes of each bound present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<'a> {
    pub flags: u8,
    pub lower: Option<&'a [u8]>,
    pub upper: Option<&'a [u8]>,
}

impl<'a> Range<'a> {
    pub fn is_empty(&self) -> bool {
        self.flags & EMPTY != 0
    }

    /// The lower bound; `Unbounded` when infinite (and for an empty range).
    pub fn lower_bound(&self) -> Bound<&'a [u8]> {
        bound(self.lower, self.flags & LB_INC != 0)
    }

    /// The upper bound; `Unbounded` when infinite (and for an empty range).
    pub fn upper_bound(&self) -> Bound<&'a [u8]> {
        bound(self.upper, self.flags & UB_INC != 0)
    }
}

fn bound(value: Option<&[u8]>, inclusive: bool) -> Bound<&[u8]> {
    match value {
        None => Bound::Unbounded,
        Some(v) if inclusive => Bound::Included(v),
        Some(v) => Bound::Excluded(v),
    }
}

/// Whether a bound follows, as PostgreSQL's `RANGE_HAS_LBOUND`/`RANGE_HAS_UBOUND` decide.
fn has_bound(flags: u8, infinite: u8, null: u8) -> bool {
    flags & (EMPTY | infinite | null) == 0
}

pub fn decode_range(data: &[u8]) -> Result<Range<'_>> {
    let mut r = ValueReader::new(data, "range");
    let flags = r.u8()?;
    if flags & !VALUE_FLAGS != 0 {
        return Err(r.error(&format!("unknown flags {flags:#04x}")));
    }
    let lower = if has_bound(flags, LB_INF, LB_NULL) {
        Some(r.non_null("lower bound")?)
    } else {
        None
    };
    let upper = if has_bound(flags, UB_INF, UB_NULL) {
        Some(r.non_null("upper bound")?)
    } else {
        None
    };
    r.finish()?;
    Ok(Range {
        flags,
        lower,
        upper,
    })
}

pub fn encode_empty_range(buf: &mut Vec<u8>) {
    buf.push(EMPTY);
}

/// Encodes a non-empty range; each finite bound's closure appends the element's binary value
/// (its length is patched in afterwards). On error the buffer is left as it was.
pub fn encode_range<L, U>(buf: &mut Vec<u8>, lower: Bound<L>, upper: Bound<U>) -> Result<()>
where
    L: FnOnce(&mut Vec<u8>) -> Result<()>,
    U: FnOnce(&mut Vec<u8>) -> Result<()>,
{
    let start = buf.len();
    let flags = match &lower {
        Bound::Included(_) => LB_INC,
        Bound::Excluded(_) => 0,
        Bound::Unbounded => LB_INF,
    } | match &upper {
        Bound::Included(_) => UB_INC,
        Bound::Excluded(_) => 0,
        Bound::Unbounded => UB_INF,
    };
    buf.push(flags);
    let outcome = write_bound(buf, lower).and_then(|()| write_bound(buf, upper));
    if outcome.is_err() {
        buf.truncate(start);
    }
    outcome
}

fn write_bound<F>(buf: &mut Vec<u8>, bound: Bound<F>) -> Result<()>
where
    F: FnOnce(&mut Vec<u8>) -> Result<()>,
{
    match bound {
        Bound::Included(write) | Bound::Excluded(write) => write_with(buf, "range", write),
        Bound::Unbounded => Ok(()),
    }
}

/// [`encode_range`] with bounds already encoded.
pub fn encode_range_bytes(
    buf: &mut Vec<u8>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Result<()> {
    encode_range(buf, lower.map(copy_bytes), upper.map(copy_bytes))
}

fn copy_bytes(bytes: &[u8]) -> impl FnOnce(&mut Vec<u8>) -> Result<()> + '_ {
    move |b| {
        b.extend_from_slice(bytes);
        Ok(())
    }
}

/// The ranges of a multirange, as byte slices for [`decode_range`]. The framing (count,
/// lengths, no trailing bytes) is checked before the first range is returned.
#[derive(Debug, Clone)]
pub struct MultirangeRanges<'a> {
    reader: ValueReader<'a>,
    left: usize,
}

pub fn decode_multirange(data: &[u8]) -> Result<MultirangeRanges<'_>> {
    let mut r = ValueReader::new(data, "multirange");
    // Each range is at least its length and a flags byte.
    let count = r.count(5)?;
    let ranges = MultirangeRanges {
        reader: r.clone(),
        left: count,
    };
    for _ in 0..count {
        if r.non_null("range")?.is_empty() {
            return Err(r.error("zero-length range"));
        }
    }
    r.finish()?;
    Ok(ranges)
}

impl<'a> Iterator for MultirangeRanges<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Cannot fail: decode_multirange walked the same bytes.
        self.reader.non_null("range").ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for MultirangeRanges<'_> {}

/// Writes a multirange: `begin`, one call per range, `finish`. Dropped without `finish` (for
/// example when a bound fails to encode and `?` returns), it removes what it wrote.
#[derive(Debug)]
pub struct MultirangeEncoder<'b> {
    list: CountedWriter<'b>,
}

impl<'b> MultirangeEncoder<'b> {
    pub fn begin(buf: &'b mut Vec<u8>) -> Self {
        Self {
            list: CountedWriter::begin(buf, "multirange"),
        }
    }

    /// Appends a non-empty range, as [`encode_range`].
    pub fn range<L, U>(&mut self, lower: Bound<L>, upper: Bound<U>) -> Result<()>
    where
        L: FnOnce(&mut Vec<u8>) -> Result<()>,
        U: FnOnce(&mut Vec<u8>) -> Result<()>,
    {
        write_with(self.list.buf(), "multirange", |b| {
            encode_range(b, lower, upper)
        })?;
        self.list.item_done();
        Ok(())
    }

    /// Appends an empty range (which the server drops).
    pub fn empty_range(&mut self) {
        let buf = self.list.buf();
        buf.extend_from_slice(&1i32.to_be_bytes());
        buf.push(EMPTY);
        self.list.item_done();
    }

    /// Appends a range already in its binary form.
    pub fn range_bytes(&mut self, range: &[u8]) -> Result<()> {
        write_with(self.list.buf(), "multirange", |b| {
            b.extend_from_slice(range);
            Ok(())
        })?;
        self.list.item_done();
        Ok(())
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
    use proptest::prelude::*;

    type OwnedBound = Bound<Vec<u8>>;
    /// `None` for an empty range.
    type OwnedRange = Option<(OwnedBound, OwnedBound)>;

    fn int4(v: i32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    fn reencode(r: &Range<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        if r.is_empty() {
            encode_empty_range(&mut buf);
        } else {
            encode_range_bytes(&mut buf, r.lower_bound(), r.upper_bound()).unwrap();
        }
        buf
    }

    /// From PostgreSQL 15.18 (`range_send`), with the bounds expected.
    #[test]
    fn server_vectors() {
        let inc = |v: &[u8]| Bound::Included(v.to_vec());
        let exc = |v: &[u8]| Bound::Excluded(v.to_vec());
        let unb = || Bound::Unbounded;
        let cases: Vec<(&str, bool, OwnedBound, OwnedBound)> = vec![
            // '[1,5)'::int4range
            (
                "0200000004000000010000000400000005",
                false,
                inc(&int4(1)),
                exc(&int4(5)),
            ),
            // 'empty'::int4range
            ("01", true, unb(), unb()),
            // '[1,5]'::int4range is canonicalised to [1,6)
            (
                "0200000004000000010000000400000006",
                false,
                inc(&int4(1)),
                exc(&int4(6)),
            ),
            // int4range(NULL, 5): lower infinite
            ("080000000400000005", false, unb(), exc(&int4(5))),
            // int4range(3, NULL): upper infinite
            ("120000000400000003", false, inc(&int4(3)), unb()),
            // '(,)'::int4range
            ("18", false, unb(), unb()),
            // '[1.5,2.5]'::numrange
            (
                "060000000c0002000000000001000113880000000c000200000000000100021388",
                false,
                inc(&hex("000200000000000100011388")),
                inc(&hex("000200000000000100021388")),
            ),
            // '(1.5,2.5)'::numrange
            (
                "000000000c0002000000000001000113880000000c000200000000000100021388",
                false,
                exc(&hex("000200000000000100011388")),
                exc(&hex("000200000000000100021388")),
            ),
            // numrange(NULL, 2.5, '[]'): an infinite bound is never inclusive
            (
                "0c0000000c000200000000000100021388",
                false,
                unb(),
                inc(&hex("000200000000000100021388")),
            ),
            // '[2000-01-01,2000-01-02)'::tsrange
            (
                "0200000008000000000000000000000008000000141dd76000",
                false,
                inc(&hex("0000000000000000")),
                exc(&hex("000000141dd76000")),
            ),
            // '[-infinity,2000-01-01)'::tsrange: an infinite *value* is a finite bound
            (
                "02000000088000000000000000000000080000000000000000",
                false,
                inc(&hex("8000000000000000")),
                exc(&hex("0000000000000000")),
            ),
            // '[-1,1)'::int8range
            (
                "0200000008ffffffffffffffff000000080000000000000001",
                false,
                inc(&hex("ffffffffffffffff")),
                exc(&hex("0000000000000001")),
            ),
            // '[2000-01-01,infinity)'::daterange
            (
                "020000000400000000000000047fffffff",
                false,
                inc(&int4(0)),
                exc(&int4(i32::MAX)),
            ),
            // '[a,"b c")'::textrange (a user-defined range over text)
            ("02000000016100000003622063", false, inc(b"a"), exc(b"b c")),
            // textrange('', 'z', '(]'): a zero-length bound
            ("0400000000000000017a", false, exc(b""), inc(b"z")),
        ];
        for (wire, empty, lower, upper) in cases {
            let wire = hex(wire);
            let r = decode_range(&wire).unwrap();
            assert_eq!(r.is_empty(), empty, "{wire:?}");
            assert_eq!(
                r.lower_bound(),
                lower.as_ref().map(Vec::as_slice),
                "{wire:?}"
            );
            assert_eq!(
                r.upper_bound(),
                upper.as_ref().map(Vec::as_slice),
                "{wire:?}"
            );
            assert_eq!(reencode(&r), wire);
        }
    }

    #[test]
    fn null_flags_mean_no_bound() {
        let r = decode_range(&[LB_NULL | UB_NULL]).unwrap();
        assert_eq!((r.lower, r.upper), (None, None));
        assert_eq!(r.lower_bound(), Bound::Unbounded);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "80", // GiST-only flag
            "02", // bounds missing
            "0200000004000000010000000400",
            "02000000040000000100000004000000050000", // trailing bytes
            "02ffffffff00000004000000050000",         // NULL bound
            "0100",                                   // empty with trailing byte
        ] {
            assert!(decode_range(&hex(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn failed_bound_leaves_buffer_untouched() {
        let mut buf = vec![7];
        let err = encode_range(
            &mut buf,
            Bound::Included(|b: &mut Vec<u8>| {
                b.extend_from_slice(&int4(1));
                Ok(())
            }),
            Bound::Excluded(|_: &mut Vec<u8>| Err(Error::Encode("bad".into()))),
        );
        assert!(err.is_err());
        assert_eq!(buf, [7]);
    }

    /// From PostgreSQL 15.18 (`multirange_send`).
    #[test]
    fn multirange_server_vectors() {
        let cases: [(&str, &[&str]); 6] = [
            (
                // '{[1,3),[5,7)}'::int4multirange
                "00000002000000110200000004000000010000000400000003000000110200000004000000050000000400000007",
                &[
                    "0200000004000000010000000400000003",
                    "0200000004000000050000000400000007",
                ],
            ),
            // '{}'::int4multirange, and also '{empty}'
            ("00000000", &[]),
            (
                // '{(,3),[5,)}'::int4multirange
                "000000020000000908000000040000000300000009120000000400000005",
                &["080000000400000003", "120000000400000005"],
            ),
            (
                // int4multirange(int4range(NULL, 2), int4range(10, NULL))
                "00000002000000090800000004000000020000000912000000040000000a",
                &["080000000400000002", "12000000040000000a"],
            ),
            (
                // '{[1,2]}'::nummultirange
                "000000010000001d060000000a000100000000000000010000000a00010000000000000002",
                &["060000000a000100000000000000010000000a00010000000000000002"],
            ),
            (
                // textmultirange('[a,b)', '(c,)')
                "000000020000000b020000000161000000016200000006100000000163",
                &["0200000001610000000162", "100000000163"],
            ),
        ];
        for (wire, ranges) in cases {
            let wire = hex(wire);
            let got: Vec<&[u8]> = decode_multirange(&wire).unwrap().collect();
            let want: Vec<Vec<u8>> = ranges.iter().map(|r| hex(r)).collect();
            assert_eq!(got, want);

            let mut buf = Vec::new();
            let mut enc = MultirangeEncoder::begin(&mut buf);
            for r in &got {
                let r = decode_range(r).unwrap();
                enc.range(
                    r.lower_bound().map(copy_bytes),
                    r.upper_bound().map(copy_bytes),
                )
                .unwrap();
            }
            enc.finish().unwrap();
            assert_eq!(buf, wire);

            let mut again = Vec::new();
            let mut enc = MultirangeEncoder::begin(&mut again);
            for r in &got {
                enc.range_bytes(r).unwrap();
            }
            enc.finish().unwrap();
            assert_eq!(again, wire);
        }
    }

    #[test]
    fn multirange_rejects_malformed() {
        for bad in [
            "",
            "000000",
            "ffffffff",
            "00000001",
            "0000000100000000",       // zero-length range
            "00000001ffffffff",       // NULL range
            "000000010000000201",     // length past the end
            "00000001000000010100",   // trailing byte
            "0000000200000001010000", // second range truncated
        ] {
            assert!(decode_multirange(&hex(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn multirange_encoder_rolls_back() {
        let mut buf = vec![1];
        let outcome = (|| {
            let mut enc = MultirangeEncoder::begin(&mut buf);
            enc.empty_range();
            enc.range(
                Bound::Included(|_: &mut Vec<u8>| Err(Error::Encode("bad".into()))),
                Bound::<fn(&mut Vec<u8>) -> Result<()>>::Unbounded,
            )?;
            enc.finish()
        })();
        assert!(outcome.is_err());
        assert_eq!(buf, [1]);
        let mut enc = MultirangeEncoder::begin(&mut buf);
        enc.empty_range();
        enc.finish().unwrap();
        assert_eq!(buf, [1, 0, 0, 0, 1, 0, 0, 0, 1, EMPTY]);
    }

    fn any_bound() -> impl Strategy<Value = OwnedBound> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..12);
        prop_oneof![
            bytes.clone().prop_map(Bound::Included),
            bytes.prop_map(Bound::Excluded),
            Just(Bound::Unbounded),
        ]
    }

    fn any_range() -> impl Strategy<Value = OwnedRange> {
        proptest::option::weighted(0.9, (any_bound(), any_bound()))
    }

    fn encode(buf: &mut Vec<u8>, range: Option<&(OwnedBound, OwnedBound)>) {
        match range {
            None => encode_empty_range(buf),
            Some((l, u)) => encode_range_bytes(
                buf,
                l.as_ref().map(Vec::as_slice),
                u.as_ref().map(Vec::as_slice),
            )
            .unwrap(),
        }
    }

    proptest! {
        #[test]
        fn range_round_trip(range in any_range()) {
            let mut buf = Vec::new();
            encode(&mut buf, range.as_ref());
            let r = decode_range(&buf).unwrap();
            match &range {
                None => prop_assert!(r.is_empty()),
                Some((l, u)) => {
                    prop_assert!(!r.is_empty());
                    prop_assert_eq!(r.lower_bound(), l.as_ref().map(Vec::as_slice));
                    prop_assert_eq!(r.upper_bound(), u.as_ref().map(Vec::as_slice));
                }
            }
            prop_assert_eq!(reencode(&r), buf);
        }

        #[test]
        fn multirange_round_trip(ranges in proptest::collection::vec(any_range(), 0..6)) {
            let mut singles = Vec::new();
            let mut buf = Vec::new();
            let mut enc = MultirangeEncoder::begin(&mut buf);
            for range in &ranges {
                let mut one = Vec::new();
                encode(&mut one, range.as_ref());
                enc.range_bytes(&one).unwrap();
                singles.push(one);
            }
            enc.finish().unwrap();
            let back: Vec<Vec<u8>> = decode_multirange(&buf).unwrap().map(<[u8]>::to_vec).collect();
            prop_assert_eq!(back, singles);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(r) = decode_range(&data) {
                let _ = (r.lower_bound(), r.upper_bound());
            }
            if let Ok(ranges) = decode_multirange(&data) {
                for r in ranges {
                    let _ = decode_range(r);
                }
            }
        }
    }
}
