//! Value converters: Python objects to and from the wire formats of PostgreSQL's types.
//!
//! A statement picks one [`Codec`] per parameter and result column when it is prepared (see
//! [`Resolver`]); every row then runs a `match` per value with no Python-level call, except for
//! types whose Python constructor is the only exact path (`Decimal`). Each family of types has
//! its own file, both directions in it. This file holds the `Codec`, the dispatch to the
//! families, the table of builtin types and the helpers the families share.

mod arrays;
mod bits;
mod composites;
mod datetime;
mod geometry;
mod hstore;
mod json;
mod network;
mod ranges;
mod resolve;
mod scalars;
mod system;
mod user;
mod uuid;

use std::sync::Arc;

use pgoxide_proto::codec::text as text_codec;
use pgoxide_proto::types::{Builtin, Oid};
use pgoxide_proto::Error;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

pub use self::datetime::timestamptz;
pub use self::resolve::Resolver;
pub use self::uuid::class as uuid_class;
use crate::errors::data_error;
use crate::record::RecordDesc;
use crate::registry::{ExchangeFormat, Registry, UserCodec};

/// How values of one type travel. Every variant but `Text` (and a user codec exchanging text)
/// uses the binary format.
#[derive(Debug, Clone)]
pub enum Codec {
    Scalar(Builtin),
    /// A date, timestamp, timestamptz or interval under `connect(infinity="raise")`: its
    /// infinities raise instead of mapping to `max` and `min` (see `datetime::Infinities`).
    Finite(Builtin),
    /// Text format: the value as `str`. Types without a binary codec travel this way, and so
    /// does a container whose elements cannot travel in binary.
    Text,
    Array(Box<Codec>, Oid),
    Composite(Arc<Composite>),
    /// The anonymous `record` type: field types are named only in the data, so they are
    /// resolved at decode time against a snapshot of the registry.
    Record(Arc<Registry>),
    Range(Box<Codec>, Oid),
    Multirange(Box<Codec>, Oid),
    /// hstore as a dict (asyncpg's opt-in `pg_contrib.hstore` codec); without it hstore is
    /// text.
    Hstore,
    /// json or jsonb parsed into Python objects (`connect(parse_json=True)`); as
    /// `Scalar(Json | Jsonb)` they are their text.
    ParsedJson(Builtin),
    /// `void`: `None`, as asyncpg gives it.
    Void,
    /// An array whose elements have only a text codec (aclitem, money, an extension type): in
    /// the text format both ways, as a list (nested for more dimensions) of what the element
    /// codec makes of each element's text.
    TextArray(Box<Codec>, Oid),
    /// A type declared wire-compatible with a builtin in the text format only
    /// (`set_builtin_type_codec(..., format='text')`): values travel as text, read and written
    /// by the text codec of the builtin type `Oid` (numeric, bool, the integers and floats),
    /// into the builtin's usual Python values.
    BuiltinText(Builtin, Oid),
    /// A user codec, and the type's own codec beneath it (for `binary`/`tuple` exchange and
    /// for text-like types inside arrays).
    User(Arc<UserCodec>, Box<Codec>),
}

/// A composite type's fields and the names its decoded records share.
#[derive(Debug)]
pub struct Composite {
    pub type_name: String,
    pub fields: Vec<(Oid, Codec)>,
    pub names: Vec<String>,
    pub desc: Py<RecordDesc>,
}

/// Every builtin type, and the family (a file of this folder, with a `decode` and an `encode`)
/// that converts it: the one list a new builtin type is added to.
macro_rules! builtin_families {
    ($($family:ident: $($builtin:ident)|+;)*) => {
        /// Decodes one value of a builtin binary format.
        #[inline]
        fn decode_builtin<'py>(
            py: Python<'py>,
            b: Builtin,
            data: &[u8],
        ) -> PyResult<Bound<'py, PyAny>> {
            match b {
                $($(Builtin::$builtin)|+ => $family::decode(py, b, data),)*
            }
        }

        /// Encodes one value in a builtin binary format.
        fn encode_builtin(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
            match b {
                $($(Builtin::$builtin)|+ => $family::encode(b, v, buf),)*
            }
        }
    };
}

builtin_families! {
    scalars: Bool | Int2 | Int4 | Int8 | Oid | Xid8 | Float4 | Float8 | Numeric | Text | Char | Bytea;
    datetime: Date | Time | TimeTz | Timestamp | TimestampTz | Interval;
    uuid: Uuid;
    json: Json | Jsonb | Jsonpath;
    network: Inet | Cidr | MacAddr | MacAddr8;
    bits: Bits;
    geometry: Point | Line | Lseg | Box | Path | Polygon | Circle;
    system: Tid | PgLsn | Snapshot;
}

impl Codec {
    /// The format code this codec asks for: 0 text, 1 binary.
    pub fn format(&self) -> i16 {
        i16::from(self.binary())
    }

    /// Whether values travel in binary. A user codec exchanging text does too when the type's
    /// binary form is its text (enums, text-like types, json): then it also works inside
    /// arrays and composites, which are always binary.
    fn binary(&self) -> bool {
        match self {
            Codec::Text | Codec::TextArray(..) | Codec::BuiltinText(..) => false,
            Codec::User(user, inner) => user.format != ExchangeFormat::Text || inner.text_like(),
            _ => true,
        }
    }

    /// Whether an array of these values can travel as text (see [`Codec::TextArray`]): its
    /// elements are text, or a text user codec's.
    fn decodes_text(&self) -> bool {
        match self {
            Codec::Text | Codec::BuiltinText(..) => true,
            Codec::User(user, _) => user.format == ExchangeFormat::Text,
            _ => false,
        }
    }

    /// Whether values can sit inside a binary container (array, range, composite).
    fn nests_in_binary(&self) -> bool {
        self.binary()
    }

    /// Whether a value is itself a sequence (a tuple or list), so that inside an array only
    /// lists mark a further dimension.
    pub fn sequence_valued(&self) -> bool {
        match self {
            Codec::Composite(_) | Codec::Record(_) | Codec::Range(..) => true,
            Codec::Scalar(b) => matches!(
                b,
                Builtin::Point
                    | Builtin::Line
                    | Builtin::Lseg
                    | Builtin::Box
                    | Builtin::Path
                    | Builtin::Polygon
                    | Builtin::Circle
                    | Builtin::Tid
                    | Builtin::Snapshot
            ),
            Codec::User(user, inner) => {
                user.format == ExchangeFormat::Tuple || inner.sequence_valued()
            }
            _ => false,
        }
    }

    /// Types whose binary form is (a version byte plus) their text form.
    pub fn text_like(&self) -> bool {
        matches!(
            self,
            Codec::Scalar(
                Builtin::Text | Builtin::Char | Builtin::Json | Builtin::Jsonb | Builtin::Jsonpath
            ) | Codec::ParsedJson(_)
        )
    }

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
            Codec::Array(elem, elem_oid) => arrays::decode(py, elem, *elem_oid, data),
            _ => self.decode(py, data),
        }
    }

    /// Decodes one non-NULL value.
    #[inline]
    pub fn decode<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Codec::Scalar(b) => decode_builtin(py, *b, data),
            Codec::Finite(b) => datetime::decode_with(py, *b, data, datetime::Infinities::Raise),
            Codec::Text => text(py, data),
            Codec::Array(elem, elem_oid) => arrays::decode(py, elem, *elem_oid, data),
            Codec::User(user, inner) => user::decode(py, user, inner, data),
            Codec::Composite(c) => composites::decode(py, c, data),
            Codec::Record(registry) => composites::decode_record(py, registry, data),
            Codec::Range(sub, _) => ranges::decode(py, sub, data),
            Codec::Multirange(range_codec, _) => ranges::decode_multirange(py, range_codec, data),
            Codec::Hstore => hstore::decode(py, data),
            Codec::ParsedJson(b) => json::decode_parsed(py, *b, data),
            Codec::Void => Ok(py.None().into_bound(py)),
            Codec::TextArray(elem, elem_oid) => {
                arrays::decode_text_array(py, elem, *elem_oid, data)
            }
            // Always in the text format.
            Codec::BuiltinText(b, builtin_oid) => scalars::decode_text(py, *b, *builtin_oid, data),
        }
    }

    /// A text-format value of type `oid`: transcoded to its binary form and decoded by this
    /// codec when the type allows it (see `pgoxide_proto::codec::text`), else the text itself
    /// as `str`.
    pub fn decode_text<'py>(
        &self,
        py: Python<'py>,
        oid: Oid,
        data: &[u8],
        scratch: &mut Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Codec::Text | Codec::Scalar(Builtin::Text) => return text(py, data),
            // The text form is a text codec's exchange format.
            Codec::User(user, _) if user.format == ExchangeFormat::Text => {
                return user.decoder.bind(py).call1((text(py, data)?,));
            }
            // Straight from the text: transcoding would only turn it into text again.
            Codec::Scalar(Builtin::Numeric) => {
                let s = std::str::from_utf8(data)
                    .map_err(|_| data_error(py, "invalid numeric value: not UTF-8".into()))?;
                return scalars::decimal_from_text(py, s);
            }
            // The text form of json and jsonb is the JSON text (no version byte).
            Codec::Scalar(Builtin::Json | Builtin::Jsonb) => return text(py, data),
            Codec::ParsedJson(_) => return json::parse(py, data),
            Codec::TextArray(..) | Codec::Void | Codec::BuiltinText(..) => {
                return self.decode(py, data)
            }
            _ => {}
        }
        scratch.clear();
        match text_codec::to_binary(oid, data, scratch) {
            Ok(true) => self.decode(py, scratch),
            Ok(false) => text(py, data),
            Err(e) => Err(data_error(py, e.to_string())),
        }
    }

    /// The text form of a value that `str()` would misprint for this codec: an infinity under
    /// asyncpg's mapping, and a `pgoxide.types.Interval` (months included). For text COPY.
    pub fn datetime_text(&self, v: &Bound<'_, PyAny>) -> Result<Option<String>, String> {
        match self {
            Codec::Scalar(b) | Codec::Finite(b) => datetime::text_form(*b, self, v),
            _ => Ok(None),
        }
    }

    /// Encodes a non-None value.
    pub fn encode(&self, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
        match self {
            Codec::Scalar(b) => encode_builtin(*b, v, buf),
            Codec::Finite(b) => datetime::encode_with(*b, v, buf, datetime::Infinities::Raise),
            Codec::Text => {
                buf.extend_from_slice(str_bytes(v)?);
                Ok(())
            }
            Codec::Array(elem, elem_oid) => arrays::encode(elem, *elem_oid, v, buf),
            Codec::User(user, inner) => user::encode(user, inner, v, buf),
            Codec::Composite(c) => composites::encode(c, v, buf),
            Codec::Range(sub, _) => ranges::encode(sub, v, buf),
            Codec::Multirange(range_codec, _) => ranges::encode_multirange(range_codec, v, buf),
            Codec::Hstore => hstore::encode(v, buf),
            Codec::ParsedJson(b) => json::encode(*b, v, buf),
            // asyncpg sends any void argument as an empty value.
            Codec::Void => Ok(()),
            Codec::TextArray(elem, _) => arrays::encode_text_array(elem, v, buf),
            Codec::BuiltinText(b, _) => scalars::encode_text(*b, v, buf),
            Codec::Record(_) => Err(
                "anonymous record parameters are not supported; cast to a composite type".into(),
            ),
        }
    }
}

/// text, "char" (as bytes), and int2, int4, int8, oid, float4, float8 and bool of the right width: a new
/// reference (or NULL with an exception set), or `None` for anything else, which the general
/// path decodes (and rejects).
#[inline]
fn simple_scalar(b: Builtin, data: &[u8]) -> Option<*mut ffi::PyObject> {
    // SAFETY: the constructors return a new reference or NULL with an exception set; True and
    // False are singletons whose reference count is raised; `data` outlives the call.
    unsafe {
        Some(match b {
            Builtin::Text => new_utf8_str(data),
            Builtin::Char => {
                ffi::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as ffi::Py_ssize_t)
            }
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

// -- helpers of the families -----------------------------------------------------------------

/// Why a value could not be encoded; the caller adds which parameter it was.
pub type EncodeResult = Result<(), String>;

/// A core decoding error as a DataError.
fn core_error(py: Python<'_>) -> impl Fn(Error) -> PyErr + Copy + '_ {
    move |e| data_error(py, e.to_string())
}

/// The message for a value of the wrong Python type.
fn expected(what: &str, v: &Bound<'_, PyAny>) -> String {
    format!("expected {what}, got {}", type_name(v))
}

/// The message for a value of the wrong Python type, in asyncpg's words where it has them
/// (`a boolean`, `an integer`, `a bytes-like object`), with the type that came.
fn required(what: &str, v: &Bound<'_, PyAny>) -> String {
    format!("{what} is required, got {}", type_name(v))
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// The UTF-8 bytes of a `str` argument.
fn str_bytes<'a>(v: &'a Bound<'_, PyAny>) -> Result<&'a [u8], String> {
    let s = v.cast::<PyString>().map_err(|_| expected("str", v))?;
    // SAFETY-free path: PyUnicode_AsUTF8AndSize caches the UTF-8 form inside the str object,
    // so the slice lives as long as `v`.
    s.to_str().map(str::as_bytes).map_err(|e| e.to_string())
}

/// Encodes a nested value through its codec, for the core's closure-based writers.
fn nested<'a>(
    codec: &'a Codec,
    v: &'a Bound<'_, PyAny>,
) -> impl FnOnce(&mut Vec<u8>) -> pgoxide_proto::error::Result<()> + 'a {
    move |buf| codec.encode(v, buf).map_err(Error::Encode)
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

/// A new compact ASCII `str` of `ascii` (a new reference), or NULL with an exception set.
///
/// # Safety
///
/// Every byte of `ascii` must be below 0x80, and the GIL must be held.
unsafe fn new_ascii_str(ascii: &[u8]) -> *mut ffi::PyObject {
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
