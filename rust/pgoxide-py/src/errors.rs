//! The one table mapping core errors to Python exceptions.

use pgoxide_proto::Error;
use pyo3::prelude::*;

use crate::pycache;

/// Name of the `pgoxide.exceptions` class raised for a core error.
fn class_name(e: &Error) -> &'static str {
    match e {
        Error::Protocol(_) | Error::MessageTooLarge { .. } => "ProtocolError",
        Error::Auth(_) | Error::Certificate(_) => "InterfaceError",
        Error::AuthPolicy(_) => "AuthenticationPolicyError",
        Error::Encode(_) | Error::Decode(_) => "DataError",
        Error::Closed(_) => "ConnectionDoesNotExistError",
    }
}

pub fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
    new_error(py, class_name(e), e.to_string())
}

/// An instance of the named `pgoxide.exceptions` class, as a `PyErr`.
pub fn new_error(py: Python<'_>, class: &str, message: String) -> PyErr {
    match pycache::exception(py, class) {
        Ok(cls) => PyErr::from_type(cls, (message,)),
        Err(e) => e,
    }
}

pub fn data_error(py: Python<'_>, message: String) -> PyErr {
    new_error(py, "DataError", message)
}

pub fn interface_error(py: Python<'_>, message: String) -> PyErr {
    new_error(py, "InterfaceError", message)
}
