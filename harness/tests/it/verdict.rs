//! Reading a run's verdict in a test: one checker's result, and every checker on one
//! line each for an assertion's message.

use checkers::{CheckResult, Results};

/// The result of the checker named `name` (panics, naming it, when there is none).
pub fn checker<'a>(r: &'a Results, name: &str) -> &'a CheckResult {
    r.checks
        .iter()
        .find(|c| c.checker == name)
        .unwrap_or_else(|| panic!("no checker {name}"))
}

/// Every checker's verdict and summary, one per line.
pub fn describe(r: &Results) -> String {
    r.checks
        .iter()
        .map(|c| format!("{} {}: {}", c.checker, c.validity.as_str(), c.summary))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many bookings the run confirmed: a valid verdict over none proves nothing.
pub fn ok_books(r: &Results) -> u64 {
    r.stats.counts.get("book").map_or(0, |c| c.ok)
}
