//! `pgoxide._pgoxide`: the thin PyO3 binding over `pgoxide-proto`. It converts arguments and
//! results and maps errors; the protocol lives in the core crate.

mod decode;
mod encode;
mod errors;
mod pycache;
mod record;
mod session;
mod statement;

use pyo3::pymodule;

#[pymodule]
mod _pgoxide {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::record::{Record, RecordDesc};
    #[pymodule_export]
    use super::session::Session;
    #[pymodule_export]
    use super::statement::Statement;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add(
            "DEFAULT_MAX_MESSAGE_SIZE",
            pgoxide_proto::framing::DEFAULT_MAX_MESSAGE_SIZE,
        )?;
        Ok(())
    }
}
