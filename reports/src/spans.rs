//! The ops of a history as spans (invoke to completion), the unit every plot draws.

use std::collections::BTreeMap;

use checkers::{Op, OpType, Process, Trace, F};

/// How an op ended. `Open` ops were still in flight when the history ended; the checkers
/// count them as `info`, and so do the plots, but captions say which it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    Ok,
    Fail,
    Info,
    Open,
}

impl Outcome {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Open => "in flight at end",
        }
    }
}

/// One client op from its invocation to its completion.
#[derive(Debug, Clone)]
pub(crate) struct Span<'a> {
    pub process: Process,
    pub invoke: &'a Op,
    pub completion: Option<&'a Op>,
    pub outcome: Outcome,
    /// Invocation time (ns).
    pub start: u64,
    /// Completion time, or the history's last instant for ops still in flight.
    pub end: u64,
}

impl<'a> Span<'a> {
    pub(crate) fn f(&self) -> &'a F {
        &self.invoke.f
    }

    pub(crate) fn trace(&self) -> Option<&'a Trace> {
        self.completion.and_then(|c| c.value.trace.as_ref())
    }

    pub(crate) fn request(&self) -> Option<&'a str> {
        self.invoke
            .value
            .request
            .as_deref()
            .or_else(|| self.completion.and_then(|c| c.value.request.as_deref()))
    }

    /// The booking id its completion named, if any.
    pub(crate) fn booking(&self) -> Option<u64> {
        self.completion.and_then(|c| c.value.booking)
    }

    pub(crate) fn error(&self) -> Option<&'a str> {
        self.completion.and_then(|c| c.error.as_deref())
    }

    pub(crate) fn latency(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Index of the op's last event (its completion, else its invocation).
    pub(crate) fn last_index(&self) -> u64 {
        self.completion.map_or(self.invoke.index, |c| c.index)
    }
}

/// Every client op of the history as a span, in invocation order, plus a lookup from
/// op index to span. Malformed pairings (a completion without an invoke) are skipped,
/// not fatal: the report shows what it can.
pub(crate) struct Spans<'a> {
    pub spans: Vec<Span<'a>>,
    /// op index -> span, for the ops the anomalies name.
    by_index: BTreeMap<u64, usize>,
    pub end_time: u64,
}

impl<'a> Spans<'a> {
    pub(crate) fn build(ops: &'a [Op]) -> Spans<'a> {
        let end_time = ops.iter().map(|o| o.time).max().unwrap_or(0);
        let mut spans: Vec<Span<'a>> = Vec::new();
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        for op in ops {
            let Process::Client(p) = op.process else {
                continue;
            };
            // A client opening its session asked nothing of the data: not drawn.
            if op.f.as_str() == checkers::checks::conditions::OPEN {
                continue;
            }
            if op.kind == OpType::Invoke {
                open.insert(p, spans.len());
                spans.push(Span {
                    process: op.process,
                    invoke: op,
                    completion: None,
                    outcome: Outcome::Open,
                    start: op.time,
                    end: end_time,
                });
            } else if let Some(i) = open.remove(&p) {
                let s = &mut spans[i];
                s.completion = Some(op);
                s.end = op.time.max(s.start);
                s.outcome = match op.kind {
                    OpType::Ok => Outcome::Ok,
                    OpType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
            }
        }
        Spans {
            spans,
            by_index: BTreeMap::new(),
            end_time,
        }
    }

    /// Indexes the spans holding the given op indexes (invocations or completions).
    pub(crate) fn index_ops(&mut self, wanted: &std::collections::BTreeSet<u64>) {
        for (i, s) in self.spans.iter().enumerate() {
            if wanted.contains(&s.invoke.index) {
                self.by_index.insert(s.invoke.index, i);
            }
            if let Some(c) = s.completion {
                if wanted.contains(&c.index) {
                    self.by_index.insert(c.index, i);
                }
            }
        }
    }

    /// The span an op index belongs to (after [`Spans::index_ops`] named it).
    pub(crate) fn span_of(&self, op_index: u64) -> Option<usize> {
        self.by_index.get(&op_index).copied()
    }
}

/// A fault window as the report draws it: shaded from `start` to `end` (ns), with a mark
/// at each instant an aimed fault fired in it (a `fire-<name>` nemesis event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    pub name: String,
    pub start: u64,
    pub end: u64,
    /// When the fault acted on a message (held a write, swallowed an answer...), ns.
    pub firings: Vec<u64>,
    /// Which lock-service node it hit, when its start names one: `redlock node 2
    /// (127.0.0.1:40037)`.
    pub hit: Option<String>,
}

/// The lock-service node a fault's start event names (`lock_service`, `node`,
/// `node_addr` in its detail), if any.
fn node_hit(history: &checkers::History, start_op: u64) -> Option<String> {
    let detail = history
        .ops()
        .get(start_op as usize)?
        .value
        .detail
        .as_ref()?;
    let node = detail.get("node")?.as_u64()?;
    let service = detail
        .get("lock_service")
        .and_then(|v| v.as_str())
        .unwrap_or("redis");
    Some(match detail.get("node_addr").and_then(|v| v.as_str()) {
        Some(addr) => format!("{service} node {node} ({addr})"),
        None => format!("{service} node {node}"),
    })
}

/// The fault windows of a history, each with the instants its aimed fault fired. A firing
/// belongs to the last window of its fault that started at or before it (it may come
/// just after the window closed: a message acted on while the heal was under way).
pub(crate) fn windows(history: &checkers::History) -> Vec<Window> {
    let mut windows: Vec<Window> = checkers::fault_windows(history)
        .into_iter()
        .map(|w| Window {
            hit: node_hit(history, w.start_op),
            name: w.name,
            start: w.start,
            end: w.end,
            firings: Vec::new(),
        })
        .collect();
    for &i in history.nemesis_ops() {
        let op = &history.ops()[i as usize];
        let Some(name) = op.f.as_str().strip_prefix("fire-") else {
            continue;
        };
        if let Some(w) = windows
            .iter_mut()
            .rev()
            .find(|w| w.name == name && w.start <= op.time)
        {
            w.firings.push(op.time);
        }
    }
    windows
}
