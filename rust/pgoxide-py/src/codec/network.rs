//! Network addresses: inet and cidr (as `ipaddress` objects), macaddr and macaddr8 (as `str`).

use std::net::IpAddr;

use pgoxide_proto::codec::network;
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::{core_error, expected, EncodeResult};
use crate::pycache;

/// Decodes a value of one of the types of this family.
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match b {
        Builtin::Inet | Builtin::Cidr => {
            let inet = network::decode_inet(data).map_err(core)?;
            let full = if inet.addr.is_ipv4() { 32 } else { 128 };
            let ipaddress = pycache::ipaddress(py)?;
            if inet.is_cidr {
                ipaddress
                    .call_method1("ip_network", (format!("{}/{}", inet.addr, inet.netmask),))?
            } else if inet.netmask == full {
                ipaddress.call_method1("ip_address", (inet.addr.to_string(),))?
            } else {
                ipaddress
                    .call_method1("ip_interface", (format!("{}/{}", inet.addr, inet.netmask),))?
            }
        }
        Builtin::MacAddr => PyString::new(
            py,
            &hex_colon(&network::decode_macaddr(data).map_err(core)?),
        )
        .into_any(),
        Builtin::MacAddr8 => PyString::new(
            py,
            &hex_colon(&network::decode_macaddr8(data).map_err(core)?),
        )
        .into_any(),
        _ => unreachable!("not a type of this family: {b:?}"),
    })
}

fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Encodes a value of one of the types of this family.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    match b {
        Builtin::Inet | Builtin::Cidr => {
            let inet = inet_of(v, b == Builtin::Cidr)?;
            network::encode_inet(buf, &inet).map_err(|e| e.to_string())?;
        }
        Builtin::MacAddr => network::encode_macaddr(buf, mac_of::<6>(v)?),
        Builtin::MacAddr8 => network::encode_macaddr8(buf, mac_of::<8>(v)?),
        _ => unreachable!("not a type of this family: {b:?}"),
    }
    Ok(())
}

/// inet/cidr from an `ipaddress` object (address, interface or network) or a str.
fn inet_of(v: &Bound<'_, PyAny>, is_cidr: bool) -> Result<network::Inet, String> {
    let text = v.str().map_err(|e| e.to_string())?.to_string();
    let (addr, mask) = text
        .split_once('/')
        .map_or((text.as_str(), None), |(a, m)| (a, Some(m)));
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!(
            "{}: {text:?} is not an IP address or network",
            expected("ipaddress object or str", v)
        )
    })?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let netmask = match mask {
        Some(m) => m
            .parse::<u8>()
            .ok()
            .filter(|&m| m <= full)
            .ok_or_else(|| format!("invalid network mask in {text:?}"))?,
        None => full,
    };
    let inet = network::Inet {
        addr,
        netmask,
        is_cidr,
    };
    if is_cidr && !inet.host_bits_are_zero() {
        return Err(format!(
            "{text:?} has bits set to the right of the mask (not a valid cidr)"
        ));
    }
    Ok(inet)
}

/// A MAC address from `08:00:2b:01:02:03`, `08-00-2b-...` or bare hex.
fn mac_of<const N: usize>(v: &Bound<'_, PyAny>) -> Result<[u8; N], String> {
    let s = v
        .cast::<PyString>()
        .map_err(|_| expected("str", v))?
        .to_string();
    let digits: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let bad = || format!("{s:?} is not a {N}-byte MAC address");
    if digits.len() != 2 * N {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}
