//! Small fixed formats: tid, pg_lsn, xid, cid, xid8, money, pg_snapshot (and txid_snapshot,
//! which shares its send function), jsonpath, and the oidvector/int2vector arrays.

use super::array::{decode_header, encode_header, ArrayHeader};
use super::nested::{malformed, unencodable, ValueReader};
use crate::error::Result;
use crate::types::{self, Oid};

/// A tuple identifier: block number and item offset within the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    pub block: u32,
    pub offset: u16,
}

pub fn decode_tid(data: &[u8]) -> Result<Tid> {
    let raw: [u8; 6] = super::fixed(data, "tid")?;
    Ok(Tid {
        block: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        offset: u16::from_be_bytes([raw[4], raw[5]]),
    })
}

pub fn encode_tid(buf: &mut Vec<u8>, tid: Tid) {
    buf.extend_from_slice(&tid.block.to_be_bytes());
    buf.extend_from_slice(&tid.offset.to_be_bytes());
}

/// A WAL position; its text form `X/Y` is the high and low 32 bits in hex.
pub fn decode_pg_lsn(data: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(super::fixed(data, "pg_lsn")?))
}

pub fn encode_pg_lsn(buf: &mut Vec<u8>, lsn: u64) {
    buf.extend_from_slice(&lsn.to_be_bytes());
}

/// A 32-bit transaction id (wraps around; compare with care).
pub fn decode_xid(data: &[u8]) -> Result<u32> {
    Ok(u32::from_be_bytes(super::fixed(data, "xid")?))
}

pub fn encode_xid(buf: &mut Vec<u8>, xid: u32) {
    buf.extend_from_slice(&xid.to_be_bytes());
}

/// A command id within a transaction.
pub fn decode_cid(data: &[u8]) -> Result<u32> {
    Ok(u32::from_be_bytes(super::fixed(data, "cid")?))
}

pub fn encode_cid(buf: &mut Vec<u8>, cid: u32) {
    buf.extend_from_slice(&cid.to_be_bytes());
}

/// A 64-bit transaction id (epoch in the high half; never wraps).
pub fn decode_xid8(data: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(super::fixed(data, "xid8")?))
}

pub fn encode_xid8(buf: &mut Vec<u8>, xid: u64) {
    buf.extend_from_slice(&xid.to_be_bytes());
}

/// money: the amount in the smallest unit of the currency (value × 10^frac_digits, where
/// `frac_digits` comes from the server's `lc_monetary`, 2 for the C locale).
pub fn decode_money(data: &[u8]) -> Result<i64> {
    Ok(i64::from_be_bytes(super::fixed(data, "money")?))
}

pub fn encode_money(buf: &mut Vec<u8>, amount: i64) {
    buf.extend_from_slice(&amount.to_be_bytes());
}

/// jsonpath's binary form is a version byte (1) followed by the path text.
pub const JSONPATH_VERSION: u8 = 1;

pub fn decode_jsonpath(data: &[u8]) -> Result<&[u8]> {
    match data.split_first() {
        Some((&JSONPATH_VERSION, text)) => Ok(text),
        Some((v, _)) => Err(malformed(
            "jsonpath",
            &format!("unsupported format version {v}"),
        )),
        None => Err(malformed("jsonpath", "empty")),
    }
}

pub fn encode_jsonpath(buf: &mut Vec<u8>, text: &[u8]) {
    buf.push(JSONPATH_VERSION);
    buf.extend_from_slice(text);
}

/// PostgreSQL's PG_SNAPSHOT_MAX_NXIP.
pub const SNAPSHOT_MAX_XIP: usize = (0x3FFF_FFFF - 24) / 8;

/// A pg_snapshot or txid_snapshot: transactions below `xmin` are finished, from `xmax` on not
/// yet started, and `xip` lists those in between still in progress (ascending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub xmin: u64,
    pub xmax: u64,
    pub xip: Vec<u64>,
}

impl Snapshot {
    /// The checks of `pg_snapshot_recv`: xmin and xmax valid (their low 32 bits, the xid
    /// proper, non-zero) with xmin <= xmax, and `xip` ascending within [xmin, xmax].
    fn problem(&self) -> Option<&'static str> {
        let valid = |x: u64| x as u32 != 0;
        if !valid(self.xmin) || !valid(self.xmax) {
            return Some("xmin and xmax must be valid transaction ids");
        }
        if self.xmax < self.xmin {
            return Some("xmax precedes xmin");
        }
        if self.xip.len() > SNAPSHOT_MAX_XIP {
            return Some("too many in-progress transactions");
        }
        if self.xip.windows(2).any(|w| w[1] < w[0]) {
            return Some("in-progress transactions not in ascending order");
        }
        if self.xip.iter().any(|&x| x < self.xmin || x > self.xmax) {
            return Some("in-progress transaction outside [xmin, xmax]");
        }
        None
    }
}

/// Int32 count, Int64 xmin, Int64 xmax, then `count` Int64 in-progress ids.
pub fn decode_snapshot(data: &[u8]) -> Result<Snapshot> {
    let mut r = ValueReader::new(data, "pg_snapshot");
    let n = r.i32()?;
    let n = usize::try_from(n).map_err(|_| r.error("negative count"))?;
    if n.checked_mul(8).and_then(|v| v.checked_add(16)) != Some(r.remaining()) {
        return Err(r.error("count does not match the data"));
    }
    let xmin = r.u64()?;
    let xmax = r.u64()?;
    let xip = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
    let snapshot = Snapshot { xmin, xmax, xip };
    match snapshot.problem() {
        Some(p) => Err(r.error(p)),
        None => Ok(snapshot),
    }
}

/// Fails for a snapshot the server would refuse (see [`Snapshot`]).
pub fn encode_snapshot(buf: &mut Vec<u8>, snapshot: &Snapshot) -> Result<()> {
    if let Some(p) = snapshot.problem() {
        return Err(unencodable("pg_snapshot", p));
    }
    buf.extend_from_slice(&(snapshot.xip.len() as i32).to_be_bytes());
    buf.extend_from_slice(&snapshot.xmin.to_be_bytes());
    buf.extend_from_slice(&snapshot.xmax.to_be_bytes());
    for x in &snapshot.xip {
        buf.extend_from_slice(&x.to_be_bytes());
    }
    Ok(())
}

// oidvector and int2vector are sent by `array_send`: the array format (see `array`), always
// one dimension with lower bound 0, no NULLs, even when empty (`''::oidvector` comes as one
// dimension of length 0, unlike an empty ordinary array, which has no dimensions). The
// receive functions want exactly that shape but refuse an empty vector in either form (tried
// on PostgreSQL 15: "invalid oidvector data"), so an empty one can only be sent as text.

fn decode_vector<const N: usize>(
    data: &[u8],
    type_name: &'static str,
    element_oid: Oid,
) -> Result<Vec<[u8; N]>> {
    let bad = |m: &str| malformed(type_name, m);
    let (header, _) = decode_header(data).map_err(|_| bad("bad array header"))?;
    let len = match header.dims.as_slice() {
        [] => 0,
        [(len, 0)] => *len as usize,
        _ => return Err(bad("not one-dimensional from 0")),
    };
    if header.has_nulls || header.element_oid != element_oid {
        return Err(bad("NULLs or wrong element type"));
    }
    let mut r = ValueReader::new(data, type_name);
    r.bytes(12 + 8 * header.dims.len())?;
    if len.checked_mul(4 + N) != Some(r.remaining()) {
        return Err(bad("element data does not match the dimensions"));
    }
    (0..len)
        .map(|_| {
            if r.i32()? != N as i32 {
                return Err(bad("bad element length"));
            }
            r.array::<N>()
        })
        .collect()
}

fn encode_vector<const N: usize>(
    buf: &mut Vec<u8>,
    element_oid: Oid,
    items: impl ExactSizeIterator<Item = [u8; N]>,
    type_name: &str,
) -> Result<()> {
    if items.len() == 0 {
        return Err(unencodable(
            type_name,
            "the server refuses an empty vector in binary format",
        ));
    }
    let len = i32::try_from(items.len()).map_err(|_| unencodable(type_name, "too long"))?;
    encode_header(
        buf,
        &ArrayHeader {
            element_oid,
            has_nulls: false,
            dims: vec![(len, 0)],
        },
    );
    for item in items {
        buf.extend_from_slice(&(N as i32).to_be_bytes());
        buf.extend_from_slice(&item);
    }
    Ok(())
}

pub fn decode_oidvector(data: &[u8]) -> Result<Vec<Oid>> {
    Ok(decode_vector(data, "oidvector", types::OID)?
        .into_iter()
        .map(u32::from_be_bytes)
        .collect())
}

pub fn encode_oidvector(buf: &mut Vec<u8>, oids: &[Oid]) -> Result<()> {
    encode_vector(
        buf,
        types::OID,
        oids.iter().map(|o| o.to_be_bytes()),
        "oidvector",
    )
}

pub fn decode_int2vector(data: &[u8]) -> Result<Vec<i16>> {
    Ok(decode_vector(data, "int2vector", types::INT2)?
        .into_iter()
        .map(i16::from_be_bytes)
        .collect())
}

pub fn encode_int2vector(buf: &mut Vec<u8>, values: &[i16]) -> Result<()> {
    encode_vector(
        buf,
        types::INT2,
        values.iter().map(|v| v.to_be_bytes()),
        "int2vector",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nested::hex;
    use proptest::prelude::*;

    /// From PostgreSQL 15.18 (`tidsend`, `pg_lsn_send`, `xidsend`, `cidsend`, `xid8send`,
    /// `cash_send`, `jsonpath_send`).
    #[test]
    fn fixed_server_vectors() {
        let mut buf = Vec::new();
        let mut check = |wire: &str, encode: &dyn Fn(&mut Vec<u8>)| {
            buf.clear();
            encode(&mut buf);
            assert_eq!(buf, hex(wire), "{wire}");
        };

        // '(1,2)'::tid and '(4294967295,65535)'::tid
        let tid = Tid {
            block: 1,
            offset: 2,
        };
        assert_eq!(decode_tid(&hex("000000010002")).unwrap(), tid);
        check("000000010002", &|b| encode_tid(b, tid));
        let max = Tid {
            block: u32::MAX,
            offset: u16::MAX,
        };
        assert_eq!(decode_tid(&hex("ffffffffffff")).unwrap(), max);
        check("ffffffffffff", &|b| encode_tid(b, max));

        // '16/B374D848'::pg_lsn
        assert_eq!(
            decode_pg_lsn(&hex("00000016b374d848")).unwrap(),
            0x16_B374_D848
        );
        check("00000016b374d848", &|b| encode_pg_lsn(b, 0x16_B374_D848));
        assert_eq!(decode_pg_lsn(&hex("ffffffffffffffff")).unwrap(), u64::MAX);

        assert_eq!(decode_xid(&hex("ffffffff")).unwrap(), u32::MAX);
        check("ffffffff", &|b| encode_xid(b, u32::MAX));
        assert_eq!(decode_cid(&hex("00000007")).unwrap(), 7);
        check("00000007", &|b| encode_cid(b, 7));
        assert_eq!(decode_xid8(&hex("ffffffffffffffff")).unwrap(), u64::MAX);
        check("ffffffffffffffff", &|b| encode_xid8(b, u64::MAX));

        // '12.34', '-12.34', the minimum and the maximum, with lc_monetary C
        for (wire, cents) in [
            ("00000000000004d2", 1234),
            ("fffffffffffffb2e", -1234),
            ("8000000000000000", i64::MIN),
            ("7fffffffffffffff", i64::MAX),
        ] {
            assert_eq!(decode_money(&hex(wire)).unwrap(), cents);
            check(wire, &|b| encode_money(b, cents));
        }

        // '$.a[*] ? (@ > 1)' and 'strict $.x', sent in the server's normalised text
        for (wire, text) in [
            ("01242e2261225b2a5d3f2840203e203129", "$.\"a\"[*]?(@ > 1)"),
            ("0173747269637420242e227822", "strict $.\"x\""),
        ] {
            assert_eq!(decode_jsonpath(&hex(wire)).unwrap(), text.as_bytes());
            check(wire, &|b| encode_jsonpath(b, text.as_bytes()));
        }
    }

    #[test]
    fn fixed_rejects_wrong_sizes() {
        assert!(decode_tid(&[0; 5]).is_err());
        assert!(decode_pg_lsn(&[0; 7]).is_err());
        assert!(decode_xid(&[0; 8]).is_err());
        assert!(decode_cid(&[]).is_err());
        assert!(decode_xid8(&[0; 4]).is_err());
        assert!(decode_money(&[0; 9]).is_err());
        assert!(decode_jsonpath(&[]).is_err());
        assert!(decode_jsonpath(&[2, b'$']).is_err());
    }

    /// From PostgreSQL 15.18 (`pg_snapshot_send`; `txid_snapshot_send` gives the same bytes).
    #[test]
    fn snapshot_server_vectors() {
        for (wire, expected) in [
            // '10:20:10,14,15'
            (
                "00000003000000000000000a0000000000000014000000000000000a000000000000000e000000000000000f",
                Snapshot {
                    xmin: 10,
                    xmax: 20,
                    xip: vec![10, 14, 15],
                },
            ),
            // '3:3:'
            (
                "0000000000000000000000030000000000000003",
                Snapshot {
                    xmin: 3,
                    xmax: 3,
                    xip: vec![],
                },
            ),
            // '100000:100010:100005'
            (
                "0000000100000000000186a000000000000186aa00000000000186a5",
                Snapshot {
                    xmin: 100_000,
                    xmax: 100_010,
                    xip: vec![100_005],
                },
            ),
            // pg_current_snapshot() on an idle fresh cluster: 730:730:
            (
                "0000000000000000000002da00000000000002da",
                Snapshot {
                    xmin: 730,
                    xmax: 730,
                    xip: vec![],
                },
            ),
        ] {
            let wire = hex(wire);
            assert_eq!(decode_snapshot(&wire).unwrap(), expected);
            let mut buf = Vec::new();
            encode_snapshot(&mut buf, &expected).unwrap();
            assert_eq!(buf, wire);
        }
    }

    #[test]
    fn snapshot_validation() {
        let snap = |xmin, xmax, xip: &[u64]| Snapshot {
            xmin,
            xmax,
            xip: xip.to_vec(),
        };
        for bad in [
            snap(0, 5, &[]),
            snap(1 << 32, (1 << 32) + 5, &[]), // an xid of 0 in a later epoch
            snap(5, 4, &[]),
            snap(5, 10, &[7, 6]),
            snap(5, 10, &[4]),
            snap(5, 10, &[11]),
        ] {
            let mut buf = Vec::new();
            assert!(encode_snapshot(&mut buf, &bad).is_err(), "{bad:?}");
            assert!(buf.is_empty());
            // The same bytes, written by hand, fail to decode.
            buf.extend_from_slice(&(bad.xip.len() as i32).to_be_bytes());
            for x in [bad.xmin, bad.xmax].iter().chain(&bad.xip) {
                buf.extend_from_slice(&x.to_be_bytes());
            }
            assert!(decode_snapshot(&buf).is_err(), "{bad:?}");
        }
        // Duplicates are tolerated, as by the server (which drops them).
        encode_snapshot(&mut Vec::new(), &snap(5, 10, &[6, 6, 10])).unwrap();
        for bad in [
            "",
            "00000000000000000000000300000000000000",
            "ffffffff00000000000000030000000000000003",
            "0000000100000000000000030000000000000003",
            "000000000000000000000003000000000000000300",
        ] {
            assert!(decode_snapshot(&hex(bad)).is_err(), "{bad}");
        }
    }

    /// From PostgreSQL 15.18 (`oidvectorsend`, `int2vectorsend`).
    #[test]
    fn vector_server_vectors() {
        let wire = hex("00000001000000000000001a0000000300000000000000040000000100000004000000020000000400000003");
        assert_eq!(decode_oidvector(&wire).unwrap(), [1, 2, 3]);
        let mut buf = Vec::new();
        encode_oidvector(&mut buf, &[1, 2, 3]).unwrap();
        assert_eq!(buf, wire);

        // ''::oidvector is sent, but cannot be received, in binary.
        let wire = hex("00000001000000000000001a0000000000000000");
        assert_eq!(decode_oidvector(&wire).unwrap(), Vec::<Oid>::new());
        buf.clear();
        assert!(encode_oidvector(&mut buf, &[]).is_err());
        assert!(encode_int2vector(&mut buf, &[]).is_err());
        assert!(buf.is_empty());

        let wire = hex("000000010000000000000015000000020000000000000002000100000002fffe");
        assert_eq!(decode_int2vector(&wire).unwrap(), [1, -2]);
        buf.clear();
        encode_int2vector(&mut buf, &[1, -2]).unwrap();
        assert_eq!(buf, wire);

        // An ordinary empty array (no dimensions) is accepted too.
        assert!(decode_oidvector(&hex("00000000000000000000001a"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn vector_rejects_malformed() {
        for bad in [
            "",
            // lower bound 1
            "00000001000000000000001a00000001000000010000000400000001",
            // int4 elements
            "00000001000000000000001700000001000000000000000400000001",
            // has-nulls flag
            "00000001000000010000001a00000001000000000000000400000001",
            // element length 2
            "00000001000000000000001a0000000100000000000000020001",
            // trailing byte
            "00000001000000000000001a0000000100000000000000040000000100",
            // two dimensions
            "00000002000000000000001a000000010000000000000001000000000000000400000001",
        ] {
            assert!(decode_oidvector(&hex(bad)).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(
            tid in (any::<u32>(), any::<u16>()),
            n in any::<u64>(),
            oids in proptest::collection::vec(any::<u32>(), 1..10),
            int2s in proptest::collection::vec(any::<i16>(), 1..10),
            xmin in 1u64..u64::MAX / 2,
            span in 0u64..1000,
            offsets in proptest::collection::vec(0u64..1000, 0..10),
        ) {
            let mut buf = Vec::new();
            let tid = Tid { block: tid.0, offset: tid.1 };
            encode_tid(&mut buf, tid);
            prop_assert_eq!(decode_tid(&buf).unwrap(), tid);

            buf.clear();
            encode_pg_lsn(&mut buf, n);
            prop_assert_eq!(decode_pg_lsn(&buf).unwrap(), n);

            buf.clear();
            encode_money(&mut buf, n as i64);
            prop_assert_eq!(decode_money(&buf).unwrap(), n as i64);

            buf.clear();
            encode_oidvector(&mut buf, &oids).unwrap();
            prop_assert_eq!(decode_oidvector(&buf).unwrap(), oids);

            buf.clear();
            encode_int2vector(&mut buf, &int2s).unwrap();
            prop_assert_eq!(decode_int2vector(&buf).unwrap(), int2s);

            let xmin = if xmin as u32 == 0 { xmin + 1 } else { xmin };
            let mut xmax = xmin + span;
            if xmax as u32 == 0 {
                xmax += 1;
            }
            let mut xip: Vec<u64> = offsets.iter().map(|o| xmin + o % (xmax - xmin + 1)).collect();
            xip.sort_unstable();
            let snapshot = Snapshot { xmin, xmax, xip };
            buf.clear();
            encode_snapshot(&mut buf, &snapshot).unwrap();
            prop_assert_eq!(decode_snapshot(&buf).unwrap(), snapshot);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_tid(&data);
            let _ = decode_pg_lsn(&data);
            let _ = decode_xid(&data);
            let _ = decode_cid(&data);
            let _ = decode_xid8(&data);
            let _ = decode_money(&data);
            let _ = decode_jsonpath(&data);
            let _ = decode_snapshot(&data);
            let _ = decode_oidvector(&data);
            let _ = decode_int2vector(&data);
        }
    }
}
