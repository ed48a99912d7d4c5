//! `clock-jump-redis`: while a lease holder writes (its booking INSERT held half a
//! lease), the `--fault-node`'s expiry clock jumps forward by several leases: every key's
//! TTL is cut by the jump, in one script (the jump's effect, produced on the server).
//!
//! On Redlock this is Kleppmann's scenario: the next two nodes are unreachable for the
//! acquisition the jump follows, so its holder's majority is the jumped node and the two
//! before it; they come back at the jump, and a second client builds its majority with
//! the jumped node.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::{Fault, LockService};

use super::holder::UnderHolder;
use super::slow_writes::HeldStatements;
use super::{Aimed, FaultKind, Held, Requires, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::aim::Firing;
use crate::nodes::proxy::ProxyFaults;
use crate::nodes::{clock, NodeError, ServerKind};

pub(super) static KIND: ClockJump = ClockJump;

/// Jumps a node's clock under a holder.
pub(super) struct ClockJump;

impl FaultKind for ClockJump {
    fn fault(&self) -> Fault {
        Fault::ClockJumpRedis
    }

    /// It rewrites the TTL of every key on the server: on a Redis someone else runs,
    /// those are their keys, which overbook never touches.
    fn requires(&self) -> Requires {
        Requires {
            owned_server: true,
            lock_service: None,
        }
    }

    fn detail(&self, params: &FaultParams) -> Value {
        json!({
            "jump_ms": params.clock_jump().as_millis() as u64,
            "insert_hold_ms": params.work_hold().as_millis() as u64,
        })
    }

    fn strike_unit(&self) -> &'static str {
        "clock jumps under a holder"
    }

    fn aimed(&self) -> Aimed {
        Aimed::StrikesCounted
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let mut held = Jump {
                at: UnderHolder::new(on.cluster, on.node),
                by: on.params.clock_jump(),
            };
            if on.cluster.topology.service() == LockService::Redlock {
                let nodes = on.cluster.lock_nodes().len();
                held.at.cut = vec![(on.node + 1) % nodes, (on.node + 2) % nodes];
                held.at.others = held.at.cut.clone();
                for &i in &held.at.cut {
                    if let Some(n) = on.cluster.lock_node(i) {
                        n.proxy().set(ProxyFaults::partition());
                    }
                }
            }
            let postgres = on.server(ServerKind::Postgres);
            let work = HeldStatements::inserts(on.params.work_hold());
            on.aim(Fault::ClockJumpRedis, &postgres, work)?;
            Ok(Box::new(held) as Box<dyn Held>)
        })
    }
}

/// The jump, waiting for its holder.
struct Jump {
    at: UnderHolder,
    by: std::time::Duration,
}

impl Held for Jump {
    /// The jump under a holder happened (1), not the held INSERTs that wait for it.
    fn counted_strikes(&self) -> Option<u64> {
        Some(u64::from(self.at.struck))
    }

    fn strike<'a>(&'a mut self, firing: &'a Firing) -> BoxFuture<'a, Result<Option<Firing>, NodeError>> {
        Box::pin(async move {
            if !self.at.time_to_strike(firing).await? {
                return Ok(None);
            }
            let jumped = clock::jump(&self.at.lock_node().direct_url(), self.by).await?;
            for &i in &self.at.cut {
                if let Some(n) = self.at.cluster.lock_node(i) {
                    // Whatever the partition held is dropped with its connections, as a
                    // network that lost those packets would: reset first, so the heal
                    // cannot release a held request on its way.
                    n.proxy().reset_connections();
                    n.proxy().heal();
                }
            }
            let what = format!(
                "clock +{} ms: {} keys expired, {} shortened",
                self.by.as_millis(),
                jumped.expired,
                jumped.shortened
            );
            self.at.struck = true;
            Ok(Some(self.at.firing(firing, "jumped", what, "clock")))
        })
    }

    fn heal_now(&mut self) {
        self.at.lift();
    }
}
