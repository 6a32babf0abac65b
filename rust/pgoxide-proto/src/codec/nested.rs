//! Values nested inside values: the Int32 length (-1 for NULL) + bytes framing shared by range
//! bounds, multiranges, composite fields and hstore pairs, and the Int32 counts in front of them.
//!
//! Readers turn every malformed length into [`Error::Decode`] naming the outer type (a bad
//! nested value concerns one value, not the connection). Writers append to the caller's buffer
//! and patch lengths and counts afterwards, so nested values are encoded in place; on failure
//! they take back what they wrote, leaving the buffer as it was.

use crate::backend::Cursor;
use crate::error::{Error, Result};

/// The length that marks a NULL nested value.
pub const NULL_LENGTH: i32 = -1;

/// The error for a malformed value of `type_name`.
pub(crate) fn malformed(type_name: &str, detail: &str) -> Error {
    Error::decode(format!("invalid {type_name} value: {detail}"))
}

/// The error for a value of `type_name` that cannot be encoded.
pub(crate) fn unencodable(type_name: &str, detail: &str) -> Error {
    Error::Encode(format!("cannot encode {type_name} value: {detail}"))
}

/// A cursor over one value whose every failure is a [`Error::Decode`] naming the type.
#[derive(Debug, Clone)]
pub(crate) struct ValueReader<'a> {
    cursor: Cursor<'a>,
    type_name: &'static str,
}

impl<'a> ValueReader<'a> {
    pub(crate) fn new(data: &'a [u8], type_name: &'static str) -> Self {
        Self {
            cursor: Cursor::new(data, type_name),
            type_name,
        }
    }

    pub(crate) fn error(&self, detail: &str) -> Error {
        malformed(self.type_name, detail)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.cursor.remaining()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let type_name = self.type_name;
        self.cursor
            .bytes(n)
            .map_err(|_| malformed(type_name, "truncated"))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let raw = self.bytes(N)?;
        let mut out = [0; N];
        out.copy_from_slice(raw);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    /// An Int32 count of items that each take at least `min_item_size` bytes (at least 1), so
    /// a count larger than the remaining data could hold is rejected before anything trusts it.
    pub(crate) fn count(&mut self, min_item_size: usize) -> Result<usize> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| self.error("negative count"))?;
        if n > self.remaining() / min_item_size.max(1) {
            return Err(self.error("count exceeds the data"));
        }
        Ok(n)
    }

    /// Int32 length (-1 for NULL) + bytes.
    pub(crate) fn nullable(&mut self) -> Result<Option<&'a [u8]>> {
        match self.i32()? {
            NULL_LENGTH => Ok(None),
            n if n < 0 => Err(self.error("negative length")),
            n => self.bytes(n as usize).map(Some),
        }
    }

    /// Int32 length + bytes, where NULL is not allowed; `what` names the item in the error.
    pub(crate) fn non_null(&mut self, what: &str) -> Result<&'a [u8]> {
        self.nullable()?
            .ok_or_else(|| self.error(&format!("{what} is NULL")))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        self.cursor.rest()
    }

    /// Fails unless the whole value was consumed.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.cursor.is_empty() {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }
}

/// The Int32 length of `len` bytes of a nested value, or [`Error::Encode`] when it does not fit.
pub fn length_prefix(len: usize, type_name: &str) -> Result<i32> {
    i32::try_from(len).map_err(|_| unencodable(type_name, "a nested value exceeds 2 GiB"))
}

/// Appends Int32 length + bytes, or -1 for `None`.
pub fn write_nullable(buf: &mut Vec<u8>, value: Option<&[u8]>, type_name: &str) -> Result<()> {
    match value {
        None => buf.extend_from_slice(&NULL_LENGTH.to_be_bytes()),
        Some(bytes) => {
            buf.extend_from_slice(&length_prefix(bytes.len(), type_name)?.to_be_bytes());
            buf.extend_from_slice(bytes);
        }
    }
    Ok(())
}

/// Appends an Int32 length placeholder, lets `write` append the nested value, then patches the
/// length. If `write` fails (or the value is too long), the buffer is truncated back to where
/// it was and the error returned.
pub fn write_with<F>(buf: &mut Vec<u8>, type_name: &str, write: F) -> Result<()>
where
    F: FnOnce(&mut Vec<u8>) -> Result<()>,
{
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    let outcome = write(buf).and_then(|()| {
        let len = buf.len().checked_sub(start + 4).ok_or_else(|| {
            unencodable(type_name, "a nested writer removed bytes it did not write")
        })?;
        let len = length_prefix(len, type_name)?;
        patch(buf, start, len, type_name)
    });
    if outcome.is_err() {
        buf.truncate(start);
    }
    outcome
}

/// Overwrites the Int32 placeholder at `at`.
fn patch(buf: &mut [u8], at: usize, value: i32, type_name: &str) -> Result<()> {
    buf.get_mut(at..at + 4)
        .ok_or_else(|| unencodable(type_name, "a nested writer removed a length placeholder"))?
        .copy_from_slice(&value.to_be_bytes());
    Ok(())
}

/// A list encoded as an Int32 count followed by the items, with the count patched by
/// [`CountedWriter::finish`]. Dropped without `finish`, it removes everything it wrote, so an
/// encoder that fails half way (with `?`) leaves the caller's buffer untouched.
#[derive(Debug)]
pub struct CountedWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    count: usize,
    type_name: &'static str,
    finished: bool,
}

impl<'b> CountedWriter<'b> {
    pub fn begin(buf: &'b mut Vec<u8>, type_name: &'static str) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&[0; 4]);
        Self {
            buf,
            start,
            count: 0,
            type_name,
            finished: false,
        }
    }

    /// The buffer, to append the next item to. Call [`Self::item_done`] after each item.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    pub fn item_done(&mut self) {
        self.count += 1;
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Patches the count; fails (and takes back the list) if it exceeds Int32.
    pub fn finish(mut self) -> Result<()> {
        let count =
            i32::try_from(self.count).map_err(|_| unencodable(self.type_name, "too many items"))?;
        patch(self.buf, self.start, count, self.type_name)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for CountedWriter<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.buf.truncate(self.start);
        }
    }
}

/// Bytes from hex text (test vectors are pasted from `encode(..., 'hex')`).
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_lengths() {
        let data = [
            0, 0, 0, 2, 7, 8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
        ];
        let mut r = ValueReader::new(&data, "test");
        assert_eq!(r.nullable().unwrap(), Some(&[7u8, 8][..]));
        assert_eq!(r.nullable().unwrap(), None);
        assert_eq!(
            r.nullable().unwrap_err(),
            Error::Decode("invalid test value: negative length".into())
        );
        let mut r = ValueReader::new(&[0, 0, 0, 9, 1], "test");
        assert_eq!(
            r.nullable().unwrap_err(),
            Error::Decode("invalid test value: truncated".into())
        );
    }

    #[test]
    fn counts_are_bounded_by_the_data() {
        let mut r = ValueReader::new(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0], "test");
        assert_eq!(r.count(4).unwrap(), 2);
        let mut r = ValueReader::new(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], "test");
        assert!(r.count(4).is_err());
        let mut r = ValueReader::new(&[0xFF, 0, 0, 0], "test");
        assert!(r.count(1).is_err());
    }

    #[test]
    fn write_with_patches_and_rolls_back() {
        let mut buf = vec![9];
        write_with(&mut buf, "test", |b| {
            b.extend_from_slice(b"abc");
            Ok(())
        })
        .unwrap();
        assert_eq!(buf, [9, 0, 0, 0, 3, b'a', b'b', b'c']);
        let err = write_with(&mut buf, "test", |b| {
            b.extend_from_slice(b"junk");
            Err(Error::Encode("no".into()))
        });
        assert!(err.is_err());
        assert_eq!(buf, [9, 0, 0, 0, 3, b'a', b'b', b'c']);
        // A writer that eats into what came before is an error, not a panic.
        assert!(write_with(&mut buf, "test", |b| {
            b.truncate(1);
            Ok(())
        })
        .is_err());
        assert_eq!(buf, [9]);
    }

    #[test]
    fn counted_writer_rolls_back_unless_finished() {
        let mut buf = vec![1];
        {
            let mut w = CountedWriter::begin(&mut buf, "test");
            w.buf().push(42);
            w.item_done();
        }
        assert_eq!(buf, [1]);
        let mut w = CountedWriter::begin(&mut buf, "test");
        w.buf().push(42);
        w.item_done();
        w.finish().unwrap();
        assert_eq!(buf, [1, 0, 0, 0, 1, 42]);
    }
}
