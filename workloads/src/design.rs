//! The names of the booking designs and what a run of each is expected to show.

use std::fmt;
use std::str::FromStr;

use crate::error::WorkloadError;

/// One booking strategy under test. Each has its own file in `designs/` opening with the
/// race it allows or prevents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DesignName {
    /// Redis lease around check-then-insert; no database constraint (the story's design).
    LockOnly,
    /// Check-then-insert at READ COMMITTED, no lock at all.
    CheckThenInsert,
    /// Lock-only plus a heartbeat that renews the lease while the work runs.
    LockRenewal,
    /// Lease plus a fencing token the database checks before writing.
    LockFencing,
    /// One row per room-night under `UNIQUE(room, night)`; the lease only saves work.
    DbUnique,
    /// `EXCLUDE USING gist (room WITH =, stay WITH &&)` on the bookings.
    DbExclusion,
    /// One conditional `UPDATE` of pre-created inventory rows, all nights or none.
    AtomicReserve,
    /// `SELECT ... FOR UPDATE` on the inventory rows, then check and write.
    RowLock,
    /// SERIALIZABLE check-then-insert with bounded retries of 40001.
    Serializable,
    /// Confirms to the user before COMMIT, trusting a deferred constraint.
    ConfirmBeforeCommit,
}

const ALL: [DesignName; 10] = [
    DesignName::LockOnly,
    DesignName::CheckThenInsert,
    DesignName::LockRenewal,
    DesignName::LockFencing,
    DesignName::DbUnique,
    DesignName::DbExclusion,
    DesignName::AtomicReserve,
    DesignName::RowLock,
    DesignName::Serializable,
    DesignName::ConfirmBeforeCommit,
];

/// Every fault name the nemesis knows, `none` included, for the designs that break
/// with or without faults.
const EVERY_FAULT: &[&str] = &[
    "none",
    "db-latency",
    "redis-latency",
    "pause-db",
    "pause-redis",
    "kill-db",
    "kill-redis",
    "partition-db",
    "partition-redis",
    "client-pause",
];

impl DesignName {
    /// Every design, unsafe ones first as in the story.
    pub fn all() -> &'static [DesignName] {
        &ALL
    }

    /// The kebab-case name used on the command line and in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            DesignName::LockOnly => "lock-only",
            DesignName::CheckThenInsert => "check-then-insert",
            DesignName::LockRenewal => "lock-renewal",
            DesignName::LockFencing => "lock-fencing",
            DesignName::DbUnique => "db-unique",
            DesignName::DbExclusion => "db-exclusion",
            DesignName::AtomicReserve => "atomic-reserve",
            DesignName::RowLock => "row-lock",
            DesignName::Serializable => "serializable",
            DesignName::ConfirmBeforeCommit => "confirm-before-commit",
        }
    }

    /// Whether the design keeps "one booking per room-night" under every fault we inject
    /// (the safe designs run with `--expect valid`, the others are canaries).
    pub fn is_safe(&self) -> bool {
        self.caught_by().is_empty()
    }

    /// Whether the design takes a Redis lease per booking.
    pub fn uses_lock(&self) -> bool {
        matches!(
            self,
            DesignName::LockOnly
                | DesignName::LockRenewal
                | DesignName::LockFencing
                | DesignName::DbUnique
        )
    }

    /// One line saying what the design does and whether it is safe.
    pub fn description(&self) -> &'static str {
        match self {
            DesignName::LockOnly => {
                "unsafe: Redis lease (SET NX PX) around check-then-insert; no database constraint"
            }
            DesignName::CheckThenInsert => {
                "unsafe: READ COMMITTED check-then-insert with no lock and no constraint"
            }
            DesignName::LockRenewal => {
                "unsafe under client pauses: lease renewed every ttl/3 by a heartbeat while the work runs"
            }
            DesignName::LockFencing => {
                "safe: lease plus fencing token; the transaction first advances the room's fence or rolls back"
            }
            DesignName::DbUnique => {
                "safe: one row per room-night under UNIQUE(room, night); the lease only saves work"
            }
            DesignName::DbExclusion => {
                "safe: EXCLUDE USING gist (room WITH =, daterange WITH &&) on the bookings"
            }
            DesignName::AtomicReserve => {
                "safe: one conditional UPDATE claims every inventory night or none"
            }
            DesignName::RowLock => {
                "safe: SELECT ... FOR UPDATE on the inventory rows, then check and write"
            }
            DesignName::Serializable => {
                "safe: SERIALIZABLE check-then-insert, 40001 retried a bounded number of times"
            }
            DesignName::ConfirmBeforeCommit => {
                "unsafe (durability): confirms before COMMIT; a deferred constraint can still reject the commit"
            }
        }
    }

    /// The fault names (as the nemesis spells them) under which a run of this design is
    /// expected to find anomalies; empty for the safe designs. `none` means it breaks
    /// without any fault, given concurrent users on the same rooms.
    pub fn caught_by(&self) -> &'static [&'static str] {
        match self {
            // The lease runs out while the holder is still between its check and its
            // insert: a slow or stalled database, or a stopped client.
            DesignName::LockOnly => &["db-latency", "pause-db", "client-pause"],
            // The heartbeat keeps the lease alive through a slow database, but it stops
            // with the client in a stop-the-world pause.
            DesignName::LockRenewal => &["client-pause"],
            DesignName::CheckThenInsert | DesignName::ConfirmBeforeCommit => EVERY_FAULT,
            DesignName::LockFencing
            | DesignName::DbUnique
            | DesignName::DbExclusion
            | DesignName::AtomicReserve
            | DesignName::RowLock
            | DesignName::Serializable => &[],
        }
    }

    /// The fault names under which an unsafe design is nonetheless expected to hold, so
    /// that a matrix asserts it (lock-renewal's heartbeat outlasts a slow database; a
    /// lease-only design holds when nothing delays the holder). Safe designs hold under
    /// everything and list nothing here.
    pub fn survives(&self) -> &'static [&'static str] {
        match self {
            DesignName::LockOnly => &["none"],
            DesignName::LockRenewal => &["none", "db-latency"],
            _ => &[],
        }
    }

    /// Whether the client-pause point sits between the availability check and the insert
    /// (lease-only designs, where that is the window the lease must cover) rather than
    /// right after taking the lease.
    pub(crate) fn pauses_after_check(&self) -> bool {
        matches!(self, DesignName::LockOnly | DesignName::LockRenewal)
    }
}

impl fmt::Display for DesignName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DesignName {
    type Err = WorkloadError;
    fn from_str(s: &str) -> Result<DesignName, WorkloadError> {
        ALL.iter()
            .copied()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| WorkloadError::UnknownDesign {
                name: s.to_string(),
                valid: ALL
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for d in DesignName::all() {
            assert_eq!(d.as_str().parse::<DesignName>().unwrap(), *d);
            assert_eq!(d.to_string(), d.as_str());
        }
        let err = "lock-everything".parse::<DesignName>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("lock-everything"), "{msg}");
        assert!(
            msg.contains("db-exclusion") && msg.contains("lock-only"),
            "{msg}"
        );
    }

    #[test]
    fn the_story_designs_are_unsafe_and_the_database_designs_safe() {
        let unsafe_ones: Vec<_> = DesignName::all()
            .iter()
            .filter(|d| !d.is_safe())
            .map(|d| d.as_str())
            .collect();
        assert_eq!(
            unsafe_ones,
            [
                "lock-only",
                "check-then-insert",
                "lock-renewal",
                "confirm-before-commit"
            ]
        );
        assert!(DesignName::LockOnly.caught_by().contains(&"db-latency"));
        assert!(!DesignName::LockRenewal.caught_by().contains(&"db-latency"));
        assert!(DesignName::CheckThenInsert.caught_by().contains(&"none"));
    }
}
