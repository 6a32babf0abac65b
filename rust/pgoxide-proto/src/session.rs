//! The protocol state machine: startup, authentication, and the queue of responses the server
//! owes us. All state transitions live here.
//!
//! Requests are built with [`Request`] (bytes plus the responses they will cause) and handed
//! to [`Session::submit`], which returns the bytes to send and remembers what to expect.
//! Received bytes go to [`Session::feed`]; [`Session::next_event`] then yields one event per
//! meaningful message, borrowing from the receive buffer. A message that is not expected in the
//! current state is a protocol violation, and the session stays failed from then on.

use std::collections::{HashMap, VecDeque};

use crate::auth::policy::RequireAuth;
use crate::auth::{md5, scram};
use crate::backend::{self, auth_code, Cursor, ErrorFields, Notification, TransactionStatus};
use crate::certificate;
use crate::error::{Error, Result};
use crate::framing::ReadBuffer;
use crate::frontend;

/// Distinct server parameters kept (ParameterStatus): PostgreSQL reports a few dozen, so a
/// server reporting more is refused rather than allowed to grow the map without bound.
pub const MAX_SERVER_PARAMS: usize = 1000;

/// Refuses a parameter the session cannot work with: text is exchanged as UTF-8 only.
fn check_parameter(name: &str, value: &str) -> Result<()> {
    if name == "client_encoding"
        && !matches!(value.to_ascii_uppercase().as_str(), "UTF8" | "UNICODE")
    {
        return Err(Error::protocol(format!(
            "the server switched client_encoding to {value:?}; pgoxide exchanges text as \
             UTF-8 only, so the connection was closed rather than misread text (keep \
             client_encoding UTF8, and convert with convert_to()/convert_from() in SQL)"
        )));
    }
    Ok(())
}

/// Keeps a reported parameter's value, refusing more than [`MAX_SERVER_PARAMS`] of them.
fn remember_parameter(params: &mut HashMap<String, String>, name: &str, value: &str) -> Result<()> {
    if let Some(slot) = params.get_mut(name) {
        value.clone_into(slot);
    } else if params.len() >= MAX_SERVER_PARAMS {
        return Err(Error::protocol(format!(
            "the server reported more than {MAX_SERVER_PARAMS} distinct parameters \
             (ParameterStatus); PostgreSQL reports a few dozen"
        )));
    } else {
        params.insert(name.to_owned(), value.to_owned());
    }
    Ok(())
}

/// `channel_binding` connection setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBindingMode {
    Disable,
    #[default]
    Prefer,
    Require,
}

/// Everything the startup exchange needs to know.
#[derive(Debug, Clone)]
pub struct StartupConfig {
    pub user: String,
    pub database: String,
    /// Other startup parameters, sent in this order after user and database.
    pub params: Vec<(String, String)>,
    pub password: Option<Vec<u8>>,
    pub max_message_size: usize,
    /// Whether the connection runs over TLS.
    pub tls: bool,
    /// The server's certificate (DER), when TLS is in use: SCRAM-SHA-256-PLUS binds to it.
    pub server_certificate: Option<Vec<u8>>,
    pub channel_binding: ChannelBindingMode,
    /// `require_auth`, when set.
    pub require_auth: Option<RequireAuth>,
    /// The protocol version asked for in the StartupMessage (`max_protocol_version`,
    /// [`frontend::PROTOCOL_3_0`] by default, as libpq) and the lowest one accepted when the
    /// server answers NegotiateProtocolVersion (`min_protocol_version`).
    pub max_protocol_version: i32,
    pub min_protocol_version: i32,
}

/// Authentication method the server asked for, reported for policy hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Cleartext,
    Md5,
    Scram { channel_binding: bool },
}

/// What the server owes us for requests already sent, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    ParseComplete,
    BindComplete,
    CloseComplete,
    ParameterDescription,
    /// RowDescription or NoData (Describe).
    RowDescription,
    /// DataRow* then CommandComplete, EmptyQueryResponse or PortalSuspended (Execute).
    Execute,
    /// Any number of result sets until ReadyForQuery (simple Query).
    SimpleQuery,
    /// ReadyForQuery (Sync).
    ReadyForQuery,
}

/// One meaningful backend message.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The server asked for this authentication method and we answered.
    AuthRequested(AuthMethod),
    /// AuthenticationOk.
    Authenticated,
    ParameterStatus {
        name: &'a str,
        value: &'a str,
    },
    Notice(ErrorFields<'a>),
    Notification(Notification<'a>),
    /// ErrorResponse. During startup it ends the attempt; afterwards the request it belongs
    /// to continues to its ReadyForQuery.
    Error(ErrorFields<'a>),
    ReadyForQuery(TransactionStatus),
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    PortalSuspended,
    EmptyQuery,
    ParameterDescription(&'a [u8]),
    RowDescription(&'a [u8]),
    DataRow(&'a [u8]),
    CommandComplete(&'a str),
    CopyInResponse(&'a [u8]),
    CopyOutResponse(&'a [u8]),
    /// START_REPLICATION switched the connection to CopyBoth: CopyData flows both ways.
    CopyBothResponse(&'a [u8]),
    CopyData(&'a [u8]),
    CopyDone,
}

/// The copy the server is sending, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyMode {
    None,
    /// COPY FROM STDIN: the client sends CopyData; the server answers only when the copy
    /// ends (CommandComplete) or fails (ErrorResponse).
    In,
    /// COPY TO STDOUT: CopyData until CopyDone.
    Out,
    /// CopyBoth (a replication stream): CopyData both ways until the command completes.
    Both,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for authentication requests.
    Authenticating(AuthState),
    /// Authenticated; waiting for ParameterStatus/BackendKeyData and the first ReadyForQuery.
    AwaitingReady,
    Ready,
    /// Terminated, or failed with the stored error.
    Closed,
}

#[derive(Debug)]
enum AuthState {
    Start,
    PasswordSent,
    Scram(Box<scram::ScramClient>),
}

/// Sans-IO connection state.
#[derive(Debug)]
pub struct Session {
    config: StartupConfig,
    buf: ReadBuffer,
    phase: Phase,
    expects: VecDeque<Expect>,
    /// An error arrived before the Sync that ends its request was sent: the server ignores
    /// every message until that Sync, so a request submitted meanwhile causes no response
    /// before its ReadyForQuery.
    skip_to_sync: bool,
    /// Which copy (if any) the server is sending: CopyData and CopyDone are allowed then.
    copy: CopyMode,
    out: Vec<u8>,
    failure: Option<Error>,
    tx_status: TransactionStatus,
    /// AuthenticationOk arrived.
    authenticated: bool,
    backend_pid: i32,
    backend_key: Vec<u8>,
    /// The protocol version in use: the one asked for, or the server's answer to it.
    protocol_version: i32,
    server_params: HashMap<String, String>,
}

impl Session {
    pub fn new(config: StartupConfig) -> Self {
        let buf = ReadBuffer::new(config.max_message_size);
        Self {
            buf,
            phase: Phase::Authenticating(AuthState::Start),
            expects: VecDeque::new(),
            skip_to_sync: false,
            copy: CopyMode::None,
            out: Vec::new(),
            failure: None,
            tx_status: TransactionStatus::Idle,
            authenticated: false,
            backend_pid: 0,
            backend_key: Vec::new(),
            protocol_version: config.max_protocol_version,
            server_params: HashMap::new(),
            config,
        }
    }

    /// The StartupMessage.
    pub fn startup_message(&self) -> Result<Vec<u8>> {
        let mut params: Vec<(&str, &str)> = vec![("user", &self.config.user)];
        if !self.config.database.is_empty() {
            params.push(("database", &self.config.database));
        }
        params.extend(
            self.config
                .params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let mut out = Vec::new();
        frontend::startup(&mut out, self.config.max_protocol_version, &params)?;
        Ok(out)
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.buf.feed(data);
    }

    /// Reads `data` in place (copying only a message it cuts) until [`Session::end_borrowed`].
    ///
    /// # Safety
    ///
    /// `data` must stay valid and unchanged until `end_borrowed` is called, and no event
    /// obtained meanwhile may be used after that call.
    pub unsafe fn feed_borrowed(&mut self, data: &[u8]) {
        // SAFETY: the caller's promise is the buffer's.
        unsafe { self.buf.feed_borrowed(data) };
    }

    /// Ends [`Session::feed_borrowed`]; keeps whatever of the data was not read yet.
    pub fn end_borrowed(&mut self) {
        self.buf.end_borrowed();
    }

    /// Bytes the session produced by itself (authentication responses), to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Whether AuthenticationOk has arrived.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed) || self.failure.is_some()
    }

    /// The error that failed the session, if any.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    pub fn transaction_status(&self) -> TransactionStatus {
        self.tx_status
    }

    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    pub fn backend_key(&self) -> &[u8] {
        &self.backend_key
    }

    /// The protocol version in use (major << 16 | minor): the one the StartupMessage asked
    /// for, unless the server answered with a lower one.
    pub fn protocol_version(&self) -> i32 {
        self.protocol_version
    }

    pub fn server_params(&self) -> &HashMap<String, String> {
        &self.server_params
    }

    pub fn server_param(&self, name: &str) -> Option<&str> {
        self.server_params.get(name).map(String::as_str)
    }

    /// Responses still owed by the server.
    pub fn pending(&self) -> usize {
        self.expects.len()
    }

    /// Queues a request: remembers the responses it causes and returns its bytes. May be called
    /// repeatedly on the same request to send it in chunks.
    pub fn submit(&mut self, req: &mut Request) -> Result<Vec<u8>> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        if !self.is_ready() {
            return Err(Error::protocol("the connection is not ready for queries"));
        }
        let mut expects = req.expects.drain(..);
        if self.skip_to_sync {
            for e in expects.by_ref() {
                if e == Expect::ReadyForQuery {
                    self.skip_to_sync = false;
                    self.expects.push_back(e);
                    break;
                }
            }
        }
        self.expects.extend(expects);
        Ok(std::mem::take(&mut req.buf))
    }

    /// Terminate message; the session is closed afterwards.
    pub fn terminate(&mut self) -> Vec<u8> {
        self.phase = Phase::Closed;
        self.expects.clear();
        let mut out = Vec::new();
        frontend::terminate(&mut out);
        out
    }

    /// Marks the session failed (for example when the transport was lost).
    pub fn fail(&mut self, error: Error) {
        self.phase = Phase::Closed;
        self.expects.clear();
        self.failure.get_or_insert(error);
    }

    fn violation(&mut self, msg: String) -> Error {
        let e = Error::Protocol(msg);
        self.fail(e.clone());
        e
    }

    /// The next event, `Ok(None)` when more data is needed. An error is fatal and sticky.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        loop {
            let frame = match self.buf.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    self.buf.shrink_if_idle();
                    return Ok(None);
                }
                Err(e) => {
                    self.fail(e.clone());
                    return Err(e);
                }
            };
            let tag = frame.tag;
            // Asynchronous messages are accepted in every state.
            match tag {
                b'N' | b'A' | b'S' => return self.async_message(tag, frame).map(Some),
                _ => {}
            }
            match self.phase {
                Phase::Authenticating(_) => {
                    let body = self.buf.body(frame).to_vec();
                    match self.authenticating(tag, &body) {
                        Ok(Some(Step::Event(AuthOutcome::Requested(m)))) => {
                            return Ok(Some(Event::AuthRequested(m)));
                        }
                        Ok(Some(Step::Event(AuthOutcome::Ok))) => {
                            return Ok(Some(Event::Authenticated));
                        }
                        Ok(Some(Step::Error)) => {
                            self.phase = Phase::Closed;
                            // Already validated by `authenticating`.
                            let fields = ErrorFields::parse(self.buf.body(frame))?;
                            return Ok(Some(Event::Error(fields)));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            self.fail(e.clone());
                            return Err(e);
                        }
                    }
                }
                Phase::AwaitingReady => match tag {
                    b'K' => {
                        let (pid, key) = backend::parse_backend_key_data(self.buf.body(frame))
                            .and_then(|(pid, key)| {
                                // Before 3.2 the key is always 4 bytes (libpq 18 is as strict).
                                if self.protocol_version < frontend::PROTOCOL_3_2 && key.len() != 4
                                {
                                    return Err(Error::protocol(format!(
                                        "received invalid BackendKeyData message: a cancel key \
                                         of {} bytes in protocol version 3.0",
                                        key.len()
                                    )));
                                }
                                Ok((pid, key))
                            })
                            .inspect_err(|e| self.failure = Some(e.clone()))?;
                        self.backend_pid = pid;
                        self.backend_key = key.to_vec();
                    }
                    b'Z' => {
                        let status = TransactionStatus::parse(self.buf.body(frame))
                            .inspect_err(|e| self.failure = Some(e.clone()))?;
                        self.tx_status = status;
                        self.phase = Phase::Ready;
                        return Ok(Some(Event::ReadyForQuery(status)));
                    }
                    b'E' => {
                        self.phase = Phase::Closed;
                        let fields = ErrorFields::parse(self.buf.body(frame))
                            .inspect_err(|e| self.failure = Some(e.clone()))?;
                        return Ok(Some(Event::Error(fields)));
                    }
                    _ => {
                        return Err(self.violation(format!(
                            "unexpected message {:?} while waiting for the server to become ready",
                            char::from(tag)
                        )))
                    }
                },
                Phase::Ready => return self.ready_message(frame),
                Phase::Closed => {
                    // Only a final ErrorResponse (e.g. FATAL shutdown) may follow.
                    if tag == b'E' {
                        let fields = ErrorFields::parse(self.buf.body(frame))
                            .inspect_err(|e| self.failure = Some(e.clone()))?;
                        return Ok(Some(Event::Error(fields)));
                    }
                    return Err(self.violation(format!(
                        "unexpected message {:?} on a closed connection",
                        char::from(tag)
                    )));
                }
            }
        }
    }

    /// NoticeResponse, NotificationResponse or ParameterStatus. A malformed one fails the
    /// session (recorded in `failure`, which `next_event` checks first).
    fn async_message(&mut self, tag: u8, frame: crate::framing::Frame) -> Result<Event<'_>> {
        let body = self.buf.body(frame);
        let params = &mut self.server_params;
        let event = match tag {
            b'N' => ErrorFields::parse(body).map(Event::Notice),
            b'A' => backend::parse_notification(body).map(Event::Notification),
            _ => backend::parse_parameter_status(body).and_then(|(name, value)| {
                check_parameter(name, value)?;
                remember_parameter(params, name, value)?;
                Ok(Event::ParameterStatus { name, value })
            }),
        };
        event.inspect_err(|e| self.failure = Some(e.clone()))
    }

    fn ready_message(&mut self, frame: crate::framing::Frame) -> Result<Option<Event<'_>>> {
        let tag = frame.tag;
        let front = self.expects.front().copied();
        let unexpected = |s: &mut Self| {
            let want = match front {
                Some(e) => format!("{e:?}"),
                None => "nothing".to_owned(),
            };
            Err(s.violation(format!(
                "unexpected message {:?} from the server (expected {want})",
                char::from(tag)
            )))
        };
        if self.copy != CopyMode::None {
            match tag {
                b'd' | b'c' if self.copy == CopyMode::In => return unexpected(self),
                b'd' => return Ok(Some(Event::CopyData(self.buf.body(frame)))),
                b'c' => {
                    // A walsender may still queue a keepalive after its CopyDone: CopyData
                    // stays acceptable until the command completes.
                    if self.copy == CopyMode::Out {
                        self.copy = CopyMode::None;
                    }
                    return Ok(Some(Event::CopyDone));
                }
                b'E' => self.copy = CopyMode::None,
                b'C' if matches!(self.copy, CopyMode::Both | CopyMode::In) => {
                    self.copy = CopyMode::None;
                }
                _ => return unexpected(self),
            }
        }
        let event = match (tag, front) {
            (b'D', Some(Expect::Execute | Expect::SimpleQuery)) => {
                return Ok(Some(Event::DataRow(self.buf.body(frame))));
            }
            (b'C', Some(e @ (Expect::Execute | Expect::SimpleQuery))) => {
                if e == Expect::Execute {
                    self.expects.pop_front();
                }
                let tag = backend::parse_command_complete(self.buf.body(frame))
                    .inspect_err(|e| self.failure = Some(e.clone()))?;
                return Ok(Some(Event::CommandComplete(tag)));
            }
            (b'Z', Some(Expect::ReadyForQuery | Expect::SimpleQuery)) => {
                self.expects.pop_front();
                let status = TransactionStatus::parse(self.buf.body(frame))
                    .inspect_err(|e| self.failure = Some(e.clone()))?;
                self.tx_status = status;
                return Ok(Some(Event::ReadyForQuery(status)));
            }
            (b'E', Some(front)) => {
                // A simple Query's error ends with its own ReadyForQuery. After an extended
                // protocol error the server skips every message up to the next Sync, a Query
                // queued meanwhile too: it gets no response.
                if front != Expect::SimpleQuery {
                    while let Some(e) = self.expects.front() {
                        if *e == Expect::ReadyForQuery {
                            break;
                        }
                        self.expects.pop_front();
                    }
                }
                // That Sync may not have been sent yet (a request ending with a Flush).
                self.skip_to_sync = self.expects.is_empty();
                let fields = ErrorFields::parse(self.buf.body(frame))
                    .inspect_err(|e| self.failure = Some(e.clone()))?;
                return Ok(Some(Event::Error(fields)));
            }
            (b'E', None) => {
                // Unsolicited: the server is closing the connection (FATAL) on its own.
                let fields = ErrorFields::parse(self.buf.body(frame))
                    .inspect_err(|e| self.failure = Some(e.clone()))?;
                return Ok(Some(Event::Error(fields)));
            }
            (b'1', Some(Expect::ParseComplete)) => Event::ParseComplete,
            (b'2', Some(Expect::BindComplete)) => Event::BindComplete,
            (b'3', Some(Expect::CloseComplete)) => Event::CloseComplete,
            (b'n', Some(Expect::RowDescription)) => Event::NoData,
            (b's', Some(Expect::Execute)) => Event::PortalSuspended,
            (b'I', Some(Expect::Execute)) => Event::EmptyQuery,
            (b'I', Some(Expect::SimpleQuery)) => return Ok(Some(Event::EmptyQuery)),
            (b't', Some(Expect::ParameterDescription)) => {
                self.expects.pop_front();
                return Ok(Some(Event::ParameterDescription(self.buf.body(frame))));
            }
            (b'T', Some(e @ (Expect::RowDescription | Expect::SimpleQuery))) => {
                if e == Expect::RowDescription {
                    self.expects.pop_front();
                }
                return Ok(Some(Event::RowDescription(self.buf.body(frame))));
            }
            (b'G', Some(Expect::Execute | Expect::SimpleQuery)) => {
                self.copy = CopyMode::In;
                return Ok(Some(Event::CopyInResponse(self.buf.body(frame))));
            }
            (b'H', Some(Expect::Execute | Expect::SimpleQuery)) => {
                self.copy = CopyMode::Out;
                return Ok(Some(Event::CopyOutResponse(self.buf.body(frame))));
            }
            (b'W', Some(Expect::SimpleQuery)) => {
                self.copy = CopyMode::Both;
                return Ok(Some(Event::CopyBothResponse(self.buf.body(frame))));
            }
            _ => return unexpected(self),
        };
        if !self.buf.body(frame).is_empty() {
            return Err(self.violation(format!(
                "malformed message {:?} (unexpected body)",
                char::from(tag)
            )));
        }
        self.expects.pop_front();
        Ok(Some(event))
    }

    /// One message of the authentication phase.
    fn authenticating(&mut self, tag: u8, body: &[u8]) -> Result<Option<Step>> {
        match tag {
            b'R' => self.auth_request(body).map(|o| o.map(Step::Event)),
            b'E' => {
                ErrorFields::parse(body)?;
                Ok(Some(Step::Error))
            }
            b'v' => self.negotiate_protocol_version(body).map(|()| None),
            _ => Err(Error::protocol(format!(
                "unexpected message {:?} during authentication",
                char::from(tag)
            ))),
        }
    }

    /// NegotiateProtocolVersion: the server supports only an older minor version (or not
    /// the `_pq_` options, of which we send none). libpq 18's checks
    /// (fe-protocol3.c pqGetNegotiateProtocolVersion3).
    fn negotiate_protocol_version(&mut self, body: &[u8]) -> Result<()> {
        let mut c = Cursor::new(body, "NegotiateProtocolVersion");
        let version = c.i32()?;
        let n = c.i32()?;
        if n < 0 {
            return Err(Error::protocol(
                "received invalid protocol negotiation message",
            ));
        }
        let mut unsupported = Vec::new();
        for _ in 0..n {
            unsupported.push(c.cstr()?);
        }
        c.finish()?;
        let shown = |v: i32| format!("{}.{}", v >> 16, v & 0xffff);
        if let Some(option) = unsupported.first() {
            return Err(Error::protocol(format!(
                "received invalid protocol negotiation message: server reported an \
                 unsupported parameter that was not requested (\"{option}\")"
            )));
        }
        let requested = self.protocol_version;
        if version > requested {
            return Err(Error::protocol(format!(
                "received invalid protocol negotiation message: server requested \
                 downgrade to a higher-numbered version ({} after asking for {})",
                shown(version),
                shown(requested)
            )));
        }
        if version < frontend::PROTOCOL_3_0 || version == frontend::PROTOCOL_3_0 + 1 {
            return Err(Error::protocol(format!(
                "received invalid protocol negotiation message: server requested an \
                 invalid protocol version {}",
                shown(version)
            )));
        }
        if version < self.config.min_protocol_version {
            return Err(Error::protocol(format!(
                "server only supports protocol version {}, but \"min_protocol_version\" \
                 was set to {}",
                shown(version),
                shown(self.config.min_protocol_version)
            )));
        }
        self.protocol_version = version;
        Ok(())
    }

    fn auth_request(&mut self, body: &[u8]) -> Result<Option<AuthOutcome>> {
        if body.len() > 2000 {
            return Err(Error::protocol("authentication request too long"));
        }
        let mut c = Cursor::new(body, "Authentication");
        let code = c.i32()?;
        let Phase::Authenticating(state) = &mut self.phase else {
            unreachable!()
        };
        if let Some(policy) = &self.config.require_auth {
            // libpq's client_finished_auth: a password sent, or the server's SCRAM proof checked.
            let finished = match state {
                AuthState::Start => false,
                AuthState::PasswordSent => true,
                AuthState::Scram(client) => client.is_done(),
            };
            policy.check_request(code, finished)?;
        }
        match code {
            auth_code::OK => {
                c.finish()?;
                if let AuthState::Scram(client) = state {
                    if !client.is_done() {
                        return Err(Error::Auth(
                            "server finished authentication before the SCRAM exchange completed"
                                .into(),
                        ));
                    }
                }
                if self.config.channel_binding == ChannelBindingMode::Require
                    && !matches!(state, AuthState::Scram(c) if c.uses_channel_binding())
                {
                    return Err(Error::AuthPolicy(
                        "channel binding required, but server authenticated client without channel binding"
                            .into(),
                    ));
                }
                self.phase = Phase::AwaitingReady;
                self.authenticated = true;
                Ok(Some(AuthOutcome::Ok))
            }
            auth_code::CLEARTEXT_PASSWORD | auth_code::MD5_PASSWORD => {
                if self.config.channel_binding == ChannelBindingMode::Require {
                    return Err(Error::AuthPolicy(
                        "channel binding required but not supported by server's authentication request"
                            .into(),
                    ));
                }
                let password = self.config.password.as_deref().ok_or_else(no_password)?;
                let method = if code == auth_code::MD5_PASSWORD {
                    let salt: [u8; 4] = c.bytes(4)?.try_into().expect("4 bytes");
                    c.finish()?;
                    let hashed = md5::password_message(self.config.user.as_bytes(), password, salt);
                    frontend::password(&mut self.out, hashed.as_bytes())?;
                    AuthMethod::Md5
                } else {
                    c.finish()?;
                    frontend::password(&mut self.out, password)?;
                    AuthMethod::Cleartext
                };
                *state = AuthState::PasswordSent;
                Ok(Some(AuthOutcome::Requested(method)))
            }
            auth_code::SASL => {
                let mut mechanisms = Vec::new();
                loop {
                    let m = c.cstr()?;
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(m);
                }
                c.finish()?;
                let client = self.choose_scram(&mechanisms)?;
                if let Some(policy) = &self.config.require_auth {
                    policy.check_scram()?;
                }
                let method = AuthMethod::Scram {
                    channel_binding: client.uses_channel_binding(),
                };
                let mut client = Box::new(client);
                let first = client.client_first("");
                frontend::sasl_initial_response(&mut self.out, client.mechanism(), &first)?;
                let Phase::Authenticating(state) = &mut self.phase else {
                    unreachable!()
                };
                *state = AuthState::Scram(client);
                Ok(Some(AuthOutcome::Requested(method)))
            }
            auth_code::SASL_CONTINUE => {
                let AuthState::Scram(client) = state else {
                    return Err(Error::protocol("unexpected SASLContinue message"));
                };
                let response = client.client_final(c.rest())?;
                frontend::sasl_response(&mut self.out, &response)?;
                Ok(None)
            }
            auth_code::SASL_FINAL => {
                let AuthState::Scram(client) = state else {
                    return Err(Error::protocol("unexpected SASLFinal message"));
                };
                client.verify_server_final(c.rest())?;
                Ok(None)
            }
            auth_code::KERBEROS_V5 => Err(Error::Auth(
                "Kerberos 5 authentication is not supported".into(),
            )),
            auth_code::GSS | auth_code::GSS_CONTINUE | auth_code::SSPI => Err(Error::Auth(
                "GSSAPI/SSPI authentication is not supported by pgoxide".into(),
            )),
            // No PostgreSQL sends any other code: the bytes are not an authentication request.
            other => Err(Error::protocol(format!(
                "unknown authentication request code {other}"
            ))),
        }
    }

    /// libpq's mechanism choice: -PLUS when TLS is in use and binding is not disabled.
    fn choose_scram(&self, offered: &[&str]) -> Result<scram::ScramClient> {
        let mode = self.config.channel_binding;
        if mode == ChannelBindingMode::Require && !self.config.tls {
            return Err(Error::AuthPolicy(
                "channel binding required, but SSL not in use".into(),
            ));
        }
        let plus = offered.contains(&scram::SCRAM_SHA_256_PLUS);
        let plain = offered.contains(&scram::SCRAM_SHA_256);
        if plus && !self.config.tls {
            // A proxy may have stripped TLS; the server would reject an unbound exchange.
            return Err(Error::Auth(
                "server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection".into(),
            ));
        }
        let certificate = self.config.server_certificate.as_deref();
        let binding = if plus && mode != ChannelBindingMode::Disable {
            // As libpq: once -PLUS is chosen, a certificate whose signature algorithm defines
            // no binding hash (Ed25519) fails the connection; there is no silent fallback.
            let certificate = certificate.ok_or_else(|| {
                Error::Auth(
                    "channel binding needs the server certificate, which TLS did not provide"
                        .into(),
                )
            })?;
            scram::ChannelBinding::TlsServerEndPoint(certificate::tls_server_end_point(
                certificate,
            )?)
        } else if mode == ChannelBindingMode::Require {
            return Err(Error::AuthPolicy(
                "channel binding is required, but server did not offer an authentication method that supports channel binding".into(),
            ));
        } else if !plain {
            return Err(Error::Auth(format!(
                "none of the server's SASL authentication mechanisms are supported: {}",
                offered.join(", ")
            )));
        } else if self.config.tls && mode != ChannelBindingMode::Disable {
            // `y`: we could have bound; a server that supports binding rejects this as a
            // downgrade attack.
            scram::ChannelBinding::NotOffered
        } else {
            scram::ChannelBinding::Unsupported
        };
        let password = self.config.password.as_deref().ok_or_else(no_password)?;
        scram::ScramClient::new(password, binding)
    }
}

fn no_password() -> Error {
    Error::Auth("password authentication failed: the server asked for a password but none was supplied (fe_sendauth: no password supplied)".into())
}

enum Step {
    Event(AuthOutcome),
    Error,
}

enum AuthOutcome {
    Requested(AuthMethod),
    Ok,
}

/// A request being built: its bytes and the responses it will cause.
#[derive(Debug, Default)]
pub struct Request {
    buf: Vec<u8>,
    expects: Vec<Expect>,
}

/// A point in a [`Request`] to roll back to when encoding a later part fails.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    buf: usize,
    expects: usize,
}

impl Request {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    pub fn mark(&self) -> Mark {
        Mark {
            buf: self.buf.len(),
            expects: self.expects.len(),
        }
    }

    pub fn rollback(&mut self, mark: Mark) {
        self.buf.truncate(mark.buf);
        self.expects.truncate(mark.expects);
    }

    pub fn simple_query(&mut self, sql: &str) -> Result<()> {
        frontend::query(&mut self.buf, sql)?;
        self.expects.push(Expect::SimpleQuery);
        Ok(())
    }

    pub fn parse(&mut self, name: &str, sql: &str, param_types: &[u32]) -> Result<()> {
        frontend::parse(&mut self.buf, name, sql, param_types)?;
        self.expects.push(Expect::ParseComplete);
        Ok(())
    }

    pub fn describe_statement(&mut self, name: &str) -> Result<()> {
        frontend::describe(&mut self.buf, b'S', name)?;
        self.expects
            .extend([Expect::ParameterDescription, Expect::RowDescription]);
        Ok(())
    }

    pub fn describe_portal(&mut self, name: &str) -> Result<()> {
        frontend::describe(&mut self.buf, b'P', name)?;
        self.expects.push(Expect::RowDescription);
        Ok(())
    }

    /// Starts a Bind; encode the parameters into the returned encoder, then `finish` it.
    pub fn bind(
        &mut self,
        portal: &str,
        statement: &str,
        param_formats: &[i16],
        nparams: usize,
    ) -> Result<frontend::Bind<'_>> {
        self.expects.push(Expect::BindComplete);
        frontend::Bind::begin(&mut self.buf, portal, statement, param_formats, nparams)
    }

    pub fn execute(&mut self, portal: &str, max_rows: i32) -> Result<()> {
        frontend::execute(&mut self.buf, portal, max_rows)?;
        self.expects.push(Expect::Execute);
        Ok(())
    }

    pub fn close_statement(&mut self, name: &str) -> Result<()> {
        frontend::close(&mut self.buf, b'S', name)?;
        self.expects.push(Expect::CloseComplete);
        Ok(())
    }

    pub fn close_portal(&mut self, name: &str) -> Result<()> {
        frontend::close(&mut self.buf, b'P', name)?;
        self.expects.push(Expect::CloseComplete);
        Ok(())
    }

    pub fn sync(&mut self) {
        frontend::sync(&mut self.buf);
        self.expects.push(Expect::ReadyForQuery);
    }

    pub fn flush(&mut self) {
        frontend::flush(&mut self.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::msg;

    fn auth(code: i32, extra: &[u8]) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(extra);
        msg(b'R', &body)
    }

    fn session(password: Option<&str>, tls: bool, channel_binding: ChannelBindingMode) -> Session {
        Session::new(StartupConfig {
            user: "u".into(),
            database: "d".into(),
            params: vec![],
            password: password.map(|p| p.as_bytes().to_vec()),
            max_message_size: 1 << 20,
            tls,
            server_certificate: None,
            require_auth: None,
            channel_binding,
            max_protocol_version: frontend::PROTOCOL_3_0,
            min_protocol_version: frontend::PROTOCOL_3_0,
        })
    }

    fn drain(s: &mut Session) -> Result<Vec<String>> {
        let mut out = Vec::new();
        while let Some(e) = s.next_event()? {
            out.push(
                format!("{e:?}")
                    .split(['(', ' '])
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        Ok(out)
    }

    #[test]
    fn negotiate_protocol_version_confirming_3_0_is_accepted() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        let mut v = 196_608i32.to_be_bytes().to_vec();
        v.extend_from_slice(&0i32.to_be_bytes());
        s.feed(&msg(b'v', &v));
        s.feed(&auth(0, &[]));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(drain(&mut s).unwrap(), ["Authenticated", "ReadyForQuery"]);
        assert!(s.is_ready());
    }

    #[test]
    fn negotiate_protocol_version_downgrade_is_refused() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        let mut v = 196_608i32.to_be_bytes().to_vec();
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(b"_pq_.x\0");
        s.feed(&msg(b'v', &v));
        assert!(matches!(drain(&mut s), Err(Error::Protocol(_))));
        assert!(s.is_closed());
    }

    fn session_asking(max: i32, min: i32) -> Session {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.config.max_protocol_version = max;
        s.config.min_protocol_version = min;
        s.protocol_version = max;
        s
    }

    fn negotiate(version: i32, options: &[&str]) -> Vec<u8> {
        let mut v = version.to_be_bytes().to_vec();
        v.extend_from_slice(&(options.len() as i32).to_be_bytes());
        for o in options {
            v.extend_from_slice(o.as_bytes());
            v.push(0);
        }
        msg(b'v', &v)
    }

    fn key_data(key_len: usize) -> Vec<u8> {
        let mut k = 42i32.to_be_bytes().to_vec();
        k.extend(std::iter::repeat_n(7u8, key_len));
        msg(b'K', &k)
    }

    #[test]
    fn protocol_3_2_is_asked_for_and_its_long_cancel_key_kept() {
        let mut s = session_asking(frontend::PROTOCOL_3_2, frontend::PROTOCOL_3_0);
        assert_eq!(s.startup_message().unwrap()[4..8], 196_610i32.to_be_bytes());
        s.feed(&auth(0, &[]));
        s.feed(&key_data(32));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(drain(&mut s).unwrap(), ["Authenticated", "ReadyForQuery"]);
        assert_eq!(s.protocol_version(), frontend::PROTOCOL_3_2);
        assert_eq!((s.backend_pid(), s.backend_key().len()), (42, 32));
    }

    #[test]
    fn protocol_3_2_downgraded_to_3_0_by_an_older_server() {
        let mut s = session_asking(frontend::PROTOCOL_3_2, frontend::PROTOCOL_3_0);
        s.feed(&negotiate(frontend::PROTOCOL_3_0, &[]));
        s.feed(&auth(0, &[]));
        s.feed(&key_data(4));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(drain(&mut s).unwrap(), ["Authenticated", "ReadyForQuery"]);
        assert_eq!(s.protocol_version(), frontend::PROTOCOL_3_0);
        assert_eq!(s.backend_key(), [7; 4]);
    }

    #[test]
    fn a_long_cancel_key_in_protocol_3_0_is_refused() {
        for asked in [frontend::PROTOCOL_3_0, frontend::PROTOCOL_3_2] {
            let mut s = session_asking(asked, frontend::PROTOCOL_3_0);
            if asked == frontend::PROTOCOL_3_2 {
                s.feed(&negotiate(frontend::PROTOCOL_3_0, &[]));
            }
            s.feed(&auth(0, &[]));
            s.feed(&key_data(32));
            let err = drain(&mut s).unwrap_err();
            assert!(err.to_string().contains("cancel key of 32 bytes"), "{err}");
            assert!(s.is_closed());
        }
    }

    #[test]
    fn protocol_negotiation_refusals() {
        let cases: [(i32, i32, Vec<u8>, &str); 4] = [
            // min_protocol_version=3.2, the server has only 3.0
            (
                frontend::PROTOCOL_3_2,
                frontend::PROTOCOL_3_2,
                negotiate(frontend::PROTOCOL_3_0, &[]),
                "server only supports protocol version 3.0, but \"min_protocol_version\" was set to 3.2",
            ),
            // 3.1 was never a protocol version (old PgBouncer claims it)
            (
                frontend::PROTOCOL_3_2,
                frontend::PROTOCOL_3_0,
                negotiate(frontend::PROTOCOL_3_0 + 1, &[]),
                "invalid protocol version 3.1",
            ),
            // an "upgrade"
            (
                frontend::PROTOCOL_3_0,
                frontend::PROTOCOL_3_0,
                negotiate(frontend::PROTOCOL_3_2, &[]),
                "higher-numbered version (3.2 after asking for 3.0)",
            ),
            // we send no _pq_ options
            (
                frontend::PROTOCOL_3_2,
                frontend::PROTOCOL_3_0,
                negotiate(frontend::PROTOCOL_3_0, &["_pq_.x"]),
                "not requested (\"_pq_.x\")",
            ),
        ];
        for (max, min, answer, expected) in cases {
            let mut s = session_asking(max, min);
            s.feed(&answer);
            let err = drain(&mut s).unwrap_err();
            assert!(matches!(err, Error::Protocol(_)), "{err:?}");
            assert!(err.to_string().contains(expected), "{err}");
            assert!(s.is_closed());
        }
    }

    #[test]
    fn missing_password_is_an_auth_error() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(3, &[]));
        let err = drain(&mut s).unwrap_err();
        assert!(
            matches!(&err, Error::Auth(m) if m.contains("no password supplied")),
            "{err}"
        );
    }

    #[test]
    fn scram_plus_offered_without_tls_is_refused() {
        let mut s = session(Some("pw"), false, ChannelBindingMode::Prefer);
        s.feed(&auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"));
        let err = drain(&mut s).unwrap_err();
        assert_eq!(
            err,
            Error::Auth(
                "server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection".into()
            )
        );
    }

    #[test]
    fn scram_without_channel_binding_sends_n() {
        let mut s = session(Some("pw"), false, ChannelBindingMode::Prefer);
        s.feed(&auth(10, b"SCRAM-SHA-256\0\0"));
        assert_eq!(drain(&mut s).unwrap(), ["AuthRequested"]);
        let out = s.take_output();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("SCRAM-SHA-256\0"), "{text}");
        assert!(text.contains("n,,n=,r="), "{text}");
    }

    #[test]
    fn channel_binding_require_refuses_password_methods() {
        for code in [3, 5] {
            let mut s = session(Some("pw"), true, ChannelBindingMode::Require);
            let extra: &[u8] = if code == 5 { &[1, 2, 3, 4] } else { &[] };
            s.feed(&auth(code, extra));
            assert!(matches!(drain(&mut s), Err(Error::AuthPolicy(_))));
        }
        // Trust: AuthenticationOk without any exchange.
        let mut s = session(None, true, ChannelBindingMode::Require);
        s.feed(&auth(0, &[]));
        let err = drain(&mut s).unwrap_err();
        assert_eq!(
            err,
            Error::AuthPolicy(
                "channel binding required, but server authenticated client without channel binding"
                    .into()
            )
        );
    }

    fn with_certificate(der: &[u8], mode: ChannelBindingMode) -> Session {
        let mut s = session(Some("pw"), true, mode);
        s.config.server_certificate = Some(der.to_vec());
        s
    }

    fn sent(s: &mut Session) -> String {
        String::from_utf8_lossy(&s.take_output()).into_owned()
    }

    #[test]
    fn channel_binding_uses_the_certificate_hash() {
        let der = include_bytes!("../tests/certs/ecdsa-sha384.der");
        let mut s = with_certificate(der, ChannelBindingMode::Prefer);
        s.feed(&auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"));
        assert_eq!(drain(&mut s).unwrap(), ["AuthRequested"]);
        let text = sent(&mut s);
        assert!(text.contains("SCRAM-SHA-256-PLUS\0"), "{text}");
        assert!(text.contains("p=tls-server-end-point,,n=,r="), "{text}");
        // TLS, but the server offers no -PLUS: `y` (we could have bound).
        let mut s = with_certificate(der, ChannelBindingMode::Prefer);
        s.feed(&auth(10, b"SCRAM-SHA-256\0\0"));
        drain(&mut s).unwrap();
        assert!(sent(&mut s).contains("y,,n=,r="));
        // disable: plain SCRAM with `n`, even when -PLUS is offered.
        let mut s = with_certificate(der, ChannelBindingMode::Disable);
        s.feed(&auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"));
        drain(&mut s).unwrap();
        let text = sent(&mut s);
        assert!(
            text.contains("SCRAM-SHA-256\0") && text.contains("n,,n=,r="),
            "{text}"
        );
    }

    #[test]
    fn ed25519_certificate_fails_once_plus_is_chosen() {
        let der = include_bytes!("../tests/certs/ed25519.der");
        let mut s = with_certificate(der, ChannelBindingMode::Prefer);
        s.feed(&auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"));
        let err = drain(&mut s).unwrap_err();
        assert!(
            matches!(&err, Error::Certificate(m) if m.contains("Ed25519")),
            "{err}"
        );
        assert!(sent(&mut s).is_empty());
        // Without -PLUS on offer the certificate does not matter.
        let mut s = with_certificate(der, ChannelBindingMode::Prefer);
        s.feed(&auth(10, b"SCRAM-SHA-256\0\0"));
        assert_eq!(drain(&mut s).unwrap(), ["AuthRequested"]);
    }

    #[test]
    fn channel_binding_require_needs_plus() {
        let der = include_bytes!("../tests/certs/rsa-sha256.der");
        let mut s = with_certificate(der, ChannelBindingMode::Require);
        s.feed(&auth(10, b"SCRAM-SHA-256\0\0"));
        assert_eq!(
            drain(&mut s).unwrap_err(),
            Error::AuthPolicy("channel binding is required, but server did not offer an authentication method that supports channel binding".into())
        );
        let mut s = session(Some("pw"), false, ChannelBindingMode::Require);
        s.feed(&auth(10, b"SCRAM-SHA-256\0\0"));
        assert_eq!(
            drain(&mut s).unwrap_err(),
            Error::AuthPolicy("channel binding required, but SSL not in use".into())
        );
    }

    #[test]
    fn require_auth_refuses_before_answering() {
        let mut s = session(Some("pw"), false, ChannelBindingMode::Prefer);
        s.config.require_auth = Some(RequireAuth::parse("scram-sha-256").unwrap());
        s.feed(&auth(3, &[]));
        let err = drain(&mut s).unwrap_err();
        assert_eq!(
            err,
            Error::AuthPolicy(
                "authentication method requirement \"scram-sha-256\" failed: server requested a cleartext password".into()
            )
        );
        assert!(sent(&mut s).is_empty(), "the password must not be sent");
        // Trust while an exchange is required.
        let mut s = session(Some("pw"), false, ChannelBindingMode::Prefer);
        s.config.require_auth = Some(RequireAuth::parse("!none").unwrap());
        s.feed(&auth(0, &[]));
        assert!(
            matches!(drain(&mut s), Err(Error::AuthPolicy(m)) if m.ends_with("server did not complete authentication"))
        );
        // A password sent counts as a finished exchange.
        let mut s = session(Some("pw"), false, ChannelBindingMode::Prefer);
        s.config.require_auth = Some(RequireAuth::parse("password").unwrap());
        s.feed(&auth(3, &[]));
        s.feed(&auth(0, &[]));
        assert_eq!(drain(&mut s).unwrap(), ["AuthRequested", "Authenticated"]);
        // SASL allowed (for OAUTHBEARER) but SCRAM not.
        let mut s = session(Some("pw"), false, ChannelBindingMode::Prefer);
        s.config.require_auth = Some(RequireAuth::parse("!scram-sha-256").unwrap());
        s.feed(&auth(10, b"SCRAM-SHA-256\0\0"));
        assert!(
            matches!(drain(&mut s), Err(Error::AuthPolicy(m)) if m.ends_with("server requested SCRAM-SHA-256 authentication"))
        );
        assert!(sent(&mut s).is_empty());
    }

    #[test]
    fn authentication_ok_before_scram_completes_is_refused() {
        let mut s = session(Some("pw"), false, ChannelBindingMode::Prefer);
        s.feed(&auth(10, b"SCRAM-SHA-256\0\0"));
        s.feed(&auth(0, &[]));
        let err = drain(&mut s).unwrap_err();
        assert!(matches!(err, Error::Auth(m) if m.contains("before the SCRAM exchange completed")));
    }

    #[test]
    fn an_unknown_authentication_code_is_a_protocol_error() {
        // What a flipped byte makes of AuthenticationOk (the fault matrix's finding): not a
        // method the server asks for, but bytes no server sends.
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(-16_777_216, &[]));
        assert!(matches!(drain(&mut s), Err(Error::Protocol(m)) if m.contains("-16777216")));
        assert!(s.is_closed());
    }

    #[test]
    fn unexpected_message_during_authentication() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&msg(b'D', &[0, 0]));
        assert!(matches!(drain(&mut s), Err(Error::Protocol(_))));
    }

    #[test]
    fn copy_both_for_replication() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(0, &[]));
        s.feed(&msg(b'Z', b"I"));
        drain(&mut s).unwrap();
        let mut req = Request::new();
        req.simple_query("START_REPLICATION SLOT s LOGICAL 0/0")
            .unwrap();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'W', &[0, 0, 0]));
        s.feed(&msg(b'd', b"k..."));
        s.feed(&msg(b'd', b"w..."));
        s.feed(&msg(b'c', b""));
        // A keepalive the walsender queued after its CopyDone.
        s.feed(&msg(b'd', b"k..."));
        s.feed(&msg(b'C', b"START_REPLICATION\0"));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(
            drain(&mut s).unwrap(),
            [
                "CopyBothResponse",
                "CopyData",
                "CopyData",
                "CopyDone",
                "CopyData",
                "CommandComplete",
                "ReadyForQuery"
            ]
        );
        // CopyData is only allowed inside the copy.
        let mut req = Request::new();
        req.simple_query("SELECT 1").unwrap();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'd', b"x"));
        assert!(matches!(drain(&mut s), Err(Error::Protocol(_))));
    }

    #[test]
    fn copy_in_ends_with_the_command_or_an_error() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(0, &[]));
        s.feed(&msg(b'Z', b"I"));
        drain(&mut s).unwrap();
        for end in [
            &msg(b'C', b"COPY 2\0")[..],
            &msg(b'E', b"SERROR\0C23505\0Mdup\0\0"),
        ] {
            let mut req = Request::new();
            req.simple_query("COPY t FROM STDIN").unwrap();
            s.submit(&mut req).unwrap();
            s.feed(&msg(b'G', &[0, 0, 0]));
            s.feed(&msg(b'N', b"SNOTICE\0Mhi\0\0"));
            s.feed(end);
            s.feed(&msg(b'Z', b"I"));
            let events = drain(&mut s).unwrap();
            assert_eq!(events[..2], ["CopyInResponse", "Notice"]);
            assert_eq!(events[3], "ReadyForQuery");
        }
        // The server sends no data during COPY FROM STDIN.
        let mut req = Request::new();
        req.simple_query("COPY t FROM STDIN").unwrap();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'G', &[0, 0, 0]));
        s.feed(&msg(b'd', b"x"));
        assert!(matches!(drain(&mut s), Err(Error::Protocol(_))));
    }

    #[test]
    fn portal_windows_without_sync_and_an_error_before_the_sync() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(0, &[]));
        s.feed(&msg(b'Z', b"I"));
        drain(&mut s).unwrap();
        // A window read in the implicit transaction: Execute + Flush, no ReadyForQuery owed.
        let mut req = Request::new();
        req.execute("p", 2).unwrap();
        req.flush();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'D', &[0, 0]));
        s.feed(&msg(b's', b""));
        assert_eq!(drain(&mut s).unwrap(), ["DataRow", "PortalSuspended"]);
        let mut req = Request::new();
        req.execute("p", 2).unwrap();
        req.flush();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0"));
        assert_eq!(drain(&mut s).unwrap(), ["Error"]);
        // The server now ignores everything up to the Sync, the Close riding with it too.
        let mut req = Request::new();
        req.close_statement("old").unwrap();
        req.sync();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(drain(&mut s).unwrap(), ["ReadyForQuery"]);
        // And afterwards every response counts again.
        let mut req = Request::new();
        req.close_statement("old").unwrap();
        req.sync();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'3', b""));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(drain(&mut s).unwrap(), ["CloseComplete", "ReadyForQuery"]);
    }

    /// Found by tests/fuzz.rs. After an error in the extended protocol the server ignores
    /// every message up to the next Sync, a simple Query queued meanwhile too; the session
    /// took that Query for the end of the skip, so it read the Sync's ReadyForQuery as the
    /// Query's and refused the next reply as unexpected.
    #[test]
    fn a_query_after_an_extended_error_is_skipped_to_the_sync() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(0, &[]));
        s.feed(&msg(b'Z', b"I"));
        drain(&mut s).unwrap();
        // A window of a portal (Execute, Flush), a Query, then a Close with its Sync.
        let mut req = Request::new();
        req.execute("p", 2).unwrap();
        req.flush();
        req.simple_query("SELECT 1").unwrap();
        req.close_statement("s").unwrap();
        req.sync();
        s.submit(&mut req).unwrap();
        // The Execute fails; the Query and the Close are ignored; the Sync answers.
        s.feed(&msg(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0"));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(drain(&mut s).unwrap(), ["Error", "ReadyForQuery"]);
        assert_eq!(s.pending(), 0);
        let mut req = Request::new();
        req.close_statement("s").unwrap();
        req.sync();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'3', b""));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(drain(&mut s).unwrap(), ["CloseComplete", "ReadyForQuery"]);
        // A simple Query's own error still ends at its own ReadyForQuery.
        let mut req = Request::new();
        req.simple_query("SELECT 1/0").unwrap();
        req.close_statement("s").unwrap();
        req.sync();
        s.submit(&mut req).unwrap();
        s.feed(&msg(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0"));
        s.feed(&msg(b'Z', b"I"));
        s.feed(&msg(b'3', b""));
        s.feed(&msg(b'Z', b"I"));
        assert_eq!(
            drain(&mut s).unwrap(),
            ["Error", "ReadyForQuery", "CloseComplete", "ReadyForQuery"]
        );
    }

    fn parameter_status(name: &str, value: &str) -> Vec<u8> {
        msg(b'S', format!("{name}\0{value}\0").as_bytes())
    }

    #[test]
    fn parameters_are_kept_and_their_number_is_bounded() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(0, &[]));
        s.feed(&parameter_status("TimeZone", "UTC"));
        s.feed(&parameter_status("TimeZone", "Europe/Paris"));
        drain(&mut s).unwrap();
        assert_eq!(s.server_param("TimeZone"), Some("Europe/Paris"));
        for i in 1..MAX_SERVER_PARAMS {
            s.feed(&parameter_status(&format!("p{i}"), "v"));
        }
        // Updating a known one is always fine; one more distinct name is not.
        s.feed(&parameter_status("p1", "w"));
        drain(&mut s).unwrap();
        assert_eq!(s.server_params().len(), MAX_SERVER_PARAMS);
        s.feed(&parameter_status("one_too_many", "v"));
        let err = drain(&mut s).unwrap_err();
        assert!(matches!(&err, Error::Protocol(m) if m.contains("distinct parameters")));
        assert!(s.is_closed());
    }

    #[test]
    fn a_client_encoding_other_than_utf8_closes_the_session() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        s.feed(&auth(0, &[]));
        s.feed(&parameter_status("client_encoding", "UTF8"));
        s.feed(&msg(b'Z', b"I"));
        drain(&mut s).unwrap();
        s.feed(&parameter_status("client_encoding", "LATIN1"));
        let err = drain(&mut s).unwrap_err();
        assert!(matches!(&err, Error::Protocol(m) if m.contains("\"LATIN1\"")));
        assert!(s.is_closed());
        let mut req = Request::new();
        req.sync();
        assert!(s.submit(&mut req).is_err());
    }

    #[test]
    fn submit_requires_a_ready_session() {
        let mut s = session(None, false, ChannelBindingMode::Prefer);
        let mut req = Request::new();
        req.sync();
        assert!(s.submit(&mut req).is_err());
    }
}
