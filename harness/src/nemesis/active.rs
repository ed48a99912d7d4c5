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
use crate::nodes::{Cluster, NodeError};
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
}

impl Default for FaultParams {
    /// The scaled story: a 500 ms lease against 600 ms of injected delay.
    fn default() -> FaultParams {
        FaultParams {
            db_latency: Duration::from_millis(600),
            redis_latency: Duration::from_millis(600),
            jitter_pct: 10,
            client_pause: Duration::from_millis(600),
            lock_ttl: Duration::from_millis(500),
            slow_sql: None,
        }
    }
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
}

impl fmt::Debug for ActiveFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveFault")
            .field("fault", &self.fault)
            .field("healed", &self.healed)
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
        let guard = ActiveFault {
            fault,
            cluster: cluster.clone(),
            client_pause: client_pause.clone(),
            service: service.clone(),
            firings: Firings::new(),
            firings_closed: false,
            healed: false,
        };
        let aim = |node: &crate::nodes::ServerHandle, aim: Aim| {
            node.proxy()
                .aim(aim, &guard.firings)
                .map_err(|e| NodeError::Unsupported {
                    action: format!("{fault}: {e}"),
                })
        };
        match fault {
            Fault::None => {}
            Fault::DbLatency => cluster.postgres.proxy().set(ProxyFaults::latency(
                params.db_latency,
                params.jitter(params.db_latency),
            )),
            Fault::RedisLatency => cluster.redis.proxy().set(ProxyFaults::latency(
                params.redis_latency,
                params.jitter(params.redis_latency),
            )),
            Fault::PauseDb => cluster.postgres.pause().await?,
            Fault::PauseRedis => cluster.redis.pause().await?,
            Fault::KillDb => cluster.postgres.kill().await?,
            Fault::KillRedis => cluster.redis.kill().await?,
            Fault::PartitionDb => cluster.postgres.proxy().set(ProxyFaults::partition()),
            Fault::PartitionRedis => cluster.redis.proxy().set(ProxyFaults::partition()),
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
                &cluster.redis,
                Aim::SlowLockGrant {
                    hold: params.grant_hold(),
                },
            )?,
            Fault::LostRenewal => {
                // Renewals only matter while the holder's work outlasts the lease: the
                // writes are held as in slow-writes, and the renewals that should cover
                // them are lost.
                aim(&cluster.postgres, params.slow_writes())?;
                aim(&cluster.redis, Aim::LostRenewal)?;
            }
        }
        Ok(guard)
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
            Fault::KillRedis => self.cluster.redis.restart().await,
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
            Fault::LostRenewal => {
                self.cluster.postgres.proxy().heal();
                self.cluster.redis.proxy().heal();
            }
            Fault::KillDb | Fault::KillRedis => {
                if let Some(kind) = target(self.fault) {
                    let _ = self.cluster.node(kind).respawn_now();
                }
            }
            _ => {
                if let Some(kind) = target(self.fault) {
                    let n = self.cluster.node(kind);
                    n.proxy().heal();
                    n.resume_now();
                }
            }
        }
    }
}

impl Drop for ActiveFault {
    fn drop(&mut self) {
        if !self.healed {
            self.heal_now();
        }
    }
}
