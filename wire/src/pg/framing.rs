//! Framing: cutting a stream of Postgres messages into messages however it was chunked,
//! keeping only the bodies whose content is needed.

use super::*;

/// What the framer keeps of a body that spans chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Nothing: the content is never read.
    Skip,
    /// All of it.
    Whole,
    /// Up to and including the n-th NUL: a Bind needs its two names, not its parameters.
    UntilNuls(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A message with a type byte.
    Typed(u8),
    /// A startup-phase message, by code.
    Untyped(i32),
    /// The server's single-byte answer to an encryption request.
    Unframed(u8),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    pub(super) kind: Kind,
    pub(super) body_len: usize,
    pub(super) keep: Keep,
}

/// What a header said.
pub(super) enum Parsed {
    /// The header is longer: read this many bytes in all, then parse again.
    More(usize),
    /// A message with this body follows.
    Frame(Frame),
}

#[derive(Debug)]
pub(super) struct Reading {
    pub(super) frame: Frame,
    pub(super) seen: usize,
    pub(super) nuls: u8,
}

/// A complete message: its frame, its range and the body bytes that were kept.
pub(super) struct Message<'s> {
    pub(super) frame: Frame,
    pub(super) range: Range<u64>,
    pub(super) body: &'s [u8],
}

/// Cuts a Postgres byte stream into messages, whatever the chunking.
///
/// Shared by both directions: the caller says how long the next header is and how to read
/// it, the framer collects it and the body. A body that is in one chunk is lent out from
/// it; one that spans chunks is copied into `buf` only as far as `Keep` asks.
#[derive(Debug, Default)]
pub(super) struct Framer {
    /// Stream offset of the current chunk's first byte (of the next chunk between feeds).
    pub(super) pos: u64,
    pub(super) header: [u8; 8],
    pub(super) have: usize,
    pub(super) need: usize,
    /// Stream offset of the message being read.
    pub(super) start: u64,
    pub(super) reading: Option<Reading>,
    pub(super) buf: Vec<u8>,
}

impl Framer {
    pub(super) fn partial_start(&self) -> Option<u64> {
        (self.have > 0 || self.reading.is_some()).then_some(self.start)
    }

    /// Reads from `chunk[*i..]` until a message completes (returned) or the chunk ends
    /// (`None`). `want` is the header length of a message starting now; `parse` reads a
    /// header given its bytes and stream offset.
    pub(super) fn step<'s>(
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
pub(super) fn typed_header(
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
pub(super) fn cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..nul], &bytes[nul + 1..]))
}

pub(super) fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

pub(super) fn malformed(at: u64, reason: &'static str) -> WireError {
    WireError::Malformed { at, reason }
}
