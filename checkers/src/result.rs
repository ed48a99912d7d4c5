//! What a checker decides: a three-valued verdict plus anomalies that name op indexes.
//!
//! Results are plain serde data so `reports/` can render them without re-checking, and
//! `results.json` can be read back by CI tooling.

use serde::{Deserialize, Serialize};

use crate::date::Date;

/// A checker's verdict. Ordered so that composing takes the worst: `Valid < Unknown < Invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// The history shows no violation of what this checker decides.
    Valid,
    /// The checker lacked what it needed (no final read, no traces) or errored.
    Unknown,
    /// At least one anomaly was found.
    Invalid,
}

impl Validity {
    /// The worse of two verdicts (Jepsen's `merge-valid`).
    pub fn merge(self, other: Validity) -> Validity {
        self.max(other)
    }

    /// The lowercase name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Unknown => "unknown",
            Validity::Invalid => "invalid",
        }
    }
}

/// One violation found in a history, with the ops involved so a report can draw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Which checker found it (e.g. `no-double-booking`).
    pub checker: String,
    /// The indexes of the ops involved (invocations and/or completions).
    pub ops: Vec<u64>,
    /// The room concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<u64>,
    /// The nights concerned, half-open `[from, to)`, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nights: Option<(Date, Date)>,
    /// The lock key concerned (lock-exclusion, fencing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_key: Option<String>,
    /// The request id concerned (idempotency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// One sentence saying what happened, e.g.
    /// "room 101 nights 2026-12-01..2026-12-03 confirmed to ops 14 and 19".
    pub message: String,
}

/// What one checker decided about a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The checker's name, e.g. `no-double-booking`.
    pub checker: String,
    /// Its verdict.
    pub validity: Validity,
    /// Whether this verdict counts towards the run's verdict (lock-exclusion only with
    /// `--strict-lock`, stats never).
    pub deciding: bool,
    /// One line of counts, e.g. "2 anomalies (1,204 ok bookings checked)".
    pub summary: String,
    /// Every violation found, each naming op indexes.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// Why the verdict is `unknown` (e.g. "no final read"), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CheckResult {
    /// A verdict with no anomalies: `valid`.
    pub fn valid(checker: &str, deciding: bool, summary: String) -> CheckResult {
        CheckResult {
            checker: checker.to_string(),
            validity: Validity::Valid,
            deciding,
            summary,
            anomalies: Vec::new(),
            reason: None,
        }
    }

    /// A verdict the checker could not reach, with the reason.
    pub fn unknown(checker: &str, deciding: bool, reason: impl Into<String>) -> CheckResult {
        let reason = reason.into();
        CheckResult {
            checker: checker.to_string(),
            validity: Validity::Unknown,
            deciding,
            summary: reason.clone(),
            anomalies: Vec::new(),
            reason: Some(reason),
        }
    }

    /// `valid` when `anomalies` is empty, else `invalid`; the summary gets the anomaly
    /// count in front of `checked` (what was looked at).
    pub fn from_anomalies(
        checker: &str,
        deciding: bool,
        checked: String,
        anomalies: Vec<Anomaly>,
    ) -> CheckResult {
        if anomalies.is_empty() {
            return CheckResult::valid(checker, deciding, checked);
        }
        let n = anomalies.len();
        let noun = if n == 1 { "anomaly" } else { "anomalies" };
        CheckResult {
            checker: checker.to_string(),
            validity: Validity::Invalid,
            deciding,
            summary: format!("{} {noun} ({checked})", thousands(n as u64)),
            anomalies,
            reason: None,
        }
    }
}

/// Everything `check_all` decided: the run's verdict, each checker's result and the stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The run's verdict (see `check_all` for how it is composed).
    pub validity: Validity,
    /// One result per checker, in a fixed order.
    pub checks: Vec<CheckResult>,
    /// Counts, latencies, rates and fault windows.
    pub stats: crate::stats::Stats,
}

impl Results {
    /// Every anomaly of every checker, in checker order.
    pub fn anomalies(&self) -> impl Iterator<Item = &Anomaly> + '_ {
        self.checks.iter().flat_map(|c| c.anomalies.iter())
    }

    /// The result of the checker named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.checker == name)
    }

    /// Why the run is `unknown`: the reasons of the checkers that made it so.
    pub fn unknown_reasons(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| {
                c.validity == Validity::Unknown
                    && crate::checks::DATA_CHECKERS.contains(&c.checker.as_str())
            })
            .map(|c| {
                format!(
                    "{}: {}",
                    c.checker,
                    c.reason.as_deref().unwrap_or("unknown")
                )
            })
            .collect()
    }
}

/// `1204` as `"1,204"`: summaries are read by people.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
