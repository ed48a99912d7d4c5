//! What the server answers: coarse reply values, and the follower that reads them
//! (RESP2 and RESP3, pushes and attributes included) off the stream.

use super::*;

/// A reply's value, coarsely: what deciding on a lease needs, nothing that would make
/// reading a large reply cost more than counting past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`: SET (NX or XX) did set.
    Ok,
    /// `+QUEUED`: a command inside MULTI was queued; its result comes with EXEC.
    Queued,
    /// `$-1`, `*-1` (RESP2) or `_` (RESP3): SET NX did not set, GET found nothing, a
    /// watched EXEC did not run.
    Nil,
    /// `-...` or RESP3 `!...`: the error's text (`ERR ...`, `NOSCRIPT ...`).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// A bulk string of `len` bytes (not kept).
    Bulk {
        /// Its length.
        len: u64,
    },
    /// An array of `len` elements.
    Array {
        /// How many elements.
        len: u64,
    },
    /// Anything else, by RESP type byte: another simple string (`+PONG`), a double (`,`),
    /// big number (`(`), boolean (`#`), verbatim string (`=`), map (`%`), set (`~`),
    /// push (`>`).
    Other(u8),
}

/// A reply the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// Stream offsets of the whole reply, with the attributes that came before it.
    pub range: Range<u64>,
    /// Its value.
    pub value: &'a Value,
    /// Whether it is a RESP3 push message: those answer no command (invalidations,
    /// pub/sub messages) and must be skipped when pairing replies with commands.
    pub push: bool,
    /// For an array, its first [`ELEMENT_LIMIT`] elements' values (an EXEC's array holds
    /// the results of the queued commands); empty otherwise.
    pub elements: &'a [Value],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyState {
    /// Before a type byte.
    Type,
    /// The rest of a header line whose type byte was at `start`; `line` holds what
    /// arrived in earlier chunks.
    Line { kind: u8, start: u64 },
    /// A bulk, verbatim or bulk-error payload.
    Body { kind: u8, remaining: u64 },
    /// The `\r\n` after a payload.
    BodyEnd { kind: u8, cr: bool },
}

/// An aggregate being read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Aggregate {
    kind: u8,
    /// Elements still to come (a map's and an attribute's count twice their length).
    remaining: u64,
}

/// Where the element being read sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// It is the reply.
    Top,
    /// An element of a top-level array: its value is kept in `elements`.
    Element,
    /// Deeper, or inside an attribute: only counted.
    Deep,
}

/// Follows what a Redis server sends: one [`Reply`] per top-level reply, RESP2 or RESP3.
///
/// Bulk payloads are counted past, never copied; only header lines and error texts that a
/// chunk boundary cuts are buffered. RESP3 streamed strings and aggregates (`$?`, `*?`),
/// which Redis never sends, are not followed.
#[derive(Debug)]
pub struct ReplyFollower {
    pos: u64,
    lost: bool,
    state: ReplyState,
    stack: Vec<Aggregate>,
    /// Whether a reply (or the attribute before it) has begun.
    in_reply: bool,
    start: u64,
    value: Value,
    push: bool,
    elements: Vec<Value>,
    pub(super) line: Vec<u8>,
    pub(super) text: Vec<u8>,
}

impl Default for ReplyFollower {
    fn default() -> Self {
        ReplyFollower::new()
    }
}

impl ReplyFollower {
    /// A follower for a connection that is just opening.
    pub fn new() -> ReplyFollower {
        ReplyFollower {
            pos: 0,
            lost: false,
            state: ReplyState::Type,
            stack: Vec::new(),
            in_reply: false,
            start: 0,
            value: Value::Nil,
            push: false,
            elements: Vec::new(),
            line: Vec::new(),
            text: Vec::new(),
        }
    }

    /// Reads the next chunk the server sent, reporting each reply that completes in it.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_event: F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(Reply<'a>),
    {
        if self.lost {
            return Err(WireError::Lost);
        }
        let result = self.run(chunk, &mut on_event);
        self.pos += chunk.len() as u64;
        self.lost = result.is_err();
        result
    }

    fn slot(&self) -> Slot {
        match self.stack.as_slice() {
            [] => Slot::Top,
            [array] if array.kind == b'*' => Slot::Element,
            _ => Slot::Deep,
        }
    }

    fn record(&mut self, slot: Slot, value: Value) {
        match slot {
            Slot::Top => self.value = value,
            Slot::Element if self.elements.len() < ELEMENT_LIMIT => self.elements.push(value),
            _ => {}
        }
    }

    fn run<F>(&mut self, chunk: &[u8], on_event: &mut F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(Reply<'a>),
    {
        let mut i = 0;
        while i < chunk.len() {
            let at = self.pos + i as u64;
            match self.state {
                ReplyState::Type => {
                    let kind = chunk[i];
                    if !b"+-:$*_,#!=(%~>|".contains(&kind) {
                        return Err(malformed(at, "unknown reply type"));
                    }
                    if kind == b'>' && !self.stack.is_empty() {
                        return Err(malformed(at, "a push inside a reply"));
                    }
                    if !self.in_reply {
                        self.in_reply = true;
                        self.start = at;
                        self.push = false;
                        self.value = Value::Nil;
                        self.elements.clear();
                    }
                    i += 1;
                    self.state = ReplyState::Line { kind, start: at };
                }
                ReplyState::Line { kind, start } => {
                    let Some(n) = chunk[i..].iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(&chunk[i..]);
                        i = chunk.len();
                        if self.line.len() > LINE_LIMIT {
                            return Err(WireError::TooLong {
                                at: self.start,
                                limit: LINE_LIMIT,
                            });
                        }
                        continue;
                    };
                    let mut line = std::mem::take(&mut self.line);
                    let content: &[u8] = if line.is_empty() {
                        &chunk[i..i + n]
                    } else {
                        line.extend_from_slice(&chunk[i..i + n]);
                        &line
                    };
                    i += n + 1;
                    if content.len() > LINE_LIMIT {
                        return Err(WireError::TooLong {
                            at: self.start,
                            limit: LINE_LIMIT,
                        });
                    }
                    let Some(content) = content.strip_suffix(b"\r") else {
                        return Err(malformed(start, "a reply line without \\r"));
                    };
                    self.header(kind, content, self.pos + i as u64, on_event)
                        .map_err(|r| malformed(start, r))?;
                    line.clear();
                    if line.capacity() <= KEEP_CAPACITY {
                        self.line = line;
                    }
                }
                ReplyState::Body { kind, remaining } => {
                    let take = remaining.min((chunk.len() - i) as u64) as usize;
                    if kind == b'!' && self.slot() != Slot::Deep {
                        self.text.extend_from_slice(&chunk[i..i + take]);
                    }
                    i += take;
                    self.state = if take as u64 == remaining {
                        ReplyState::BodyEnd { kind, cr: false }
                    } else {
                        ReplyState::Body {
                            kind,
                            remaining: remaining - take as u64,
                        }
                    };
                }
                ReplyState::BodyEnd { kind, cr: false } => {
                    if chunk[i] != b'\r' {
                        return Err(malformed(at, "expected \\r after a payload"));
                    }
                    i += 1;
                    self.state = ReplyState::BodyEnd { kind, cr: true };
                }
                ReplyState::BodyEnd { kind, cr: true } => {
                    if chunk[i] != b'\n' {
                        return Err(malformed(at, "expected \\n after a payload"));
                    }
                    i += 1;
                    self.state = ReplyState::Type;
                    if kind == b'!' {
                        let slot = self.slot();
                        if slot != Slot::Deep {
                            let text = String::from_utf8_lossy(&self.text).into_owned();
                            self.text.clear();
                            self.record(slot, Value::Error(text));
                        }
                    }
                    self.finish(false, self.pos + i as u64, on_event);
                }
            }
        }
        Ok(())
    }

    /// Acts on a complete header line of type `kind`; `end` is the stream offset after it.
    fn header<F>(
        &mut self,
        kind: u8,
        content: &[u8],
        end: u64,
        on_event: &mut F,
    ) -> Result<(), &'static str>
    where
        F: for<'a> FnMut(Reply<'a>),
    {
        let slot = self.slot();
        self.state = ReplyState::Type;
        let scalar = match kind {
            b'+' => match content {
                b"OK" => Value::Ok,
                b"QUEUED" => Value::Queued,
                _ => Value::Other(b'+'),
            },
            b'-' if slot == Slot::Deep => Value::Error(String::new()),
            b'-' => Value::Error(String::from_utf8_lossy(content).into_owned()),
            b':' => Value::Integer(integer(content)?),
            b'_' if content.is_empty() => Value::Nil,
            b'_' => return Err("a RESP3 null with content"),
            b'#' if content == b"t" || content == b"f" => Value::Other(b'#'),
            b'#' => return Err("a boolean neither t nor f"),
            b',' | b'(' if !content.is_empty() => Value::Other(kind),
            b',' | b'(' => return Err("an empty number"),
            b'$' | b'=' | b'!' => {
                let len = integer(content)?;
                if len == -1 && kind == b'$' {
                    Value::Nil
                } else if len < 0 {
                    return Err("negative length");
                } else {
                    if kind == b'$' {
                        self.record(slot, Value::Bulk { len: len as u64 });
                    } else if kind == b'=' {
                        self.record(slot, Value::Other(b'='));
                    }
                    self.state = ReplyState::Body {
                        kind,
                        remaining: len as u64,
                    };
                    return Ok(());
                }
            }
            _ => {
                // An aggregate: * ~ % > |
                let len = integer(content)?;
                if len == -1 && kind == b'*' {
                    Value::Nil
                } else if len < 0 {
                    return Err("negative length");
                } else {
                    let len = len as u64;
                    let attribute = kind == b'|';
                    if !attribute {
                        if kind == b'>' {
                            self.push = true;
                        }
                        let value = if kind == b'*' {
                            Value::Array { len }
                        } else {
                            Value::Other(kind)
                        };
                        self.record(slot, value);
                    }
                    let remaining = if kind == b'%' || attribute {
                        len.checked_mul(2).ok_or("aggregate too long")?
                    } else {
                        len
                    };
                    if remaining == 0 {
                        self.finish(attribute, end, on_event);
                    } else {
                        self.stack.push(Aggregate { kind, remaining });
                    }
                    return Ok(());
                }
            }
        };
        self.record(slot, scalar);
        self.finish(false, end, on_event);
        Ok(())
    }

    /// An element ended at `end` (an attribute, if `attribute`): counts it in the
    /// aggregates around it and reports the reply if it was the last piece.
    fn finish<F>(&mut self, mut attribute: bool, end: u64, on_event: &mut F)
    where
        F: for<'a> FnMut(Reply<'a>),
    {
        loop {
            let Some(aggregate) = self.stack.last_mut() else {
                if !attribute {
                    // An attribute before a reply is part of it: the reply follows.
                    self.in_reply = false;
                    on_event(Reply {
                        range: self.start..end,
                        value: &self.value,
                        push: self.push,
                        elements: &self.elements,
                    });
                }
                return;
            };
            if attribute {
                return; // An attribute is not one of its aggregate's elements.
            }
            aggregate.remaining -= 1;
            if aggregate.remaining > 0 {
                return;
            }
            attribute = aggregate.kind == b'|';
            self.stack.pop();
        }
    }

    /// How many bytes were fed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Where the reply begun but not yet complete starts, if any.
    pub fn partial_start(&self) -> Option<u64> {
        self.in_reply.then_some(self.start)
    }

    /// Whether the follower failed on this stream.
    pub fn is_lost(&self) -> bool {
        self.lost
    }
}

pub(super) fn integer(content: &[u8]) -> Result<i64, &'static str> {
    let (negative, digits) = match content {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err("bad integer");
    }
    let mut value: i64 = 0;
    for &d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| {
                let d = i64::from(d - b'0');
                if negative {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or("integer out of range")?;
    }
    Ok(value)
}
