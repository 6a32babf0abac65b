//! The COPY data formats: binary COPY (header, tuples, trailer) both ways, and text COPY
//! lines (escaping them, and splitting received ones into fields).
//!
//! A binary COPY tuple is an Int16 field count, then per field an Int32 length (-1 for NULL)
//! and the value's binary form: the same layout as a DataRow body, so the row decoders read
//! tuples as they are. CopyData message boundaries need not fall between tuples (the server
//! happens to send one tuple per message, but the protocol promises nothing), so the reader
//! carries a cut tuple over to the next message.

use std::borrow::Cow;

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
        let len = usize::try_from(len)
            .map_err(|_| Error::protocol(format!("binary COPY field with a length of {len}")))?;
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

/// Splits text COPY data, arriving in CopyData payloads of any size, into lines.
#[derive(Debug, Default)]
pub struct TextReader {
    /// The start of a line whose newline has not arrived yet.
    pending: Vec<u8>,
}

impl TextReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one CopyData payload, calling `each` with every complete line (without its
    /// newline) in order.
    pub fn feed<E>(
        &mut self,
        data: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = data;
        if !self.pending.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                self.pending.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&rest[..end]);
            each(&line)?;
            rest = &rest[end + 1..];
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            each(&rest[..end])?;
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Checks that the data ended with a whole line (the server sent CopyDone).
    pub fn finish(&self) -> Result<()> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(Error::protocol("text COPY data ended inside a line"))
        }
    }
}

/// The fields of one text COPY line (default delimiter and NULL): None for `\N`, else the
/// value with its backslash sequences resolved.
pub fn text_fields<'a>(line: &'a [u8], out: &mut Vec<Option<Cow<'a, [u8]>>>) -> Result<()> {
    out.clear();
    for field in line.split(|&b| b == b'\t') {
        if field == TEXT_NULL {
            out.push(None);
        } else if memchr::memchr(b'\\', field).is_none() {
            out.push(Some(Cow::Borrowed(field)));
        } else {
            out.push(Some(Cow::Owned(unescape(field)?)));
        }
    }
    Ok(())
}

/// Resolves the backslash sequences of a text COPY field (`COPY`'s documented set: `\b \f \n
/// \r \t \v`, octal `\ooo`, hex `\xhh`, and any other character standing for itself).
fn unescape(field: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&next) = field.get(i) else {
            return Err(Error::protocol(
                "text COPY field ends with a lone backslash",
            ));
        };
        i += 1;
        match next {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'x' if field.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match field.get(i).and_then(|d| char::from(*d).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
            assert_eq!(
                read_in_pieces(&data, piece).unwrap(),
                vec![tuple(&[Some(b"v")])]
            );
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

    fn lines_in_pieces(data: &[u8], piece: usize) -> Result<Vec<Vec<u8>>> {
        let mut reader = TextReader::new();
        let mut out = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            reader.feed(chunk, |l: &[u8]| -> Result<()> {
                out.push(l.to_vec());
                Ok(())
            })?;
        }
        reader.finish()?;
        Ok(out)
    }

    #[test]
    fn text_lines_cut_anywhere_are_joined() {
        let data = b"1\tone\n\n2\t\\N\n3\tlong line\n";
        for piece in 1..data.len() {
            assert_eq!(
                lines_in_pieces(data, piece).unwrap(),
                vec![
                    b"1\tone".to_vec(),
                    vec![],
                    b"2\t\\N".to_vec(),
                    b"3\tlong line".to_vec()
                ]
            );
        }
        assert!(lines_in_pieces(b"1\tno newline", 4).is_err());
    }

    #[test]
    fn text_fields_resolve_escapes_and_nulls() {
        let mut fields = Vec::new();
        text_fields(b"a\\tb\t\\N\t\t\\\\N\t\\101\\x41\\q\\n", &mut fields).unwrap();
        let got: Vec<Option<Vec<u8>>> = fields
            .iter()
            .map(|f| f.as_ref().map(|c| c.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                Some(b"a\tb".to_vec()),
                None,
                Some(vec![]),
                Some(b"\\N".to_vec()),
                Some(b"AAq\n".to_vec()),
            ]
        );
        assert!(text_fields(b"ends with \\", &mut fields).is_err());
    }

    #[test]
    fn escaping_then_splitting_gives_the_value_back() {
        let value = b"tab\there\nnew \\ back \\N\r".to_vec();
        let mut line = Vec::new();
        escape_text(&mut line, &value);
        let mut fields = Vec::new();
        text_fields(&line, &mut fields).unwrap();
        assert_eq!(fields, vec![Some(Cow::Owned(value))]);
    }

    proptest! {
        #[test]
        fn any_values_survive_a_text_line(values in prop::collection::vec(
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40)), 1..6,
        )) {
            let mut line = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    line.push(b'\t');
                }
                match v {
                    None => line.extend_from_slice(TEXT_NULL),
                    Some(v) => escape_text(&mut line, v),
                }
            }
            let mut fields = Vec::new();
            text_fields(&line, &mut fields).unwrap();
            let got: Vec<Option<Vec<u8>>> =
                fields.iter().map(|f| f.as_ref().map(|c| c.to_vec())).collect();
            prop_assert_eq!(got, values);
        }

        #[test]
        fn any_tuples_survive_binary_copy(
            rows in prop::collection::vec(
                prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..20)), 0..5),
                0..8,
            ),
            piece in 1usize..64,
        ) {
            let tuples: Vec<Vec<u8>> = rows
                .iter()
                .map(|r| tuple(&r.iter().map(|f| f.as_deref()).collect::<Vec<_>>()))
                .collect();
            prop_assert_eq!(read_in_pieces(&stream(&tuples), piece).unwrap(), tuples);
        }
    }

    #[test]
    fn oversized_row_is_an_encode_error() {
        assert!(begin_tuple(&mut Vec::new(), 40_000).is_err());
    }
}
