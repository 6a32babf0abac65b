//! `Session`: the core state machine plus the FIFO of operations awaiting results.
//!
//! Python calls a request method (which returns the bytes to write and queues one operation),
//! then feeds received bytes. `feed` decodes every DataRow straight into a `Record` of the
//! operation's result and returns only what completed: one item per finished operation,
//! notification, notice or bytes to send. Nothing is called back per row or per message.
//!
//! The methods here extract arguments and queue requests; what they hand over lives in the
//! files of this folder: the operation kinds and their results (`ops`), rows and parameters
//! (`rows`), the event loop over the core's events (`events`), the items handed back to Python
//! (`items`), `executemany` batches (`batch`) and COPY data (`copy`).

mod batch;
mod copy;
mod events;
mod items;
mod ops;
mod rows;

use std::collections::VecDeque;
use std::sync::Arc;

use pgoxide_proto::auth::policy::RequireAuth;
use pgoxide_proto::effects;
use pgoxide_proto::session::{self as core, ChannelBindingMode, Request, StartupConfig};
use pgoxide_proto::types::Oid;
use pgoxide_proto::Error;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList, PyType};

use self::copy::{CopyOp, RecordsOut};
pub use self::items::export as export_item_kinds;
use self::ops::{Op, OpKind};
use self::rows::encode_bind;
use crate::errors::to_pyerr;
use crate::registry::{builtin_format, ExchangeFormat, Registry, TypeRow, UserCodec, ValueOptions};
use crate::replication;
use crate::statement::{Described, Statement};

#[pyclass(module = "pgoxide._pgoxide")]
pub struct Session {
    core: core::Session,
    ops: VecDeque<Op>,
    /// Non-builtin types and user codecs; copied on write so statements can keep a snapshot.
    registry: Arc<Registry>,
    /// Statements to close with the next request.
    pending_close: Vec<String>,
    /// Portals to close with the next request (exhausted cursors inside a block).
    pending_portal_close: Vec<String>,
    /// What the statements run since `take_effects` may have changed in the session
    /// (`pgoxide_proto::effects`), for a pool's reset.
    effects: u8,
    /// Requests submitted (pool's `max_queries`).
    requests: u64,
    /// Rows of the `executemany` batch being sent so far, which errors name.
    batch_rows: usize,
}

impl Session {
    fn new_request(&self) -> PyResult<Request> {
        let mut req = Request::new();
        for name in &self.pending_close {
            req.close_statement(name)
                .map_err(|e| Python::attach(|py| to_pyerr(py, &e)))?;
        }
        for name in &self.pending_portal_close {
            req.close_portal(name)
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
        self.pending_portal_close.clear();
        self.requests += 1;
        self.ops.push_back(Op::new(kind));
        Ok(PyBytes::new(py, &bytes))
    }

    /// Queues `req` as an operation that ends with its Sync, or (without `sync`) with its
    /// Execute: the request then ends with a Flush, so the server answers without waiting.
    fn submit_op<'py>(
        &mut self,
        py: Python<'py>,
        mut req: Request,
        kind: OpKind,
        sync: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if !sync {
            req.flush();
            let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
            self.pending_close.clear();
            self.pending_portal_close.clear();
            self.requests += 1;
            self.ops.push_back(Op::without_sync(kind));
            return Ok(PyBytes::new(py, &bytes));
        }
        req.sync();
        self.submit(py, req, kind)
    }

    /// Execute of `portal` (`limit` rows, 0 for all) after what `req` holds, queueing a query
    /// that completes with its rows (`record_class` instances when one is given); `verify`:
    /// the request describes the portal, whose columns are checked before any row is decoded.
    #[allow(clippy::too_many_arguments)]
    fn submit_query<'py>(
        &mut self,
        py: Python<'py>,
        mut req: Request,
        stmt: Bound<'py, Statement>,
        portal: &str,
        limit: i32,
        record_class: Option<Py<PyType>>,
        verify: bool,
        sync: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        req.execute(portal, limit).map_err(|e| to_pyerr(py, &e))?;
        let kind = OpKind::Query {
            stmt: stmt.unbind(),
            rows: PyList::empty(py).unbind(),
            record_class,
            verify,
            redescribed: false,
        };
        self.submit_op(py, req, kind, sync)
    }

    fn stream_mut(&mut self) -> PyResult<&mut replication::Stream> {
        self.ops
            .front_mut()
            .and_then(Op::stream_mut)
            .ok_or_else(|| PyValueError::new_err("no replication stream is running"))
    }
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (user, database, params, password, max_message_size, tls=false, server_certificate=None, channel_binding="prefer", require_auth=None, protocol_versions=(3, 0, 3, 0)))]
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
        protocol_versions: (u16, u16, u16, u16),
    ) -> PyResult<Self> {
        // (min major, min minor, max major, max minor): min_protocol_version and
        // max_protocol_version, already checked by the connection string's parser.
        let (min_major, min_minor, max_major, max_minor) = protocol_versions;
        let full = |major: u16, minor: u16| i32::from(major) << 16 | i32::from(minor);
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
                max_protocol_version: full(max_major, max_minor),
                min_protocol_version: full(min_major, min_minor),
            }),
            ops: VecDeque::new(),
            registry: Arc::new(Registry::default()),
            pending_close: Vec::new(),
            pending_portal_close: Vec::new(),
            effects: 0,
            requests: 0,
            batch_rows: 0,
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
        self.feed_buffer(py, data)
    }

    /// Simple-protocol query (several statements allowed); completes with the last command tag.
    fn simple_query<'py>(&mut self, py: Python<'py>, sql: &str) -> PyResult<Bound<'py, PyBytes>> {
        self.effects |= effects::session_effects(sql);
        let mut req = self.new_request()?;
        req.simple_query(sql).map_err(|e| to_pyerr(py, &e))?;
        self.submit(py, req, OpKind::Simple)
    }

    /// Simple-protocol query completing with the rows of its last result set, their text
    /// values decoded by type (what replication connections and SQL commands without a
    /// prepared statement need).
    fn simple_rows<'py>(&mut self, py: Python<'py>, sql: &str) -> PyResult<Bound<'py, PyBytes>> {
        self.effects |= effects::session_effects(sql);
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
        let update = self.stream_mut()?.status_update(reply_requested);
        Ok(PyBytes::new(py, &update))
    }

    /// Records that everything up to `lsn` is durably handled (flush position; never backwards).
    fn replication_ack(&mut self, lsn: u64) -> PyResult<()> {
        self.stream_mut()?.acknowledge(lsn);
        Ok(())
    }

    /// `(received, flushed)` positions of the running stream.
    fn replication_positions(&mut self) -> PyResult<(u64, u64)> {
        Ok(self.stream_mut()?.positions())
    }

    /// CopyDone, ending the stream from the client side (None if already sent).
    fn copy_done<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let done = self.stream_mut()?.copy_done();
        Ok(done.map(|bytes| PyBytes::new(py, &bytes)))
    }

    /// Sends a COPY statement (simple protocol) run by the COPY API; completes with its
    /// command tag. `direction` `"in"` (FROM STDIN: an `ITEM_COPY_IN` tells when to send the
    /// data) or `"out"` (TO STDOUT: `ITEM_COPY_DATA` bytes, or with `stmt` `ITEM_COPY_ROWS`
    /// of records decoded by its column codecs from binary COPY data, or from text COPY
    /// data with `text`).
    #[pyo3(signature = (sql, direction, stmt=None, record_class=None, text=false))]
    fn copy<'py>(
        &mut self,
        py: Python<'py>,
        sql: &str,
        direction: &str,
        stmt: Option<Py<Statement>>,
        record_class: Option<Py<PyType>>,
        text: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let op = match (direction, stmt) {
            ("in", _) => CopyOp::In,
            ("out", None) => CopyOp::Out,
            ("out", Some(stmt)) if text => CopyOp::TextRecords(Box::new(RecordsOut {
                stmt,
                record_class,
                reader: pgoxide_proto::copy::TextReader::new(),
            })),
            ("out", Some(stmt)) => CopyOp::Records(Box::new(RecordsOut {
                stmt,
                record_class,
                reader: pgoxide_proto::copy::BinaryReader::new(),
            })),
            (other, _) => {
                return Err(PyValueError::new_err(format!(
                    "invalid COPY direction: {other:?}"
                )))
            }
        };
        let mut req = self.new_request()?;
        req.simple_query(sql).map_err(|e| to_pyerr(py, &e))?;
        self.submit(py, req, OpKind::Copy(op))
    }

    /// One CopyData message with `data` (any contiguous bytes-like object).
    #[staticmethod]
    fn copy_data(py: Python<'_>, data: PyBuffer<u8>) -> PyResult<Bound<'_, PyBytes>> {
        if !data.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "copy_data() needs a contiguous buffer",
            ));
        }
        // SAFETY: a C-contiguous buffer of `len_bytes` bytes, kept alive by `data` while the
        // message is built (no Python code runs meanwhile).
        let bytes =
            unsafe { std::slice::from_raw_parts(data.buf_ptr().cast::<u8>(), data.len_bytes()) };
        let mut buf = Vec::with_capacity(bytes.len() + 5);
        pgoxide_proto::frontend::copy_data(&mut buf, bytes).map_err(|e| to_pyerr(py, &e))?;
        drop(data);
        Ok(PyBytes::new(py, &buf))
    }

    /// Records from `rows` encoded into one CopyData of about `max_bytes` (binary tuples with
    /// the column codecs of `stmt`, after the header when `header`; text lines with `text`).
    /// Returns `(message, records_in_it, more)`; `start` numbers the first record for errors.
    #[pyo3(signature = (stmt, rows, max_bytes, start, header, text=false))]
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    fn copy_records<'py>(
        py: Python<'py>,
        stmt: &Bound<'py, Statement>,
        rows: &Bound<'py, PyIterator>,
        max_bytes: usize,
        start: u64,
        header: bool,
        text: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, u64, bool)> {
        copy::encode_records(py, stmt.get(), rows, max_bytes, start, header, text)
    }

    /// Ends COPY FROM STDIN data: the binary trailer in a CopyData when `trailer`, then
    /// CopyDone.
    #[staticmethod]
    fn copy_in_done(py: Python<'_>, trailer: bool) -> PyResult<Bound<'_, PyBytes>> {
        let mut buf = Vec::new();
        if trailer {
            let mut end = Vec::new();
            pgoxide_proto::copy::write_trailer(&mut end);
            pgoxide_proto::frontend::copy_data(&mut buf, &end).map_err(|e| to_pyerr(py, &e))?;
        }
        pgoxide_proto::frontend::copy_done(&mut buf);
        Ok(PyBytes::new(py, &buf))
    }

    /// CopyFail: the server aborts the COPY FROM STDIN with `message` in its error.
    #[staticmethod]
    fn copy_in_fail<'py>(py: Python<'py>, message: &str) -> PyResult<Bound<'py, PyBytes>> {
        let mut buf = Vec::new();
        // A message with a NUL in it cannot be sent: cut it there.
        let message = message.split('\0').next().unwrap_or_default();
        pgoxide_proto::frontend::copy_fail(&mut buf, message).map_err(|e| to_pyerr(py, &e))?;
        Ok(PyBytes::new(py, &buf))
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
    /// rows are `record_class` instances when one is given. With a `portal` name and a
    /// `limit`, the portal stays open for `execute_portal` (the tag is None while rows remain);
    /// without `sync` the request ends with a Flush and the operation with its Execute.
    #[pyo3(signature = (stmt, args, limit=0, record_class=None, portal="", sync=true))]
    #[allow(clippy::too_many_arguments)]
    fn bind_execute<'py>(
        &mut self,
        py: Python<'py>,
        stmt: Bound<'py, Statement>,
        args: &Bound<'py, PyAny>,
        limit: i32,
        record_class: Option<Py<PyType>>,
        portal: &str,
        sync: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = self.new_request()?;
        encode_bind(py, &mut req, portal, stmt.get(), args)?;
        self.effects |= stmt.get().effects;
        self.submit_query(py, req, stmt, portal, limit, record_class, false, sync)
    }

    /// Parse (unnamed, with the parameter types of a description kept client-side) + Bind +
    /// Describe portal + Execute + Sync: one round trip without a named statement. Completes
    /// with `(rows, tag)`, or `(rows, tag, statement)` when the columns had changed and the
    /// statement was rebuilt from the new description. `portal` and `sync` as for
    /// `bind_execute`.
    #[pyo3(signature = (stmt, args, limit=0, record_class=None, portal="", sync=true))]
    #[allow(clippy::too_many_arguments)]
    fn parse_bind_execute<'py>(
        &mut self,
        py: Python<'py>,
        stmt: Bound<'py, Statement>,
        args: &Bound<'py, PyAny>,
        limit: i32,
        record_class: Option<Py<PyType>>,
        portal: &str,
        sync: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let st = stmt.get();
        let mut req = self.new_request()?;
        req.parse("", &st.query, &st.param_oids)
            .map_err(|e| to_pyerr(py, &e))?;
        encode_bind(py, &mut req, portal, st, args)?;
        self.effects |= st.effects;
        req.describe_portal(portal).map_err(|e| to_pyerr(py, &e))?;
        self.submit_query(py, req, stmt, portal, limit, record_class, true, sync)
    }

    /// Execute of an open `portal` of `stmt`: its next `limit` rows, as `bind_execute`.
    #[pyo3(signature = (stmt, portal, limit, record_class=None, sync=true))]
    fn execute_portal<'py>(
        &mut self,
        py: Python<'py>,
        stmt: Bound<'py, Statement>,
        portal: &str,
        limit: i32,
        record_class: Option<Py<PyType>>,
        sync: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let req = self.new_request()?;
        self.submit_query(py, req, stmt, portal, limit, record_class, false, sync)
    }

    /// Close of `portal` + Sync; completes with None.
    fn close_portal<'py>(
        &mut self,
        py: Python<'py>,
        portal: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = self.new_request()?;
        req.close_portal(portal).map_err(|e| to_pyerr(py, &e))?;
        self.submit_op(py, req, OpKind::Simple, true)
    }

    /// A Sync of its own, ending what operations without one began (an implicit transaction,
    /// or the skipping after an error); completes with None. With `abort`, a failing Execute
    /// comes first, so the implicit transaction is rolled back instead of committed (the
    /// operation then completes with that error).
    #[pyo3(signature = (abort=false))]
    fn sync<'py>(&mut self, py: Python<'py>, abort: bool) -> PyResult<Bound<'py, PyBytes>> {
        let mut req = self.new_request()?;
        if abort {
            batch::fail_implicit_transaction(py, &mut req)?;
        }
        self.submit_op(py, req, OpKind::Simple, true)
    }

    /// One chunk of a pipelined `executemany`: Bind + Execute per row until `max_bytes`, and the
    /// single Sync after the last row. Returns `(bytes, more)`.
    ///
    /// On the first chunk a bad row raises before anything is queued. On a later chunk, part of
    /// the batch is already on the wire: the chunk then ends with a deliberately failing Execute
    /// and the Sync, so the server rolls the whole implicit transaction back, and the operation
    /// completes with the row's error.
    ///
    /// With `collect` (`fetchmany`) the operation completes as a query does, with the rows of
    /// every execution (`record_class` instances when one is given) and the last tag.
    #[pyo3(signature = (stmt, rows, max_bytes, first, collect=false, record_class=None))]
    #[allow(clippy::too_many_arguments)]
    fn executemany<'py>(
        &mut self,
        py: Python<'py>,
        stmt: &Bound<'py, Statement>,
        rows: Bound<'py, PyIterator>,
        max_bytes: usize,
        first: bool,
        collect: bool,
        record_class: Option<Py<PyType>>,
    ) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let kind = if collect {
            OpKind::Query {
                stmt: stmt.clone().unbind(),
                rows: PyList::empty(py).unbind(),
                record_class,
                verify: false,
                redescribed: false,
            }
        } else {
            OpKind::Many
        };
        self.effects |= stmt.get().effects;
        self.batch_chunk(py, stmt, rows, max_bytes, first, kind)
    }

    /// Ends a batch whose remaining rows will not be sent (the sending task was cancelled):
    /// a failing Execute and the Sync, so nothing of the batch commits.
    fn abort_batch<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.batch_abort(py)
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

    /// Chooses value shapes (see `ValueOptions`): `infinity` is `"max"` or `"raise"`.
    /// Statements prepared afterwards follow them.
    fn set_value_options(&mut self, parse_json: bool, infinity: &str) -> PyResult<()> {
        let infinity_raises = match infinity {
            "max" => false,
            "raise" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "infinity must be 'max' or 'raise', not {other:?}"
                )))
            }
        };
        Arc::make_mut(&mut self.registry).options = ValueOptions {
            parse_json,
            infinity_raises,
        };
        Ok(())
    }

    /// Forgets every introspected type (asyncpg's `reload_schema_state`): statements
    /// prepared afterwards look them up again. User codecs stay.
    fn clear_types(&mut self) {
        Arc::make_mut(&mut self.registry).types.clear();
    }

    /// Whether the registry knows a non-builtin type.
    fn knows_type(&self, oid: Oid) -> bool {
        self.registry.types.contains_key(&oid)
    }

    /// `(schema, name, kind)` of a type, from the builtin catalogue or the registry; kind is
    /// asyncpg's: scalar, array, composite, range, multirange, domain, enum.
    fn type_info(&self, oid: Oid) -> Option<(String, String, &'static str)> {
        self.registry.type_info(oid)
    }

    /// Registers a user codec for `oid` (asyncpg's `set_type_codec`).
    fn set_user_codec(
        &mut self,
        oid: Oid,
        encoder: Py<PyAny>,
        decoder: Py<PyAny>,
        format: &str,
    ) -> PyResult<()> {
        let format = ExchangeFormat::parse(format)?;
        Arc::make_mut(&mut self.registry).set_user_codec(
            oid,
            UserCodec {
                encoder,
                decoder,
                format,
            },
        );
        Ok(())
    }

    /// Makes `oid` travel as the builtin type `builtin_name` does, in its binary format or
    /// with `text` in its text format (asyncpg's `set_builtin_type_codec`).
    fn set_builtin_format(
        &mut self,
        py: Python<'_>,
        oid: Oid,
        builtin_name: &str,
        text: bool,
    ) -> PyResult<()> {
        let format = builtin_format(py, builtin_name, text)?;
        Arc::make_mut(&mut self.registry).set_builtin_format(oid, format);
        Ok(())
    }

    /// Removes a user or builtin codec set for `oid` (asyncpg's `reset_type_codec`).
    fn reset_codec(&mut self, oid: Oid) {
        Arc::make_mut(&mut self.registry).reset_codec(oid);
    }

    /// Closes a prepared statement with the next request (no round trip of its own).
    fn close_statement(&mut self, name: String) {
        self.pending_close.push(name);
    }

    /// Closes a portal with the next request (no round trip of its own); closing one that
    /// no longer exists is not an error.
    fn close_portal_later(&mut self, name: String) {
        self.pending_portal_close.push(name);
    }

    /// The Terminate message; the session is closed afterwards.
    fn terminate<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.core.terminate())
    }

    /// Marks the session failed (the transport was lost); pending operations are the caller's
    /// to fail.
    fn connection_lost(&mut self, reason: String) {
        // What is sent afterwards (a stream's next window, say) fails as the connection
        // being gone, not as a protocol violation.
        self.core.fail(Error::Closed(reason));
        self.ops.clear();
    }

    /// What the statements run since the last call may have changed in the session: a union
    /// of `pgoxide_proto::effects` flags (see `pgoxide.pool`); cleared by the call.
    fn take_effects(&mut self) -> u8 {
        std::mem::take(&mut self.effects)
    }

    /// Adds effects the session may have (flags as for `take_effects`).
    fn add_effects(&mut self, flags: u8) {
        self.effects |= flags;
    }

    /// Requests submitted since the session started.
    #[getter]
    fn requests(&self) -> u64 {
        self.requests
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

    /// `(major, minor)` of the protocol in use: what was asked for, or the server's lower
    /// answer.
    #[getter]
    fn protocol_version(&self) -> (i32, i32) {
        let v = self.core.protocol_version();
        (v >> 16, v & 0xffff)
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
