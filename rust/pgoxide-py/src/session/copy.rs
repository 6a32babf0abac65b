//! COPY: what a COPY operation does with the data it receives, and records encoded into the
//! data it sends.
//!
//! Records go out as binary COPY tuples, each value encoded by the codec of its column (the
//! statement describing the target columns), user codecs and jsonb included. When a column's
//! type has only a text codec the whole COPY uses the text format instead, each value written
//! as its text form. COPY TO STDOUT data is handed over as the bytes of each feed, or decoded
//! from binary tuples into records with the statement's codecs.

use pgoxide_proto::copy::{self as fmt, BinaryReader, TextReader};
use pgoxide_proto::types::Builtin;
use pgoxide_proto::{frontend, Error};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDelta, PyDeltaAccess, PyFloat, PyInt, PyIterator, PyList,
    PyString, PyTuple, PyType,
};

use super::items::Items;
use super::rows::{decode_row, make_row, Row, RowError};
use crate::codec::Codec;
use crate::errors::{data_error, to_pyerr};
use crate::record::Values;
use crate::statement::Statement;

/// A COPY run by the COPY API (an operation kind).
pub enum CopyOp {
    /// COPY FROM STDIN: the facade sends the data once the server asks for it.
    In,
    /// COPY TO STDOUT handed over as bytes.
    Out,
    /// Binary COPY TO STDOUT decoded into records.
    Records(Box<RecordsOut<BinaryReader>>),
    /// Text COPY TO STDOUT decoded into records by the column types: for a result with a
    /// column whose type has only a text codec.
    TextRecords(Box<RecordsOut<TextReader>>),
}

pub struct RecordsOut<R> {
    pub stmt: Py<Statement>,
    pub record_class: Option<Py<PyType>>,
    pub reader: R,
}

impl From<Error> for RowError {
    fn from(e: Error) -> Self {
        RowError::Protocol(e)
    }
}

impl CopyOp {
    /// One CopyData payload of a COPY TO STDOUT.
    pub fn receive(
        &mut self,
        py: Python<'_>,
        payload: &[u8],
        items: &mut Items<'_>,
    ) -> Result<(), RowError> {
        match self {
            CopyOp::In => Err(RowError::Protocol(Error::Protocol(
                "CopyData from the server during COPY FROM STDIN".into(),
            ))),
            CopyOp::Out => {
                items.copy_bytes(payload);
                Ok(())
            }
            CopyOp::Records(out) => {
                let RecordsOut {
                    stmt,
                    record_class,
                    reader,
                } = &mut **out;
                let stmt = stmt.get();
                reader.feed(payload, |tuple| {
                    let row = decode_row(py, stmt, record_class.as_ref(), tuple)?;
                    items.copy_row(row.record).map_err(RowError::Value)
                })
            }
            CopyOp::TextRecords(out) => {
                let RecordsOut {
                    stmt,
                    record_class,
                    reader,
                } = &mut **out;
                let stmt = stmt.get();
                let mut scratch = Vec::new();
                reader.feed(payload, |line| {
                    let row = text_record(py, stmt, record_class.as_ref(), line, &mut scratch)?;
                    items.copy_row(row.record).map_err(RowError::Value)
                })
            }
        }
    }

    /// The server's CopyDone: binary data must have ended with its trailer.
    pub fn finish(&self) -> Result<(), Error> {
        match self {
            CopyOp::Records(out) => out.reader.finish(),
            CopyOp::TextRecords(out) => out.reader.finish(),
            CopyOp::In | CopyOp::Out => Ok(()),
        }
    }
}

/// One line of text COPY data as a record, each value decoded from its text by its column's
/// type.
fn text_record(
    py: Python<'_>,
    stmt: &Statement,
    record_class: Option<&Py<PyType>>,
    line: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<Row, RowError> {
    let mut fields = Vec::with_capacity(stmt.column_codecs.len());
    fmt::text_fields(line, &mut fields)?;
    if fields.len() != stmt.column_codecs.len() {
        return Err(RowError::Protocol(Error::Protocol(format!(
            "a COPY line has {} fields, the statement describes {} columns",
            fields.len(),
            stmt.column_codecs.len()
        ))));
    }
    let mut values = Values::with_capacity(py, fields.len()).map_err(RowError::Value)?;
    for ((field, codec), column) in fields.iter().zip(&stmt.column_codecs).zip(&stmt.columns) {
        match field {
            None => values.push(py.None()),
            Some(data) => values.push(
                codec
                    .decode_text(py, column.type_oid, data, scratch)
                    .map_err(RowError::Value)?
                    .unbind(),
            ),
        }
    }
    make_row(py, stmt, record_class, values)
}

/// Encodes records from `rows` into one CopyData message of about `max_bytes`: binary tuples
/// (after the header when `header`), or text lines with `text`. Returns the message, how many
/// records it holds, and whether `rows` has more. `start` is the index of the first record,
/// for errors. A record that cannot be encoded raises a `DataError` naming it and its column;
/// an error of the iterator itself is raised as it is.
#[allow(clippy::too_many_arguments)]
pub fn encode_records<'py>(
    py: Python<'py>,
    stmt: &Statement,
    rows: &Bound<'py, PyIterator>,
    max_bytes: usize,
    start: u64,
    header: bool,
    text: bool,
) -> PyResult<(Bound<'py, PyBytes>, u64, bool)> {
    let mut buf = Vec::with_capacity(max_bytes.min(1 << 20) + 1024);
    let at = frontend::begin_copy_data(&mut buf);
    if header && !text {
        fmt::write_header(&mut buf);
    }
    let mut count = 0u64;
    let mut more = true;
    let mut scratch = Vec::new();
    while buf.len() < max_bytes {
        let Some(record) = rows.clone().next() else {
            more = false;
            break;
        };
        let record = record?;
        let index = start + count;
        match record.cast::<PyTuple>() {
            // The common case, read in place.
            Ok(t) if !text && t.len() == stmt.column_codecs.len() => {
                encode_tuple(py, stmt, t.iter_borrowed(), index, &mut buf)?;
            }
            _ => {
                let values = record_values(py, &record, stmt, index)?;
                if text {
                    encode_line(py, stmt, &values, index, &mut buf, &mut scratch)?;
                } else {
                    encode_tuple(py, stmt, values.iter(), index, &mut buf)?;
                }
            }
        }
        count += 1;
    }
    frontend::end_copy_data(&mut buf, at).map_err(|e| to_pyerr(py, &e))?;
    Ok((PyBytes::new(py, &buf), count, more))
}

/// The values of one record (a tuple, list, `Record` or other sequence), checked against the
/// number of columns.
fn record_values<'py>(
    py: Python<'py>,
    record: &Bound<'py, PyAny>,
    stmt: &Statement,
    index: u64,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let values: Vec<Bound<'py, PyAny>> = if let Ok(t) = record.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = record.cast::<PyList>() {
        l.iter().collect()
    } else if record.is_instance_of::<PyString>() || record.is_instance_of::<PyBytes>() {
        return Err(data_error(
            py,
            format!("record {index} is not a sequence of values"),
        ));
    } else {
        match record.try_iter() {
            Ok(it) => it.collect::<PyResult<_>>()?,
            Err(_) => {
                return Err(data_error(
                    py,
                    format!("record {index} is not a sequence of values"),
                ))
            }
        }
    };
    let want = stmt.column_codecs.len();
    if values.len() != want {
        let names: Vec<&str> = stmt.columns.iter().map(|c| c.name.as_str()).collect();
        return Err(data_error(
            py,
            format!(
                "record {index} has {} value{}, the COPY has {want} column{} ({})",
                values.len(),
                if values.len() == 1 { "" } else { "s" },
                if want == 1 { "" } else { "s" },
                names.join(", ")
            ),
        ));
    }
    Ok(values)
}

fn encode_tuple<'py, V: std::ops::Deref<Target = Bound<'py, PyAny>>>(
    py: Python<'py>,
    stmt: &Statement,
    values: impl Iterator<Item = V>,
    index: u64,
    buf: &mut Vec<u8>,
) -> PyResult<()> {
    fmt::begin_tuple(buf, stmt.column_codecs.len()).map_err(|e| to_pyerr(py, &e))?;
    for (col, (value, codec)) in values.zip(&stmt.column_codecs).enumerate() {
        let value = &*value;
        if value.is_none() {
            fmt::null(buf);
            continue;
        }
        let at = fmt::begin_value(buf);
        if let Err(why) = codec.encode(value, buf) {
            return Err(value_error(py, stmt, index, col, value, &why));
        }
        fmt::end_value(buf, at).map_err(|e| to_pyerr(py, &e))?;
    }
    Ok(())
}

/// One line of text COPY: the values' text forms, escaped, tab-separated.
fn encode_line(
    py: Python<'_>,
    stmt: &Statement,
    values: &[Bound<'_, PyAny>],
    index: u64,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> PyResult<()> {
    for (col, (value, codec)) in values.iter().zip(&stmt.column_codecs).enumerate() {
        if col > 0 {
            buf.push(b'\t');
        }
        if value.is_none() {
            buf.extend_from_slice(fmt::TEXT_NULL);
            continue;
        }
        scratch.clear();
        if let Err(why) = text_form(codec, value, scratch) {
            return Err(value_error(py, stmt, index, col, value, &why));
        }
        fmt::escape_text(buf, scratch);
    }
    buf.push(b'\n');
    Ok(())
}

/// A value's text form, for the text COPY used when a column has only a text codec: a `str`
/// as it is, what a text codec produces, and the text of the common scalar types. Others
/// (arrays, composites, ranges, geometry) must be given as their text form.
fn text_form(codec: &Codec, value: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Result<(), String> {
    if let Ok(s) = value.cast::<PyString>() {
        out.extend_from_slice(s.to_str().map_err(|e| e.to_string())?.as_bytes());
        return Ok(());
    }
    if codec.format() == 0 || codec.text_like() {
        codec.encode(value, out)?;
        if matches!(
            codec,
            Codec::Scalar(Builtin::Jsonb | Builtin::Jsonpath) | Codec::ParsedJson(Builtin::Jsonb)
        ) && !out.is_empty()
        {
            out.remove(0); // the binary form's version byte
        }
        return Ok(());
    }
    if let Some(text) = codec.datetime_text(value)? {
        out.extend_from_slice(text.as_bytes());
    } else if let Ok(b) = value.cast::<PyBool>() {
        out.push(if b.is_true() { b't' } else { b'f' });
    } else if let Ok(b) = value.cast::<PyBytes>() {
        hex(b.as_bytes(), out);
    } else if let Ok(b) = value.cast::<PyByteArray>() {
        hex(&b.to_vec(), out);
    } else if let Ok(d) = value.cast::<PyDelta>() {
        let text = format!(
            "{} days {} seconds {} microseconds",
            d.get_days(),
            d.get_seconds(),
            d.get_microseconds()
        );
        out.extend_from_slice(text.as_bytes());
    } else if value.is_instance_of::<PyInt>()
        || value.is_instance_of::<PyFloat>()
        || matches!(codec, Codec::Scalar(b) | Codec::Finite(b) if scalar_with_str_form(*b))
    {
        let s = value.str().map_err(|e| e.to_string())?;
        out.extend_from_slice(s.to_str().map_err(|e| e.to_string())?.as_bytes());
    } else {
        return Err(
            "this COPY uses the text format (a column's type has only a text codec), and this \
             value has no text form here: pass it as a str in PostgreSQL's text syntax"
                .into(),
        );
    }
    Ok(())
}

/// Scalars whose Python objects print in a form PostgreSQL reads back (`Decimal`, `UUID`, the
/// date and time types in ISO format, the `ipaddress` types).
fn scalar_with_str_form(b: Builtin) -> bool {
    matches!(
        b,
        Builtin::Numeric
            | Builtin::Uuid
            | Builtin::Date
            | Builtin::Time
            | Builtin::TimeTz
            | Builtin::Timestamp
            | Builtin::TimestampTz
            | Builtin::Inet
            | Builtin::Cidr
            | Builtin::MacAddr
            | Builtin::MacAddr8
            | Builtin::PgLsn
    )
}

fn hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\x");
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

fn value_error(
    py: Python<'_>,
    stmt: &Statement,
    index: u64,
    col: usize,
    value: &Bound<'_, PyAny>,
    why: &str,
) -> PyErr {
    let mut shown = value
        .repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string());
    if shown.chars().count() > 60 {
        shown = format!("{}...", shown.chars().take(57).collect::<String>());
    }
    data_error(
        py,
        format!(
            "invalid input for record {index}, column {:?} of type {}: {shown} ({why})",
            stmt.columns[col].name, stmt.column_type_names[col]
        ),
    )
}
