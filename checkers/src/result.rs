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
