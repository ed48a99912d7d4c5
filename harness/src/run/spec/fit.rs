//! The values of `overbook run` the user left out, fitted to the faults asked for, so a
//! documented one-line example catches what it claims with no other flag.
//!
//! Most faults scale with the lease (a write held for `--db-latency`, a pause of two
//! leases, a clock jump of four) and take the run's own defaults: a 500 ms lease, windows
//! of 8 leases after 4 of health, 5 rooms over 60 nights. A fault whose strike takes a
//! fixed time does not: a Sentinel failover needs seconds before a second client can take
//! the lease, so at 500 ms every lease in flight has expired long before (the run was
//! VALID having tested nothing). Each fault declares what it needs ([`Fault::fit`]); this
//! module turns that into values, and refuses a lease the user chose that the fault
//! cannot strike, naming one that works.

use std::time::Duration;

use workloads::client::LOCK_WAIT_LEASES;

use super::{RunSpec, SpecError, MAX_WINDOW_DAYS};
use crate::nemesis::Fault;

/// The lease when neither the user nor a fault chose one: the story at one tenth scale.
pub const DEFAULT_LEASE: Duration = Duration::from_millis(500);
/// Rooms when neither the user nor a fault chose.
pub const DEFAULT_ROOMS: u64 = 5;
/// Days in the booking window when neither the user nor a fault chose.
pub const DEFAULT_WINDOW_DAYS: u32 = 60;
/// The healthy start before a fixed-time fault's window: short, since such a fault
/// strikes once per window and its heal (a restart) is waited for anyway.
const HEALTHY_START: Duration = Duration::from_millis(500);

/// What the run uses for the values [`fit`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fitted {
    /// `--lock-ttl`.
    pub lock_ttl: Duration,
    /// `--fault-for`.
    pub fault_for: Duration,
    /// `--heal-for`.
    pub heal_for: Duration,
    /// `--rooms`.
    pub rooms: u64,
    /// `--window-days`.
    pub window_days: u32,
    /// `--op-timeout`.
    pub op_timeout: Duration,
}

/// The shortest lease `takes` can strike: the struck holder's work is held half its lease
/// (`FaultParams::work_hold`), and must outlast the fault.
pub fn min_lease(takes: Duration) -> Duration {
    takes * 2
}

/// The lease a fixed-time fault gets by default: half again its minimum, so that on a
/// loaded machine a failover slower than usual still meets the holder at work.
pub fn default_lease(takes: Duration) -> Duration {
    takes * 3
}

/// Fits the values `args` left out to `faults`; refuses a `--lock-ttl` too short for one
/// of them to strike, saying why and what works.
pub fn fit(args: &RunSpec, faults: &[Fault]) -> Result<Fitted, SpecError> {
    // The slowest fixed-time fault decides; every fault that strikes one holder a window
    // wants one room.
    let slowest = faults
        .iter()
        .filter_map(|f| f.fit().takes.map(|t| (t, *f)))
        .max();
    let one_room = faults.iter().any(|f| f.fit().one_room);
    let lock_ttl = match (args.lock_ttl, slowest) {
        (Some(ttl), Some((takes, fault))) if ttl < min_lease(takes) => {
            return Err(SpecError(format!(
                "--lock-ttl {}ms is too short for {fault} to strike: it holds the struck \
             holder's work for half the lease ({}ms), and {fault} takes about {}ms before a \
             second client can take that lease, so the lease expires first and nothing can \
             overlap (a VALID that tested nothing); give --lock-ttl {}ms or more (at least \
             {}ms), or leave it out",
                ttl.as_millis(),
                (ttl / 2).as_millis(),
                takes.as_millis(),
                default_lease(takes).as_millis(),
                min_lease(takes).as_millis()
            )))
        }
        (Some(ttl), _) => ttl,
        (None, Some((takes, _))) => default_lease(takes),
        (None, None) => DEFAULT_LEASE,
    };
    // A fixed-time fault strikes once a window: the window holds the struck work (half
    // the lease) and the fault itself; the others get several slow round trips a window.
    let (fault_for, heal_for) = match slowest {
        Some((takes, _)) => (lock_ttl / 2 + takes, HEALTHY_START),
        None => (lock_ttl * 8, lock_ttl * 4),
    };
    let worst_latency = args.db_latency.max(args.redis_latency);
    // A user waits for the lock up to LOCK_WAIT_LEASES leases: its op must not time out
    // before (at the default lease the latency term is the larger).
    let op_timeout = (Duration::from_secs(5) + worst_latency * 8)
        .max(lock_ttl * LOCK_WAIT_LEASES + Duration::from_secs(5));
    Ok(Fitted {
        lock_ttl,
        fault_for: args.fault_for.unwrap_or(fault_for),
        heal_for: args.heal_for.unwrap_or(heal_for),
        rooms: args
            .rooms
            .unwrap_or(if one_room { 1 } else { DEFAULT_ROOMS }),
        window_days: args.window_days.unwrap_or(if one_room {
            MAX_WINDOW_DAYS
        } else {
            DEFAULT_WINDOW_DAYS
        }),
        op_timeout: args.op_timeout.unwrap_or(op_timeout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec of `overbook run` with these values set (`--flag VALUE` pairs).
    fn args(words: &[&str]) -> RunSpec {
        let ms = |v: &str| crate::run::spec::parse_duration(v).unwrap();
        let mut spec = RunSpec::default();
        for pair in words.chunks(2) {
            let (flag, v) = (pair[0], pair[1]);
            match flag {
                "--lock-ttl" => spec.lock_ttl = Some(ms(v)),
                "--rooms" => spec.rooms = Some(v.parse().unwrap()),
                "--window-days" => spec.window_days = Some(v.parse().unwrap()),
                "--fault-for" => spec.fault_for = Some(ms(v)),
                "--heal-for" => spec.heal_for = Some(ms(v)),
                "--op-timeout" => spec.op_timeout = Some(ms(v)),
                other => panic!("no such flag in this test: {other}"),
            }
        }
        spec
    }

    fn fitted(words: &[&str], faults: &[Fault]) -> Result<Fitted, SpecError> {
        fit(&args(words), faults)
    }

    #[test]
    fn faults_that_scale_with_the_lease_keep_the_story_defaults() {
        let f = fitted(&[], &[Fault::SlowWrites]).unwrap();
        assert_eq!(
            f,
            Fitted {
                lock_ttl: Duration::from_millis(500),
                fault_for: Duration::from_secs(4),
                heal_for: Duration::from_secs(2),
                rooms: 5,
                window_days: 60,
                op_timeout: Duration::from_millis(9800),
            }
        );
    }

    #[test]
    fn a_failover_gets_a_lease_it_can_strike_and_one_contended_room() {
        let f = fitted(&[], &[Fault::FailoverRedis]).unwrap();
        assert_eq!(f.lock_ttl, Duration::from_secs(12));
        // The struck work (6 s) and the failover (4 s) fit one window.
        assert_eq!(f.fault_for, Duration::from_secs(10));
        assert_eq!(f.heal_for, Duration::from_millis(500));
        assert_eq!((f.rooms, f.window_days), (1, 3650));
        // A waiter (two 12 s leases) does not time out first.
        assert_eq!(f.op_timeout, Duration::from_secs(29));
        // With another fault, the failover still decides the lease.
        let both = fitted(&[], &[Fault::SlowWrites, Fault::FailoverRedis]).unwrap();
        assert_eq!(both.lock_ttl, Duration::from_secs(12));
    }

    #[test]
    fn what_the_user_chose_stands() {
        let f = fitted(
            &[
                "--lock-ttl",
                "20s",
                "--rooms",
                "3",
                "--window-days",
                "30",
                "--fault-for",
                "15s",
                "--heal-for",
                "1s",
                "--op-timeout",
                "40s",
            ],
            &[Fault::FailoverRedis],
        )
        .unwrap();
        assert_eq!(
            f,
            Fitted {
                lock_ttl: Duration::from_secs(20),
                fault_for: Duration::from_secs(15),
                heal_for: Duration::from_secs(1),
                rooms: 3,
                window_days: 30,
                op_timeout: Duration::from_secs(40),
            }
        );
    }

    #[test]
    fn a_lease_the_failover_cannot_strike_is_refused_with_one_that_works() {
        let e = fitted(&["--lock-ttl", "500ms"], &[Fault::FailoverRedis])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--lock-ttl 500ms is too short for failover-redis")
                && e.contains("--lock-ttl 12000ms")
                && e.contains("at least 8000ms"),
            "{e}"
        );
        // The minimum itself strikes.
        assert!(fitted(&["--lock-ttl", "8s"], &[Fault::FailoverRedis]).is_ok());
        // A short lease is fine for a fault that scales with it.
        assert!(fitted(&["--lock-ttl", "100ms"], &[Fault::ClockJumpRedis]).is_ok());
    }

    #[test]
    fn a_clock_jump_keeps_the_lease_but_gets_one_contended_room() {
        let f = fitted(&[], &[Fault::ClockJumpRedis]).unwrap();
        assert_eq!(f.lock_ttl, DEFAULT_LEASE);
        assert_eq!((f.rooms, f.window_days), (1, 3650));
    }
}
