//! `failover-redis` (Sentinel): replication is cut; while a holder of a lease granted on
//! the primary writes (its INSERT held half a lease), the primary is killed; Sentinel
//! promotes the replica, which never had the lease.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::{Fault, LockService};

use super::holder::UnderHolder;
use super::slow_writes::HeldStatements;
use super::{Aimed, FaultKind, Held, Requires, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::aim::Firing;
use crate::nodes::{topology, NodeError, ServerKind};

pub(super) static KIND: Failover = Failover;

/// Kills the primary under a holder.
pub(super) struct Failover;

impl FaultKind for Failover {
    fn fault(&self) -> Fault {
        Fault::FailoverRedis
    }

    /// A replica to promote.
    fn requires(&self) -> Requires {
        Requires {
            owned_server: false,
            lock_service: Some(LockService::Sentinel),
        }
    }

    fn detail(&self, params: &FaultParams) -> Value {
        json!({
            "replication": "cut",
            "then": "primary killed at its first lease grant",
            "insert_hold_ms": params.work_hold().as_millis() as u64,
        })
    }

    fn strike_unit(&self) -> &'static str {
        "primaries killed under a holder"
    }

    fn aimed(&self) -> Aimed {
        Aimed::StrikesCounted
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let mut held = Killed {
                at: UnderHolder::new(on.cluster, on.node),
                replica: None,
                healed: false,
            };
            // Replication is cut before any grant is watched: every grant from now on
            // exists on the primary only.
            let nodes = on.cluster.lock_nodes().len();
            let replica = (0..nodes).find(|&i| i != on.node).unwrap_or(0);
            if let Some(r) = on.cluster.lock_node(replica) {
                topology::cut_replication_between_leases(
                    &held.at.lock_node().direct_url(),
                    &r.direct_url(),
                    std::time::Duration::from_secs(2),
                )
                .await?;
            }
            held.replica = Some(replica);
            held.at.others = vec![replica];
            let postgres = on.server(ServerKind::Postgres);
            let work = HeldStatements::inserts(on.params.work_hold());
            on.aim(Fault::FailoverRedis, &postgres, work)?;
            Ok(Box::new(held) as Box<dyn Held>)
        })
    }
}

/// The failover, waiting for its holder.
struct Killed {
    at: UnderHolder,
    /// The replica whose replication was cut.
    replica: Option<usize>,
    /// Whether [`Held::heal`] began (so lifting the aims waits for nothing more).
    healed: bool,
}

impl Killed {
    /// Gives the cut replica its password back on the runtime, if any (from a drop).
    fn restore_replica_later(&self) {
        let Some(r) = self.replica.and_then(|r| self.at.cluster.lock_node(r)) else {
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

impl Held for Killed {
    /// The kill under a holder happened (1), not the held INSERTs that wait for it.
    fn counted_strikes(&self) -> Option<u64> {
        Some(u64::from(self.at.struck))
    }

    fn strike<'a>(&'a mut self, firing: &'a Firing) -> BoxFuture<'a, Result<Option<Firing>, NodeError>> {
        Box::pin(async move {
            if !self.at.time_to_strike(firing).await? {
                return Ok(None);
            }
            self.at.lock_node().kill().await?;
            self.at.struck = true;
            let done = self.at.firing(firing, "killed", "SIGKILL".into(), "failover");
            Ok(Some(done))
        })
    }

    fn heal_now(&mut self) {
        self.at.lift();
        if self.at.struck && !self.healed {
            // Dropped unhealed (an error, Ctrl-C): the primary comes back without
            // waiting, and the replica gets its password back in the background.
            let _ = self.at.lock_node().respawn_now();
            self.restore_replica_later();
        }
    }

    fn heal(&mut self) -> BoxFuture<'_, Result<(), NodeError>> {
        Box::pin(async move {
            self.healed = true;
            self.heal_now();
            let restarted = if self.at.struck {
                self.at.lock_node().restart().await
            } else {
                Ok(())
            };
            let replica = self.replica.and_then(|r| self.at.cluster.lock_node(r));
            if let Some(r) = replica {
                let password = r.password().unwrap_or_default().to_string();
                topology::restore_replication(&r.direct_url(), &password).await?;
            }
            restarted
        })
    }
}
