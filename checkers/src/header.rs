//! The run header: what a run asked for, written as the history's first event so that a
//! verdict needs the history alone.
//!
//! `overbook run` opens every history with one lone nemesis `info` op named `run` whose
//! `value.detail` says how many users it started, which faults it requested, what
//! guards the invariant in the design under test, and the check options it ran with:
//!
//! ```json
//! {"index":0,"time":0,"process":"nemesis","type":"info","f":"run","value":{"detail":{"users":16,"faults":["slow-writes"],"guard":"lock"}}}
//! ```
//!
//! Every field is optional: a history written by someone else's system has no header
//! (or a partial one), and each check that needs a field it lacks is simply not made.

use serde::{Deserialize, Serialize};

use crate::history::{Op, OpType, Process, F};

/// The op name of the run header event.
pub const RUN_HEADER: &str = "run";

/// What guards the one-stay-per-room-night invariant in the design under test. It
/// decides what two lock holders at once mean: under a design that trusts its lock
/// ([`Guard::Lock`]) the lock failing is the design failing, whatever nights the two
/// holders happened to book; under a database guard it is the seed story's lesson
/// (the lock failed, the database held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guard {
    /// Only the lease: two holders at once can confirm one night twice.
    Lock,
    /// The lease plus a fencing token the database checks: a stale holder's write is
    /// refused by the database.
    Fencing,
    /// A database constraint, atomic update or row lock: the lock, if any, only saves work.
    Database,
    /// Nothing: the design checks, then writes, with no lock and no constraint.
    Nothing,
}

impl Guard {
    /// The kebab-case name, as in the header and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Lock => "lock",
            Guard::Fencing => "fencing",
            Guard::Database => "database",
            Guard::Nothing => "nothing",
        }
    }

    /// Whether the database itself refuses a second stay (a constraint, or the fence).
    pub fn is_in_database(self) -> bool {
        matches!(self, Guard::Fencing | Guard::Database)
    }
}

impl std::fmt::Display for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Guard {
    type Err = String;

    fn from_str(s: &str) -> Result<Guard, String> {
        match s {
            "lock" => Ok(Guard::Lock),
            "fencing" => Ok(Guard::Fencing),
            "database" => Ok(Guard::Database),
            "nothing" => Ok(Guard::Nothing),
            other => Err(format!(
                "unknown guard {other:?} (expected lock, fencing, database or nothing)"
            )),
        }
    }
}

/// The run header's fields (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    /// Simulated users (client slots) the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// The faults requested, by name (`none` aside); each must strike for a valid run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<String>>,
    /// What guards the invariant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// `--strict-lock`: lock-exclusion findings decide the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_lock: bool,
    /// `--margin-warn`, as a fraction of the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_warn: Option<f64>,
    /// The design or system under test, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `--notify-grace` in milliseconds: how long after the run's final heal a committed
    /// booking's guest may still be told "confirmed" (`told-eventually`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_grace_ms: Option<u64>,
}

impl RunHeader {
    /// The header as the history event that opens a run (index 0, time 0).
    pub fn to_op(&self) -> Op {
        Op {
            index: 0,
            time: 0,
            process: Process::Nemesis,
            kind: OpType::Info,
            f: F::Other(RUN_HEADER.to_string()),
            value: crate::history::OpValue {
                detail: Some(serde_json::to_value(self).expect("a header serialises")),
                ..Default::default()
            },
            error: None,
        }
    }

    /// The header of a history: its first nemesis `run` event, if any. A header whose
    /// detail does not parse (a foreign writer's own `run` op) counts as none.
    pub fn of(ops: &[Op]) -> Option<RunHeader> {
        let op = ops
            .iter()
            .take(8)
            .find(|op| op.is_nemesis() && op.f.as_str() == RUN_HEADER)?;
        serde_json::from_value(op.value.detail.clone()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_through_its_event() {
        let h = RunHeader {
            users: Some(16),
            faults: Some(vec!["slow-writes".into()]),
            guard: Some(Guard::Lock),
            strict_lock: false,
            margin_warn: Some(0.8),
            subject: Some("lock-only".into()),
            notify_grace_ms: Some(5000),
        };
        let op = h.to_op();
        let line = serde_json::to_string(&op).unwrap();
        assert_eq!(
            line,
            r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"run","value":{"detail":{"faults":["slow-writes"],"guard":"lock","margin_warn":0.8,"subject":"lock-only","users":16}}}"#
        );
        let back: Op = serde_json::from_str(&line).unwrap();
        assert_eq!(RunHeader::of(&[back]), Some(h));
    }

    #[test]
    fn histories_without_a_header_or_with_a_foreign_one_have_none() {
        assert_eq!(RunHeader::of(&[]), None);
        let mut op = RunHeader::default().to_op();
        op.value.detail = Some(serde_json::json!({"users": "many"}));
        assert_eq!(RunHeader::of(&[op]), None);
    }

    #[test]
    fn guards_parse_by_name() {
        for g in [Guard::Lock, Guard::Fencing, Guard::Database, Guard::Nothing] {
            assert_eq!(g.as_str().parse::<Guard>(), Ok(g));
        }
        assert!("redis"
            .parse::<Guard>()
            .unwrap_err()
            .contains("expected lock"));
    }
}
