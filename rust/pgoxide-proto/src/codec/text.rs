//! Text output of builtin types turned into their binary (send function) format.
//!
//! Logical replication (pgoutput) may deliver a column as the text its type's output function
//! prints. Rewriting that text into the bytes the type's send function would have produced lets
//! the binding decode it with the binary decoders it already has, so every value reaches Python
//! through one tested path. The parsers accept what the server prints under the settings the
//! replication connection sets (DateStyle=ISO, IntervalStyle=postgres, TimeZone=UTC,
//! extra_float_digits=1, bytea_output=hex), plus any numeric UTC offset, the escape form of
//! bytea and whitespace inside array literals; they are not general input functions.
//!
//! Where the text does not carry everything the binary form does, the result is the value's
//! canonical form, which every decoder reads the same: a float NaN becomes the quiet NaN
//! `'NaN'::float8` has (`'Infinity' - 'Infinity'` sends the sign bit set too), and an array's
//! has-nulls flag is set only when it holds a NULL (a slice of an array with NULLs keeps the
//! flag on the server even when the slice has none).

use std::borrow::Cow;
use std::net::IpAddr;
use std::str::FromStr;

use super::array::{encode_header, ArrayHeader, MAX_DIMS};
use super::datetime::{
    self, Date, Interval, DATE_NEG_INFINITY, DATE_POS_INFINITY, TIMESTAMP_NEG_INFINITY,
    TIMESTAMP_POS_INFINITY, USECS_PER_DAY, USECS_PER_SEC,
};
use super::network::{self, Inet};
use super::{numeric, JSONB_VERSION};
use crate::catalog;
use crate::error::{Error, Result};
use crate::types::{self, Builtin, Oid};

/// Why a text is not a value of its type; [`invalid`] adds the type and the text.
type Why = &'static str;

/// Appends to `out` the binary (typsend) form of `text`, the text output of a value of the
/// builtin type `oid`. Ok(false) (and nothing appended) when the type has no transcoding here
/// (the caller then keeps the text); Err(Error::Decode(..)) naming the type when the text is not
/// a valid value of it.
///
/// Transcoded: bool, int2, int4, int8, oid, xid, cid, float4, float8, numeric, text, varchar,
/// bpchar, name, `"char"`, unknown, xml, json, jsonb, bytea, uuid, date, time, timetz,
/// timestamp, timestamptz, interval, pg_lsn, inet, cidr, macaddr, macaddr8, and arrays of any of
/// them. On error `out` is left as it was.
pub fn to_binary(oid: Oid, text: &[u8], out: &mut Vec<u8>) -> Result<bool> {
    let start = out.len();
    let outcome = if let Some(format) = scalar_format(oid) {
        encode_scalar(format, text, out).map_err(|why| invalid(oid, text, why))
    } else if let Some((element, format)) = array_format(oid) {
        ArrayParser::new(oid, element, format, text).encode(out)
    } else {
        return Ok(false);
    };
    match outcome {
        Ok(()) => Ok(true),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Appends to `out` the binary form of an array literal (`{a,"b c",NULL}`, nested braces for
/// more dimensions, an optional `[lower:upper]=` prefix) whose elements stay text: a binary
/// array of `element` holding each element's text as it is, for arrays of types that have
/// only a text form (aclitem, money, extension types). `array` names the type in errors. On
/// error `out` is left as it was.
pub fn text_array_to_binary(
    array: Oid,
    element: Oid,
    text: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    ArrayParser::new(array, element, Builtin::Text, text)
        .encode(out)
        .inspect_err(|_| out.truncate(start))
}

/// Appends the array literal of a binary array whose elements are text (the inverse of
/// [`text_array_to_binary`]): every element quoted, NULL for a null, nested braces for more
/// dimensions and a `[lower:upper]=` prefix when a lower bound is not 1. For parameters of
/// arrays of types that have only a text form.
pub fn text_array_literal(binary: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (header, mut cursor) = super::array::read_header(binary)?;
    let dims = header.dims();
    // A zero-length dimension holds no elements, whatever the others claim: the empty array
    // (as array_recv has it), not one empty sub-array per outer element, which a 28-byte
    // value could make billions of.
    if dims.iter().any(|&(length, _)| length == 0) {
        if !cursor.is_empty() {
            return Err(Error::decode("invalid array value: trailing bytes"));
        }
        out.extend_from_slice(b"{}");
        return Ok(());
    }
    if dims.iter().any(|&(_, lower)| lower != 1) {
        for &(length, lower) in dims {
            let upper = i64::from(lower) + i64::from(length) - 1;
            out.extend_from_slice(format!("[{lower}:{upper}]").as_bytes());
        }
        out.push(b'=');
    }
    if dims.is_empty() {
        out.extend_from_slice(b"{}");
        return Ok(());
    }
    literal_level(dims, &mut cursor, out)?;
    if !cursor.is_empty() {
        return Err(Error::decode("invalid array value: trailing bytes"));
    }
    Ok(())
}

fn literal_level(
    dims: &[(i32, i32)],
    cursor: &mut crate::backend::Cursor<'_>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let truncated = |_| Error::decode("invalid array value: truncated");
    out.push(b'{');
    for i in 0..dims[0].0 {
        if i > 0 {
            out.push(b',');
        }
        if dims.len() > 1 {
            literal_level(&dims[1..], cursor, out)?;
            continue;
        }
        let len = cursor.i32().map_err(truncated)?;
        if len < 0 {
            out.extend_from_slice(b"NULL");
            continue;
        }
        out.push(b'"');
        for &b in cursor.bytes(len as usize).map_err(truncated)? {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
    out.push(b'}');
    Ok(())
}

/// Whether [`to_binary`] transcodes values of `oid`, so a decoder table can choose per column
/// once instead of per value.
pub fn is_supported(oid: Oid) -> bool {
    scalar_format(oid).is_some() || array_format(oid).is_some()
}

/// The binary format of a scalar type whose text output we can transcode. reg* types print
/// names and money depends on the locale, so neither has a builtin format here.
fn scalar_format(oid: Oid) -> Option<Builtin> {
    let format = types::builtin(oid)?;
    matches!(
        format,
        Builtin::Bool
            | Builtin::Int2
            | Builtin::Int4
            | Builtin::Int8
            | Builtin::Oid
            | Builtin::Float4
            | Builtin::Float8
            | Builtin::Numeric
            | Builtin::Text
            | Builtin::Char
            | Builtin::Json
            | Builtin::Jsonb
            | Builtin::Bytea
            | Builtin::Uuid
            | Builtin::Date
            | Builtin::Time
            | Builtin::TimeTz
            | Builtin::Timestamp
            | Builtin::TimestampTz
            | Builtin::Interval
            | Builtin::PgLsn
            | Builtin::Inet
            | Builtin::Cidr
            | Builtin::MacAddr
            | Builtin::MacAddr8
    )
    .then_some(format)
}

/// Element type and its format, for an array of a transcodable type.
fn array_format(oid: Oid) -> Option<(Oid, Builtin)> {
    let element = types::array_element(oid)?;
    // int2vector and oidvector travel as arrays too, but print space-separated without braces;
    // only the true array types (named `_element`) use the array literal syntax.
    if !catalog::lookup(oid).is_some_and(|t| t.name.starts_with('_')) {
        return None;
    }
    Some((element, scalar_format(element)?))
}

fn encode_scalar(format: Builtin, text: &[u8], out: &mut Vec<u8>) -> Result<(), Why> {
    match format {
        Builtin::Bool => out.push(parse_bool(text)?),
        Builtin::Int2 => out.extend_from_slice(&parse_number::<i16>(text, NOT_INT)?.to_be_bytes()),
        Builtin::Int4 => out.extend_from_slice(&parse_number::<i32>(text, NOT_INT)?.to_be_bytes()),
        Builtin::Int8 => out.extend_from_slice(&parse_number::<i64>(text, NOT_INT)?.to_be_bytes()),
        Builtin::Oid => out.extend_from_slice(&parse_number::<u32>(text, NOT_UINT)?.to_be_bytes()),
        // The server prints the shortest text that reads back as the same value, and Rust's
        // parsers round correctly, so the bits come back exactly (NaN as the canonical NaN).
        Builtin::Float4 => {
            out.extend_from_slice(&parse_number::<f32>(text, NOT_FLOAT)?.to_be_bytes());
        }
        Builtin::Float8 => {
            out.extend_from_slice(&parse_number::<f64>(text, NOT_FLOAT)?.to_be_bytes());
        }
        Builtin::Numeric => encode_numeric(text, out)?,
        // textsend, namesend, xml_send and json_send all send the text itself.
        Builtin::Text | Builtin::Json => out.extend_from_slice(text),
        Builtin::Jsonb => {
            out.push(JSONB_VERSION);
            out.extend_from_slice(text);
        }
        Builtin::Char => out.push(parse_char(text)?),
        Builtin::Bytea => decode_bytea(text, out)?,
        Builtin::Uuid => out.extend_from_slice(&parse_uuid(text)?),
        Builtin::Date => out.extend_from_slice(&parse_date(text)?.to_be_bytes()),
        Builtin::Time => out.extend_from_slice(&parse_time(text)?.to_be_bytes()),
        Builtin::TimeTz => {
            let (usecs, east) = parse_timetz(text)?;
            out.extend_from_slice(&usecs.to_be_bytes());
            // timetz_send stores the zone in seconds west of UTC.
            out.extend_from_slice(&(-east).to_be_bytes());
        }
        Builtin::Timestamp => out.extend_from_slice(&parse_timestamp(text, false)?.to_be_bytes()),
        Builtin::TimestampTz => {
            out.extend_from_slice(&parse_timestamp(text, true)?.to_be_bytes());
        }
        Builtin::Interval => datetime::encode_interval(out, parse_interval(text)?),
        Builtin::PgLsn => out.extend_from_slice(&parse_lsn(text)?.to_be_bytes()),
        Builtin::Inet => encode_network(text, false, out)?,
        Builtin::Cidr => encode_network(text, true, out)?,
        Builtin::MacAddr => out.extend_from_slice(&parse_mac::<6>(text)?),
        Builtin::MacAddr8 => out.extend_from_slice(&parse_mac::<8>(text)?),
        _ => return Err("no text transcoding for this type"),
    }
    Ok(())
}

// ---- errors ---------------------------------------------------------------------------------

/// How much of an offending text an error message shows.
const SHOWN_BYTES: usize = 64;

/// The text for an error message: quoted, and cut (at a character boundary) when long.
fn shown(text: &[u8]) -> String {
    if text.len() <= SHOWN_BYTES {
        return format!("{:?}", String::from_utf8_lossy(text));
    }
    let mut cut = SHOWN_BYTES;
    while cut > 0 && text[cut] & 0xC0 == 0x80 {
        cut -= 1;
    }
    format!(
        "{:?}... ({} bytes)",
        String::from_utf8_lossy(&text[..cut]),
        text.len()
    )
}

fn type_name(oid: Oid) -> String {
    types::name(oid).unwrap_or_else(|| format!("type {oid}"))
}

fn invalid(oid: Oid, text: &[u8], why: &str) -> Error {
    Error::decode(format!(
        "invalid {} value {}: {why}",
        type_name(oid),
        shown(text)
    ))
}

const NOT_INT: Why = "expected a decimal integer in the type's range";
const NOT_UINT: Why = "expected an unsigned decimal integer below 2^32";
const NOT_FLOAT: Why = "expected a decimal floating-point number, NaN, Infinity or -Infinity";
const NOT_NUMERIC: Why =
    "expected a decimal number within numeric's limits, NaN, Infinity or -Infinity";

// ---- simple scalars -------------------------------------------------------------------------

fn parse_bool(text: &[u8]) -> Result<u8, Why> {
    match text {
        b"t" | b"true" => Ok(1),
        b"f" | b"false" => Ok(0),
        _ => Err("expected t or f"),
    }
}

fn parse_number<T: FromStr>(text: &[u8], why: Why) -> Result<T, Why> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(why)
}

/// Sign words of numeric's infinities (numeric_send's `sign` field).
const NUMERIC_PINF: [u8; 2] = [0xD0, 0x00];
const NUMERIC_NINF: [u8; 2] = [0xF0, 0x00];
/// The display scale numeric_send sends for the infinities (PostgreSQL 14 and later): its
/// NUMERIC_DSCALE reads the special value's header word as a short-format header, whose scale
/// bits give 32. Copied so the bytes match the server's exactly; receivers ignore it.
const NUMERIC_INFINITY_DSCALE: u16 = 32;

fn encode_numeric(text: &[u8], out: &mut Vec<u8>) -> Result<(), Why> {
    let text = std::str::from_utf8(text).map_err(|_| NOT_NUMERIC)?;
    let start = out.len();
    numeric::encode_from_text(text, out).map_err(|_| NOT_NUMERIC)?;
    let sign = &out[start + 4..start + 6];
    if sign == NUMERIC_PINF || sign == NUMERIC_NINF {
        out[start + 6..start + 8].copy_from_slice(&NUMERIC_INFINITY_DSCALE.to_be_bytes());
    }
    Ok(())
}

/// `"char"`: charout prints NUL as the empty string and (since PostgreSQL 15) a byte with the
/// high bit set as `\ooo`; older servers print that byte itself.
fn parse_char(text: &[u8]) -> Result<u8, Why> {
    match *text {
        [] => Ok(0),
        [byte] => Ok(byte),
        [b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7'] => {
            Ok(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'))
        }
        _ => Err("expected one byte or a \\ooo octal escape"),
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Two hex digits as one byte.
fn hex_byte(high: u8, low: u8) -> Option<u8> {
    Some((hex_value(high)? << 4) | hex_value(low)?)
}

/// bytea in the hex form (`\x` + digit pairs) or, for robustness, the escape form (`\\` and
/// `\ooo` escapes, other bytes standing for themselves); the escape form never starts with
/// `\x`, because it doubles every backslash.
fn decode_bytea(text: &[u8], out: &mut Vec<u8>) -> Result<(), Why> {
    const BAD_HEX: Why = "expected \\x followed by pairs of hex digits";
    if let Some(hex) = text.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(BAD_HEX);
        }
        out.reserve(hex.len() / 2);
        for pair in hex.chunks_exact(2) {
            out.push(hex_byte(pair[0], pair[1]).ok_or(BAD_HEX)?);
        }
        return Ok(());
    }
    let mut rest = text;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'\\' {
            out.push(byte);
            rest = tail;
            continue;
        }
        match *tail {
            [b'\\', ..] => {
                out.push(b'\\');
                rest = &tail[1..];
            }
            [a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
                out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                rest = &tail[3..];
            }
            _ => return Err("expected \\x and hex digits, or escapes \\\\ and \\ooo"),
        }
    }
    Ok(())
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits in either case.
fn parse_uuid(text: &[u8]) -> Result<[u8; 16], Why> {
    const BAD: Why = "expected 8-4-4-4-12 hex digits";
    if text.len() != 36 {
        return Err(BAD);
    }
    let mut uuid = [0u8; 16];
    let mut nibble = 0;
    for (i, &byte) in text.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if byte != b'-' {
                return Err(BAD);
            }
            continue;
        }
        let value = hex_value(byte).ok_or(BAD)?;
        uuid[nibble / 2] |= if nibble % 2 == 0 { value << 4 } else { value };
        nibble += 1;
    }
    Ok(uuid)
}

/// `X/Y`: the high and low 32 bits, each 1 to 8 hex digits.
fn parse_lsn(text: &[u8]) -> Result<u64, Why> {
    const BAD: Why = "expected two groups of 1 to 8 hex digits separated by /";
    let half = |digits: &[u8]| -> Result<u64, Why> {
        if !(1..=8).contains(&digits.len()) {
            return Err(BAD);
        }
        digits.iter().try_fold(0u64, |acc, &d| {
            Ok((acc << 4) | u64::from(hex_value(d).ok_or(BAD)?))
        })
    };
    let slash = text.iter().position(|&b| b == b'/').ok_or(BAD)?;
    Ok((half(&text[..slash])? << 32) | half(&text[slash + 1..])?)
}

/// `address[/bits]`: inet omits the prefix length when it covers the whole address.
fn encode_network(text: &[u8], is_cidr: bool, out: &mut Vec<u8>) -> Result<(), Why> {
    const BAD: Why = "expected an IPv4 or IPv6 address with an optional /prefix length";
    let text = std::str::from_utf8(text).map_err(|_| BAD)?;
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (text, None),
    };
    let addr: IpAddr = address.parse().map_err(|_| BAD)?;
    let netmask = match bits {
        None if addr.is_ipv4() => 32,
        None => 128,
        Some(bits) if bits.bytes().all(|b| b.is_ascii_digit()) => bits.parse().map_err(|_| BAD)?,
        Some(_) => return Err(BAD),
    };
    let value = Inet {
        addr,
        netmask,
        is_cidr,
    };
    network::encode_inet(out, &value)
        .map_err(|_| "prefix length longer than the address, or a cidr with host bits set")
}

/// `N` bytes as colon-separated pairs of hex digits.
fn parse_mac<const N: usize>(text: &[u8]) -> Result<[u8; N], Why> {
    const BAD: Why = "expected pairs of hex digits separated by colons";
    if text.len() != 3 * N - 1 {
        return Err(BAD);
    }
    let mut mac = [0u8; N];
    for (i, byte) in mac.iter_mut().enumerate() {
        let at = 3 * i;
        if i > 0 && text[at - 1] != b':' {
            return Err(BAD);
        }
        *byte = hex_byte(text[at], text[at + 1]).ok_or(BAD)?;
    }
    Ok(mac)
}

// ---- dates, times, timestamps, intervals ----------------------------------------------------

/// PostgreSQL's date range in days from 2000-01-01: 4714-11-24 BC (Julian day 0) to
/// 5874897-12-31.
const FIRST_DATE: i64 = -2_451_545;
const LAST_DATE: i64 = 2_145_031_948;
/// PostgreSQL's timestamp range in microseconds from 2000-01-01: from 4714-11-24 00:00:00 BC
/// up to, not including, 294277-01-01 00:00:00.
const MIN_TIMESTAMP: i64 = FIRST_DATE * USECS_PER_DAY;
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

const BAD_DATE: Why = "expected YYYY-MM-DD[ BC], infinity or -infinity";
const BAD_TIME: Why = "expected HH:MM:SS[.ffffff]";
const BAD_TIMETZ: Why = "expected HH:MM:SS[.ffffff]+HH[:MM[:SS]]";
const BAD_TIMESTAMP: Why = "expected YYYY-MM-DD HH:MM:SS[.ffffff][ BC], infinity or -infinity";
const BAD_TIMESTAMPTZ: Why =
    "expected YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]][ BC], infinity or -infinity";
const BAD_INTERVAL: Why =
    "expected [N years] [N mons] [N days] [[+-]H:MM:SS[.ffffff]], infinity or -infinity";

/// A cursor over the fixed-layout ASCII fields of dates, times and offsets.
struct Fields<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self { text, pos: 0 }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.text.get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8, why: Why) -> Result<(), Why> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(why)
        }
    }

    /// An unsigned decimal of `min..=max` digits (`max` at most 18, so it fits in i64).
    fn number(&mut self, min: usize, max: usize, why: Why) -> Result<i64, Why> {
        let digits = self.text[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits < min || digits > max {
            return Err(why);
        }
        let value = self.text[self.pos..self.pos + digits]
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        self.pos += digits;
        Ok(value)
    }

    /// An optional `.f` of 1 to 6 digits, in microseconds.
    fn micros(&mut self, why: Why) -> Result<i64, Why> {
        if !self.eat(b'.') {
            return Ok(0);
        }
        let start = self.pos;
        let value = self.number(1, 6, why)?;
        Ok(value * 10i64.pow((6 - (self.pos - start)) as u32))
    }

    /// Consumes the era suffix, telling whether the year is before Christ.
    fn bc(&mut self) -> bool {
        let found = &self.text[self.pos..] == b" BC";
        if found {
            self.pos = self.text.len();
        }
        found
    }

    fn finish(&self, why: Why) -> Result<(), Why> {
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(why)
        }
    }
}

/// `YYYY-MM-DD` as (year of the era, month, day); the era is applied by [`pg_days`].
fn calendar_date(f: &mut Fields<'_>, why: Why) -> Result<(i64, i64, i64), Why> {
    let year = f.number(1, 9, why)?;
    f.expect(b'-', why)?;
    let month = f.number(2, 2, why)?;
    f.expect(b'-', why)?;
    let day = f.number(2, 2, why)?;
    Ok((year, month, day))
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days from 2000-01-01 of a checked calendar date; BC years count back from 1 BC (year 0 of
/// the proleptic Gregorian calendar). The caller checks the range: a timestamptz's local date
/// may lie a day outside the range of dates while the instant is within that of timestamps.
fn pg_days((year, month, day): (i64, i64, i64), bc: bool) -> Result<i64, Why> {
    if year == 0 {
        return Err("there is no year 0");
    }
    let year = if bc { 1 - year } else { year };
    let month_days = match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return Err("month out of range"),
    };
    if !(1..=month_days).contains(&day) {
        return Err("day out of range for the month");
    }
    // The year has at most 9 digits, so it fits in an i32.
    Ok(datetime::pg_days_from_date(Date {
        year: year as i32,
        month: month as u8,
        day: day as u8,
    }))
}

fn parse_date(text: &[u8]) -> Result<i32, Why> {
    match text {
        b"infinity" => return Ok(DATE_POS_INFINITY),
        b"-infinity" => return Ok(DATE_NEG_INFINITY),
        _ => {}
    }
    let mut f = Fields::new(text);
    let date = calendar_date(&mut f, BAD_DATE)?;
    let bc = f.bc();
    f.finish(BAD_DATE)?;
    let days = pg_days(date, bc)?;
    if (FIRST_DATE..=LAST_DATE).contains(&days) {
        Ok(days as i32)
    } else {
        Err("date out of range")
    }
}

/// `HH:MM:SS[.ffffff]` in microseconds since midnight; 24:00:00 is a valid time.
fn time_of_day(f: &mut Fields<'_>, why: Why) -> Result<i64, Why> {
    let hour = f.number(2, 2, why)?;
    f.expect(b':', why)?;
    let minute = f.number(2, 2, why)?;
    f.expect(b':', why)?;
    let second = f.number(2, 2, why)?;
    let micros = f.micros(why)?;
    if hour > 24 || minute > 59 || second > 59 {
        return Err("time field out of range");
    }
    let usecs = ((hour * 60 + minute) * 60 + second) * USECS_PER_SEC + micros;
    if usecs > USECS_PER_DAY {
        return Err("time out of range");
    }
    Ok(usecs)
}

/// `+HH[:MM[:SS]]` or `-HH[:MM[:SS]]`, in seconds east of UTC.
fn utc_offset(f: &mut Fields<'_>, why: Why) -> Result<i32, Why> {
    let sign = if f.eat(b'+') {
        1
    } else if f.eat(b'-') {
        -1
    } else {
        return Err(why);
    };
    let hours = f.number(1, 2, why)?;
    let (mut minutes, mut seconds) = (0, 0);
    if f.eat(b':') {
        minutes = f.number(2, 2, why)?;
        if f.eat(b':') {
            seconds = f.number(2, 2, why)?;
        }
    }
    if minutes > 59 || seconds > 59 {
        return Err("UTC offset field out of range");
    }
    Ok(sign * (hours * 3600 + minutes * 60 + seconds) as i32)
}

fn parse_time(text: &[u8]) -> Result<i64, Why> {
    let mut f = Fields::new(text);
    let usecs = time_of_day(&mut f, BAD_TIME)?;
    f.finish(BAD_TIME)?;
    Ok(usecs)
}

/// (microseconds since midnight, seconds east of UTC).
fn parse_timetz(text: &[u8]) -> Result<(i64, i32), Why> {
    let mut f = Fields::new(text);
    let usecs = time_of_day(&mut f, BAD_TIMETZ)?;
    let east = utc_offset(&mut f, BAD_TIMETZ)?;
    f.finish(BAD_TIMETZ)?;
    Ok((usecs, east))
}

/// Microseconds since 2000-01-01 00:00:00 (UTC for timestamptz, whose text carries the offset
/// of the session's time zone).
fn parse_timestamp(text: &[u8], with_zone: bool) -> Result<i64, Why> {
    match text {
        b"infinity" => return Ok(TIMESTAMP_POS_INFINITY),
        b"-infinity" => return Ok(TIMESTAMP_NEG_INFINITY),
        _ => {}
    }
    let why = if with_zone {
        BAD_TIMESTAMPTZ
    } else {
        BAD_TIMESTAMP
    };
    let mut f = Fields::new(text);
    let date = calendar_date(&mut f, why)?;
    f.expect(b' ', why)?;
    let time = time_of_day(&mut f, why)?;
    let east = if with_zone {
        utc_offset(&mut f, why)?
    } else {
        0
    };
    let bc = f.bc();
    f.finish(why)?;
    // i128 because a nine-digit year would overflow i64 microseconds before the range check.
    let usecs = i128::from(pg_days(date, bc)?) * i128::from(USECS_PER_DAY) + i128::from(time)
        - i128::from(east) * i128::from(USECS_PER_SEC);
    if (i128::from(MIN_TIMESTAMP)..i128::from(END_TIMESTAMP)).contains(&usecs) {
        Ok(usecs as i64)
    } else {
        Err("timestamp out of range")
    }
}

/// IntervalStyle=postgres: `1 year 2 mons -3 days +04:05:06.789`, each part optional and
/// signed on its own, `00:00:00` for zero; `infinity` and `-infinity` since PostgreSQL 17
/// (every field at its extreme, as interval_send sends them).
fn parse_interval(text: &[u8]) -> Result<Interval, Why> {
    const OVERFLOW: Why = "interval out of range";
    let extreme = |microseconds, days, months| Interval {
        microseconds,
        days,
        months,
    };
    match text {
        b"infinity" => return Ok(extreme(i64::MAX, i32::MAX, i32::MAX)),
        b"-infinity" => return Ok(extreme(i64::MIN, i32::MIN, i32::MIN)),
        b"" => return Err(BAD_INTERVAL),
        _ => {}
    }
    let (mut months, mut days, mut microseconds) = (0i64, 0i64, 0i64);
    let mut words = text.split(|&b| b == b' ');
    while let Some(word) = words.next() {
        if word.contains(&b':') {
            microseconds = interval_time(word)?;
            if words.next().is_some() {
                return Err(BAD_INTERVAL);
            }
            break;
        }
        let count: i64 = parse_number(word, BAD_INTERVAL)?;
        let (total, per_unit) = match words.next().ok_or(BAD_INTERVAL)? {
            b"year" | b"years" => (&mut months, 12),
            b"mon" | b"mons" => (&mut months, 1),
            b"day" | b"days" => (&mut days, 1),
            _ => return Err(BAD_INTERVAL),
        };
        *total = count
            .checked_mul(per_unit)
            .and_then(|n| total.checked_add(n))
            .ok_or(OVERFLOW)?;
    }
    Ok(Interval {
        microseconds,
        days: i32::try_from(days).map_err(|_| OVERFLOW)?,
        months: i32::try_from(months).map_err(|_| OVERFLOW)?,
    })
}

/// `[+-]H:MM:SS[.ffffff]`, the sign applying to the whole time; hours are unbounded (up to
/// 2562047788 for the extreme microsecond counts).
fn interval_time(word: &[u8]) -> Result<i64, Why> {
    let mut f = Fields::new(word);
    let negative = f.eat(b'-');
    if !negative {
        f.eat(b'+');
    }
    let hours = f.number(1, 10, BAD_INTERVAL)?;
    f.expect(b':', BAD_INTERVAL)?;
    let minutes = f.number(2, 2, BAD_INTERVAL)?;
    f.expect(b':', BAD_INTERVAL)?;
    let seconds = f.number(2, 2, BAD_INTERVAL)?;
    let micros = f.micros(BAD_INTERVAL)?;
    f.finish(BAD_INTERVAL)?;
    if minutes > 59 || seconds > 59 {
        return Err("interval time field out of range");
    }
    // i128: the magnitude of the most negative interval does not fit in i64.
    let magnitude = (i128::from(hours) * 3600 + i128::from(minutes * 60 + seconds))
        * i128::from(USECS_PER_SEC)
        + i128::from(micros);
    i64::try_from(if negative { -magnitude } else { magnitude })
        .map_err(|_| "interval out of range")
}

// ---- arrays ---------------------------------------------------------------------------------

/// PostgreSQL's `array_isspace`: the whitespace array_in skips around elements (and array_out
/// therefore quotes).
fn is_array_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// An array literal (`[1:2]={{1,NULL},{"a b",3}}`) parsed straight into array_send's format:
/// dimensions, has-nulls flag and element type, each dimension's length and lower bound, then
/// each element as an Int32 length (-1 for NULL) and its binary form.
struct ArrayParser<'a> {
    array: Oid,
    element: Oid,
    format: Builtin,
    text: &'a [u8],
    pos: usize,
}

impl<'a> ArrayParser<'a> {
    fn new(array: Oid, element: Oid, format: Builtin, text: &'a [u8]) -> Self {
        Self {
            array,
            element,
            format,
            text,
            pos: 0,
        }
    }

    fn fail(&self, why: &str) -> Error {
        invalid(self.array, self.text, why)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_array_space) {
            self.pos += 1;
        }
    }

    fn encode(mut self, out: &mut Vec<u8>) -> Result<()> {
        self.skip_space();
        let bounds = self.dimension_decoration()?;
        self.skip_space();
        if !self.eat(b'{') {
            return Err(self.fail("expected '{'"));
        }
        // The braces before the first element give the number of dimensions.
        let mut ndim = 1;
        loop {
            self.skip_space();
            if !self.eat(b'{') {
                break;
            }
            ndim += 1;
            if ndim > MAX_DIMS {
                return Err(self.fail("more than 6 dimensions"));
            }
        }
        if ndim == 1 && self.eat(b'}') {
            return self.finish_empty(bounds.as_deref(), out);
        }
        let header_at = out.len();
        out.resize(header_at + 12 + 8 * ndim, 0);
        let (lengths, has_nulls) = self.elements(ndim, out)?;
        self.skip_space();
        if self.pos != self.text.len() {
            return Err(self.fail("unexpected text after the closing '}'"));
        }
        let lower_bounds: Vec<i32> = match bounds {
            None => vec![1; ndim],
            Some(bounds) => self.check_bounds(&bounds, &lengths)?,
        };
        let header = ArrayHeader {
            element_oid: self.element,
            has_nulls,
            dims: lengths.into_iter().zip(lower_bounds).collect(),
        };
        let mut encoded = Vec::with_capacity(12 + 8 * ndim);
        encode_header(&mut encoded, &header);
        out[header_at..header_at + encoded.len()].copy_from_slice(&encoded);
        Ok(())
    }

    /// `{}`: no dimensions at all, as array_send sends an empty array.
    fn finish_empty(&mut self, bounds: Option<&[(i32, i32)]>, out: &mut Vec<u8>) -> Result<()> {
        self.skip_space();
        if self.pos != self.text.len() {
            return Err(self.fail("unexpected text after the closing '}'"));
        }
        if bounds.is_some() {
            return Err(self.fail("dimensions given for an empty array"));
        }
        let header = ArrayHeader {
            element_oid: self.element,
            has_nulls: false,
            dims: Vec::new(),
        };
        encode_header(out, &header);
        Ok(())
    }

    /// The optional `[lower:upper]...=` prefix that array_out writes when a lower bound is not
    /// 1; `[upper]` (lower bound 1) is accepted too, as array_in does.
    fn dimension_decoration(&mut self) -> Result<Option<Vec<(i32, i32)>>> {
        if self.peek() != Some(b'[') {
            return Ok(None);
        }
        let mut bounds = Vec::new();
        while self.eat(b'[') {
            if bounds.len() == MAX_DIMS {
                return Err(self.fail("more than 6 dimensions"));
            }
            let first = self.bound()?;
            let pair = if self.eat(b':') {
                (first, self.bound()?)
            } else {
                (1, first)
            };
            if !self.eat(b']') {
                return Err(self.fail("expected ']' in the dimensions"));
            }
            bounds.push(pair);
            self.skip_space();
        }
        if !self.eat(b'=') {
            return Err(self.fail("expected '=' after the dimensions"));
        }
        Ok(Some(bounds))
    }

    /// A signed decimal bound within i32.
    fn bound(&mut self) -> Result<i32> {
        let start = self.pos;
        if !self.eat(b'-') {
            self.eat(b'+');
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        parse_number(&self.text[start..self.pos], "")
            .map_err(|_| self.fail("expected an array bound within int4"))
    }

    /// The lower bounds from the decoration, which must agree with the elements found.
    fn check_bounds(&self, bounds: &[(i32, i32)], lengths: &[i32]) -> Result<Vec<i32>> {
        if bounds.len() != lengths.len() {
            return Err(self.fail("the dimensions do not match the nesting of the braces"));
        }
        bounds
            .iter()
            .zip(lengths)
            .map(|(&(lower, upper), &length)| {
                if i64::from(upper) - i64::from(lower) + 1 == i64::from(length) {
                    Ok(lower)
                } else {
                    Err(self.fail("the dimensions do not match the number of elements"))
                }
            })
            .collect()
    }

    /// Every element of a `ndim`-dimensional array, after its leading braces; returns each
    /// dimension's length and whether there was a NULL.
    fn elements(&mut self, ndim: usize, out: &mut Vec<u8>) -> Result<(Vec<i32>, bool)> {
        // For each open dimension: items seen in the current sub-array; and the length every
        // sub-array of that dimension must have (fixed by the first one to close, 0 before).
        let mut counts = vec![0i32; ndim];
        let mut lengths = vec![0i32; ndim];
        let mut depth = ndim;
        let mut has_nulls = false;
        let mut index = 0usize;
        loop {
            index += 1;
            match self.element()? {
                None => {
                    has_nulls = true;
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                }
                Some(value) => self.write_element(index, &value, out)?,
            }
            counts[ndim - 1] += 1;
            // Close as many sub-arrays as the text does, until a ',' starts the next item.
            loop {
                self.skip_space();
                if self.eat(b',') {
                    break;
                }
                if !self.eat(b'}') {
                    return Err(self.fail("expected ',' or '}' after an element"));
                }
                let d = depth - 1;
                if lengths[d] != 0 && lengths[d] != counts[d] {
                    return Err(self.fail("sub-arrays of one dimension have different lengths"));
                }
                lengths[d] = counts[d];
                counts[d] = 0;
                depth -= 1;
                if depth == 0 {
                    return Ok((lengths, has_nulls));
                }
                counts[depth - 1] += 1;
            }
            // After a ',' between sub-arrays, open braces down to the elements again.
            while depth < ndim {
                self.skip_space();
                if !self.eat(b'{') {
                    return Err(self.fail("expected '{' (elements must all be at one depth)"));
                }
                depth += 1;
            }
        }
    }

    /// One element: quoted (`"a \"b\""`), or unquoted with backslash escapes and the
    /// surrounding whitespace dropped; `None` for an unquoted NULL.
    fn element(&mut self) -> Result<Option<Cow<'a, [u8]>>> {
        self.skip_space();
        if self.eat(b'"') {
            return self.quoted().map(Some);
        }
        let text = self.text;
        let start = self.pos;
        // Escapes are resolved into `unescaped` from the first one on; until then the element
        // is a slice of the text. `kept` is the element's length up to its last byte that is
        // not unescaped whitespace, which array_in drops.
        let mut unescaped: Option<Vec<u8>> = None;
        let mut kept = 0;
        loop {
            match self.peek() {
                None => return Err(self.fail("unexpected end of the array")),
                Some(b',' | b'}') => break,
                Some(b'{' | b'"') => {
                    return Err(self.fail("unexpected '{' or '\"' in an unquoted element"));
                }
                Some(b'\\') => {
                    let Some(&escaped) = text.get(self.pos + 1) else {
                        return Err(self.fail("unexpected end of the array"));
                    };
                    let buf = unescaped.get_or_insert_with(|| text[start..self.pos].to_vec());
                    buf.push(escaped);
                    kept = buf.len();
                    self.pos += 2;
                }
                Some(byte) => {
                    self.pos += 1;
                    let len = match unescaped.as_mut() {
                        Some(buf) => {
                            buf.push(byte);
                            buf.len()
                        }
                        None => self.pos - start,
                    };
                    if !is_array_space(byte) {
                        kept = len;
                    }
                }
            }
        }
        if let Some(mut buf) = unescaped {
            buf.truncate(kept);
            return Ok(Some(Cow::Owned(buf)));
        }
        let raw = &text[start..start + kept];
        if raw.is_empty() {
            return Err(self.fail("empty unquoted element"));
        }
        // Only the bare word is NULL; "NULL" and N\ULL are the string.
        Ok((!raw.eq_ignore_ascii_case(b"NULL")).then_some(Cow::Borrowed(raw)))
    }

    /// The rest of a quoted element, after its opening quote.
    fn quoted(&mut self) -> Result<Cow<'a, [u8]>> {
        let text = self.text;
        let start = self.pos;
        let mut unescaped: Option<Vec<u8>> = None;
        loop {
            match self.peek() {
                None => return Err(self.fail("unterminated quoted element")),
                Some(b'"') => {
                    let raw = &text[start..self.pos];
                    self.pos += 1;
                    return Ok(unescaped.map_or(Cow::Borrowed(raw), Cow::Owned));
                }
                Some(b'\\') => {
                    let Some(&escaped) = text.get(self.pos + 1) else {
                        return Err(self.fail("unterminated quoted element"));
                    };
                    unescaped
                        .get_or_insert_with(|| text[start..self.pos].to_vec())
                        .push(escaped);
                    self.pos += 2;
                }
                Some(byte) => {
                    if let Some(buf) = unescaped.as_mut() {
                        buf.push(byte);
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// Int32 length + the element's binary form; `index` counts elements from 1 for messages.
    fn write_element(&self, index: usize, value: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        encode_scalar(self.format, value, out).map_err(|why| {
            let inner = invalid(self.element, value, why);
            self.fail(&format!("element {index}: {inner}"))
        })?;
        let length = i32::try_from(out.len() - length_at - 4)
            .map_err(|_| self.fail("an element exceeds 2 GiB"))?;
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::codec::datetime::{Bounded, Time};
    use crate::codec::nested::hex;
    use proptest::prelude::*;

    #[test]
    fn text_arrays_keep_their_elements_as_text() {
        let mut out = Vec::new();
        text_array_to_binary(
            1034,
            1033,
            br#"{postgres=arwdDxt/postgres,"a b",NULL}"#,
            &mut out,
        )
        .unwrap();
        let mut expect = Vec::new();
        encode_header(
            &mut expect,
            &ArrayHeader {
                element_oid: 1033,
                has_nulls: true,
                dims: vec![(3, 1)],
            },
        );
        for e in [&b"postgres=arwdDxt/postgres"[..], b"a b"] {
            expect.extend_from_slice(&(e.len() as i32).to_be_bytes());
            expect.extend_from_slice(e);
        }
        expect.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(out, expect);
        out.clear();
        assert!(text_array_to_binary(1034, 1033, b"{a,{b}}", &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn text_array_literals_round_trip() {
        for (literal, written) in [
            (r#"{a,"b \\ \"c\"",NULL}"#, r#"{"a","b \\ \"c\"",NULL}"#),
            ("{}", "{}"),
            ("{{a,b},{c,d}}", r#"{{"a","b"},{"c","d"}}"#),
            ("[0:1]={x,y}", r#"[0:1]={"x","y"}"#),
        ] {
            let mut binary = Vec::new();
            text_array_to_binary(1034, 1033, literal.as_bytes(), &mut binary).unwrap();
            let mut out = Vec::new();
            text_array_literal(&binary, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), written);
        }
    }

    fn binary(oid: Oid, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(
            to_binary(oid, text.as_bytes(), &mut out),
            Ok(true),
            "{oid} {text:?}"
        );
        out
    }

    fn error(oid: Oid, text: &[u8]) -> String {
        let mut out = vec![0xAA];
        match to_binary(oid, text, &mut out) {
            Err(Error::Decode(message)) => {
                assert_eq!(out, [0xAA], "{oid} {text:?}: output left behind");
                message
            }
            other => panic!(
                "{oid} {:?}: expected a decode error, got {other:?}",
                shown(text)
            ),
        }
    }

    /// Every transcoded scalar type and its array type.
    const SCALARS: [Oid; 31] = [
        16, 21, 23, 20, 26, 28, 29, 700, 701, 1700, 25, 1043, 1042, 19, 18, 705, 142, 114, 3802,
        17, 2950, 1082, 1083, 1266, 1114, 1184, 1186, 3220, 869, 650, 829,
    ];
    const ARRAYS: [Oid; 31] = [
        1000, 1005, 1007, 1016, 1028, 1011, 1012, 1021, 1022, 1231, 1009, 1015, 1014, 1003, 1002,
        0, 143, 199, 3807, 1001, 2951, 1182, 1183, 1270, 1115, 1185, 1187, 3221, 1041, 651, 1040,
    ];

    #[test]
    fn supported_types() {
        for oid in SCALARS.into_iter().chain(ARRAYS).chain([774, 775]) {
            // unknown (705) has no array type; 0 stands in for it.
            if oid != 0 {
                assert!(is_supported(oid), "{oid}");
            }
        }
        for (array, element) in ARRAYS.into_iter().zip(SCALARS) {
            if array != 0 {
                assert_eq!(types::array_element(array), Some(element));
            }
        }
    }

    #[test]
    fn unsupported_types_are_left_alone() {
        for oid in [
            24,     // regproc: prints a name
            2205,   // regclass
            1008,   // regproc[]
            790,    // money: locale dependent
            791,    // money[]
            22,     // int2vector: space-separated, no braces
            30,     // oidvector
            5069,   // xid8
            27,     // tid
            4072,   // jsonpath
            1560,   // bit
            600,    // point
            1020,   // box[]: ';' delimited
            3904,   // int4range
            2249,   // record
            10_000, // a type of some database
            0,
        ] {
            let mut out = vec![7];
            assert_eq!(to_binary(oid, b"1", &mut out), Ok(false), "{oid}");
            assert_eq!(to_binary(oid, b"{1}", &mut out), Ok(false), "{oid}");
            assert_eq!(out, [7]);
            assert!(!is_supported(oid));
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_type() {
        let cases: &[(Oid, &[&str])] = &[
            (16, &["", "1", "yes", "T", "tru"]),
            (21, &["", "32768", "-32769", "1.0", " 1", "0x1", "1e3"]),
            (23, &["", "2147483648", "one", "--1"]),
            (20, &["9223372036854775808", "1 "]),
            (26, &["-1", "4294967296", ""]),
            (700, &["", "1,5", "one", "1e", "0x10"]),
            (701, &["", "--1", "Infinityy", "1e+"]),
            (1700, &["", "1.2.3", "abc", "1e99999999", "sNaN"]),
            (18, &["ab", "\\400", "\\38", "\\1"]),
            (17, &["\\x0", "\\xgg", "\\x 00", "\\", "a\\b", "\\400"]),
            (
                2950,
                &[
                    "",
                    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
                    "a0eebc999c0b4ef8bb6d6bb9bd380a11",
                    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
                    "a0eebc99+9c0b-4ef8-bb6d-6bb9bd380a11",
                ],
            ),
            (
                1082,
                &[
                    "",
                    "2000-1-01",
                    "2000-13-01",
                    "2001-02-29",
                    "2000-00-10",
                    "2000-04-31",
                    "0000-01-01",
                    "2000-01-01 AD",
                    "2000-01-01 bc",
                    "5874898-01-01",
                    "4714-11-23 BC",
                    "Infinity",
                ],
            ),
            (
                1083,
                &[
                    "",
                    "24:00:00.000001",
                    "25:00:00",
                    "12:60:00",
                    "12:00:60",
                    "1:02:03",
                    "12:00:00.",
                    "12:00:00.1234567",
                    "12:00:00+00",
                ],
            ),
            (
                1266,
                &[
                    "12:00:00",
                    "12:00:00+",
                    "12:00:00+1:3",
                    "12:00:00+01:60",
                    "x",
                ],
            ),
            (
                1114,
                &[
                    "2000-01-01",
                    "2000-01-01T00:00:00",
                    "2000-01-01 00:00:00+00",
                    "294277-01-01 00:00:00",
                    "4714-11-23 23:59:59 BC",
                    "999999999-01-01 00:00:00",
                ],
            ),
            (
                1184,
                &[
                    "2000-01-01 00:00:00",
                    "2000-01-01 00:00:00 BC",
                    "294276-12-31 23:59:59.999999-00:00:01",
                    "4714-11-24 00:00:00+00:00:01 BC",
                    "2000-01-01 00:00:00+00 BC BC",
                ],
            ),
            (
                1186,
                &[
                    "",
                    " ",
                    "1",
                    "1 yea",
                    "1 day ",
                    "1 year  2 mons",
                    "00:00",
                    "00:60:00",
                    "1 day 00:00:00 1 day",
                    "2147483648 days",
                    "178956971 years",
                    "2562047788:00:54.775808",
                    "-2562047788:00:54.775809",
                    "Infinity",
                    "@ 1 day",
                ],
            ),
            (3220, &["", "0/", "/0", "0/123456789", "g/0", "0-0", "+1/0"]),
            (
                869,
                &[
                    "",
                    "1.2.3",
                    "10.0.0.1/33",
                    "10.0.0.1/",
                    "10.0.0.1/+8",
                    "::1/129",
                    "host",
                ],
            ),
            (650, &["10.0.0.1/8", "::1/64"]),
            (
                829,
                &[
                    "",
                    "08:00:2b:01:02",
                    "08-00-2b-01-02-03",
                    "08:00:2b:01:02:0g",
                ],
            ),
            (774, &["08:00:2b:01:02:03", "08:00:2b:01:02:03:04:05:06"]),
        ];
        for &(oid, texts) in cases {
            let name = type_name(oid);
            for text in texts {
                let message = error(oid, text.as_bytes());
                assert!(
                    message.starts_with(&format!("invalid {name} value ")),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn error_messages_show_the_text_cut_when_long() {
        assert_eq!(
            error(23, b"12a"),
            "invalid int4 value \"12a\": expected a decimal integer in the type's range"
        );
        let long = "é".repeat(100);
        let message = error(1082, long.as_bytes());
        assert!(message.contains(&"é".repeat(32)), "{message}");
        assert!(!message.contains(&"é".repeat(33)), "{message}");
        assert!(message.contains("(200 bytes)"), "{message}");
        assert_eq!(
            error(1007, b"{1,x}"),
            "invalid int4[] value \"{1,x}\": element 2: invalid int4 value \"x\": \
             expected a decimal integer in the type's range"
        );
    }

    #[test]
    fn char_forms() {
        assert_eq!(binary(18, ""), [0]);
        assert_eq!(binary(18, "\\"), [b'\\']);
        assert_eq!(binary(18, "\\351"), [0xE9]);
        assert_eq!(binary(18, "\\000"), [0]);
        // Before PostgreSQL 15 charout printed a high-bit byte as itself.
        let mut out = Vec::new();
        assert_eq!(to_binary(18, &[0xE9], &mut out), Ok(true));
        assert_eq!(out, [0xE9]);
    }

    #[test]
    fn bytea_escape_form() {
        assert_eq!(binary(17, "abc\\\\\\000\\377"), b"abc\\\x00\xff");
        assert_eq!(binary(17, ""), b"");
        assert_eq!(binary(17, "\\xABcd"), [0xAB, 0xCD]);
    }

    #[test]
    fn offsets_with_seconds_and_odd_hours() {
        // 1999-12-31 23:00:00 UTC printed in zones 05:30:15 east and 8 hours west.
        let expect = (-3_600i64 * USECS_PER_SEC).to_be_bytes();
        assert_eq!(binary(1184, "2000-01-01 04:30:15+05:30:15"), expect);
        assert_eq!(binary(1184, "1999-12-31 15:00:00-08"), expect);
        assert_eq!(binary(1184, "1999-12-31 15:00:00-8"), expect);
        assert_eq!(binary(1184, "1999-12-31 23:00:00+00:00"), expect);
        assert_eq!(
            binary(1266, "00:00:00-00:00:01"),
            hex(concat!("0000000000000000", "00000001")) // midnight, 1 s west
        );
    }

    #[test]
    fn interval_infinities_of_postgres_17() {
        assert_eq!(
            binary(1186, "infinity"),
            hex("7fffffffffffffff7fffffff7fffffff")
        );
        assert_eq!(
            binary(1186, "-infinity"),
            hex("80000000000000008000000080000000")
        );
        assert_eq!(
            binary(1187, "{infinity,-infinity}"),
            hex(concat!(
                "00000001", // one dimension
                "00000000", // no NULLs
                "000004a2", // interval
                "00000002", // two elements
                "00000001", // from 1
                "00000010",
                "7fffffffffffffff7fffffff7fffffff",
                "00000010",
                "80000000000000008000000080000000",
            ))
        );
    }

    #[test]
    fn array_syntax_accepted_by_array_in() {
        let ints = |text: &str| binary(1007, text);
        let expect = ints("{1,2,3}");
        assert_eq!(ints(" { 1 , 2 ,\t3 } "), expect);
        assert_eq!(ints("[1:3]={1,2,3}"), expect);
        assert_eq!(ints("[3]={1,2,3}"), expect);
        assert_eq!(ints("[1:3] = {1,2,3}"), expect);
        assert_eq!(ints("{\"1\",\\2,\"3\"}"), expect);
        assert_eq!(ints("{ }"), ints("{}"));
        assert_eq!(ints("{null,NuLl}"), ints("{NULL,NULL}"));
        // Internal whitespace is kept; escapes keep whitespace and stop NULL being NULL.
        let texts = |text: &str| binary(1009, text);
        assert_eq!(texts("{ a b , c }"), texts("{\"a b\",c}"));
        assert_eq!(texts("{a\\ ,\\ b}"), texts("{\"a \",\" b\"}"));
        assert_eq!(texts("{N\\ULL,\"NULL\"}"), texts("{\"NULL\",\"NULL\"}"));
        assert_eq!(
            texts("{N\\ULL}"),
            hex("0000000100000000000000190000000100000001000000044e554c4c")
        );
    }

    #[test]
    fn malformed_arrays() {
        for text in [
            "",
            "1",
            "{",
            "{1",
            "{1,",
            "{1,}",
            "{,1}",
            "{1}}",
            "{1} x",
            "{{1},2}",
            "{1,{2}}",
            "{{1,2},{3}}",
            "{{1},{2,3}}",
            "{{}}",
            "{{1},{}}",
            "{\"1}",
            "{\"1\"2}",
            "{1\"2\"}",
            "{1\\",
            "{\"1\\",
            "{a{}",
            "{{{{{{{1}}}}}}}",
            "[1:2]={1}",
            "[1:2]",
            "[1:2={1,2}",
            "[1:2][1:1]={1,2}",
            "[1:1]={{1}}",
            "[0:-1]={}",
            "[a:1]={1}",
            "[2147483648:1]={1}",
            "[1:1][1:1][1:1][1:1][1:1][1:1][1:1]={{{{{{{1}}}}}}}",
            "{1,NULL,x}",
        ] {
            let message = error(1007, text.as_bytes());
            assert!(message.starts_with("invalid int4[] value "), "{message}");
        }
    }

    #[test]
    fn array_lower_bounds_at_the_extremes() {
        assert_eq!(
            binary(1007, "[2147483647:2147483647]={1}"),
            hex("000000010000000000000017000000017fffffff0000000400000001")
        );
        assert_eq!(
            binary(1007, "[-2147483648:-2147483648]={1}"),
            hex("00000001000000000000001700000001800000000000000400000001")
        );
    }

    // ---- properties ----------------------------------------------------------------------

    /// PostgreSQL's ISO output of a finite timestamp.
    fn timestamp_text(usecs: i64) -> String {
        let Bounded::Finite((date, time)) = datetime::timestamp_from_pg_usecs(usecs) else {
            unreachable!("finite by construction")
        };
        format!("{}{}", date_text_body(date, false), time_text(time)) + era(date)
    }

    fn date_text_body(date: Date, alone: bool) -> String {
        let year = if date.year > 0 {
            date.year
        } else {
            1 - date.year
        };
        let sep = if alone { "" } else { " " };
        format!("{year:04}-{:02}-{:02}{sep}", date.month, date.day)
    }

    fn era(date: Date) -> &'static str {
        if date.year > 0 {
            ""
        } else {
            " BC"
        }
    }

    fn time_text(time: Time) -> String {
        let mut s = format!("{:02}:{:02}:{:02}", time.hour, time.minute, time.second);
        s += &fraction_text(i64::from(time.microsecond));
        s
    }

    /// `.ffffff` without trailing zeros, or nothing.
    fn fraction_text(micros: i64) -> String {
        if micros == 0 {
            String::new()
        } else {
            format!(".{micros:06}").trim_end_matches('0').to_owned()
        }
    }

    /// EncodeInterval's IntervalStyle=postgres output.
    fn interval_text(months: i32, days: i32, usecs: i64) -> String {
        let mut s = String::new();
        let (mut is_zero, mut is_before) = (true, false);
        for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
            if value == 0 {
                continue;
            }
            let space = if is_zero { "" } else { " " };
            let plus = if is_before && value > 0 { "+" } else { "" };
            let plural = if value == 1 { "" } else { "s" };
            write!(s, "{space}{plus}{value} {unit}{plural}").unwrap();
            is_before = value < 0;
            is_zero = false;
        }
        if is_zero || usecs != 0 {
            let hours = usecs / 3_600_000_000;
            let minutes = usecs / 60_000_000 % 60;
            let seconds = usecs / USECS_PER_SEC % 60;
            let micros = usecs % USECS_PER_SEC;
            let space = if is_zero { "" } else { " " };
            let sign = if usecs < 0 {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            };
            write!(
                s,
                "{space}{sign}{:02}:{:02}:{:02}{}",
                hours.abs(),
                minutes.abs(),
                seconds.abs(),
                fraction_text(micros.abs())
            )
            .unwrap();
        }
        s
    }

    /// array_out's quoting of one element.
    fn array_element_text(value: &str) -> String {
        let needs_quotes = value.is_empty()
            || value.eq_ignore_ascii_case("NULL")
            || value
                .bytes()
                .any(|b| matches!(b, b'"' | b'\\' | b'{' | b'}' | b',') || is_array_space(b));
        if !needs_quotes {
            return value.to_owned();
        }
        let mut s = String::from("\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\') {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    }

    fn array_binary(element: Oid, dims: &[(i32, i32)], items: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(
            &mut out,
            &ArrayHeader {
                element_oid: element,
                has_nulls: items.iter().any(Option::is_none),
                dims: if items.is_empty() {
                    Vec::new()
                } else {
                    dims.to_vec()
                },
            },
        );
        for item in items {
            match item {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(bytes) => {
                    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
            }
        }
        out
    }

    fn supported_oid() -> impl Strategy<Value = Oid> {
        prop::sample::select(
            SCALARS
                .into_iter()
                .chain(ARRAYS)
                .chain([774, 775])
                .filter(|&o| o != 0)
                .collect::<Vec<_>>(),
        )
    }

    /// Bytes drawn mostly from the characters the parsers look for, to get past first checks.
    fn plausible_text() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = b"{}[]:=,\"\\ .-+/0123456789abcfxNULBCdaysmonyer\t\xc3\xa9".to_vec();
        prop::collection::vec(prop::sample::select(alphabet), 0..40)
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            oid in supported_oid(),
            text in prop_oneof![prop::collection::vec(any::<u8>(), 0..48), plausible_text()],
        ) {
            let mut out = vec![1, 2, 3];
            match to_binary(oid, &text, &mut out) {
                Ok(true) => prop_assert!(out.len() >= 3 && out[..3] == [1, 2, 3]),
                Ok(false) => prop_assert!(false, "{} is supported", oid),
                Err(e) => {
                    prop_assert!(matches!(e, Error::Decode(_)));
                    prop_assert_eq!(out, vec![1, 2, 3]);
                }
            }
        }

        #[test]
        fn integers_round_trip(i in any::<i64>(), j in any::<i32>(), k in any::<i16>(), u in any::<u32>()) {
            prop_assert_eq!(binary(20, &i.to_string()), i.to_be_bytes());
            prop_assert_eq!(binary(23, &j.to_string()), j.to_be_bytes());
            prop_assert_eq!(binary(21, &k.to_string()), k.to_be_bytes());
            prop_assert_eq!(binary(26, &u.to_string()), u.to_be_bytes());
        }

        #[test]
        fn shortest_float_text_gives_the_same_bits(bits in any::<u64>(), bits32 in any::<u32>()) {
            let x = f64::from_bits(bits);
            let y = f32::from_bits(bits32);
            prop_assume!(!x.is_nan() && !y.is_nan());
            for text in [format!("{x}"), format!("{x:?}"), format!("{x:e}")] {
                prop_assert_eq!(binary(701, &text), bits.to_be_bytes());
            }
            for text in [format!("{y}"), format!("{y:?}"), format!("{y:e}")] {
                prop_assert_eq!(binary(700, &text), bits32.to_be_bytes());
            }
        }

        #[test]
        fn timestamps_round_trip(usecs in MIN_TIMESTAMP..END_TIMESTAMP, east in -57_599i32..57_600) {
            let text = timestamp_text(usecs);
            prop_assert_eq!(binary(1114, &text), usecs.to_be_bytes());
            // The same instant printed in a zone `east` seconds ahead, with its offset.
            // Near the ends of the range the local date can lie outside it; still printed.
            let local = usecs + i64::from(east) * USECS_PER_SEC;
            let Bounded::Finite((date, time)) = datetime::timestamp_from_pg_usecs(local) else {
                unreachable!()
            };
            let (sign, e) = if east < 0 { ('-', -east) } else { ('+', east) };
            let mut offset = format!("{sign}{:02}", e / 3600);
            if e % 3600 != 0 {
                write!(offset, ":{:02}", e / 60 % 60).unwrap();
                if e % 60 != 0 {
                    write!(offset, ":{:02}", e % 60).unwrap();
                }
            }
            let text = format!("{}{}{offset}{}", date_text_body(date, false), time_text(time), era(date));
            prop_assert_eq!(binary(1184, &text), usecs.to_be_bytes());
            let timetz = format!("{}{offset}", time_text(time));
            let mut expect = datetime::usecs_from_time(time).to_be_bytes().to_vec();
            expect.extend_from_slice(&(-east).to_be_bytes());
            prop_assert_eq!(binary(1266, &timetz), expect);
        }

        #[test]
        fn dates_round_trip(days in FIRST_DATE..=LAST_DATE) {
            let Bounded::Finite(date) = datetime::date_from_pg_days(days as i32) else {
                unreachable!()
            };
            let text = date_text_body(date, true) + era(date);
            prop_assert_eq!(binary(1082, &text), (days as i32).to_be_bytes());
        }

        #[test]
        fn intervals_round_trip(months in any::<i32>(), days in any::<i32>(), usecs in any::<i64>()) {
            let text = interval_text(months, days, usecs);
            let expect = Interval { microseconds: usecs, days, months };
            let mut encoded = Vec::new();
            datetime::encode_interval(&mut encoded, expect);
            prop_assert_eq!(binary(1186, &text), encoded, "{}", text);
        }

        #[test]
        fn int_arrays_round_trip(
            rows in 1usize..4,
            items in prop::collection::vec(prop::option::of(any::<i32>()), 1..12),
            lower in prop::option::of((-5i32..5, -5i32..5)),
        ) {
            // Rows of equal length: a one- or two-dimensional array.
            let cols = (items.len() / rows).max(1);
            let items = &items[..cols * rows.min(items.len())];
            let rows = items.len() / cols;
            let element = |v: &Option<i32>| v.map_or("NULL".to_owned(), |v| v.to_string());
            let (text, dims) = if rows == 1 {
                let body: Vec<String> = items.iter().map(element).collect();
                (format!("{{{}}}", body.join(",")), vec![(cols as i32, 1)])
            } else {
                let body: Vec<String> = items
                    .chunks(cols)
                    .map(|row| format!("{{{}}}", row.iter().map(element).collect::<Vec<_>>().join(",")))
                    .collect();
                (format!("{{{}}}", body.join(",")), vec![(rows as i32, 1), (cols as i32, 1)])
            };
            let (text, dims) = match lower {
                None => (text, dims),
                Some((a, b)) => {
                    let lows = [a, b];
                    let dims: Vec<(i32, i32)> =
                        dims.iter().zip(lows).map(|(&(n, _), low)| (n, low)).collect();
                    let mut decoration = String::new();
                    for &(n, low) in &dims {
                        write!(decoration, "[{low}:{}]", low + n - 1).unwrap();
                    }
                    (format!("{decoration}={text}"), dims)
                }
            };
            let bytes: Vec<Option<Vec<u8>>> =
                items.iter().map(|v| v.map(|v| v.to_be_bytes().to_vec())).collect();
            prop_assert_eq!(binary(1007, &text), array_binary(23, &dims, &bytes), "{}", text);
        }

        #[test]
        fn text_arrays_round_trip(items in prop::collection::vec(prop::option::of(".{0,8}"), 0..8)) {
            let body: Vec<String> = items
                .iter()
                .map(|v| v.as_deref().map_or("NULL".to_owned(), array_element_text))
                .collect();
            let text = format!("{{{}}}", body.join(","));
            let bytes: Vec<Option<Vec<u8>>> =
                items.iter().map(|v| v.as_ref().map(|s| s.as_bytes().to_vec())).collect();
            let dims = [(items.len() as i32, 1)];
            prop_assert_eq!(binary(1009, &text), array_binary(25, &dims, &bytes), "{}", text);
        }
    }
}
