//! What `clock-jump-redis` and `failover-redis` share: both keep a lease holder at work
//! (its booking INSERT held half a lease) and strike the lock service under it, once per
//! window, only when the holder's lease really sits where the fault hits.

use std::sync::Arc;

use crate::nodes::aim::Firing;
use crate::nodes::{topology, Cluster, NodeError, ServerHandle};

/// A lock-service node struck under a lease holder at work.
pub(super) struct UnderHolder {
    pub(super) cluster: Arc<Cluster>,
    /// The lock-service node the fault hits.
    pub(super) node: usize,
    /// Nodes partitioned until the strike (`clock-jump-redis` on Redlock).
    pub(super) cut: Vec<usize>,
    /// Nodes whose copy of a lease would vouch for it: the cut nodes, or the replica
    /// whose replication was cut (`failover-redis`).
    pub(super) others: Vec<usize>,
    /// Whether the strike happened (a jump, a kill).
    pub(super) struck: bool,
}

impl UnderHolder {
    /// Nothing struck yet, on `node`.
    pub(super) fn new(cluster: &Arc<Cluster>, node: usize) -> UnderHolder {
        UnderHolder {
            cluster: cluster.clone(),
            node,
            cut: Vec::new(),
            others: Vec::new(),
            struck: false,
        }
    }

    /// The lock-service node the fault hits.
    pub(super) fn lock_node(&self) -> &ServerHandle {
        self.cluster
            .lock_node(self.node)
            .unwrap_or(&self.cluster.redis)
    }

    /// Whether to strike at `firing` now: not struck yet, a booking's INSERT held (a
    /// client that books holds its lease, granted just before; a cancel's DELETE takes
    /// no lease), and a lease only the target holds. Striking at a grant instead would
    /// mostly hit clients that find the room taken and let go at once.
    pub(super) async fn time_to_strike(&self, firing: &Firing) -> Result<bool, NodeError> {
        let holder_at_work = firing.server == "postgres" && firing.command == "INSERT";
        Ok(!self.struck && holder_at_work && self.lease_only_on_target().await?)
    }

    /// Whether the target node holds a lease, and one the others cannot vouch for: a
    /// room's lease the cut replica has no copy of (`failover-redis`), or one neither
    /// partitioned Redlock node has (`clock-jump-redis` on Redlock). A lease granted just
    /// before the cut was replicated, or reached all five nodes: striking its holder
    /// would prove nothing, so the strike waits for a holder whose lease really sits
    /// where the fault hits.
    async fn lease_only_on_target(&self) -> Result<bool, NodeError> {
        // A holder whose work outlived its lease (a loaded machine) leaves nothing to
        // strike at: wait for one whose lease is there.
        let mine = topology::leases(&self.lock_node().direct_url()).await?;
        if mine.is_empty() {
            return Ok(false);
        }
        if self.others.is_empty() {
            return Ok(true);
        }
        let mut elsewhere = Vec::new();
        for &i in &self.others {
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

    /// What the strike did, as a firing of its own on the connection that triggered it.
    pub(super) fn firing(
        &self,
        at: &Firing,
        action: &'static str,
        command: String,
        kind: &'static str,
    ) -> Firing {
        Firing {
            server: "redis",
            action,
            command,
            kind,
            target: Some(format!(
                "node {} {}",
                self.node,
                self.lock_node().direct_addr()
            )),
            held_ms: None,
            connection: at.connection,
        }
    }

    /// Lifts the aims and partitions: both proxies, and the cut nodes'.
    pub(super) fn lift(&self) {
        self.cluster.postgres.proxy().heal();
        self.lock_node().proxy().heal();
        for &i in &self.cut {
            if let Some(n) = self.cluster.lock_node(i) {
                n.proxy().heal();
            }
        }
    }
}
