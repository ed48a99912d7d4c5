//! The [`Design`] trait: what a booking strategy declares about itself, and
//! [`DesignName`], the handle the rest of overbook passes around.
//!
//! Each design lives in one file of `designs/` (opening with the race it allows or
//! prevents, as a timeline) and is registered by one line in `designs/mod.rs`. Nothing
//! else matches on designs: the client, the schema, the matrix and the CLI read what the
//! design declares here.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use checkers::Guard;
use tokio_postgres::IsolationLevel;

use crate::designs::{DesignSteps, REGISTRY};
use crate::error::WorkloadError;
use crate::fault::Fault;
use crate::lock_service::LockService;

/// Whether and how a design takes a Redis lease per booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockUse {
    /// No lock: the database alone decides.
    None,
    /// `SET lock:room:R <id> NX PX ttl`, released by compare-and-delete.
    Lease,
    /// A lease renewed every ttl/3 by a heartbeat while the work runs.
    RenewedLease,
    /// A lease plus a fencing token (`INCR` in the same script) the database checks.
    FencedLease,
}

/// Where a `client-pause` stops a client that holds a lease: the window the lease must
/// cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    /// Right after taking the lease, before any database work.
    AfterLease,
    /// Between the availability check and the insert (lease-only designs, where the
    /// check's answer is what the lease is supposed to keep true).
    AfterCheck,
    /// At the end of the design's transaction, right before COMMIT (after any check of
    /// the lease's remaining time).
    BeforeCommit,
}

/// The tables and constraints a design needs beyond the shared `bookings` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// SQL run after the shared tables exist (may be empty).
    pub sql: &'static str,
    /// Whether the design books pre-created inventory rows (one per room-night of the
    /// booking window, created by the setup).
    pub inventory: bool,
}

impl Schema {
    /// Nothing beyond the shared tables.
    pub const SHARED: Schema = Schema {
        sql: "",
        inventory: false,
    };
}

/// One booking strategy under test: what it is, how it runs, and what a run of it must
/// show. Its booking transaction is crate-private (the client drives it); everything a
/// run, the matrix or a report needs to know is here.
pub trait Design: Send + Sync + 'static {
    /// The kebab-case name used on the command line and in reports.
    fn name(&self) -> &'static str;

    /// One line saying what the design does and whether it is safe.
    fn description(&self) -> &'static str;

    /// Its tables and constraints beyond the shared ones.
    fn schema(&self) -> Schema {
        Schema::SHARED
    }

    /// The isolation level of its booking transactions.
    fn isolation(&self) -> IsolationLevel {
        IsolationLevel::ReadCommitted
    }

    /// SQL each new connection runs once (session settings); empty for none.
    fn session_sql(&self) -> &'static str {
        ""
    }

    /// Whether and how it takes a lease.
    fn lock(&self) -> LockUse {
        LockUse::None
    }

    /// What guards the one-stay-per-room-night invariant: it decides what two lease
    /// holders at once mean (under [`Guard::Lock`] the design failed, whatever nights
    /// they booked; under a database guard the lock failed and the database held). By
    /// default it follows the lease: a plain or renewed lease trusts the lock, a fenced
    /// one the fence, and no lease the database. A design whose lease is only an
    /// optimisation over a constraint, or that has no guard at all, says so.
    fn guard(&self) -> Guard {
        match self.lock() {
            LockUse::Lease | LockUse::RenewedLease => Guard::Lock,
            LockUse::FencedLease => Guard::Fencing,
            LockUse::None => Guard::Database,
        }
    }

    /// Where a client pause stops it, when it holds a lease.
    fn pause_point(&self) -> PausePoint {
        PausePoint::AfterLease
    }

    /// The faults under which a run must find anomalies (empty for the safe designs).
    /// [`Fault::None`] means it breaks with no fault at all, given concurrent users.
    fn caught_by(&self) -> &'static [Fault] {
        &[]
    }

    /// The faults under which an unsafe design must nonetheless hold (so a matrix
    /// asserts it). Safe designs hold under everything and list nothing here.
    fn survives(&self) -> &'static [Fault] {
        &[]
    }

    /// [`Design::caught_by`] on a given lock service. The default follows from the lease
    /// the design takes and from what each fault's row says it catches
    /// ([`crate::fault::Catches`]), so a design only overrides it to say something new:
    /// a lease without a fence (`lock-only`, `lock-renewal`) is also caught by the faults
    /// that take every unfenced lease on that service (`clock-jump-redis` everywhere,
    /// `failover-redis` on Sentinel), and no longer by a fault blind on it
    /// (`slow-lock-grant` on Redlock).
    ///
    /// A fenced lease and the database-enforced designs stay safe everywhere.
    fn caught_by_on(&self, service: LockService) -> Vec<Fault> {
        use crate::fault::Catches;
        let mut faults = self.caught_by().to_vec();
        if faults.is_empty() || !matches!(self.lock(), LockUse::Lease | LockUse::RenewedLease) {
            return faults;
        }
        for f in Fault::all() {
            if let Catches::EveryUnfencedLeaseOn(on) = f.catches() {
                if on.contains(&service) && !faults.contains(f) {
                    faults.push(*f);
                }
            }
        }
        faults.retain(|f| f.catches() != Catches::AsDeclaredExceptOn(service));
        faults
    }
}

/// A handle on a registered design: cheap to copy, compared and ordered by name. The
/// built-in designs also have constants (`DesignName::LockOnly`), in `designs/mod.rs`.
#[derive(Clone, Copy)]
pub struct DesignName(pub(crate) &'static dyn DesignSteps);

impl DesignName {
    /// Every registered design, unsafe ones first as in the story.
    pub fn all() -> &'static [DesignName] {
        REGISTRY
    }

    /// What the design declares about itself.
    pub fn design(self) -> &'static dyn Design {
        self.0
    }

    /// The kebab-case name.
    pub fn as_str(&self) -> &'static str {
        self.0.name()
    }

    /// One line saying what the design does and whether it is safe.
    pub fn description(&self) -> &'static str {
        self.0.description()
    }

    /// Whether the design keeps "one booking per room-night" under every fault we inject
    /// (the safe designs run with `--expect valid`, the others are canaries).
    pub fn is_safe(&self) -> bool {
        self.0.caught_by().is_empty()
    }

    /// What guards the invariant ([`Design::guard`]).
    pub fn guard(&self) -> Guard {
        self.design().guard()
    }

    /// Whether the design takes a Redis lease per booking.
    pub fn uses_lock(&self) -> bool {
        self.0.lock() != LockUse::None
    }

    /// Whether `fault` can strike this design at all. A design that takes no lease sends
    /// nothing to the lock service and never stops at a lease's pause point, so a fault
    /// that only strikes a lease ([`Fault::lease_only`]) finds nothing to act on: a run
    /// of it would test nothing.
    pub fn exposed_to(&self, fault: Fault) -> bool {
        self.uses_lock() || !fault.lease_only()
    }

    /// See [`Design::caught_by`].
    pub fn caught_by(&self) -> &'static [Fault] {
        self.0.caught_by()
    }

    /// See [`Design::survives`].
    pub fn survives(&self) -> &'static [Fault] {
        self.0.survives()
    }

    /// See [`Design::caught_by_on`].
    pub fn caught_by_on(&self, service: LockService) -> Vec<Fault> {
        self.0.caught_by_on(service)
    }

    /// Whether the design can run on `service`: a renewed lease is renewed on one Redis,
    /// and Redlock renewal (a majority again, within the validity) is not modelled.
    pub fn runs_on(&self, service: LockService) -> bool {
        !(service == LockService::Redlock && self.0.lock() == LockUse::RenewedLease)
    }

    /// Why the design cannot run on `service` (`None` when it can), in one wording for
    /// the command line and the client alike. A Redlock renewal would have to win a
    /// majority again within the validity left; overbook does not model it rather than
    /// model it wrongly.
    pub fn refusal_on(&self, service: LockService) -> Option<String> {
        (!self.runs_on(service)).then(|| {
            format!(
                "{self} renews its lease on one Redis; renewal across a Redlock majority \
                 is not implemented (use --lock-service single or sentinel)"
            )
        })
    }
}

impl PartialEq for DesignName {
    fn eq(&self, other: &DesignName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for DesignName {}

impl PartialOrd for DesignName {
    fn partial_cmp(&self, other: &DesignName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DesignName {
    /// Registration order (the story's order), so sorted lists read as `--help` does.
    fn cmp(&self, other: &DesignName) -> Ordering {
        let pos = |d: &DesignName| REGISTRY.iter().position(|r| r == d);
        pos(self)
            .cmp(&pos(other))
            .then_with(|| self.as_str().cmp(other.as_str()))
    }
}

impl Hash for DesignName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for DesignName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DesignName({})", self.as_str())
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
        REGISTRY
            .iter()
            .copied()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| WorkloadError::UnknownDesign {
                name: s.to_string(),
                valid: REGISTRY
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
    fn expectations_follow_the_lock_service() {
        let lock_only = DesignName::LockOnly;
        let single = lock_only.caught_by_on(LockService::Single);
        assert!(single.contains(&Fault::ClockJumpRedis) && single.contains(&Fault::SlowLockGrant));
        assert!(!single.contains(&Fault::FailoverRedis));
        assert!(lock_only
            .caught_by_on(LockService::Sentinel)
            .contains(&Fault::FailoverRedis));
        let redlock = lock_only.caught_by_on(LockService::Redlock);
        assert!(redlock.contains(&Fault::ClockJumpRedis) && redlock.contains(&Fault::ClientPause));
        assert!(!redlock.contains(&Fault::SlowLockGrant));
        // A fence and the database keep their promise on every service.
        for service in LockService::ALL {
            assert!(DesignName::LockFencing.caught_by_on(service).is_empty());
            assert!(DesignName::DbExclusion.caught_by_on(service).is_empty());
        }
        assert!(!DesignName::LockRenewal.runs_on(LockService::Redlock));
        assert!(DesignName::LockFencing.runs_on(LockService::Redlock));
        let why = DesignName::LockRenewal.refusal_on(LockService::Redlock);
        assert!(why.is_some_and(|w| w.starts_with("lock-renewal renews its lease on one Redis")));
        assert_eq!(
            DesignName::LockRenewal.refusal_on(LockService::Sentinel),
            None
        );
    }

    /// Issue 22: what guards each design decides what two lock holders at once mean.
    #[test]
    fn each_design_declares_its_guard() {
        let guard = |n: &str| n.parse::<DesignName>().unwrap().guard();
        for lock_only in ["lock-only", "lock-deadline", "lock-renewal"] {
            assert_eq!(guard(lock_only), Guard::Lock, "{lock_only}");
        }
        assert_eq!(guard("lock-fencing"), Guard::Fencing);
        // A lease over a unique index only saves work.
        assert_eq!(guard("db-unique"), Guard::Database);
        assert_eq!(guard("db-exclusion"), Guard::Database);
        assert_eq!(guard("check-then-insert"), Guard::Nothing);
        // Every unsafe design whose lease is its guard is caught by a lock fault.
        for d in DesignName::all() {
            if d.guard() == Guard::Lock {
                assert!(!d.is_safe(), "{d} trusts its lock yet is called safe");
            }
        }
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
                "lock-deadline",
                "confirm-before-commit"
            ]
        );
        assert!(DesignName::LockOnly.caught_by().contains(&Fault::DbLatency));
        assert!(!DesignName::LockRenewal
            .caught_by()
            .contains(&Fault::DbLatency));
        assert!(DesignName::CheckThenInsert
            .caught_by()
            .contains(&Fault::None));
    }

    #[test]
    fn every_registered_design_has_a_distinct_name_and_a_constant() {
        let mut names: Vec<_> = DesignName::all().iter().map(|d| d.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DesignName::all().len());
        assert!(DesignName::all().contains(&DesignName::ConfirmBeforeCommit));
    }

    #[test]
    fn a_design_is_never_both_caught_by_and_surviving_a_fault() {
        for d in DesignName::all() {
            for f in d.caught_by() {
                assert!(!d.survives().contains(f), "{d} under {f}");
            }
        }
    }
}
