//! Dates and times: date, time, timetz, timestamp, timestamptz (as `datetime` objects) and
//! interval (as `timedelta`, or the timedelta subclass `pgoxide.types.Interval` when it has
//! months, which a timedelta cannot keep).
//!
//! Python's dates stop at the years 1 and 9999; PostgreSQL's `infinity` and `-infinity` map
//! to `max` and `min` as asyncpg maps them, or raise (`connect(infinity="raise")`, which the
//! resolver turns into [`super::Codec::Finite`]).

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

/// What infinite dates, timestamps and intervals become (`connect(infinity=)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Infinities {
    /// asyncpg's mapping, the default: `infinity` reads as `date.max` or `datetime.max` (naive,
    /// for timestamptz too, as in asyncpg) and `-infinity` as `min`; those values, and an
    /// aware datetime at the same UTC instant, are sent as the infinities. An infinite
    /// interval reads as an `Interval` whose timedelta is `timedelta.max` or `min`.
    Extremes,
    /// `infinity="raise"`: reading an infinity raises DataError, and `max` and `min` are sent
    /// as the real dates and times they are (9999-12-31, 0001-01-01).
    Raise,
}

/// Decodes a value of one of the types of this family, infinities as asyncpg maps them.
#[inline]
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    decode_with(py, b, data, Infinities::Extremes)
}

/// Decodes a value of one of the types of this family.
pub fn decode_with<'py>(
    py: Python<'py>,
    b: Builtin,
    data: &[u8],
    infinities: Infinities,
) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match b {
        Builtin::Date => {
            let days = codec::decode_i32(data).map_err(core)?;
            date(py, dt::date_from_pg_days(days), infinities)?.into_any()
        }
        Builtin::Timestamp => {
            let us = codec::decode_i64(data).map_err(core)?;
            timestamp(py, dt::timestamp_from_pg_usecs(us), None, infinities)?.into_any()
        }
        Builtin::TimestampTz => {
            let us = codec::decode_i64(data).map_err(core)?;
            let utc = PyTzInfo::utc(py)?;
            timestamp(py, dt::timestamp_from_pg_usecs(us), Some(&utc), infinities)?.into_any()
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
        Builtin::Interval => interval(py, dt::decode_interval(data).map_err(core)?, infinities)?,
        _ => unreachable!("not a type of this family: {b:?}"),
    })
}

/// Encodes a value of one of the types of this family, `max` and `min` as asyncpg maps them.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    encode_with(b, v, buf, Infinities::Extremes)
}

/// Encodes a value of one of the types of this family.
pub fn encode_with(
    b: Builtin,
    v: &Bound<'_, PyAny>,
    buf: &mut Vec<u8>,
    infinities: Infinities,
) -> EncodeResult {
    let extremes = infinities == Infinities::Extremes;
    // A date for a timestamp is its midnight (naive: local time for timestamptz), as in
    // asyncpg.
    let midnight;
    let v = match b {
        Builtin::Timestamp | Builtin::TimestampTz if !v.is_instance_of::<PyDateTime>() => {
            match v.cast::<PyDate>() {
                Ok(d) => {
                    midnight = PyDateTime::new(
                        v.py(),
                        d.get_year(),
                        d.get_month(),
                        d.get_day(),
                        0,
                        0,
                        0,
                        0,
                        None,
                    )
                    .map_err(|e| e.to_string())?;
                    midnight.as_any()
                }
                // asyncpg's words.
                Err(_) => {
                    return Err(format!(
                        "expected a datetime.date or datetime.datetime instance, got '{}'",
                        super::type_name(v)
                    ))
                }
            }
        }
        _ => v,
    };
    match b {
        Builtin::Date => {
            if v.is_instance_of::<PyDateTime>() {
                return Err(expected("datetime.date (not datetime.datetime)", v));
            }
            let d = v
                .cast::<PyDate>()
                .map_err(|_| expected("datetime.date", v))?;
            let mut days = dt::pg_days_from_date(date_of(d));
            if extremes {
                days = dt::pg_days_with_extremes_infinite(days);
            }
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
            let mut us = dt::pg_usecs_from_timestamp(date_of(ts), time_of(ts));
            if extremes {
                us = dt::pg_usecs_with_extremes_infinite(us);
            }
            buf.extend_from_slice(&us.to_be_bytes());
        }
        Builtin::TimestampTz => {
            let ts = v
                .cast::<PyDateTime>()
                .map_err(|_| expected("datetime.datetime", v))?;
            let local = dt::pg_usecs_from_timestamp(date_of(ts), time_of(ts));
            let naive_extreme =
                || local == dt::YEAR_9999_LAST_USEC || local == dt::YEAR_1_FIRST_USEC;
            let mut us = if ts.get_tzinfo().is_some() {
                local - i64::from(offset_seconds(v)?) * dt::USECS_PER_SEC
            } else if extremes && naive_extreme() {
                // asyncpg compares with the naive datetime.max and min before any conversion
                // to local time (which would leave the years 1 to 9999).
                local
            } else {
                // A naive datetime is local time, as in asyncpg (`astimezone`).
                let utc = PyTzInfo::utc(v.py()).map_err(|e| e.to_string())?;
                let aware = v
                    .call_method1("astimezone", (utc,))
                    .map_err(|e| e.to_string())?;
                let aware = aware.cast::<PyDateTime>().map_err(|e| e.to_string())?;
                dt::pg_usecs_from_timestamp(date_of(aware), time_of(aware))
            };
            if extremes {
                us = dt::pg_usecs_with_extremes_infinite(us);
            }
            buf.extend_from_slice(&us.to_be_bytes());
        }
        // Sent exactly as given, whatever `infinities`: an Interval's fields are PostgreSQL's.
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

fn infinite(py: Python<'_>, what: &str, negative: bool) -> PyErr {
    let sign = if negative { "-" } else { "" };
    data_error(
        py,
        format!(
            "{what} value {sign}infinity cannot be represented as a Python {what} under \
             infinity='raise'; select it as text (e.g. col::text), test it with isfinite(), \
             or connect with infinity='max'"
        ),
    )
}

fn date(
    py: Python<'_>,
    d: dt::Bounded<dt::Date>,
    infinities: Infinities,
) -> PyResult<Bound<'_, PyDate>> {
    match d {
        dt::Bounded::Finite(d) if (1..=9999).contains(&d.year) => {
            PyDate::new(py, d.year, d.month, d.day)
        }
        dt::Bounded::Finite(d) => Err(out_of_range(
            py,
            "date",
            &format!("{}-{:02}-{:02}", d.year, d.month, d.day),
        )),
        dt::Bounded::Infinity if infinities == Infinities::Extremes => {
            PyDate::new(py, 9999, 12, 31)
        }
        dt::Bounded::NegInfinity if infinities == Infinities::Extremes => PyDate::new(py, 1, 1, 1),
        other => Err(infinite(py, "date", other == dt::Bounded::NegInfinity)),
    }
}

/// A `timestamptz` given as microseconds since 2000-01-01 UTC, as an aware datetime
/// (replication's timestamps, never infinite).
pub fn timestamptz(py: Python<'_>, usecs: i64) -> PyResult<Bound<'_, PyDateTime>> {
    let utc = PyTzInfo::utc(py)?;
    timestamp(
        py,
        dt::timestamp_from_pg_usecs(usecs),
        Some(&utc),
        Infinities::Raise,
    )
}

fn timestamp<'py>(
    py: Python<'py>,
    ts: dt::Bounded<(dt::Date, dt::Time)>,
    tz: Option<&Bound<'py, PyTzInfo>>,
    infinities: Infinities,
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
        // Naive even for timestamptz: asyncpg's datetime.max and min.
        dt::Bounded::Infinity if infinities == Infinities::Extremes => {
            PyDateTime::new(py, 9999, 12, 31, 23, 59, 59, 999_999, None)
        }
        dt::Bounded::NegInfinity if infinities == Infinities::Extremes => {
            PyDateTime::new(py, 1, 1, 1, 0, 0, 0, 0, None)
        }
        other => Err(infinite(py, "datetime", other == dt::Bounded::NegInfinity)),
    }
}

/// timedelta's limit: `timedelta.max.days`.
const TIMEDELTA_MAX_DAYS: i128 = 999_999_999;

/// An interval as asyncpg reads it: a `timedelta` of its length, a year of months counting
/// 365 days and a month 30. One with months is a `pgoxide.types.Interval`, a timedelta of
/// that length that also keeps the three fields, so that it is sent back unchanged. An
/// infinite interval is an `Interval` too (its timedelta is `timedelta.max` or `min`).
fn interval(
    py: Python<'_>,
    iv: dt::Interval,
    infinities: Infinities,
) -> PyResult<Bound<'_, PyAny>> {
    let fields = (iv.months, iv.days, iv.microseconds);
    if iv.is_infinite() {
        if infinities == Infinities::Raise {
            return Err(infinite(py, "interval", iv == dt::Interval::NEG_INFINITY));
        }
        return pycache::interval_type(py)?.call1(fields);
    }
    let usecs = iv.asyncpg_usecs();
    let day = i128::from(dt::USECS_PER_DAY);
    let days = usecs.div_euclid(day);
    if days.abs() > TIMEDELTA_MAX_DAYS {
        return Err(data_error(
            py,
            format!(
                "interval value of {} months, {} days and {} microseconds is beyond the range \
                 of Python's timedelta (999999999 days); select it as text (e.g. col::text)",
                iv.months, iv.days, iv.microseconds
            ),
        ));
    }
    if iv.months != 0 {
        return pycache::interval_type(py)?.call1(fields);
    }
    let rest = usecs.rem_euclid(day) as i64;
    let secs = rest / dt::USECS_PER_SEC;
    let micros = rest % dt::USECS_PER_SEC;
    Ok(PyDelta::new(py, days as i32, secs as i32, micros as i32, false)?.into_any())
}

/// An interval from a `pgoxide.types.Interval` (its exact fields) or any other `timedelta`
/// (its days, and its seconds and microseconds as microseconds, as asyncpg sends it).
fn interval_of(v: &Bound<'_, PyAny>) -> Result<dt::Interval, String> {
    let delta = |d: &Bound<'_, PyDelta>| {
        let micros =
            i64::from(d.get_seconds()) * dt::USECS_PER_SEC + i64::from(d.get_microseconds());
        dt::Interval {
            microseconds: micros,
            days: d.get_days(),
            months: 0,
        }
    };
    if let Ok(d) = v.cast_exact::<PyDelta>() {
        return Ok(delta(d));
    }
    let interval_type = pycache::interval_type(v.py()).map_err(|e| e.to_string())?;
    if v.is_instance(interval_type).unwrap_or(false) {
        let (months, days, microseconds): (i32, i32, i64) = v
            .getattr("fields")
            .and_then(|f| f.extract())
            .map_err(|e| format!("Interval.fields: {e}"))?;
        return Ok(dt::Interval {
            microseconds,
            days,
            months,
        });
    }
    match v.cast::<PyDelta>() {
        Ok(d) => Ok(delta(d)),
        Err(_) => Err(expected("datetime.timedelta", v)),
    }
}

/// The text of a value where its `str()` is not what it is sent as (text COPY prints dates
/// and times with `str()`): `infinity` or `-infinity` for the values `codec` sends as such,
/// and an `Interval` in PostgreSQL's syntax, months included.
pub fn text_form(
    b: Builtin,
    codec: &super::Codec,
    v: &Bound<'_, PyAny>,
) -> Result<Option<String>, String> {
    match b {
        Builtin::Date | Builtin::Timestamp | Builtin::TimestampTz => {
            let mut buf = Vec::with_capacity(8);
            if codec.encode(v, &mut buf).is_err() {
                return Ok(None); // the caller's path reports it
            }
            let infinite = match buf.len() {
                4 => match i32::from_be_bytes(buf[..].try_into().expect("4 bytes")) {
                    dt::DATE_POS_INFINITY => Some("infinity"),
                    dt::DATE_NEG_INFINITY => Some("-infinity"),
                    _ => None,
                },
                8 => match i64::from_be_bytes(buf[..].try_into().expect("8 bytes")) {
                    dt::TIMESTAMP_POS_INFINITY => Some("infinity"),
                    dt::TIMESTAMP_NEG_INFINITY => Some("-infinity"),
                    _ => None,
                },
                _ => None,
            };
            Ok(infinite.map(str::to_owned))
        }
        Builtin::Interval => {
            let interval_type = pycache::interval_type(v.py()).map_err(|e| e.to_string())?;
            if !v.is_instance(interval_type).unwrap_or(false) {
                return Ok(None);
            }
            let text = v.str().map_err(|e| e.to_string())?;
            Ok(Some(text.to_str().map_err(|e| e.to_string())?.to_owned()))
        }
        _ => Ok(None),
    }
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
