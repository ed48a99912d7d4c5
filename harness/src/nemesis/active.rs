//! Faults in force: applying one (its module in [`super::faults`]) returns an
//! [`ActiveFault`] guard whose heal is awaited at the window's end, and whose drop heals
//! at once (an error, a panic, a cancelled task), so no pause or partition outlives the
//! run. The guard also carries the firings the proxies report for an aimed fault.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use workloads::ClientPause;

use super::faults::{self, FaultKind, Held, Setting, Targets};
use super::Fault;
use super::SlowSql;
use crate::nodes::aim::{Firing, Firings};
use crate::nodes::{Cluster, NodeError};
use crate::sut::service::Replicas;

/// How hard each fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultParams {
    /// Added to every Postgres round trip during `db-latency`.
    pub db_latency: Duration,
    /// Added to every Redis round trip during `redis-latency`.
    pub redis_latency: Duration,
    /// Extra random delay, up to this percentage of the latency.
    pub jitter_pct: u32,
    /// How long a client stops at its pause point during `client-pause`.
    pub client_pause: Duration,
    /// The run's lease length: `slow-lock-grant` holds a grant for longer than this.
    pub lock_ttl: Duration,
    /// Statements `slow-writes` holds besides the writes (`--slow-sql`).
    pub slow_sql: Option<SlowSql>,
    /// The lock-service node Redis faults hit (`--fault-node`); `None`: node 0, or the
    /// current primary under Sentinel.
    pub fault_node: Option<usize>,
}

impl FaultParams {
    /// The jitter added to `latency`: up to `jitter_pct` of it.
    pub fn jitter(&self, latency: Duration) -> Duration {
        latency * self.jitter_pct / 100
    }

    /// How long `slow-lock-grant` holds a grant at most: past the lease's end by a margin
    /// (a fifth of the lease, at least 50 ms), so the lease has surely expired in Redis.
    pub fn grant_hold(&self) -> Duration {
        self.lock_ttl + (self.lock_ttl / 5).max(Duration::from_millis(50))
    }

    /// How long `clock-jump-redis` and `failover-redis` hold a holder's booking INSERT:
    /// half its lease. Alone this breaks nothing (the work fits the lease); it keeps the
    /// holder at work while the lock service loses its lease, so the second holder
    /// meets it there. Cancels and commits pass at full speed.
    pub fn work_hold(&self) -> Duration {
        self.lock_ttl / 2
    }

    /// How far `clock-jump-redis` jumps: several leases (four, at least a second), so
    /// every lease on the node expires at once.
    pub fn clock_jump(&self) -> Duration {
        (self.lock_ttl * 4).max(Duration::from_secs(1))
    }
}

/// A fault in force. Heal it with [`ActiveFault::heal`]; dropping it heals what can be
/// healed without waiting (a killed server is respawned, not waited for).
#[must_use = "dropping an ActiveFault heals it at once"]
pub struct ActiveFault {
    kind: &'static dyn FaultKind,
    held: Box<dyn Held>,
    /// Where the proxies report what an aimed fault hit.
    firings: Firings,
    /// Whether the firings queue was found closed (nothing more will come).
    firings_closed: bool,
    healed: bool,
    /// The lock-service node the fault hits (Redis faults).
    node: usize,
}

impl fmt::Debug for ActiveFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveFault")
            .field("fault", &self.kind.fault())
            .field("healed", &self.healed)
            .field("node", &self.node)
            .finish()
    }
}

impl ActiveFault {
    /// Injects `fault` now.
    pub async fn apply(
        fault: Fault,
        params: &FaultParams,
        cluster: &Arc<Cluster>,
        client_pause: &ClientPause,
    ) -> Result<ActiveFault, NodeError> {
        ActiveFault::apply_to(fault, params, cluster, client_pause, None).await
    }

    /// Injects `fault` now, with the service's replicas for the faults on a service.
    pub async fn apply_to(
        fault: Fault,
        params: &FaultParams,
        cluster: &Arc<Cluster>,
        client_pause: &ClientPause,
        service: Option<&Arc<Replicas>>,
    ) -> Result<ActiveFault, NodeError> {
        let setting = Setting::of_cluster(cluster, fault, service.is_some());
        faults::check(&[fault], &setting)?;
        let node = cluster.fault_node(params.fault_node).await;
        let nodes = cluster.lock_nodes().len();
        if cluster.lock_node(node).is_none() {
            return Err(NodeError::Unsupported {
                action: format!(
                    "{fault} on --fault-node {node} (the lock service has nodes 0 to {})",
                    nodes - 1
                ),
            });
        }
        let firings = Firings::new();
        let on = Targets {
            params,
            cluster,
            client_pause,
            service,
            firings: &firings,
            node,
        };
        let kind = faults::kind(fault);
        let held = kind.apply(&on).await?;
        Ok(ActiveFault {
            kind,
            held,
            firings,
            firings_closed: false,
            healed: false,
            node,
        })
    }

    /// What the fault struck in its window so far, for faults judged by a counter rather
    /// than by their firings (`None` for those, see [`FaultKind::firings_strike`]; the
    /// nemesis counts them): a window that opened is not a strike.
    pub fn counted_strikes(&self) -> Option<u64> {
        self.held.counted_strikes()
    }

    /// The node the fault hits, for the history: its index.
    pub fn node(&self) -> usize {
        self.node
    }

    /// Acts on a firing when the fault strikes inside a holder's critical section
    /// (`clock-jump-redis`, `failover-redis`); once per window. Returns what it did, to
    /// log as a firing of its own.
    pub async fn strike(&mut self, firing: &Firing) -> Result<Option<Firing>, NodeError> {
        self.held.strike(firing).await
    }

    /// The fault held.
    pub fn fault(&self) -> Fault {
        self.kind.fault()
    }

    /// The next message an aimed fault acted on; never resolves for other faults, or
    /// once nothing more can come.
    pub async fn next_firing(&mut self) -> Option<Firing> {
        if self.firings_closed {
            return std::future::pending().await;
        }
        let next = self.firings.next().await;
        if next.is_none() {
            self.firings_closed = true;
        }
        next
    }

    /// A firing already reported and not yet taken, if any.
    pub fn try_firing(&mut self) -> Option<Firing> {
        self.firings.try_next()
    }

    /// How many firings were lost because the nemesis did not take them fast enough.
    pub fn firings_dropped(&self) -> u64 {
        self.firings.dropped()
    }

    /// Ends the fault like [`ActiveFault::heal`], and returns the firings reported before
    /// the heal that were not taken yet.
    pub async fn heal_keeping_firings(mut self) -> Result<Vec<Firing>, NodeError> {
        let mut firings = Vec::new();
        // Lift the aim first, so that nothing fires after the last take.
        if self.kind.is_aimed() {
            self.held.heal_now();
        }
        while let Some(f) = self.try_firing() {
            firings.push(f);
        }
        self.heal().await.map(|()| firings)
    }

    /// Ends the fault; for a kill, restarts the server and waits until it is ready.
    pub async fn heal(mut self) -> Result<(), NodeError> {
        self.healed = true;
        self.held.heal().await
    }
}

impl Drop for ActiveFault {
    fn drop(&mut self) {
        if !self.healed {
            self.held.heal_now();
        }
    }
}
