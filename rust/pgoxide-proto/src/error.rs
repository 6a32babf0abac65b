//! Our own errors, kept apart from the server's (which arrive as [`crate::backend`] data).

use std::fmt;

/// A failure detected by the client. Every variant is fatal for the connection it happened on,
/// except [`Error::Encode`] and [`Error::Decode`], which concern one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The server sent something the protocol does not allow here, or a malformed message.
    Protocol(String),
    /// A message header announced more than the configured maximum size.
    MessageTooLarge { tag: u8, size: usize, limit: usize },
    /// Authentication could not be completed on the client side (missing password, bad server
    /// proof, unsupported mechanism).
    Auth(String),
    /// The client refused to go on because of its authentication policy (`require_auth`,
    /// `channel_binding`); the message uses libpq's wording.
    AuthPolicy(String),
    /// The server's certificate fails a check the client makes itself (the `verify-full` host
    /// name, or channel binding that its signature algorithm does not define).
    Certificate(String),
    /// A value could not be encoded for the wire.
    Encode(String),
    /// A value received from the server could not be decoded.
    Decode(String),
    /// The connection is gone (lost, or ended by the server's FATAL error): nothing more can
    /// be sent on it. Holds the reason.
    Closed(String),
}

impl Error {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        Error::Protocol(msg.into())
    }

    pub(crate) fn decode(msg: impl Into<String>) -> Self {
        Error::Decode(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(m) => write!(f, "protocol violation: {m}"),
            Error::MessageTooLarge { tag, size, limit } => write!(
                f,
                "protocol violation: server message {:?} of {size} bytes exceeds max_message_size ({limit} bytes)",
                char::from(*tag)
            ),
            Error::Closed(m) => write!(f, "connection is closed ({m})"),
            Error::Auth(m)
            | Error::AuthPolicy(m)
            | Error::Certificate(m)
            | Error::Encode(m)
            | Error::Decode(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
