//! Sans-IO core of pgoxide: the PostgreSQL frontend/backend protocol without sockets, clocks
//! or an async runtime.
//!
//! Bytes go in through [`session::Session::feed`]; events come out of
//! [`session::Session::next_event`]; bytes to send are produced by [`frontend`] encoders and
//! [`session::Request`] builders. Everything here is plain Rust so it can be tested against
//! recorded byte streams and fuzzed.

pub mod auth;
pub mod backend;
pub mod catalog;
pub mod certificate;
pub mod codec;
pub mod copy;
pub mod effects;
pub mod error;
pub mod framing;
pub mod frontend;
pub mod pgoutput;
pub mod replication;
pub mod session;
pub mod types;

pub use error::Error;

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A backend message: tag, length, body.
    pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }
}
