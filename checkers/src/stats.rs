//! Stats of a history: counts per op and outcome, `book` latency quantiles, completion
//! rate over time, and the same inside each fault window. Never decides a verdict; it is
//! what reports plot and what tells a run "nothing happened" from "nothing went wrong".

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::checks::Checker;
use crate::history::{OpType, F};
use crate::pairing::History;
use crate::result::{thousands, CheckResult, Role};

/// Everything counted and measured in one history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of events (lines).
    pub ops: u64,
    /// Time from the first to the last event, ns.
    pub duration_ns: u64,
    /// Events per op name (`book`, `cancel`, `read`, fault names).
    pub counts: BTreeMap<String, Counts>,
    /// `book` latency (invoke to completion) per outcome: `ok`, `fail`, `info`.
    pub book_latency: BTreeMap<String, Quantiles>,
    /// Client completions per time bucket.
    pub rate: Rate,
    /// Each fault window with what `book` ops invoked inside it did.
    pub faults: Vec<FaultStats>,
}

/// How many events of one op name there were, by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Invocations.
    pub invoke: u64,
    /// `ok` completions.
    pub ok: u64,
    /// `fail` completions.
    pub fail: u64,
    /// `info` completions.
    pub info: u64,
    /// Invocations never completed (they count as `info`).
    pub in_flight: u64,
}

/// Latency quantiles (nearest rank), in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// How many ops were measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Completions over time. Buckets are 1 s, or wider for long histories so that there
/// are at most [`MAX_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Width of a bucket, ms.
    pub bucket_ms: u64,
    /// Buckets from time 0.
    pub buckets: Vec<RateBucket>,
}

/// The most rate buckets a history gets; enough for a plot, small in results.json.
pub const MAX_BUCKETS: u64 = 600;

/// Client completions in one time bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBucket {
    /// Bucket start, ms since the run started.
    pub start_ms: u64,
    /// `ok` completions.
    pub ok: u64,
    /// `fail` completions.
    pub fail: u64,
    /// `info` completions.
    pub info: u64,
}

/// A stretch of time during which the nemesis had a fault active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault, e.g. `db-latency` (from `start-db-latency`) or `pause-redis`.
    pub name: String,
    /// When the nemesis began injecting it, ns.
    pub start: u64,
    /// When it was healed (its stop completed), or the history's end if never, ns.
    pub end: u64,
    /// Index of the op that started it.
    pub start_op: u64,
    /// Index of the op that ended it; `None` when still open at the end.
    pub end_op: Option<u64>,
}

/// What `book` ops invoked inside one fault window did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultStats {
    /// The window.
    pub window: FaultWindow,
    /// `book` outcomes of ops invoked inside it.
    pub counts: Counts,
    /// Median `book` latency of those that completed, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same, ms.
    pub p99_ms: Option<f64>,
}

/// The fault windows of a history, in start order. Pairs `start-X`/`stop-X` (window
/// `X`), and for foreign histories `pause-X`/`resume-X`, `kill-X`/`restart-X`,
/// `partition-X`/`heal-X` (window named by the first). A window never closed runs to
/// the end of the history.
pub fn fault_windows(h: &History) -> Vec<FaultWindow> {
    let ops = h.ops();
    let end_of_history = ops.last().map_or(0, |o| o.time);
    let mut open: BTreeMap<String, VecDeque<(u64, u64)>> = BTreeMap::new();
    let mut windows = Vec::new();
    for &i in h.nemesis_ops() {
        let i = i as usize;
        let op = &ops[i];
        // One event per fault action: its invocation, or a lone completion.
        if !op.is_invoke() && h.partner(i).is_some() {
            continue;
        }
        let Some((name, starts)) = fault_action(op.f.as_str()) else {
            continue;
        };
        if starts {
            open.entry(name).or_default().push_back((op.time, i as u64));
        } else if let Some((start, start_op)) = open.get_mut(&name).and_then(VecDeque::pop_front) {
            let done = h.partner(i).filter(|_| op.is_invoke()).unwrap_or(i);
            windows.push(FaultWindow {
                name,
                start,
                end: ops[done].time,
                start_op,
                end_op: Some(done as u64),
            });
        }
    }
    for (name, rest) in open {
        for (start, start_op) in rest {
            windows.push(FaultWindow {
                name: name.clone(),
                start,
                end: end_of_history,
                start_op,
                end_op: None,
            });
        }
    }
    windows.sort_by_key(|w| w.start_op);
    windows
}

/// `(window name, whether it starts one)` for a nemesis op name.
fn fault_action(f: &str) -> Option<(String, bool)> {
    if let Some(x) = f.strip_prefix("start-") {
        return Some((x.to_string(), true));
    }
    if let Some(x) = f.strip_prefix("stop-") {
        return Some((x.to_string(), false));
    }
    const PAIRS: [(&str, &str); 4] = [
        ("pause-", "resume-"),
        ("kill-", "restart-"),
        ("partition-", "heal-"),
        ("crash-", "restart-"),
    ];
    for (start, stop) in PAIRS {
        if let Some(x) = f.strip_prefix(start) {
            return Some((format!("{start}{x}"), true));
        }
        if let Some(x) = f.strip_prefix(stop) {
            return Some((format!("{start}{x}"), false));
        }
    }
    None
}

/// Counts and measures everything in `h`.
pub fn stats(h: &History) -> Stats {
    let ops = h.ops();
    let first = ops.first().map_or(0, |o| o.time);
    let last = ops.last().map_or(0, |o| o.time);
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    // Op names are few; look them up once per name, not once per op.
    let (mut book, mut cancel, mut read) =
        (Counts::default(), Counts::default(), Counts::default());
    // Differences of history times never go negative in a validated history (time never
    // decreases, a completion follows its invocation); they saturate rather than trust it.
    let span_ms = last.saturating_sub(first) / 1_000_000 + 1;
    let bucket_ms = 1000u64.max(span_ms.div_ceil(MAX_BUCKETS).div_ceil(1000) * 1000);
    let base = first / 1_000_000 / bucket_ms * bucket_ms;
    let n_buckets = if ops.is_empty() {
        0
    } else {
        ((last / 1_000_000).saturating_sub(base) / bucket_ms + 1) as usize
    };
    let mut buckets: Vec<RateBucket> = (0..n_buckets as u64)
        .map(|k| RateBucket {
            start_ms: base + k * bucket_ms,
            ..RateBucket::default()
        })
        .collect();
    // One pass over the ops for counts and rate: the ops are large, the pass is
    // memory-bound, so every extra pass costs as much as the work in it.
    for (i, op) in ops.iter().enumerate() {
        let c = match &op.f {
            F::Book => &mut book,
            F::Cancel => &mut cancel,
            F::Read => &mut read,
            F::Other(name) => counts.entry(name.clone()).or_default(),
        };
        match op.kind {
            OpType::Invoke => {
                c.invoke += 1;
                if !op.is_nemesis() && h.partner(i).is_none() {
                    c.in_flight += 1;
                }
                continue;
            }
            OpType::Ok => c.ok += 1,
            OpType::Fail => c.fail += 1,
            OpType::Info => c.info += 1,
        }
        if op.is_nemesis() {
            continue;
        }
        let k = ((op.time / 1_000_000).saturating_sub(base) / bucket_ms) as usize;
        if let Some(b) = buckets.get_mut(k) {
            match op.kind {
                OpType::Ok => b.ok += 1,
                OpType::Fail => b.fail += 1,
                _ => b.info += 1,
            }
        }
    }
    for (name, c) in [("book", book), ("cancel", cancel), ("read", read)] {
        if c != Counts::default() {
            counts.insert(name.to_string(), c);
        }
    }

    let mut lat: [Vec<u64>; 3] = Default::default();
    for b in h.books() {
        if let Some(done) = b.done_at {
            lat[outcome_slot(b.outcome)].push(done.saturating_sub(b.invoked_at));
        }
    }
    let mut book_latency = BTreeMap::new();
    for (slot, name) in ["ok", "fail", "info"].iter().enumerate() {
        if let Some(q) = quantiles(&mut lat[slot]) {
            book_latency.insert(name.to_string(), q);
        }
    }

    let faults = fault_windows(h)
        .into_iter()
        .map(|w| fault_stats(h, w))
        .collect();
    Stats {
        ops: ops.len() as u64,
        duration_ns: last.saturating_sub(first),
        counts,
        book_latency,
        rate: Rate { bucket_ms, buckets },
        faults,
    }
}

fn outcome_slot(t: OpType) -> usize {
    match t {
        OpType::Ok => 0,
        OpType::Fail => 1,
        _ => 2,
    }
}

fn fault_stats(h: &History, window: FaultWindow) -> FaultStats {
    let books = h.books();
    // Books are in invocation order, which is time order: binary-search the window.
    let lo = books.partition_point(|b| b.invoked_at < window.start);
    let hi = books.partition_point(|b| b.invoked_at <= window.end);
    let mut counts = Counts::default();
    let mut lat = Vec::new();
    for b in &books[lo..hi] {
        counts.invoke += 1;
        match b.done_at {
            None => counts.in_flight += 1,
            Some(done) => {
                match b.outcome {
                    OpType::Ok => counts.ok += 1,
                    OpType::Fail => counts.fail += 1,
                    _ => counts.info += 1,
                }
                lat.push(done.saturating_sub(b.invoked_at));
            }
        }
    }
    let q = quantiles(&mut lat);
    FaultStats {
        window,
        counts,
        p50_ms: q.map(|q| q.p50_ms),
        p99_ms: q.map(|q| q.p99_ms),
    }
}

fn quantiles(v: &mut [u64]) -> Option<Quantiles> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let at = |p: f64| {
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1] as f64 / 1e6
    };
    Some(Quantiles {
        count: v.len() as u64,
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: v[v.len() - 1] as f64 / 1e6,
    })
}

/// The stats as a checker result: always `valid` (unknown for an empty history), never
/// deciding; its summary is the one-line digest.
pub fn stats_result(s: &Stats) -> CheckResult {
    if s.ops == 0 {
        return CheckResult::unknown(&StatsChecker, "empty history");
    }
    let book = s.counts.get("book").copied().unwrap_or_default();
    let mut summary = format!(
        "{} ops over {:.1} s; book {} ok / {} fail / {} info",
        thousands(s.ops),
        s.duration_ns as f64 / 1e9,
        thousands(book.ok),
        thousands(book.fail),
        thousands(book.info + book.in_flight)
    );
    if let Some(q) = s.book_latency.get("ok") {
        summary.push_str(&format!(
            ", ok p50 {:.1} ms p99 {:.1} ms",
            q.p50_ms, q.p99_ms
        ));
    }
    if !s.faults.is_empty() {
        summary.push_str(&format!(", {} fault windows", s.faults.len()));
    }
    CheckResult::valid(&StatsChecker, summary)
}

/// The stats as a [`Checker`], for callers composing their own list.
pub struct StatsChecker;

impl Checker for StatsChecker {
    fn name(&self) -> &'static str {
        "stats"
    }

    fn role(&self) -> Role {
        Role::Informational
    }

    fn check(&self, h: &History) -> CheckResult {
        stats_result(&stats(h))
    }
}
