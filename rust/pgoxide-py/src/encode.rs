//! Parameter encoders: Python values to the binary wire format of the server's parameter type.
//!
//! The encoder is chosen from the parameter OID the server reported for the statement, so a
//! value of the wrong Python type is caught here, before anything is sent.

use pgoxide_proto::codec::{array, datetime as dt, numeric, JSONB_VERSION};
use pgoxide_proto::types::{Builtin, Oid};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess,
    PyFloat, PyInt, PyList, PyString, PyTime, PyTimeAccess, PyTuple, PyTzInfo, PyTzInfoAccess,
};

use crate::codec::Codec;
use crate::pycache;
use crate::registry::{ExchangeFormat, UserCodec};
use crate::{containers, scalars};

/// Why a value could not be encoded; the caller adds which parameter it was.
pub type EncodeResult = Result<(), String>;

impl Codec {
    /// Encodes a non-None value.
    pub fn encode(&self, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
        match self {
            Codec::Scalar(b) => encode_builtin(*b, v, buf),
            Codec::Text => {
                buf.extend_from_slice(str_bytes(v)?);
                Ok(())
            }
            Codec::Array(elem, elem_oid) => encode_array(elem, *elem_oid, v, buf),
            Codec::User(user, inner) => encode_user(user, inner, v, buf),
            Codec::Composite(c) => containers::encode_composite(c, v, buf),
            Codec::Range(sub, _) => containers::encode_range(sub, v, buf),
            Codec::Multirange(range_codec, _) => containers::encode_multirange(range_codec, v, buf),
            Codec::Hstore => containers::encode_hstore(v, buf),
            Codec::Record(_) => Err(
                "anonymous record parameters are not supported; cast to a composite type".into(),
            ),
        }
    }
}

/// Encodes one value in a builtin binary format.
fn encode_builtin(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    match b {
        Builtin::Bool => {
            let b = v.cast::<PyBool>().map_err(|_| expected("bool", v))?;
            buf.push(u8::from(b.is_true()));
        }
        Builtin::Int2 => buf.extend_from_slice(&int::<i16>(v, "int2")?.to_be_bytes()),
        Builtin::Int4 => buf.extend_from_slice(&int::<i32>(v, "int4")?.to_be_bytes()),
        Builtin::Int8 => buf.extend_from_slice(&int::<i64>(v, "int8")?.to_be_bytes()),
        Builtin::Oid => buf.extend_from_slice(&int::<u32>(v, "oid")?.to_be_bytes()),
        Builtin::Float8 => buf.extend_from_slice(&float(v)?.to_be_bytes()),
        Builtin::Float4 => {
            let f = float(v)?;
            let narrow = f as f32;
            if narrow.is_infinite() && f.is_finite() {
                return Err("value out of float4 range".into());
            }
            buf.extend_from_slice(&narrow.to_be_bytes());
        }
        Builtin::Numeric => {
            let ok = v
                .is_instance(pycache::decimal(v.py()).map_err(|e| e.to_string())?)
                .unwrap_or(false)
                || (v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>())
                || v.is_instance_of::<PyFloat>();
            if !ok {
                return Err(expected("Decimal, int or float", v));
            }
            let text = v.str().map_err(|e| e.to_string())?;
            numeric::encode_from_text(&text.to_cow().map_err(|e| e.to_string())?, buf)
                .map_err(|e| e.to_string())?;
        }
        Builtin::Text => buf.extend_from_slice(str_bytes(v)?),
        Builtin::Char => {
            let b = str_bytes(v)?;
            if b.len() > 1 {
                return Err("\"char\" holds a single byte".into());
            }
            buf.extend_from_slice(b);
        }
        Builtin::Json => json_text(v, buf)?,
        Builtin::Jsonb => {
            buf.push(JSONB_VERSION);
            json_text(v, buf)?;
        }
        Builtin::Jsonpath => {
            buf.push(JSONB_VERSION);
            buf.extend_from_slice(str_bytes(v)?);
        }
        Builtin::Xid8 => buf.extend_from_slice(&int::<u64>(v, "xid8")?.to_be_bytes()),
        Builtin::Inet
        | Builtin::Cidr
        | Builtin::MacAddr
        | Builtin::MacAddr8
        | Builtin::Bits
        | Builtin::Point
        | Builtin::Line
        | Builtin::Lseg
        | Builtin::Box
        | Builtin::Path
        | Builtin::Polygon
        | Builtin::Circle
        | Builtin::Tid
        | Builtin::PgLsn
        | Builtin::Snapshot => scalars::encode(b, v, buf)?,
        Builtin::Bytea => {
            if let Ok(b) = v.cast::<PyBytes>() {
                buf.extend_from_slice(b.as_bytes());
            } else if let Ok(b) = v.cast::<PyByteArray>() {
                buf.extend_from_slice(&b.to_vec());
            } else if let Ok(b) = pyo3::buffer::PyBuffer::<u8>::get(v) {
                buf.extend_from_slice(&b.to_vec(v.py()).map_err(|e| e.to_string())?);
            } else {
                return Err(expected("bytes, bytearray or memoryview", v));
            }
        }
        Builtin::Date => {
            if v.is_instance_of::<PyDateTime>() {
                return Err(expected("datetime.date (not datetime.datetime)", v));
            }
            let d = v
                .cast::<PyDate>()
                .map_err(|_| expected("datetime.date", v))?;
            let days = dt::pg_days_from_date(date_of(d));
            buf.extend_from_slice(&(days as i32).to_be_bytes());
        }
        Builtin::Time | Builtin::TimeTz => {
            let t = v
                .cast::<PyTime>()
                .map_err(|_| expected("datetime.time", v))?;
            let usecs = dt::usecs_from_time(time_of(t));
            buf.extend_from_slice(&usecs.to_be_bytes());
            if b == Builtin::TimeTz {
                // A naive time is taken as UTC, as asyncpg does.
                let offset = match t.get_tzinfo() {
                    Some(_) => offset_seconds(v)?,
                    None => 0,
                };
                buf.extend_from_slice(&(-offset).to_be_bytes());
            }
        }
        Builtin::Timestamp => {
            let ts = v
                .cast::<PyDateTime>()
                .map_err(|_| expected("datetime.datetime", v))?;
            if ts.get_tzinfo().is_some() {
                return Err("timestamp without time zone needs a naive datetime; use timestamptz for aware ones".into());
            }
            let us = dt::pg_usecs_from_timestamp(date_of(ts), time_of(ts));
            buf.extend_from_slice(&us.to_be_bytes());
        }
        Builtin::TimestampTz => {
            let ts = v
                .cast::<PyDateTime>()
                .map_err(|_| expected("datetime.datetime", v))?;
            let us = if ts.get_tzinfo().is_some() {
                let local = dt::pg_usecs_from_timestamp(date_of(ts), time_of(ts));
                local - i64::from(offset_seconds(v)?) * dt::USECS_PER_SEC
            } else {
                // A naive datetime is local time, as in asyncpg (`astimezone`).
                let utc = PyTzInfo::utc(v.py()).map_err(|e| e.to_string())?;
                let aware = v
                    .call_method1("astimezone", (utc,))
                    .map_err(|e| e.to_string())?;
                let aware = aware.cast::<PyDateTime>().map_err(|e| e.to_string())?;
                dt::pg_usecs_from_timestamp(date_of(aware), time_of(aware))
            };
            buf.extend_from_slice(&us.to_be_bytes());
        }
        Builtin::Interval => dt::encode_interval(buf, interval_of(v)?),
        Builtin::Uuid => {
            if let Some(raw) = crate::uuid::raw_of(v) {
                buf.extend_from_slice(&raw);
                return Ok(());
            }
            let py = v.py();
            let uuid_type = pycache::uuid_type(py).map_err(|e| e.to_string())?;
            let value = if v.is_instance(uuid_type).unwrap_or(false) {
                v.clone()
            } else if v.is_instance_of::<PyString>() {
                uuid_type
                    .call1((v,))
                    .map_err(|e| format!("invalid UUID: {e}"))?
                    .into_any()
            } else {
                return Err(expected("uuid.UUID or str", v));
            };
            let n: u128 = value
                .getattr("int")
                .and_then(|i| i.extract())
                .map_err(|e| e.to_string())?;
            buf.extend_from_slice(&n.to_be_bytes());
        }
    }
    Ok(())
}

/// A json value: a `str` (or bytes) is taken as JSON text already, as asyncpg does; any other
/// object is serialised with `json.dumps`.
fn json_text(v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    if let Ok(s) = v.cast::<PyString>() {
        buf.extend_from_slice(s.to_str().map_err(|e| e.to_string())?.as_bytes());
    } else if let Ok(b) = v.cast::<PyBytes>() {
        buf.extend_from_slice(b.as_bytes());
    } else {
        let dumps = pycache::json_dumps(v.py()).map_err(|e| e.to_string())?;
        let text = dumps
            .call1((v,))
            .map_err(|e| format!("cannot serialise to JSON: {e}"))?;
        buf.extend_from_slice(str_bytes(&text)?);
    }
    Ok(())
}

/// An interval from a `timedelta` or a `pgoxide.types.Interval` (which keeps months).
fn interval_of(v: &Bound<'_, PyAny>) -> Result<dt::Interval, String> {
    if let Ok(d) = v.cast::<PyDelta>() {
        let micros =
            i64::from(d.get_seconds()) * dt::USECS_PER_SEC + i64::from(d.get_microseconds());
        return Ok(dt::Interval {
            microseconds: micros,
            days: d.get_days(),
            months: 0,
        });
    }
    let interval_type = pycache::interval_type(v.py()).map_err(|e| e.to_string())?;
    if !v.is_instance(interval_type).unwrap_or(false) {
        return Err(expected("datetime.timedelta or pgoxide.types.Interval", v));
    }
    let get = |name: &str| {
        v.getattr(name)
            .and_then(|x| x.extract::<i64>())
            .map_err(|e| e.to_string())
    };
    let field = |name: &str| {
        get(name)
            .and_then(|x| i32::try_from(x).map_err(|_| format!("interval {name} out of range")))
    };
    Ok(dt::Interval {
        months: field("months")?,
        days: field("days")?,
        microseconds: get("microseconds")?,
    })
}

/// Encodes what a user codec's encoder returns, in its exchange format.
fn encode_user(
    user: &UserCodec,
    inner: &Codec,
    v: &Bound<'_, PyAny>,
    buf: &mut Vec<u8>,
) -> EncodeResult {
    let exchanged = user
        .encoder
        .bind(v.py())
        .call1((v,))
        .map_err(|e| format!("encoder failed: {e}"))?;
    match user.format {
        ExchangeFormat::Text => {
            if matches!(inner, Codec::Scalar(Builtin::Jsonb | Builtin::Jsonpath)) {
                buf.push(JSONB_VERSION);
            }
            if let Ok(b) = exchanged.cast::<PyBytes>() {
                buf.extend_from_slice(b.as_bytes());
            } else {
                buf.extend_from_slice(
                    str_bytes(&exchanged).map_err(|e| format!("encoder result: {e}"))?,
                );
            }
        }
        ExchangeFormat::Binary => {
            let b = exchanged
                .cast::<PyBytes>()
                .map_err(|_| format!("encoder result: {}", expected("bytes", &exchanged)))?;
            buf.extend_from_slice(b.as_bytes());
        }
        ExchangeFormat::Tuple => encode_tuple_form(inner, &exchanged, buf)?,
    }
    Ok(())
}

/// asyncpg's `tuple` exchange format of the types that have one.
fn encode_tuple_form(inner: &Codec, t: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let items: Vec<i64> = t
        .extract()
        .map_err(|_| format!("encoder result: {}", expected("a tuple of ints", t)))?;
    let want = |n: usize| {
        if items.len() == n {
            Ok(())
        } else {
            Err(format!("encoder result: expected a tuple of {n} ints"))
        }
    };
    let narrow =
        |x: i64| i32::try_from(x).map_err(|_| "encoder result: value out of int4 range".to_owned());
    match inner {
        Codec::Scalar(Builtin::Date) => {
            want(1)?;
            buf.extend_from_slice(&narrow(items[0])?.to_be_bytes());
        }
        Codec::Scalar(Builtin::Timestamp | Builtin::TimestampTz | Builtin::Time) => {
            want(1)?;
            buf.extend_from_slice(&items[0].to_be_bytes());
        }
        Codec::Scalar(Builtin::TimeTz) => {
            want(2)?;
            buf.extend_from_slice(&items[0].to_be_bytes());
            buf.extend_from_slice(&narrow(items[1])?.to_be_bytes());
        }
        Codec::Scalar(Builtin::Interval) => {
            want(3)?;
            dt::encode_interval(
                buf,
                dt::Interval {
                    months: narrow(items[0])?,
                    days: narrow(items[1])?,
                    microseconds: items[2],
                },
            );
        }
        _ => return Err("format='tuple' is not supported for this type".into()),
    }
    Ok(())
}

/// The message for a value of the wrong Python type.
pub fn expected(what: &str, v: &Bound<'_, PyAny>) -> String {
    let got = v
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    format!("expected {what}, got {got}")
}

fn int<T: TryFrom<i128>>(v: &Bound<'_, PyAny>, type_name: &str) -> Result<T, String> {
    if !v.is_instance_of::<PyInt>() && v.hasattr("__index__").ok() != Some(true) {
        return Err(expected("int", v));
    }
    let wide: i128 = v
        .extract()
        .map_err(|_| format!("value out of {type_name} range"))?;
    T::try_from(wide).map_err(|_| format!("value out of {type_name} range"))
}

fn float(v: &Bound<'_, PyAny>) -> Result<f64, String> {
    if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
        return Err(expected("float", v));
    }
    v.extract::<f64>().map_err(|_| expected("float", v))
}

fn str_bytes<'a>(v: &'a Bound<'_, PyAny>) -> Result<&'a [u8], String> {
    let s = v.cast::<PyString>().map_err(|_| expected("str", v))?;
    // SAFETY-free path: PyUnicode_AsUTF8AndSize caches the UTF-8 form inside the str object,
    // so the slice lives as long as `v`.
    s.to_str().map(str::as_bytes).map_err(|e| e.to_string())
}

fn date_of(d: &impl PyDateAccess) -> dt::Date {
    dt::Date {
        year: d.get_year(),
        month: d.get_month(),
        day: d.get_day(),
    }
}

fn time_of(t: &impl PyTimeAccess) -> dt::Time {
    dt::Time {
        hour: t.get_hour(),
        minute: t.get_minute(),
        second: t.get_second(),
        microsecond: t.get_microsecond(),
    }
}

/// `utcoffset()` of an aware datetime or time, in seconds east of UTC.
fn offset_seconds(v: &Bound<'_, PyAny>) -> Result<i32, String> {
    let off = v.call_method0("utcoffset").map_err(|e| e.to_string())?;
    let off = off
        .cast::<PyDelta>()
        .map_err(|_| "utcoffset() did not return a timedelta".to_owned())?;
    Ok(off.get_days() * 86_400 + off.get_seconds())
}

fn is_sequence(v: &Bound<'_, PyAny>) -> bool {
    v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()
}

/// Encodes a (possibly nested) list or tuple as an array with lower bounds 1.
fn encode_array(
    elem: &Codec,
    elem_oid: Oid,
    v: &Bound<'_, PyAny>,
    buf: &mut Vec<u8>,
) -> EncodeResult {
    if !is_sequence(v) {
        return Err(expected("list or tuple", v));
    }
    // Dimensions come from the first element at each depth; the rest must match.
    // Below the top level, a tuple is an element (not a dimension) when elements are
    // sequences themselves (composites, points, ...).
    let is_dimension = |x: &Bound<'_, PyAny>, top: bool| {
        if top || !elem.sequence_valued() {
            is_sequence(x)
        } else {
            x.is_instance_of::<PyList>()
        }
    };
    let mut dims = Vec::new();
    let mut probe = v.clone();
    while is_dimension(&probe, dims.is_empty()) {
        let n = probe.len().map_err(|e| e.to_string())?;
        dims.push((
            i32::try_from(n).map_err(|_| "array too large".to_owned())?,
            1,
        ));
        if n == 0 || dims.len() > array::MAX_DIMS {
            break;
        }
        probe = probe.get_item(0).map_err(|e| e.to_string())?;
    }
    if dims.len() > array::MAX_DIMS {
        return Err(format!(
            "arrays have at most {} dimensions",
            array::MAX_DIMS
        ));
    }
    if dims[0].0 == 0 {
        dims.clear();
    }
    // A pgoxide.types.Array carries lower bounds other than 1.
    let array_type = pycache::array_type(v.py()).map_err(|e| e.to_string())?;
    if !dims.is_empty() && v.is_instance(array_type).unwrap_or(false) {
        let lower: Vec<i32> = v
            .getattr("lower_bounds")
            .and_then(|b| b.extract())
            .map_err(|e| format!("lower_bounds: {e}"))?;
        if lower.len() != dims.len() {
            return Err(format!(
                "lower_bounds has {} entries for {} dimensions",
                lower.len(),
                dims.len()
            ));
        }
        for (dim, l) in dims.iter_mut().zip(lower) {
            dim.1 = l;
        }
    }
    let start = buf.len();
    array::encode_header(
        buf,
        &array::ArrayHeader {
            element_oid: elem_oid,
            has_nulls: false,
            dims: dims.clone(),
        },
    );
    let mut has_nulls = false;
    if !dims.is_empty() {
        encode_level(elem, v, &dims, buf, &mut has_nulls)?;
    }
    if has_nulls {
        buf[start + array::HAS_NULLS_OFFSET + 3] = 1;
    }
    Ok(())
}

fn encode_level(
    elem: &Codec,
    v: &Bound<'_, PyAny>,
    dims: &[(i32, i32)],
    buf: &mut Vec<u8>,
    has_nulls: &mut bool,
) -> EncodeResult {
    if !is_sequence(v) || v.len().map_err(|e| e.to_string())? != dims[0].0 as usize {
        return Err("multi-dimensional arrays must be rectangular lists".into());
    }
    for item in v.try_iter().map_err(|e| e.to_string())? {
        let item = item.map_err(|e| e.to_string())?;
        if dims.len() > 1 {
            encode_level(elem, &item, &dims[1..], buf, has_nulls)?;
        } else if item.is_none() {
            *has_nulls = true;
            buf.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            let deeper = if elem.sequence_valued() {
                item.is_instance_of::<PyList>()
            } else {
                is_sequence(&item)
            };
            if deeper {
                return Err("multi-dimensional arrays must be rectangular lists".into());
            }
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            elem.encode(&item, buf)
                .map_err(|e| format!("array element: {e}"))?;
            let len = (buf.len() - at - 4) as i32;
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}
