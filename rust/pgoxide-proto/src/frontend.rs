//! Frontend (client to server) message encoders. Each appends to a caller's buffer and patches
//! the length field afterwards, so a whole request is built in one allocation.

use crate::error::{Error, Result};

/// Protocol version 3.0, as sent in the StartupMessage (major << 16 | minor).
pub const PROTOCOL_3_0: i32 = 196_608;
/// Protocol version 3.2 (PostgreSQL 18: cancel keys of 4 to 256 bytes). 3.1 was never used.
pub const PROTOCOL_3_2: i32 = 196_610;
/// Request codes sent in place of a protocol version.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;
pub const SSL_REQUEST_CODE: i32 = 80_877_103;

/// Marks the start of a message whose length is patched by [`finish`].
#[inline]
fn begin(buf: &mut Vec<u8>, tag: u8) -> usize {
    buf.push(tag);
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    at
}

/// The longest message PostgreSQL reads (`PQ_LARGE_MESSAGE_LIMIT`, the length counting
/// itself). The server refuses a longer one and closes the connection; past 4 GiB the length
/// would wrap and the rest of the message be read as further messages.
pub const MAX_MESSAGE_LEN: usize = 0x3fff_fffe;

/// Patches the length of the message begun at `at` (the length counts itself, not the tag),
/// or fails if the message is longer than the server accepts.
#[inline]
fn finish(buf: &mut [u8], at: usize) -> Result<()> {
    let len = buf.len() - at;
    if len > MAX_MESSAGE_LEN {
        return Err(Error::Encode(format!(
            "a message of {len} bytes is longer than PostgreSQL accepts \
             ({MAX_MESSAGE_LEN} bytes)"
        )));
    }
    buf[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Appends a NUL-terminated string; an interior NUL cannot be represented on the wire.
fn put_cstr(buf: &mut Vec<u8>, s: &[u8], what: &str) -> Result<()> {
    if memchr::memchr(0, s).is_some() {
        return Err(Error::Encode(format!(
            "{what} must not contain NUL characters"
        )));
    }
    buf.extend_from_slice(s);
    buf.push(0);
    Ok(())
}

pub fn startup(buf: &mut Vec<u8>, version: i32, params: &[(&str, &str)]) -> Result<()> {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&version.to_be_bytes());
    for (k, v) in params {
        put_cstr(buf, k.as_bytes(), "startup parameter names")?;
        put_cstr(buf, v.as_bytes(), "startup parameter values")?;
    }
    buf.push(0);
    finish(buf, at)
}

pub fn ssl_request(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&8i32.to_be_bytes());
    buf.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
}

pub fn cancel_request(buf: &mut Vec<u8>, pid: i32, key: &[u8]) {
    buf.extend_from_slice(&((12 + key.len()) as i32).to_be_bytes());
    buf.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
    buf.extend_from_slice(&pid.to_be_bytes());
    buf.extend_from_slice(key);
}

/// PasswordMessage: cleartext or MD5-hashed password.
pub fn password(buf: &mut Vec<u8>, password: &[u8]) -> Result<()> {
    let at = begin(buf, b'p');
    put_cstr(buf, password, "passwords")?;
    finish(buf, at)
}

pub fn sasl_initial_response(buf: &mut Vec<u8>, mechanism: &str, data: &[u8]) -> Result<()> {
    let at = begin(buf, b'p');
    buf.extend_from_slice(mechanism.as_bytes());
    buf.push(0);
    buf.extend_from_slice(&(data.len() as i32).to_be_bytes());
    buf.extend_from_slice(data);
    finish(buf, at)
}

pub fn sasl_response(buf: &mut Vec<u8>, data: &[u8]) -> Result<()> {
    let at = begin(buf, b'p');
    buf.extend_from_slice(data);
    finish(buf, at)
}

pub fn query(buf: &mut Vec<u8>, sql: &str) -> Result<()> {
    let at = begin(buf, b'Q');
    put_cstr(buf, sql.as_bytes(), "query text")?;
    finish(buf, at)
}

/// The most parameters a statement can have: the protocol's counts are 16-bit, and
/// PostgreSQL reads them unsigned (libpq's `PQ_QUERY_PARAM_MAX_LIMIT`).
pub const MAX_QUERY_ARGS: usize = 65535;

pub fn parse(buf: &mut Vec<u8>, name: &str, sql: &str, param_types: &[u32]) -> Result<()> {
    let at = begin(buf, b'P');
    put_cstr(buf, name.as_bytes(), "statement names")?;
    put_cstr(buf, sql.as_bytes(), "query text")?;
    // The count is unsigned on the wire (PostgreSQL reads it so; libpq allows 65535).
    let n = u16::try_from(param_types.len())
        .map_err(|_| Error::Encode("too many parameter types (at most 65535)".into()))?;
    buf.extend_from_slice(&n.to_be_bytes());
    for oid in param_types {
        buf.extend_from_slice(&oid.to_be_bytes());
    }
    finish(buf, at)
}

/// Describe of a prepared statement (`S`) or a portal (`P`).
pub fn describe(buf: &mut Vec<u8>, kind: u8, name: &str) -> Result<()> {
    let at = begin(buf, b'D');
    buf.push(kind);
    put_cstr(buf, name.as_bytes(), "statement names")?;
    finish(buf, at)
}

/// Close of a prepared statement (`S`) or a portal (`P`).
pub fn close(buf: &mut Vec<u8>, kind: u8, name: &str) -> Result<()> {
    let at = begin(buf, b'C');
    buf.push(kind);
    put_cstr(buf, name.as_bytes(), "statement names")?;
    finish(buf, at)
}

pub fn execute(buf: &mut Vec<u8>, portal: &str, max_rows: i32) -> Result<()> {
    let at = begin(buf, b'E');
    put_cstr(buf, portal.as_bytes(), "portal names")?;
    buf.extend_from_slice(&max_rows.to_be_bytes());
    finish(buf, at)
}

pub fn sync(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[b'S', 0, 0, 0, 4]);
}

pub fn flush(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[b'H', 0, 0, 0, 4]);
}

pub fn terminate(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[b'X', 0, 0, 0, 4]);
}

pub fn copy_data(buf: &mut Vec<u8>, data: &[u8]) -> Result<()> {
    let at = begin(buf, b'd');
    buf.extend_from_slice(data);
    finish(buf, at)
}

/// Starts a CopyData message whose payload the caller appends; [`end_copy_data`] ends it.
pub fn begin_copy_data(buf: &mut Vec<u8>) -> usize {
    begin(buf, b'd')
}

/// Ends the CopyData message begun at `at`.
pub fn end_copy_data(buf: &mut [u8], at: usize) -> Result<()> {
    finish(buf, at)
}

pub fn copy_done(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[b'c', 0, 0, 0, 4]);
}

pub fn copy_fail(buf: &mut Vec<u8>, message: &str) -> Result<()> {
    let at = begin(buf, b'f');
    put_cstr(buf, message.as_bytes(), "COPY failure messages")?;
    finish(buf, at)
}

/// Incremental Bind encoder: parameters are appended one by one by the caller's codecs.
///
/// Layout: portal, statement, parameter format codes, parameter count, each parameter as
/// Int32 length (-1 for NULL) plus bytes, result format codes.
pub struct Bind<'a> {
    buf: &'a mut Vec<u8>,
    at: usize,
    value_at: usize,
}

impl<'a> Bind<'a> {
    /// Starts a Bind; `param_formats` follows the protocol (empty = all text, one = for all).
    pub fn begin(
        buf: &'a mut Vec<u8>,
        portal: &str,
        statement: &str,
        param_formats: &[i16],
        nparams: usize,
    ) -> Result<Self> {
        let nparams = u16::try_from(nparams).map_err(|_| {
            Error::Encode(format!(
                "the number of query arguments cannot exceed {MAX_QUERY_ARGS}"
            ))
        })?;
        let at = begin(buf, b'B');
        put_cstr(buf, portal.as_bytes(), "portal names")?;
        put_cstr(buf, statement.as_bytes(), "statement names")?;
        buf.extend_from_slice(&(param_formats.len() as u16).to_be_bytes());
        for f in param_formats {
            buf.extend_from_slice(&f.to_be_bytes());
        }
        buf.extend_from_slice(&nparams.to_be_bytes());
        Ok(Self {
            buf,
            at,
            value_at: 0,
        })
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// Reserves a length slot and returns the buffer to append the value's bytes to; call
    /// [`Self::end_value`] afterwards.
    pub fn begin_value(&mut self) -> &mut Vec<u8> {
        self.value_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf
    }

    pub fn end_value(&mut self) -> Result<()> {
        let len = self.buf.len() - self.value_at - 4;
        let len = i32::try_from(len)
            .map_err(|_| Error::Encode("a query argument exceeds 2 GiB".into()))?;
        self.buf[self.value_at..self.value_at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    pub fn finish(self, result_formats: &[i16]) -> Result<()> {
        self.buf
            .extend_from_slice(&(result_formats.len() as i16).to_be_bytes());
        for f in result_formats {
            self.buf.extend_from_slice(&f.to_be_bytes());
        }
        let len = self.buf.len() - self.at;
        finish(self.buf, self.at).map_err(|_| {
            Error::Encode(format!(
                "the query arguments take {len} bytes, more than PostgreSQL accepts in one \
                 message ({MAX_MESSAGE_LEN} bytes)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_are_unsigned() {
        let mut b = Vec::new();
        let types = vec![23u32; 40000];
        parse(&mut b, "", "q", &types).unwrap();
        // tag, length, two empty-ish strings, then the count.
        assert_eq!(&b[1 + 4 + 1 + 2..][..2], &40000u16.to_be_bytes());
        let mut b = Vec::new();
        assert!(parse(&mut b, "", "q", &vec![23u32; MAX_QUERY_ARGS + 1]).is_err());
        let mut b = Vec::new();
        let bind = Bind::begin(&mut b, "", "", &[1], 40000).unwrap();
        drop(bind);
        assert_eq!(&b[b.len() - 2..], &40000u16.to_be_bytes());
        let mut b = Vec::new();
        let e = Bind::begin(&mut b, "", "", &[1], MAX_QUERY_ARGS + 1)
            .err()
            .unwrap();
        assert!(e.to_string().contains("cannot exceed 65535"), "{e}");
    }

    #[test]
    fn startup_bytes() {
        let mut b = Vec::new();
        startup(&mut b, PROTOCOL_3_0, &[("user", "u"), ("database", "d")]).unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(&(4 + 4 + 7 + 11 + 1u32).to_be_bytes());
        want.extend_from_slice(&196_608u32.to_be_bytes());
        want.extend_from_slice(b"user\0u\0database\0d\0\0");
        assert_eq!(b, want);
    }

    #[test]
    fn bind_with_null_and_value() {
        let mut b = Vec::new();
        let mut bind = Bind::begin(&mut b, "", "s1", &[1], 2).unwrap();
        bind.null();
        bind.begin_value().extend_from_slice(&7i32.to_be_bytes());
        bind.end_value().unwrap();
        bind.finish(&[1]).unwrap();
        let want: &[u8] = &[
            b'B', 0, 0, 0, 30, 0, b's', b'1', 0, 0, 1, 0, 1, 0, 2, 255, 255, 255, 255, 0, 0, 0, 4,
            0, 0, 0, 7, 0, 1, 0, 1,
        ];
        assert_eq!(b, want);
    }

    #[test]
    fn messages_longer_than_the_server_reads_are_refused() {
        // Zeroed allocations stay unmapped until written: only the length word is.
        let mut at_limit = vec![0u8; MAX_MESSAGE_LEN];
        finish(&mut at_limit, 0).unwrap();
        assert_eq!(at_limit[..4], (MAX_MESSAGE_LEN as u32).to_be_bytes());
        let mut over = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert!(matches!(finish(&mut over, 0), Err(Error::Encode(_))));
        // Past 4 GiB the length word would wrap to a small, plausible value.
        let mut wrapping = vec![0u8; (1 << 32) + 40];
        assert!(matches!(finish(&mut wrapping, 0), Err(Error::Encode(_))));
    }

    #[test]
    fn nul_in_query_rejected() {
        let mut b = Vec::new();
        assert!(matches!(
            query(&mut b, "select '\0'"),
            Err(Error::Encode(_))
        ));
    }

    #[test]
    fn fixed_messages() {
        let mut b = Vec::new();
        sync(&mut b);
        terminate(&mut b);
        execute(&mut b, "", 0).unwrap();
        assert_eq!(
            b,
            [b'S', 0, 0, 0, 4, b'X', 0, 0, 0, 4, b'E', 0, 0, 0, 9, 0, 0, 0, 0, 0]
        );
    }
}
