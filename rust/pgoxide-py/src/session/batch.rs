//! `executemany`: a batch of Bind + Execute pairs sent in chunks, with one Sync after the last
//! row, and the way a batch that cannot be finished is rolled back.

use pgoxide_proto::backend::TransactionStatus;
use pgoxide_proto::session::Request;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator};

use super::ops::{OpError, OpKind};
use super::rows::encode_bind_row;
use super::Session;
use crate::errors::to_pyerr;
use crate::statement::Statement;

/// A portal name no client creates: executing it makes the server fail the current implicit
/// transaction, which is how a half-sent `executemany` batch is rolled back.
const ABORT_PORTAL: &str = "pgoxide: abandoned batch";

impl Session {
    /// One chunk of a batch (see `Session.executemany`): `(bytes, more)`; `kind` is the
    /// operation the first chunk queues.
    pub(super) fn batch_chunk<'py>(
        &mut self,
        py: Python<'py>,
        stmt: &Bound<'py, Statement>,
        mut rows: Bound<'py, PyIterator>,
        max_bytes: usize,
        first: bool,
        kind: OpKind,
    ) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let st = stmt.get();
        if first {
            self.batch_rows = 0;
        } else if self.ops.back().is_some_and(|op| op.error.is_some()) {
            // The server has failed the batch (it skips everything up to the Sync): send no
            // more rows, only the Sync that ends it.
            let mut req = Request::new();
            req.sync();
            let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
            return Ok((PyBytes::new(py, &bytes), false));
        }
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
            let encoded = encode_bind_row(py, &mut req, "", st, &row, Some(self.batch_rows))
                .and_then(|()| req.execute("", 0).map_err(|e| to_pyerr(py, &e)));
            self.batch_rows += 1;
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
            // Part of the batch is on the wire: the operation completes with the row's error.
            let bytes = if self.core.transaction_status() == TransactionStatus::InTransaction {
                // Inside a transaction block, as asyncpg: the chunks already sent stay applied
                // and the block stays usable (failing the batch would abort the block); the
                // rest of this chunk is not sent.
                let mut req = Request::new();
                req.sync();
                let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
                PyBytes::new(py, &bytes)
            } else {
                self.roll_back_batch(py, req)?
            };
            if let Some(op) = self.ops.back_mut() {
                op.set_error(OpError::Client(err));
            }
            return Ok((bytes, false));
        }
        if !more {
            req.sync();
        }
        if first {
            Ok((self.submit(py, req, kind)?, more))
        } else {
            let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
            Ok((PyBytes::new(py, &bytes), more))
        }
    }

    /// The end of a batch whose remaining rows will not be sent (see `Session.abort_batch`).
    pub(super) fn batch_abort<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.roll_back_batch(py, Request::new())
    }

    /// `req`, then a failing Execute and the Sync, so that the server rolls the whole implicit
    /// transaction of the batch back.
    fn roll_back_batch<'py>(
        &mut self,
        py: Python<'py>,
        mut req: Request,
    ) -> PyResult<Bound<'py, PyBytes>> {
        fail_implicit_transaction(py, &mut req)?;
        req.sync();
        let bytes = self.core.submit(&mut req).map_err(|e| to_pyerr(py, &e))?;
        Ok(PyBytes::new(py, &bytes))
    }
}

/// Appends an Execute that fails (of a portal no client creates), so the implicit transaction
/// it is part of rolls back at the next Sync.
pub(super) fn fail_implicit_transaction(py: Python<'_>, req: &mut Request) -> PyResult<()> {
    req.execute(ABORT_PORTAL, 0).map_err(|e| to_pyerr(py, &e))
}
