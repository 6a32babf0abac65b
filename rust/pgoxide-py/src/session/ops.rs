//! The operations awaiting results: what each kind collects while its replies arrive, and the
//! item it completes with.

use std::sync::Arc;

use pgoxide_proto::backend::Column;
use pgoxide_proto::types::Oid;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use super::copy::CopyOp;
use super::items::{Items, CLIENT_ERROR, DONE, SERVER_ERROR, SERVER_ERROR_UNEXECUTED};
use crate::codec::{Codec, Resolver};
use crate::errors::data_error;
use crate::record::{Record, RecordDesc};
use crate::registry::Registry;
use crate::replication;
use crate::statement::{Described, Statement};

pub enum OpKind {
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
    /// A COPY run by the COPY API; completes with its command tag.
    Copy(CopyOp),
}

pub enum OpError {
    Server(Py<PyDict>),
    Client(PyErr),
}

pub struct Op {
    pub kind: OpKind,
    /// BindComplete arrived: the statement started executing. An error before that means it
    /// never ran, so a retry cannot repeat its effects.
    pub bound: bool,
    pub tag: Option<String>,
    pub error: Option<OpError>,
    /// The request ends with a Sync, and the operation with its ReadyForQuery. Without one
    /// (a portal read in the implicit transaction, an atomic pipeline) it ends with its
    /// Execute: CommandComplete, PortalSuspended, EmptyQueryResponse or an error.
    pub sync: bool,
    /// A row that `Record::track_result` must look at was added: without one, the pass over
    /// a finished result (and the cache misses of reading every row again) is skipped.
    pub rows_to_track: bool,
}

impl Op {
    pub fn new(kind: OpKind) -> Self {
        Self {
            kind,
            bound: false,
            tag: None,
            error: None,
            sync: true,
            rows_to_track: false,
        }
    }

    /// An operation whose request has no Sync of its own (see `sync`).
    pub fn without_sync(kind: OpKind) -> Self {
        Self {
            sync: false,
            ..Self::new(kind)
        }
    }

    pub fn set_error(&mut self, e: OpError) {
        self.error.get_or_insert(e);
    }

    /// The replication stream this operation runs, if it is one.
    pub fn stream_mut(&mut self) -> Option<&mut replication::Stream> {
        match &mut self.kind {
            OpKind::Replication(stream) => Some(stream),
            _ => None,
        }
    }

    /// Completes the operation with its result or error.
    pub fn complete(
        self,
        py: Python<'_>,
        registry: &Arc<Registry>,
        items: &mut Items<'_>,
    ) -> PyResult<()> {
        match self.error {
            Some(OpError::Server(fields)) => {
                let unexecuted =
                    matches!(self.kind, OpKind::Query { .. } | OpKind::Many) && !self.bound;
                items.push(
                    if unexecuted {
                        SERVER_ERROR_UNEXECUTED
                    } else {
                        SERVER_ERROR
                    },
                    fields,
                )
            }
            Some(OpError::Client(err)) => items.push(CLIENT_ERROR, err.into_value(py)),
            None => {
                let result: Py<PyAny> = match self.kind {
                    OpKind::Startup | OpKind::Many => py.None(),
                    OpKind::Simple | OpKind::Replication(_) | OpKind::Copy(_) => {
                        self.tag.into_pyobject(py)?.into_any().unbind()
                    }
                    OpKind::SimpleRows { rows, .. } => {
                        if self.rows_to_track {
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
                        if self.rows_to_track {
                            Record::track_result(rows.bind(py));
                        }
                        if redescribed {
                            (rows, self.tag, stmt)
                                .into_pyobject(py)?
                                .into_any()
                                .unbind()
                        } else {
                            (rows, self.tag).into_pyobject(py)?.into_any().unbind()
                        }
                    }
                    OpKind::Prepare {
                        name,
                        query,
                        params,
                        columns,
                    } => prepared(py, name, query, params, columns, registry)?,
                };
                items.push(DONE, result)
            }
        }
    }

    /// The statement's or portal's columns arrived (RowDescription or NoData).
    pub fn on_columns(
        &mut self,
        py: Python<'_>,
        cols: Vec<Column>,
        registry: &Arc<Registry>,
    ) -> PyResult<()> {
        match &mut self.kind {
            OpKind::Prepare { columns, .. } => *columns = Some(cols),
            OpKind::SimpleRows {
                columns,
                desc,
                rows,
            } => {
                // Each result set replaces the previous one: the last is kept.
                let mut resolver = Resolver::new(registry);
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
                let decodable = redescribe(py, stmt, redescribed, cols, registry)?;
                if !decodable {
                    self.set_error(OpError::Client(data_error(
                        py,
                        "the result columns of this query changed since it was last described and \
                         cannot be decoded as requested; it will be described again — run it again"
                            .into(),
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The result of a Prepare: a `Statement`, or `(Described, unknown_type_oids)` when types
/// must be introspected before the statement can be built.
fn prepared(
    py: Python<'_>,
    name: String,
    query: String,
    params: Option<Vec<u32>>,
    columns: Option<Vec<Column>>,
    registry: &Arc<Registry>,
) -> PyResult<Py<PyAny>> {
    let described = Described {
        name,
        query,
        param_oids: params.unwrap_or_default(),
        columns: columns.unwrap_or_default(),
    };
    Ok(match Statement::build(py, &described, registry, false)? {
        Ok(stmt) => Py::new(py, stmt)?.into_any(),
        Err(unknown) => (Py::new(py, described)?, unknown)
            .into_pyobject(py)?
            .into_any()
            .unbind(),
    })
}

/// Checks the columns a portal was described with against the description `stmt` kept. When
/// the schema changed since, the rows are decoded with the new description if its formats
/// match what the Bind asked for (`stmt` is replaced). False: the rows cannot be decoded.
fn redescribe(
    py: Python<'_>,
    stmt: &mut Py<Statement>,
    redescribed: &mut bool,
    cols: Vec<Column>,
    registry: &Arc<Registry>,
) -> PyResult<bool> {
    let old = stmt.get();
    let same = old.columns.len() == cols.len()
        && old
            .columns
            .iter()
            .zip(&cols)
            .all(|(a, b)| a.type_oid == b.type_oid && a.name == b.name);
    if same {
        return Ok(true);
    }
    let described = Described {
        name: String::new(),
        query: old.query.clone(),
        param_oids: old.param_oids.clone(),
        columns: cols,
    };
    match Statement::build(py, &described, registry, false)? {
        Ok(new) if new.result_formats_match(old) => {
            *stmt = Py::new(py, new)?;
            *redescribed = true;
            Ok(true)
        }
        _ => Ok(false),
    }
}
