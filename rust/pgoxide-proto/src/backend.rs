//! Backend (server to client) message parsing. Views borrow from the receive buffer; nothing
//! here allocates except where a caller asks for owned data.

use crate::error::{Error, Result};

/// A bounds-checked reader over a message body. Every read reports a malformed message as a
/// protocol error instead of panicking.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    /// The part of the body not read yet: a read is one length check and a split.
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { rest: data, what }
    }

    #[cold]
    #[inline(never)]
    fn short(&self) -> Error {
        Error::protocol(format!("malformed {} message (truncated)", self.what))
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.rest.split_at_checked(n) {
            Some((r, rest)) => {
                self.rest = rest;
                Ok(r)
            }
            None => Err(self.short()),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        match self.rest.split_first_chunk::<N>() {
            Some((r, rest)) => {
                self.rest = rest;
                Ok(*r)
            }
            None => Err(self.short()),
        }
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub fn i16(&mut self) -> Result<i16> {
        self.array().map(i16::from_be_bytes)
    }

    pub fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_be_bytes)
    }

    #[inline]
    pub fn i32(&mut self) -> Result<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn i64(&mut self) -> Result<i64> {
        self.array().map(i64::from_be_bytes)
    }

    /// A NUL-terminated string, without its terminator. Must be UTF-8 (we always ask the
    /// server for `client_encoding=UTF8`).
    pub fn cstr(&mut self) -> Result<&'a str> {
        let raw = self.cbytes()?;
        std::str::from_utf8(raw).map_err(|_| {
            Error::protocol(format!("malformed {} message (invalid UTF-8)", self.what))
        })
    }

    pub fn cbytes(&mut self) -> Result<&'a [u8]> {
        let rest = self.rest;
        let n = memchr::memchr(0, rest).ok_or_else(|| {
            Error::protocol(format!(
                "malformed {} message (unterminated string)",
                self.what
            ))
        })?;
        self.rest = &rest[n + 1..];
        Ok(&rest[..n])
    }

    /// Fails unless the whole body was consumed: trailing bytes mean a framing mismatch.
    pub fn finish(&self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::protocol(format!(
                "malformed {} message (trailing bytes)",
                self.what
            )))
        }
    }
}

/// Transaction status reported by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InTransaction,
    Failed,
}

impl TransactionStatus {
    pub fn parse(body: &[u8]) -> Result<Self> {
        match body {
            b"I" => Ok(Self::Idle),
            b"T" => Ok(Self::InTransaction),
            b"E" => Ok(Self::Failed),
            _ => Err(Error::protocol("malformed ReadyForQuery message")),
        }
    }

    pub fn as_char(self) -> char {
        match self {
            Self::Idle => 'I',
            Self::InTransaction => 'T',
            Self::Failed => 'E',
        }
    }
}

/// The fields of an ErrorResponse or NoticeResponse, still in wire form.
#[derive(Debug, Clone, Copy)]
pub struct ErrorFields<'a> {
    body: &'a [u8],
}

impl<'a> ErrorFields<'a> {
    /// Validates the whole field list once so iteration cannot fail later.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut c = Cursor::new(body, "ErrorResponse");
        loop {
            let code = c.u8()?;
            if code == 0 {
                c.finish()?;
                return Ok(Self { body });
            }
            c.cstr()?;
        }
    }

    /// `(field code, value)` pairs, e.g. `(b'C', "23505")`.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a str)> + '_ {
        let mut c = Cursor::new(self.body, "ErrorResponse");
        std::iter::from_fn(move || {
            let code = c.u8().ok()?;
            if code == 0 {
                return None;
            }
            c.cstr().ok().map(|v| (code, v))
        })
    }

    pub fn get(&self, code: u8) -> Option<&'a str> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub table_oid: u32,
    pub column_id: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    pub format: i16,
}

pub fn parse_row_description(body: &[u8]) -> Result<Vec<Column>> {
    let mut c = Cursor::new(body, "RowDescription");
    let n = c.i16()?;
    if n < 0 {
        return Err(Error::protocol(
            "malformed RowDescription message (negative count)",
        ));
    }
    // A column takes at least 19 bytes (an empty name's NUL and 18 bytes of fields): the
    // count alone must not size an allocation, or a 7-byte message could claim megabytes.
    let mut cols = Vec::with_capacity((n as usize).min(c.remaining() / 19));
    for _ in 0..n {
        cols.push(Column {
            name: c.cstr()?.to_owned(),
            table_oid: c.u32()?,
            column_id: c.i16()?,
            type_oid: c.u32()?,
            type_size: c.i16()?,
            type_modifier: c.i32()?,
            format: c.i16()?,
        });
    }
    c.finish()?;
    Ok(cols)
}

pub fn parse_parameter_description(body: &[u8]) -> Result<Vec<u32>> {
    let mut c = Cursor::new(body, "ParameterDescription");
    // Unsigned: PostgreSQL accepts up to 65535 parameters.
    let n = c.u16()?;
    let oids = (0..n).map(|_| c.u32()).collect::<Result<Vec<_>>>()?;
    c.finish()?;
    Ok(oids)
}

/// Iterates over the fields of a DataRow: `None` for NULL, else the value's bytes.
#[derive(Debug, Clone)]
pub struct DataRow<'a> {
    cursor: Cursor<'a>,
    count: usize,
}

impl<'a> DataRow<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut cursor = Cursor::new(body, "DataRow");
        let count = cursor.i16()?;
        if count < 0 {
            return Err(Error::protocol(
                "malformed DataRow message (negative count)",
            ));
        }
        Ok(Self {
            cursor,
            count: count as usize,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The next field. Call exactly [`Self::len`] times, then [`Self::finish`].
    #[inline]
    pub fn next_field(&mut self) -> Result<Option<&'a [u8]>> {
        let len = self.cursor.i32()?;
        if len < 0 {
            if len == -1 {
                return Ok(None);
            }
            return Err(Error::protocol(
                "malformed DataRow message (negative field length)",
            ));
        }
        self.cursor.bytes(len as usize).map(Some)
    }

    pub fn finish(&self) -> Result<()> {
        self.cursor.finish()
    }
}

/// NotificationResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification<'a> {
    pub pid: i32,
    pub channel: &'a str,
    pub payload: &'a str,
}

pub fn parse_notification(body: &[u8]) -> Result<Notification<'_>> {
    let mut c = Cursor::new(body, "NotificationResponse");
    let n = Notification {
        pid: c.i32()?,
        channel: c.cstr()?,
        payload: c.cstr()?,
    };
    c.finish()?;
    Ok(n)
}

pub fn parse_parameter_status(body: &[u8]) -> Result<(&str, &str)> {
    let mut c = Cursor::new(body, "ParameterStatus");
    let r = (c.cstr()?, c.cstr()?);
    c.finish()?;
    Ok(r)
}

pub fn parse_command_complete(body: &[u8]) -> Result<&str> {
    let mut c = Cursor::new(body, "CommandComplete");
    let tag = c.cstr()?;
    c.finish()?;
    Ok(tag)
}

/// BackendKeyData: process id and cancel key (4 bytes in protocol 3.0, up to 256 in 3.2).
pub fn parse_backend_key_data(body: &[u8]) -> Result<(i32, &[u8])> {
    let mut c = Cursor::new(body, "BackendKeyData");
    let pid = c.i32()?;
    let key = c.rest();
    if !(4..=256).contains(&key.len()) {
        return Err(Error::protocol(format!(
            "malformed BackendKeyData message (cancel key of {} bytes)",
            key.len()
        )));
    }
    Ok((pid, key))
}

/// CopyInResponse / CopyOutResponse / CopyBothResponse: overall format and per-column formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    pub format: i8,
    pub column_formats: Vec<i16>,
}

pub fn parse_copy_response(body: &[u8]) -> Result<CopyResponse> {
    let mut c = Cursor::new(body, "CopyResponse");
    let format = c.u8()? as i8;
    let n = c.i16()?;
    if n < 0 {
        return Err(Error::protocol(
            "malformed CopyResponse message (negative count)",
        ));
    }
    let column_formats = (0..n).map(|_| c.i16()).collect::<Result<Vec<_>>>()?;
    c.finish()?;
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

/// Authentication request codes of the `R` message.
pub mod auth_code {
    pub const OK: i32 = 0;
    pub const KERBEROS_V5: i32 = 2;
    pub const CLEARTEXT_PASSWORD: i32 = 3;
    pub const MD5_PASSWORD: i32 = 5;
    pub const GSS: i32 = 7;
    pub const GSS_CONTINUE: i32 = 8;
    pub const SSPI: i32 = 9;
    pub const SASL: i32 = 10;
    pub const SASL_CONTINUE: i32 = 11;
    pub const SASL_FINAL: i32 = 12;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields() {
        let body = b"SERROR\0C23505\0Mduplicate key\0\0";
        let f = ErrorFields::parse(body).unwrap();
        assert_eq!(f.get(b'C'), Some("23505"));
        assert_eq!(f.iter().count(), 3);
        assert!(ErrorFields::parse(b"SERROR\0C235").is_err());
        assert!(ErrorFields::parse(b"SERROR\0\0junk").is_err());
    }

    #[test]
    fn data_row_fields() {
        let body = [0, 2, 255, 255, 255, 255, 0, 0, 0, 2, b'h', b'i'];
        let mut r = DataRow::parse(&body).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.next_field().unwrap(), None);
        assert_eq!(r.next_field().unwrap(), Some(&b"hi"[..]));
        r.finish().unwrap();
        let mut r = DataRow::parse(&[0, 1, 0, 0, 0, 9, 1]).unwrap();
        assert!(r.next_field().is_err());
    }

    #[test]
    fn parameter_description_count_is_unsigned() {
        // 40000 parameters: the count's high bit is set, which PostgreSQL sends as is.
        let mut body = 40000u16.to_be_bytes().to_vec();
        for _ in 0..40000 {
            body.extend_from_slice(&23u32.to_be_bytes());
        }
        let oids = parse_parameter_description(&body).unwrap();
        assert_eq!(oids.len(), 40000);
        assert!(parse_parameter_description(&[0, 1, 0, 0]).is_err());
    }

    #[test]
    fn row_description() {
        let mut body = vec![0, 1];
        body.extend_from_slice(b"id\0");
        body.extend_from_slice(&16384u32.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&23u32.to_be_bytes());
        body.extend_from_slice(&4i16.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        let cols = parse_row_description(&body).unwrap();
        assert_eq!(cols[0].name, "id");
        assert_eq!(cols[0].type_oid, 23);
        body.push(0);
        assert!(parse_row_description(&body).is_err());
    }

    #[test]
    fn backend_key_lengths() {
        assert!(parse_backend_key_data(&[0, 0, 0, 1, 1, 2, 3, 4]).is_ok());
        assert!(parse_backend_key_data(&[0, 0, 0, 1, 1, 2]).is_err());
    }
}
