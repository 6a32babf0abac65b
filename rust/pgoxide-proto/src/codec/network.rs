//! inet, cidr, macaddr and macaddr8.
//!
//! inet and cidr share one format (`network_send`): family byte (PostgreSQL's own numbering,
//! `PGSQL_AF_INET` = 2 and `PGSQL_AF_INET6` = 3, not the platform's `AF_*`), prefix length in
//! bits, an is-cidr byte, the address length (4 or 16) and the address. The server writes the
//! is-cidr byte from the *type being sent* and ignores it on receipt; `cidr_recv` instead
//! rejects host bits set to the right of the prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::nested::{unencodable, ValueReader};
use crate::error::Result;

pub const PGSQL_AF_INET: u8 = 2;
pub const PGSQL_AF_INET6: u8 = 3;

/// An inet or cidr value: an address with a prefix length (`netmask` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Inet {
    pub addr: IpAddr,
    pub netmask: u8,
    /// Set when the value was sent as (or is to be sent as) cidr.
    pub is_cidr: bool,
}

impl Inet {
    fn max_bits(addr: IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    /// Whether every address bit right of the prefix is zero (required of cidr values).
    pub fn host_bits_are_zero(&self) -> bool {
        let (bits, width) = match self.addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        let host = u32::from(width) - u32::from(self.netmask.min(width));
        // The low `host` bits; a shift by the full 128 bits would overflow, hence checked.
        let host_mask = u128::MAX.checked_shr(128 - host).unwrap_or(0);
        bits & host_mask == 0
    }
}

pub fn decode_inet(data: &[u8]) -> Result<Inet> {
    let mut r = ValueReader::new(data, "inet");
    let family = r.u8()?;
    let netmask = r.u8()?;
    let is_cidr = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(r.error("bad is_cidr flag")),
    };
    let len = r.u8()?;
    let addr = match (family, len) {
        (PGSQL_AF_INET, 4) => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
        (PGSQL_AF_INET6, 16) => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
        (PGSQL_AF_INET | PGSQL_AF_INET6, _) => return Err(r.error("bad address length")),
        _ => return Err(r.error(&format!("unknown address family {family}"))),
    };
    r.finish()?;
    if netmask > Inet::max_bits(addr) {
        return Err(r.error(&format!("prefix length {netmask} too long")));
    }
    let value = Inet {
        addr,
        netmask,
        is_cidr,
    };
    if is_cidr && !value.host_bits_are_zero() {
        return Err(r.error("cidr has bits set to the right of the prefix"));
    }
    Ok(value)
}

/// Fails for a prefix longer than the address, and for a cidr with host bits set (which the
/// server would reject).
pub fn encode_inet(buf: &mut Vec<u8>, value: &Inet) -> Result<()> {
    let type_name = if value.is_cidr { "cidr" } else { "inet" };
    if value.netmask > Inet::max_bits(value.addr) {
        return Err(unencodable(
            type_name,
            &format!(
                "prefix length {} too long for {}",
                value.netmask, value.addr
            ),
        ));
    }
    if value.is_cidr && !value.host_bits_are_zero() {
        return Err(unencodable(
            type_name,
            &format!(
                "{}/{} has bits set to the right of the prefix",
                value.addr, value.netmask
            ),
        ));
    }
    let family = match value.addr {
        IpAddr::V4(_) => PGSQL_AF_INET,
        IpAddr::V6(_) => PGSQL_AF_INET6,
    };
    buf.extend_from_slice(&[family, value.netmask, u8::from(value.is_cidr)]);
    match value.addr {
        IpAddr::V4(a) => {
            buf.push(4);
            buf.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            buf.push(16);
            buf.extend_from_slice(&a.octets());
        }
    }
    Ok(())
}

pub fn decode_macaddr(data: &[u8]) -> Result<[u8; 6]> {
    super::fixed(data, "macaddr")
}

pub fn encode_macaddr(buf: &mut Vec<u8>, mac: [u8; 6]) {
    buf.extend_from_slice(&mac);
}

/// macaddr8 is always sent as 8 bytes (`macaddr8_recv` also accepts 6, inserting FF:FE in the
/// middle, but no server sends that).
pub fn decode_macaddr8(data: &[u8]) -> Result<[u8; 8]> {
    super::fixed(data, "macaddr8")
}

pub fn encode_macaddr8(buf: &mut Vec<u8>, mac: [u8; 8]) {
    buf.extend_from_slice(&mac);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nested::hex;
    use proptest::prelude::*;

    fn inet(addr: &str, netmask: u8, is_cidr: bool) -> Inet {
        Inet {
            addr: addr.parse().unwrap(),
            netmask,
            is_cidr,
        }
    }

    /// From PostgreSQL 15.18 (`inet_send`, `cidr_send`).
    #[test]
    fn server_vectors() {
        let cases = [
            ("02180004c0a80001", inet("192.168.0.1", 24, false)),
            ("022000040a010203", inet("10.1.2.3", 32, false)),
            ("02180104c0a80000", inet("192.168.0.0", 24, true)),
            ("0200010400000000", inet("0.0.0.0", 0, true)),
            // A cidr cast to inet is sent with the flag clear.
            ("020800040a000000", inet("10.0.0.0", 8, false)),
            (
                "0340001020010db8000000000000000000000001",
                inet("2001:db8::1", 64, false),
            ),
            (
                "0380001000000000000000000000000000000001",
                inet("::1", 128, false),
            ),
            (
                "0320011020010db8000000000000000000000000",
                inet("2001:db8::", 32, true),
            ),
            (
                "0380001000000000000000000000ffff01020304",
                inet("::ffff:1.2.3.4", 128, false),
            ),
        ];
        for (wire, value) in cases {
            let wire = hex(wire);
            assert_eq!(decode_inet(&wire).unwrap(), value);
            let mut buf = Vec::new();
            encode_inet(&mut buf, &value).unwrap();
            assert_eq!(buf, wire);
        }
    }

    #[test]
    fn macaddr_vectors() {
        let mac = hex("08002b010203");
        assert_eq!(decode_macaddr(&mac).unwrap(), [8, 0, 0x2b, 1, 2, 3]);
        let mut buf = Vec::new();
        encode_macaddr(&mut buf, [8, 0, 0x2b, 1, 2, 3]);
        assert_eq!(buf, mac);
        // '08:00:2b:01:02:03'::macaddr8 widens with FF:FE in the middle.
        for wire in ["08002b0102030405", "08002bfffe010203"] {
            let wire = hex(wire);
            let value = decode_macaddr8(&wire).unwrap();
            let mut buf = Vec::new();
            encode_macaddr8(&mut buf, value);
            assert_eq!(buf, wire);
        }
        assert!(decode_macaddr(&mac[..5]).is_err());
        assert!(decode_macaddr8(&mac).is_err());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "0218000400",         // short address
            "02180004c0a8000100", // trailing byte
            "02180010c0a80001",   // IPv4 with length 16
            "04180004c0a80001",   // unknown family
            "02210004c0a80001",   // /33
            "02180204c0a80000",   // bad flag
            "02180104c0a80001",   // cidr with host bits
            "0381001000000000000000000000000000000001",
            // ::1/0 as cidr: every bit is a host bit (a full-width mask, no overflow)
            "0300011000000000000000000000000000000001",
            "0200010400000001",
        ] {
            assert!(decode_inet(&hex(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            decode_inet(&hex("0300011000000000000000000000000000000000")).unwrap(),
            inet("::", 0, true)
        );
    }

    #[test]
    fn rejects_unencodable() {
        let mut buf = Vec::new();
        assert!(encode_inet(&mut buf, &inet("10.0.0.1", 33, false)).is_err());
        assert!(encode_inet(&mut buf, &inet("10.0.0.1", 8, true)).is_err());
        assert!(encode_inet(&mut buf, &inet("::1", 129, false)).is_err());
        assert!(buf.is_empty());
        encode_inet(&mut buf, &inet("10.0.0.1", 8, false)).unwrap();
    }

    fn any_inet() -> impl Strategy<Value = Inet> {
        let addr = prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())),
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into())),
        ];
        (addr, any::<u8>(), any::<bool>()).prop_map(|(addr, bits, is_cidr)| {
            let netmask = bits % (Inet::max_bits(addr) + 1);
            let mut value = Inet {
                addr,
                netmask,
                is_cidr,
            };
            if is_cidr {
                let host = u32::from(Inet::max_bits(addr) - netmask);
                value.addr = match addr {
                    IpAddr::V4(a) => {
                        let keep = u32::MAX.checked_shl(host).unwrap_or(0);
                        IpAddr::V4((u32::from(a) & keep).into())
                    }
                    IpAddr::V6(a) => {
                        let keep = u128::MAX.checked_shl(host).unwrap_or(0);
                        IpAddr::V6((u128::from(a) & keep).into())
                    }
                };
            }
            value
        })
    }

    proptest! {
        #[test]
        fn round_trip(value in any_inet()) {
            let mut buf = Vec::new();
            encode_inet(&mut buf, &value).unwrap();
            prop_assert_eq!(decode_inet(&buf).unwrap(), value);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = decode_inet(&data);
            let _ = decode_macaddr(&data);
            let _ = decode_macaddr8(&data);
        }

        /// Arbitrary bytes rarely get past the header, so also try plausible headers.
        #[test]
        fn decoder_never_panics_on_plausible_headers(
            family in 1u8..5,
            bits in any::<u8>(),
            flag in 0u8..3,
            len in prop_oneof![Just(4u8), Just(16u8), any::<u8>()],
            addr in proptest::collection::vec(any::<u8>(), 0..18),
        ) {
            let data = [vec![family, bits, flag, len], addr].concat();
            if let Ok(value) = decode_inet(&data) {
                let mut buf = Vec::new();
                encode_inet(&mut buf, &value).unwrap();
                prop_assert_eq!(buf, data);
            }
        }
    }
}
