//! A hand-rolled scanner for the common shape of a history line, so that `overbook check`
//! reads over a million ops a second on one core.
//!
//! It accepts only what it is sure about: the known fields, unsigned integers, strings
//! without escapes, objects without duplicate keys. On anything else (escapes, nulls,
//! unknown fields, `detail`, `bookings`, malformed input) it gives up and the reader falls
//! back to serde_json, which is the reference: whenever this returns `Some`, serde would
//! have produced the same `Op` (a property test pins that).

use crate::bound::Bound;
use crate::history::{Op, OpType, OpValue, Process, Trace, F};
use crate::room::Room;

/// The op on this line, or `None` to let serde_json decide (tests compare it to serde).
#[cfg(test)]
pub(crate) fn parse_op(line: &[u8]) -> Option<Op> {
    let mut ops = Vec::with_capacity(1);
    parse_op_into(line, &mut ops).then(|| ops.pop()).flatten()
}

/// Appends the op on this line to `ops` and returns true, or leaves `ops` as it was and
/// returns false to let serde_json decide. Pushing in place matters: an `Op` is ~400
/// bytes, and moving it through `Option`s and `Result`s cost a tenth of read time.
pub(crate) fn parse_op_into(line: &[u8], ops: &mut Vec<Op>) -> bool {
    let mut s = Scan { b: line, i: 0 };
    if s.op_into(ops).is_none() {
        return false;
    }
    s.ws();
    if s.i != s.b.len() {
        ops.pop();
        return false;
    }
    true
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string's bytes, not checked for UTF-8: for keys and enum values, compared with
    /// ASCII literals (anything else does not match and makes the scanner give up).
    fn raw(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            let c = *self.b.get(self.i)?;
            if c == b'"' {
                break;
            }
            // Escapes and raw control characters: serde's business.
            if c == b'\\' || c < 0x20 {
                return None;
            }
            self.i += 1;
        }
        let s = &self.b[start..self.i];
        self.i += 1;
        Some(s)
    }

    /// A string kept as text: checked for UTF-8 like serde does.
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw()?).ok()
    }

    fn u64(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(c) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 || (len > 1 && self.b[start] == b'0') {
            return None;
        }
        // A fraction or exponent is not an unsigned integer; serde says why.
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    fn bound(&mut self) -> Option<Bound> {
        Bound::from_bytes(self.raw()?)
    }

    /// A room: a number, or a non-empty name.
    fn room(&mut self) -> Option<Room> {
        if self.peek()? == b'"' {
            let name = self.string()?;
            return (!name.is_empty()).then(|| Room::Name(name.to_string()));
        }
        self.u64().map(Room::Number)
    }

    /// Walks `{ "key": value, ... }`, handing each key to `field`, which must consume the
    /// value. Keys seen twice make it give up (serde rejects duplicate fields).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.raw()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn op_into(&mut self, ops: &mut Vec<Op>) -> Option<()> {
        let (mut index, mut time, mut process, mut kind, mut f) = (None, None, None, None, None);
        let mut value = OpValue::default();
        let mut has_value = false;
        let mut error = None;
        self.object(|s, key| match key {
            b"index" => set(&mut index, s.u64()?),
            b"time" => set(&mut time, s.u64()?),
            b"process" => {
                let p = if s.peek()? == b'"' {
                    (s.raw()? == b"nemesis").then_some(Process::Nemesis)?
                } else {
                    Process::Client(s.u64()?)
                };
                set(&mut process, p)
            }
            b"type" => {
                let k = match s.raw()? {
                    b"invoke" => OpType::Invoke,
                    b"ok" => OpType::Ok,
                    b"fail" => OpType::Fail,
                    b"info" => OpType::Info,
                    _ => return None,
                };
                set(&mut kind, k)
            }
            b"f" => set(&mut f, F::from(s.string()?)),
            b"value" => {
                if has_value {
                    return None;
                }
                has_value = true;
                s.value(&mut value)
            }
            b"error" => set(&mut error, s.string()?.to_string()),
            _ => None,
        })?;
        ops.push(Op {
            index: index?,
            time: time?,
            process: process?,
            kind: kind?,
            f: f?,
            value,
            error,
        });
        Some(())
    }

    fn value(&mut self, v: &mut OpValue) -> Option<()> {
        let mut seen = 0u32;
        self.object(|s, key| {
            let bit = match key {
                b"room" => {
                    v.room = Some(s.room()?);
                    1
                }
                b"from" => {
                    v.from = Some(s.bound()?);
                    2
                }
                b"to" => {
                    v.to = Some(s.bound()?);
                    4
                }
                b"request" => {
                    v.request = Some(s.string()?.to_string());
                    8
                }
                b"booking" => {
                    v.booking = Some(s.u64()?);
                    16
                }
                b"trace" => {
                    v.trace = Some(s.trace()?);
                    32
                }
                _ => return None,
            };
            once(&mut seen, bit)
        })
    }

    fn trace(&mut self) -> Option<Trace> {
        let mut t = Trace::default();
        let mut seen = 0u32;
        self.object(|s, key| {
            let (slot, bit) = match key {
                b"lock_key" => {
                    t.lock_key = Some(s.string()?.to_string());
                    return once(&mut seen, 1);
                }
                b"lock_renewed" => {
                    s.eat(b'[')?;
                    if s.peek()? == b']' {
                        s.i += 1;
                    } else {
                        loop {
                            t.lock_renewed.push(s.u64()?);
                            match s.peek()? {
                                b',' => s.i += 1,
                                b']' => {
                                    s.i += 1;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                    return once(&mut seen, 2);
                }
                b"lock_acquired" => (&mut t.lock_acquired, 4),
                b"lock_ttl_ms" => (&mut t.lock_ttl_ms, 8),
                b"lock_released" => (&mut t.lock_released, 16),
                b"token" => (&mut t.token, 32),
                b"db_begin" => (&mut t.db_begin, 64),
                b"db_commit" => (&mut t.db_commit, 128),
                b"confirmed" => (&mut t.confirmed, 256),
                _ => return None,
            };
            *slot = Some(s.u64()?);
            once(&mut seen, bit)
        })?;
        Some(t)
    }
}

fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

fn once(seen: &mut u32, bit: u32) -> Option<()> {
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_serde_on_the_contract_examples() {
        for line in [
            r#"{"index":7,"time":1830021,"process":3,"type":"invoke","f":"book","value":{"room":101,"from":"2026-12-01","to":"2026-12-03","request":"r-17"}}"#,
            r#" { "index" : 9 , "time":612830021,"process":3,"type":"ok","f":"book","value":{"booking":42,"trace":{"lock_key":"room:101","lock_renewed":[1, 2],"token":0}},"error":"x"}"#,
            r#"{"index":1,"time":5,"process":"nemesis","type":"info","f":"start-db-latency","value":{}}"#,
        ] {
            let fast = parse_op(line.as_bytes()).expect("common shape");
            let serde: Op = serde_json::from_str(line).unwrap();
            assert_eq!(fast, serde);
        }
    }

    #[test]
    fn gives_up_on_what_it_does_not_know() {
        for line in [
            r#"{"index":1,"time":5,"process":1,"type":"ok","f":"read","value":{"bookings":[]}}"#,
            r#"{"index":1,"time":5,"process":1,"type":"ok","f":"r\u0065ad"}"#,
            r#"{"index":1,"time":5,"process":1,"type":"ok","f":"read","value":null}"#,
            r#"{"index":1,"index":2,"time":5,"process":1,"type":"ok","f":"read"}"#,
            r#"{"index":01,"time":5,"process":1,"type":"ok","f":"read"}"#,
            r#"{"index":1.0,"time":5,"process":1,"type":"ok","f":"read"}"#,
            r#"{"index":18446744073709551616,"time":5,"process":1,"type":"ok","f":"read"}"#,
            r#"{"index":1,"time":5,"process":1,"type":"okay","f":"read"}"#,
            r#"{"index":1,"time":5,"process":1,"type":"ok","f":"read","extra":1}"#,
            r#"{"index":1,"time":5,"process":1,"type":"ok","f":"read"} x"#,
            r#"{"index":1,"time":5,"process":1,"type":"ok"}"#,
        ] {
            assert_eq!(parse_op(line.as_bytes()), None, "{line}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// The scanner never disagrees with serde: on synthetic lines it takes every
        /// line but the final read; on mutated ones it either agrees or gives up.
        #[test]
        fn never_disagrees_with_serde(
            seed in proptest::prelude::any::<u64>(),
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), 0u8..3), 0..4),
        ) {
            let cfg = crate::synth::SynthConfig { seed, events: 60, processes: 4, ..Default::default() };
            for op in crate::synth::serial_hotel(&cfg) {
                let mut line = serde_json::to_vec(&op).unwrap();
                if op.value.bookings.is_none() {
                    let fast = parse_op(&line);
                    proptest::prop_assert_eq!(fast.as_ref(), Some(&op));
                }
                for &(at, b, how) in &edits {
                    let at = at % line.len();
                    match how {
                        0 => line[at] = b,
                        1 => { line.remove(at); }
                        _ => line.insert(at, b),
                    }
                }
                if let Some(fast) = parse_op(&line) {
                    let serde: Result<Op, _> = serde_json::from_slice(&line);
                    proptest::prop_assert!(serde.is_ok(), "scanner took a line serde rejects: {}", String::from_utf8_lossy(&line));
                    proptest::prop_assert_eq!(fast, serde.unwrap());
                }
            }
        }
    }
}
