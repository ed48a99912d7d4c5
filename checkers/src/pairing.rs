//! A validated history: the ops, each invocation paired with its completion, and the
//! rules of the contract enforced (one op in flight per process, retired processes stay
//! retired, time never runs backwards).
//!
//! Pairing is done once here so that no checker has to reason about interleavings: each
//! asks "what did op 14 ask for, and how did it end?".

use crate::hash::FastMap;

use crate::error::ReadError;
use crate::header::RunHeader;
use crate::history::{Op, OpType, Process, Stay, F};

const NO_PARTNER: u32 = u32::MAX;

/// A history that passed every rule of the contract, with invokes paired to completions.
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Vec<Op>,
    partner: Vec<u32>,
    books: Vec<BookOp>,
    cancels: Vec<CancelOp>,
    traced: Vec<u32>,
    /// Completions whose trace names a lease ending past the clock's range.
    bad_traces: Vec<u32>,
    nemesis: Vec<u32>,
    final_read: Option<usize>,
    header: Option<RunHeader>,
}

/// One `cancel` operation that may have taken effect (`ok`, `info`, or in flight at the
/// end), with what it names; built once so checkers need not rescan every op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOp {
    /// Index of the invocation.
    pub invoke: u32,
    /// When it was invoked (ns): from then on it may have freed the nights.
    pub time: u64,
    /// The booking id it names (invocation's, else completion's).
    pub booking: Option<u64>,
    /// The op whose `value.request` is the request key it names, if any.
    pub request_at: Option<u32>,
}

/// One `book` operation: its invocation, how it ended, and the stay it asked for.
/// Built once per history so checkers walk a compact list instead of every op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookOp {
    /// Index of the invocation.
    pub invoke: u32,
    /// Index of the completion; `None` when still in flight at the end.
    pub completion: Option<u32>,
    /// `ok`, `fail` or `info` (in flight at the end counts as `info`).
    pub outcome: OpType,
    /// The stay asked for, from the invocation's arguments.
    pub stay: Stay,
    /// When it was invoked (ns).
    pub invoked_at: u64,
    /// When it completed (ns), if it did.
    pub done_at: Option<u64>,
    /// The booking id it got (completion's, else invocation's), if any.
    pub booking: Option<u64>,
}

impl History {
    /// Builds a history from ops already in memory (e.g. the runner's recorded ops),
    /// enforcing the same rules as [`crate::read_history`]; "line" in errors is the
    /// op's position + 1.
    pub fn from_ops(ops: Vec<Op>) -> Result<History, ReadError> {
        let mut v = Validator::default();
        for (i, op) in ops.iter().enumerate() {
            v.check(&ops[..i], op, i as u64 + 1)?;
        }
        Ok(v.finish(ops))
    }

    /// Every op, in index order (`ops()[i].index == i`).
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Gives the ops back, dropping the indexes.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// The op with this index.
    pub fn get(&self, index: u64) -> Option<&Op> {
        self.ops.get(usize::try_from(index).ok()?)
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the history has no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The other half of op `index`: its completion for an invocation, its invocation for
    /// a completion. `None` for an op still in flight at the end, or a lone nemesis event.
    pub fn partner(&self, index: usize) -> Option<usize> {
        match self.partner.get(index) {
            Some(&p) if p != NO_PARTNER => Some(p as usize),
            _ => None,
        }
    }

    /// The completion of the invocation at `index`.
    pub fn completion_of(&self, index: usize) -> Option<&Op> {
        let op = self.ops.get(index)?;
        if !op.is_invoke() {
            return None;
        }
        self.partner(index).map(|p| &self.ops[p])
    }

    /// The invocation a completion at `index` completes.
    pub fn invoke_of(&self, index: usize) -> Option<&Op> {
        let op = self.ops.get(index)?;
        if op.is_invoke() {
            return None;
        }
        self.partner(index).map(|p| &self.ops[p])
    }

    /// How the invocation at `index` ended: its completion's type, or `info` when it was
    /// still in flight at the end (the contract: its outcome is unknown).
    pub fn outcome(&self, index: usize) -> OpType {
        self.completion_of(index).map_or(OpType::Info, |c| c.kind)
    }

    /// Every `book` op, in invocation order.
    pub fn books(&self) -> &[BookOp] {
        &self.books
    }

    /// Every `cancel` that may have taken effect (`fail`ed ones are left out), in
    /// invocation order.
    pub fn cancels(&self) -> &[CancelOp] {
        &self.cancels
    }

    /// The request key a cancel names.
    pub fn cancel_request(&self, c: &CancelOp) -> Option<&str> {
        c.request_at
            .and_then(|i| self.ops[i as usize].value.request.as_deref())
    }

    /// Indexes of client completions whose trace names a lock, in order.
    pub fn traced(&self) -> &[u32] {
        &self.traced
    }

    /// Indexes of client completions whose trace was left out of [`History::traced`]
    /// because its lease ends past the clock's range (a trace value no real lease can
    /// have, e.g. from a buggy service): the lock checkers ignore them and say so.
    pub fn bad_traces(&self) -> &[u32] {
        &self.bad_traces
    }

    /// The run header (the first `run` event of the nemesis), when the history has one:
    /// what the run requested, so its verdict needs the history alone.
    pub fn header(&self) -> Option<&RunHeader> {
        self.header.as_ref()
    }

    /// Indexes of the nemesis's events, in order.
    pub fn nemesis_ops(&self) -> &[u32] {
        &self.nemesis
    }

    /// The index of the final read: the completion of the last `ok` `read`.
    pub fn final_read(&self) -> Option<usize> {
        self.final_read
    }

    /// Invocations of client ops still in flight when the history ends.
    pub fn in_flight_at_end(&self) -> impl Iterator<Item = &Op> + '_ {
        self.ops
            .iter()
            .enumerate()
            .filter(|(i, op)| op.is_invoke() && !op.is_nemesis() && self.partner(*i).is_none())
            .map(|(_, op)| op)
    }

    /// The request key of a `book`: the invocation's, else the completion's.
    pub fn book_request(&self, b: &BookOp) -> Option<&str> {
        self.ops[b.invoke as usize]
            .value
            .request
            .as_deref()
            .or_else(|| {
                b.completion
                    .and_then(|c| self.ops[c as usize].value.request.as_deref())
            })
    }

    /// The booking id a `book` got: the completion's, else the invocation's.
    pub fn book_id(&self, b: &BookOp) -> Option<u64> {
        b.booking
    }
}

enum ClientState {
    InFlight(u32),
    Retired(u32),
}

/// Enforces the history rules one op at a time, so the streaming reader can stop at the
/// first bad line without holding the rest of the file.
#[derive(Default)]
pub(crate) struct Validator {
    clients: FastMap<u64, ClientState>,
    nemesis_open: FastMap<String, Vec<u32>>,
    partner: Vec<u32>,
    last_time: u64,
}

fn rule(line: u64, field: &str, message: String) -> ReadError {
    ReadError::Field {
        line,
        field: field.to_string(),
        message,
    }
}

impl Validator {
    /// Checks `op` against the ops before it (`prior`, all already checked).
    pub(crate) fn check(&mut self, prior: &[Op], op: &Op, line: u64) -> Result<(), ReadError> {
        let pos = prior.len() as u64;
        if op.index != pos {
            return Err(rule(
                line,
                "index",
                format!(
                    "expected {pos} (indexes count up by 1 from 0), got {}",
                    op.index
                ),
            ));
        }
        if pos >= NO_PARTNER as u64 {
            return Err(rule(
                line,
                "index",
                "history too long (over 4 billion ops)".into(),
            ));
        }
        if op.time < self.last_time {
            return Err(rule(
                line,
                "time",
                format!(
                    "{} is before the previous op's time {} (time must not decrease)",
                    op.time, self.last_time
                ),
            ));
        }
        let me = pos as u32;
        let mut partner = NO_PARTNER;
        match op.process {
            Process::Nemesis => {
                // The nemesis logs invoke/info pairs, but foreign injectors may log only
                // completions; pair what pairs and accept the rest.
                let name = op.f.as_str();
                if op.is_invoke() {
                    self.nemesis_open
                        .entry(name.to_string())
                        .or_default()
                        .push(me);
                } else if let Some(open) = self.nemesis_open.get_mut(name) {
                    if let Some(inv) = open.pop() {
                        partner = inv;
                        self.partner[inv as usize] = me;
                    }
                }
            }
            Process::Client(p) => {
                if op.is_invoke() {
                    match self.clients.get(&p) {
                        Some(ClientState::InFlight(inv)) => {
                            return Err(rule(
                                line,
                                "process",
                                format!(
                                    "process {p} invoked a new op while its op {inv} (line {}) is still in flight",
                                    line - (pos - *inv as u64)
                                ),
                            ))
                        }
                        Some(ClientState::Retired(done)) => {
                            return Err(rule(
                                line,
                                "process",
                                format!(
                                    "process {p} issued an op after its op {done} ended in `info` (a process with an unknown outcome is retired)"
                                ),
                            ))
                        }
                        None => {}
                    }
                    if op.f == F::Book {
                        check_book_args(op, line)?;
                    }
                    self.clients.insert(p, ClientState::InFlight(me));
                } else {
                    let inv = match self.clients.get(&p) {
                        Some(ClientState::InFlight(inv)) => *inv,
                        _ => {
                            return Err(rule(
                                line,
                                "type",
                                format!(
                                    "`{}` completion for process {p}, which has no op in flight",
                                    kind_name(op.kind)
                                ),
                            ))
                        }
                    };
                    let invoked = &prior[inv as usize];
                    if invoked.f != op.f {
                        return Err(rule(
                            line,
                            "f",
                            format!(
                                "completion `{}` does not match its invocation's `{}` (op {inv})",
                                op.f, invoked.f
                            ),
                        ));
                    }
                    partner = inv;
                    self.partner[inv as usize] = me;
                    if op.kind == OpType::Info {
                        self.clients.insert(p, ClientState::Retired(me));
                    } else {
                        self.clients.remove(&p);
                    }
                }
            }
        }
        self.partner.push(partner);
        self.last_time = op.time;
        Ok(())
    }

    /// Turns the checked ops into a [`History`] with its indexes.
    pub(crate) fn finish(self, ops: Vec<Op>) -> History {
        let partner = self.partner;
        let mut books = Vec::new();
        let mut cancels = Vec::new();
        let mut traced = Vec::new();
        let mut bad_traces = Vec::new();
        let mut nemesis = Vec::new();
        let mut final_read = None;
        let done = |i: usize| (partner[i] != NO_PARTNER).then(|| &ops[partner[i] as usize]);
        for (i, op) in ops.iter().enumerate() {
            if op.is_nemesis() {
                nemesis.push(i as u32);
                continue;
            }
            if op.is_completion() {
                if let Some(t) = op.value.trace.as_ref().filter(|t| t.lock_key.is_some()) {
                    if lease_in_range(t) {
                        traced.push(i as u32);
                    } else {
                        bad_traces.push(i as u32);
                    }
                }
            }
            match (&op.f, op.kind) {
                (F::Book, OpType::Invoke) => {
                    // Validated on invoke: room, from and to are present.
                    let Some(stay) = op.value.stay() else {
                        continue;
                    };
                    let completion = (partner[i] != NO_PARTNER).then_some(partner[i]);
                    let outcome = completion.map_or(OpType::Info, |c| ops[c as usize].kind);
                    let end = done(i);
                    books.push(BookOp {
                        invoke: i as u32,
                        completion,
                        outcome,
                        stay,
                        invoked_at: op.time,
                        done_at: end.map(|c| c.time),
                        booking: end.and_then(|c| c.value.booking).or(op.value.booking),
                    });
                }
                (F::Cancel, OpType::Invoke) => {
                    let end = done(i);
                    if end.is_some_and(|c| c.kind == OpType::Fail) {
                        continue;
                    }
                    let request_at = if op.value.request.is_some() {
                        Some(i as u32)
                    } else {
                        end.filter(|c| c.value.request.is_some())
                            .map(|_| partner[i])
                    };
                    cancels.push(CancelOp {
                        invoke: i as u32,
                        time: op.time,
                        booking: op.value.booking.or(end.and_then(|c| c.value.booking)),
                        request_at,
                    });
                }
                (F::Read, OpType::Ok) if op.value.bookings.is_some() => {
                    final_read = Some(i);
                }
                _ => {}
            }
        }
        let header = RunHeader::of(&ops);
        History {
            ops,
            partner,
            books,
            cancels,
            traced,
            bad_traces,
            nemesis,
            final_read,
            header,
        }
    }
}

fn check_book_args(op: &Op, line: u64) -> Result<(), ReadError> {
    let v = &op.value;
    if v.room.is_none() {
        return Err(rule(
            line,
            "value.room",
            "a `book` invocation needs a room".into(),
        ));
    }
    let Some(from) = v.from else {
        return Err(rule(
            line,
            "value.from",
            "a `book` invocation needs a check-in date".into(),
        ));
    };
    let Some(to) = v.to else {
        return Err(rule(
            line,
            "value.to",
            "a `book` invocation needs a check-out date".into(),
        ));
    };
    if to <= from {
        return Err(rule(
            line,
            "value.to",
            format!("check-out {to} is not after check-in {from} (a stay has at least one night)"),
        ));
    }
    Ok(())
}

/// Whether a trace's lease ends inside the clock's range: its expiry (last grant plus
/// TTL, [`crate::Trace::lease_expiry`]) is arithmetic on history values, and a value past
/// `u64::MAX` ns has no honest meaning for a lease that was really granted. Such a trace
/// says something about whoever wrote it (a service's clock, a bug), not about the lock,
/// so it is left out of the lock checks rather than making the history unusable.
fn lease_in_range(t: &crate::Trace) -> bool {
    let (Some(granted), Some(ttl)) = (t.last_grant(), t.lock_ttl_ms) else {
        return true;
    };
    ttl.checked_mul(1_000_000)
        .and_then(|ns| granted.checked_add(ns))
        .is_some()
}

pub(crate) fn kind_name(k: OpType) -> &'static str {
    match k {
        OpType::Invoke => "invoke",
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info => "info",
    }
}
