//! `Session`: the core state machine plus the FIFO of operations awaiting results.
//!
//! Python calls a request method (which returns the bytes to write and queues one operation),
//! then feeds received bytes. `feed` decodes every DataRow straight into a `Record` of the
//! operation's result and returns only what completed: one item per finished operation,
//! notification, notice or bytes to send. Nothing is called back per row or per message.

use std::collections::VecDeque;
use std::sync::Arc;

use pgoxide_proto::auth::policy::RequireAuth;
use pgoxide_proto::backend::{self, Column, DataRow, ErrorFields};
use pgoxide_proto::session::{
    self as core, AuthMethod, ChannelBindingMode, Event, Request, StartupConfig,
};
use pgoxide_proto::types::{self, Oid};
use pgoxide_proto::{frontend, Error};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList, PyTuple, PyType};

use crate::codec::{Codec, Resolver};
use crate::errors::{data_error, interface_error, to_pyerr};
use crate::record::{Record, RecordDesc, Values};
use crate::registry::{ExchangeFormat, Registry, TypeInfo, TypeKind, TypeRow, UserCodec};
use crate::replication;
use crate::statement::{Described, Statement};

/// Kinds of items returned by `feed`.
const DONE: u8 = 0;
const SERVER_ERROR: u8 = 1;
const CLIENT_ERROR: u8 = 2;
const NOTICE: u8 = 3;
const NOTIFICATION: u8 = 4;
const SEND: u8 = 5;
/// A server error that arrived before the statement was bound: it never ran.
const SERVER_ERROR_UNEXECUTED: u8 = 6;
/// The server asked for a password method and the session answered; the payload names it
/// (`password`, `md5`, `scram-sha-256`, `scram-sha-256-plus`).
const AUTH: u8 = 7;
/// Replication stream items (`XLogData`/`Keepalive`), a list per feed.
const REPLICATION: u8 = 8;
/// START_REPLICATION was accepted: the stream runs (CopyBoth).
const REPLICATION_STARTED: u8 = 9;

/// A portal name no client creates: executing it makes the server fail the current implicit
/// transaction, which is how a half-sent `executemany` batch is rolled back.
const ABORT_PORTAL: &str = "pgoxide: abandoned batch";

enum OpKind {
    Startup,
    Simple,
    Prepare {
        name: String,
        query: String,
        params: Option<Vec<u32>>,
        columns: Option<Vec<Column>>,
    },
    Query {
        stmt: Py<Statement>,
        rows: Py<PyList>,
        record_class: Option<Py<PyType>>,
        /// The portal is described in the same request (unnamed statement parsed again from a
        /// description kept client-side): check its columns before decoding any row.
        verify: bool,
        /// The columns had changed and `stmt` was rebuilt from the new description.
        redescribed: bool,
    },
    Many,
    /// A simple query whose last result set is kept, its text values decoded by type.
    SimpleRows {
        columns: Vec<(Oid, Codec)>,
        desc: Option<Py<RecordDesc>>,
        rows: Py<PyList>,
    },
    Replication(Box<replication::Stream>),
}

enum OpError {
    Server(Py<PyDict>),
    Client(PyErr),
}

struct Op {
    kind: OpKind,
    /// BindComplete arrived: the statement started executing. An error before that means it
    /// never ran, so a retry cannot repeat its effects.
    bound: bool,
    tag: Option<String>,
    error: Option<OpError>,
    /// A row that `Record::track_result` must look at was added: without one, the pass over
    /// a finished result (and the cache misses of reading every row again) is skipped.
    rows_to_track: bool,
}

impl Op {
    fn new(kind: OpKind) -> Self {
        Self {
            kind,
            bound: false,
            tag: None,
            error: None,
            rows_to_track: false,
        }
    }

    fn set_error(&mut self, e: OpError) {
        self.error.get_or_insert(e);
    }
}

#[pyclass(module = "pgoxide._pgoxide")]
pub struct Session {
    core: core::Session,
    ops: VecDeque<Op>,
    /// Non-builtin types and user codecs; copied on write so statements can keep a snapshot.
    registry: Arc<Registry>,
    /// Statements to close with the next request.
    pending_close: Vec<String>,
}

fn fields_dict<'py>(py: Python<'py>, fields: &ErrorFields<'_>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (code, value) in fields.iter() {
        d.set_item(char::from(code).to_string(), value)?;
    }
    Ok(d)
}

fn is_fatal(fields: &ErrorFields<'_>) -> bool {
    matches!(
        fields.get(b'V').or_else(|| fields.get(b'S')),
        Some("FATAL" | "PANIC")
    )
}

/// Malformed row (fatal) versus a value that could not be converted (fails one operation).
enum RowError {
    Protocol(Error),
    Value(PyErr),
}

fn decode_row(
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
    let desc = stmt.desc.clone_ref(py);
    match record_class {
        None => Record::create(py, desc, values).map(Row::from),
        // Let the tracking pass look at these: their array lists were built untracked.
        Some(cls) => Record::create_of_class(cls.bind(py), desc, &values).map(|r| Row {
            record: r.unbind(),
            to_track: true,
        }),
    }
    .map_err(RowError::Value)
}

/// A decoded row, and whether `Record::track_result` must look at it.
struct Row {
    record: Py<PyAny>,
    to_track: bool,
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
fn text_row(
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
                replication::decode_text(py, *oid, codec, data, &mut scratch)
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

/// Encodes one Bind for `stmt` with `args`; fails before anything is queued.
fn encode_bind(
    py: Python<'_>,
    req: &mut Request,
    stmt: &Statement,
    args: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = args.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = args.cast::<PyList>() {
        l.iter().collect()
    } else {
        args.try_iter()
            .map_err(|_| interface_error(py, "query arguments must be a sequence".into()))?
            .collect::<PyResult<_>>()?
    };
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
        .bind("", &stmt.name, &stmt.param_formats, items.len())
        .map_err(|e| to_pyerr(py, &e))?;
    for (i, (value, encoder)) in items.iter().zip(&stmt.param_codecs).enumerate() {
        if value.is_none() {
            bind.null();
            continue;
        }
        let buf = bind.begin_value();
        if let Err(why) = encoder.encode(value, buf) {
            return Err(data_error(py, argument_error(stmt, i, value, &why)));
        }
        bind.end_value().map_err(|e| to_pyerr(py, &e))?;
    }
    bind.finish(&stmt.result_formats)
        .map_err(|e| to_pyerr(py, &e))
}

fn argument_error(stmt: &Statement, i: usize, value: &Bound<'_, PyAny>, why: &str) -> String {
    let mut shown = value
        .repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string());
    if shown.chars().count() > 60 {
        shown = format!("{}...", shown.chars().take(57).collect::<String>());
    }
    format!(
        "invalid input for query argument ${} of type {}: {shown} ({why})",
        i + 1,
        stmt.param_type_names[i]
    )
}

impl Session {
    fn new_request(&self) -> PyResult<Request> {
        let mut req = Request::new();
        for name in &self.pending_close {
            req.close_statement(name)
                .map_err(|e| Python::attach(|py| to_pyerr(py, &e)))?;
        }
        Ok(req)
    }

    fn submit<'py>(
        &mut self,
        py: Python<'py>,
        mut req: Request,
        kind: OpKind,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
        self.pending_close.clear();
        self.ops.push_back(Op::new(kind));
        Ok(PyBytes::new(py, &bytes))
    }

    /// Completes an operation with its result or error.
    fn complete(
        py: Python<'_>,
        op: Op,
        registry: &Arc<Registry>,
        out: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        match op.error {
            Some(OpError::Server(fields)) => {
                let unexecuted =
                    matches!(op.kind, OpKind::Query { .. } | OpKind::Many) && !op.bound;
                out.append((
                    if unexecuted {
                        SERVER_ERROR_UNEXECUTED
                    } else {
                        SERVER_ERROR
                    },
                    fields,
                ))
            }
            Some(OpError::Client(err)) => out.append((CLIENT_ERROR, err.into_value(py))),
            None => {
                let result: Py<PyAny> = match op.kind {
                    OpKind::Startup | OpKind::Many => py.None(),
                    OpKind::Simple | OpKind::Replication(_) => {
                        op.tag.into_pyobject(py)?.into_any().unbind()
                    }
                    OpKind::SimpleRows { rows, .. } => {
                        if op.rows_to_track {
                            Record::track_result(rows.bind(py));
                        }
                        rows.into_any()
                    }
                    OpKind::Query {
                        rows,
                        stmt,
                        redescribed,
                        ..
                    } => {
                        if op.rows_to_track {
                            Record::track_result(rows.bind(py));
                        }
                        if redescribed {
                            (rows, op.tag, stmt).into_pyobject(py)?.into_any().unbind()
                        } else {
                            (rows, op.tag).into_pyobject(py)?.into_any().unbind()
                        }
                    }
                    OpKind::Prepare {
                        name,
                        query,
                        params,
                        columns,
                        ..
                    } => {
                        let described = Described {
                            name,
                            query,
                            param_oids: params.unwrap_or_default(),
                            columns: columns.unwrap_or_default(),
                        };
                        match Statement::build(py, &described, registry, false)? {
                            Ok(stmt) => Py::new(py, stmt)?.into_any(),
                            // Types to introspect before the statement can be built.
                            Err(unknown) => (Py::new(py, described)?, unknown)
                                .into_pyobject(py)?
                                .into_any()
                                .unbind(),
                        }
                    }
                };
                out.append((DONE, result))
            }
        }
    }

    /// A statement's or portal's columns arrived (RowDescription or NoData).
    fn on_columns(&mut self, py: Python<'_>, cols: Vec<Column>) -> PyResult<()> {
        let Some(op) = self.ops.front_mut() else {
            return Ok(());
        };
        match &mut op.kind {
            OpKind::Prepare { columns, .. } => *columns = Some(cols),
            OpKind::SimpleRows {
                columns,
                desc,
                rows,
            } => {
                // Each result set replaces the previous one: the last is kept.
                let mut resolver = Resolver::new(&self.registry);
                *columns = cols
                    .iter()
                    .map(|c| Ok((c.type_oid, resolver.codec(py, c.type_oid)?)))
                    .collect::<PyResult<_>>()?;
                let names: Vec<String> = cols.into_iter().map(|c| c.name).collect();
                *desc = Some(RecordDesc::new(py, &names)?);
                *rows = PyList::empty(py).unbind();
            }
            OpKind::Query {
                stmt,
                verify: true,
                redescribed,
                ..
            } => {
                let old = stmt.get();
                let same = old.columns.len() == cols.len()
                    && old
                        .columns
                        .iter()
                        .zip(&cols)
                        .all(|(a, b)| a.type_oid == b.type_oid && a.name == b.name);
                if !same {
                    // The schema changed since the description we kept: decode with the new
                    // one if its formats match what the Bind asked for.
                    let described = Described {
                        name: String::new(),
                        query: old.query.clone(),
                        param_oids: old.param_oids.clone(),
                        columns: cols,
                    };
                    match Statement::build(py, &described, &self.registry, false)? {
                        Ok(new) if new.result_formats_match(old) => {
                            *stmt = Py::new(py, new)?;
                            *redescribed = true;
                        }
                        _ => op.set_error(OpError::Client(data_error(
                            py,
                            "the result columns of this query changed since it was last described and \
                             cannot be decoded as requested; it will be described again — run it again"
                                .into(),
                        ))),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn out<'a, 'py>(
        py: Python<'py>,
        out: &'a mut Option<Bound<'py, PyList>>,
    ) -> &'a Bound<'py, PyList> {
        out.get_or_insert_with(|| PyList::empty(py))
    }

    fn stream_mut(&mut self) -> PyResult<&mut replication::Stream> {
        match self.ops.front_mut() {
            Some(Op {
                kind: OpKind::Replication(stream),
                ..
            }) => Ok(stream),
            _ => Err(PyValueError::new_err("no replication stream is running")),
        }
    }

    fn violation(&mut self, py: Python<'_>, e: &Error) -> PyErr {
        self.core.fail(e.clone());
        to_pyerr(py, e)
    }

    /// Handles the messages received so far (see `feed`); `may_detach`: whether the GIL may
    /// be released while authenticating (only when the received bytes were copied).
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        may_detach: bool,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let mut out: Option<Bound<'py, PyList>> = None;
        // Replication items of this feed, handed over as one list.
        let mut batch: Option<Bound<'py, PyList>> = None;
        loop {
            // Authentication may run PBKDF2 (milliseconds): let other threads run meanwhile.
            let event = if !may_detach || self.core.is_ready() {
                self.core.next_event()
            } else {
                let core = &mut self.core;
                py.detach(move || core.next_event())
            };
            let event = match event {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(to_pyerr(py, &e)),
            };
            match event {
                Event::DataRow(body) => {
                    let Some(op) = self.ops.front_mut() else {
                        continue;
                    };
                    if let OpKind::SimpleRows {
                        columns,
                        desc: Some(desc),
                        rows,
                    } = &op.kind
                    {
                        if op.error.is_none() {
                            match text_row(py, columns, desc, body) {
                                Ok(row) => {
                                    op.rows_to_track |= row.to_track;
                                    rows.bind(py).append(row.record)?;
                                }
                                Err(RowError::Value(e)) => op.set_error(OpError::Client(e)),
                                Err(RowError::Protocol(e)) => return Err(self.violation(py, &e)),
                            }
                        }
                        continue;
                    }
                    let OpKind::Query {
                        stmt,
                        rows,
                        record_class,
                        ..
                    } = &op.kind
                    else {
                        continue;
                    };
                    if op.error.is_some() {
                        continue;
                    }
                    match decode_row(py, stmt.get(), record_class.as_ref(), body) {
                        Ok(row) => {
                            op.rows_to_track |= row.to_track;
                            rows.bind(py).append(row.record)?;
                        }
                        Err(RowError::Value(e)) => op.set_error(OpError::Client(e)),
                        Err(RowError::Protocol(e)) => return Err(self.violation(py, &e)),
                    }
                }
                Event::CommandComplete(tag) => {
                    if let Some(op) = self.ops.front_mut() {
                        op.tag = Some(tag.to_owned());
                    }
                }
                Event::EmptyQuery => {
                    if let Some(op) = self.ops.front_mut() {
                        op.tag = Some(String::new());
                    }
                }
                Event::ReadyForQuery(_) => {
                    let Some(op) = self.ops.pop_front() else {
                        let e = Error::Protocol("ReadyForQuery without a pending operation".into());
                        return Err(self.violation(py, &e));
                    };
                    Self::complete(py, op, &self.registry, Self::out(py, &mut out))?;
                }
                Event::Error(fields) => {
                    let fatal = is_fatal(&fields);
                    let dict = fields_dict(py, &fields)?.unbind();
                    let startup = matches!(
                        self.ops.front(),
                        Some(Op {
                            kind: OpKind::Startup,
                            ..
                        })
                    );
                    match self.ops.front_mut() {
                        // The server closes the connection after these; no ReadyForQuery follows.
                        Some(_) if fatal || startup => {
                            let mut op = self.ops.pop_front().expect("front exists");
                            op.set_error(OpError::Server(dict));
                            Self::complete(py, op, &self.registry, Self::out(py, &mut out))?;
                        }
                        Some(op) => op.set_error(OpError::Server(dict)),
                        None => Self::out(py, &mut out).append((SERVER_ERROR, dict))?,
                    }
                }
                Event::ParameterDescription(body) => {
                    let oids = backend::parse_parameter_description(body)
                        .map_err(|e| self.violation(py, &e))?;
                    if let Some(Op {
                        kind: OpKind::Prepare { params, .. },
                        ..
                    }) = self.ops.front_mut()
                    {
                        *params = Some(oids);
                    }
                }
                Event::RowDescription(body) => {
                    let cols =
                        backend::parse_row_description(body).map_err(|e| self.violation(py, &e))?;
                    self.on_columns(py, cols)?;
                }
                Event::NoData => self.on_columns(py, Vec::new())?,
                Event::Notice(fields) => {
                    let dict = fields_dict(py, &fields)?;
                    Self::out(py, &mut out).append((NOTICE, dict))?;
                }
                Event::Notification(n) => {
                    Self::out(py, &mut out)
                        .append((NOTIFICATION, (n.pid, n.channel, n.payload)))?;
                }
                Event::CopyInResponse(_) => {
                    // Only the COPY API feeds data; anything else refuses, and the server
                    // answers with an error that completes the operation.
                    let mut buf = Vec::new();
                    frontend::copy_fail(
                        &mut buf,
                        "COPY FROM STDIN is not supported here; use the copy_* methods",
                    )
                    .map_err(|e| to_pyerr(py, &e))?;
                    Self::out(py, &mut out).append((SEND, PyBytes::new(py, &buf)))?;
                }
                Event::BindComplete => {
                    if let Some(op) = self.ops.front_mut() {
                        op.bound = true;
                    }
                }
                Event::CopyBothResponse(_) => {
                    Self::out(py, &mut out).append((REPLICATION_STARTED, py.None()))?;
                }
                Event::CopyData(payload) => {
                    let Some(Op {
                        kind: OpKind::Replication(stream),
                        ..
                    }) = self.ops.front_mut()
                    else {
                        continue;
                    };
                    let (item, reply) = match stream.on_copy_data(py, payload) {
                        Ok(v) => v,
                        // Garbage in the stream, or a value that cannot be decoded: the
                        // stream cannot go on past it.
                        Err(e) => {
                            self.core.fail(Error::Protocol(e.to_string()));
                            return Err(e);
                        }
                    };
                    // After our CopyDone the server accepts no status update (FATAL).
                    if reply && !stream.copy_done_sent {
                        let bytes = stream.status_update(false);
                        Self::out(py, &mut out).append((SEND, PyBytes::new(py, &bytes)))?;
                    }
                    if batch.is_none() {
                        // One list per feed, placed where the first item arrived.
                        let list = PyList::empty(py);
                        Self::out(py, &mut out).append((REPLICATION, &list))?;
                        batch = Some(list);
                    }
                    batch.as_ref().expect("set above").append(item)?;
                }
                Event::CopyDone => {
                    // The server ended the stream: answer with ours unless we started it.
                    if let Some(Op {
                        kind: OpKind::Replication(stream),
                        ..
                    }) = self.ops.front_mut()
                    {
                        if !stream.copy_done_sent {
                            stream.copy_done_sent = true;
                            let mut buf = Vec::new();
                            frontend::copy_done(&mut buf);
                            Self::out(py, &mut out).append((SEND, PyBytes::new(py, &buf)))?;
                        }
                    }
                }
                Event::AuthRequested(method) => {
                    let name = match method {
                        AuthMethod::Cleartext => "password",
                        AuthMethod::Md5 => "md5",
                        AuthMethod::Scram {
                            channel_binding: false,
                        } => "scram-sha-256",
                        AuthMethod::Scram {
                            channel_binding: true,
                        } => "scram-sha-256-plus",
                    };
                    Self::out(py, &mut out).append((AUTH, name))?;
                }
                Event::Authenticated
                | Event::ParameterStatus { .. }
                | Event::ParseComplete
                | Event::CloseComplete
                | Event::PortalSuspended
                | Event::CopyOutResponse(_) => {}
            }
            if self.core.has_output() {
                let bytes = self.core.take_output();
                Self::out(py, &mut out).append((SEND, PyBytes::new(py, &bytes)))?;
            }
        }
        // Authentication answers can be produced without an event (SASLContinue).
        if self.core.has_output() {
            let bytes = self.core.take_output();
            Self::out(py, &mut out).append((SEND, PyBytes::new(py, &bytes)))?;
        }
        Ok(out)
    }
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (user, database, params, password, max_message_size, tls=false, server_certificate=None, channel_binding="prefer", require_auth=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        user: String,
        database: String,
        params: Vec<(String, String)>,
        password: Option<Vec<u8>>,
        max_message_size: usize,
        tls: bool,
        server_certificate: Option<Vec<u8>>,
        channel_binding: &str,
        require_auth: Option<&str>,
    ) -> PyResult<Self> {
        let require_auth = require_auth
            .map(RequireAuth::parse)
            .transpose()
            .map_err(PyValueError::new_err)?;
        let channel_binding = match channel_binding {
            "disable" => ChannelBindingMode::Disable,
            "prefer" => ChannelBindingMode::Prefer,
            "require" => ChannelBindingMode::Require,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid channel_binding value: {other:?}"
                )))
            }
        };
        Ok(Self {
            core: core::Session::new(StartupConfig {
                user,
                database,
                params,
                password,
                max_message_size,
                tls,
                server_certificate,
                channel_binding,
                require_auth,
            }),
            ops: VecDeque::new(),
            registry: Arc::new(Registry::default()),
            pending_close: Vec::new(),
        })
    }

    /// The StartupMessage; queues the startup operation, which completes at the first
    /// ReadyForQuery.
    fn startup<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.core.startup_message().map_err(|e| to_pyerr(py, &e))?;
        self.ops.push_back(Op::new(OpKind::Startup));
        Ok(PyBytes::new(py, &bytes))
    }

    /// Processes received bytes (any bytes-like object, e.g. a slice of the protocol's
    /// receive buffer). Returns `None`, or a list of `(kind, payload)` items.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: PyBuffer<u8>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        if !data.is_c_contiguous() {
            return Err(PyValueError::new_err("feed() needs a contiguous buffer"));
        }
        // SAFETY: a C-contiguous buffer of `len_bytes` bytes, kept alive by `data` (its export
        // also keeps a bytearray from being resized) until it is released below.
        let bytes =
            unsafe { std::slice::from_raw_parts(data.buf_ptr().cast::<u8>(), data.len_bytes()) };
        if !self.core.is_ready() {
            // Authentication releases the GIL (see `process`), so the bytes are copied first.
            self.core.feed(bytes);
            drop(data);
            return self.process(py, true);
        }
        // Messages are read where they were received, so a large result is never copied. The
        // GIL stays held, and the buffer is the protocol's own, which only the transport
        // writes to, between feeds. (A custom codec run meanwhile could in principle write to
        // it; every read is still bounds-checked against the lengths parsed from the headers.)
        // SAFETY: `data` is released only after `end_borrowed`, which runs even if processing
        // panics, and no event outlives `process`.
        unsafe { self.core.feed_borrowed(bytes) };
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(py, false)));
        self.core.end_borrowed();
        drop(data);
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Simple-protocol query (several statements allowed); completes with the last command tag.
    fn simple_query<'py>(&mut self, py: Python<'py>, sql: &str) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = self.new_request()?;
        req.simple_query(sql).map_err(|e| to_pyerr(py, &e))?;
        self.submit(py, req, OpKind::Simple)
    }

    /// Simple-protocol query completing with the rows of its last result set, their text
    /// values decoded by type (what replication connections and SQL commands without a
    /// prepared statement need).
    fn simple_rows<'py>(&mut self, py: Python<'py>, sql: &str) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = self.new_request()?;
        req.simple_query(sql).map_err(|e| to_pyerr(py, &e))?;
        self.submit(
            py,
            req,
            OpKind::SimpleRows {
                columns: Vec::new(),
                desc: None,
                rows: PyList::empty(py).unbind(),
            },
        )
    }

    /// Sends a START_REPLICATION command; the operation runs while the stream does and
    /// completes with the command tag after it ends. `start` is the position feedback starts
    /// from; `decode` turns pgoutput messages into Python objects (`parallel`: the stream uses
    /// streaming=parallel; `values`: "typed" or "raw", as for `PgOutputDecoder`).
    #[pyo3(signature = (command, start, decode, parallel=false, values="typed"))]
    fn start_replication<'py>(
        &mut self,
        py: Python<'py>,
        command: &str,
        start: u64,
        decode: bool,
        parallel: bool,
        values: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let raw = replication::raw(values)?;
        let mut req = self.new_request()?;
        req.simple_query(command).map_err(|e| to_pyerr(py, &e))?;
        let changes =
            decode.then(|| replication::ChangeDecoder::new(self.registry.clone(), parallel, raw));
        self.submit(
            py,
            req,
            OpKind::Replication(Box::new(replication::Stream::new(changes, start))),
        )
    }

    /// A standby status update with the current positions, to send now.
    #[pyo3(signature = (reply_requested=false))]
    fn replication_status<'py>(
        &mut self,
        py: Python<'py>,
        reply_requested: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let stream = self.stream_mut()?;
        Ok(PyBytes::new(py, &stream.status_update(reply_requested)))
    }

    /// Records that everything up to `lsn` is durably handled (flush position; never backwards).
    fn replication_ack(&mut self, lsn: u64) -> PyResult<()> {
        self.stream_mut()?.feedback.acknowledge(lsn);
        Ok(())
    }

    /// `(received, flushed)` positions of the running stream.
    fn replication_positions(&mut self) -> PyResult<(u64, u64)> {
        let f = &self.stream_mut()?.feedback;
        Ok((f.received(), f.flushed()))
    }

    /// CopyDone, ending the stream from the client side (None if already sent).
    fn copy_done<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let stream = self.stream_mut()?;
        if stream.copy_done_sent {
            return Ok(None);
        }
        stream.copy_done_sent = true;
        let mut buf = Vec::new();
        frontend::copy_done(&mut buf);
        Ok(Some(PyBytes::new(py, &buf)))
    }

    /// Parse + Describe + Sync; completes with a `Statement`, or `(Described,
    /// unknown_type_oids)` when types must be looked up first. An unnamed statement is only
    /// described here: executions send their own Parse (see `parse_bind_execute`).
    fn prepare<'py>(
        &mut self,
        py: Python<'py>,
        name: String,
        query: String,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = self.new_request()?;
        req.parse(&name, &query, &[])
            .map_err(|e| to_pyerr(py, &e))?;
        req.describe_statement(&name)
            .map_err(|e| to_pyerr(py, &e))?;
        req.sync();
        self.submit(
            py,
            req,
            OpKind::Prepare {
                name,
                query,
                params: None,
                columns: None,
            },
        )
    }

    /// Bind + Execute + Sync; completes with `(rows, command_tag)`. `limit` 0 means all rows;
    /// rows are `record_class` instances when one is given.
    #[pyo3(signature = (stmt, args, limit=0, record_class=None))]
    fn bind_execute<'py>(
        &mut self,
        py: Python<'py>,
        stmt: Bound<'py, Statement>,
        args: &Bound<'py, PyAny>,
        limit: i32,
        record_class: Option<Py<PyType>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = self.new_request()?;
        encode_bind(py, &mut req, stmt.get(), args)?;
        req.execute("", limit).map_err(|e| to_pyerr(py, &e))?;
        req.sync();
        let rows = PyList::empty(py).unbind();
        let kind = OpKind::Query {
            stmt: stmt.unbind(),
            rows,
            record_class,
            verify: false,
            redescribed: false,
        };
        self.submit(py, req, kind)
    }

    /// Parse (unnamed, with the parameter types of a description kept client-side) + Bind +
    /// Describe portal + Execute + Sync: one round trip without a named statement. Completes
    /// with `(rows, tag)`, or `(rows, tag, statement)` when the columns had changed and the
    /// statement was rebuilt from the new description.
    #[pyo3(signature = (stmt, args, limit=0, record_class=None))]
    fn parse_bind_execute<'py>(
        &mut self,
        py: Python<'py>,
        stmt: Bound<'py, Statement>,
        args: &Bound<'py, PyAny>,
        limit: i32,
        record_class: Option<Py<PyType>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let st = stmt.get();
        let mut req = self.new_request()?;
        req.parse("", &st.query, &st.param_oids)
            .map_err(|e| to_pyerr(py, &e))?;
        encode_bind(py, &mut req, st, args)?;
        req.describe_portal("").map_err(|e| to_pyerr(py, &e))?;
        req.execute("", limit).map_err(|e| to_pyerr(py, &e))?;
        req.sync();
        let rows = PyList::empty(py).unbind();
        let kind = OpKind::Query {
            stmt: stmt.unbind(),
            rows,
            record_class,
            verify: true,
            redescribed: false,
        };
        self.submit(py, req, kind)
    }

    /// One chunk of a pipelined `executemany`: Bind + Execute per row until `max_bytes`, and the
    /// single Sync after the last row. Returns `(bytes, more)`.
    ///
    /// On the first chunk a bad row raises before anything is queued. On a later chunk, part of
    /// the batch is already on the wire: the chunk then ends with a deliberately failing Execute
    /// and the Sync, so the server rolls the whole implicit transaction back, and the operation
    /// completes with the row's error.
    fn executemany<'py>(
        &mut self,
        py: Python<'py>,
        stmt: &Bound<'py, Statement>,
        mut rows: Bound<'py, PyIterator>,
        max_bytes: usize,
        first: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let st = stmt.get();
        let mut req = if first {
            let mut req = self.new_request()?;
            if st.name.is_empty() {
                // The unnamed statement may have been replaced since it was described.
                req.parse("", &st.query, &st.param_oids)
                    .map_err(|e| to_pyerr(py, &e))?;
            }
            req
        } else {
            Request::new()
        };
        let mut more = true;
        let mut failure = None;
        loop {
            let row = match rows.next() {
                None => {
                    more = false;
                    break;
                }
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                Some(Ok(row)) => row,
            };
            let mark = req.mark();
            let encoded = encode_bind(py, &mut req, st, &row)
                .and_then(|()| req.execute("", 0).map_err(|e| to_pyerr(py, &e)));
            if let Err(e) = encoded {
                req.rollback(mark);
                failure = Some(e);
                break;
            }
            if req.byte_len() >= max_bytes {
                break;
            }
        }
        if let Some(err) = failure {
            if first {
                return Err(err);
            }
            req.execute(ABORT_PORTAL, 0).map_err(|e| to_pyerr(py, &e))?;
            req.sync();
            let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
            if let Some(op) = self.ops.back_mut() {
                op.set_error(OpError::Client(err));
            }
            return Ok((PyBytes::new(py, &bytes), false));
        }
        if !more {
            req.sync();
        }
        if first {
            Ok((self.submit(py, req, OpKind::Many)?, more))
        } else {
            let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
            Ok((PyBytes::new(py, &bytes), more))
        }
    }

    /// Ends a batch whose remaining rows will not be sent (the sending task was cancelled):
    /// a failing Execute and the Sync, so nothing of the batch commits.
    fn abort_batch<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = Request::new();
        req.execute(ABORT_PORTAL, 0).map_err(|e| to_pyerr(py, &e))?;
        req.sync();
        let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Builds a statement described earlier, once its unknown types were introspected; types
    /// still unknown travel as text.
    fn build_statement(
        &self,
        py: Python<'_>,
        described: &Bound<'_, Described>,
    ) -> PyResult<Statement> {
        Ok(Statement::build(py, described.get(), &self.registry, true)?
            .expect("unknown types allowed"))
    }

    /// Records introspected types (rows of `pgoxide.introspection.TYPES_QUERY`).
    fn add_types(&mut self, rows: Vec<TypeRow>) {
        Arc::make_mut(&mut self.registry).add_types(rows);
    }

    /// Whether the registry knows a non-builtin type.
    fn knows_type(&self, oid: Oid) -> bool {
        self.registry.types.contains_key(&oid)
    }

    /// `(schema, name, kind)` of a type, from the builtin catalogue or the registry; kind is
    /// asyncpg's: scalar, array, composite, range, multirange, domain, enum.
    fn type_info(&self, oid: Oid) -> Option<(String, String, &'static str)> {
        if let Some(t) = pgoxide_proto::catalog::lookup(oid) {
            let kind = match (t.element, t.kind) {
                (e, _) if e != 0 => "array",
                (_, b'c') => "composite",
                (_, b'r') => "range",
                (_, b'm') => "multirange",
                _ => "scalar",
            };
            return Some(("pg_catalog".to_owned(), t.name.to_owned(), kind));
        }
        let info = self.registry.types.get(&oid)?;
        let kind = match info.kind {
            TypeKind::Enum => "enum",
            TypeKind::Domain { .. } => "domain",
            TypeKind::Composite { .. } => "composite",
            TypeKind::Range { .. } => "range",
            TypeKind::Multirange { .. } => "multirange",
            TypeKind::Array { .. } => "array",
            TypeKind::Base => "scalar",
        };
        Some((info.schema.clone(), info.name.clone(), kind))
    }

    /// Registers a user codec for `oid` (asyncpg's `set_type_codec`).
    fn set_user_codec(
        &mut self,
        oid: Oid,
        encoder: Py<PyAny>,
        decoder: Py<PyAny>,
        format: &str,
    ) -> PyResult<()> {
        let format = match format {
            "text" => ExchangeFormat::Text,
            "binary" => ExchangeFormat::Binary,
            "tuple" => ExchangeFormat::Tuple,
            other => {
                return Err(PyValueError::new_err(format!(
                    "format must be 'text', 'binary' or 'tuple', not {other:?}"
                )))
            }
        };
        let registry = Arc::make_mut(&mut self.registry);
        registry.builtin_formats.remove(&oid);
        registry.user_codecs.insert(
            oid,
            Arc::new(UserCodec {
                encoder,
                decoder,
                format,
            }),
        );
        Ok(())
    }

    /// Makes `oid` travel in the binary format of the builtin type `builtin_name`
    /// (asyncpg's `set_builtin_type_codec`).
    fn set_builtin_format(&mut self, oid: Oid, builtin_name: &str) -> PyResult<()> {
        let format = match builtin_name {
            "hstore" | "pg_contrib.hstore" => None,
            name => Some(
                types::builtin_by_name(name.trim_start_matches("pg_catalog."))
                    .ok_or_else(|| {
                        PyValueError::new_err(format!("{builtin_name:?} is not a builtin codec"))
                    })?
                    .1,
            ),
        };
        let registry = Arc::make_mut(&mut self.registry);
        registry.user_codecs.remove(&oid);
        if let Some(b) = format {
            registry.builtin_formats.insert(oid, b);
        } else {
            registry.builtin_formats.remove(&oid);
            let info = registry.types.entry(oid).or_insert_with(|| TypeInfo {
                schema: String::new(),
                name: "hstore".to_owned(),
                kind: TypeKind::Base,
            });
            "hstore".clone_into(&mut info.name);
            info.kind = TypeKind::Base;
        }
        Ok(())
    }

    /// Removes a user or builtin codec set for `oid` (asyncpg's `reset_type_codec`).
    fn reset_codec(&mut self, oid: Oid) {
        let registry = Arc::make_mut(&mut self.registry);
        registry.user_codecs.remove(&oid);
        registry.builtin_formats.remove(&oid);
    }

    /// Closes a prepared statement with the next request (no round trip of its own).
    fn close_statement(&mut self, name: String) {
        self.pending_close.push(name);
    }

    /// The Terminate message; the session is closed afterwards.
    fn terminate<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.core.terminate())
    }

    /// Marks the session failed (the transport was lost); pending operations are the caller's
    /// to fail.
    fn connection_lost(&mut self, reason: String) {
        self.core.fail(Error::Protocol(reason));
        self.ops.clear();
    }

    #[getter]
    fn pending_ops(&self) -> usize {
        self.ops.len()
    }

    #[getter]
    fn is_ready(&self) -> bool {
        self.core.is_ready()
    }

    /// Whether the server accepted the client (AuthenticationOk). An error before that may
    /// be retried with another encryption method; one after it ends the attempt.
    #[getter]
    fn authenticated(&self) -> bool {
        self.core.is_authenticated()
    }

    /// `'I'` idle, `'T'` in a transaction block, `'E'` in a failed transaction block.
    #[getter]
    fn transaction_status(&self) -> char {
        self.core.transaction_status().as_char()
    }

    #[getter]
    fn backend_pid(&self) -> i32 {
        self.core.backend_pid()
    }

    #[getter]
    fn backend_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.core.backend_key())
    }

    /// Server parameters reported by ParameterStatus (server_version, TimeZone, ...).
    #[getter]
    fn server_parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.core.server_params() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
}
