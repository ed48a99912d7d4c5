//! `run-conditions`: whether a run tested what it claims, decided from its history alone.
//!
//! A VALID verdict means "tested, and it held", never "nothing happened". From the run
//! header (what was requested, [`crate::header`]) and the events that follow, a run is
//! `unknown` when:
//! - a requested fault never **struck**: a window that opened is not a strike. A window
//!   struck when its `stop-<fault>` event counts what it hit (`value.detail.struck`:
//!   messages an aimed fault acted on, chunks delayed or held, pauses entered, signals
//!   delivered); in a history whose stop events carry no count, when a `fire-<fault>`
//!   event (an aimed fault acting on one message) falls in the window;
//! - it started users (`users` in the header) yet fewer than [`MIN_CONFIRMED`]
//!   bookings were confirmed (none could collide);
//! - half the users or more never opened a session (`open` ops of the clients).
//!
//! Each check needs its header field; a history without a header (written by someone
//! else's system) is not judged here at all. An `invalid` verdict from another checker
//! stands regardless: an anomaly found is real whatever else went wrong.

use std::collections::{BTreeMap, BTreeSet};

use crate::checks::Checker;
use crate::header::RunHeader;
use crate::history::{OpType, Process, F};
use crate::pairing::History;
use crate::result::{CheckResult, Role};

/// The checker's name in results.
pub const CHECKER: &str = "run-conditions";

/// The op name of a client's attempt to open a session with the system under test.
pub const OPEN: &str = "open";

/// The fewest confirmed bookings a run needs for its verdict to mean anything: two is
/// the fewest that can collide, so with fewer every checker is vacuously satisfied.
pub const MIN_CONFIRMED: u64 = 2;

/// The checker (see the module doc).
pub struct RunConditions;

/// One requested fault: how many of its windows opened and how many struck.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCount {
    /// The fault's name.
    pub fault: String,
    /// Windows applied without error.
    pub windows: u64,
    /// Windows in which the fault acted on something.
    pub struck: u64,
    /// What it acts on (`postgres`, `redis`, `service`, ...) from its start event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What a strike of it is, from its stop event (e.g. "writes held").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// What the run did, counted from its history.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Conditions {
    /// Each requested fault, in the header's order.
    pub faults: Vec<FaultCount>,
    /// Bookings that completed `ok`.
    pub confirmed: u64,
    /// Sessions opened (`ok` opens).
    pub sessions: u64,
    /// Attempts to open a session that failed.
    pub open_failures: u64,
    /// The run's simulated users, from the header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// Users that never opened a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never_connected: Option<u64>,
    /// The first failed open's error, for the summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_open_error: Option<String>,
}

/// The fault a nemesis event name is about, and what the event is.
enum Event<'a> {
    Start(&'a str),
    Fire(&'a str),
    Stop(&'a str),
}

fn event(name: &str) -> Option<Event<'_>> {
    if let Some(f) = name.strip_prefix("start-") {
        Some(Event::Start(f))
    } else if let Some(f) = name.strip_prefix("fire-") {
        Some(Event::Fire(f))
    } else {
        name.strip_prefix("stop-").map(Event::Stop)
    }
}

impl Conditions {
    /// Counts what the run did; `None` for a history without a run header.
    pub fn of(h: &History) -> Option<Conditions> {
        let header = h.header()?;
        let mut c = Conditions {
            users: header.users,
            ..Conditions::default()
        };
        c.count_faults(h, header);
        let mut connected: BTreeSet<u64> = BTreeSet::new();
        for (i, op) in h.ops().iter().enumerate() {
            let Process::Client(_) = op.process else {
                continue;
            };
            match (&op.f, op.kind) {
                (F::Book, OpType::Ok) => c.confirmed += 1,
                (F::Other(name), OpType::Ok) if name == OPEN => {
                    c.sessions += 1;
                    let user = h
                        .invoke_of(i)
                        .and_then(|inv| inv.value.detail.as_ref())
                        .and_then(|d| d.get("user"))
                        .and_then(|u| u.as_u64());
                    connected.extend(user);
                }
                (F::Other(name), OpType::Fail | OpType::Info) if name == OPEN => {
                    c.open_failures += 1;
                    if c.first_open_error.is_none() {
                        c.first_open_error = Some(op.error.clone().unwrap_or_default());
                    }
                }
                _ => {}
            }
        }
        c.never_connected = c.users.map(|u| u.saturating_sub(connected.len() as u64));
        Some(c)
    }

    fn count_faults(&mut self, h: &History, header: &RunHeader) {
        let mut counts: BTreeMap<&str, FaultCount> = BTreeMap::new();
        for f in header.faults.iter().flatten() {
            if f != "none" {
                counts.entry(f.as_str()).or_insert_with(|| FaultCount {
                    fault: f.clone(),
                    ..FaultCount::default()
                });
            }
        }
        // Per fault, whether a window is open now and whether it has struck yet.
        let mut open: BTreeMap<&str, bool> = BTreeMap::new();
        for &i in h.nemesis_ops() {
            let op = &h.ops()[i as usize];
            let Some(ev) = event(op.f.as_str()) else {
                continue;
            };
            let detail = op.value.detail.as_ref();
            match ev {
                Event::Start(f) if op.kind != OpType::Invoke && op.error.is_none() => {
                    if let Some(c) = counts.get_mut(f) {
                        c.windows += 1;
                        c.target = c.target.take().or_else(|| {
                            detail
                                .and_then(|d| d.get("target"))
                                .and_then(|t| t.as_str())
                                .map(str::to_string)
                        });
                        open.insert(f, false);
                    }
                }
                Event::Fire(f) => {
                    if let Some(struck) = open.get_mut(f) {
                        *struck = true;
                    }
                }
                Event::Stop(f) if op.kind != OpType::Invoke => {
                    // The stop event's own count decides when it has one (a clock jump's
                    // held INSERTs fire, but only the jump is its strike); without one
                    // (an older or foreign history), a firing in the window does.
                    let counted = detail
                        .and_then(|d| d.get("struck"))
                        .and_then(|n| n.as_u64());
                    if let Some(c) = counts.get_mut(f) {
                        if let Some(u) = detail.and_then(|d| d.get("unit")).and_then(|u| u.as_str())
                        {
                            c.unit = Some(u.to_string());
                        }
                        let fired = open.remove(f);
                        if fired.is_some_and(|fired| counted.map_or(fired, |n| n > 0)) {
                            c.struck += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        // A window still open when the history ends (an interrupted run) counts if it
        // struck before the end.
        for (f, fired) in open {
            if let (true, Some(c)) = (fired, counts.get_mut(f)) {
                c.struck += 1;
            }
        }
        let order: Vec<&String> = header.faults.iter().flatten().collect();
        let mut list: Vec<FaultCount> = counts.into_values().collect();
        list.sort_by_key(|c| order.iter().position(|f| **f == c.fault));
        self.faults = list;
    }

    /// The requested faults that never struck.
    pub fn unstruck(&self) -> impl Iterator<Item = &FaultCount> + '_ {
        self.faults.iter().filter(|f| f.struck == 0)
    }

    /// Whether any fault window struck.
    pub fn any_fault_struck(&self) -> bool {
        self.faults.iter().any(|f| f.struck > 0)
    }

    /// Why the run's verdict cannot be trusted, one reason each; empty when it can.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in self.unstruck() {
            out.push(unstruck_reason(f));
        }
        // A run that started simulated users must have confirmed enough to collide.
        if self.users.is_some() && self.confirmed < MIN_CONFIRMED {
            out.push(format!(
                "only {} bookings confirmed (at least {MIN_CONFIRMED} are needed for a double booking to be possible)",
                self.confirmed
            ));
        }
        // Half the users or more never got a session. Failed reconnects alone do not
        // count: a fault that stops the system (kill-service, kill-db) refuses them by
        // design.
        if let (Some(users), Some(never)) = (self.users, self.never_connected) {
            if users > 0 && never * 2 >= users {
                out.push(format!(
                    "most clients could not connect: {never} of {users} users never opened a session ({} sessions opened, {} attempts failed; first: {})",
                    self.sessions,
                    self.open_failures,
                    self.first_open_error.as_deref().unwrap_or("?")
                ));
            }
        }
        out
    }

    /// One line of what was counted.
    pub fn summary(&self) -> String {
        let faults = if self.faults.is_empty() {
            "no fault requested".to_string()
        } else {
            format!(
                "faults struck: {}",
                self.faults
                    .iter()
                    .map(|f| format!("{} {}/{} windows", f.fault, f.struck, f.windows))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut s = format!(
            "{faults}; {} bookings confirmed; {} sessions opened, {} could not",
            self.confirmed, self.sessions, self.open_failures
        );
        if let Some(e) = &self.first_open_error {
            s.push_str(&format!(" (first: {e})"));
        }
        s
    }
}

/// Why a fault that never struck leaves the run untested, with where to look: an aimed
/// or proxy fault that hit nothing means the system under test's traffic did not cross
/// that proxy (a service connecting elsewhere, TLS, a cache in front).
fn unstruck_reason(f: &FaultCount) -> String {
    let what = f.unit.as_deref().unwrap_or("strikes");
    let hint = match f.target.as_deref() {
        Some("postgres") => {
            ": did the system under test reach Postgres through overbook's proxy (DATABASE_URL)?"
        }
        Some("redis") => {
            ": did the system under test reach the lock service through overbook's proxy (REDIS_URL, REDIS_URLS or REDIS_SENTINEL_URL)?"
        }
        _ => "",
    };
    if f.windows == 0 {
        format!("{}: requested but no window opened", f.fault)
    } else {
        format!(
            "{}: {} windows, 0 {what}, never struck{hint}",
            f.fault, f.windows
        )
    }
}

impl Checker for RunConditions {
    fn name(&self) -> &'static str {
        CHECKER
    }

    /// A data role: its `unknown` makes the run unknown (exit 2), exactly as a missing
    /// final read does; it is never `invalid`.
    fn role(&self) -> Role {
        Role::Data
    }

    fn check(&self, h: &History) -> CheckResult {
        let Some(c) = Conditions::of(h) else {
            return CheckResult::valid(
                self,
                "not checked: the history has no run header (not written by overbook run)"
                    .to_string(),
            );
        };
        let problems = c.problems();
        if problems.is_empty() {
            return CheckResult::valid(self, c.summary());
        }
        let mut r = CheckResult::unknown(self, problems.join("; "));
        r.summary = format!("{} ({})", problems.join("; "), c.summary());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::RunHeader;
    use crate::history::{Op, OpValue};
    use crate::result::Validity;
    use serde_json::json;

    /// A history builder: a header, then ops appended with increasing times.
    struct Builder(Vec<Op>);

    impl Builder {
        fn new(header: RunHeader) -> Builder {
            Builder(vec![header.to_op()])
        }

        fn push(&mut self, process: Process, kind: OpType, f: &str, value: OpValue) {
            self.push_err(process, kind, f, value, None);
        }

        fn push_err(
            &mut self,
            process: Process,
            kind: OpType,
            f: &str,
            value: OpValue,
            error: Option<&str>,
        ) {
            let index = self.0.len() as u64;
            self.0.push(Op {
                index,
                time: index * 10,
                process,
                kind,
                f: F::from(f),
                value,
                error: error.map(str::to_string),
            });
        }

        fn nemesis(&mut self, kind: OpType, f: &str, detail: serde_json::Value) {
            let value = OpValue {
                detail: Some(detail),
                ..OpValue::default()
            };
            self.push(Process::Nemesis, kind, f, value);
        }

        fn window(&mut self, fault: &str, fires: usize, struck: Option<u64>) {
            let start = format!("start-{fault}");
            self.nemesis(OpType::Invoke, &start, json!({"target": "postgres"}));
            self.nemesis(OpType::Info, &start, json!({"target": "postgres"}));
            for _ in 0..fires {
                self.nemesis(OpType::Info, &format!("fire-{fault}"), json!({}));
            }
            let stop = format!("stop-{fault}");
            self.nemesis(OpType::Invoke, &stop, json!({}));
            let detail = match struck {
                Some(n) => json!({"struck": n, "unit": "writes held"}),
                None => json!({}),
            };
            self.nemesis(OpType::Info, &stop, detail);
        }

        fn open(&mut self, p: u64, user: u64, ok: bool) {
            let value = OpValue {
                detail: Some(json!({ "user": user })),
                ..OpValue::default()
            };
            self.push(Process::Client(p), OpType::Invoke, OPEN, value);
            if ok {
                self.push(Process::Client(p), OpType::Ok, OPEN, OpValue::default());
            } else {
                let v = OpValue::default();
                self.push_err(Process::Client(p), OpType::Fail, OPEN, v, Some("refused"));
            }
        }

        fn book_ok(&mut self, p: u64, room: u64) {
            let d = |s| crate::bound::Bound::parse(s).unwrap();
            let value = OpValue {
                room: Some(room.into()),
                from: Some(d("2026-12-01")),
                to: Some(d("2026-12-02")),
                request: Some(format!("r-{p}-{room}")),
                ..OpValue::default()
            };
            self.push(Process::Client(p), OpType::Invoke, "book", value.clone());
            self.push(Process::Client(p), OpType::Ok, "book", value);
        }

        fn check(self) -> (Conditions, CheckResult) {
            let h = History::from_ops(self.0).unwrap();
            (Conditions::of(&h).unwrap(), RunConditions.check(&h))
        }
    }

    fn header(faults: &[&str]) -> RunHeader {
        RunHeader {
            users: Some(2),
            faults: Some(faults.iter().map(|f| f.to_string()).collect()),
            ..RunHeader::default()
        }
    }

    fn tested(b: &mut Builder) {
        b.open(0, 0, true);
        b.open(1, 1, true);
        b.book_ok(0, 1);
        b.book_ok(1, 2);
    }

    #[test]
    fn a_run_whose_faults_struck_is_valid() {
        let mut b = Builder::new(header(&["slow-writes", "db-latency"]));
        tested(&mut b);
        // An older history's aimed window: no count, a firing.
        b.window("slow-writes", 1, None);
        b.window("db-latency", 0, Some(12));
        let (c, r) = b.check();
        assert_eq!(r.validity, Validity::Valid, "{r:?}");
        assert_eq!(c.faults[0].struck, 1);
        assert_eq!(c.faults[1].struck, 1);
        assert!(r.summary.starts_with(
            "faults struck: slow-writes 1/1 windows, db-latency 1/1 windows; 2 bookings confirmed; 2 sessions opened, 0 could not"
        ), "{}", r.summary);
    }

    /// Issue 22: an aimed fault counted as fired when its window opened, so a service
    /// that never wrote through the proxy was VALID with "slow-writes x3".
    #[test]
    fn windows_that_opened_but_never_struck_make_the_run_unknown() {
        let mut b = Builder::new(header(&["slow-writes"]));
        tested(&mut b);
        for _ in 0..3 {
            b.window("slow-writes", 0, Some(0));
        }
        let (c, r) = b.check();
        assert_eq!(c.faults[0].windows, 3);
        assert_eq!(c.faults[0].struck, 0);
        assert_eq!(r.validity, Validity::Unknown);
        assert_eq!(
            r.reason.as_deref(),
            Some("slow-writes: 3 windows, 0 writes held, never struck: did the system under test reach Postgres through overbook's proxy (DATABASE_URL)?")
        );
    }

    /// A clock jump's window fires for every INSERT it holds, but strikes only with the
    /// jump itself: its stop event's count says so, and wins over the firings.
    #[test]
    fn the_stop_events_count_wins_over_firings() {
        let mut b = Builder::new(header(&["clock-jump-redis"]));
        tested(&mut b);
        b.window("clock-jump-redis", 4, Some(0));
        let (c, r) = b.check();
        assert_eq!((c.faults[0].windows, c.faults[0].struck), (1, 0));
        assert_eq!(r.validity, Validity::Unknown);
    }

    #[test]
    fn too_few_bookings_and_users_who_never_connected_are_each_named() {
        let mut b = Builder::new(RunHeader {
            users: Some(4),
            ..RunHeader::default()
        });
        b.open(0, 0, true);
        b.open(1, 1, false);
        b.open(1, 1, false);
        b.open(2, 2, false);
        b.book_ok(0, 1);
        let (c, r) = b.check();
        assert_eq!(c.never_connected, Some(3));
        assert_eq!(c.open_failures, 3);
        let p = c.problems();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("only 1 bookings confirmed"), "{p:?}");
        assert!(
            p[1].contains("3 of 4 users never opened a session"),
            "{p:?}"
        );
        assert!(p[1].ends_with("first: refused)"), "{p:?}");
        assert_eq!(r.validity, Validity::Unknown);
    }

    #[test]
    fn reconnects_refused_during_a_fault_are_not_a_failure_to_connect() {
        // kill-service: every user had a session, then reconnects were refused a while.
        let mut b = Builder::new(header(&[]));
        tested(&mut b);
        for _ in 0..40 {
            b.open(2, 0, false);
        }
        let (_, r) = b.check();
        assert_eq!(r.validity, Validity::Valid, "{r:?}");
    }

    #[test]
    fn a_history_without_a_header_is_not_judged_here() {
        let h = History::from_ops(Vec::new()).unwrap();
        assert!(Conditions::of(&h).is_none());
        let r = RunConditions.check(&h);
        assert_eq!(r.validity, Validity::Valid);
        assert!(r.summary.starts_with("not checked"));
    }

    #[test]
    fn a_failed_window_start_is_no_window() {
        let mut b = Builder::new(header(&["pause-db"]));
        tested(&mut b);
        b.nemesis(OpType::Invoke, "start-pause-db", json!({}));
        b.push_err(
            Process::Nemesis,
            OpType::Info,
            "start-pause-db",
            OpValue::default(),
            Some("no such process"),
        );
        let (c, r) = b.check();
        assert_eq!(c.faults[0].windows, 0);
        assert_eq!(
            r.reason.as_deref(),
            Some("pause-db: requested but no window opened")
        );
    }
}
