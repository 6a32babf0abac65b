//! The COPY data formats: binary COPY (header, tuples, trailer) both ways, and the escaping of
//! text COPY lines.
//!
//! A binary COPY tuple is an Int16 field count, then per field an Int32 length (-1 for NULL)
//! and the value's binary form: the same layout as a DataRow body, so the row decoders read
//! tuples as they are. CopyData message boundaries need not fall between tuples (the server
//! happens to send one tuple per message, but the protocol promises nothing), so the reader
//! carries a cut tuple over to the next message.

use crate::error::{Error, Result};

/// The 11-byte signature that starts binary COPY data.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Bit 16 of the flags: each tuple carries an OID (`WITH OIDS`, gone since PostgreSQL 12).
const FLAG_OIDS: u32 = 1 << 16;

/// Bits 17-31 are reserved for critical flags a reader must understand or refuse.
const CRITICAL_UNKNOWN: u32 = 0xfffe_0000;

/// Appends the header of binary COPY data: signature, flags (none), no extension area.
pub fn write_header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(SIGNATURE);
    buf.extend_from_slice(&0u32.to_be_bytes());
    buf.extend_from_slice(&0u32.to_be_bytes());
}

/// Appends the trailer: a field count of -1.
pub fn write_trailer(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i16).to_be_bytes());
}

/// Starts a tuple of `fields` values; returns an error past the format's 16-bit count.
pub fn begin_tuple(buf: &mut Vec<u8>, fields: usize) -> Result<()> {
    let n = i16::try_from(fields)
        .map_err(|_| Error::Encode(format!("a COPY row cannot have {fields} columns")))?;
    buf.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// Appends a NULL field.
pub fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

/// Reserves a field's length; the value is appended next and [`end_value`] given the
/// returned position.
pub fn begin_value(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    at
}

/// Writes the length of the value appended since [`begin_value`].
pub fn end_value(buf: &mut [u8], at: usize) -> Result<()> {
    let len = buf.len() - at - 4;
    let len = i32::try_from(len)
        .map_err(|_| Error::Encode(format!("a value of {len} bytes is too large for COPY")))?;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Splits binary COPY data, arriving in CopyData payloads of any size, into tuples.
#[derive(Debug, Default)]
pub struct BinaryReader {
    header_read: bool,
    trailer_read: bool,
    /// The start of a tuple (or of the header) whose end has not arrived yet.
    pending: Vec<u8>,
}

impl BinaryReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one CopyData payload, calling `each` with every complete tuple in order.
    pub fn feed<E: From<Error>>(
        &mut self,
        data: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.pending.is_empty() {
            let used = self.split(data, &mut each)?;
            self.pending.extend_from_slice(&data[used..]);
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(data);
            let used = self.split(&joined, &mut each)?;
            joined.drain(..used);
            self.pending = joined;
        }
        Ok(())
    }

    /// Checks that the data ended with its trailer (the server sent CopyDone).
    pub fn finish(&self) -> Result<()> {
        if self.trailer_read && self.pending.is_empty() {
            Ok(())
        } else {
            Err(Error::protocol(
                "binary COPY data ended without its trailer",
            ))
        }
    }

    /// Hands over the complete tuples at the start of `data`; returns how many bytes were used.
    fn split<E: From<Error>>(
        &mut self,
        data: &[u8],
        each: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut pos = 0;
        if !self.header_read {
            match header_len(data)? {
                Some(len) => pos = len,
                None => return Ok(0),
            }
            self.header_read = true;
        }
        while pos < data.len() {
            if self.trailer_read {
                return Err(Error::protocol("binary COPY data continues after its trailer").into());
            }
            match tuple_len(&data[pos..])? {
                None => break,
                Some(Tuple::Trailer) => {
                    self.trailer_read = true;
                    pos += 2;
                }
                Some(Tuple::Row(len)) => {
                    each(&data[pos..pos + len])?;
                    pos += len;
                }
            }
        }
        Ok(pos)
    }
}

enum Tuple {
    Row(usize),
    Trailer,
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The header's length, or None when it has not all arrived.
fn header_len(data: &[u8]) -> Result<Option<usize>> {
    let fixed = SIGNATURE.len() + 8;
    let sig = data.len().min(SIGNATURE.len());
    if data[..sig] != SIGNATURE[..sig] {
        return Err(Error::protocol("binary COPY data without its signature"));
    }
    if data.len() < fixed {
        return Ok(None);
    }
    let flags = be_u32(&data[11..15]);
    if flags & (FLAG_OIDS | CRITICAL_UNKNOWN) != 0 {
        return Err(Error::protocol(format!(
            "binary COPY header has flags this client does not understand ({flags:#x})"
        )));
    }
    let extension = be_u32(&data[15..19]) as usize;
    let len = fixed
        .checked_add(extension)
        .ok_or_else(|| Error::protocol("binary COPY header extension too long"))?;
    Ok((data.len() >= len).then_some(len))
}

/// The length of the tuple at the start of `data`, or None when it has not all arrived.
fn tuple_len(data: &[u8]) -> Result<Option<Tuple>> {
    if data.len() < 2 {
        return Ok(None);
    }
    let count = be_i16(data);
    if count == -1 {
        return Ok(Some(Tuple::Trailer));
    }
    if count < 0 {
        return Err(Error::protocol(format!(
            "binary COPY tuple with a field count of {count}"
        )));
    }
    let mut pos = 2usize;
    for _ in 0..count {
        if data.len() < pos + 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        pos += 4;
        if len == -1 {
            continue;
        }
        let len = usize::try_from(len).map_err(|_| {
            Error::protocol(format!("binary COPY field with a length of {len}"))
        })?;
        if data.len() - pos < len {
            return Ok(None);
        }
        pos += len;
    }
    Ok(Some(Tuple::Row(pos)))
}

/// Appends `value` escaped for a text COPY line: backslash, newline, carriage return and tab
/// are written as backslash sequences, so they cannot end a field or a line.
pub fn escape_text(buf: &mut Vec<u8>, value: &[u8]) {
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        buf.extend_from_slice(&value[start..i]);
        buf.extend_from_slice(escaped);
        start = i + 1;
    }
    buf.extend_from_slice(&value[start..]);
}

/// The NULL of a text COPY line (the default `NULL` option).
pub const TEXT_NULL: &[u8] = b"\\N";

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut buf = Vec::new();
        begin_tuple(&mut buf, fields.len()).unwrap();
        for f in fields {
            match f {
                None => null(&mut buf),
                Some(v) => {
                    let at = begin_value(&mut buf);
                    buf.extend_from_slice(v);
                    end_value(&mut buf, at).unwrap();
                }
            }
        }
        buf
    }

    fn stream(rows: &[Vec<u8>]) -> Vec<u8> {
        let mut buf = Vec::new();
        write_header(&mut buf);
        for r in rows {
            buf.extend_from_slice(r);
        }
        write_trailer(&mut buf);
        buf
    }

    fn read_in_pieces(data: &[u8], piece: usize) -> Result<Vec<Vec<u8>>> {
        let mut reader = BinaryReader::new();
        let mut out = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            reader.feed(chunk, |t: &[u8]| -> Result<()> {
                out.push(t.to_vec());
                Ok(())
            })?;
        }
        reader.finish()?;
        Ok(out)
    }

    #[test]
    fn header_is_what_the_server_writes() {
        // The first 19 bytes of `COPY (SELECT 1) TO STDOUT (FORMAT binary)` on PostgreSQL 16.
        let recorded = b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        let mut buf = Vec::new();
        write_header(&mut buf);
        assert_eq!(buf, recorded);
    }

    #[test]
    fn recorded_server_stream_splits_into_tuples() {
        // `COPY (SELECT 1::int4, NULL::text) TO STDOUT (FORMAT binary)`, as one payload.
        let mut data = b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
        data.extend_from_slice(b"\x00\x02\x00\x00\x00\x04\x00\x00\x00\x01\xff\xff\xff\xff");
        data.extend_from_slice(b"\xff\xff");
        let rows = read_in_pieces(&data, data.len()).unwrap();
        assert_eq!(
            rows,
            vec![b"\x00\x02\x00\x00\x00\x04\x00\x00\x00\x01\xff\xff\xff\xff".to_vec()]
        );
    }

    #[test]
    fn tuples_cut_anywhere_are_joined() {
        let rows = vec![
            tuple(&[Some(b"abc"), None, Some(b"")]),
            tuple(&[]),
            tuple(&[Some(&[7; 300])]),
        ];
        let data = stream(&rows);
        for piece in 1..data.len() {
            assert_eq!(read_in_pieces(&data, piece).unwrap(), rows, "piece {piece}");
        }
    }

    #[test]
    fn missing_trailer_is_an_error() {
        let mut data = Vec::new();
        write_header(&mut data);
        data.extend_from_slice(&tuple(&[Some(b"x")]));
        assert!(read_in_pieces(&data, 5).is_err());
        // A tuple cut short by the end of the data, too.
        let mut cut = stream(&[tuple(&[Some(b"xyz")])]);
        cut.truncate(cut.len() - 4);
        assert!(read_in_pieces(&cut, 3).is_err());
    }

    #[test]
    fn malformed_streams_are_refused() {
        assert!(read_in_pieces(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0\xff\xff", 4).is_err());
        let mut oids = Vec::new();
        oids.extend_from_slice(SIGNATURE);
        oids.extend_from_slice(&FLAG_OIDS.to_be_bytes());
        oids.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff]);
        assert!(read_in_pieces(&oids, 64).is_err());
        let mut negative = stream(&[]);
        negative.truncate(negative.len() - 2);
        negative.extend_from_slice(&[0, 1, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff]);
        assert!(read_in_pieces(&negative, 64).is_err());
        let mut count = stream(&[]);
        count.truncate(count.len() - 2);
        count.extend_from_slice(&[0xff, 0xfe]);
        assert!(read_in_pieces(&count, 64).is_err());
        let mut after = stream(&[]);
        after.extend_from_slice(&tuple(&[]));
        assert!(read_in_pieces(&after, 64).is_err());
    }

    #[test]
    fn header_extension_is_skipped() {
        let mut data = Vec::new();
        data.extend_from_slice(SIGNATURE);
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(&3u32.to_be_bytes());
        data.extend_from_slice(b"ext");
        data.extend_from_slice(&tuple(&[Some(b"v")]));
        write_trailer(&mut data);
        for piece in 1..data.len() {
            assert_eq!(read_in_pieces(&data, piece).unwrap(), vec![tuple(&[Some(b"v")])]);
        }
    }

    #[test]
    fn text_escaping_keeps_fields_and_lines_apart() {
        let mut buf = Vec::new();
        escape_text(&mut buf, b"a\tb\nc\rd\\e\\N");
        assert_eq!(buf, b"a\\tb\\nc\\rd\\\\e\\\\N");
        buf.clear();
        escape_text(&mut buf, b"plain");
        assert_eq!(buf, b"plain");
    }

    #[test]
    fn oversized_row_is_an_encode_error() {
        assert!(begin_tuple(&mut Vec::new(), 40_000).is_err());
    }
}
