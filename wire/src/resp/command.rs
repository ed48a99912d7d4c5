//! What a client sends: command names, commands (RESP arrays or inline lines), and the
//! follower that reads them off the stream.

use super::*;

/// A command name, uppercased. Names of up to 23 bytes (every Redis command's) are kept
/// inline, so reading one allocates nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(NameBytes);

#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum NameBytes {
    Inline { len: u8, bytes: [u8; 23] },
    Heap(Box<[u8]>),
}

impl Name {
    /// The name of a command sent as `raw`, uppercased.
    pub fn new(raw: &[u8]) -> Name {
        if raw.len() <= 23 {
            let mut bytes = [0u8; 23];
            bytes[..raw.len()].copy_from_slice(raw);
            bytes.make_ascii_uppercase();
            Name(NameBytes::Inline {
                len: raw.len() as u8,
                bytes,
            })
        } else {
            Name(NameBytes::Heap(raw.to_ascii_uppercase().into()))
        }
    }

    /// The uppercased bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            NameBytes::Inline { len, bytes } => &bytes[..*len as usize],
            NameBytes::Heap(bytes) => bytes,
        }
    }

    /// The name as text (lossy if it is not UTF-8).
    pub fn as_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    /// Whether this is the command `upper` (given in uppercase).
    pub fn is(&self, upper: &str) -> bool {
        self.as_bytes() == upper.as_bytes()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// A command a client sent.
///
/// Arguments are byte slices lent from the chunk (or from the follower, for a command that
/// arrived in pieces or an inline command with quotes): copy what must outlive the call.
#[derive(Clone)]
pub struct Command<'a> {
    /// The command's name, uppercased (`SET`, `EVALSHA`, `SCRIPT`).
    pub name: Name,
    /// Stream offsets of the whole command.
    pub range: Range<u64>,
    arena: &'a [u8],
    /// Where each word is in `arena`; the first is the name.
    spans: &'a [Range<usize>],
}

impl<'a> Command<'a> {
    /// The arguments after the name, as sent.
    pub fn args(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        self.spans[1..].iter().map(|s| &self.arena[s.clone()])
    }

    /// The `i`-th argument after the name (`SET k v`: 0 is `k`).
    pub fn arg(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i + 1).map(|s| &self.arena[s.clone()])
    }

    /// How many arguments follow the name.
    pub fn arg_count(&self) -> usize {
        self.spans.len() - 1
    }

    /// Whether argument `i` is `word`, ignoring ASCII case (options like `NX`, `px`).
    pub fn arg_is(&self, i: usize, word: &str) -> bool {
        self.arg(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("name", &self.name)
            .field(
                "args",
                &self.args().map(String::from_utf8_lossy).collect::<Vec<_>>(),
            )
            .field("range", &self.range)
            .finish()
    }
}

/// A decimal line `-?[0-9]+\r\n`, read one byte at a time so it may span chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Number {
    value: i64,
    negative: bool,
    digits: u32,
    cr: bool,
}

impl Number {
    /// Takes one byte; returns the number once its line ended.
    fn push(&mut self, b: u8) -> Result<Option<i64>, &'static str> {
        if self.cr {
            return if b == b'\n' {
                Ok(Some(if self.negative {
                    -self.value
                } else {
                    self.value
                }))
            } else {
                Err("expected \\n after \\r")
            };
        }
        match b {
            b'-' if self.digits == 0 && !self.negative => self.negative = true,
            b'0'..=b'9' => {
                self.value = self
                    .value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(i64::from(b - b'0')))
                    .ok_or("number too large")?;
                self.digits += 1;
            }
            b'\r' if self.digits > 0 => self.cr = true,
            _ => return Err("bad number"),
        }
        Ok(None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CommandState {
    /// Between commands.
    Idle,
    /// After `*`: the element count.
    Count(Number),
    /// Before an element: `$` (once `dollar`) and its length. `left` counts this element.
    BulkLen {
        left: i64,
        dollar: bool,
        number: Number,
    },
    /// Inside an element's bytes, which began at `start` (relative to the command).
    Bulk {
        left: i64,
        start: usize,
        remaining: u64,
    },
    /// The `\r\n` after an element.
    BulkEnd { left: i64, cr: bool },
    /// An inline command: bytes up to `\n`.
    Inline,
}

/// Follows what a client sends to a Redis server: one [`Command`] per command, whether
/// sent as a RESP array or inline.
///
/// An empty array (`*0`) or empty inline line gets no reply from Redis and yields no
/// event.
#[derive(Debug)]
pub struct CommandFollower {
    pos: u64,
    lost: bool,
    state: CommandState,
    /// Stream offset of the command being read.
    start: u64,
    /// Whether the command began in an earlier chunk (its bytes so far are in `buf`).
    buffered: bool,
    pub(super) buf: Vec<u8>,
    spans: Vec<Range<usize>>,
    /// Unquoted words of an inline command that used quotes.
    scratch: Vec<u8>,
}

impl Default for CommandFollower {
    fn default() -> Self {
        CommandFollower::new()
    }
}

impl CommandFollower {
    /// A follower for a connection that is just opening.
    pub fn new() -> CommandFollower {
        CommandFollower {
            pos: 0,
            lost: false,
            state: CommandState::Idle,
            start: 0,
            buffered: false,
            buf: Vec::new(),
            spans: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Reads the next chunk the client sent, reporting each command that completes in it.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_event: F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(Command<'a>),
    {
        if self.lost {
            return Err(WireError::Lost);
        }
        let result = self.run(chunk, &mut on_event);
        self.pos += chunk.len() as u64;
        self.lost = result.is_err();
        result
    }

    fn run<F>(&mut self, chunk: &[u8], on_event: &mut F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(Command<'a>),
    {
        use CommandState::*;
        let mut i = 0;
        while i < chunk.len() {
            let at = self.pos + i as u64;
            // Offset of chunk[k] within the command.
            let rel = |k: usize| (self.pos + k as u64 - self.start) as usize;
            match self.state {
                Idle => {
                    self.start = at;
                    self.buffered = false;
                    self.spans.clear();
                    self.buf.clear();
                    if self.buf.capacity() > KEEP_CAPACITY {
                        self.buf = Vec::new();
                    }
                    if chunk[i] == b'*' {
                        i += 1;
                        self.state = Count(Number::default());
                    } else {
                        self.state = Inline;
                    }
                }
                Count(mut number) => {
                    i += 1;
                    self.state = match number.push(chunk[i - 1]).map_err(|r| malformed(at, r))? {
                        None => Count(number),
                        // Redis skips an empty or negative count without answering.
                        Some(n) if n <= 0 => Idle,
                        Some(n) if n > MAX_MULTIBULK => {
                            return Err(malformed(at, "too many arguments"))
                        }
                        Some(n) => BulkLen {
                            left: n,
                            dollar: false,
                            number: Number::default(),
                        },
                    };
                }
                BulkLen {
                    left,
                    dollar: false,
                    number,
                } => {
                    if chunk[i] != b'$' {
                        return Err(malformed(at, "expected '$' in a command"));
                    }
                    i += 1;
                    self.state = BulkLen {
                        left,
                        dollar: true,
                        number,
                    };
                }
                BulkLen {
                    left,
                    dollar: true,
                    mut number,
                } => {
                    i += 1;
                    self.state = match number.push(chunk[i - 1]).map_err(|r| malformed(at, r))? {
                        None => BulkLen {
                            left,
                            dollar: true,
                            number,
                        },
                        Some(len) if len < 0 => return Err(malformed(at, "negative bulk length")),
                        Some(len) => Bulk {
                            left,
                            start: rel(i),
                            remaining: len as u64,
                        },
                    };
                }
                Bulk {
                    left,
                    start,
                    remaining,
                } => {
                    let take = remaining.min((chunk.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == remaining {
                        self.spans.push(start..rel(i));
                        BulkEnd { left, cr: false }
                    } else {
                        Bulk {
                            left,
                            start,
                            remaining: remaining - take,
                        }
                    };
                }
                BulkEnd { left, cr: false } => {
                    if chunk[i] != b'\r' {
                        return Err(malformed(at, "expected \\r after an argument"));
                    }
                    i += 1;
                    self.state = BulkEnd { left, cr: true };
                }
                BulkEnd { left, cr: true } => {
                    if chunk[i] != b'\n' {
                        return Err(malformed(at, "expected \\n after an argument"));
                    }
                    i += 1;
                    if left > 1 {
                        self.state = BulkLen {
                            left: left - 1,
                            dollar: false,
                            number: Number::default(),
                        };
                    } else {
                        self.state = Idle;
                        self.emit(chunk, i, false, on_event)?;
                    }
                }
                Inline => match chunk[i..].iter().position(|&b| b == b'\n') {
                    None => {
                        i = chunk.len();
                        if rel(i) > INLINE_LIMIT {
                            return Err(WireError::TooLong {
                                at: self.start,
                                limit: INLINE_LIMIT,
                            });
                        }
                    }
                    Some(n) => {
                        i += n + 1;
                        if rel(i) - 1 > INLINE_LIMIT {
                            return Err(WireError::TooLong {
                                at: self.start,
                                limit: INLINE_LIMIT,
                            });
                        }
                        self.state = Idle;
                        self.emit(chunk, i, true, on_event)?;
                    }
                },
            }
        }
        if self.state != Idle {
            // Keep what arrived of the unfinished command.
            if self.buffered {
                self.buf.extend_from_slice(chunk);
            } else {
                let begin = (self.start - self.pos) as usize;
                self.buf.extend_from_slice(&chunk[begin..]);
                self.buffered = true;
            }
        }
        Ok(())
    }

    /// Reports the command that ends at `chunk[..end]`.
    fn emit<F>(
        &mut self,
        chunk: &[u8],
        end: usize,
        inline: bool,
        on_event: &mut F,
    ) -> Result<(), WireError>
    where
        F: for<'a> FnMut(Command<'a>),
    {
        let range = self.start..self.pos + end as u64;
        let mut arena: &[u8] = if self.buffered {
            self.buf.extend_from_slice(&chunk[..end]);
            &self.buf
        } else {
            &chunk[(self.start - self.pos) as usize..end]
        };
        if inline {
            let mut line = &arena[..arena.len() - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if split_inline(line, &mut self.spans, &mut self.scratch)
                .map_err(|r| malformed(range.start, r))?
            {
                arena = &self.scratch;
            }
            if self.spans.is_empty() {
                return Ok(()); // An empty line: Redis ignores it.
            }
        }
        on_event(Command {
            name: Name::new(&arena[self.spans[0].clone()]),
            range,
            arena,
            spans: &self.spans,
        });
        Ok(())
    }

    /// How many bytes were fed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Where the command begun but not yet complete starts, if any.
    pub fn partial_start(&self) -> Option<u64> {
        (self.state != CommandState::Idle).then_some(self.start)
    }

    /// Whether the follower failed on this stream.
    pub fn is_lost(&self) -> bool {
        self.lost
    }
}

/// Splits an inline command as Redis does (`sdssplitargs`): words separated by blanks,
/// `"..."` with C escapes and `'...'` with `\'`, a closing quote followed by a blank.
///
/// Without quotes the spans point into `line`; with quotes every word is copied, unescaped,
/// into `scratch` and the spans point there (returns true).
pub(super) fn split_inline(
    line: &[u8],
    spans: &mut Vec<Range<usize>>,
    scratch: &mut Vec<u8>,
) -> Result<bool, &'static str> {
    let blank = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    spans.clear();
    if !line.iter().any(|&b| b == b'"' || b == b'\'') {
        let mut k = 0;
        while k < line.len() {
            if blank(line[k]) {
                k += 1;
                continue;
            }
            let start = k;
            while k < line.len() && !blank(line[k]) {
                k += 1;
            }
            spans.push(start..k);
        }
        return Ok(false);
    }
    scratch.clear();
    let mut k = 0;
    loop {
        while k < line.len() && blank(line[k]) {
            k += 1;
        }
        if k == line.len() {
            return Ok(true);
        }
        let start = scratch.len();
        let (mut dq, mut sq) = (false, false);
        loop {
            let c = line.get(k).copied();
            if dq {
                let c = c.ok_or("unbalanced quotes in an inline command")?;
                let hex = |j: usize| line.get(j).and_then(|&h| (h as char).to_digit(16));
                if c == b'\\'
                    && line.get(k + 1) == Some(&b'x')
                    && hex(k + 2).is_some()
                    && hex(k + 3).is_some()
                {
                    let (hi, lo) = (hex(k + 2).unwrap_or(0), hex(k + 3).unwrap_or(0));
                    scratch.push((hi * 16 + lo) as u8);
                    k += 4;
                } else if c == b'\\' && k + 1 < line.len() {
                    scratch.push(match line[k + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    k += 2;
                } else if c == b'"' {
                    if line.get(k + 1).is_some_and(|&n| !blank(n)) {
                        return Err("a closing quote must be followed by a blank");
                    }
                    k += 1;
                    break;
                } else {
                    scratch.push(c);
                    k += 1;
                }
            } else if sq {
                let c = c.ok_or("unbalanced quotes in an inline command")?;
                if c == b'\\' && line.get(k + 1) == Some(&b'\'') {
                    scratch.push(b'\'');
                    k += 2;
                } else if c == b'\'' {
                    if line.get(k + 1).is_some_and(|&n| !blank(n)) {
                        return Err("a closing quote must be followed by a blank");
                    }
                    k += 1;
                    break;
                } else {
                    scratch.push(c);
                    k += 1;
                }
            } else {
                match c {
                    None => break,
                    Some(b) if blank(b) => break,
                    Some(b'"') => dq = true,
                    Some(b'\'') => sq = true,
                    Some(b) => scratch.push(b),
                }
                k += 1;
            }
        }
        spans.push(start..scratch.len());
    }
}
