//! Reading and writing histories as JSON Lines.
//!
//! The reader is streaming (one reused line buffer) because `overbook check` must handle
//! million-op histories at over a million ops a second: each line goes through the
//! scanner of [`crate::scan`] for the common shape, else `serde_json::from_slice`. When
//! a line does not parse, a slow second pass over that one line works out which field is
//! wrong, so the error can say "line 7: field `type`: unknown op type \"okay\"" instead of
//! serde's column number.

use std::io::{self, BufRead, Write};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bound::Bound;
pub use crate::error::ReadError;
use crate::history::{BookingRow, Op, Process};
use crate::pairing::{History, Validator};
use crate::room::Room;

/// Reads a whole history and validates it (see [`History::from_ops`] for the rules).
/// Blank lines are skipped but still counted for line numbers.
pub fn read_history<R: BufRead>(r: R) -> Result<History, ReadError> {
    let mut reader = HistoryReader::new(r);
    let mut ops = Vec::new();
    let mut validator = Validator::default();
    while reader.next_into(&mut ops)? {
        let Some((last, prior)) = ops.split_last() else {
            break;
        };
        validator.check(prior, last, reader.line())?;
    }
    Ok(validator.finish(ops))
}

/// Streams ops out of JSON Lines, one at a time, checking each line's format (not the
/// cross-line rules: use [`read_history`] for those).
pub struct HistoryReader<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
    done: bool,
}

impl<R: BufRead> HistoryReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> HistoryReader<R> {
        HistoryReader {
            input,
            buf: Vec::with_capacity(512),
            line: 0,
            done: false,
        }
    }

    /// The line number of the op last returned.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next op, `None` at the end of input. After an error the reader is finished.
    pub fn next_op(&mut self) -> Option<Result<Op, ReadError>> {
        let mut one = Vec::with_capacity(1);
        match self.next_into(&mut one) {
            Ok(true) => one.pop().map(Ok),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Appends the next op to `ops`; `Ok(false)` at the end of input.
    fn next_into(&mut self, ops: &mut Vec<Op>) -> Result<bool, ReadError> {
        if self.done {
            return Ok(false);
        }
        loop {
            self.line += 1;
            // Fast path: the whole line is in the reader's buffer and the scanner takes
            // it, so it is parsed in place without being copied out.
            let avail = match self.input.fill_buf() {
                Ok(avail) => avail,
                Err(source) => return Err(self.fail_io(source)),
            };
            if avail.is_empty() {
                self.done = true;
                return Ok(false);
            }
            if let Some(end) = memchr::memchr(b'\n', avail) {
                let line = &avail[..=end];
                if line.iter().all(u8::is_ascii_whitespace) {
                    self.input.consume(end + 1);
                    continue;
                }
                if crate::scan::parse_op_into(line, ops) {
                    self.input.consume(end + 1);
                    return Ok(true);
                }
            }
            // Slow path: a line across buffer refills, the last line without a newline,
            // or one the scanner leaves to serde.
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return Ok(false);
                }
                Ok(_) => {}
                Err(source) => return Err(self.fail_io(source)),
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if crate::scan::parse_op_into(&self.buf, ops) {
                return Ok(true);
            }
            return match serde_json::from_slice::<Op>(&self.buf) {
                Ok(op) => {
                    ops.push(op);
                    Ok(true)
                }
                Err(e) => {
                    self.done = true;
                    let line = self.buf.trim_ascii_end();
                    Err(diagnose(line, self.line, &e))
                }
            };
        }
    }

    fn fail_io(&mut self, source: io::Error) -> ReadError {
        self.done = true;
        ReadError::Io {
            line: self.line,
            source,
        }
    }
}

impl<R: BufRead> Iterator for HistoryReader<R> {
    type Item = Result<Op, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_op()
    }
}

/// Writes ops as JSON Lines, one line each. Not flushed per line: wrap a `BufWriter` and
/// call [`HistoryWriter::flush`] (the harness's recorder writes through this and flushes
/// every line, so a crash keeps what was recorded).
pub struct HistoryWriter<W: Write> {
    out: W,
}

impl<W: Write> HistoryWriter<W> {
    /// A writer appending to `out`.
    pub fn new(out: W) -> HistoryWriter<W> {
        HistoryWriter { out }
    }

    /// Appends one op as one line.
    pub fn append(&mut self, op: &Op) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, op).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Works out which field of a line that failed to parse is at fault. Slow on purpose:
/// it only runs once, on the line that stops the read.
fn diagnose(line_bytes: &[u8], line: u64, original: &serde_json::Error) -> ReadError {
    let json = |message: String| ReadError::Json { line, message };
    let field = |field: &str, message: String| ReadError::Field {
        line,
        field: field.to_string(),
        message,
    };
    let v: Value = match serde_json::from_slice(line_bytes) {
        Ok(v) => v,
        Err(e) => return json(without_position(&e)),
    };
    let Value::Object(obj) = &v else {
        return json(format!("expected a JSON object, got {}", kind_of(&v)));
    };
    for name in ["index", "time"] {
        match obj.get(name) {
            None => return field(name, "missing".into()),
            Some(x) if x.as_u64().is_none() => {
                return field(name, format!("expected a non-negative integer, got {x}"))
            }
            _ => {}
        }
    }
    match obj.get("process") {
        None => return field("process", "missing".into()),
        Some(x) => {
            if let Err(e) = serde_json::from_value::<Process>(x.clone()) {
                return field("process", without_position(&e));
            }
        }
    }
    match obj.get("type") {
        None => return field("type", "missing".into()),
        Some(Value::String(s)) if ["invoke", "ok", "fail", "info"].contains(&s.as_str()) => {}
        Some(Value::String(s)) => {
            return field(
                "type",
                format!("unknown op type {s:?} (expected invoke, ok, fail or info)"),
            )
        }
        Some(x) => return field("type", format!("expected a string, got {x}")),
    }
    match obj.get("f") {
        None => return field("f", "missing".into()),
        Some(Value::String(_)) => {}
        Some(x) => return field("f", format!("expected a string, got {x}")),
    }
    match obj.get("error") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(x) => return field("error", format!("expected a string, got {x}")),
    }
    match obj.get("value") {
        None | Some(Value::Null) => {}
        Some(Value::Object(value)) => {
            if let Some((name, msg)) = diagnose_value(value) {
                return field(&name, msg);
            }
        }
        Some(x) => return field("value", format!("expected an object or null, got {x}")),
    }
    json(without_position(original))
}

fn diagnose_value(value: &serde_json::Map<String, Value>) -> Option<(String, String)> {
    fn bad<T: DeserializeOwned>(v: &Value) -> Option<String> {
        if v.is_null() {
            return None;
        }
        serde_json::from_value::<T>(v.clone())
            .err()
            .map(|e| without_position(&e))
    }
    type FieldCheck = (&'static str, fn(&Value) -> Option<String>);
    let checks: [FieldCheck; 5] = [
        ("room", bad::<Room>),
        ("from", bad::<Bound>),
        ("to", bad::<Bound>),
        ("request", bad::<String>),
        ("booking", bad::<u64>),
    ];
    for (name, check) in checks {
        if let Some(msg) = value.get(name).and_then(check) {
            return Some((format!("value.{name}"), msg));
        }
    }
    match value.get("bookings") {
        None | Some(Value::Null) => {}
        Some(Value::Array(rows)) => {
            for (i, row) in rows.iter().enumerate() {
                if let Some(msg) = bad::<BookingRow>(row) {
                    return Some((format!("value.bookings[{i}]"), msg));
                }
            }
        }
        Some(x) => {
            return Some((
                "value.bookings".into(),
                format!("expected an array, got {x}"),
            ))
        }
    }
    match value.get("trace") {
        None | Some(Value::Null) => {}
        Some(Value::Object(trace)) => {
            for (name, x) in trace {
                let msg = match name.as_str() {
                    "lock_key" => bad::<String>(x),
                    "lock_renewed" => bad::<Vec<u64>>(x),
                    _ => bad::<u64>(x),
                };
                if let Some(msg) = msg {
                    return Some((format!("value.trace.{name}"), msg));
                }
            }
        }
        Some(x) => return Some(("value.trace".into(), format!("expected an object, got {x}"))),
    }
    None
}

/// serde_json's message without " at line 1 column N": the line is ours to name, and the
/// column is kept only when it helps (malformed JSON).
fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(cut) if e.column() > 0 && e.is_syntax() || e.is_eof() => {
            format!("{} (column {})", &s[..cut], e.column())
        }
        Some(cut) => s[..cut].to_string(),
        None => s,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
