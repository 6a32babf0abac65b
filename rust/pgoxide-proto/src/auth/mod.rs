//! Password authentication exchanges: MD5 and SCRAM-SHA-256(-PLUS).

pub mod md5;
pub mod scram;
