//! Rows and parameters: DataRows decoded into records with the statement's codec table, and
//! a statement's arguments encoded into a Bind.

use pgoxide_proto::backend::DataRow;
use pgoxide_proto::frontend::MAX_QUERY_ARGS;
use pgoxide_proto::session::Request;
use pgoxide_proto::types::Oid;
use pgoxide_proto::Error;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

use crate::codec::Codec;
use crate::errors::{data_error, interface_error, to_pyerr};
use crate::record::{Record, RecordDesc, Values};
use crate::statement::Statement;

/// Malformed row (fatal) versus a value that could not be converted (fails one operation).
pub enum RowError {
    Protocol(Error),
    Value(PyErr),
}

pub fn decode_row(
    py: Python<'_>,
    stmt: &Statement,
    record_class: Option<&Py<PyType>>,
    body: &[u8],
) -> Result<Row, RowError> {
    let mut row = DataRow::parse(body).map_err(RowError::Protocol)?;
    if row.len() != stmt.column_codecs.len() {
        return Err(RowError::Protocol(Error::Protocol(format!(
            "DataRow has {} columns, the statement describes {}",
            row.len(),
            stmt.column_codecs.len()
        ))));
    }
    let mut values = Values::with_capacity(py, row.len()).map_err(RowError::Value)?;
    for (i, codec) in stmt.column_codecs.iter().enumerate() {
        match row.next_field().map_err(RowError::Protocol)? {
            None => values.push(py.None()),
            Some(data) => match codec.decode_field(py, data) {
                Ok(v) => values.push(v.unbind()),
                Err(e) => return Err(RowError::Value(column_error(py, stmt, i, &e))),
            },
        }
    }
    row.finish().map_err(RowError::Protocol)?;
    make_row(py, stmt, record_class, values)
}

/// A record of `stmt`'s columns holding `values` (a `record_class` instance when one is given).
pub fn make_row(
    py: Python<'_>,
    stmt: &Statement,
    record_class: Option<&Py<PyType>>,
    values: Values,
) -> Result<Row, RowError> {
    let desc = stmt.desc.clone_ref(py);
    match record_class {
        // `Record` itself (a pool passes it by default) is the fast path too.
        None => Record::create(py, desc, values).map(Row::from),
        Some(cls) if cls.bind(py).is(py.get_type::<Record>()) => {
            Record::create(py, desc, values).map(Row::from)
        }
        // Let the tracking pass look at these: their array lists were built untracked.
        Some(cls) => Record::create_of_class(cls.bind(py), desc, &values).map(|r| Row {
            record: r.unbind(),
            to_track: true,
        }),
    }
    .map_err(RowError::Value)
}

/// A decoded row, and whether `Record::track_result` must look at it.
pub struct Row {
    pub record: Py<PyAny>,
    pub to_track: bool,
}

impl From<Py<Record>> for Row {
    fn from(record: Py<Record>) -> Self {
        let to_track = record.get().is_cyclic();
        Self {
            record: record.into_any(),
            to_track,
        }
    }
}

/// A DataRow of a simple query (text format), each value decoded by its column's type.
pub fn text_row(
    py: Python<'_>,
    columns: &[(Oid, Codec)],
    desc: &Py<RecordDesc>,
    body: &[u8],
) -> Result<Row, RowError> {
    let mut row = DataRow::parse(body).map_err(RowError::Protocol)?;
    if row.len() != columns.len() {
        return Err(RowError::Protocol(Error::Protocol(format!(
            "DataRow has {} columns, the RowDescription {}",
            row.len(),
            columns.len()
        ))));
    }
    let mut scratch = Vec::new();
    let mut values = Values::with_capacity(py, row.len()).map_err(RowError::Value)?;
    for (oid, codec) in columns {
        match row.next_field().map_err(RowError::Protocol)? {
            None => values.push(py.None()),
            Some(data) => values.push(
                codec
                    .decode_text(py, *oid, data, &mut scratch)
                    .map_err(RowError::Value)?
                    .unbind(),
            ),
        }
    }
    row.finish().map_err(RowError::Protocol)?;
    Record::create(py, desc.clone_ref(py), values)
        .map(Row::from)
        .map_err(RowError::Value)
}

fn column_error(py: Python<'_>, stmt: &Statement, i: usize, e: &PyErr) -> PyErr {
    let col = &stmt.columns[i];
    data_error(
        py,
        format!(
            "cannot decode column {:?} ({}): {}",
            col.name,
            stmt.column_type_names[i],
            e.value(py)
        ),
    )
}

/// Encodes one Bind of `stmt` with `args` to `portal`; fails before anything is queued.
pub fn encode_bind(
    py: Python<'_>,
    req: &mut Request,
    portal: &str,
    stmt: &Statement,
    args: &Bound<'_, PyAny>,
) -> PyResult<()> {
    encode_bind_row(py, req, portal, stmt, args, None)
}

/// [`encode_bind`] of element `row` (counted from 0) of an `executemany` sequence, which
/// errors name as asyncpg's do.
pub fn encode_bind_row(
    py: Python<'_>,
    req: &mut Request,
    portal: &str,
    stmt: &Statement,
    args: &Bound<'_, PyAny>,
    row: Option<usize>,
) -> PyResult<()> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = args.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = args.cast::<PyList>() {
        l.iter().collect()
    } else if let Some(row) = row.filter(|_| !is_sequence(args)) {
        // A mapping, set or scalar is no row: say so rather than binding its keys.
        return Err(data_error(
            py,
            format!(
                "invalid input in executemany() argument sequence element #{row}: expected a \
                 sequence, got {}",
                type_name(args)
            ),
        ));
    } else {
        args.try_iter()
            .map_err(|_| interface_error(py, "query arguments must be a sequence".into()))?
            .collect::<PyResult<_>>()?
    };
    if items.len() > MAX_QUERY_ARGS {
        return Err(interface_error(
            py,
            format!("the number of query arguments cannot exceed {MAX_QUERY_ARGS}"),
        ));
    }
    if items.len() != stmt.param_codecs.len() {
        return Err(interface_error(
            py,
            format!(
                "the server expects {} argument{} for this query, {} {} passed",
                stmt.param_codecs.len(),
                if stmt.param_codecs.len() == 1 {
                    ""
                } else {
                    "s"
                },
                items.len(),
                if items.len() == 1 { "was" } else { "were" }
            ),
        ));
    }
    let mut bind = req
        .bind(portal, &stmt.name, &stmt.param_formats, items.len())
        .map_err(|e| to_pyerr(py, &e))?;
    for (i, (value, encoder)) in items.iter().zip(&stmt.param_codecs).enumerate() {
        if value.is_none() {
            bind.null();
            continue;
        }
        if let Codec::Record(_) = encoder {
            return Err(anonymous_record_error(py, &position(i, row)));
        }
        let buf = bind.begin_value();
        if let Err(why) = encoder.encode(value, buf) {
            return Err(data_error(py, argument_error(stmt, i, row, value, &why)));
        }
        bind.end_value().map_err(|e| to_pyerr(py, &e))?;
    }
    bind.finish(&stmt.result_formats)
        .map_err(|e| to_pyerr(py, &e))
}

/// `$N`, and which element of an `executemany` sequence it belongs to.
fn position(i: usize, row: Option<usize>) -> String {
    match row {
        None => format!("${}", i + 1),
        Some(row) => format!("${} in element #{row} of executemany() sequence", i + 1),
    }
}

/// asyncpg's error for a value of the anonymous `record` type, which PostgreSQL cannot read.
fn anonymous_record_error(py: Python<'_>, position: &str) -> PyErr {
    let raise = || -> PyResult<PyErr> {
        let cls = crate::pycache::exception(py, "UnsupportedClientFeatureError")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item(
            "hint",
            "Consider declaring an explicit composite type and using it to cast the argument.",
        )?;
        kwargs.set_item(
            "detail",
            "PostgreSQL does not implement anonymous composite type input.",
        )?;
        let message = format!(
            "query argument {position}: input of anonymous composite types is not supported"
        );
        Ok(PyErr::from_value(cls.call((message,), Some(&kwargs))?))
    };
    raise().unwrap_or_else(|e| e)
}

/// What asyncpg takes as a row: CPython's sequence check (indexable, not a dict).
fn is_sequence(v: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `v` is live; the check cannot fail.
    unsafe { pyo3::ffi::PySequence_Check(v.as_ptr()) == 1 }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

fn argument_error(
    stmt: &Statement,
    i: usize,
    row: Option<usize>,
    value: &Bound<'_, PyAny>,
    why: &str,
) -> String {
    let mut shown = value
        .repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string());
    if shown.chars().count() > 60 {
        shown = format!("{}...", shown.chars().take(57).collect::<String>());
    }
    let type_name = &stmt.param_type_names[i];
    // asyncpg's wording, with the parameter's type after the reason.
    format!(
        "invalid input for query argument {}: {shown} ({why}; ${} is of type {type_name})",
        position(i, row),
        i + 1
    )
}
