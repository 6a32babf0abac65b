//! Replays byte streams recorded from a real server (tools/record_streams.py) through the
//! session: the requests it encodes must equal what was sent, authentication answers must be
//! recomputed exactly, and the events must not depend on how the server's bytes are split.

use pgoxide_proto::backend::{self, Cursor};
use pgoxide_proto::session::{ChannelBindingMode, Event, Request, Session, StartupConfig};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    AuthRequested,
    Authenticated,
    Param(String, String),
    Notice(String),
    Notification(String, String),
    Error(String),
    Ready(char),
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    Suspended,
    EmptyQuery,
    ParamDesc(Vec<u32>),
    RowDesc(Vec<String>),
    Row(Vec<Option<Vec<u8>>>),
    Complete(String),
    CopyOut,
    CopyBoth,
    CopyData(Vec<u8>),
    CopyDone,
}

fn owned(e: Event<'_>) -> Ev {
    match e {
        Event::AuthRequested(_) => Ev::AuthRequested,
        Event::Authenticated => Ev::Authenticated,
        Event::ParameterStatus { name, value } => Ev::Param(name.into(), value.into()),
        Event::Notice(f) => Ev::Notice(f.get(b'M').unwrap().into()),
        Event::Notification(n) => Ev::Notification(n.channel.into(), n.payload.into()),
        Event::Error(f) => Ev::Error(f.get(b'C').unwrap().into()),
        Event::ReadyForQuery(s) => Ev::Ready(s.as_char()),
        Event::ParseComplete => Ev::ParseComplete,
        Event::BindComplete => Ev::BindComplete,
        Event::CloseComplete => Ev::CloseComplete,
        Event::NoData => Ev::NoData,
        Event::PortalSuspended => Ev::Suspended,
        Event::EmptyQuery => Ev::EmptyQuery,
        Event::ParameterDescription(b) => {
            Ev::ParamDesc(backend::parse_parameter_description(b).unwrap())
        }
        Event::RowDescription(b) => Ev::RowDesc(
            backend::parse_row_description(b)
                .unwrap()
                .into_iter()
                .map(|c| c.name)
                .collect(),
        ),
        Event::DataRow(b) => {
            let mut row = backend::DataRow::parse(b).unwrap();
            let fields = (0..row.len())
                .map(|_| row.next_field().unwrap().map(<[u8]>::to_vec))
                .collect();
            row.finish().unwrap();
            Ev::Row(fields)
        }
        Event::CommandComplete(t) => Ev::Complete(t.into()),
        Event::CopyInResponse(_) => panic!("no COPY IN recorded"),
        Event::CopyOutResponse(_) => Ev::CopyOut,
        Event::CopyBothResponse(_) => Ev::CopyBoth,
        Event::CopyData(d) => Ev::CopyData(d.to_vec()),
        Event::CopyDone => Ev::CopyDone,
    }
}

fn load(name: &str) -> Vec<(char, Vec<u8>)> {
    let path = format!("{}/tests/streams/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (dir, hex) = l.split_once(' ').unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (dir.chars().next().unwrap(), bytes)
        })
        .collect()
}

/// Splits a chunk of frontend bytes into `(tag, body)` messages.
fn frontend_messages(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
        out.push((data[0], data[5..=len].to_vec()));
        data = &data[1 + len..];
    }
    out
}

/// Rebuilds the request a recorded client chunk holds, through the public Request API.
fn rebuild(messages: &[(u8, Vec<u8>)]) -> Request {
    let mut req = Request::new();
    for (tag, body) in messages {
        let mut c = Cursor::new(body, "frontend");
        match tag {
            b'Q' => req.simple_query(c.cstr().unwrap()).unwrap(),
            b'P' => {
                let name = c.cstr().unwrap().to_owned();
                let sql = c.cstr().unwrap().to_owned();
                let n = c.i16().unwrap();
                let types: Vec<u32> = (0..n).map(|_| c.u32().unwrap()).collect();
                req.parse(&name, &sql, &types).unwrap();
            }
            b'D' => {
                let kind = c.u8().unwrap();
                let name = c.cstr().unwrap();
                if kind == b'S' {
                    req.describe_statement(name).unwrap();
                } else {
                    req.describe_portal(name).unwrap();
                }
            }
            b'C' => {
                let kind = c.u8().unwrap();
                let name = c.cstr().unwrap();
                if kind == b'S' {
                    req.close_statement(name).unwrap();
                } else {
                    req.close_portal(name).unwrap();
                }
            }
            b'B' => {
                let portal = c.cstr().unwrap().to_owned();
                let stmt = c.cstr().unwrap().to_owned();
                let nf = c.i16().unwrap();
                let formats: Vec<i16> = (0..nf).map(|_| c.i16().unwrap()).collect();
                let np = c.i16().unwrap() as usize;
                let mut bind = req.bind(&portal, &stmt, &formats, np).unwrap();
                for _ in 0..np {
                    let len = c.i32().unwrap();
                    if len < 0 {
                        bind.null();
                    } else {
                        bind.begin_value()
                            .extend_from_slice(c.bytes(len as usize).unwrap());
                        bind.end_value().unwrap();
                    }
                }
                let nr = c.i16().unwrap();
                let results: Vec<i16> = (0..nr).map(|_| c.i16().unwrap()).collect();
                bind.finish(&results).unwrap();
            }
            b'E' => {
                let portal = c.cstr().unwrap().to_owned();
                req.execute(&portal, c.i32().unwrap()).unwrap();
            }
            b'S' => req.sync(),
            other => panic!("unexpected frontend message {:?}", char::from(*other)),
        }
    }
    req
}

fn startup_params(startup: &[u8]) -> Vec<(String, String)> {
    let mut c = Cursor::new(&startup[8..], "startup");
    let mut params = Vec::new();
    loop {
        let k = c.cstr().unwrap();
        if k.is_empty() {
            return params;
        }
        params.push((k.to_owned(), c.cstr().unwrap().to_owned()));
    }
}

/// Replays a recording. `split` chooses the size of each piece the server's bytes arrive in.
fn replay(
    name: &str,
    password: Option<&str>,
    mut split: impl FnMut(usize) -> usize,
) -> (Vec<Ev>, Session) {
    let stream = load(name);
    let params = startup_params(&stream[0].1);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut session = Session::new(StartupConfig {
        user: get("user"),
        database: get("database"),
        params: params
            .iter()
            .filter(|(k, _)| k != "user" && k != "database")
            .cloned()
            .collect(),
        password: password.map(|p| p.as_bytes().to_vec()),
        max_message_size: 1 << 20,
        tls: false,
        server_certificate: None,
        require_auth: None,
        channel_binding: ChannelBindingMode::Prefer,
        max_protocol_version: pgoxide_proto::frontend::PROTOCOL_3_0,
        min_protocol_version: pgoxide_proto::frontend::PROTOCOL_3_0,
    });
    assert_eq!(
        session.startup_message().unwrap(),
        stream[0].1,
        "startup message"
    );
    let mut events = Vec::new();
    for (dir, bytes) in &stream[1..] {
        if *dir == 'C' {
            let messages = frontend_messages(bytes);
            match messages[0].0 {
                // Authentication answers are computed by the session itself: they must match.
                b'p' => assert_eq!(
                    &session.take_output(),
                    bytes,
                    "{name}: authentication answer"
                ),
                b'X' => assert_eq!(session.terminate(), *bytes),
                // Replication: standby status updates and CopyDone go straight to the
                // socket, outside any request.
                b'd' | b'c' => {
                    for (tag, body) in &messages {
                        if *tag == b'd' {
                            assert_eq!((body[0], body.len()), (b'r', 34), "{name}: status update");
                        } else {
                            assert_eq!(*tag, b'c', "{name}: copy message");
                        }
                    }
                }
                _ => {
                    let mut req = rebuild(&messages);
                    assert_eq!(
                        &session.submit(&mut req).unwrap(),
                        bytes,
                        "{name}: request bytes"
                    );
                }
            }
            continue;
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = split(rest.len()).clamp(1, rest.len());
            session.feed(&rest[..n]);
            rest = &rest[n..];
            while let Some(e) = session.next_event().unwrap() {
                events.push(owned(e));
            }
        }
    }
    (events, session)
}

fn whole(n: usize) -> usize {
    n
}

#[test]
fn startup_trust() {
    let (events, session) = replay("startup_trust", None, whole);
    assert_eq!(events[0], Ev::Authenticated);
    assert!(events.contains(&Ev::Param("client_encoding".into(), "UTF8".into())));
    assert!(session.backend_pid() > 0 && session.backend_key().len() == 4);
    assert!(session.is_closed(), "terminated at the end");
}

#[test]
fn startup_md5_recomputes_the_hash() {
    let (events, _) = replay("startup_md5", Some("secret"), whole);
    assert_eq!(events[..2], [Ev::AuthRequested, Ev::Authenticated]);
}

#[test]
fn startup_cleartext() {
    let (events, _) = replay("startup_cleartext", Some("secret"), whole);
    assert_eq!(events[..2], [Ev::AuthRequested, Ev::Authenticated]);
}

#[test]
#[should_panic(expected = "authentication answer")]
fn startup_md5_with_a_wrong_password_differs() {
    replay("startup_md5", Some("not the password"), whole);
}

fn after_ready(events: &[Ev]) -> &[Ev] {
    let i = events
        .iter()
        .position(|e| matches!(e, Ev::Ready(_)))
        .unwrap();
    &events[i + 1..]
}

#[test]
fn simple_query_with_error_in_the_middle() {
    let (events, _) = replay("simple_query", None, whole);
    let q: Vec<_> = after_ready(&events)
        .iter()
        .filter(|e| !matches!(e, Ev::Param(..)))
        .cloned()
        .collect();
    assert_eq!(
        q,
        [
            Ev::Complete("CREATE TABLE".into()),
            Ev::Complete("INSERT 0 2".into()),
            Ev::Ready('I'),
            Ev::RowDesc(vec!["?column?".into()]),
            Ev::Row(vec![Some(b"1".to_vec())]),
            Ev::Complete("SELECT 1".into()),
            Ev::Error("22012".into()),
            Ev::Ready('I'),
        ]
    );
}

#[test]
fn extended_query() {
    let (events, session) = replay("extended_query", None, whole);
    let q = after_ready(&events);
    assert_eq!(q[0], Ev::ParseComplete);
    assert!(matches!(&q[1], Ev::ParamDesc(p) if p.is_empty()));
    assert_eq!(q[2], Ev::RowDesc(vec!["n".into(), "s".into(), "z".into()]));
    assert_eq!(q[3], Ev::Ready('I'));
    assert_eq!(q[4], Ev::BindComplete);
    assert_eq!(q.iter().filter(|e| matches!(e, Ev::Row(_))).count(), 3 + 1);
    assert!(q.contains(&Ev::Row(vec![
        Some(2i32.to_be_bytes().to_vec()),
        Some(b"v2".to_vec()),
        None
    ])));
    assert!(q.contains(&Ev::ParamDesc(vec![23])));
    assert_eq!(session.pending(), 0);
}

#[test]
fn pipeline_error_skips_to_sync() {
    let (events, _) = replay("pipeline_error", None, whole);
    let q = after_ready(&events);
    let tail: Vec<_> = q.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(tail, [Ev::Error("23505".into()), Ev::Ready('I')]);
    // Two rows went in before the duplicate; nothing after the error is reported.
    let inserts = q
        .iter()
        .filter(|e| **e == Ev::Complete("INSERT 0 1".into()))
        .count();
    assert_eq!(inserts, 2);
}

#[test]
fn notices_notifications_and_copy_out() {
    let (events, _) = replay("notices_and_copy_out", None, whole);
    let q = after_ready(&events);
    assert!(q.contains(&Ev::Notice("note".into())));
    assert!(q.contains(&Ev::Notification("ch".into(), "payload".into())));
    let copy: Vec<_> = q
        .iter()
        .skip_while(|e| **e != Ev::CopyOut)
        .cloned()
        .collect();
    assert_eq!(
        copy,
        [
            Ev::CopyOut,
            Ev::CopyData(b"1\n".to_vec()),
            Ev::CopyData(b"2\n".to_vec()),
            Ev::CopyData(b"3\n".to_vec()),
            Ev::CopyDone,
            Ev::Complete("COPY 3".into()),
            Ev::Ready('I'),
        ]
    );
}

const RECORDINGS: &[(&str, Option<&str>)] = &[
    ("startup_trust", None),
    ("startup_md5", Some("secret")),
    ("startup_cleartext", Some("secret")),
    ("simple_query", None),
    ("extended_query", None),
    ("pipeline_error", None),
    ("notices_and_copy_out", None),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the bytes are split, the events are the same.
    #[test]
    fn events_do_not_depend_on_chunking(sizes in proptest::collection::vec(1usize..64, 1..32)) {
        for (name, password) in RECORDINGS {
            let (expected, _) = replay(name, *password, whole);
            let mut i = 0;
            let (got, _) = replay(name, *password, |_| {
                i += 1;
                sizes[i % sizes.len()]
            });
            prop_assert_eq!(got, expected);
        }
    }
}

#[test]
fn logical_replication_stream_decodes() {
    use pgoxide_proto::pgoutput::{Decoder, Message, Value};
    use pgoxide_proto::replication::StreamMessage;

    let (events, session) = replay("logical_replication", None, |n| n / 3 + 1);
    assert!(events.contains(&Ev::CopyBoth));
    let mut decoder = Decoder::new(false);
    let mut kinds = Vec::new();
    let mut inserted = Vec::new();
    let mut keepalives = 0;
    for e in &events {
        let Ev::CopyData(payload) = e else { continue };
        match StreamMessage::parse(payload).unwrap() {
            StreamMessage::Keepalive { .. } => keepalives += 1,
            StreamMessage::XLogData { data, .. } => {
                let message = decoder.decode(data).unwrap();
                if let Message::Insert { new, .. } = &message {
                    inserted.push(
                        new.values()
                            .map(|v| match v {
                                Value::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
                                other => format!("{other:?}"),
                            })
                            .collect::<Vec<_>>(),
                    );
                }
                let name = format!("{message:?}");
                kinds.push(name.split([' ', '(', '{']).next().unwrap().to_owned());
            }
        }
    }
    assert!(keepalives > 0);
    assert_eq!(
        kinds,
        [
            "Begin",
            "Relation",
            "Insert",
            "Insert",
            "Commit", // INSERT two rows
            "Begin",
            "Update",
            "Commit", // UPDATE
            "Begin",
            "Delete",
            "Commit", // DELETE
            "Begin",
            "Message",
            "Commit", // pg_logical_emit_message
            "BeginPrepare",
            "Insert",
            "Prepare", // PREPARE TRANSACTION
            "CommitPrepared",
            // TRUNCATE invalidates the relation: its definition is sent again.
            "Begin",
            "Relation",
            "Truncate",
            "Commit",
        ]
    );
    assert_eq!(
        inserted,
        [
            vec!["1", "one", "1.5"],
            vec!["2", "Null", "-2"],
            vec!["3", "prepared", "0"]
        ]
    );
    // The stream ended with the server's CopyDone and the command's completion.
    assert!(events.contains(&Ev::CopyDone));
    assert!(session.is_closed());
}
