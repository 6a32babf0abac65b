//! `pgoxide._pgoxide`: the thin PyO3 binding over `pgoxide-proto`. It converts arguments and
//! results and maps errors; the protocol lives in the core crate.

mod codec;
mod errors;
mod pycache;
mod record;
mod registry;
mod replication;
mod session;
mod statement;

use pyo3::pymodule;

#[pymodule]
mod _pgoxide {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::record::{Record, RecordDesc};
    #[pymodule_export]
    use super::replication::{
        Begin, BeginPrepare, Commit, CommitPrepared, Delete, Insert, Keepalive, LogicalMessage,
        Origin, PgOutputDecoder, Prepare, Relation, RelationColumn, RollbackPrepared, StreamAbort,
        StreamCommit, StreamPrepare, StreamStart, StreamStop, Truncate, TypeDefinition,
        UnchangedToast, Update, XLogData,
    };
    #[pymodule_export]
    use super::session::Session;
    #[pymodule_export]
    use super::statement::{Described, Statement};

    /// A CancelRequest packet for the backend `pid` with its secret `key`.
    #[pyfunction]
    fn cancel_request<'py>(
        py: Python<'py>,
        pid: i32,
        key: &[u8],
    ) -> Bound<'py, pyo3::types::PyBytes> {
        let mut out = Vec::with_capacity(12 + key.len());
        pgoxide_proto::frontend::cancel_request(&mut out, pid, key);
        pyo3::types::PyBytes::new(py, &out)
    }

    /// The SSLRequest packet.
    #[pyfunction]
    fn ssl_request(py: Python<'_>) -> Bound<'_, pyo3::types::PyBytes> {
        let mut out = Vec::with_capacity(8);
        pgoxide_proto::frontend::ssl_request(&mut out);
        pyo3::types::PyBytes::new(py, &out)
    }

    /// Checks `host` against the server certificate `der` as libpq's `verify-full` does;
    /// raises ValueError with libpq's message when it does not match.
    #[pyfunction]
    fn verify_host_name(der: &[u8], host: &str) -> PyResult<()> {
        pgoxide_proto::certificate::verify_host_name(der, host)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }

    /// Checks a `require_auth` setting; raises ValueError with libpq's message when invalid.
    #[pyfunction]
    fn check_require_auth(text: &str) -> PyResult<()> {
        pgoxide_proto::auth::policy::RequireAuth::parse(text)
            .map(drop)
            .map_err(pyo3::exceptions::PyValueError::new_err)
    }

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        super::record::install_traverse(m.py());
        m.add("UUID", super::codec::uuid_class(m.py())?)?;
        m.add(
            "DEFAULT_MAX_MESSAGE_SIZE",
            pgoxide_proto::framing::DEFAULT_MAX_MESSAGE_SIZE,
        )?;
        m.add(
            "UNCHANGED",
            super::replication::unchanged(m.py())?.clone_ref(m.py()),
        )?;
        super::session::export_item_kinds(m)?;
        // What a statement may change in the session (Session.take_effects), for the pool.
        for (name, flag) in [
            ("EFFECT_SETTINGS", pgoxide_proto::effects::SETTINGS),
            ("EFFECT_LISTEN", pgoxide_proto::effects::LISTEN),
            ("EFFECT_ADVISORY", pgoxide_proto::effects::ADVISORY),
            ("EFFECT_TEMP", pgoxide_proto::effects::TEMP),
            ("EFFECT_CURSORS", pgoxide_proto::effects::CURSORS),
            ("EFFECT_UNKNOWN", pgoxide_proto::effects::UNKNOWN),
        ] {
            m.add(name, flag)?;
        }
        Ok(())
    }
}
