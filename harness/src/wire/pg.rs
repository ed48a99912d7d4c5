//! The Postgres wire protocol (v3), followed one message at a time, and a classifier for
//! the SQL it carries.
//!
//! [`FrontendFollower`] reads what a client sends, [`BackendFollower`] what the server
//! answers; [`classify`] tells what a statement does, so the proxy can slow only writes or
//! swallow only the answer to a COMMIT.
//!
//! The protocol, briefly: a connection opens with untyped messages (an i32 length that
//! counts itself, then an i32 code): optionally an SSLRequest or GSSENCRequest, which the
//! server answers with one unframed byte (`N` no, `S`/`G` yes, then TLS/GSSAPI follows
//! and nothing more can be read), then the StartupMessage, or a CancelRequest on a
//! connection of its own. Every later message, both ways, is one type byte and an i32
//! length that counts itself but not the type byte.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::{be_i32, Follower, WireError};

/// The code of an SSLRequest (`1234 5679`).
const SSL_REQUEST: i32 = 80_877_103;
/// The code of a GSSENCRequest (`1234 5680`).
const GSSENC_REQUEST: i32 = 80_877_104;
/// The code of a CancelRequest (`1234 5678`).
const CANCEL_REQUEST: i32 = 80_877_102;
/// The server refuses longer startup packets (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP_LEN: i32 = 10_000;
/// The first byte of a TLS handshake record: a client that starts TLS without asking
/// (`sslnegotiation=direct`, Postgres 17) or after an accepted SSLRequest.
const TLS_HANDSHAKE: u8 = 0x16;
/// Message types a client may send after the startup.
const FRONTEND_TYPES: &[u8] = b"BCDEFHPQSXcdfp";
/// Message types a server may send after the startup.
const BACKEND_TYPES: &[u8] = b"123ACDEGHIKNRSTVWZcdnstv";
/// A buffer grown past this by one long message is given back once that message is done.
const KEEP_CAPACITY: usize = 1 << 20;

/// A message a client sent, as far as the fault proxy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend<'a> {
    /// Asks to switch to TLS; the server answers with one unframed byte.
    SslRequest,
    /// Asks to switch to GSSAPI encryption; the server answers with one unframed byte.
    GssEncRequest,
    /// Cancels a query running on another connection (this connection then closes).
    CancelRequest,
    /// The StartupMessage: typed messages follow.
    Startup,
    /// A simple Query: one or more statements, run and answered in one go.
    Query {
        /// The SQL text (decoded lossily if it is not UTF-8).
        sql: Cow<'a, str>,
    },
    /// Parse: prepares `sql` as statement `name` (`""` is the unnamed statement).
    Parse {
        /// The statement name.
        name: Cow<'a, str>,
        /// The SQL text.
        sql: Cow<'a, str>,
    },
    /// Bind: makes portal `portal` from statement `statement`.
    Bind {
        /// The portal name (`""` is the unnamed portal).
        portal: Cow<'a, str>,
        /// The prepared statement it runs.
        statement: Cow<'a, str>,
    },
    /// Execute: runs a portal. This is the message that makes the server do the work.
    Execute {
        /// The portal name.
        portal: Cow<'a, str>,
        /// The SQL the portal runs, when the follower saw its Bind and Parse.
        sql: Option<&'a str>,
    },
    /// Close: forgets a prepared statement or a portal.
    Close {
        /// Whether a statement or a portal is closed.
        target: CloseTarget,
        /// Its name.
        name: Cow<'a, str>,
    },
    /// Sync: ends an extended-protocol batch; the server answers ReadyForQuery.
    Sync,
    /// Terminate: the client closes the connection.
    Terminate,
    /// Any other message (Describe, Flush, CopyData, password and SASL messages, ...),
    /// by type byte. Its content was not read.
    Other(u8),
}

/// What a Close message closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseTarget {
    /// A prepared statement (`'S'`).
    Statement,
    /// A portal (`'P'`).
    Portal,
}

/// A frontend message and where it is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendEvent<'a> {
    /// Stream offsets of the whole message, header included.
    pub range: Range<u64>,
    /// The message.
    pub message: Frontend<'a>,
}

/// A message the server sent, as far as the fault proxy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend<'a> {
    /// The one unframed byte answering an SSLRequest or GSSENCRequest: `N` (refused,
    /// the client goes on in plain text), `S` or `G` (accepted: encrypted from here on).
    EncryptionAnswer(u8),
    /// CommandComplete: one statement finished.
    CommandComplete {
        /// Its tag: `COMMIT`, `ROLLBACK`, `INSERT 0 1`, `SELECT 3`, ...
        tag: &'a str,
    },
    /// ReadyForQuery: the server finished a Query or a Sync and waits for the next.
    ReadyForQuery {
        /// The session's transaction state now.
        status: TransactionStatus,
    },
    /// ErrorResponse: the statement (or the rest of the batch) failed.
    ErrorResponse {
        /// The SQLSTATE code (field `C`), such as `23505` or `40001`.
        code: Option<&'a str>,
    },
    /// Any other message, by type byte. Its content was not read.
    Other(u8),
}

/// The transaction status a ReadyForQuery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block; every statement but ROLLBACK is refused.
    Failed,
}

/// A backend message and where it is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendEvent<'a> {
    /// Stream offsets of the whole message, header included.
    pub range: Range<u64>,
    /// The message.
    pub message: Backend<'a>,
}

/// What the framer keeps of a body that spans chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Nothing: the content is never read.
    Skip,
    /// All of it.
    Whole,
    /// Up to and including the n-th NUL: a Bind needs its two names, not its parameters.
    UntilNuls(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A message with a type byte.
    Typed(u8),
    /// A startup-phase message, by code.
    Untyped(i32),
    /// The server's single-byte answer to an encryption request.
    Unframed(u8),
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: Kind,
    body_len: usize,
    keep: Keep,
}

/// What a header said.
enum Parsed {
    /// The header is longer: read this many bytes in all, then parse again.
    More(usize),
    /// A message with this body follows.
    Frame(Frame),
}

#[derive(Debug)]
struct Reading {
    frame: Frame,
    seen: usize,
    nuls: u8,
}

/// A complete message: its frame, its range and the body bytes that were kept.
struct Message<'s> {
    frame: Frame,
    range: Range<u64>,
    body: &'s [u8],
}

/// Cuts a Postgres byte stream into messages, whatever the chunking.
///
/// Shared by both directions: the caller says how long the next header is and how to read
/// it, the framer collects it and the body. A body that is in one chunk is lent out from
/// it; one that spans chunks is copied into `buf` only as far as `Keep` asks.
#[derive(Debug, Default)]
struct Framer {
    /// Stream offset of the current chunk's first byte (of the next chunk between feeds).
    pos: u64,
    header: [u8; 8],
    have: usize,
    need: usize,
    /// Stream offset of the message being read.
    start: u64,
    reading: Option<Reading>,
    buf: Vec<u8>,
}

impl Framer {
    fn partial_start(&self) -> Option<u64> {
        (self.have > 0 || self.reading.is_some()).then_some(self.start)
    }

    /// Reads from `chunk[*i..]` until a message completes (returned) or the chunk ends
    /// (`None`). `want` is the header length of a message starting now; `parse` reads a
    /// header given its bytes and stream offset.
    fn step<'s>(
        &'s mut self,
        chunk: &'s [u8],
        i: &mut usize,
        want: usize,
        mut parse: impl FnMut(&[u8], u64) -> Result<Parsed, WireError>,
    ) -> Result<Option<Message<'s>>, WireError> {
        loop {
            let Some(reading) = &mut self.reading else {
                if self.have == 0 {
                    if *i == chunk.len() {
                        return Ok(None);
                    }
                    self.start = self.pos + *i as u64;
                    self.need = want;
                    self.buf.clear();
                    if self.buf.capacity() > KEEP_CAPACITY {
                        self.buf = Vec::new();
                    }
                }
                let take = (self.need - self.have).min(chunk.len() - *i);
                self.header[self.have..self.have + take].copy_from_slice(&chunk[*i..*i + take]);
                self.have += take;
                *i += take;
                if self.have < self.need {
                    return Ok(None);
                }
                match parse(&self.header[..self.have], self.start)? {
                    Parsed::More(n) => {
                        debug_assert!(n > self.have && n <= self.header.len());
                        self.need = n;
                    }
                    Parsed::Frame(frame) => {
                        self.have = 0;
                        self.reading = Some(Reading {
                            frame,
                            seen: 0,
                            nuls: 0,
                        });
                    }
                }
                continue;
            };
            let frame = reading.frame;
            let rest = frame.body_len - reading.seen;
            let avail = chunk.len() - *i;
            if reading.seen == 0 && avail >= rest {
                // The whole body is in this chunk: lend it, copy nothing.
                let body = &chunk[*i..*i + rest];
                *i += rest;
                self.reading = None;
                let range = self.start..self.pos + *i as u64;
                return Ok(Some(Message { frame, range, body }));
            }
            let take = rest.min(avail);
            let piece = &chunk[*i..*i + take];
            match frame.keep {
                Keep::Skip => {}
                Keep::Whole => self.buf.extend_from_slice(piece),
                Keep::UntilNuls(n) if reading.nuls < n => {
                    let mut end = piece.len();
                    for (k, _) in piece.iter().enumerate().filter(|(_, &b)| b == 0) {
                        reading.nuls += 1;
                        if reading.nuls == n {
                            end = k + 1;
                            break;
                        }
                    }
                    self.buf.extend_from_slice(&piece[..end]);
                }
                Keep::UntilNuls(_) => {}
            }
            reading.seen += take;
            *i += take;
            if reading.seen < frame.body_len {
                return Ok(None);
            }
            self.reading = None;
            let range = self.start..self.pos + *i as u64;
            return Ok(Some(Message {
                frame,
                range,
                body: &self.buf,
            }));
        }
    }
}

/// Reads the header of a typed message: type byte, then a length that counts itself.
fn typed_header(
    h: &[u8],
    at: u64,
    known: &[u8],
    keep: fn(u8) -> Keep,
) -> Result<Parsed, WireError> {
    let tag = h[0];
    if !known.contains(&tag) {
        return Err(WireError::Malformed {
            at,
            reason: "unknown message type",
        });
    }
    let len = be_i32(&h[1..5]);
    if len < 4 {
        return Err(WireError::Malformed {
            at,
            reason: "message length below 4",
        });
    }
    Ok(Parsed::Frame(Frame {
        kind: Kind::Typed(tag),
        body_len: (len - 4) as usize,
        keep: keep(tag),
    }))
}

/// Splits a NUL-terminated string off the front of `bytes`.
fn cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..nul], &bytes[nul + 1..]))
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn malformed(at: u64, reason: &'static str) -> WireError {
    WireError::Malformed { at, reason }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontPhase {
    /// Untyped messages; `negotiated` once an encryption request was sent.
    Startup {
        negotiated: bool,
    },
    Typed,
}

/// Follows what a client sends to a Postgres server.
///
/// Keeps the connection's prepared statements (name -> SQL) and portals (name -> the SQL
/// of the statement bound), so an [`Frontend::Execute`] says which SQL it runs. Password
/// and SASL messages pass through unread.
#[derive(Debug)]
pub struct FrontendFollower {
    framer: Framer,
    session: Session,
    lost: bool,
}

#[derive(Debug)]
struct Session {
    phase: FrontPhase,
    /// Prepared statements by name. `Arc` so a portal shares the text instead of copying.
    statements: HashMap<String, Arc<str>>,
    /// Portals by name: the SQL of the statement they were bound from, if it was seen.
    portals: HashMap<String, Option<Arc<str>>>,
}

impl Default for FrontendFollower {
    fn default() -> Self {
        FrontendFollower::new()
    }
}

impl FrontendFollower {
    /// A follower for a connection that is just opening.
    pub fn new() -> FrontendFollower {
        FrontendFollower {
            framer: Framer::default(),
            session: Session {
                phase: FrontPhase::Startup { negotiated: false },
                statements: HashMap::new(),
                portals: HashMap::new(),
            },
            lost: false,
        }
    }

    /// Reads the next chunk the client sent, reporting each message that completes in it.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_event: F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(FrontendEvent<'a>),
    {
        if self.lost {
            return Err(WireError::Lost);
        }
        let result = self.run(chunk, &mut on_event);
        self.framer.pos += chunk.len() as u64;
        self.lost = result.is_err();
        result
    }

    fn run<F>(&mut self, chunk: &[u8], on_event: &mut F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(FrontendEvent<'a>),
    {
        let mut i = 0;
        loop {
            let phase = self.session.phase;
            let want = match phase {
                FrontPhase::Startup { .. } => 8,
                FrontPhase::Typed => 5,
            };
            let parse = |h: &[u8], at: u64| frontend_header(phase, h, at);
            let Some(message) = self.framer.step(chunk, &mut i, want, parse)? else {
                return Ok(());
            };
            self.session.complete(message, on_event)?;
        }
    }

    /// How many bytes were fed so far.
    pub fn position(&self) -> u64 {
        self.framer.pos
    }

    /// Where the message begun but not yet complete starts, if any.
    pub fn partial_start(&self) -> Option<u64> {
        self.framer.partial_start()
    }

    /// Whether the follower failed on this stream.
    pub fn is_lost(&self) -> bool {
        self.lost
    }
}

fn frontend_header(phase: FrontPhase, h: &[u8], at: u64) -> Result<Parsed, WireError> {
    let FrontPhase::Startup { negotiated } = phase else {
        return typed_header(h, at, FRONTEND_TYPES, |tag| match tag {
            b'Q' | b'P' | b'E' | b'C' | b'S' | b'X' => Keep::Whole,
            b'B' => Keep::UntilNuls(2),
            _ => Keep::Skip,
        });
    };
    // A startup length is below 10000, so its first byte is 0; a TLS record starts 0x16.
    if h[0] == TLS_HANDSHAKE {
        return Err(WireError::Encrypted { at });
    }
    let len = be_i32(&h[0..4]);
    let code = be_i32(&h[4..8]);
    // After an accepted GSSENCRequest the client sends GSSAPI tokens: not a startup packet.
    let refuse = |reason| {
        if negotiated {
            WireError::Encrypted { at }
        } else {
            malformed(at, reason)
        }
    };
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(refuse("startup packet length out of range"));
    }
    let body_len = (len - 8) as usize;
    let ok = match code {
        SSL_REQUEST | GSSENC_REQUEST => len == 8,
        // 3.0 sends a 4-byte secret key; 3.2 (Postgres 18) up to 256 bytes.
        CANCEL_REQUEST => (12..=264).contains(&len),
        // Protocol 3.x: the server negotiates the minor version.
        c => c >> 16 == 3,
    };
    if !ok {
        return Err(refuse("unknown startup packet"));
    }
    Ok(Parsed::Frame(Frame {
        kind: Kind::Untyped(code),
        body_len,
        keep: Keep::Skip,
    }))
}

impl Session {
    fn complete<F>(&mut self, message: Message<'_>, on_event: &mut F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(FrontendEvent<'a>),
    {
        let Message { frame, range, body } = message;
        let at = range.start;
        let bad = |reason| malformed(at, reason);
        let message = match frame.kind {
            Kind::Untyped(SSL_REQUEST) => {
                self.phase = FrontPhase::Startup { negotiated: true };
                Frontend::SslRequest
            }
            Kind::Untyped(GSSENC_REQUEST) => {
                self.phase = FrontPhase::Startup { negotiated: true };
                Frontend::GssEncRequest
            }
            Kind::Untyped(CANCEL_REQUEST) => Frontend::CancelRequest,
            Kind::Untyped(_) => {
                self.phase = FrontPhase::Typed;
                Frontend::Startup
            }
            Kind::Unframed(_) => unreachable!("the frontend has no unframed messages"),
            Kind::Typed(b'Q') => {
                let (sql, _) = cstr(body).ok_or_else(|| bad("Query without its NUL"))?;
                // A simple Query replaces the unnamed statement and portal.
                self.statements.remove("");
                self.portals.remove("");
                Frontend::Query { sql: text(sql) }
            }
            Kind::Typed(b'P') => {
                let (name, rest) = cstr(body).ok_or_else(|| bad("Parse without a name"))?;
                let (sql, _) = cstr(rest).ok_or_else(|| bad("Parse without its SQL"))?;
                let (name, sql) = (text(name), text(sql));
                self.statements
                    .insert(name.clone().into_owned(), Arc::from(&*sql));
                Frontend::Parse { name, sql }
            }
            Kind::Typed(b'B') => {
                let (portal, rest) = cstr(body).ok_or_else(|| bad("Bind without a portal"))?;
                let (statement, _) = cstr(rest).ok_or_else(|| bad("Bind without a statement"))?;
                let (portal, statement) = (text(portal), text(statement));
                let sql = self.statements.get(&*statement).cloned();
                self.portals.insert(portal.clone().into_owned(), sql);
                Frontend::Bind { portal, statement }
            }
            Kind::Typed(b'E') => {
                let (portal, _) = cstr(body).ok_or_else(|| bad("Execute without a portal"))?;
                let portal = text(portal);
                let sql = self.portals.get(&*portal).and_then(|s| s.as_deref());
                on_event(FrontendEvent {
                    range,
                    message: Frontend::Execute { portal, sql },
                });
                return Ok(());
            }
            Kind::Typed(b'C') => {
                let (&which, rest) = body.split_first().ok_or_else(|| bad("empty Close"))?;
                let (name, _) = cstr(rest).ok_or_else(|| bad("Close without a name"))?;
                let name = text(name);
                let target = match which {
                    b'S' => {
                        self.statements.remove(&*name);
                        CloseTarget::Statement
                    }
                    b'P' => {
                        self.portals.remove(&*name);
                        CloseTarget::Portal
                    }
                    _ => return Err(bad("Close of neither statement nor portal")),
                };
                Frontend::Close { target, name }
            }
            Kind::Typed(b'S') => Frontend::Sync,
            Kind::Typed(b'X') => Frontend::Terminate,
            Kind::Typed(tag) => Frontend::Other(tag),
        };
        on_event(FrontendEvent { range, message });
        Ok(())
    }
}

impl Follower for FrontendFollower {
    type Event<'a> = FrontendEvent<'a>;

    fn feed<F>(&mut self, chunk: &[u8], on_event: F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(FrontendEvent<'a>),
    {
        FrontendFollower::feed(self, chunk, on_event)
    }

    fn position(&self) -> u64 {
        FrontendFollower::position(self)
    }

    fn partial_start(&self) -> Option<u64> {
        FrontendFollower::partial_start(self)
    }

    fn is_lost(&self) -> bool {
        FrontendFollower::is_lost(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackPhase {
    /// Before the first typed message: an unframed encryption answer may come.
    Startup,
    Typed,
    /// TLS or GSSAPI was accepted.
    Encrypted,
}

/// Follows what a Postgres server sends to a client.
///
/// Needs no word from the frontend follower: before authentication a server sends only
/// `R`, `E` or `v` messages, so an `N`, `S` or `G` there is the unframed answer to an
/// encryption request.
#[derive(Debug)]
pub struct BackendFollower {
    framer: Framer,
    phase: BackPhase,
    lost: bool,
}

impl Default for BackendFollower {
    fn default() -> Self {
        BackendFollower::new()
    }
}

impl BackendFollower {
    /// A follower for a connection that is just opening.
    pub fn new() -> BackendFollower {
        BackendFollower {
            framer: Framer::default(),
            phase: BackPhase::Startup,
            lost: false,
        }
    }

    /// Reads the next chunk the server sent, reporting each message that completes in it.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_event: F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(BackendEvent<'a>),
    {
        if self.lost {
            return Err(WireError::Lost);
        }
        let result = self.run(chunk, &mut on_event);
        self.framer.pos += chunk.len() as u64;
        self.lost = result.is_err();
        result
    }

    fn run<F>(&mut self, chunk: &[u8], on_event: &mut F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(BackendEvent<'a>),
    {
        let mut i = 0;
        loop {
            let phase = self.phase;
            if phase == BackPhase::Encrypted && i < chunk.len() {
                return Err(WireError::Encrypted {
                    at: self.framer.pos + i as u64,
                });
            }
            let want = if phase == BackPhase::Startup { 1 } else { 5 };
            let parse = |h: &[u8], at: u64| backend_header(h, at);
            let Some(Message { frame, range, body }) =
                self.framer.step(chunk, &mut i, want, parse)?
            else {
                return Ok(());
            };
            let at = range.start;
            let message = match frame.kind {
                Kind::Unframed(answer) => {
                    if answer != b'N' {
                        self.phase = BackPhase::Encrypted;
                    }
                    Backend::EncryptionAnswer(answer)
                }
                Kind::Typed(tag) => {
                    self.phase = BackPhase::Typed;
                    backend_message(tag, body, at)?
                }
                Kind::Untyped(_) => unreachable!("the backend has no untyped messages"),
            };
            on_event(BackendEvent { range, message });
        }
    }

    /// How many bytes were fed so far.
    pub fn position(&self) -> u64 {
        self.framer.pos
    }

    /// Where the message begun but not yet complete starts, if any.
    pub fn partial_start(&self) -> Option<u64> {
        self.framer.partial_start()
    }

    /// Whether the follower failed on this stream.
    pub fn is_lost(&self) -> bool {
        self.lost
    }
}

fn backend_header(h: &[u8], at: u64) -> Result<Parsed, WireError> {
    if h.len() == 1 {
        return match h[0] {
            b'N' | b'S' | b'G' => Ok(Parsed::Frame(Frame {
                kind: Kind::Unframed(h[0]),
                body_len: 0,
                keep: Keep::Skip,
            })),
            // Authentication, an error, or NegotiateProtocolVersion: a typed header.
            b'R' | b'E' | b'v' => Ok(Parsed::More(5)),
            _ => Err(malformed(at, "unexpected first message from the server")),
        };
    }
    typed_header(h, at, BACKEND_TYPES, |tag| match tag {
        b'C' | b'Z' | b'E' => Keep::Whole,
        _ => Keep::Skip,
    })
}

fn backend_message(tag: u8, body: &[u8], at: u64) -> Result<Backend<'_>, WireError> {
    Ok(match tag {
        b'C' => {
            let (tag, _) =
                cstr(body).ok_or_else(|| malformed(at, "CommandComplete without NUL"))?;
            let tag = std::str::from_utf8(tag)
                .map_err(|_| malformed(at, "CommandComplete tag is not text"))?;
            Backend::CommandComplete { tag }
        }
        b'Z' => {
            let status = match body {
                [b'I'] => TransactionStatus::Idle,
                [b'T'] => TransactionStatus::InTransaction,
                [b'E'] => TransactionStatus::Failed,
                _ => return Err(malformed(at, "bad ReadyForQuery status")),
            };
            Backend::ReadyForQuery { status }
        }
        b'E' => {
            let mut code = None;
            let mut rest = body;
            while let Some((&field, after)) = rest.split_first() {
                if field == 0 {
                    break;
                }
                let (value, after) =
                    cstr(after).ok_or_else(|| malformed(at, "ErrorResponse field without NUL"))?;
                if field == b'C' {
                    code = std::str::from_utf8(value).ok();
                }
                rest = after;
            }
            Backend::ErrorResponse { code }
        }
        other => Backend::Other(other),
    })
}

impl Follower for BackendFollower {
    type Event<'a> = BackendEvent<'a>;

    fn feed<F>(&mut self, chunk: &[u8], on_event: F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(BackendEvent<'a>),
    {
        BackendFollower::feed(self, chunk, on_event)
    }

    fn position(&self) -> u64 {
        BackendFollower::position(self)
    }

    fn partial_start(&self) -> Option<u64> {
        BackendFollower::partial_start(self)
    }

    fn is_lost(&self) -> bool {
        BackendFollower::is_lost(self)
    }
}

/// What a statement does, coarsely: what an aimed fault selects on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// BEGIN, START TRANSACTION.
    Begin,
    /// COMMIT, END, COMMIT AND CHAIN. Not COMMIT PREPARED: that finishes a two-phase
    /// transaction prepared earlier, possibly by another session, and is not allowed inside
    /// a transaction block, so it is [`StatementKind::Other`] (as are PREPARE TRANSACTION
    /// and ROLLBACK PREPARED).
    Commit,
    /// ROLLBACK, ABORT (not ROLLBACK TO SAVEPOINT, which keeps the transaction open:
    /// that is Other).
    Rollback,
    /// Changes rows: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY ... FROM, a WITH whose
    /// parts change rows, EXPLAIN ANALYZE of a write.
    Write,
    /// Reads: SELECT (also SELECT ... FOR UPDATE, which locks but writes nothing), VALUES,
    /// TABLE, SHOW, FETCH, DECLARE, COPY ... TO, EXPLAIN.
    Read,
    /// Everything else: SET, DDL, SELECT ... INTO (creates a table), CALL and DO (their
    /// effect is not in the text), SQL-level PREPARE/EXECUTE, savepoints.
    Other,
}

impl StatementKind {
    /// What a CommandComplete tag says finished: `COMMIT` is [`StatementKind::Commit`],
    /// `ROLLBACK` is [`StatementKind::Rollback`] (also the answer to a COMMIT of a failed
    /// transaction), `INSERT 0 1` is [`StatementKind::Write`], and so on. `COPY n` is
    /// Other: the tag does not say which way the copy went.
    pub fn of_tag(tag: &str) -> StatementKind {
        let mut words = tag.split(' ');
        let first = words.next().unwrap_or("");
        let second = words.next();
        match first {
            "BEGIN" => StatementKind::Begin,
            "START" if second == Some("TRANSACTION") => StatementKind::Begin,
            "COMMIT" if second.is_none() => StatementKind::Commit,
            "ROLLBACK" if second.is_none() => StatementKind::Rollback,
            "INSERT" | "UPDATE" | "DELETE" | "MERGE" => StatementKind::Write,
            "TRUNCATE" => StatementKind::Write,
            "SELECT" | "FETCH" | "MOVE" | "SHOW" | "DECLARE" => StatementKind::Read,
            _ => StatementKind::Other,
        }
    }

    /// Which kind wins when one Query holds several statements: a write anywhere makes
    /// the Query a write, then COMMIT, ROLLBACK, BEGIN, a read.
    fn rank(self) -> u8 {
        match self {
            StatementKind::Write => 5,
            StatementKind::Commit => 4,
            StatementKind::Rollback => 3,
            StatementKind::Begin => 2,
            StatementKind::Read => 1,
            StatementKind::Other => 0,
        }
    }
}

/// A classified statement: what it does and, for a write, the table it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// What it does.
    pub kind: StatementKind,
    /// The table an INSERT, UPDATE, DELETE, MERGE, TRUNCATE or COPY FROM names (the first
    /// one written, for a WITH). Unquoted parts are lowercased as Postgres folds them,
    /// quoted parts kept as written, a schema joined with `.`: `Public."Rooms"` is
    /// `public.Rooms`.
    pub table: Option<String>,
}

impl Statement {
    fn of(kind: StatementKind) -> Statement {
        Statement { kind, table: None }
    }

    /// Whether the statement changes rows (what `--slow-writes` aims at).
    pub fn is_write(&self) -> bool {
        self.kind == StatementKind::Write
    }
}

/// Classifies SQL that may hold several statements (a simple Query): the strongest kind
/// wins (a write, then COMMIT, ROLLBACK, BEGIN, a read, other), with the table of the first
/// statement of that kind. Empty SQL is Other.
///
/// A caller aiming with its own rule (a `--slow-sql` regex) matches the event's SQL text
/// itself, or each text [`statements`] yields.
pub fn classify(sql: &str) -> Statement {
    let mut best: Option<Statement> = None;
    for (_, statement) in statements(sql) {
        if best
            .as_ref()
            .is_none_or(|b| statement.kind.rank() > b.kind.rank())
        {
            best = Some(statement);
        }
    }
    best.unwrap_or(Statement::of(StatementKind::Other))
}

/// The statements of `sql` in order, each with its text (comments between statements and
/// the separating `;` left out) and its classification. Empty statements are skipped.
pub fn statements(sql: &str) -> Statements<'_> {
    Statements {
        lexer: Lexer::new(sql, 0, sql.len()),
    }
}

/// The iterator [`statements`] returns.
#[derive(Debug, Clone)]
pub struct Statements<'a> {
    lexer: Lexer<'a>,
}

impl<'a> Iterator for Statements<'a> {
    type Item = (&'a str, Statement);

    fn next(&mut self) -> Option<Self::Item> {
        let src = self.lexer.src;
        loop {
            let first = self.lexer.next()?;
            if first.tok == Tok::Semi {
                continue;
            }
            let start = first.start;
            let mut end = first.end;
            // CREATE FUNCTION ... BEGIN ATOMIC ...; ...; END holds semicolons: psql too
            // counts BEGIN/CASE against END inside such a body.
            let creates = first.is("create");
            let mut previous = first;
            let mut atomic = 0u32;
            for token in self.lexer.by_ref() {
                if token.tok == Tok::Semi && atomic == 0 {
                    break;
                }
                if creates {
                    let opens = token.is("atomic") && previous.is("begin");
                    if opens || (atomic > 0 && token.is("case")) {
                        atomic += 1;
                    } else if atomic > 0 && token.is("end") {
                        atomic -= 1;
                    }
                }
                end = token.end;
                previous = token;
            }
            let statement = classify_range(src, start, end, 0);
            return Some((&src[start..end], statement));
        }
    }
}

/// How deep WITH and EXPLAIN may nest before the classifier stops looking (and says
/// Other): SQL comes from the client, and recursion must not be its to choose.
const MAX_NESTING: u32 = 32;

/// Classifies the one statement in `src[start..end]`.
fn classify_range(src: &str, start: usize, end: usize, depth: u32) -> Statement {
    use StatementKind::*;
    if depth > MAX_NESTING {
        return Statement::of(Other);
    }
    let mut lx = Lexer::new(src, start, end);
    let Some(first) = lx.next() else {
        return Statement::of(Other);
    };
    if first.tok == Tok::Open {
        // (SELECT ...) UNION (SELECT ...), (VALUES ...).
        return Statement::of(Read);
    }
    let Tok::Word(word) = first.tok else {
        return Statement::of(Other);
    };
    let next_is = |lx: &Lexer<'_>, kw: &str| lx.clone().next().is_some_and(|t| t.is(kw));
    match word.to_ascii_lowercase().as_str() {
        "begin" => Statement::of(Begin),
        "start" if next_is(&lx, "transaction") => Statement::of(Begin),
        "commit" if next_is(&lx, "prepared") => Statement::of(Other),
        "commit" | "end" => Statement::of(Commit),
        "abort" => Statement::of(Rollback),
        "rollback" => {
            let mut t = lx.next();
            if t.is_some_and(|t| t.is("work") || t.is("transaction")) {
                t = lx.next();
            }
            if t.is_some_and(|t| t.is("to") || t.is("prepared")) {
                Statement::of(Other)
            } else {
                Statement::of(Rollback)
            }
        }
        "insert" | "merge" => write(lx.next().is_some_and(|t| t.is("into")), &mut lx),
        "delete" => write(lx.next().is_some_and(|t| t.is("from")), &mut lx),
        "update" => write(true, &mut lx),
        "truncate" => {
            if next_is(&lx, "table") {
                lx.next();
            }
            write(true, &mut lx)
        }
        "copy" => {
            if lx.clone().next().is_some_and(|t| t.tok == Tok::Open) {
                return Statement::of(Read); // COPY (query) TO
            }
            let table = table_name(&mut lx);
            let mut depth = 0u32;
            for token in lx {
                match token.tok {
                    Tok::Open => depth += 1,
                    Tok::Close => depth = depth.saturating_sub(1),
                    _ if depth == 0 && token.is("from") => {
                        return Statement { kind: Write, table };
                    }
                    _ if depth == 0 && token.is("to") => break,
                    _ => {}
                }
            }
            Statement::of(Read)
        }
        "select" => {
            // SELECT ... INTO t creates a table; FOR UPDATE only locks: still a read.
            let mut depth = 0u32;
            for token in lx {
                match token.tok {
                    Tok::Open => depth += 1,
                    Tok::Close => depth = depth.saturating_sub(1),
                    _ if depth == 0 && token.is("into") => return Statement::of(Other),
                    _ => {}
                }
            }
            Statement::of(Read)
        }
        "values" | "table" | "show" | "fetch" | "move" | "declare" => Statement::of(Read),
        "with" => classify_with(src, lx, end, depth),
        "explain" => classify_explain(src, lx, end, depth),
        _ => Statement::of(Other),
    }
}

/// A write whose table name follows (after the INTO or FROM `expected` says was there).
fn write(expected: bool, lx: &mut Lexer<'_>) -> Statement {
    let table = if expected { table_name(lx) } else { None };
    Statement {
        kind: StatementKind::Write,
        table,
    }
}

/// Reads `[ONLY] name[.name...]`, folding unquoted parts to lowercase.
fn table_name(lx: &mut Lexer<'_>) -> Option<String> {
    let mut token = lx.next()?;
    if token.is("only") {
        token = lx.next()?;
    }
    let mut name = String::new();
    loop {
        match token.tok {
            Tok::Word(w) => name.extend(w.chars().map(|c| c.to_ascii_lowercase())),
            Tok::Quoted(q) => name.push_str(&q.replace("\"\"", "\"")),
            _ => return None,
        }
        let mut ahead = lx.clone();
        if ahead.next().is_some_and(|t| t.tok == Tok::Dot) {
            name.push('.');
            *lx = ahead;
            token = lx.next()?;
        } else {
            return Some(name);
        }
    }
}

/// Skips to the `)` closing an `(` just read; returns that `)`'s start (or the end).
fn skip_balanced(lx: &mut Lexer<'_>) -> usize {
    let mut depth = 1u32;
    for token in lx.by_ref() {
        match token.tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return token.start;
                }
            }
            _ => {}
        }
    }
    lx.end
}

/// `WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (body) [SEARCH/CYCLE ...], ...
/// main`: a write if any body or the main statement writes.
fn classify_with(src: &str, mut lx: Lexer<'_>, end: usize, depth: u32) -> Statement {
    use StatementKind::*;
    let mut first_write: Option<Statement> = None;
    let mut t = lx.next();
    if t.is_some_and(|t| t.is("recursive")) {
        t = lx.next();
    }
    loop {
        if !t.is_some_and(|t| matches!(t.tok, Tok::Word(_) | Tok::Quoted(_))) {
            return Statement::of(Other);
        }
        t = lx.next();
        if t.is_some_and(|t| t.tok == Tok::Open) {
            skip_balanced(&mut lx);
            t = lx.next();
        }
        if !t.is_some_and(|t| t.is("as")) {
            return Statement::of(Other);
        }
        t = lx.next();
        if t.is_some_and(|t| t.is("not")) {
            t = lx.next();
        }
        if t.is_some_and(|t| t.is("materialized")) {
            t = lx.next();
        }
        if !t.is_some_and(|t| t.tok == Tok::Open) {
            return Statement::of(Other);
        }
        let body_start = lx.pos;
        let body_end = skip_balanced(&mut lx);
        let body = classify_range(src, body_start, body_end, depth + 1);
        if body.kind == Write && first_write.is_none() {
            first_write = Some(body);
        }
        // SEARCH ... SET col / CYCLE ... USING path may follow the body.
        t = lx.next();
        while let Some(token) = t {
            if token.tok == Tok::Comma || token.tok == Tok::Open || token.starts_statement() {
                break;
            }
            t = lx.next();
        }
        if t.is_some_and(|t| t.tok == Tok::Comma) {
            t = lx.next();
            continue;
        }
        break;
    }
    let main = match t {
        Some(token) => classify_range(src, token.start, end, depth + 1),
        None => Statement::of(Other),
    };
    first_write.unwrap_or(main)
}

/// `EXPLAIN [(options)] [ANALYZE] [VERBOSE] statement`: only ANALYZE runs the statement.
fn classify_explain(src: &str, mut lx: Lexer<'_>, end: usize, depth: u32) -> Statement {
    let is_analyze = |t: &Token<'_>| t.is("analyze") || t.is("analyse");
    let mut analyze = false;
    let mut t = lx.next();
    if t.is_some_and(|t| t.tok == Tok::Open) {
        let mut previous: Option<Token<'_>> = None;
        for token in lx.by_ref() {
            if token.tok == Tok::Close {
                break;
            }
            if previous.is_some_and(|p| is_analyze(&p)) {
                // ANALYZE false / off / 0 turns it off again.
                analyze = !(token.is("false") || token.is("off") || token.text(src) == "0");
            } else if is_analyze(&token) {
                analyze = true;
            }
            previous = Some(token);
        }
        t = lx.next();
    }
    while let Some(token) = t.filter(|t| is_analyze(t) || t.is("verbose")) {
        analyze |= is_analyze(&token);
        t = lx.next();
    }
    match t {
        Some(token) if analyze => classify_range(src, token.start, end, depth + 1),
        _ => Statement::of(StatementKind::Read),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// An unquoted identifier or keyword, as written.
    Word(&'a str),
    /// A double-quoted identifier, without its quotes (doubled quotes still doubled).
    Quoted(&'a str),
    Open,
    Close,
    Comma,
    Semi,
    Dot,
    /// A literal, parameter, operator: nothing the classifier looks into.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    start: usize,
    end: usize,
}

impl Token<'_> {
    /// Whether this is the keyword `kw` (lowercase), in any case.
    fn is(&self, kw: &str) -> bool {
        matches!(self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn text<'s>(&self, src: &'s str) -> &'s str {
        &src[self.start..self.end]
    }

    fn starts_statement(&self) -> bool {
        [
            "select", "insert", "update", "delete", "merge", "values", "table",
        ]
        .iter()
        .any(|kw| self.is(kw))
    }
}

/// A lexer over `src[pos..end]` that knows just enough SQL to never mistake the inside of
/// a string, quoted identifier, dollar quote or comment for code.
#[derive(Debug, Clone)]
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    end: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, pos: usize, end: usize) -> Lexer<'a> {
        Lexer { src, pos, end }
    }

    fn bytes(&self) -> &'a [u8] {
        &self.src.as_bytes()[..self.end]
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.bytes().get(self.pos + k).copied()
    }

    /// Skips whitespace and comments.
    fn skip_blank(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'-' if b.get(self.pos + 1) == Some(&b'-') => {
                    self.pos = b[self.pos..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |n| self.pos + n + 1);
                }
                b'/' if b.get(self.pos + 1) == Some(&b'*') => {
                    // Postgres block comments nest.
                    let mut depth = 0u32;
                    while self.pos < b.len() {
                        if b[self.pos..].starts_with(b"/*") {
                            depth += 1;
                            self.pos += 2;
                        } else if b[self.pos..].starts_with(b"*/") {
                            depth -= 1;
                            self.pos += 2;
                            if depth == 0 {
                                break;
                            }
                        } else {
                            self.pos += 1;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Skips a quoted run starting at the opening `quote`; a doubled quote stands for one,
    /// and with `backslash` (E'...') a backslash escapes the next byte.
    fn skip_quoted(&mut self, quote: u8, backslash: bool) {
        let b = self.bytes();
        self.pos += 1;
        while self.pos < b.len() {
            let c = b[self.pos];
            if backslash && c == b'\\' {
                self.pos += 2;
            } else if c == quote {
                if b.get(self.pos + 1) == Some(&quote) {
                    self.pos += 2;
                } else {
                    self.pos += 1;
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        self.pos = b.len();
    }

    /// At a `$`: a dollar quote `$tag$...$tag$` (skipped whole), a parameter `$1`, or a
    /// lone `$`.
    fn skip_dollar(&mut self) {
        let b = self.bytes();
        let start = self.pos;
        let mut k = start + 1;
        if b.get(k).is_some_and(|c| c.is_ascii_digit()) {
            while b.get(k).is_some_and(|c| c.is_ascii_digit()) {
                k += 1;
            }
            self.pos = k;
            return;
        }
        if b.get(k).is_some_and(|&c| is_ident_start(c)) {
            while b.get(k).is_some_and(|&c| is_ident(c) && c != b'$') {
                k += 1;
            }
        }
        if b.get(k) != Some(&b'$') {
            self.pos = start + 1;
            return;
        }
        let delimiter = &b[start..=k];
        let body = k + 1;
        self.pos = b[body..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map_or(b.len(), |n| body + n + delimiter.len());
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_blank();
        let b = self.bytes();
        let start = self.pos;
        let c = *b.get(start)?;
        let tok = match c {
            b'\'' => {
                self.skip_quoted(b'\'', false);
                Tok::Other
            }
            b'"' => {
                self.skip_quoted(b'"', false);
                let close = if b[self.pos - 1] == b'"' && self.pos > start + 1 {
                    self.pos - 1
                } else {
                    self.pos
                };
                Tok::Quoted(&self.src[start + 1..close])
            }
            b'$' => {
                self.skip_dollar();
                Tok::Other
            }
            b'(' | b')' | b',' | b';' => {
                self.pos += 1;
                match c {
                    b'(' => Tok::Open,
                    b')' => Tok::Close,
                    b',' => Tok::Comma,
                    _ => Tok::Semi,
                }
            }
            b'.' if !self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.pos += 1;
                Tok::Dot
            }
            b'0'..=b'9' | b'.' => {
                while self
                    .peek_at(0)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || d == b'.' || d == b'_')
                {
                    self.pos += 1;
                }
                Tok::Other
            }
            c if is_ident_start(c) => {
                while self.peek_at(0).is_some_and(is_ident) {
                    self.pos += 1;
                }
                let word = &self.src[start..self.pos];
                match (word.as_bytes(), self.peek_at(0), self.peek_at(1)) {
                    // E'..' escapes with backslashes; B'..', X'..', N'..' do not.
                    ([e], Some(b'\''), _) if e.eq_ignore_ascii_case(&b'e') => {
                        self.skip_quoted(b'\'', true);
                        Tok::Other
                    }
                    ([p], Some(b'\''), _) if b"bBxXnN".contains(p) => {
                        self.skip_quoted(b'\'', false);
                        Tok::Other
                    }
                    // U&'..' and U&".." (Unicode escapes).
                    ([u], Some(b'&'), Some(q @ (b'\'' | b'"')))
                        if u.eq_ignore_ascii_case(&b'u') =>
                    {
                        self.pos += 1;
                        self.skip_quoted(q, false);
                        Tok::Other
                    }
                    _ => Tok::Word(word),
                }
            }
            _ => {
                self.pos += 1;
                Tok::Other
            }
        };
        Some(Token {
            tok,
            start,
            end: self.pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PSQL_SSL_UP: &[u8] = include_bytes!("captures/pg-psql-ssl.up.bin");
    const PSQL_SSL_DOWN: &[u8] = include_bytes!("captures/pg-psql-ssl.down.bin");
    const PSQL_MULTI_UP: &[u8] = include_bytes!("captures/pg-psql-multi.up.bin");
    const PSQL_MULTI_DOWN: &[u8] = include_bytes!("captures/pg-psql-multi.down.bin");
    const FAILED_COMMIT_UP: &[u8] = include_bytes!("captures/pg-psql-failed-commit.up.bin");
    const FAILED_COMMIT_DOWN: &[u8] = include_bytes!("captures/pg-psql-failed-commit.down.bin");
    const TOKIO_UP: &[u8] = include_bytes!("captures/pg-tokio-postgres.up.bin");
    const TOKIO_DOWN: &[u8] = include_bytes!("captures/pg-tokio-postgres.down.bin");

    const FRONTENDS: &[&[u8]] = &[PSQL_SSL_UP, PSQL_MULTI_UP, FAILED_COMMIT_UP, TOKIO_UP];
    const BACKENDS: &[&[u8]] = &[
        PSQL_SSL_DOWN,
        PSQL_MULTI_DOWN,
        FAILED_COMMIT_DOWN,
        TOKIO_DOWN,
    ];

    /// What a follower reported: each event's Debug form, then the error if one came.
    type Trace = (Vec<String>, Option<WireError>);

    fn frontend<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> Trace {
        let mut follower = FrontendFollower::new();
        let mut events = Vec::new();
        for chunk in chunks {
            if let Err(e) = follower.feed(chunk, |e| events.push(format!("{e:?}"))) {
                assert!(follower.is_lost());
                assert_eq!(follower.feed(b"x", |_| {}), Err(WireError::Lost));
                return (events, Some(e));
            }
        }
        (events, None)
    }

    fn backend<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> Trace {
        let mut follower = BackendFollower::new();
        let mut events = Vec::new();
        for chunk in chunks {
            if let Err(e) = follower.feed(chunk, |e| events.push(format!("{e:?}"))) {
                assert!(follower.is_lost());
                assert_eq!(follower.feed(b"x", |_| {}), Err(WireError::Lost));
                return (events, Some(e));
            }
        }
        (events, None)
    }

    /// `stream` cut at each of `cuts` (sorted, deduplicated, clamped).
    fn cut<'s>(stream: &'s [u8], cuts: &[usize]) -> Vec<&'s [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut from = 0;
        for p in points {
            pieces.push(&stream[from..p]);
            from = p;
        }
        pieces.push(&stream[from..]);
        pieces
    }

    fn frontend_messages(stream: &[u8]) -> Vec<(Range<u64>, String)> {
        let mut follower = FrontendFollower::new();
        let mut out = Vec::new();
        follower
            .feed(stream, |e| out.push((e.range, format!("{:?}", e.message))))
            .unwrap();
        out
    }

    #[test]
    fn psql_with_ssl_request_is_followed_to_the_end() {
        let (events, error) = frontend([PSQL_SSL_UP]);
        assert_eq!(error, None);
        assert_eq!(events.len(), 11, "{events:#?}");
        let messages = frontend_messages(PSQL_SSL_UP);
        assert_eq!(messages[0], (0..8, "SslRequest".to_string()));
        assert_eq!(messages[1].1, "Startup");
        assert_eq!(messages.last().unwrap().1, "Terminate");
        let kinds: Vec<StatementKind> = statements_of_queries(PSQL_SSL_UP)
            .iter()
            .map(|sql| classify(sql).kind)
            .collect();
        use StatementKind::*;
        assert_eq!(
            kinds,
            [Other, Begin, Write, Read, Commit, Write, Write, Read],
            "CREATE, BEGIN, INSERT, SELECT FOR UPDATE, COMMIT, INSERT, WITH DELETE, SELECT"
        );
        // The ranges tile the stream.
        assert_eq!(messages.last().unwrap().0.end, PSQL_SSL_UP.len() as u64);
        for pair in messages.windows(2) {
            assert_eq!(pair[0].0.end, pair[1].0.start);
        }
    }

    fn statements_of_queries(stream: &[u8]) -> Vec<String> {
        let mut follower = FrontendFollower::new();
        let mut sql = Vec::new();
        follower
            .feed(stream, |e| {
                if let Frontend::Query { sql: s } = e.message {
                    sql.push(s.into_owned());
                }
            })
            .unwrap();
        sql
    }

    #[test]
    fn the_server_refuses_ssl_with_one_unframed_byte() {
        let mut follower = BackendFollower::new();
        let mut messages = Vec::new();
        follower
            .feed(PSQL_SSL_DOWN, |e| {
                messages.push((e.range, format!("{:?}", e.message)))
            })
            .unwrap();
        assert_eq!(messages[0], (0..1, "EncryptionAnswer(78)".to_string()));
        assert!(messages
            .iter()
            .any(|(_, m)| m == "ErrorResponse { code: Some(\"23505\") }"));
        let tags: Vec<&str> = messages
            .iter()
            .filter_map(|(_, m)| m.strip_prefix("CommandComplete { tag: \""))
            .map(|m| m.trim_end_matches("\" }"))
            .collect();
        assert_eq!(
            tags,
            [
                "CREATE TABLE",
                "BEGIN",
                "INSERT 0 1",
                "SELECT 1",
                "COMMIT",
                "SELECT 1",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn one_query_with_three_statements_is_a_write_answered_three_times() {
        let sql = statements_of_queries(PSQL_MULTI_UP);
        assert_eq!(
            sql,
            ["BEGIN; UPDATE bookings SET room = 102 WHERE id = 1; commit;"]
        );
        assert_eq!(
            classify(&sql[0]),
            Statement {
                kind: StatementKind::Write,
                table: Some("bookings".into())
            }
        );
        let (events, error) = backend([PSQL_MULTI_DOWN]);
        assert_eq!(error, None);
        let tail: Vec<&str> = events
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(String::as_str)
            .collect();
        assert!(tail[0].contains("tag: \"BEGIN\""), "{tail:?}");
        assert!(tail[1].contains("tag: \"UPDATE 1\""), "{tail:?}");
        assert!(tail[2].contains("tag: \"COMMIT\""), "{tail:?}");
        assert!(tail[3].contains("status: Idle"), "{tail:?}");
    }

    #[test]
    fn a_commit_of_a_failed_transaction_is_answered_rollback() {
        let sql = statements_of_queries(FAILED_COMMIT_UP);
        assert_eq!(classify(&sql[2]).kind, StatementKind::Commit);
        let mut follower = BackendFollower::new();
        let mut messages = Vec::new();
        follower
            .feed(FAILED_COMMIT_DOWN, |e| {
                messages.push(format!("{:?}", e.message))
            })
            .unwrap();
        let n = messages.len();
        assert_eq!(
            messages[n - 4..],
            [
                "ErrorResponse { code: Some(\"23505\") }",
                "ReadyForQuery { status: Failed }",
                "CommandComplete { tag: \"ROLLBACK\" }",
                "ReadyForQuery { status: Idle }",
            ]
        );
        assert_eq!(StatementKind::of_tag("ROLLBACK"), StatementKind::Rollback);
    }

    #[test]
    fn tokio_postgres_executes_resolve_to_their_sql() {
        let mut follower = FrontendFollower::new();
        let mut executed = Vec::new();
        let mut others = Vec::new();
        follower
            .feed(TOKIO_UP, |e| match e.message {
                Frontend::Execute { portal, sql } => {
                    executed.push((portal.into_owned(), sql.map(str::to_owned)))
                }
                Frontend::Other(tag) => others.push(tag),
                _ => {}
            })
            .unwrap();
        let insert = "INSERT INTO bookings (room, night) VALUES ($1, DATE '2024-02-01' + $2::int)";
        let lock = "SELECT id FROM bookings WHERE room = $1 FOR UPDATE";
        assert_eq!(
            executed,
            [
                (String::new(), Some(insert.to_string())),
                (String::new(), Some(lock.to_string())),
                (String::new(), Some(insert.to_string())),
                (
                    "p0".to_string(),
                    Some("SELECT id FROM bookings".to_string())
                ),
            ]
        );
        assert!(classify(insert).is_write());
        assert!(!classify(lock).is_write());
        // SCRAM's two password messages and the Describes went by unread.
        assert_eq!(others.iter().filter(|&&t| t == b'p').count(), 2);
        assert_eq!(others.iter().filter(|&&t| t == b'D').count(), 3);
    }

    #[test]
    fn tokio_postgres_answers_are_followed() {
        let mut follower = BackendFollower::new();
        let mut tags = Vec::new();
        let mut codes = Vec::new();
        follower
            .feed(TOKIO_DOWN, |e| match e.message {
                Backend::CommandComplete { tag } => tags.push(tag.to_string()),
                Backend::ErrorResponse { code } => codes.push(code.map(str::to_string)),
                _ => {}
            })
            .unwrap();
        assert_eq!(
            tags,
            [
                "START TRANSACTION",
                "INSERT 0 1",
                "SELECT 1",
                "COMMIT",
                "START TRANSACTION",
                "ROLLBACK",
                "BEGIN",
                "DELETE 1",
                "COMMIT"
            ]
        );
        assert_eq!(codes, [Some("23505".to_string())]);
        assert_eq!(
            StatementKind::of_tag("START TRANSACTION"),
            StatementKind::Begin
        );
    }

    #[test]
    fn every_two_way_cut_of_every_capture_gives_the_same_events() {
        for &stream in FRONTENDS {
            let whole = frontend([stream]);
            assert_eq!(whole.1, None);
            for k in 0..=stream.len() {
                assert_eq!(frontend(cut(stream, &[k])), whole, "cut at {k}");
            }
            assert_eq!(frontend(stream.chunks(1)), whole, "byte by byte");
        }
        for &stream in BACKENDS {
            let whole = backend([stream]);
            assert_eq!(whole.1, None);
            for k in 0..=stream.len() {
                assert_eq!(backend(cut(stream, &[k])), whole, "cut at {k}");
            }
            assert_eq!(backend(stream.chunks(1)), whole, "byte by byte");
        }
    }

    #[test]
    fn a_message_in_one_chunk_is_not_buffered_and_a_cut_one_is() {
        let mut follower = FrontendFollower::new();
        follower.feed(&PSQL_SSL_UP[..100], |_| {}).unwrap();
        // The second Query began but did not end: its start is pending.
        let pending = follower.partial_start().unwrap();
        assert!(pending < 100);
        assert_eq!(follower.position(), 100);
        follower.feed(&PSQL_SSL_UP[100..], |_| {}).unwrap();
        assert_eq!(follower.partial_start(), None);
        assert_eq!(follower.framer.buf.len(), 0, "the last message came whole");
    }

    #[test]
    fn a_bind_cut_in_pieces_keeps_only_its_names() {
        let mut stream = startup();
        let mut bind = b"portal\0stmt\0".to_vec();
        bind.extend_from_slice(&[0u8; 5000]);
        stream.extend(typed(b'B', &bind));
        let mut follower = FrontendFollower::new();
        let mut seen = Vec::new();
        for chunk in stream.chunks(7) {
            follower
                .feed(chunk, |e| seen.push(format!("{:?}", e.message)))
                .unwrap();
            assert!(follower.framer.buf.len() <= "portal\0stmt\0".len());
        }
        assert_eq!(seen[1], "Bind { portal: \"portal\", statement: \"stmt\" }");
    }

    #[test]
    fn the_unnamed_statement_is_replaced_and_closed_statements_forgotten() {
        let mut stream = startup();
        stream.extend(typed(b'P', b"\0INSERT INTO a VALUES (1)\0\0\0"));
        stream.extend(typed(b'P', b"\0SELECT 1\0\0\0"));
        stream.extend(typed(b'B', b"\0\0\0\0\0\0\0\0"));
        stream.extend(typed(b'E', b"\0\0\0\0\0"));
        stream.extend(typed(b'P', b"named\0DELETE FROM b\0\0\0"));
        stream.extend(typed(b'C', b"Snamed\0"));
        stream.extend(typed(b'B', b"\0named\0\0\0\0\0\0\0"));
        stream.extend(typed(b'E', b"\0\0\0\0\0"));
        let mut executed = Vec::new();
        FrontendFollower::new()
            .feed(&stream, |e| {
                if let Frontend::Execute { sql, .. } = e.message {
                    executed.push(sql.map(str::to_string));
                }
            })
            .unwrap();
        assert_eq!(executed, [Some("SELECT 1".to_string()), None]);
    }

    fn startup() -> Vec<u8> {
        let params = b"user\0u\0\0";
        let mut out = ((8 + params.len()) as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&196_608i32.to_be_bytes());
        out.extend_from_slice(params);
        out
    }

    fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn encryption_ends_the_following() {
        let mut ssl = 8i32.to_be_bytes().to_vec();
        ssl.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        let mut client = ssl.clone();
        client.extend_from_slice(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]);
        let (events, error) = frontend([&client[..]]);
        assert_eq!(events.len(), 1);
        assert_eq!(error, Some(WireError::Encrypted { at: 8 }));
        // Direct TLS (sslnegotiation=direct) never sends the request.
        assert_eq!(
            frontend([&client[8..]]).1,
            Some(WireError::Encrypted { at: 0 })
        );
        let (events, error) = backend([&b"S\x16\x03\x03"[..]]);
        assert_eq!(
            events,
            ["BackendEvent { range: 0..1, message: EncryptionAnswer(83) }"]
        );
        assert_eq!(error, Some(WireError::Encrypted { at: 1 }));
        // Refused: the client starts in plain text, the server asks for a password.
        let mut down = b"N".to_vec();
        down.extend(typed(b'R', &3i32.to_be_bytes()));
        assert_eq!(backend([&down[..]]).0.len(), 2);
    }

    #[test]
    fn gssenc_and_cancel_requests_are_recognised() {
        let mut gss = 8i32.to_be_bytes().to_vec();
        gss.extend_from_slice(&GSSENC_REQUEST.to_be_bytes());
        let mut cancel = 16i32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
        cancel.extend_from_slice(&[0, 0, 1, 2, 3, 4, 5, 6]);
        let mut follower = FrontendFollower::new();
        let mut seen = Vec::new();
        follower
            .feed(&gss, |e| seen.push(format!("{:?}", e.message)))
            .unwrap();
        // Refused ('N'): the client goes on with a plain StartupMessage.
        follower
            .feed(&startup(), |e| seen.push(format!("{:?}", e.message)))
            .unwrap();
        assert_eq!(seen, ["GssEncRequest", "Startup"]);
        let (events, error) = frontend([&cancel[..]]);
        assert_eq!(error, None);
        assert!(events[0].contains("CancelRequest"));
    }

    #[test]
    fn garbage_is_refused_with_a_typed_error() {
        assert_eq!(
            frontend([&b"GET / HTTP/1.1\r\n\r\n"[..]]).1,
            Some(WireError::Malformed {
                at: 0,
                reason: "startup packet length out of range"
            })
        );
        let mut stream = startup();
        stream.extend_from_slice(b"Z\0\0\0\x05I");
        let at = startup().len() as u64;
        assert_eq!(
            frontend([&stream[..]]).1,
            Some(WireError::Malformed {
                at,
                reason: "unknown message type"
            })
        );
        assert_eq!(
            backend([&b"R\0\0\0\x02"[..]]).1,
            Some(WireError::Malformed {
                at: 0,
                reason: "message length below 4"
            })
        );
    }

    #[test]
    fn statements_are_classified() {
        use StatementKind::*;
        let table = |t: &str| Some(t.to_string());
        let cases: &[(&str, StatementKind, Option<String>)] = &[
            ("BEGIN", Begin, None),
            ("begin isolation level serializable", Begin, None),
            ("START TRANSACTION READ WRITE", Begin, None),
            ("commit;", Commit, None),
            ("END", Commit, None),
            ("end transaction", Commit, None),
            ("COMMIT AND CHAIN", Commit, None),
            ("COMMIT PREPARED 'tx1'", Other, None),
            ("PREPARE TRANSACTION 'tx1'", Other, None),
            ("ROLLBACK", Rollback, None),
            ("abort", Rollback, None),
            ("ROLLBACK TO SAVEPOINT a", Other, None),
            ("rollback work to a", Other, None),
            ("ROLLBACK PREPARED 'tx1'", Other, None),
            ("ROLLBACK AND CHAIN", Rollback, None),
            ("INSERT INTO bookings VALUES (1)", Write, table("bookings")),
            ("insert into Public.Bookings values (1)", Write, table("public.bookings")),
            ("INSERT INTO \"Odd \"\"Name\"\"\" VALUES (1)", Write, table("Odd \"Name\"")),
            ("insert into s.\"T\" as t values (1)", Write, table("s.T")),
            ("UPDATE ONLY rooms SET x = 1", Write, table("rooms")),
            ("update rooms set x = 1", Write, table("rooms")),
            ("DELETE FROM bookings WHERE id = $1", Write, table("bookings")),
            ("MERGE INTO stock s USING d ON true WHEN MATCHED THEN DELETE", Write, table("stock")),
            ("TRUNCATE TABLE bookings", Write, table("bookings")),
            ("COPY bookings FROM STDIN", Write, table("bookings")),
            ("COPY bookings (room) TO STDOUT", Read, None),
            ("COPY (SELECT 1) TO STDOUT", Read, None),
            ("-- lead\n  /* and /* nested */ block */ Insert Into x values (1)", Write, table("x")),
            ("WITH x AS (INSERT INTO b VALUES (1) RETURNING *) SELECT * FROM x", Write, table("b")),
            ("with recursive t(n) as (select 1 union all select n+1 from t) select * from t", Read, None),
            ("WITH a AS (SELECT 1), d AS MATERIALIZED (DELETE FROM old RETURNING *) SELECT 1", Write, table("old")),
            ("WITH a AS NOT MATERIALIZED (SELECT 1) UPDATE r SET x = 1", Write, table("r")),
            ("WITH a AS (WITH b AS (UPDATE q SET x=1 RETURNING *) SELECT * FROM b) SELECT 1", Write, table("q")),
            ("WITH a AS (SELECT 1) SELECT * FROM a FOR UPDATE", Read, None),
            ("SELECT * FROM rooms WHERE id = 1 FOR UPDATE", Read, None),
            ("select * from rooms for no key update skip locked", Read, None),
            ("SELECT 'INSERT INTO x' AS s", Read, None),
            ("SELECT $$ DELETE FROM x; $$", Read, None),
            ("SELECT $tag$ ; COMMIT; $tag$", Read, None),
            ("SELECT E'it\\'s; DELETE FROM x'", Read, None),
            ("SELECT \"delete\" FROM t", Read, None),
            ("SELECT * INTO new_table FROM t", Other, None),
            ("(SELECT 1) UNION (SELECT 2)", Read, None),
            ("VALUES (1), (2)", Read, None),
            ("TABLE rooms", Read, None),
            ("SHOW transaction_isolation", Read, None),
            ("FETCH 10 FROM c", Read, None),
            ("DECLARE c CURSOR FOR SELECT 1", Read, None),
            ("EXPLAIN INSERT INTO x VALUES (1)", Read, None),
            ("EXPLAIN ANALYZE INSERT INTO x VALUES (1)", Write, table("x")),
            ("EXPLAIN (ANALYZE, BUFFERS) DELETE FROM x", Write, table("x")),
            ("EXPLAIN (ANALYZE false) DELETE FROM x", Read, None),
            ("SET statement_timeout = 0", Other, None),
            ("CREATE TABLE t (id int)", Other, None),
            ("CALL book(1)", Other, None),
            ("DO $$ BEGIN INSERT INTO x VALUES (1); END $$", Other, None),
            ("SAVEPOINT a", Other, None),
            ("", Other, None),
            ("  -- only a comment", Other, None),
            (";;", Other, None),
            ("BEGIN; INSERT INTO a VALUES (1); COMMIT", Write, table("a")),
            ("SELECT 1; COMMIT", Commit, None),
            ("BEGIN; SELECT 1", Begin, None),
            ("INSERT INTO a VALUES (1); DELETE FROM b", Write, table("a")),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END",
                Other,
                None,
            ),
            ("SELECT 1 -- ; DELETE FROM x", Read, None),
            ("SELECT 1 /* ; COMMIT */", Read, None),
            ("SELECT U&'d\\0061t; DELETE'", Read, None),
        ];
        for (sql, kind, table) in cases {
            let got = classify(sql);
            assert_eq!((got.kind, &got.table), (*kind, table), "classify({sql:?})");
        }
    }

    #[test]
    fn statements_are_split_with_their_text() {
        let texts: Vec<&str> = statements("BEGIN; -- go\n INSERT INTO a VALUES (';'); COMMIT;")
            .map(|(text, _)| text)
            .collect();
        assert_eq!(texts, ["BEGIN", "INSERT INTO a VALUES (';')", "COMMIT"]);
        // A user rule (a --slow-sql regex) matches the text itself.
        let rule = |sql: &str| sql.contains("a VALUES");
        assert!(statements("SELECT 1; INSERT INTO a VALUES (1)").any(|(t, _)| rule(t)));
    }

    #[test]
    fn command_tags_say_what_finished() {
        use StatementKind::*;
        for (tag, kind) in [
            ("COMMIT", Commit),
            ("ROLLBACK", Rollback),
            ("BEGIN", Begin),
            ("INSERT 0 1", Write),
            ("UPDATE 3", Write),
            ("DELETE 0", Write),
            ("MERGE 1", Write),
            ("SELECT 5", Read),
            ("COMMIT PREPARED", Other),
            ("COPY 4", Other),
            ("CREATE TABLE", Other),
        ] {
            assert_eq!(StatementKind::of_tag(tag), kind, "{tag}");
        }
    }

    fn arb_name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(Vec::new()),
            "[a-z0-9]{1,6}".prop_map(String::into_bytes)
        ]
    }

    fn arb_sql() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"BEGIN".to_vec()),
            Just(b"COMMIT".to_vec()),
            Just(b"INSERT INTO b VALUES ($1)".to_vec()),
            Just(b"SELECT * FROM r FOR UPDATE".to_vec()),
            "[ -~]{0,40}".prop_map(String::into_bytes),
        ]
    }

    fn cstring(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.push(0);
        bytes
    }

    /// One frontend message after the startup, encoded.
    fn arb_frontend_message() -> impl Strategy<Value = Vec<u8>> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            arb_sql().prop_map(|sql| typed(b'Q', &cstring(sql))),
            (arb_name(), arb_sql()).prop_map(|(n, sql)| {
                let mut body = cstring(n);
                body.extend(cstring(sql));
                body.extend_from_slice(&[0, 0]);
                typed(b'P', &body)
            }),
            (arb_name(), arb_name(), bytes()).prop_map(|(p, s, params)| {
                let mut body = cstring(p);
                body.extend(cstring(s));
                body.extend(params);
                typed(b'B', &body)
            }),
            arb_name().prop_map(|p| {
                let mut body = cstring(p);
                body.extend_from_slice(&[0, 0, 0, 0]);
                typed(b'E', &body)
            }),
            (prop_oneof![Just(b'S'), Just(b'P')], arb_name()).prop_map(|(t, n)| {
                let mut body = vec![t];
                body.extend(cstring(n));
                typed(b'C', &body)
            }),
            Just(typed(b'S', b"")),
            Just(typed(b'H', b"")),
            (
                prop_oneof![Just(b'D'), Just(b'd'), Just(b'p'), Just(b'c')],
                bytes()
            )
                .prop_map(|(t, body)| typed(t, &body)),
        ]
    }

    fn arb_frontend_stream() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            proptest::collection::vec(arb_frontend_message(), 0..20),
        )
            .prop_map(|(ssl, messages)| {
                let mut out = Vec::new();
                if ssl {
                    out.extend_from_slice(&8i32.to_be_bytes());
                    out.extend_from_slice(&SSL_REQUEST.to_be_bytes());
                }
                out.extend(startup());
                out.extend(messages.concat());
                out.extend(typed(b'X', b""));
                out
            })
    }

    fn arb_backend_message() -> impl Strategy<Value = Vec<u8>> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..60);
        prop_oneof![
            "[A-Z]{1,8}( [0-9]{1,3}){0,2}".prop_map(|tag| typed(b'C', &cstring(tag.into_bytes()))),
            prop_oneof![Just(b'I'), Just(b'T'), Just(b'E')].prop_map(|s| typed(b'Z', &[s])),
            ("[0-9A-Z]{5}", "[ -~]{0,30}").prop_map(|(code, message)| {
                let mut body = b"SERROR\0C".to_vec();
                body.extend(cstring(code.into_bytes()));
                body.push(b'M');
                body.extend(cstring(message.into_bytes()));
                body.push(0);
                typed(b'E', &body)
            }),
            (
                prop_oneof![
                    Just(b'D'),
                    Just(b'T'),
                    Just(b'N'),
                    Just(b'S'),
                    Just(b'1'),
                    Just(b'2')
                ],
                bytes()
            )
                .prop_map(|(t, body)| typed(t, &body)),
        ]
    }

    fn arb_backend_stream() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            proptest::collection::vec(arb_backend_message(), 0..20),
        )
            .prop_map(|(ssl, messages)| {
                let mut out = if ssl { b"N".to_vec() } else { Vec::new() };
                out.extend(typed(b'R', &0i32.to_be_bytes()));
                out.extend(messages.concat());
                out
            })
    }

    proptest! {
        #[test]
        fn frontend_events_do_not_depend_on_chunking(
            stream in arb_frontend_stream(),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let whole = frontend([&stream[..]]);
            prop_assert_eq!(&whole.1, &None);
            prop_assert_eq!(frontend(cut(&stream, &cuts)), whole);
        }

        #[test]
        fn backend_events_do_not_depend_on_chunking(
            stream in arb_backend_stream(),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let whole = backend([&stream[..]]);
            prop_assert_eq!(&whole.1, &None);
            prop_assert_eq!(backend(cut(&stream, &cuts)), whole);
        }

        #[test]
        fn garbage_never_panics_and_fails_the_same_whatever_the_chunking(
            prefix in arb_frontend_stream(),
            keep in 0usize..400,
            garbage in proptest::collection::vec(any::<u8>(), 0..200),
            cuts in proptest::collection::vec(0usize..600, 0..12),
        ) {
            let mut stream = prefix[..keep.min(prefix.len())].to_vec();
            stream.extend(garbage);
            prop_assert_eq!(frontend(cut(&stream, &cuts)), frontend([&stream[..]]));
            prop_assert_eq!(backend(cut(&stream, &cuts)), backend([&stream[..]]));
        }

        #[test]
        fn pure_garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = frontend(garbage.chunks(3));
            let _ = backend(garbage.chunks(3));
        }

        #[test]
        fn any_text_classifies_without_panicking(sql in "\\PC{0,80}") {
            let _ = classify(&sql);
            let _ = statements(&sql).count();
        }
    }
}
