//! The streaming replication sub-protocol carried in CopyData once START_REPLICATION has
//! switched the connection to CopyBoth: XLogData and primary keepalives from the server,
//! standby status updates from the client, and the rules for which positions to report.

use std::fmt;

use crate::backend::Cursor;
use crate::error::{Error, Result};
use crate::frontend;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
pub const PG_EPOCH_OFFSET_USECS: i64 = 946_684_800 * 1_000_000;

/// A WAL position (`pg_lsn`), shown as PostgreSQL shows it: `16/B374D848`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl std::str::FromStr for Lsn {
    type Err = Error;

    /// `X/Y` with one to eight hex digits on each side, as pg_lsn_in accepts.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::decode(format!("invalid pg_lsn value: {s:?}"));
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let half = |t: &str| {
            if t.is_empty() || t.len() > 8 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            u32::from_str_radix(t, 16).map_err(|_| bad())
        };
        Ok(Lsn((u64::from(half(hi)?) << 32) | u64::from(half(lo)?)))
    }
}

/// One message of the replication stream (the payload of a server CopyData).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMessage<'a> {
    /// WAL data; for logical replication, exactly one output-plugin message.
    XLogData {
        data_start: u64,
        wal_end: u64,
        send_time: i64,
        data: &'a [u8],
    },
    /// The server's position and clock; `reply_requested` asks for a status update at once.
    Keepalive {
        wal_end: u64,
        send_time: i64,
        reply_requested: bool,
    },
}

impl<'a> StreamMessage<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut c = Cursor::new(payload, "replication CopyData");
        match c.u8()? {
            b'w' => Ok(StreamMessage::XLogData {
                data_start: c.i64()? as u64,
                wal_end: c.i64()? as u64,
                send_time: c.i64()?,
                data: c.rest(),
            }),
            b'k' => {
                let msg = StreamMessage::Keepalive {
                    wal_end: c.i64()? as u64,
                    send_time: c.i64()?,
                    reply_requested: match c.u8()? {
                        0 => false,
                        1 => true,
                        other => {
                            return Err(Error::protocol(format!(
                                "malformed primary keepalive message (reply flag {other})"
                            )))
                        }
                    },
                };
                c.finish()?;
                Ok(msg)
            }
            other => Err(Error::protocol(format!(
                "unexpected replication message type {:?}",
                char::from(other)
            ))),
        }
    }
}

/// Appends a CopyData holding a standby status update.
pub fn standby_status_update(
    buf: &mut Vec<u8>,
    write: u64,
    flush: u64,
    apply: u64,
    client_time: i64,
    reply_requested: bool,
) {
    let mut payload = Vec::with_capacity(34);
    payload.push(b'r');
    payload.extend_from_slice(&write.to_be_bytes());
    payload.extend_from_slice(&flush.to_be_bytes());
    payload.extend_from_slice(&apply.to_be_bytes());
    payload.extend_from_slice(&client_time.to_be_bytes());
    payload.push(u8::from(reply_requested));
    frontend::copy_data(buf, &payload).expect("a status update is 34 bytes");
}

/// Which positions a consumer reports, from what it received and what its user acknowledged.
///
/// The flush position — the only one that moves the slot — comes from acknowledgements and
/// never goes backwards. When the user has acknowledged everything received, a keepalive's WAL
/// end is safe to confirm too (the server sends it after all data before it), so a quiet or
/// filtered database does not pin WAL forever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Highest position received (data or keepalive).
    received: u64,
    /// Highest position of received data (XLogData with a position).
    last_data: u64,
    /// Highest position acknowledged, plus idle advances.
    flushed: u64,
}

impl Feedback {
    /// Starts at the position streaming starts from (the slot's, when the caller knows it).
    pub fn new(start: u64) -> Self {
        Self {
            received: start,
            last_data: 0,
            flushed: start,
        }
    }

    pub fn on_data(&mut self, data_start: u64) {
        // Relation and Type messages (and Begin before Origin) carry 0: not a position.
        if data_start != 0 {
            self.received = self.received.max(data_start);
            self.last_data = self.last_data.max(data_start);
        }
    }

    pub fn on_keepalive(&mut self, wal_end: u64) {
        self.received = self.received.max(wal_end);
        if self.flushed >= self.last_data {
            self.flushed = self.flushed.max(wal_end);
        }
    }

    /// The user has durably handled everything up to `lsn`.
    pub fn acknowledge(&mut self, lsn: u64) {
        self.flushed = self.flushed.max(lsn);
    }

    pub fn flushed(&self) -> u64 {
        self.flushed
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// The status update reporting these positions (write ≥ flush; apply = flush).
    pub fn status_update(&self, buf: &mut Vec<u8>, client_time: i64, reply_requested: bool) {
        let write = self.received.max(self.flushed);
        standby_status_update(
            buf,
            write,
            self.flushed,
            self.flushed,
            client_time,
            reply_requested,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text() {
        for (text, value) in [
            ("0/0", 0),
            ("16/B374D848", 0x16_B374_D848),
            ("FFFFFFFF/FFFFFFFF", u64::MAX),
        ] {
            assert_eq!(text.parse::<Lsn>().unwrap(), Lsn(value));
            assert_eq!(Lsn(value).to_string(), text);
        }
        assert_eq!("a/b".parse::<Lsn>().unwrap(), Lsn(0xA_0000_000B));
        for bad in [
            "",
            "1",
            "/1",
            "1/",
            "123456789/0",
            "g/0",
            "1/2/3",
            " 1/2",
            "+1/2",
        ] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_xlogdata_and_keepalive() {
        let mut w = vec![b'w'];
        w.extend_from_slice(&5u64.to_be_bytes());
        w.extend_from_slice(&6u64.to_be_bytes());
        w.extend_from_slice(&7i64.to_be_bytes());
        w.extend_from_slice(b"Bpayload");
        assert_eq!(
            StreamMessage::parse(&w).unwrap(),
            StreamMessage::XLogData {
                data_start: 5,
                wal_end: 6,
                send_time: 7,
                data: b"Bpayload"
            }
        );
        let mut k = vec![b'k'];
        k.extend_from_slice(&9u64.to_be_bytes());
        k.extend_from_slice(&10i64.to_be_bytes());
        k.push(1);
        assert_eq!(
            StreamMessage::parse(&k).unwrap(),
            StreamMessage::Keepalive {
                wal_end: 9,
                send_time: 10,
                reply_requested: true
            }
        );
        for bad in [
            &k[..5],
            &[&k[..], &[0][..]].concat()[..],
            b"x",
            b"",
            &w[..10],
        ] {
            assert!(StreamMessage::parse(bad).is_err());
        }
        let mut two = k.clone();
        *two.last_mut().unwrap() = 2;
        assert!(StreamMessage::parse(&two).is_err());
    }

    #[test]
    fn status_update_layout() {
        let mut buf = Vec::new();
        standby_status_update(&mut buf, 1, 2, 3, 4, true);
        assert_eq!(buf[0], b'd');
        assert_eq!(u32::from_be_bytes(buf[1..5].try_into().unwrap()), 4 + 34);
        assert_eq!(buf[5], b'r');
        assert_eq!(u64::from_be_bytes(buf[6..14].try_into().unwrap()), 1);
        assert_eq!(u64::from_be_bytes(buf[14..22].try_into().unwrap()), 2);
        assert_eq!(u64::from_be_bytes(buf[22..30].try_into().unwrap()), 3);
        assert_eq!(i64::from_be_bytes(buf[30..38].try_into().unwrap()), 4);
        assert_eq!(buf[38], 1);
        assert_eq!(buf.len(), 39);
    }

    #[test]
    fn flush_follows_acknowledgements_and_idle_keepalives() {
        let mut f = Feedback::new(100);
        // Nothing received yet: a keepalive may be confirmed.
        f.on_keepalive(150);
        assert_eq!((f.flushed(), f.received()), (150, 150));
        // Data arrives; until it is acknowledged keepalives do not move the flush position.
        f.on_data(0); // a Relation message: no position
        f.on_data(160);
        f.on_data(170);
        f.on_keepalive(200);
        assert_eq!((f.flushed(), f.received()), (150, 200));
        f.acknowledge(160);
        f.on_keepalive(210);
        assert_eq!(f.flushed(), 160);
        // Everything acknowledged: idle again.
        f.acknowledge(170);
        f.on_keepalive(220);
        assert_eq!(f.flushed(), 220);
        // Never backwards, whatever the user says.
        f.acknowledge(10);
        assert_eq!(f.flushed(), 220);
        let mut buf = Vec::new();
        f.status_update(&mut buf, 0, false);
        assert_eq!(u64::from_be_bytes(buf[6..14].try_into().unwrap()), 220);
    }
}
