//! Dates and times: date, time, timetz, timestamp, timestamptz (as `datetime` objects) and
//! interval (as `timedelta`, or `pgoxide.types.Interval` when a timedelta cannot hold it).

use pgoxide_proto::codec::{self, datetime as dt};
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::{
    PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyTime, PyTimeAccess, PyTzInfo,
    PyTzInfoAccess,
};

use super::{core_error, expected, EncodeResult};
use crate::errors::data_error;
use crate::pycache;

/// Decodes a value of one of the types of this family.
#[inline]
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match b {
        Builtin::Date => {
            let days = codec::decode_i32(data).map_err(core)?;
            date(py, dt::date_from_pg_days(days))?.into_any()
        }
        Builtin::Timestamp => {
            let us = codec::decode_i64(data).map_err(core)?;
            timestamp(py, dt::timestamp_from_pg_usecs(us), None)?.into_any()
        }
        Builtin::TimestampTz => {
            let us = codec::decode_i64(data).map_err(core)?;
            let utc = PyTzInfo::utc(py)?;
            timestamp(py, dt::timestamp_from_pg_usecs(us), Some(&utc))?.into_any()
        }
        Builtin::Time => {
            let t = dt::time_from_usecs(codec::decode_i64(data).map_err(core)?).map_err(core)?;
            PyTime::new(py, t.hour, t.minute, t.second, t.microsecond, None)?.into_any()
        }
        Builtin::TimeTz => {
            let (t, offset) = dt::decode_timetz(data).map_err(core)?;
            let tz = if offset == 0 {
                PyTzInfo::utc(py)?.to_owned()
            } else {
                PyTzInfo::fixed_offset(py, PyDelta::new(py, 0, offset, 0, true)?)?
            };
            PyTime::new(py, t.hour, t.minute, t.second, t.microsecond, Some(&tz))?.into_any()
        }
        Builtin::Interval => interval(py, dt::decode_interval(data).map_err(core)?)?,
        _ => unreachable!("not a type of this family: {b:?}"),
    })
}

/// Encodes a value of one of the types of this family.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    match b {
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
        _ => unreachable!("not a type of this family: {b:?}"),
    }
    Ok(())
}

fn out_of_range(py: Python<'_>, what: &str, value: &str) -> PyErr {
    data_error(
        py,
        format!(
            "{what} value {value} is out of the range of Python's {what} type (years 1 to 9999)"
        ),
    )
}

fn infinite(py: Python<'_>, what: &str, b: &dt::Bounded<impl Sized>) -> PyErr {
    let sign = if matches!(b, dt::Bounded::NegInfinity) {
        "-"
    } else {
        ""
    };
    data_error(
        py,
        format!(
            "{what} value {sign}infinity cannot be represented as a Python {what}; \
             select it as text (e.g. col::text) or register a custom codec"
        ),
    )
}

fn date(py: Python<'_>, d: dt::Bounded<dt::Date>) -> PyResult<Bound<'_, PyDate>> {
    match d {
        dt::Bounded::Finite(d) if (1..=9999).contains(&d.year) => {
            PyDate::new(py, d.year, d.month, d.day)
        }
        dt::Bounded::Finite(d) => Err(out_of_range(
            py,
            "date",
            &format!("{}-{:02}-{:02}", d.year, d.month, d.day),
        )),
        other => Err(infinite(py, "date", &other)),
    }
}

/// A `timestamptz` given as microseconds since 2000-01-01 UTC, as an aware datetime.
pub fn timestamptz(py: Python<'_>, usecs: i64) -> PyResult<Bound<'_, PyDateTime>> {
    let utc = PyTzInfo::utc(py)?;
    timestamp(py, dt::timestamp_from_pg_usecs(usecs), Some(&utc))
}

fn timestamp<'py>(
    py: Python<'py>,
    ts: dt::Bounded<(dt::Date, dt::Time)>,
    tz: Option<&Bound<'py, PyTzInfo>>,
) -> PyResult<Bound<'py, PyDateTime>> {
    match ts {
        dt::Bounded::Finite((d, t)) if (1..=9999).contains(&d.year) => PyDateTime::new(
            py,
            d.year,
            d.month,
            d.day,
            t.hour,
            t.minute,
            t.second,
            t.microsecond,
            tz,
        ),
        dt::Bounded::Finite((d, _)) => {
            Err(out_of_range(py, "datetime", &format!("in year {}", d.year)))
        }
        other => Err(infinite(py, "datetime", &other)),
    }
}

/// An interval: a `timedelta` when one holds exactly its fields (no months, and a time part
/// within `[0, 24h)`, which a timedelta keeps apart from its days), else a
/// `pgoxide.types.Interval`. `1 day` and `24:00:00` are different intervals (they differ
/// across a DST change), and a timedelta would merge them.
fn interval(py: Python<'_>, iv: dt::Interval) -> PyResult<Bound<'_, PyAny>> {
    let exact = iv.months == 0
        && (0..dt::USECS_PER_DAY).contains(&iv.microseconds)
        && iv.days.unsigned_abs() <= 999_999_999;
    if !exact {
        return pycache::interval_type(py)?.call1((iv.months, iv.days, iv.microseconds));
    }
    let secs = iv.microseconds / dt::USECS_PER_SEC;
    let micros = iv.microseconds % dt::USECS_PER_SEC;
    Ok(PyDelta::new(py, iv.days, secs as i32, micros as i32, false)?.into_any())
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
