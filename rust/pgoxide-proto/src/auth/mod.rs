//! Password authentication exchanges (MD5, SCRAM-SHA-256(-PLUS)) and the `require_auth`
//! policy.

pub mod md5;
pub mod policy;
pub mod scram;
