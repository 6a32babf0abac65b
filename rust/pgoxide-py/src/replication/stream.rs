//! A replication stream in progress: its envelopes (XLogData, primary keepalive) as Python
//! objects, and the positions reported back to the server.

use pgoxide_proto::frontend;
use pgoxide_proto::replication::{Feedback, StreamMessage, PG_EPOCH_OFFSET_USECS};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::pgoutput::ChangeDecoder;
use super::{lsn, time};
use crate::errors::to_pyerr;

/// Microseconds since 2000-01-01 UTC now, for status updates.
fn pg_now() -> i64 {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    since_unix - PG_EPOCH_OFFSET_USECS
}

/// Primary keepalive: the server's WAL end and clock.
#[pyclass(frozen, module = "pgoxide.replication")]
pub struct Keepalive {
    wal_end: u64,
    send_time: i64,
    /// The server asked for a status update at once (pgoxide has already sent it).
    #[pyo3(get)]
    reply_requested: bool,
}

#[pymethods]
impl Keepalive {
    #[getter]
    fn wal_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        lsn(py, self.wal_end)
    }

    #[getter]
    fn send_time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        time(py, self.send_time)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Keepalive wal_end={} reply_requested={}>",
            pgoxide_proto::replication::Lsn(self.wal_end),
            self.reply_requested
        )
    }
}

/// WAL data: one output-plugin message, raw and (for pgoutput) decoded.
#[pyclass(frozen, module = "pgoxide.replication")]
pub struct XLogData {
    data_start: u64,
    wal_end: u64,
    send_time: i64,
    payload: Box<[u8]>,
    /// The decoded pgoutput message, or None when decoding is off.
    #[pyo3(get)]
    message: Option<Py<PyAny>>,
}

#[pymethods]
impl XLogData {
    /// The position of this message (0 for Relation and Type messages); acknowledge a
    /// Commit's to confirm its transaction.
    #[getter]
    fn data_start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        lsn(py, self.data_start)
    }

    #[getter]
    fn wal_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        lsn(py, self.wal_end)
    }

    #[getter]
    fn send_time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        time(py, self.send_time)
    }

    /// The raw plugin message.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.payload)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let message = self.message.as_ref().map_or_else(
            || format!("{} bytes", self.payload.len()),
            |m| {
                m.bind(py)
                    .repr()
                    .map_or_else(|_| "?".into(), |r| r.to_string())
            },
        );
        format!(
            "<XLogData {} {message}>",
            pgoxide_proto::replication::Lsn(self.data_start)
        )
    }
}

/// What a replication stream in progress keeps: the decoder and the reported positions.
pub struct Stream {
    /// None: XLogData is handed out raw (another plugin, or decoding turned off).
    changes: Option<ChangeDecoder>,
    feedback: Feedback,
    /// The client has sent CopyDone.
    copy_done_sent: bool,
}

impl Stream {
    pub fn new(changes: Option<ChangeDecoder>, start: u64) -> Self {
        Self {
            changes,
            feedback: Feedback::new(start),
            copy_done_sent: false,
        }
    }

    /// Handles one CopyData of the stream: the item for the consumer, and the status update to
    /// send now when the server asked for one.
    pub fn receive(
        &mut self,
        py: Python<'_>,
        payload: &[u8],
    ) -> PyResult<(Py<PyAny>, Option<Vec<u8>>)> {
        let (item, reply) = self.on_copy_data(py, payload)?;
        // After our CopyDone the server accepts no status update (FATAL).
        let update = (reply && !self.copy_done_sent).then(|| self.status_update(false));
        Ok((item, update))
    }

    /// The item of one CopyData, and whether the server asked for a status update.
    fn on_copy_data(&mut self, py: Python<'_>, payload: &[u8]) -> PyResult<(Py<PyAny>, bool)> {
        match StreamMessage::parse(payload).map_err(|e| to_pyerr(py, &e))? {
            StreamMessage::XLogData {
                data_start,
                wal_end,
                send_time,
                data,
            } => {
                self.feedback.on_data(data_start);
                let message = match &mut self.changes {
                    Some(decoder) => Some(decoder.decode(py, data)?),
                    None => None,
                };
                let item = XLogData {
                    data_start,
                    wal_end,
                    send_time,
                    payload: data.into(),
                    message,
                };
                Ok((Py::new(py, item)?.into_any(), false))
            }
            StreamMessage::Keepalive {
                wal_end,
                send_time,
                reply_requested,
            } => {
                self.feedback.on_keepalive(wal_end);
                let item = Keepalive {
                    wal_end,
                    send_time,
                    reply_requested,
                };
                Ok((Py::new(py, item)?.into_any(), reply_requested))
            }
        }
    }

    /// A CopyData with the current positions.
    pub fn status_update(&self, reply_requested: bool) -> Vec<u8> {
        let mut buf = Vec::with_capacity(39);
        self.feedback
            .status_update(&mut buf, pg_now(), reply_requested);
        buf
    }

    /// Records that everything up to `lsn` is durably handled (flush position; never
    /// backwards).
    pub fn acknowledge(&mut self, lsn: u64) {
        self.feedback.acknowledge(lsn);
    }

    /// `(received, flushed)` positions.
    pub fn positions(&self) -> (u64, u64) {
        (self.feedback.received(), self.feedback.flushed())
    }

    /// CopyDone, ending the stream from the client side; None when it was sent already.
    pub fn copy_done(&mut self) -> Option<Vec<u8>> {
        if self.copy_done_sent {
            return None;
        }
        self.copy_done_sent = true;
        let mut buf = Vec::new();
        frontend::copy_done(&mut buf);
        Some(buf)
    }
}
