//! Faults in force: applying one returns an [`ActiveFault`] guard whose heal is awaited
//! at the window's end, and whose drop heals at once (an error, a panic, a cancelled
//! task), so no pause or partition outlives the run.
//!
//! Adding a fault: its row in `workloads::fault`, then one arm in [`ActiveFault::apply`]
//! (and in [`FaultParams::detail`] when it has parameters to log).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use workloads::ClientPause;

use super::{target, Fault};
use crate::nodes::aim::{Aim, Firing, Firings, SlowSql};
use crate::nodes::proxy::ProxyFaults;
use crate::nodes::{clock, topology, Cluster, LockService, NodeError, ServerHandle};
use crate::sut::service::{Replicas, FAULTED_REPLICA};

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
    fn jitter(&self, latency: Duration) -> Duration {
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

    fn held_work(&self) -> Aim {
        Aim::SlowInserts {
            hold: self.work_hold(),
        }
    }

    fn slow_writes(&self) -> Aim {
        Aim::SlowWrites {
            hold: self.db_latency,
            jitter: self.jitter(self.db_latency),
            also: self.slow_sql.clone(),
        }
    }

    /// The parameters logged with a fault's start, as the op's `value.detail`.
    pub fn detail(&self, fault: Fault) -> serde_json::Value {
        let ms = |d: Duration| d.as_millis() as u64;
        match fault {
            Fault::DbLatency => json!({
                "latency_ms": ms(self.db_latency),
                "jitter_ms": ms(self.jitter(self.db_latency)),
            }),
            Fault::RedisLatency => json!({
                "latency_ms": ms(self.redis_latency),
                "jitter_ms": ms(self.jitter(self.redis_latency)),
            }),
            Fault::PauseDb | Fault::PauseRedis => json!({"signal": "SIGSTOP"}),
            Fault::KillDb | Fault::KillRedis => json!({"signal": "SIGKILL"}),
            Fault::PartitionDb | Fault::PartitionRedis => json!({"blackhole": true}),
            Fault::ClientPause => json!({"pause_ms": ms(self.client_pause)}),
            Fault::PauseService => json!({"signal": "SIGSTOP"}),
            Fault::KillService => json!({"signal": "SIGKILL"}),
            Fault::SlowWrites => {
                let mut d = json!({
                    "hold_ms": ms(self.db_latency),
                    "jitter_ms": ms(self.jitter(self.db_latency)),
                });
                if let Some(re) = &self.slow_sql {
                    d["slow_sql"] = json!(re.as_str());
                }
                d
            }
            Fault::LostCommitAck => json!({"swallow": "COMMIT answer", "then": "reset"}),
            Fault::SlowLockGrant => json!({
                "hold_ms": ms(self.grant_hold()),
                "lock_ttl_ms": ms(self.lock_ttl),
            }),
            Fault::LostRenewal => json!({
                "drop": "lease renewals",
                "write_hold_ms": ms(self.db_latency),
            }),
            Fault::ClockJumpRedis => json!({
                "jump_ms": ms(self.clock_jump()),
                "insert_hold_ms": ms(self.work_hold()),
            }),
            Fault::FailoverRedis => json!({
                "replication": "cut",
                "then": "primary killed at its first lease grant",
                "insert_hold_ms": ms(self.work_hold()),
            }),
            Fault::None => json!({}),
        }
    }
}

/// A fault in force. Heal it with [`ActiveFault::heal`]; dropping it heals what can be
/// healed without waiting (a killed server is respawned, not waited for).
#[must_use = "dropping an ActiveFault heals it at once"]
pub struct ActiveFault {
    fault: Fault,
    cluster: Arc<Cluster>,
    client_pause: ClientPause,
    /// The service's replicas, for the faults that act on them.
    service: Option<Arc<Replicas>>,
    /// Where the proxies report what an aimed fault hit.
    firings: Firings,
    /// Whether the firings queue was found closed (nothing more will come).
    firings_closed: bool,
    healed: bool,
    /// The lock-service node the fault hits (Redis faults).
    node: usize,
    /// Nodes partitioned until the strike (`clock-jump-redis` on Redlock).
    cut: Vec<usize>,
    /// The replica whose replication was cut (`failover-redis`).
    replica: Option<usize>,
    /// Whether the strike that follows a grant happened (a jump, a kill).
    struck: bool,
    /// How far `clock-jump-redis` jumps.
    jump: Duration,
    /// The strike counter this fault's window is judged by, as it stood when applied
    /// (a proxy's hits, the clients' pauses entered); see [`ActiveFault::strikes`].
    baseline: u64,
    /// Whether applying it delivered its signal (pause and kill faults).
    signalled: bool,
}

impl fmt::Debug for ActiveFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveFault")
            .field("fault", &self.fault)
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
        let service = service.cloned();
        if fault.needs_service() && service.is_none() {
            return Err(NodeError::Service(format!(
                "{fault} needs a service under test (run --service CMD)"
            )));
        }
        if fault.needs_process() {
            if let Some(kind) = target(fault) {
                if !cluster.node(kind).owns_process() {
                    return Err(NodeError::Unsupported {
                        action: fault.name().to_string(),
                    });
                }
            }
        }
        let node_ix = cluster.fault_node(params.fault_node).await;
        let nodes = cluster.lock_nodes().len();
        let node = cluster
            .lock_node(node_ix)
            .ok_or_else(|| NodeError::Unsupported {
                action: format!(
                    "{fault} on --fault-node {node_ix} (the lock service has nodes 0 to {})",
                    nodes - 1
                ),
            })?;
        let service_kind = cluster.topology.service();
        if fault == Fault::FailoverRedis && service_kind != LockService::Sentinel {
            return Err(NodeError::Unsupported {
                action: format!(
                    "failover-redis needs --lock-service sentinel (not {service_kind})"
                ),
            });
        }
        let mut guard = ActiveFault {
            fault,
            cluster: cluster.clone(),
            client_pause: client_pause.clone(),
            service: service.clone(),
            firings: Firings::new(),
            firings_closed: false,
            healed: false,
            node: node_ix,
            cut: Vec::new(),
            replica: None,
            struck: false,
            jump: params.clock_jump(),
            baseline: 0,
            signalled: false,
        };
        let aim = |node: &crate::nodes::ServerHandle, aim: Aim| {
            node.proxy()
                .aim(aim, &guard.firings)
                .map_err(|e| NodeError::Unsupported {
                    action: format!("{fault}: {e}"),
                })
        };
        guard.baseline = guard.strike_counter();
        match fault {
            Fault::None => {}
            Fault::DbLatency => cluster.postgres.proxy().set(ProxyFaults::latency(
                params.db_latency,
                params.jitter(params.db_latency),
            )),
            Fault::RedisLatency => node.proxy().set(ProxyFaults::latency(
                params.redis_latency,
                params.jitter(params.redis_latency),
            )),
            Fault::PauseDb => cluster.postgres.pause().await?,
            Fault::PauseRedis => node.pause().await?,
            Fault::KillDb => cluster.postgres.kill().await?,
            Fault::KillRedis => node.kill().await?,
            Fault::PartitionDb => cluster.postgres.proxy().set(ProxyFaults::partition()),
            Fault::PartitionRedis => node.proxy().set(ProxyFaults::partition()),
            Fault::ClientPause => client_pause.activate(params.client_pause),
            Fault::PauseService | Fault::KillService => {
                let service = service.as_ref().expect("checked above");
                let done = if fault == Fault::PauseService {
                    service.pause(FAULTED_REPLICA)
                } else {
                    service.kill(FAULTED_REPLICA)
                };
                done.map_err(|e| NodeError::Service(e.to_string()))?;
            }
            Fault::SlowWrites => aim(&cluster.postgres, params.slow_writes())?,
            Fault::LostCommitAck => aim(&cluster.postgres, Aim::LostCommitAck)?,
            Fault::SlowLockGrant => aim(
                node,
                Aim::SlowLockGrant {
                    hold: params.grant_hold(),
                },
            )?,
            Fault::LostRenewal => {
                // Renewals only matter while the holder's work outlasts the lease: the
                // writes are held as in slow-writes, and the renewals that should cover
                // them are lost.
                aim(&cluster.postgres, params.slow_writes())?;
                aim(node, Aim::LostRenewal)?;
            }
            Fault::ClockJumpRedis => {
                if service_kind == LockService::Redlock {
                    // Kleppmann's scenario: the next two nodes are unreachable for the
                    // acquisition that the jump follows, so its holder's majority is the
                    // jumped node and the two before it; they come back at the jump,
                    // and a second client builds its majority with the jumped node.
                    guard.cut = vec![(node_ix + 1) % nodes, (node_ix + 2) % nodes];
                    for &i in &guard.cut {
                        if let Some(n) = cluster.lock_node(i) {
                            n.proxy().set(ProxyFaults::partition());
                        }
                    }
                }
                aim(&cluster.postgres, params.held_work())?;
            }
            Fault::FailoverRedis => {
                // Replication is cut before any grant is watched: every grant from now
                // on exists on the primary only.
                let replica = (0..nodes).find(|&i| i != node_ix).unwrap_or(0);
                if let Some(r) = cluster.lock_node(replica) {
                    topology::cut_replication_between_leases(
                        &node.direct_url(),
                        &r.direct_url(),
                        Duration::from_secs(2),
                    )
                    .await?;
                }
                guard.replica = Some(replica);
                aim(&cluster.postgres, params.held_work())?;
            }
        }
        // Applying a process fault returned only once its signal was delivered.
        guard.signalled = matches!(
            fault,
            Fault::PauseDb
                | Fault::PauseRedis
                | Fault::KillDb
                | Fault::KillRedis
                | Fault::PauseService
                | Fault::KillService
        );
        Ok(guard)
    }

    /// The counter a latency, partition or client-pause fault's strikes are read from:
    /// the target proxy's hits, or the pauses clients entered; 0 for other faults.
    fn strike_counter(&self) -> u64 {
        match self.fault {
            Fault::DbLatency | Fault::PartitionDb => self.cluster.postgres.proxy().hits(),
            Fault::RedisLatency | Fault::PartitionRedis => self.lock_node().proxy().hits(),
            Fault::ClientPause => self.client_pause.entered(),
            _ => 0,
        }
    }

    /// What the fault struck in its window so far, for faults judged by a counter rather
    /// than by their firings (`None` for those, see [`firings_strike`]; the nemesis counts
    /// them): a window that opened is not a strike.
    /// - latency: chunks of the system under test's traffic delayed at the proxy;
    /// - partition: chunks or connection attempts held;
    /// - client pause: pauses the clients entered;
    /// - pause and kill: the signal was delivered (1);
    /// - clock jump and failover: the jump or kill under a holder happened (1), not the
    ///   held INSERTs that wait for it.
    pub fn counted_strikes(&self) -> Option<u64> {
        let delta = self.strike_counter().saturating_sub(self.baseline);
        match self.fault {
            Fault::DbLatency
            | Fault::RedisLatency
            | Fault::PartitionDb
            | Fault::PartitionRedis
            | Fault::ClientPause => Some(delta),
            Fault::PauseDb
            | Fault::PauseRedis
            | Fault::PauseService
            | Fault::KillDb
            | Fault::KillRedis
            | Fault::KillService => Some(u64::from(self.signalled)),
            Fault::ClockJumpRedis | Fault::FailoverRedis => Some(u64::from(self.struck)),
            Fault::None => Some(0),
            Fault::SlowWrites
            | Fault::LostCommitAck
            | Fault::SlowLockGrant
            | Fault::LostRenewal => None,
        }
    }

    /// The lock-service node the fault hits.
    fn lock_node(&self) -> &ServerHandle {
        self.cluster
            .lock_node(self.node)
            .unwrap_or(&self.cluster.redis)
    }

    /// Whether the target node holds a lease, and one the others cannot vouch for: a
    /// room's lease the cut replica has no copy of (`failover-redis`), or one neither
    /// partitioned Redlock node has (`clock-jump-redis` on Redlock). A lease granted just
    /// before the cut was replicated, or reached all five nodes: striking its holder
    /// would prove nothing, so the strike waits for a holder whose lease really sits
    /// where the fault hits.
    async fn lease_only_on_target(&self) -> Result<bool, NodeError> {
        let others: Vec<usize> = match self.fault {
            Fault::FailoverRedis => self.replica.into_iter().collect(),
            _ => self.cut.clone(),
        };
        // A holder whose work outlived its lease (a loaded machine) leaves nothing to
        // strike at: wait for one whose lease is there.
        let mine = topology::leases(&self.lock_node().direct_url()).await?;
        if mine.is_empty() {
            return Ok(false);
        }
        if others.is_empty() {
            return Ok(true);
        }
        let mut elsewhere = Vec::new();
        for i in others {
            if let Some(n) = self.cluster.lock_node(i) {
                elsewhere.extend(topology::leases(&n.direct_url()).await?);
            }
        }
        // By key, not by value: a stale copy of the room's lease elsewhere (granted
        // before the cut, released after it) would still keep the second client out
        // until it expired, and the strike would prove nothing.
        Ok(mine
            .iter()
            .any(|(key, _)| !elsewhere.iter().any(|(k, _)| k == key)))
    }

    /// The node the fault hits, for the history: its index and address.
    pub fn node(&self) -> usize {
        self.node
    }

    /// Acts on a firing when the fault strikes inside a holder's critical section: at
    /// the first booking INSERT held in the window (a client that books holds its lease,
    /// granted just before), `clock-jump-redis` jumps the node's clock (and, on Redlock,
    /// ends the partition of the next two nodes), `failover-redis` kills the primary.
    /// Striking at
    /// a grant instead would mostly hit clients that find the room taken and let go at
    /// once. Once per window; returns what it did, to log as a firing of its own.
    pub async fn strike(&mut self, firing: &Firing) -> Result<Option<Firing>, NodeError> {
        // A booking's INSERT: a cancel's DELETE takes no lease.
        let holder_at_work = firing.server == "postgres" && firing.command == "INSERT";
        if self.struck || !holder_at_work || !self.lease_only_on_target().await? {
            return Ok(None);
        }
        let node = self.lock_node();
        let target = Some(format!("node {} {}", self.node, node.direct_addr()));
        let done = match self.fault {
            Fault::ClockJumpRedis => {
                let by = self.jump;
                let jumped = clock::jump(&node.direct_url(), by).await?;
                for &i in &self.cut {
                    if let Some(n) = self.cluster.lock_node(i) {
                        // Whatever the partition held is dropped with its connections,
                        // as a network that lost those packets would: reset first, so
                        // the heal cannot release a held request on its way.
                        n.proxy().reset_connections();
                        n.proxy().heal();
                    }
                }
                Firing {
                    server: "redis",
                    action: "jumped",
                    command: format!(
                        "clock +{} ms: {} keys expired, {} shortened",
                        by.as_millis(),
                        jumped.expired,
                        jumped.shortened
                    ),
                    kind: "clock",
                    target,
                    held_ms: None,
                    connection: firing.connection,
                }
            }
            Fault::FailoverRedis => {
                node.kill().await?;
                Firing {
                    server: "redis",
                    action: "killed",
                    command: "SIGKILL".into(),
                    kind: "failover",
                    target,
                    held_ms: None,
                    connection: firing.connection,
                }
            }
            _ => return Ok(None),
        };
        self.struck = true;
        Ok(Some(done))
    }

    /// The fault held.
    pub fn fault(&self) -> Fault {
        self.fault
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
        if self.fault.is_aimed() {
            self.heal_now();
        }
        while let Some(f) = self.try_firing() {
            firings.push(f);
        }
        self.heal().await.map(|()| firings)
    }

    /// Ends the fault; for a kill, restarts the server and waits until it is ready.
    pub async fn heal(mut self) -> Result<(), NodeError> {
        self.healed = true;
        match self.fault {
            Fault::KillDb => self.cluster.postgres.restart().await,
            Fault::KillRedis => self.lock_node().restart().await,
            Fault::FailoverRedis => {
                self.heal_now();
                let restarted = if self.struck {
                    self.lock_node().restart().await
                } else {
                    Ok(())
                };
                let replica = self.replica.and_then(|r| self.cluster.lock_node(r));
                if let Some(r) = replica {
                    let password = r.password().unwrap_or_default().to_string();
                    topology::restore_replication(&r.direct_url(), &password).await?;
                }
                restarted
            }
            Fault::KillService => match &self.service {
                Some(s) => s
                    .restart(FAULTED_REPLICA)
                    .await
                    .map_err(|e| NodeError::Service(e.to_string())),
                None => Ok(()),
            },
            _ => {
                self.heal_now();
                Ok(())
            }
        }
    }

    fn heal_now(&self) {
        match self.fault {
            Fault::None => {}
            Fault::ClientPause => self.client_pause.heal(),
            Fault::PauseService => {
                if let Some(s) = &self.service {
                    s.resume(FAULTED_REPLICA);
                }
            }
            Fault::KillService => {
                if let Some(s) = &self.service {
                    if s.pid(FAULTED_REPLICA).is_none() {
                        let _ = s.spawn(FAULTED_REPLICA);
                    }
                }
            }
            // Acts on both proxies.
            Fault::LostRenewal | Fault::ClockJumpRedis | Fault::FailoverRedis => {
                self.cluster.postgres.proxy().heal();
                self.lock_node().proxy().heal();
                for &i in &self.cut {
                    if let Some(n) = self.cluster.lock_node(i) {
                        n.proxy().heal();
                    }
                }
                if self.fault == Fault::FailoverRedis && self.struck && !self.healed {
                    // Dropped unhealed (an error, Ctrl-C): the primary comes back without
                    // waiting, and the replica gets its password back in the background.
                    let _ = self.lock_node().respawn_now();
                    self.restore_replica_later();
                }
            }
            Fault::KillDb => {
                let _ = self.cluster.postgres.respawn_now();
            }
            Fault::KillRedis => {
                let _ = self.lock_node().respawn_now();
            }
            _ => {
                let n = match target(self.fault) {
                    Some(crate::nodes::ServerKind::Redis) => self.lock_node(),
                    Some(kind) => self.cluster.node(kind),
                    None => return,
                };
                n.proxy().heal();
                n.resume_now();
            }
        }
    }

    /// From a drop: gives the cut replica its password back on the runtime, if any.
    fn restore_replica_later(&self) {
        let Some(r) = self.replica.and_then(|r| self.cluster.lock_node(r)) else {
            return;
        };
        let (url, password) = (r.direct_url(), r.password().unwrap_or_default().to_string());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = topology::restore_replication(&url, &password).await;
            });
        }
    }
}

/// What one strike of `fault` is, for the window's stop event and the reasons a run
/// that was never struck gives.
pub fn strike_unit(fault: Fault) -> &'static str {
    match fault {
        Fault::None => "strikes",
        Fault::DbLatency | Fault::RedisLatency => "chunks delayed",
        Fault::PartitionDb | Fault::PartitionRedis => "chunks or connects held",
        Fault::ClientPause => "client pauses entered",
        Fault::PauseDb | Fault::PauseRedis | Fault::PauseService => "processes stopped",
        Fault::KillDb | Fault::KillRedis | Fault::KillService => "processes killed",
        Fault::ClockJumpRedis => "clock jumps under a holder",
        Fault::FailoverRedis => "primaries killed under a holder",
        Fault::SlowWrites => "writes held",
        Fault::LostCommitAck => "COMMIT answers swallowed",
        Fault::SlowLockGrant => "lease grants held",
        Fault::LostRenewal => "renewals dropped or writes held",
    }
}

/// Whether every firing of `fault` is one of its strikes: the aimed faults judged by
/// what they acted on (`lost-renewal`'s held writes included: a design that never renews
/// still has its writes outlive the lease); not the faults judged by
/// [`ActiveFault::counted_strikes`] (a clock jump's held INSERTs only wait for its strike).
pub fn firings_strike(fault: Fault) -> bool {
    matches!(
        fault,
        Fault::SlowWrites | Fault::LostCommitAck | Fault::SlowLockGrant | Fault::LostRenewal
    )
}

impl Drop for ActiveFault {
    fn drop(&mut self) {
        if !self.healed {
            self.heal_now();
        }
    }
}
