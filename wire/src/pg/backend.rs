//! What the server answers: an unframed encryption answer, then typed messages.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BackPhase {
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

pub(super) fn backend_header(h: &[u8], at: u64) -> Result<Parsed, WireError> {
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

pub(super) fn backend_message(tag: u8, body: &[u8], at: u64) -> Result<Backend<'_>, WireError> {
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
