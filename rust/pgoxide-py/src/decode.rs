//! Column decoders: binary wire values straight to Python objects.
//!
//! A statement picks one [`Codec`] per result column when it is prepared; every row then
//! runs a `match` per value with no Python-level call, except for types whose Python
//! constructor is the only exact path (`Decimal`).

use pgoxide_proto::codec::{self, array, datetime as dt, misc, numeric};
use pgoxide_proto::types::{Builtin, Oid};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDate, PyDateTime, PyDelta, PyString, PyTime, PyTzInfo};

use crate::codec::Codec;
use crate::errors::data_error;
use crate::pycache;
use crate::registry::{ExchangeFormat, UserCodec};
use crate::{containers, scalars};

impl Codec {
    /// Decodes one non-NULL value of a row: the commonest scalars right here, in the caller's
    /// loop, other builtins and arrays with one call, everything else through
    /// [`Codec::decode`]. Each level skipped saves returning a 72-byte `PyResult` once more.
    #[inline]
    pub fn decode_field<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Codec::Scalar(b) => match simple_scalar(*b, data) {
                // SAFETY: a new reference, or NULL with an exception set.
                Some(object) => unsafe { Bound::from_owned_ptr_or_err(py, object) },
                None => decode_builtin(py, *b, data),
            },
            Codec::Array(elem, elem_oid) => decode_array(py, elem, *elem_oid, data),
            _ => self.decode(py, data),
        }
    }

    /// Decodes one non-NULL value.
    #[inline]
    pub fn decode<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Codec::Scalar(b) => decode_builtin(py, *b, data),
            Codec::Text => text(py, data),
            Codec::Array(elem, elem_oid) => decode_array(py, elem, *elem_oid, data),
            Codec::User(user, inner) => decode_user(py, user, inner, data),
            Codec::Composite(c) => containers::decode_composite(py, c, data),
            Codec::Record(registry) => containers::decode_record(py, registry, data),
            Codec::Range(sub, _) => containers::decode_range(py, sub, data),
            Codec::Multirange(range_codec, _) => {
                containers::decode_multirange(py, range_codec, data)
            }
            Codec::Hstore => containers::decode_hstore(py, data),
        }
    }
}

/// text and char, and int2, int4, int8, oid, float4, float8 and bool of the right width: a new
/// reference (or NULL with an exception set), or `None` for anything else, which the general
/// path decodes (and rejects).
#[inline]
fn simple_scalar(b: Builtin, data: &[u8]) -> Option<*mut ffi::PyObject> {
    // SAFETY: the constructors return a new reference or NULL with an exception set; True and
    // False are singletons whose reference count is raised; `data` outlives the call.
    unsafe {
        Some(match b {
            Builtin::Text | Builtin::Char => new_utf8_str(data),
            Builtin::Int2 => ffi::PyLong_FromLong(i16::from_be_bytes(data.try_into().ok()?).into()),
            Builtin::Int4 => ffi::PyLong_FromLong(i32::from_be_bytes(data.try_into().ok()?).into()),
            Builtin::Int8 => ffi::PyLong_FromLongLong(i64::from_be_bytes(data.try_into().ok()?)),
            Builtin::Oid => {
                ffi::PyLong_FromUnsignedLong(u32::from_be_bytes(data.try_into().ok()?).into())
            }
            Builtin::Float4 => {
                ffi::PyFloat_FromDouble(f32::from_be_bytes(data.try_into().ok()?).into())
            }
            Builtin::Float8 => ffi::PyFloat_FromDouble(f64::from_be_bytes(data.try_into().ok()?)),
            Builtin::Bool => match data {
                [0] => ffi::Py_NewRef(ffi::Py_False()),
                [1] => ffi::Py_NewRef(ffi::Py_True()),
                _ => return None,
            },
            _ => return None,
        })
    }
}

fn core_error(py: Python<'_>) -> impl Fn(pgoxide_proto::Error) -> PyErr + Copy + '_ {
    move |e| data_error(py, e.to_string())
}

/// Decodes one value of a builtin binary format.
#[inline]
fn decode_builtin<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match b {
        Builtin::Text | Builtin::Char => text(py, data)?,
        Builtin::Int4 => codec::decode_i32(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Int8 => codec::decode_i64(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Int2 => codec::decode_i16(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Oid => codec::decode_u32(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Xid8 => u64::from_be_bytes(codec::fixed(data, "xid8").map_err(core)?)
            .into_pyobject(py)?
            .into_any(),
        Builtin::Bool => pyo3::types::PyBool::new(py, codec::decode_bool(data).map_err(core)?)
            .to_owned()
            .into_any(),
        Builtin::Float8 => codec::decode_f64(data)
            .map_err(core)?
            .into_pyobject(py)?
            .into_any(),
        Builtin::Float4 => f64::from(codec::decode_f32(data).map_err(core)?)
            .into_pyobject(py)?
            .into_any(),
        Builtin::Numeric => decimal(py, data)?,
        Builtin::Bytea => PyBytes::new(py, data).into_any(),
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
        Builtin::Uuid => crate::uuid::new(py, codec::fixed::<16>(data, "uuid").map_err(core)?)?,
        Builtin::Json => json(py, data)?,
        Builtin::Jsonb => json(py, codec::decode_jsonb(data).map_err(core)?)?,
        Builtin::Jsonpath => text(py, misc::decode_jsonpath(data).map_err(core)?)?,
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
        | Builtin::Snapshot => scalars::decode(py, b, data)?,
    })
}

/// JSON text to Python objects (dict, list, str, int, float, bool, None), parsed in Rust:
/// common documents by our builder, the rest by jiter.
pub fn json<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if let Some(value) = crate::json::build(py, data)? {
        return Ok(value);
    }
    let parser = jiter::PythonParse {
        cache_mode: jiter::StringCacheMode::Keys,
        ..Default::default()
    };
    match parser.python_parse(py, data) {
        Ok(value) => Ok(value),
        // jiter stops at 200 levels of nesting, and PostgreSQL stores far deeper values.
        Err(e) if e.error_type == jiter::JsonErrorType::RecursionLimitExceeded => {
            deeply_nested_json(py, data)
        }
        Err(e) => Err(data_error(
            py,
            format!("invalid JSON value: {}", e.description(data)),
        )),
    }
}

/// A JSON value too deeply nested for jiter, through Python's `json.loads` (which goes as
/// deep as the interpreter's recursion limit). Rare, so its speed does not matter.
fn deeply_nested_json<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    pycache::json_loads(py)?
        .call1((PyBytes::new(py, data),))
        .map_err(|e| {
            if e.is_instance_of::<pyo3::exceptions::PyRecursionError>(py) {
                data_error(
                    py,
                    "JSON value nested too deeply to decode into Python objects; select it \
                     as text (col::text) or register a codec for the type"
                        .into(),
                )
            } else {
                data_error(py, format!("invalid JSON value: {e}"))
            }
        })
}

/// A value handed to a user codec's decoder in its exchange format.
fn decode_user<'py>(
    py: Python<'py>,
    user: &UserCodec,
    inner: &Codec,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let exchanged = match user.format {
        ExchangeFormat::Text => match inner {
            // Text-like types travel in binary (so they also nest in arrays): strip the
            // version byte where the binary form has one.
            Codec::Scalar(Builtin::Jsonb | Builtin::Jsonpath) => {
                text(py, codec::decode_jsonb(data).map_err(core_error(py))?)?
            }
            _ => text(py, data)?,
        },
        ExchangeFormat::Binary => PyBytes::new(py, data).into_any(),
        ExchangeFormat::Tuple => tuple_form(py, inner, data)?,
    };
    user.decoder.bind(py).call1((exchanged,))
}

/// asyncpg's `tuple` exchange format of the types that have one.
fn tuple_form<'py>(py: Python<'py>, inner: &Codec, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match inner {
        Codec::Scalar(Builtin::Date) => (codec::decode_i32(data).map_err(core)?,)
            .into_pyobject(py)?
            .into_any(),
        Codec::Scalar(Builtin::Timestamp | Builtin::TimestampTz | Builtin::Time) => {
            (codec::decode_i64(data).map_err(core)?,)
                .into_pyobject(py)?
                .into_any()
        }
        Codec::Scalar(Builtin::TimeTz) => {
            let raw: [u8; 12] = codec::fixed(data, "timetz").map_err(core)?;
            let usecs = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
            // The zone as sent: seconds west of UTC, as asyncpg passes it.
            let west = i32::from_be_bytes(raw[8..].try_into().expect("4 bytes"));
            (usecs, west).into_pyobject(py)?.into_any()
        }
        Codec::Scalar(Builtin::Interval) => {
            let iv = dt::decode_interval(data).map_err(core)?;
            (iv.months, iv.days, iv.microseconds)
                .into_pyobject(py)?
                .into_any()
        }
        _ => {
            return Err(data_error(
                py,
                "format='tuple' is not supported for this type".into(),
            ))
        }
    })
}

/// UTF-8 bytes to `str`, validated once by CPython's decoder.
#[inline]
pub fn text<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, new_utf8_str(data)) }
}

/// A new `str` of the UTF-8 `data`, or NULL with a UnicodeDecodeError set.
///
/// # Safety
///
/// The GIL must be held.
unsafe fn new_utf8_str(data: &[u8]) -> *mut ffi::PyObject {
    // SAFETY: the pointer and length describe `data`, which outlives the call.
    unsafe {
        ffi::PyUnicode_DecodeUTF8(
            data.as_ptr().cast(),
            data.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        )
    }
}

/// A `str` of `text`, copied without UTF-8 validation when it is ASCII (numbers, dates).
fn ascii_str<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
    if !text.is_ascii() {
        return Ok(PyString::new(py, text));
    }
    // SAFETY: checked just above; the result is a new str or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(py, new_ascii_str(text.as_bytes()))
            .map(|s| s.cast_into_unchecked())
    }
}

/// A new compact ASCII `str` of `ascii` (a new reference), or NULL with an exception set.
///
/// # Safety
///
/// Every byte of `ascii` must be below 0x80, and the GIL must be held.
pub unsafe fn new_ascii_str(ascii: &[u8]) -> *mut ffi::PyObject {
    debug_assert!(ascii.is_ascii());
    // SAFETY: PyUnicode_New(n, 127) makes a compact ASCII string of n code points whose data
    // (n bytes plus the terminator it writes) is filled here before the string is used.
    unsafe {
        let s = ffi::PyUnicode_New(ascii.len() as ffi::Py_ssize_t, 127);
        if !s.is_null() {
            std::ptr::copy_nonoverlapping(
                ascii.as_ptr(),
                ffi::PyUnicode_DATA(s).cast::<u8>(),
                ascii.len(),
            );
        }
        s
    }
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

thread_local! {
    /// The text of the numeric being decoded: one buffer reused for every value, as growing a
    /// fresh buffer cost more than the digits themselves.
    static NUMERIC_TEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `Decimal` of a binary numeric.
fn decimal<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // The buffer is released before Decimal() runs: nothing in between can run Python code
    // (making a str triggers no collection), so no finalizer can re-enter while it is held.
    // A malformed value's error is made after the buffer is released, too.
    let text = NUMERIC_TEXT.with_borrow_mut(|text| {
        text.clear();
        numeric::decode_to_text(data, text).map(|()| {
            // SAFETY: the text is ASCII; the result is a new str or NULL with an exception set.
            unsafe {
                Bound::from_owned_ptr_or_err(py, new_ascii_str(text))
                    .map(|s| s.cast_into_unchecked::<PyString>())
            }
        })
    });
    let text = text.map_err(|e| data_error(py, e.to_string()))??;
    decimal_of(py, &text)
}

/// Fills the `n` slots of `list` from an array level of int2, int4, int8, float4 or float8
/// elements, without the generic per-element dispatch (that dispatch was most of the cost of
/// decoding an `int[]`). Returns false, touching nothing, for other element types.
fn fill_numbers<'py>(
    py: Python<'py>,
    b: Builtin,
    list: &Bound<'py, PyAny>,
    n: usize,
    cursor: &mut pgoxide_proto::backend::Cursor<'_>,
) -> PyResult<bool> {
    // SAFETY (every arm): the constructors return a new reference, or NULL with an error set.
    unsafe {
        match b {
            Builtin::Int2 => fill_fixed(py, list, n, cursor, |d: [u8; 2]| {
                ffi::PyLong_FromLong(i16::from_be_bytes(d).into())
            }),
            Builtin::Int4 => fill_fixed(py, list, n, cursor, |d: [u8; 4]| {
                ffi::PyLong_FromLong(i32::from_be_bytes(d).into())
            }),
            Builtin::Int8 => fill_fixed(py, list, n, cursor, |d: [u8; 8]| {
                ffi::PyLong_FromLongLong(i64::from_be_bytes(d))
            }),
            Builtin::Float4 => fill_fixed(py, list, n, cursor, |d: [u8; 4]| {
                ffi::PyFloat_FromDouble(f32::from_be_bytes(d).into())
            }),
            Builtin::Float8 => fill_fixed(py, list, n, cursor, |d: [u8; 8]| {
                ffi::PyFloat_FromDouble(f64::from_be_bytes(d))
            }),
            _ => return Ok(false),
        }?;
    }
    // SAFETY: the list is complete; built untracked like its row (see `build_level`).
    unsafe { ffi::PyObject_GC_UnTrack(list.as_ptr().cast()) };
    Ok(true)
}

/// [`fill_numbers`] for one element width `W`: `make` turns an element's bytes into a new
/// reference (or NULL with a Python error set).
fn fill_fixed<'py, const W: usize>(
    py: Python<'py>,
    list: &Bound<'py, PyAny>,
    n: usize,
    cursor: &mut pgoxide_proto::backend::Cursor<'_>,
    make: impl Fn([u8; W]) -> *mut ffi::PyObject,
) -> PyResult<()> {
    let truncated = |_| data_error(py, "invalid array value: truncated".into());
    for i in 0..n {
        let len = cursor.i32().map_err(truncated)?;
        let item = if len == W as i32 {
            let raw = cursor.bytes(W).map_err(truncated)?;
            make(raw.try_into().expect("W bytes"))
        } else if len == -1 {
            py.None().into_ptr()
        } else {
            return Err(data_error(
                py,
                format!("invalid array value: element of {len} bytes, expected {W}"),
            ));
        };
        if item.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: slot `i` of a list of `n` NULL slots, set once; the list steals `item`.
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item) };
    }
    Ok(())
}

/// `Decimal(text)` for a numeric's text output (as PostgreSQL prints it, including `NaN` and
/// `Infinity`, which Decimal reads the same way).
pub fn decimal_from_text<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    decimal_of(py, &ascii_str(py, text)?)
}

/// `Decimal(arg)`, exactly.
fn decimal_of<'py>(py: Python<'py>, arg: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    pycache::make_decimal(py)?.call(arg)
}

fn decode_array<'py>(
    py: Python<'py>,
    elem: &Codec,
    elem_oid: Oid,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let (header, mut cursor) =
        array::read_header(data).map_err(|e| data_error(py, e.to_string()))?;
    let dims = header.dims();
    if dims.is_empty() {
        return Ok(pyo3::types::PyList::empty(py).into_any());
    }
    if header.element_oid != elem_oid {
        return Err(data_error(
            py,
            format!(
                "array element type {} does not match the column's {elem_oid}",
                header.element_oid
            ),
        ));
    }
    let list = build_level(py, elem, dims, &mut cursor)?;
    if !cursor.is_empty() {
        return Err(data_error(py, "invalid array value: trailing bytes".into()));
    }
    if dims.iter().all(|&(_, lower)| lower == 1) {
        return Ok(list);
    }
    // Lower bounds other than 1 are kept: a list subclass that carries them. It is built by
    // Python and so tracked by the collector already; its nested lists must be too.
    crate::record::track_lists(list.as_ptr());
    let bounds: Vec<i32> = dims.iter().map(|&(_, lower)| lower).collect();
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("lower_bounds", pyo3::types::PyTuple::new(py, bounds)?)?;
    pycache::array_type(py)?.call((list,), Some(&kwargs))
}

/// Builds the nested lists of one dimension level.
fn build_level<'py>(
    py: Python<'py>,
    elem: &Codec,
    dims: &[(i32, i32)],
    cursor: &mut pgoxide_proto::backend::Cursor<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let n = dims[0].0 as usize;
    // SAFETY: PyList_New(n) makes a list of n NULL slots; each slot is set exactly once below
    // before the list is used, and on error the partially filled list is dropped (CPython's
    // list_dealloc skips NULL items).
    let list = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(n as ffi::Py_ssize_t))? };
    if dims.len() == 1 {
        if let Codec::Scalar(b) = elem {
            if fill_numbers(py, *b, &list, n, cursor)? {
                return Ok(list);
            }
        }
    }
    for i in 0..n {
        let item = if dims.len() > 1 {
            build_level(py, elem, &dims[1..], cursor)?
        } else {
            let bad = |_| data_error(py, "invalid array value: truncated".into());
            let len = cursor.i32().map_err(bad)?;
            if len == -1 {
                py.None().into_bound(py)
            } else {
                let len = usize::try_from(len)
                    .map_err(|_| data_error(py, "invalid array value: negative length".into()))?;
                elem.decode(py, cursor.bytes(len).map_err(bad)?)?
            }
        };
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) };
    }
    // Built untracked like the row holding it; `Record::track_result` tracks it when the
    // result is handed out.
    unsafe { ffi::PyObject_GC_UnTrack(list.as_ptr().cast()) };
    Ok(list)
}
