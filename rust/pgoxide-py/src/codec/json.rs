//! json, jsonb and jsonpath. By default json and jsonb are their JSON text as `str`, as asyncpg
//! gives them (for jsonb, the text after the version byte). With `connect(parse_json=True)`
//! they are Python objects (dict, list, str, int, float, bool, None) parsed in Rust
//! ([`Codec::ParsedJson`](super::Codec::ParsedJson)). Parameters either way: a `str` (or
//! bytes) is JSON text already and is sent as it is, never serialised again, as asyncpg does;
//! any other object is serialised with `json.dumps`.
//!
//! [`build`] turns json and jsonb text straight into Python objects, for the documents most
//! columns hold. It handles JSON made of objects, arrays, strings (escapes included), integers
//! of up to 18 digits, floats, booleans and null: what `json.loads` gives, built with no
//! intermediate tree. Object keys come from a small per-thread cache, so the keys that repeat
//! in every row are one shared `str` each. It gives up on anything else (bigger
//! integers, lone surrogate escapes, nesting past [`MAX_DEPTH`], invalid JSON) and [`parse`]
//! parses the value again with jiter, which covers all of JSON and words the errors.
//!
//! Why not jiter alone: per value it takes its string cache from a global lock and gives it
//! back, and it looks keys up through a general-purpose cache. On the small documents of a
//! typical jsonb column this builder runs about a quarter fewer instructions (benches/PROFILE.md).

use std::cell::Cell;

use pgoxide_proto::codec::{self, misc, JSONB_VERSION};
use pgoxide_proto::types::Builtin;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::{core_error, new_ascii_str, str_bytes, text, EncodeResult};
use crate::errors::data_error;
use crate::pycache;

/// Decodes a value of one of the types of this family: json and jsonb as their text.
#[inline]
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    match b {
        Builtin::Json => text(py, data),
        Builtin::Jsonb => text(py, codec::decode_jsonb(data).map_err(core)?),
        Builtin::Jsonpath => text(py, misc::decode_jsonpath(data).map_err(core)?),
        _ => unreachable!("not a type of this family: {b:?}"),
    }
}

/// Decodes a json or jsonb value into Python objects (`parse_json=True`).
pub fn decode_parsed<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match b {
        Builtin::Json => parse(py, data),
        Builtin::Jsonb => parse(py, codec::decode_jsonb(data).map_err(core_error(py))?),
        _ => decode(py, b, data),
    }
}

/// Encodes a value of one of the types of this family.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    match b {
        Builtin::Json => json_text(v, buf)?,
        Builtin::Jsonb => {
            buf.push(JSONB_VERSION);
            json_text(v, buf)?;
        }
        Builtin::Jsonpath => {
            buf.push(JSONB_VERSION);
            buf.extend_from_slice(str_bytes(v)?);
        }
        _ => unreachable!("not a type of this family: {b:?}"),
    }
    Ok(())
}

/// JSON text to Python objects: common documents by our builder, the rest by jiter.
pub fn parse<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if let Some(value) = build(py, data)? {
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

/// Deeper values go to jiter (and from there, past its limit, to `json.loads`).
const MAX_DEPTH: u32 = 128;

/// Keys longer than this are rare enough to build every time.
const MAX_CACHED_KEY: usize = 64;

/// Slots of the key cache: direct-mapped, a power of two.
const KEY_SLOTS: usize = 512;

/// The bytes that end a run of plain ASCII in a string: the closing quote, a backslash,
/// control characters (invalid there) and the bytes of non-ASCII characters.
static PLAIN_END: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize || b >= 0x80;
        b += 1;
    }
    table
};

/// Why [`build`] stopped before the end. Small on purpose: it travels up every level.
enum Stop {
    /// The value needs the full parser.
    Unsupported,
    /// Python could not allocate an object; its exception is set.
    Python,
}

type Built<'py> = Result<Bound<'py, PyAny>, Stop>;

/// The Python object of the JSON text `data`, or `None` when the text needs the full parser.
fn build<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
    KEYS.with(|keys| {
        let mut builder = Builder {
            py,
            data,
            pos: 0,
            depth: 0,
            items: Vec::new(),
            text: String::new(),
            keys,
        };
        let result = builder.value().and_then(|v| {
            builder.skip_whitespace();
            if builder.pos == data.len() {
                Ok(v)
            } else {
                Err(Stop::Unsupported)
            }
        });
        match result {
            Ok(v) => Ok(Some(v)),
            Err(Stop::Unsupported) => Ok(None),
            Err(Stop::Python) => Err(PyErr::fetch(py)),
        }
    })
}

struct Builder<'a, 'py> {
    py: Python<'py>,
    data: &'a [u8],
    pos: usize,
    depth: u32,
    /// Elements of the arrays being built, innermost last.
    items: Vec<Bound<'py, PyAny>>,
    /// The decoded text of a string with escapes.
    text: String,
    /// This thread's key cache, looked up once per document.
    keys: &'a KeyCache,
}

impl<'py> Builder<'_, 'py> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `byte` after optional whitespace.
    fn expect(&mut self, byte: u8) -> Result<(), Stop> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Stop::Unsupported)
        }
    }

    // Inlined into `object` and `array`, which stay out of line: a member that is a scalar is
    // then parsed without a call of its own (about 30 instructions less per member; a plain
    // `#[inline]` leaves the call).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn value(&mut self) -> Built<'py> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                self.pos += 1;
                self.string(false)
            }
            // SAFETY (the three singletons): only their addresses are taken.
            Some(b't') => self.literal(b"true", unsafe { ffi::Py_True() }),
            Some(b'f') => self.literal(b"false", unsafe { ffi::Py_False() }),
            Some(b'n') => self.literal(b"null", unsafe { ffi::Py_None() }),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Stop::Unsupported),
        }
    }

    /// After a member or element: consumes a comma (true: another follows) or `close` (false).
    #[inline]
    fn more(&mut self, close: u8) -> Result<bool, Stop> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Stop::Unsupported),
        }
    }

    fn literal(&mut self, word: &[u8], object: *mut ffi::PyObject) -> Built<'py> {
        if !self.data[self.pos..].starts_with(word) {
            return Err(Stop::Unsupported);
        }
        self.pos += word.len();
        // SAFETY: True, False and None are immortal singletons.
        Ok(unsafe { Bound::from_borrowed_ptr(self.py, object) })
    }

    fn nest(&mut self) -> Result<(), Stop> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Stop::Unsupported);
        }
        self.pos += 1;
        self.skip_whitespace();
        Ok(())
    }

    #[inline(never)]
    fn object(&mut self) -> Built<'py> {
        self.nest()?;
        // SAFETY: PyDict_New returns a new reference or NULL with an exception set.
        let dict = self.owned(unsafe { ffi::PyDict_New() })?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.expect(b'"')?;
                let key = self.string(true)?;
                self.expect(b':')?;
                let value = self.value()?;
                // SAFETY: `dict` is a dict and `key` a str; both references stay ours.
                if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } < 0 {
                    return Err(Stop::Python);
                }
                if !self.more(b'}')? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(dict)
    }

    #[inline(never)]
    fn array(&mut self) -> Built<'py> {
        self.nest()?;
        let start = self.items.len();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                let item = self.value()?;
                self.items.push(item);
                if !self.more(b']')? {
                    break;
                }
            }
        }
        let n = self.items.len() - start;
        // SAFETY: PyList_New returns a new list of `n` empty slots (or NULL with an exception
        // set); each slot is filled once below, taking over the item's reference.
        let list = self.owned(unsafe { ffi::PyList_New(n as ffi::Py_ssize_t) })?;
        for (i, item) in self.items.drain(start..).enumerate() {
            unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) };
        }
        self.depth -= 1;
        Ok(list)
    }

    /// A string whose opening quote has been consumed.
    fn string(&mut self, key: bool) -> Built<'py> {
        let start = self.pos;
        let rest = &self.data[start..];
        let Some(len) = rest.iter().position(|&b| PLAIN_END[usize::from(b)]) else {
            return Err(Stop::Unsupported);
        };
        if rest[len] != b'"' {
            return self.unusual_string(start + len, start);
        }
        let raw = &rest[..len];
        self.pos = start + len + 1;
        if key && (1..=MAX_CACHED_KEY).contains(&raw.len()) {
            return cached_key(self.py, self.keys, rest, len);
        }
        ascii_str(self.py, raw)
    }

    /// A string with non-ASCII text or an escape, from its first byte at `start`; the bytes
    /// before `at` are plain ASCII.
    #[cold]
    fn unusual_string(&mut self, at: usize, start: usize) -> Built<'py> {
        self.pos = at;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => return self.escaped_string(start),
                Some(0..=0x1f) | None => return Err(Stop::Unsupported),
                Some(_) => self.pos += 1,
            }
        }
        let raw = &self.data[start..self.pos];
        self.pos += 1;
        self.utf8(raw)
    }

    /// The rest of a string that has an escape, from its first byte at `start`.
    fn escaped_string(&mut self, start: usize) -> Built<'py> {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let mut run = start;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => {
                    push_utf8(&mut text, &self.data[run..self.pos])?;
                    let c = self.escape()?;
                    text.push(c);
                    run = self.pos;
                }
                Some(0..=0x1f) | None => return Err(Stop::Unsupported),
                Some(_) => self.pos += 1,
            }
        }
        push_utf8(&mut text, &self.data[run..self.pos])?;
        self.pos += 1;
        let s = PyString::new(self.py, &text).into_any();
        self.text = text;
        Ok(s)
    }

    /// The character of the escape at the current position, which it consumes.
    fn escape(&mut self) -> Result<char, Stop> {
        let c = match self.data.get(self.pos + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = self.hex4(self.pos + 2)?;
                self.pos += 6;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by a low one: the pair is one character.
                        if self.data.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(Stop::Unsupported);
                        }
                        let low = self.hex4(self.pos + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Stop::Unsupported);
                        }
                        self.pos += 6;
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Stop::Unsupported),
                    _ => unit,
                };
                return char::from_u32(code).ok_or(Stop::Unsupported);
            }
            _ => return Err(Stop::Unsupported),
        };
        self.pos += 2;
        Ok(c)
    }

    fn hex4(&self, at: usize) -> Result<u32, Stop> {
        let digits = self.data.get(at..at + 4).ok_or(Stop::Unsupported)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            let v = (d as char).to_digit(16).ok_or(Stop::Unsupported)?;
            Ok(acc << 4 | v)
        })
    }

    fn utf8(&self, raw: &[u8]) -> Built<'py> {
        // SAFETY: `raw` is a valid byte slice; the result is a new reference or NULL.
        let s = unsafe {
            ffi::PyUnicode_DecodeUTF8(
                raw.as_ptr().cast(),
                raw.len() as ffi::Py_ssize_t,
                c"strict".as_ptr(),
            )
        };
        if s.is_null() {
            // Not UTF-8: the full parser words the error.
            // SAFETY: clears the UnicodeDecodeError just raised.
            unsafe { ffi::PyErr_Clear() };
            return Err(Stop::Unsupported);
        }
        // SAFETY: a new reference.
        Ok(unsafe { Bound::from_owned_ptr(self.py, s) })
    }

    fn number(&mut self) -> Built<'py> {
        let data = self.data;
        let start = self.pos;
        let mut p = start;
        let negative = data[p] == b'-';
        if negative {
            p += 1;
        }
        let int_start = p;
        match data.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => p = skip_digits(data, p),
            _ => return Err(Stop::Unsupported),
        }
        let int_end = p;
        let mut float = false;
        if data.get(p) == Some(&b'.') {
            let digits = p + 1;
            p = skip_digits(data, digits);
            if p == digits {
                return Err(Stop::Unsupported);
            }
            float = true;
        }
        if let Some(b'e' | b'E') = data.get(p) {
            p += 1;
            if let Some(b'+' | b'-') = data.get(p) {
                p += 1;
            }
            let digits = p;
            p = skip_digits(data, digits);
            if p == digits {
                return Err(Stop::Unsupported);
            }
            float = true;
        }
        self.pos = p;
        if float {
            // Rust's parser rounds correctly, as Python's float() does, and overflows to inf
            // as json.loads does.
            let text = std::str::from_utf8(&data[start..p]).map_err(|_| Stop::Unsupported)?;
            let f: f64 = text.parse().map_err(|_| Stop::Unsupported)?;
            // SAFETY: a new reference or NULL with an exception set.
            return self.owned(unsafe { ffi::PyFloat_FromDouble(f) });
        }
        if int_end - int_start > 18 {
            return Err(Stop::Unsupported);
        }
        let magnitude = data[int_start..int_end]
            .iter()
            .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
        let v = if negative { -magnitude } else { magnitude };
        // SAFETY: a new reference or NULL with an exception set.
        self.owned(unsafe { ffi::PyLong_FromLongLong(v) })
    }

    fn owned(&self, ptr: *mut ffi::PyObject) -> Built<'py> {
        owned(self.py, ptr)
    }
}

fn skip_digits(data: &[u8], mut p: usize) -> usize {
    while let Some(b'0'..=b'9') = data.get(p) {
        p += 1;
    }
    p
}

fn push_utf8(text: &mut String, raw: &[u8]) -> Result<(), Stop> {
    text.push_str(std::str::from_utf8(raw).map_err(|_| Stop::Unsupported)?);
    Ok(())
}

/// `ptr`, a new reference or NULL with an exception set, as a result.
fn owned(py: Python<'_>, ptr: *mut ffi::PyObject) -> Built<'_> {
    if ptr.is_null() {
        Err(Stop::Python)
    } else {
        // SAFETY: a new reference.
        Ok(unsafe { Bound::from_owned_ptr(py, ptr) })
    }
}

/// A `str` of `raw`, which the caller has found to be ASCII.
fn ascii_str<'py>(py: Python<'py>, raw: &[u8]) -> Built<'py> {
    // SAFETY: the caller checked every byte; the GIL is held.
    owned(py, unsafe { new_ascii_str(raw) })
}

/// One slot of the key cache: the key's first eight bytes (zero-padded) and length, which
/// match a short key without reading the `str`, and the `str` (null while the slot is empty).
#[derive(Clone, Copy)]
struct CachedKey {
    head: u64,
    len: usize,
    key: *mut ffi::PyObject,
}

type KeyCache = [Cell<CachedKey>; KEY_SLOTS];

thread_local! {
    /// Key strings by a hash of their bytes, one per slot; a collision replaces the slot. The
    /// references are never released: a thread's cache lives as long as the thread, and its
    /// few kilobytes of keys stay with the interpreter. Cells, not a `RefCell`: a lookup holds
    /// no borrow, so a re-entrant call could never find the cache borrowed.
    static KEYS: KeyCache = const {
        [const {
            Cell::new(CachedKey {
                head: 0,
                len: 0,
                key: std::ptr::null_mut(),
            })
        }; KEY_SLOTS]
    };
}

/// The `str` of the ASCII key that is the first `len` bytes of `rest`, shared from the cache
/// when it was seen before.
fn cached_key<'py>(py: Python<'py>, keys: &KeyCache, rest: &[u8], len: usize) -> Built<'py> {
    let raw = &rest[..len];
    let head = head_of(rest, len);
    // Longer keys also hash their last eight bytes, so that keys sharing a prefix spread.
    let tail = match raw.last_chunk::<8>() {
        Some(last) if len > 8 => u64::from_le_bytes(*last),
        _ => 0,
    };
    let hash = (head ^ tail.rotate_left(29) ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let cell = &keys[(hash >> 55) as usize & (KEY_SLOTS - 1)];
    let cached = cell.get();
    // SAFETY: a non-null slot holds a reference to a compact ASCII str (made by `ascii_str`)
    // of `cached.len` bytes.
    unsafe {
        if cached.len == len && cached.head == head {
            let text =
                std::slice::from_raw_parts(ffi::PyUnicode_DATA(cached.key).cast::<u8>(), len);
            if len <= 8 || text[8..] == raw[8..] {
                return Ok(Bound::from_borrowed_ptr(py, cached.key));
            }
        }
        let key = ascii_str(py, raw)?;
        cell.set(CachedKey {
            head,
            len,
            key: key.clone().into_ptr(),
        });
        if !cached.key.is_null() {
            ffi::Py_DECREF(cached.key);
        }
        Ok(key)
    }
}

/// The first eight bytes of the `len`-byte key at the start of `rest`, zero-padded: one load
/// when the text goes on that far, as it does but for the last bytes of a document.
fn head_of(rest: &[u8], len: usize) -> u64 {
    let n = len.min(8);
    match rest.first_chunk::<8>() {
        Some(word) => {
            let mask = if n == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * n)) - 1
            };
            u64::from_le_bytes(*word) & mask
        }
        None => rest[..n]
            .iter()
            .rev()
            .fold(0, |h, &b| h << 8 | u64::from(b)),
    }
}
