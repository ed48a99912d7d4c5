//! Whether a run tested what it claims, judged as one more check (`run-conditions`) next
//! to the checkers' own: a VALID verdict means "tested, and it held", never "nothing
//! happened". A run whose requested faults never fired, that confirmed too few bookings
//! to compare, or whose clients mostly could not open a session is `unknown` (exit 2),
//! with the reason. An `invalid` verdict stands regardless: an anomaly found is real
//! whatever else went wrong.

use std::sync::atomic::Ordering;

use checkers::{CheckResult, Checker, History, OpType, Process, Role, Validity, F};

use super::Progress;
use crate::nemesis::Fault;

/// The checker name the condition check reports under.
pub const CHECKER: &str = "run-conditions";

/// The fewest confirmed bookings a run needs for its verdict to mean anything: two is
/// the fewest that can collide, so with fewer no double booking was possible and every
/// checker is vacuously satisfied.
pub const MIN_CONFIRMED: u64 = 2;

/// What the run did, counted from its history and its clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Each requested fault (`none` aside) and how many of its windows were applied
    /// without error, in the order requested.
    pub faults: Vec<(Fault, u64)>,
    /// Bookings that completed `ok`.
    pub confirmed: u64,
    /// Sessions opened.
    pub sessions: u64,
    /// Attempts to open a session that failed (infrastructure errors: connection
    /// refused, too many clients, timeouts).
    pub open_failures: u64,
    /// Users that never opened a session.
    pub never_connected: u64,
    /// The run's simulated users (worker slots).
    pub users: u64,
    /// The first such error, for the summary.
    pub first_open_error: Option<String>,
}

impl Conditions {
    /// Counts what the run did.
    pub fn of(
        requested: &[Fault],
        users: u64,
        history: &History,
        progress: &Progress,
    ) -> Conditions {
        let mut faults: Vec<(Fault, u64)> = Vec::new();
        for f in requested {
            if *f != Fault::None && !faults.iter().any(|(g, _)| g == f) {
                faults.push((*f, 0));
            }
        }
        let mut confirmed = 0;
        for op in history.ops() {
            match (&op.process, &op.kind, &op.f) {
                (Process::Nemesis, OpType::Info, F::Other(name)) if op.error.is_none() => {
                    if let Some(fault) = name.strip_prefix("start-") {
                        for (f, n) in faults.iter_mut() {
                            if f.name() == fault {
                                *n += 1;
                            }
                        }
                    }
                }
                (Process::Client(_), OpType::Ok, F::Book) => confirmed += 1,
                _ => {}
            }
        }
        Conditions {
            faults,
            confirmed,
            sessions: progress.sessions.load(Ordering::Relaxed),
            open_failures: progress.open_failures.load(Ordering::Relaxed),
            never_connected: progress.never_connected.load(Ordering::Relaxed),
            users,
            first_open_error: progress
                .first_open_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// The requested faults that never fired.
    pub fn unfired(&self) -> Vec<Fault> {
        self.faults
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(f, _)| *f)
            .collect()
    }

    /// Whether any fault window was applied at all.
    pub fn any_fault_fired(&self) -> bool {
        self.faults.iter().any(|(_, n)| *n > 0)
    }

    /// Why the run's verdict cannot be trusted, one reason each; empty when it can.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let unfired = self.unfired();
        if !unfired.is_empty() {
            out.push(format!(
                "requested faults never fired: {}",
                unfired
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.confirmed < MIN_CONFIRMED {
            out.push(format!(
                "only {} bookings confirmed (at least {MIN_CONFIRMED} are needed for a double booking to be possible)",
                self.confirmed
            ));
        }
        // Half the users or more never got a session. Failed reconnects alone do not
        // count: a fault that stops the system (kill-service, kill-db) refuses them by
        // design.
        if self.users > 0 && self.never_connected * 2 >= self.users {
            out.push(format!(
                "most clients could not connect: {} of {} users never opened a session ({} sessions opened, {} attempts failed; first: {})",
                self.never_connected,
                self.users,
                self.sessions,
                self.open_failures,
                self.first_open_error.as_deref().unwrap_or("?")
            ));
        }
        out
    }

    /// One line of what was counted.
    pub fn summary(&self) -> String {
        let faults = if self.faults.is_empty() {
            "no fault requested".to_string()
        } else {
            format!(
                "faults fired: {}",
                self.faults
                    .iter()
                    .map(|(f, n)| format!("{f} x{n}"))
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

    /// The check result: `valid` with the counts, or `unknown` with every problem.
    pub fn check(&self) -> CheckResult {
        let problems = self.problems();
        if problems.is_empty() {
            return CheckResult::valid(self, self.summary());
        }
        let mut r = CheckResult::unknown(self, problems.join("; "));
        r.summary = format!("{} ({})", problems.join("; "), self.summary());
        r
    }
}

/// The conditions judge whether the run tested anything: a data role, so their `unknown`
/// makes the run unknown (exit 2) exactly as a missing final read does.
impl Checker for Conditions {
    fn name(&self) -> &'static str {
        CHECKER
    }

    fn role(&self) -> Role {
        Role::Data
    }

    /// The conditions were counted while the run went (sessions are not in the
    /// history), so the history adds nothing here.
    fn check(&self, _h: &History) -> CheckResult {
        Conditions::check(self)
    }
}

/// Adds the condition check to `results` and composes the verdict again (through
/// `checkers::Results::new`, the one place verdicts are made): a `valid` run that did
/// not test what it claims becomes `unknown`; `invalid` stays.
pub fn apply(results: &mut checkers::Results, conditions: &Conditions) {
    let check = Conditions::check(conditions);
    debug_assert!(check.validity != Validity::Invalid);
    let mut checks = std::mem::take(&mut results.checks);
    checks.push(check);
    *results = checkers::Results::new(checks, results.stats.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions() -> Conditions {
        Conditions {
            faults: vec![(Fault::DbLatency, 2)],
            confirmed: 40,
            sessions: 16,
            open_failures: 0,
            never_connected: 0,
            users: 16,
            first_open_error: None,
        }
    }

    #[test]
    fn a_run_that_tested_something_is_valid() {
        let c = conditions();
        assert!(c.problems().is_empty());
        assert_eq!(c.check().validity, Validity::Valid);
    }

    #[test]
    fn unfired_faults_too_few_bookings_and_failed_connects_are_each_named() {
        let mut c = conditions();
        c.faults.push((Fault::PauseDb, 0));
        c.confirmed = 1;
        c.open_failures = 17;
        c.never_connected = 9;
        c.first_open_error = Some("too many clients".into());
        let p = c.problems();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("pause-db"));
        assert!(p[1].contains("only 1 bookings"));
        assert!(p[2].contains("too many clients"));
        assert_eq!(c.check().validity, Validity::Unknown);
    }

    #[test]
    fn reconnects_refused_during_a_fault_are_not_a_failure_to_connect() {
        // kill-service: every user had a session, then reconnects were refused for a while.
        let mut c = conditions();
        c.open_failures = 400;
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }
}
