//! The strikes of aimed faults (`fire-<fault>` events: a write held, a COMMIT answer
//! swallowed, a lease grant held, a renewal dropped) and which client op each one hit,
//! so an anomaly's timeline can draw A's and B's own strikes on their lanes and let the
//! others fade into the background.
//!
//! A firing names the proxy's connection, not the op: the history links the two only
//! through time. Under the built-in designs each client session (one process) opens its
//! own connection to each server and keeps it for its life, and a proxy acts on a
//! connection's message only while that session is inside the matching step of an op
//! (its transaction, for Postgres; acquiring or holding the named lease, for Redis). So
//! the process a connection belongs to was inside that step at every one of the
//! connection's firings. A strike is attributed to a process only when that leaves
//! exactly one candidate: the process was in step at every firing of the connection, and
//! no other process was. A connection with a single firing and no lease key to narrow it
//! is never attributed (any writer in flight could own it), nor is anything in service
//! mode, where the service's own connection pool serves every user.

use std::collections::{BTreeMap, BTreeSet};

use checkers::{Op, Process};

use crate::spans::{Span, Window};

/// One firing of an aimed fault, as its `fire-<fault>` event records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Strike {
    /// When the proxy acted (ns, the history's clock).
    pub time: u64,
    /// The proxy's number for the client connection, when recorded.
    pub connection: Option<u64>,
    /// `postgres` or `redis`.
    pub server: String,
    /// `held`, `swallowed`, `dropped`, `jumped`, `killed`.
    pub action: String,
    /// The statement's first word, the Redis command, or what the strike did.
    pub command: String,
    /// `write`, `commit`, `matched`, `acquire`, `renew`, `clock`...
    pub kind: String,
    /// The table written or the lease key, when known.
    pub target: Option<String>,
    /// How long it was held at most, for holds.
    pub held_ms: Option<u64>,
    /// The fault's name (`slow-writes`).
    pub fault: String,
    /// When the proxy let a held message go at the latest: the hold's end, or its
    /// window's heal if sooner (ns); the strike's own time for what is not held.
    released: u64,
}

/// How far the history's instants may lag the proxy's: a firing is stamped when the
/// nemesis logs it, the trace when the client saw the answer.
const SLACK: u64 = 5_000_000;

/// At most this many connections are searched per page: each search looks at every op.
const SEARCHES_MAX: usize = 200;

impl Strike {
    /// The strike a `fire-<fault>` event records, if `op` is one.
    fn of(op: &Op) -> Option<Strike> {
        let fault = op.f.as_str().strip_prefix("fire-")?;
        let d = op.value.detail.as_ref();
        let text = |k: &str| {
            d.and_then(|d| d.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let number = |k: &str| d.and_then(|d| d.get(k)).and_then(|v| v.as_u64());
        Some(Strike {
            time: op.time,
            connection: number("connection"),
            server: text("server").unwrap_or_default(),
            action: text("action").unwrap_or_default(),
            command: text("command").unwrap_or_default(),
            kind: text("kind").unwrap_or_default(),
            target: text("target"),
            held_ms: number("held_ms"),
            fault: fault.to_string(),
            released: op.time,
        })
    }

    /// What the strike did to the op, in a few words: "INSERT held 634 ms", "COMMIT
    /// answer swallowed", "lease grant held 600 ms", "renewal dropped".
    pub(crate) fn label(&self) -> String {
        let what = match self.kind.as_str() {
            "renew" => "renewal".to_string(),
            "commit" if self.action == "swallowed" => "COMMIT answer".to_string(),
            _ if self.command.is_empty() => self.fault.clone(),
            _ => self.command.clone(),
        };
        match self.held_ms {
            Some(ms) => format!("{what} {} {ms} ms", self.action),
            None => format!("{what} {}", self.action),
        }
    }

    /// Whether the strike hit the lock server (drawn on the lease row) rather than the
    /// database (the transaction row).
    pub(crate) fn on_lease(&self) -> bool {
        self.server == "redis"
    }

    /// Whether `sp` was inside the step this strike acts on at its time: its
    /// transaction (Postgres), acquiring the strike's lease (a held grant) or holding it
    /// (a dropped renewal). Strikes on a node rather than a connection (a clock jump, a
    /// kill) are in no op's step.
    ///
    /// A held message also bounds the step's end: the op cannot finish its statement
    /// (or get its grant) before the proxy let the message go, at `released` (the hold's
    /// end, or the window's heal if sooner), within [`SLACK`].
    fn in_step(&self, sp: &Span<'_>) -> bool {
        let t = self.time;
        if t < sp.start || t > sp.end {
            return false;
        }
        let trace = sp.trace();
        let released = self.released.saturating_sub(SLACK);
        match (self.server.as_str(), self.kind.as_str()) {
            ("postgres", _) => {
                let begin = trace.and_then(|t| t.db_begin).unwrap_or(sp.start);
                let end = trace.and_then(|t| t.db_commit).unwrap_or(sp.end);
                begin <= t && t <= end && released <= end
            }
            ("redis", "acquire" | "renew") => {
                let Some(trace) = trace else { return false };
                let (Some(key), Some(target)) = (trace.lock_key.as_deref(), &self.target) else {
                    return false;
                };
                // The proxy sees the lease's full key (with the run's prefix and
                // `lock:`); the trace names it by its room alone.
                if !(target == key || target.ends_with(&format!(":{key}"))) {
                    return false;
                }
                match self.kind.as_str() {
                    "acquire" => {
                        let acquired = trace.lock_acquired.unwrap_or(sp.end);
                        t <= acquired && released <= acquired
                    }
                    _ => {
                        trace.lock_acquired.is_some_and(|a| a <= t)
                            && t <= trace.lock_released.unwrap_or(sp.end)
                    }
                }
            }
            _ => false,
        }
    }
}

/// Narrows each connection's candidates by the owners proven for the others, until
/// nothing changes: a session holds one connection to Postgres, through its one proxy,
/// so two connection numbers of one fault's Postgres strikes have two owners. (Not so
/// for Redis: under Redlock a session holds one connection to each node's proxy, whose
/// numbers are their own; its keyed strikes narrow enough.)
fn eliminate(candidates: &mut [(Connection, Vec<usize>, BTreeSet<Process>)]) {
    loop {
        let proven: Vec<(usize, String, Process)> = candidates
            .iter()
            .enumerate()
            .filter(|(_, (key, _, c))| key.1 == "postgres" && c.len() == 1)
            .filter_map(|(k, (key, _, c))| c.first().map(|&p| (k, key.0.clone(), p)))
            .collect();
        let mut changed = false;
        for (k, (key, _, c)) in candidates.iter_mut().enumerate() {
            for (owner_of, fault, p) in &proven {
                let same = key.1 == "postgres" && key.0 == *fault;
                if *owner_of != k && same && c.len() > 1 && c.remove(p) {
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
    }
}

/// A connection as firings name it: the fault (so one proxy's numbers are not mixed
/// with another's), the server, and the proxy's connection number.
type Connection = (String, String, u64);

/// Every strike of a history, and the process each one hit where the history pins it
/// down (see the module doc).
pub(crate) struct Strikes {
    pub list: Vec<Strike>,
    /// strike index -> the process whose op it hit.
    hit: BTreeMap<usize, Process>,
}

impl Strikes {
    /// The strikes among `ops`, each held message released by the end of its hold or
    /// of its fault's window (`windows`), whichever came first; none are attributed
    /// until [`Strikes::attribute`].
    pub(crate) fn of(ops: &[Op], windows: &[Window]) -> Strikes {
        let mut list: Vec<Strike> = ops
            .iter()
            .filter(|o| o.process == Process::Nemesis)
            .filter_map(Strike::of)
            .collect();
        for st in &mut list {
            let held = st.held_ms.unwrap_or(0).saturating_mul(1_000_000);
            let heal = windows
                .iter()
                .rev()
                .find(|w| w.name == st.fault && w.start <= st.time)
                .map_or(u64::MAX, |w| w.end);
            st.released = st.time.saturating_add(held).min(heal.max(st.time));
        }
        Strikes {
            list,
            hit: BTreeMap::new(),
        }
    }

    /// Attributes the strikes of every connection that may have hit an op of one of
    /// `processes` (the ops the anomaly views draw): only those are worth a search over
    /// every op. `spans` are all client ops. A connection's candidates are the processes
    /// in step at all of its firings; as no process owns two connections to one server,
    /// an owner proven for one connection is no candidate for another.
    pub(crate) fn attribute(&mut self, spans: &[Span<'_>], processes: &BTreeSet<Process>) {
        let mut by_process: BTreeMap<Process, Vec<&Span<'_>>> = BTreeMap::new();
        for sp in spans {
            by_process.entry(sp.process).or_default().push(sp);
        }
        let mut by_connection: BTreeMap<Connection, Vec<usize>> = BTreeMap::new();
        for (i, s) in self.list.iter().enumerate() {
            if let Some(c) = s.connection {
                by_connection
                    .entry((s.fault.clone(), s.server.clone(), c))
                    .or_default()
                    .push(i);
            }
        }
        let in_step = |p: &Process, s: &Strike| {
            by_process
                .get(p)
                .is_some_and(|sps| sps.iter().any(|sp| s.in_step(sp)))
        };
        let mut candidates: Vec<(Connection, Vec<usize>, BTreeSet<Process>)> = Vec::new();
        for (key, strikes) in by_connection {
            let list: Vec<&Strike> = strikes.iter().map(|&i| &self.list[i]).collect();
            // Worth a search only if one of the drawn processes is a candidate.
            if candidates.len() >= SEARCHES_MAX
                || !processes.iter().any(|p| list.iter().all(|s| in_step(p, s)))
            {
                continue;
            }
            let mut found: BTreeSet<Process> = spans
                .iter()
                .filter(|sp| list[0].in_step(sp))
                .map(|sp| sp.process)
                .collect();
            found.retain(|p| list[1..].iter().all(|s| in_step(p, s)));
            candidates.push((key, strikes, found));
        }
        eliminate(&mut candidates);
        for (_, strikes, found) in candidates {
            if let Some(&owner) = found.first().filter(|_| found.len() == 1) {
                for i in strikes {
                    self.hit.insert(i, owner);
                }
            }
        }
    }

    /// The strikes that hit `sp` (its process, during its span), in time order.
    pub(crate) fn on(&self, sp: &Span<'_>) -> Vec<&Strike> {
        self.hit
            .iter()
            .filter(|(_, p)| **p == sp.process)
            .map(|(&i, _)| &self.list[i])
            .filter(|s| sp.start <= s.time && s.time <= sp.end)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::{OpType, OpValue, Trace, F};

    fn op(index: u64, time_ms: u64, process: Process, kind: OpType, f: &str) -> Op {
        Op {
            index,
            time: time_ms * 1_000_000,
            process,
            kind,
            f: F::from(f),
            value: OpValue::default(),
            error: None,
        }
    }

    fn fire(index: u64, time_ms: u64, connection: u64) -> Op {
        let mut o = op(
            index,
            time_ms,
            Process::Nemesis,
            OpType::Info,
            "fire-slow-writes",
        );
        o.value.detail = Some(serde_json::json!({"server": "postgres", "action": "held",
            "command": "INSERT", "kind": "write", "target": "bookings", "held_ms": 40,
            "connection": connection}));
        o
    }

    /// Two clients in their transactions at once: a single firing cannot tell whose
    /// connection it was; a second firing while only one of them writes can.
    #[test]
    fn a_connection_is_attributed_only_when_its_firings_leave_one_process() {
        let (a, b) = (Process::Client(1), Process::Client(2));
        let mut ops = vec![
            op(0, 0, a, OpType::Invoke, "book"),
            op(1, 0, b, OpType::Invoke, "book"),
        ];
        ops.push(fire(2, 100, 7));
        ops.push(op(3, 200, b, OpType::Ok, "book"));
        ops.push(fire(4, 300, 7));
        ops.push(op(5, 900, a, OpType::Ok, "book"));
        let trace = |begin: u64, commit: u64| Trace {
            db_begin: Some(begin * 1_000_000),
            db_commit: Some(commit * 1_000_000),
            ..Trace::default()
        };
        ops[3].value.trace = Some(trace(10, 150));
        ops[5].value.trace = Some(trace(10, 850));
        let spans = crate::spans::Spans::build(&ops).spans;
        let mut strikes = Strikes::of(&ops, &[]);
        strikes.attribute(&spans, &[a, b].into_iter().collect());
        let on_a: Vec<u64> = strikes.on(&spans[0]).iter().map(|s| s.time).collect();
        assert_eq!(on_a, [100_000_000, 300_000_000]);
        assert!(strikes.on(&spans[1]).is_empty());
        assert_eq!(strikes.list[0].label(), "INSERT held 40 ms");

        // The first firing alone leaves both: nothing is attributed.
        let mut one = Strikes::of(&ops[..4], &[]);
        one.attribute(&spans, &[a, b].into_iter().collect());
        assert!(one.on(&spans[0]).is_empty() && one.on(&spans[1]).is_empty());
    }
}
