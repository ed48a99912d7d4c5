//! The lock service a run's designs take their leases from: one Redis (`single`), Redis
//! with Sentinel failover (`sentinel`), or Redlock across five independent Redis nodes
//! (`redlock`), and how a client reaches each ([`LockEndpoints`]).
//!
//! What each promises, and what breaks it (docs/locks.md):
//! - `single`: a lease lasts its TTL on one server's clock; the server is a single point
//!   of failure, and a restart without persistence forgets every lease.
//! - `sentinel`: the same lease on a primary that Sentinel replaces when it dies.
//!   Replication is asynchronous, so a lease granted just before the primary died may be
//!   missing on the promoted replica: a second client gets it (`failover-redis`).
//! - `redlock`: a lease is held when a majority of independent nodes granted it within
//!   its validity (see [`crate::redlock`]). It survives a minority of nodes failing, but
//!   rests on timing: a client paused past the validity, or one node of the majority whose
//!   clock jumps, lets a second client in (Kleppmann, "How to do distributed locking").

use std::fmt;
use std::str::FromStr;

use crate::error::WorkloadError;

/// Which lock service a run uses (`--lock-service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LockService {
    /// One Redis server: today's behaviour.
    #[default]
    Single,
    /// One primary, one replica, three sentinels; clients ask Sentinel for the primary.
    Sentinel,
    /// Five independent Redis nodes; a lease is a majority of grants (Redlock).
    Redlock,
}

impl LockService {
    /// Every lock service, `single` first.
    pub const ALL: [LockService; 3] = [
        LockService::Single,
        LockService::Sentinel,
        LockService::Redlock,
    ];

    /// The name on the command line, in matrix cells (`lock-only@redlock`) and reports.
    pub fn name(self) -> &'static str {
        match self {
            LockService::Single => "single",
            LockService::Sentinel => "sentinel",
            LockService::Redlock => "redlock",
        }
    }

    /// How many Redis data nodes the topology has (sentinels not counted).
    pub fn data_nodes(self) -> usize {
        match self {
            LockService::Single => 1,
            LockService::Sentinel => 2,
            LockService::Redlock => crate::redlock::NODES,
        }
    }

    /// One line for `--help` and reports: the topology.
    pub fn topology(self) -> &'static str {
        match self {
            LockService::Single => "one Redis",
            LockService::Sentinel => "Redis primary + replica, three sentinels",
            LockService::Redlock => "Redlock over five independent Redis nodes",
        }
    }
}

impl fmt::Display for LockService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LockService {
    type Err = WorkloadError;

    fn from_str(s: &str) -> Result<LockService, WorkloadError> {
        LockService::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                WorkloadError::InvalidConfig(format!(
                    "unknown lock service {s:?}; valid: single, sentinel, redlock"
                ))
            })
    }
}

/// How a client reaches the lock service: URLs through the fault proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockEndpoints {
    /// One Redis: its `redis://` URL.
    Single(String),
    /// Sentinel: ask the sentinels for the primary, then connect to it.
    Sentinel(SentinelEndpoints),
    /// Redlock: one `redis://` URL per node, in node order.
    Redlock(Vec<String>),
}

impl LockEndpoints {
    /// Which service these endpoints reach.
    pub fn service(&self) -> LockService {
        match self {
            LockEndpoints::Single(_) => LockService::Single,
            LockEndpoints::Sentinel(_) => LockService::Sentinel,
            LockEndpoints::Redlock(_) => LockService::Redlock,
        }
    }
}

/// What a Sentinel client needs.
///
/// Sentinel answers `get-master-addr-by-name` with the address the primary is known by
/// inside the topology (where the sentinels and the replica reach it), never the address
/// of the fault proxy clients must go through. `routes` maps each node's topology address
/// to its client URL, so faults on a node's proxy still apply to the clients after a
/// failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelEndpoints {
    /// The sentinels' `redis://` URLs (with their password).
    pub sentinels: Vec<String>,
    /// The monitored primary's name (`SENTINEL get-master-addr-by-name <name>`).
    pub master_name: String,
    /// Topology address (`host:port` as Sentinel reports it) -> the node's client URL.
    pub routes: Vec<(String, String)>,
}

impl SentinelEndpoints {
    /// The client URL of the node Sentinel named `host:port`, if it is one of ours.
    pub fn route(&self, host: &str, port: u16) -> Option<&str> {
        let addr = format!("{host}:{port}");
        self.routes
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, url)| url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_named() {
        for l in LockService::ALL {
            assert_eq!(l.name().parse::<LockService>().unwrap(), l);
        }
        let e = "zookeeper".parse::<LockService>().unwrap_err().to_string();
        assert!(e.contains("zookeeper") && e.contains("redlock"), "{e}");
        assert_eq!(LockService::Redlock.data_nodes(), 5);
    }

    #[test]
    fn sentinel_answers_are_routed_to_the_nodes_proxies() {
        let s = SentinelEndpoints {
            sentinels: vec![],
            master_name: "overbook".into(),
            routes: vec![
                ("127.0.0.1:7001".into(), "redis://:p@127.0.0.1:9001/".into()),
                ("127.0.0.1:7002".into(), "redis://:p@127.0.0.1:9002/".into()),
            ],
        };
        assert_eq!(
            s.route("127.0.0.1", 7002),
            Some("redis://:p@127.0.0.1:9002/")
        );
        assert_eq!(s.route("127.0.0.1", 7003), None);
    }
}
