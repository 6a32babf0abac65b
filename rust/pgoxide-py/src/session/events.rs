//! The event loop of a feed: the core session frames the received messages into events, and
//! each event is handled here by a small function. Rows are decoded straight into the front
//! operation's result; only what completed goes back to Python.

use std::collections::VecDeque;
use std::sync::Arc;

use pgoxide_proto::backend::{self, Column, ErrorFields};
use pgoxide_proto::session::{AuthMethod, Event};
use pgoxide_proto::{frontend, Error};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::copy::CopyOp;
use super::items::{
    Items, ABORTED, AUTH, COPY_IN, NOTICE, NOTIFICATION, REPLICATION_STARTED, SERVER_ERROR,
};
use super::ops::{Op, OpError, OpKind};
use super::rows::{decode_row, text_row, RowError};
use super::Session;
use crate::errors::{interface_error, to_pyerr};
use crate::registry::Registry;
use crate::replication::Stream;

impl Session {
    /// Processes received bytes (see `Session.feed`), read where they were received when the
    /// session is ready, copied while it authenticates.
    pub(super) fn feed_buffer<'py>(
        &mut self,
        py: Python<'py>,
        data: PyBuffer<u8>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
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

    /// Handles the messages received so far; `may_detach`: whether the GIL may be released
    /// while authenticating (only when the received bytes were copied).
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        may_detach: bool,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let core = &mut self.core;
        let mut handler = Handler {
            py,
            ops: &mut self.ops,
            registry: &self.registry,
            items: Items::new(py),
        };
        loop {
            // Authentication may run PBKDF2 (milliseconds): let other threads run meanwhile.
            let event = if !may_detach || core.is_ready() {
                core.next_event()
            } else {
                let core = &mut *core;
                py.detach(move || core.next_event())
            };
            let event = match event {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(to_pyerr(py, &e)),
            };
            if let Err(stop) = handler.on_event(event) {
                if let Some(e) = stop.fail {
                    core.fail(e);
                }
                return Err(stop.raise);
            }
            if core.has_output() {
                handler.items.send(&core.take_output())?;
            }
        }
        // Authentication answers can be produced without an event (SASLContinue).
        if core.has_output() {
            handler.items.send(&core.take_output())?;
        }
        handler.items.finish()
    }
}

/// Why a feed stops early: the error to raise, and the one to fail the session with when the
/// connection cannot go on.
struct Stop {
    raise: PyErr,
    fail: Option<Error>,
}

impl From<PyErr> for Stop {
    fn from(raise: PyErr) -> Self {
        Self { raise, fail: None }
    }
}

impl Stop {
    /// The server broke the protocol: the session is failed.
    fn violation(py: Python<'_>, e: Error) -> Self {
        Self {
            raise: to_pyerr(py, &e),
            fail: Some(e),
        }
    }
}

/// What handling an event may touch: everything of the session but the core, whose receive
/// buffer the event borrows.
struct Handler<'s, 'py> {
    py: Python<'py>,
    ops: &'s mut VecDeque<Op>,
    registry: &'s Arc<Registry>,
    items: Items<'py>,
}

impl Handler<'_, '_> {
    // Inlined into the loop of `process`, where the match was before it had functions of its
    // own: as a call per row it cost about 6 % more instructions on a result of int columns
    // (callgrind), and LLVM stopped inlining `DataRow::next_field` into the row decoders.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn on_event(&mut self, event: Event<'_>) -> Result<(), Stop> {
        let py = self.py;
        match event {
            Event::DataRow(body) => self.on_data_row(body)?,
            Event::CommandComplete(tag) => self.on_execute_end(Some(tag))?,
            Event::EmptyQuery => self.on_execute_end(Some(""))?,
            Event::PortalSuspended => self.on_execute_end(None)?,
            Event::ReadyForQuery(_) => self.on_ready_for_query()?,
            Event::Error(fields) => self.on_error(&fields)?,
            Event::ParameterDescription(body) => self.on_parameter_description(body)?,
            Event::RowDescription(body) => {
                let cols =
                    backend::parse_row_description(body).map_err(|e| Stop::violation(py, e))?;
                self.on_columns(cols)?;
            }
            Event::NoData => self.on_columns(Vec::new())?,
            Event::Notice(fields) => self.items.push(NOTICE, fields_dict(py, &fields)?)?,
            Event::Notification(n) => {
                self.items
                    .push(NOTIFICATION, (n.pid, n.channel, n.payload))?;
            }
            Event::CopyInResponse(_) => self.on_copy_in()?,
            Event::CopyOutResponse(_) => self.on_copy_out(),
            Event::BindComplete => {
                if let Some(op) = self.ops.front_mut() {
                    op.bound = true;
                }
            }
            Event::CopyBothResponse(_) => self.items.push(REPLICATION_STARTED, py.None())?,
            Event::CopyData(payload) => self.on_copy_data(payload)?,
            Event::CopyDone => self.on_copy_done()?,
            Event::AuthRequested(method) => self.items.push(AUTH, auth_name(method))?,
            Event::Authenticated
            | Event::ParameterStatus { .. }
            | Event::ParseComplete
            | Event::CloseComplete => {}
        }
        Ok(())
    }

    /// A row of the front operation's result, decoded by its statement's codecs (or, for a
    /// simple query, by the types of its text values). After an error, rows are skipped.
    fn on_data_row(&mut self, body: &[u8]) -> Result<(), Stop> {
        let py = self.py;
        let Some(op) = self.ops.front_mut() else {
            return Ok(());
        };
        if op.error.is_some() {
            return Ok(());
        }
        let (row, rows) = match &op.kind {
            OpKind::SimpleRows {
                columns,
                desc: Some(desc),
                rows,
            } => (text_row(py, columns, desc, body), rows),
            OpKind::Query {
                stmt,
                rows,
                record_class,
                ..
            } => (
                decode_row(py, stmt.get(), record_class.as_ref(), body),
                rows,
            ),
            _ => return Ok(()),
        };
        match row {
            Ok(row) => {
                op.rows_to_track |= row.to_track;
                rows.bind(py).append(row.record)?;
            }
            Err(RowError::Value(e)) => op.set_error(OpError::Client(e)),
            Err(RowError::Protocol(e)) => return Err(Stop::violation(py, e)),
        }
        Ok(())
    }

    /// CommandComplete (a tag), EmptyQueryResponse (an empty tag) or PortalSuspended (none):
    /// an operation without a Sync of its own is complete.
    fn on_execute_end(&mut self, tag: Option<&str>) -> PyResult<()> {
        let Some(op) = self.ops.front_mut() else {
            return Ok(());
        };
        if let Some(tag) = tag {
            op.tag = Some(tag.to_owned());
        }
        if !op.sync {
            let op = self.ops.pop_front().expect("front exists");
            op.complete(self.py, self.registry, &mut self.items)?;
        }
        Ok(())
    }

    /// The front operation is complete.
    fn on_ready_for_query(&mut self) -> Result<(), Stop> {
        let Some(op) = self.ops.pop_front() else {
            let e = Error::Protocol("ReadyForQuery without a pending operation".into());
            return Err(Stop::violation(self.py, e));
        };
        op.complete(self.py, self.registry, &mut self.items)?;
        Ok(())
    }

    /// An ErrorResponse fails the front operation, which completes at ReadyForQuery, or at
    /// once when no ReadyForQuery follows.
    fn on_error(&mut self, fields: &ErrorFields<'_>) -> PyResult<()> {
        let py = self.py;
        let fatal = is_fatal(fields);
        let dict = fields_dict(py, fields)?.unbind();
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
                op.complete(py, self.registry, &mut self.items)?;
            }
            Some(op) if !op.sync => {
                // No ReadyForQuery is owed to it: it fails now, and the server skips the
                // operations after it up to the next Sync.
                let mut op = self.ops.pop_front().expect("front exists");
                op.set_error(OpError::Server(dict));
                op.complete(py, self.registry, &mut self.items)?;
                while self.ops.front().is_some_and(|op| !op.sync) {
                    self.ops.pop_front();
                    self.items.push(ABORTED, py.None())?;
                }
            }
            Some(op) => op.set_error(OpError::Server(dict)),
            None => self.items.push(SERVER_ERROR, dict)?,
        }
        Ok(())
    }

    /// The parameter types of a statement being prepared.
    fn on_parameter_description(&mut self, body: &[u8]) -> Result<(), Stop> {
        let oids =
            backend::parse_parameter_description(body).map_err(|e| Stop::violation(self.py, e))?;
        if let Some(Op {
            kind: OpKind::Prepare { params, .. },
            ..
        }) = self.ops.front_mut()
        {
            *params = Some(oids);
        }
        Ok(())
    }

    /// RowDescription or NoData.
    fn on_columns(&mut self, cols: Vec<Column>) -> PyResult<()> {
        match self.ops.front_mut() {
            Some(op) => op.on_columns(self.py, cols, self.registry),
            None => Ok(()),
        }
    }

    /// The server waits for COPY data: the COPY API's operation sends it; anything else
    /// (`execute("COPY ... FROM STDIN")`) fails with a pointer to the COPY methods, and the
    /// CopyFail sent for it ends the COPY on the server.
    fn on_copy_in(&mut self) -> PyResult<()> {
        match self.ops.front_mut() {
            Some(Op {
                kind: OpKind::Copy(CopyOp::In),
                ..
            }) => self.items.push(COPY_IN, self.py.None()),
            front => {
                let why = "COPY FROM STDIN cannot run through execute() or fetch(): use \
                           copy_to_table(), copy_records_to_table() or copy_in()";
                if let Some(op) = front {
                    op.set_error(OpError::Client(interface_error(self.py, why.into())));
                }
                let mut buf = Vec::new();
                frontend::copy_fail(&mut buf, why).map_err(|e| to_pyerr(self.py, &e))?;
                self.items.send(&buf)
            }
        }
    }

    /// The server sends COPY data: the COPY API's operation takes it; anything else fails
    /// with a pointer to the COPY methods, and the data is skipped.
    fn on_copy_out(&mut self) {
        if let Some(op) = self.ops.front_mut() {
            if !matches!(op.kind, OpKind::Copy(_)) {
                let why = "COPY TO STDOUT cannot run through execute() or fetch(): use \
                           copy_from_query(), copy_from_table(), copy_records_from_query() or \
                           copy_out()";
                op.set_error(OpError::Client(interface_error(self.py, why.into())));
            }
        }
    }

    /// A CopyData: COPY TO STDOUT data, or a message of the replication stream.
    fn on_copy_data(&mut self, payload: &[u8]) -> Result<(), Stop> {
        let py = self.py;
        let Some(op) = self.ops.front_mut() else {
            return Ok(());
        };
        if let OpKind::Copy(copy) = &mut op.kind {
            if op.error.is_some() {
                return Ok(());
            }
            return match copy.receive(py, payload, &mut self.items) {
                Ok(()) => Ok(()),
                Err(RowError::Value(e)) => {
                    op.set_error(OpError::Client(e));
                    Ok(())
                }
                Err(RowError::Protocol(e)) => Err(Stop::violation(py, e)),
            };
        }
        self.on_replication_data(payload)
    }

    /// A message of the replication stream, with the status update the server asked for.
    fn on_replication_data(&mut self, payload: &[u8]) -> Result<(), Stop> {
        let Some(stream) = self.ops.front_mut().and_then(Op::stream_mut) else {
            return Ok(());
        };
        // Garbage in the stream, or a value that cannot be decoded: the stream cannot go on
        // past it.
        let (item, update) = stream.receive(self.py, payload).map_err(|e| Stop {
            fail: Some(Error::Protocol(e.to_string())),
            raise: e,
        })?;
        if let Some(bytes) = update {
            self.items.send(&bytes)?;
        }
        self.items.replication(item)?;
        Ok(())
    }

    /// The server ended its COPY data, or the replication stream: answer the stream with our
    /// CopyDone unless we sent it first.
    fn on_copy_done(&mut self) -> Result<(), Stop> {
        if let Some(Op {
            kind: OpKind::Copy(copy),
            error: None,
            ..
        }) = self.ops.front()
        {
            return copy.finish().map_err(|e| Stop::violation(self.py, e));
        }
        let stream = self.ops.front_mut().and_then(Op::stream_mut);
        match stream.and_then(Stream::copy_done) {
            Some(bytes) => Ok(self.items.send(&bytes)?),
            None => Ok(()),
        }
    }
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

/// The `require_auth` name of the method the server asked for.
fn auth_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Cleartext => "password",
        AuthMethod::Md5 => "md5",
        AuthMethod::Scram {
            channel_binding: false,
        } => "scram-sha-256",
        AuthMethod::Scram {
            channel_binding: true,
        } => "scram-sha-256-plus",
    }
}
