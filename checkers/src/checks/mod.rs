//! The checkers, each deciding one property of a history, and their composition.
//!
//! - [`bookings`]: what the data says: no-double-booking, confirmed-is-durable,
//!   failed-is-absent, db-state, idempotency.
//! - [`capacity`]: where stays of one room outnumber its capacity (the sweep behind
//!   no-double-booking and db-state for rooms that hold N stays a night).
//! - [`lock`]: what the lock and its tokens did: lock-exclusion, fencing.
//! - [`margin`]: how close each lease hold came to outliving its lease: lease-margin.
//! - [`conditions`]: whether the run tested what it claims (faults struck, bookings
//!   confirmed, users connected): run-conditions.
//! - [`told`]: what the guests were told (the service's notifications): told-is-true,
//!   told-once, told-eventually, told-after-commit.
//! - stats live in [`crate::stats`].

pub mod bookings;
pub mod capacity;
pub mod conditions;
pub mod lock;
pub mod margin;
pub mod told;

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::header::{Guard, RunHeader};
use crate::pairing::History;
use crate::result::{CheckResult, Results, Role};
use crate::stats::StatsChecker;

pub use bookings::{ConfirmedIsDurable, DbState, FailedIsAbsent, Idempotency, NoDoubleBooking};
pub use conditions::{Conditions, FaultCount, RunConditions};
pub use lock::{Fencing, LockExclusion};
pub use margin::{LeaseMargin, WarnFraction};
pub use told::{ToldAfterCommit, ToldEventually, ToldIsTrue, ToldOnce};

/// One property of a history, decided as valid / invalid / unknown.
pub trait Checker {
    /// The checker's name as it appears in results, e.g. `no-double-booking`.
    fn name(&self) -> &'static str;
    /// What its verdict counts for in the run's verdict.
    fn role(&self) -> Role;
    /// Whether its `invalid` makes the run invalid, as configured: by default its role's
    /// rule without `--strict-lock`.
    fn deciding(&self) -> bool {
        self.role().decides(false)
    }
    /// Decides the property. Never panics on any validated history: a checker that lacks
    /// what it needs says `unknown` with the reason.
    fn check(&self, h: &History) -> CheckResult;
}

/// Knobs of [`check_all`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Let lock-exclusion findings make the run invalid (by default the lock is
    /// coordination, not correctness, so they are reported but do not decide).
    pub strict_lock: bool,
    /// The fraction of its lease above which lease-margin counts a critical section as a
    /// close call (`--margin-warn`, 0.8 by default).
    pub margin_warn: WarnFraction,
    /// What guards the invariant (`None`: undeclared). Under [`Guard::Lock`] the
    /// lock-exclusion findings decide the run.
    pub guard: Option<Guard>,
}

impl CheckOptions {
    /// These options with what the history's run header says: the run's own
    /// `--strict-lock`, `--margin-warn` and guard, so that checking a history alone
    /// decides what its run decided. What the caller set explicitly wins (a stricter
    /// lock, a warning fraction other than the default, a guard).
    pub fn with_header(mut self, header: Option<&RunHeader>) -> CheckOptions {
        let Some(header) = header else {
            return self;
        };
        self.strict_lock |= header.strict_lock;
        if self.margin_warn == WarnFraction::DEFAULT {
            if let Some(w) = header.margin_warn.and_then(|w| WarnFraction::new(w).ok()) {
                self.margin_warn = w;
            }
        }
        self.guard = self.guard.or(header.guard);
        self
    }
}

/// Every checker but stats, in the order results list them ([`check_all`] adds the
/// stats checker's result last, computed from the same [`crate::stats::Stats`]).
pub fn all_checkers(opts: &CheckOptions) -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(NoDoubleBooking),
        Box::new(ConfirmedIsDurable),
        Box::new(FailedIsAbsent),
        Box::new(DbState),
        Box::new(Idempotency),
        Box::new(Fencing),
        Box::new(ToldIsTrue),
        Box::new(ToldOnce),
        Box::new(ToldEventually),
        Box::new(ToldAfterCommit),
        Box::new(LockExclusion {
            strict: opts.strict_lock,
            trusted: opts.guard == Some(Guard::Lock),
        }),
        Box::new(LeaseMargin {
            warn: opts.margin_warn,
        }),
        Box::new(RunConditions),
    ]
}

/// The role of the built-in checker named `name` (stats included), for results written
/// before they carried one.
pub fn role_of(name: &str) -> Option<Role> {
    if name == StatsChecker.name() {
        return Some(StatsChecker.role());
    }
    all_checkers(&CheckOptions::default())
        .iter()
        .find(|c| c.name() == name)
        .map(|c| c.role())
}

/// Runs one checker; should it panic anyway (a bug), its verdict becomes `unknown` with
/// the panic message rather than taking the whole check down.
pub fn run_checker(c: &dyn Checker, h: &History) -> CheckResult {
    match catch_unwind(AssertUnwindSafe(|| c.check(h))) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            CheckResult::unknown(c, format!("internal error: {msg}"))
        }
    }
}

/// Runs every checker and composes the run's verdict and headline with
/// [`crate::result::verdict`]. The history's run header, if any, adds the run's own
/// options ([`CheckOptions::with_header`]): the verdict is a function of the history.
pub fn check_all(h: &History, opts: &CheckOptions) -> Results {
    let opts = &opts.with_header(h.header());
    let mut checks: Vec<CheckResult> = all_checkers(opts)
        .iter()
        .map(|c| run_checker(c.as_ref(), h))
        .collect();
    let stats = crate::stats::stats(h);
    checks.push(crate::stats::stats_result(&stats));
    Results::new(checks, stats, opts.guard)
}

/// A time on the history's clock (ns) as seconds with millisecond precision: "5.020 s".
pub(crate) fn secs(ns: u64) -> String {
    format!("{}.{:03} s", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
}
