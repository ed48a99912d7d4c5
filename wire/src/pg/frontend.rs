//! What a client sends: startup and encryption requests, then typed messages; the
//! session's prepared statements, so an Execute resolves to its SQL.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrontPhase {
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
    pub(super) framer: Framer,
    session: Session,
    lost: bool,
}

#[derive(Debug)]
pub(super) struct Session {
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

pub(super) fn frontend_header(phase: FrontPhase, h: &[u8], at: u64) -> Result<Parsed, WireError> {
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
