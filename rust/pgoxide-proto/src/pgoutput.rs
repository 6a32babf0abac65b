//! The pgoutput logical decoding protocol, versions 1 to 4: one message per XLogData.
//!
//! Messages borrow from the payload. Tuple data is validated when its message is parsed, so
//! iterating its values cannot fail later. Whether a message carries a transaction id depends
//! on whether it arrives inside a streamed block (Stream Start … Stream Stop), which
//! [`Decoder`] tracks; Stream Abort's extra fields depend on `streaming=parallel`.

use crate::backend::Cursor;
use crate::error::{Error, Result};

/// `Relation` message: a table's published columns, sent before its first change and again
/// whenever its definition may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation<'a> {
    pub xid: Option<u32>,
    pub oid: u32,
    /// The schema; `""` stands for `pg_catalog`.
    pub namespace: &'a str,
    pub name: &'a str,
    /// `relreplident`: `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<Column<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column<'a> {
    /// Part of the replica identity key (every column under REPLICA IDENTITY FULL).
    pub is_key: bool,
    pub name: &'a str,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// One column value of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    /// A TOASTed value that did not change and was not sent.
    Unchanged,
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

/// A tuple's values, validated; iterate with [`TupleData::values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TupleData<'a> {
    count: u16,
    body: &'a [u8],
}

impl<'a> TupleData<'a> {
    fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let count = c.i16()? as u16;
        let start = c.clone();
        let mut walk = c.clone();
        for _ in 0..count {
            read_value(&mut walk)?;
        }
        let consumed = start.remaining() - walk.remaining();
        let body = c.bytes(consumed)?;
        Ok(TupleData { count, body })
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn values(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let mut c = Cursor::new(self.body, "TupleData");
        (0..self.count).map(move |_| read_value(&mut c).expect("validated when parsed"))
    }
}

fn read_value<'a>(c: &mut Cursor<'a>) -> Result<Value<'a>> {
    Ok(match c.u8()? {
        b'n' => Value::Null,
        b'u' => Value::Unchanged,
        kind @ (b't' | b'b') => {
            let len = c.i32()?;
            let len = usize::try_from(len)
                .map_err(|_| Error::protocol(format!("malformed TupleData (length {len})")))?;
            let data = c.bytes(len)?;
            if kind == b't' {
                Value::Text(data)
            } else {
                Value::Binary(data)
            }
        }
        other => {
            return Err(Error::protocol(format!(
                "malformed TupleData (unrecognized data representation type {:?})",
                char::from(other)
            )))
        }
    })
}

/// Which old row an Update or Delete carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldTuple<'a> {
    /// `K`: the replica identity key columns (other columns null).
    Key(TupleData<'a>),
    /// `O`: the whole old row (REPLICA IDENTITY FULL).
    Full(TupleData<'a>),
}

impl<'a> OldTuple<'a> {
    pub fn data(&self) -> TupleData<'a> {
        match self {
            OldTuple::Key(t) | OldTuple::Full(t) => *t,
        }
    }
}

/// A two-phase transaction's prepare-side fields (Begin Prepare, Prepare, Stream Prepare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareInfo<'a> {
    pub prepare_lsn: u64,
    pub end_lsn: u64,
    pub prepare_time: i64,
    pub xid: u32,
    pub gid: &'a str,
}

/// One pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Begin {
        final_lsn: u64,
        commit_time: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    },
    Origin {
        lsn: u64,
        name: &'a str,
    },
    Relation(Relation<'a>),
    Type {
        xid: Option<u32>,
        oid: u32,
        namespace: &'a str,
        name: &'a str,
    },
    Insert {
        xid: Option<u32>,
        relation: u32,
        new: TupleData<'a>,
    },
    Update {
        xid: Option<u32>,
        relation: u32,
        old: Option<OldTuple<'a>>,
        new: TupleData<'a>,
    },
    Delete {
        xid: Option<u32>,
        relation: u32,
        old: OldTuple<'a>,
    },
    Truncate {
        xid: Option<u32>,
        cascade: bool,
        restart_identity: bool,
        relations: Vec<u32>,
    },
    /// `pg_logical_emit_message` output (with `messages` on).
    Message {
        xid: Option<u32>,
        transactional: bool,
        lsn: u64,
        prefix: &'a str,
        content: &'a [u8],
    },
    StreamStart {
        xid: u32,
        first_segment: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    },
    /// `abort` (LSN and time) is present only under `streaming=parallel`.
    StreamAbort {
        xid: u32,
        subxid: u32,
        abort: Option<(u64, i64)>,
    },
    BeginPrepare(PrepareInfo<'a>),
    Prepare(PrepareInfo<'a>),
    CommitPrepared {
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
        xid: u32,
        gid: &'a str,
    },
    RollbackPrepared {
        prepare_end_lsn: u64,
        rollback_end_lsn: u64,
        prepare_time: i64,
        rollback_time: i64,
        xid: u32,
        gid: &'a str,
    },
    StreamPrepare(PrepareInfo<'a>),
}

/// Decodes a sequence of pgoutput messages, tracking what changes their layout.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    in_stream: bool,
    parallel: bool,
}

impl Decoder {
    /// `parallel`: the stream was started with `streaming=parallel` (protocol 4), which adds
    /// the abort LSN and time to Stream Abort.
    pub fn new(parallel: bool) -> Self {
        Self {
            in_stream: false,
            parallel,
        }
    }

    /// Whether the last message left a streamed block open.
    pub fn in_stream(&self) -> bool {
        self.in_stream
    }

    /// Decodes one message. A malformed message is a protocol error and leaves the state as
    /// it was.
    pub fn decode<'a>(&mut self, payload: &'a [u8]) -> Result<Message<'a>> {
        let message = decode(payload, self.in_stream, self.parallel)?;
        match message {
            Message::StreamStart { .. } => self.in_stream = true,
            Message::StreamStop => self.in_stream = false,
            _ => {}
        }
        Ok(message)
    }
}

fn flags_zero(c: &mut Cursor<'_>, what: &str) -> Result<()> {
    match c.u8()? {
        0 => Ok(()),
        other => Err(Error::protocol(format!(
            "malformed {what} message (flags {other}, expected 0)"
        ))),
    }
}

fn lsn(c: &mut Cursor<'_>) -> Result<u64> {
    Ok(c.i64()? as u64)
}

fn prepare_info<'a>(c: &mut Cursor<'a>) -> Result<PrepareInfo<'a>> {
    Ok(PrepareInfo {
        prepare_lsn: lsn(c)?,
        end_lsn: lsn(c)?,
        prepare_time: c.i64()?,
        xid: c.u32()?,
        gid: c.cstr()?,
    })
}

/// Decodes one message; `in_stream` says whether it arrived inside a streamed block (so the
/// messages that may carry an xid do), `parallel` whether `streaming=parallel` is on.
pub fn decode(payload: &[u8], in_stream: bool, parallel: bool) -> Result<Message<'_>> {
    let mut c = Cursor::new(payload, "pgoutput");
    let tag = c.u8()?;
    let xid = |c: &mut Cursor<'_>| -> Result<Option<u32>> {
        if in_stream {
            c.u32().map(Some)
        } else {
            Ok(None)
        }
    };
    let message = match tag {
        b'B' => {
            let final_lsn = lsn(&mut c)?;
            if final_lsn == 0 {
                return Err(Error::protocol(
                    "malformed Begin message (final_lsn not set)",
                ));
            }
            Message::Begin {
                final_lsn,
                commit_time: c.i64()?,
                xid: c.u32()?,
            }
        }
        b'C' => {
            flags_zero(&mut c, "Commit")?;
            Message::Commit {
                commit_lsn: lsn(&mut c)?,
                end_lsn: lsn(&mut c)?,
                commit_time: c.i64()?,
            }
        }
        b'O' => Message::Origin {
            lsn: lsn(&mut c)?,
            name: c.cstr()?,
        },
        b'R' => {
            let xid = xid(&mut c)?;
            let oid = c.u32()?;
            let namespace = c.cstr()?;
            let name = c.cstr()?;
            let replica_identity = c.u8()?;
            let count = c.i16()?;
            let count = usize::try_from(count).map_err(|_| {
                Error::protocol(format!("malformed Relation message ({count} columns)"))
            })?;
            // Each column takes at least 10 bytes: never trust the count for an allocation.
            let mut columns = Vec::with_capacity(count.min(c.remaining() / 10));
            for _ in 0..count {
                columns.push(Column {
                    is_key: c.u8()? & 1 != 0,
                    name: c.cstr()?,
                    type_oid: c.u32()?,
                    type_modifier: c.i32()?,
                });
            }
            Message::Relation(Relation {
                xid,
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => Message::Type {
            xid: xid(&mut c)?,
            oid: c.u32()?,
            namespace: c.cstr()?,
            name: c.cstr()?,
        },
        b'I' => {
            let xid = xid(&mut c)?;
            let relation = c.u32()?;
            expect_marker(&mut c, b'N', "Insert")?;
            Message::Insert {
                xid,
                relation,
                new: TupleData::parse(&mut c)?,
            }
        }
        b'U' => {
            let xid = xid(&mut c)?;
            let relation = c.u32()?;
            let (old, new) = match c.u8()? {
                b'K' => {
                    let old = OldTuple::Key(TupleData::parse(&mut c)?);
                    expect_marker(&mut c, b'N', "Update")?;
                    (Some(old), TupleData::parse(&mut c)?)
                }
                b'O' => {
                    let old = OldTuple::Full(TupleData::parse(&mut c)?);
                    expect_marker(&mut c, b'N', "Update")?;
                    (Some(old), TupleData::parse(&mut c)?)
                }
                b'N' => (None, TupleData::parse(&mut c)?),
                other => return Err(bad_marker(other, "Update")),
            };
            Message::Update {
                xid,
                relation,
                old,
                new,
            }
        }
        b'D' => {
            let xid = xid(&mut c)?;
            let relation = c.u32()?;
            let old = match c.u8()? {
                b'K' => OldTuple::Key(TupleData::parse(&mut c)?),
                b'O' => OldTuple::Full(TupleData::parse(&mut c)?),
                other => return Err(bad_marker(other, "Delete")),
            };
            Message::Delete { xid, relation, old }
        }
        b'T' => {
            let xid = xid(&mut c)?;
            let count = c.i32()?;
            let count = usize::try_from(count).map_err(|_| {
                Error::protocol(format!("malformed Truncate message ({count} relations)"))
            })?;
            let options = c.u8()?;
            let mut relations = Vec::with_capacity(count.min(c.remaining() / 4));
            for _ in 0..count {
                relations.push(c.u32()?);
            }
            Message::Truncate {
                xid,
                cascade: options & 1 != 0,
                restart_identity: options & 2 != 0,
                relations,
            }
        }
        b'M' => {
            let xid = xid(&mut c)?;
            let transactional = c.u8()? & 1 != 0;
            let lsn = lsn(&mut c)?;
            let prefix = c.cstr()?;
            let len = c.i32()?;
            let len = usize::try_from(len).map_err(|_| {
                Error::protocol(format!("malformed Message message (length {len})"))
            })?;
            Message::Message {
                xid,
                transactional,
                lsn,
                prefix,
                content: c.bytes(len)?,
            }
        }
        b'S' => {
            let xid = c.u32()?;
            let first_segment = match c.u8()? {
                0 => false,
                1 => true,
                other => {
                    return Err(Error::protocol(format!(
                        "malformed Stream Start message (first_segment {other})"
                    )))
                }
            };
            Message::StreamStart { xid, first_segment }
        }
        b'E' => Message::StreamStop,
        b'c' => {
            let xid = c.u32()?;
            flags_zero(&mut c, "Stream Commit")?;
            Message::StreamCommit {
                xid,
                commit_lsn: lsn(&mut c)?,
                end_lsn: lsn(&mut c)?,
                commit_time: c.i64()?,
            }
        }
        b'A' => {
            let xid = c.u32()?;
            let subxid = c.u32()?;
            let abort = if parallel {
                Some((lsn(&mut c)?, c.i64()?))
            } else {
                None
            };
            Message::StreamAbort { xid, subxid, abort }
        }
        b'b' => Message::BeginPrepare(prepare_info(&mut c)?),
        b'P' => {
            flags_zero(&mut c, "Prepare")?;
            Message::Prepare(prepare_info(&mut c)?)
        }
        b'K' => {
            flags_zero(&mut c, "Commit Prepared")?;
            Message::CommitPrepared {
                commit_lsn: lsn(&mut c)?,
                end_lsn: lsn(&mut c)?,
                commit_time: c.i64()?,
                xid: c.u32()?,
                gid: c.cstr()?,
            }
        }
        b'r' => {
            flags_zero(&mut c, "Rollback Prepared")?;
            Message::RollbackPrepared {
                prepare_end_lsn: lsn(&mut c)?,
                rollback_end_lsn: lsn(&mut c)?,
                prepare_time: c.i64()?,
                rollback_time: c.i64()?,
                xid: c.u32()?,
                gid: c.cstr()?,
            }
        }
        b'p' => {
            flags_zero(&mut c, "Stream Prepare")?;
            Message::StreamPrepare(prepare_info(&mut c)?)
        }
        other => {
            return Err(Error::protocol(format!(
                "unknown pgoutput message type {:?}",
                char::from(other)
            )))
        }
    };
    c.finish()?;
    Ok(message)
}

fn expect_marker(c: &mut Cursor<'_>, want: u8, what: &str) -> Result<()> {
    match c.u8()? {
        m if m == want => Ok(()),
        other => Err(bad_marker(other, what)),
    }
}

fn bad_marker(got: u8, what: &str) -> Error {
    Error::protocol(format!(
        "malformed {what} message (unexpected tuple marker {:?})",
        char::from(got)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds message payloads field by field.
    #[derive(Default)]
    struct B(Vec<u8>);

    impl B {
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn i16(mut self, v: i16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn s(mut self, v: &str) -> Self {
            self.0.extend_from_slice(v.as_bytes());
            self.0.push(0);
            self
        }
        fn raw(mut self, v: &[u8]) -> Self {
            self.0.extend_from_slice(v);
            self
        }
    }

    fn tuple() -> B {
        // 4 columns: text "42", NULL, unchanged TOAST, binary 00 01
        B::default()
            .i16(4)
            .u8(b't')
            .i32(2)
            .raw(b"42")
            .u8(b'n')
            .u8(b'u')
            .u8(b'b')
            .i32(2)
            .raw(&[0, 1])
    }

    #[test]
    fn transaction_messages() {
        let begin = B::default().u8(b'B').i64(0x100).i64(-5).i32(77).0;
        assert_eq!(
            decode(&begin, false, false).unwrap(),
            Message::Begin {
                final_lsn: 0x100,
                commit_time: -5,
                xid: 77
            }
        );
        let zero = B::default().u8(b'B').i64(0).i64(1).i32(1).0;
        assert!(decode(&zero, false, false).is_err());
        let commit = B::default().u8(b'C').u8(0).i64(1).i64(2).i64(3).0;
        assert_eq!(
            decode(&commit, false, false).unwrap(),
            Message::Commit {
                commit_lsn: 1,
                end_lsn: 2,
                commit_time: 3
            }
        );
        let flagged = B::default().u8(b'C').u8(1).i64(1).i64(2).i64(3).0;
        assert!(decode(&flagged, false, false).is_err());
        let origin = B::default().u8(b'O').i64(9).s("node_a").0;
        assert_eq!(
            decode(&origin, false, false).unwrap(),
            Message::Origin {
                lsn: 9,
                name: "node_a"
            }
        );
    }

    #[test]
    fn relation_and_type_with_and_without_xid() {
        let body = B::default()
            .i32(16384)
            .s("public")
            .s("t")
            .u8(b'f')
            .i16(2)
            .u8(1)
            .s("id")
            .i32(23)
            .i32(-1)
            .u8(0)
            .s("v")
            .i32(25)
            .i32(-1)
            .0;
        let plain = [&[b'R'][..], &body].concat();
        let Message::Relation(r) = decode(&plain, false, false).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.xid, r.oid, r.namespace, r.name),
            (None, 16384, "public", "t")
        );
        assert_eq!(r.replica_identity, b'f');
        assert_eq!(
            r.columns,
            vec![
                Column {
                    is_key: true,
                    name: "id",
                    type_oid: 23,
                    type_modifier: -1
                },
                Column {
                    is_key: false,
                    name: "v",
                    type_oid: 25,
                    type_modifier: -1
                },
            ]
        );
        let streamed = [&[b'R'][..], &7u32.to_be_bytes(), &body].concat();
        let Message::Relation(r) = decode(&streamed, true, false).unwrap() else {
            panic!()
        };
        assert_eq!(r.xid, Some(7));
        // Read without the stream flag, the xid shifts every field: garbage, not a panic.
        assert!(decode(&streamed, false, false).is_err());
        let ty = B::default().u8(b'Y').i32(16390).s("public").s("mood").0;
        assert_eq!(
            decode(&ty, false, false).unwrap(),
            Message::Type {
                xid: None,
                oid: 16390,
                namespace: "public",
                name: "mood"
            }
        );
    }

    #[test]
    fn changes() {
        let insert = B::default().u8(b'I').i32(5).u8(b'N').raw(&tuple().0).0;
        let Message::Insert { relation, new, .. } = decode(&insert, false, false).unwrap() else {
            panic!()
        };
        assert_eq!(relation, 5);
        assert_eq!(
            new.values().collect::<Vec<_>>(),
            vec![
                Value::Text(b"42"),
                Value::Null,
                Value::Unchanged,
                Value::Binary(&[0, 1])
            ]
        );
        for (marker, full) in [(b'K', false), (b'O', true)] {
            let update = B::default()
                .u8(b'U')
                .i32(5)
                .u8(marker)
                .raw(&tuple().0)
                .u8(b'N')
                .raw(&tuple().0)
                .0;
            let Message::Update { old: Some(old), .. } = decode(&update, false, false).unwrap()
            else {
                panic!()
            };
            assert_eq!(matches!(old, OldTuple::Full(_)), full);
            assert_eq!(old.data().len(), 4);
            let delete = B::default().u8(b'D').i32(5).u8(marker).raw(&tuple().0).0;
            assert!(matches!(
                decode(&delete, false, false).unwrap(),
                Message::Delete { .. }
            ));
        }
        let update = B::default().u8(b'U').i32(5).u8(b'N').raw(&tuple().0).0;
        assert!(matches!(
            decode(&update, false, false).unwrap(),
            Message::Update { old: None, .. }
        ));
        let truncate = B::default().u8(b'T').i32(2).u8(3).i32(5).i32(6).0;
        assert_eq!(
            decode(&truncate, false, false).unwrap(),
            Message::Truncate {
                xid: None,
                cascade: true,
                restart_identity: true,
                relations: vec![5, 6]
            }
        );
        let message = B::default()
            .u8(b'M')
            .u8(1)
            .i64(8)
            .s("p")
            .i32(3)
            .raw(b"abc")
            .0;
        assert_eq!(
            decode(&message, false, false).unwrap(),
            Message::Message {
                xid: None,
                transactional: true,
                lsn: 8,
                prefix: "p",
                content: b"abc"
            }
        );
    }

    #[test]
    fn streaming_and_two_phase() {
        let mut d = Decoder::new(false);
        let start = B::default().u8(b'S').i32(9).u8(1).0;
        assert_eq!(
            d.decode(&start).unwrap(),
            Message::StreamStart {
                xid: 9,
                first_segment: true
            }
        );
        assert!(d.in_stream());
        let insert = B::default()
            .u8(b'I')
            .i32(9)
            .i32(5)
            .u8(b'N')
            .raw(&tuple().0)
            .0;
        assert!(matches!(
            d.decode(&insert).unwrap(),
            Message::Insert { xid: Some(9), .. }
        ));
        assert_eq!(d.decode(b"E").unwrap(), Message::StreamStop);
        assert!(!d.in_stream());
        let abort = B::default().u8(b'A').i32(9).i32(10).0;
        assert_eq!(
            d.decode(&abort).unwrap(),
            Message::StreamAbort {
                xid: 9,
                subxid: 10,
                abort: None
            }
        );
        // Under streaming=parallel the abort LSN and time follow; without it they are extra.
        let parallel = B::default().u8(b'A').i32(9).i32(9).i64(40).i64(41).0;
        assert_eq!(
            Decoder::new(true).decode(&parallel).unwrap(),
            Message::StreamAbort {
                xid: 9,
                subxid: 9,
                abort: Some((40, 41))
            }
        );
        assert!(Decoder::new(false).decode(&parallel).is_err());
        let commit = B::default().u8(b'c').i32(9).u8(0).i64(1).i64(2).i64(3).0;
        assert!(matches!(
            d.decode(&commit).unwrap(),
            Message::StreamCommit { xid: 9, .. }
        ));
        let info = B::default().i64(1).i64(2).i64(3).i32(4).s("gid-1");
        let bp = B::default().u8(b'b').raw(&info.0).0;
        let Message::BeginPrepare(p) = d.decode(&bp).unwrap() else {
            panic!()
        };
        assert_eq!(
            (p.prepare_lsn, p.end_lsn, p.prepare_time, p.xid, p.gid),
            (1, 2, 3, 4, "gid-1")
        );
        for tag in [b'P', b'p'] {
            let m = B::default().u8(tag).u8(0).raw(&info.0).0;
            assert!(d.decode(&m).is_ok());
        }
        let cp = B::default()
            .u8(b'K')
            .u8(0)
            .i64(1)
            .i64(2)
            .i64(3)
            .i32(4)
            .s("g")
            .0;
        assert!(matches!(
            d.decode(&cp).unwrap(),
            Message::CommitPrepared { gid: "g", .. }
        ));
        let rp = B::default()
            .u8(b'r')
            .u8(0)
            .i64(1)
            .i64(2)
            .i64(3)
            .i64(4)
            .i32(5)
            .s("g")
            .0;
        assert!(matches!(
            d.decode(&rp).unwrap(),
            Message::RollbackPrepared {
                rollback_time: 4,
                xid: 5,
                ..
            }
        ));
    }

    #[test]
    fn truncated_messages_are_errors() {
        let insert = B::default().u8(b'I').i32(5).u8(b'N').raw(&tuple().0).0;
        for end in 0..insert.len() {
            assert!(decode(&insert[..end], false, false).is_err(), "{end}");
        }
        let long = [&insert[..], b"x"].concat();
        assert!(decode(&long, false, false).is_err());
        let bad_kind = B::default().u8(b'I').i32(5).u8(b'N').i16(1).u8(b'z').0;
        assert!(decode(&bad_kind, false, false).is_err());
        let negative = B::default()
            .u8(b'I')
            .i32(5)
            .u8(b'N')
            .i16(1)
            .u8(b't')
            .i32(-1)
            .0;
        assert!(decode(&negative, false, false).is_err());
        assert!(decode(b"Z", false, false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(data: Vec<u8>, in_stream: bool, parallel: bool) {
            // Whatever parsed must be iterable without failing.
            if let Ok(Message::Insert { new, .. }) = decode(&data, in_stream, parallel) {
                let _ = new.values().count();
            }
        }

        #[test]
        fn garbage_after_a_known_tag_never_panics(
            tag in proptest::sample::select(b"BCORYIUDTMSEcAbPKrp".to_vec()),
            rest: Vec<u8>,
            in_stream: bool,
        ) {
            let data = [&[tag][..], &rest].concat();
            let _ = decode(&data, in_stream, true);
        }
    }
}
