//! `kill-service`: one replica of the service under test is killed (SIGKILL to its
//! process group), then started again and waited for at the window's end: a crash.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::{FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::NodeError;
use crate::sut::service::{Replicas, FAULTED_REPLICA};

pub(super) static KIND: KillService = KillService;

/// Kills one replica.
pub(super) struct KillService;

impl FaultKind for KillService {
    fn fault(&self) -> Fault {
        Fault::KillService
    }

    fn detail(&self, _: &FaultParams) -> Value {
        json!({"signal": "SIGKILL"})
    }

    fn strike_unit(&self) -> &'static str {
        "processes killed"
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let service = on.replicas(Fault::KillService)?;
            service
                .kill(FAULTED_REPLICA)
                .map_err(|e| NodeError::Service(e.to_string()))?;
            Ok(Box::new(Killed(service)) as Box<dyn Held>)
        })
    }
}

/// The replica, killed.
struct Killed(Arc<Replicas>);

impl Held for Killed {
    /// Applying returned only once the signal was delivered.
    fn counted_strikes(&self) -> Option<u64> {
        Some(1)
    }

    /// Dropped unhealed: started again without waiting for it.
    fn heal_now(&mut self) {
        if self.0.pid(FAULTED_REPLICA).is_none() {
            let _ = self.0.spawn(FAULTED_REPLICA);
        }
    }

    fn heal(&mut self) -> BoxFuture<'_, Result<(), NodeError>> {
        Box::pin(async move {
            self.0
                .restart(FAULTED_REPLICA)
                .await
                .map_err(|e| NodeError::Service(e.to_string()))
        })
    }
}
