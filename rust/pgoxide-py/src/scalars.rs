//! Python values of the builtin scalar types beyond numbers, text and time: network addresses,
//! bit strings, geometry, tid, pg_lsn and snapshots. Both directions, as asyncpg represents
//! them (`ipaddress` objects, `pgoxide.types` classes, tuples).

use std::net::IpAddr;

use pgoxide_proto::codec::{bits, geometry as geo, misc, network};
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::encode::{expected, EncodeResult};
use crate::errors::data_error;
use crate::pycache;

fn core(py: Python<'_>) -> impl Fn(pgoxide_proto::Error) -> PyErr + Copy + '_ {
    move |e| data_error(py, e.to_string())
}

/// Decodes a value of one of the scalar formats this module owns.
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core(py);
    let types = |name: &str| pycache::types_attr(py, name);
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
        Builtin::Bits => {
            let bits = bits::decode_bits(data).map_err(core)?;
            types("BitString")?
                .call_method1("frombytes", (PyBytes::new(py, bits.bytes), bits.len))?
        }
        Builtin::Point => {
            let p = geo::decode_point(data).map_err(core)?;
            types("Point")?.call1((p.x, p.y))?
        }
        Builtin::Line => {
            let l = geo::decode_line(data).map_err(core)?;
            types("Line")?.call1((l.a, l.b, l.c))?
        }
        Builtin::Lseg => {
            let s = geo::decode_lseg(data).map_err(core)?;
            types("LineSegment")?.call1(((s.start.x, s.start.y), (s.end.x, s.end.y)))?
        }
        Builtin::Box => {
            let b = geo::decode_box(data).map_err(core)?;
            types("Box")?.call1(((b.high.x, b.high.y), (b.low.x, b.low.y)))?
        }
        Builtin::Path => {
            let path = geo::decode_path(data).map_err(core)?;
            let points = PyTuple::new(py, path.points.iter().map(|p| (p.x, p.y)))?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("is_closed", path.closed)?;
            types("Path")?.call(points, Some(&kwargs))?
        }
        Builtin::Polygon => {
            let points = geo::decode_polygon(data).map_err(core)?;
            types("Polygon")?.call1(PyTuple::new(py, points.iter().map(|p| (p.x, p.y)))?)?
        }
        Builtin::Circle => {
            let c = geo::decode_circle(data).map_err(core)?;
            types("Circle")?.call1(((c.center.x, c.center.y), c.radius))?
        }
        Builtin::Tid => {
            let t = misc::decode_tid(data).map_err(core)?;
            (t.block, t.offset).into_pyobject(py)?.into_any()
        }
        Builtin::PgLsn => types("Lsn")?.call1((misc::decode_pg_lsn(data).map_err(core)?,))?,
        Builtin::Snapshot => {
            let s = misc::decode_snapshot(data).map_err(core)?;
            (s.xmin, s.xmax, PyTuple::new(py, s.xip)?)
                .into_pyobject(py)?
                .into_any()
        }
        _ => unreachable!("not a format of this module: {b:?}"),
    })
}

fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Encodes a value of one of the scalar formats this module owns.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let core = |e: pgoxide_proto::Error| e.to_string();
    match b {
        Builtin::Inet | Builtin::Cidr => {
            let inet = inet_of(v, b == Builtin::Cidr)?;
            network::encode_inet(buf, &inet).map_err(core)?;
        }
        Builtin::MacAddr => network::encode_macaddr(buf, mac_of::<6>(v)?),
        Builtin::MacAddr8 => network::encode_macaddr8(buf, mac_of::<8>(v)?),
        Builtin::Bits => {
            let (bytes, len) = bits_of(v)?;
            bits::encode_bits(buf, bits::BitString { len, bytes: &bytes }).map_err(core)?;
        }
        Builtin::Point => geo::encode_point(buf, point_of(v)?),
        Builtin::Line => {
            let (a, b, c): (f64, f64, f64) =
                v.extract().map_err(|_| expected("Line or (A, B, C)", v))?;
            geo::encode_line(buf, geo::Line { a, b, c }).map_err(core)?;
        }
        Builtin::Lseg => {
            let (start, end) = two_points(v, "LineSegment or two points")?;
            geo::encode_lseg(buf, geo::LineSegment { start, end });
        }
        Builtin::Box => {
            let (high, low) = two_points(v, "Box or two points")?;
            geo::encode_box(buf, geo::GeoBox { high, low });
        }
        Builtin::Path => {
            let closed = v
                .getattr("is_closed")
                .and_then(|c| c.extract())
                .unwrap_or(false);
            let points = points_of(v)?;
            geo::encode_path(buf, &geo::Path { closed, points }).map_err(core)?;
        }
        Builtin::Polygon => geo::encode_polygon(buf, &points_of(v)?).map_err(core)?,
        Builtin::Circle => {
            let (center, radius): (Bound<'_, PyAny>, f64) = v
                .extract()
                .map_err(|_| expected("Circle or (center, radius)", v))?;
            geo::encode_circle(
                buf,
                geo::Circle {
                    center: point_of(&center)?,
                    radius,
                },
            )
            .map_err(core)?;
        }
        Builtin::Tid => {
            let (block, offset): (u32, u16) =
                v.extract().map_err(|_| expected("(block, offset)", v))?;
            misc::encode_tid(buf, misc::Tid { block, offset });
        }
        Builtin::PgLsn => {
            let lsn = if v.is_instance_of::<PyString>() {
                pycache::types_attr(v.py(), "Lsn")
                    .and_then(|c| c.call1((v,)))
                    .map_err(|e| e.to_string())?
            } else {
                v.clone()
            };
            misc::encode_pg_lsn(
                buf,
                lsn.extract()
                    .map_err(|_| expected("Lsn, int or 'X/Y' str", v))?,
            );
        }
        Builtin::Snapshot => {
            let (xmin, xmax, xip): (u64, u64, Vec<u64>) = v
                .extract()
                .map_err(|_| expected("(xmin, xmax, (xip, ...))", v))?;
            misc::encode_snapshot(buf, &misc::Snapshot { xmin, xmax, xip }).map_err(core)?;
        }
        _ => unreachable!("not a format of this module: {b:?}"),
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

/// Bit string bytes and length from a `BitString` or a str of 0s and 1s.
fn bits_of(v: &Bound<'_, PyAny>) -> Result<(Vec<u8>, usize), String> {
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
        .map_err(|_| expected("BitString or str", v))?;
    let len: usize = v.len().map_err(|e| e.to_string())?;
    Ok((bytes, len))
}

fn point_of(v: &Bound<'_, PyAny>) -> Result<geo::Point, String> {
    let (x, y): (f64, f64) = v.extract().map_err(|_| expected("Point or (x, y)", v))?;
    Ok(geo::Point { x, y })
}

fn two_points(v: &Bound<'_, PyAny>, what: &str) -> Result<(geo::Point, geo::Point), String> {
    let (a, b): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
        v.extract().map_err(|_| expected(what, v))?;
    Ok((point_of(&a)?, point_of(&b)?))
}

fn points_of(v: &Bound<'_, PyAny>) -> Result<Vec<geo::Point>, String> {
    let source = v.getattr("points").unwrap_or_else(|_| v.clone());
    source
        .try_iter()
        .map_err(|_| expected("Path, Polygon or a sequence of points", v))?
        .map(|p| point_of(&p.map_err(|e| e.to_string())?))
        .collect()
}
