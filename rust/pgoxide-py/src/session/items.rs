//! What `Session.feed` hands to Python: a list of `(kind, payload)` items. The kinds are
//! defined here only, and exported as the module constants `ITEM_*` of `pgoxide._pgoxide`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyModule};

/// Declares the item kinds, and the list of them under their Python names.
macro_rules! item_kinds {
    ($($(#[doc = $doc:literal])* $name:ident = $value:literal,)*) => {
        $($(#[doc = $doc])* pub const $name: u8 = $value;)*

        /// Every kind, under its name in `pgoxide._pgoxide`.
        const EXPORTED: &[(&str, u8)] = &[$((concat!("ITEM_", stringify!($name)), $name)),*];
    };
}

item_kinds! {
    /// An operation completed; the payload is its result.
    DONE = 0,
    /// An operation failed with a server error; the payload is its field dict.
    SERVER_ERROR = 1,
    /// An operation failed on the client side; the payload is the exception.
    CLIENT_ERROR = 2,
    /// A NoticeResponse; the payload is its field dict.
    NOTICE = 3,
    /// A NotificationResponse; the payload is `(pid, channel, payload)`.
    NOTIFICATION = 4,
    /// Bytes to send now.
    SEND = 5,
    /// A server error that arrived before the statement was bound: it never ran.
    SERVER_ERROR_UNEXECUTED = 6,
    /// The server asked for a password method and the session answered; the payload names it
    /// (`password`, `md5`, `scram-sha-256`, `scram-sha-256-plus`).
    AUTH = 7,
    /// Replication stream items (`XLogData`/`Keepalive`), a list per feed.
    REPLICATION = 8,
    /// START_REPLICATION was accepted: the stream runs (CopyBoth).
    REPLICATION_STARTED = 9,
    /// An operation without a Sync of its own was skipped by the server: an earlier one of
    /// the same Sync failed. No payload.
    ABORTED = 10,
    /// The server is ready for the data of a COPY FROM STDIN (CopyInResponse). No payload.
    COPY_IN = 11,
    /// COPY TO STDOUT data: the CopyData payloads of one feed joined, as bytes.
    COPY_DATA = 12,
    /// COPY TO STDOUT records, a list per feed.
    COPY_ROWS = 13,
}

/// Adds the item kinds to the module.
pub fn export(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for (name, kind) in EXPORTED {
        m.add(*name, *kind)?;
    }
    Ok(())
}

/// The items of one feed, in order; the list is made when the first item arrives.
pub struct Items<'py> {
    py: Python<'py>,
    list: Option<Bound<'py, PyList>>,
    /// The streamed items of this feed (replication messages or COPY records) and their kind,
    /// handed over as one list placed where the first of them arrived.
    streamed: Option<(u8, Bound<'py, PyList>)>,
    /// COPY TO STDOUT bytes received since the last item.
    copy_bytes: Vec<u8>,
}

impl<'py> Items<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Self {
            py,
            list: None,
            streamed: None,
            copy_bytes: Vec::new(),
        }
    }

    /// Appends a `(kind, payload)` item.
    pub fn push(&mut self, kind: u8, payload: impl IntoPyObject<'py>) -> PyResult<()> {
        if !self.copy_bytes.is_empty() {
            self.push_copy_bytes()?;
        }
        self.append(kind, payload)
    }

    fn append(&mut self, kind: u8, payload: impl IntoPyObject<'py>) -> PyResult<()> {
        let py = self.py;
        self.list
            .get_or_insert_with(|| PyList::empty(py))
            .append((kind, payload))
    }

    /// Hands over the COPY bytes collected so far, before the item that follows them.
    fn push_copy_bytes(&mut self) -> PyResult<()> {
        let bytes = PyBytes::new(self.py, &self.copy_bytes);
        self.copy_bytes.clear();
        self.append(COPY_DATA, bytes)
    }

    /// Appends bytes to send.
    pub fn send(&mut self, bytes: &[u8]) -> PyResult<()> {
        self.push(SEND, PyBytes::new(self.py, bytes))
    }

    /// Adds an item of the replication stream to this feed's list of them.
    pub fn replication(&mut self, item: Py<PyAny>) -> PyResult<()> {
        self.streamed(REPLICATION, item)
    }

    /// Adds a record of a COPY TO STDOUT to this feed's list of them.
    pub fn copy_row(&mut self, record: Py<PyAny>) -> PyResult<()> {
        self.streamed(COPY_ROWS, record)
    }

    /// Adds bytes of a COPY TO STDOUT; those of one feed are handed over together.
    pub fn copy_bytes(&mut self, data: &[u8]) {
        self.copy_bytes.extend_from_slice(data);
    }

    fn streamed(&mut self, kind: u8, item: Py<PyAny>) -> PyResult<()> {
        match &self.streamed {
            Some((k, list)) if *k == kind => list.append(item),
            _ => {
                let list = PyList::empty(self.py);
                self.push(kind, &list)?;
                list.append(item)?;
                self.streamed = Some((kind, list));
                Ok(())
            }
        }
    }

    /// The list of items, or None when nothing arrived.
    pub fn finish(mut self) -> PyResult<Option<Bound<'py, PyList>>> {
        if !self.copy_bytes.is_empty() {
            self.push_copy_bytes()?;
        }
        Ok(self.list)
    }
}
