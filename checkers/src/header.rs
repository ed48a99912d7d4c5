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
//! A run whose rooms hold more than one stay a night (a room type sold N times) or
//! that sells time slots says so here too, so that `overbook check` of the history
//! alone judges against the same capacities:
//!
//! ```json
//! {"index":0,"time":0,"process":"nemesis","type":"info","f":"run","value":{"detail":{"capacity":1,"room_capacity":[{"room":"DLX","capacity":3}],"unit":"30m"}}}
//! ```
//!
//! Every field is optional: a history written by someone else's system has no header
//! (or a partial one), and each check that needs a field it lacks is simply not made.

use serde::{Deserialize, Serialize};

use crate::history::{Op, OpType, Process, F};
use crate::room::Room;

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
    /// How many confirmed stays a room not in `room_capacity` may hold on one night
    /// (or slot); absent means 1, the no-double-booking invariant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Rooms whose capacity differs from `capacity`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub room_capacity: Vec<RoomCapacity>,
    /// What a stay counts: `night` (absent means nights) or a slot length such as
    /// `30m` or `1h`; lets messages name a single slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `--notify-grace` in milliseconds: how long after the run's final heal a committed
    /// booking's guest may still be told "confirmed" (`told-eventually`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_grace_ms: Option<u64>,
}

/// One room's capacity in the run header (a list, since JSON object keys cannot tell
/// room `101` from room `"101"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCapacity {
    /// The room.
    pub room: Room,
    /// How many confirmed stays it may hold on one night or slot.
    pub capacity: u64,
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

    /// How many confirmed stays `room` may hold on one night or slot (1 unless the
    /// header says otherwise).
    pub fn capacity_of(&self, room: &Room) -> u64 {
        self.room_capacity
            .iter()
            .find(|c| &c.room == room)
            .map_or(self.capacity.unwrap_or(1), |c| c.capacity)
    }

    /// Whether any room may hold more than one stay at once.
    pub fn has_capacity_above_one(&self) -> bool {
        self.capacity.is_some_and(|c| c != 1) || self.room_capacity.iter().any(|c| c.capacity != 1)
    }

    /// The slot length in microseconds when the unit is a slot length (`30m`, `1h`).
    pub fn slot_micros(&self) -> Option<i64> {
        slot_minutes(self.unit.as_deref()?).map(|m| m * 60_000_000)
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

/// The minutes of a slot length written `30m`, `90m`, `1h` or `2h`; `None` for `night`
/// or anything else.
pub fn slot_minutes(unit: &str) -> Option<i64> {
    let (n, per) = match unit.as_bytes().last()? {
        b'm' => (&unit[..unit.len() - 1], 1),
        b'h' => (&unit[..unit.len() - 1], 60),
        _ => return None,
    };
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) || n.len() > 6 {
        return None;
    }
    let n: i64 = n.parse().ok()?;
    (n > 0).then_some(n * per)
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
            ..RunHeader::default()
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
    fn capacities_default_to_one_and_rooms_override() {
        let mut h = RunHeader::default();
        assert_eq!(h.capacity_of(&Room::Number(101)), 1);
        assert!(!h.has_capacity_above_one());
        h.capacity = Some(2);
        h.room_capacity = vec![RoomCapacity {
            room: Room::Name("DLX".into()),
            capacity: 3,
        }];
        assert_eq!(h.capacity_of(&Room::Name("DLX".into())), 3);
        assert_eq!(h.capacity_of(&Room::Name("STE".into())), 2);
        let back: Op = serde_json::from_str(&serde_json::to_string(&h.to_op()).unwrap()).unwrap();
        assert_eq!(RunHeader::of(&[back]), Some(h));
        assert_eq!(slot_minutes("30m"), Some(30));
        assert_eq!(slot_minutes("2h"), Some(120));
        for bad in ["night", "0m", "m", "1.5h", "-30m", "30s"] {
            assert_eq!(slot_minutes(bad), None, "{bad}");
        }
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
