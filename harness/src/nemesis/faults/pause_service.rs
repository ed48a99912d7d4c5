//! `pause-service`: one replica of the service under test is stopped (SIGSTOP to its
//! process group) for the window: a GC pause, a VM migration.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::{FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::NodeError;
use crate::sut::service::{Replicas, FAULTED_REPLICA};

pub(super) static KIND: PauseService = PauseService;

/// Stops one replica.
pub(super) struct PauseService;

impl FaultKind for PauseService {
    fn fault(&self) -> Fault {
        Fault::PauseService
    }

    fn detail(&self, _: &FaultParams) -> Value {
        json!({"signal": "SIGSTOP"})
    }

    fn strike_unit(&self) -> &'static str {
        "processes stopped"
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let service = on.replicas(Fault::PauseService)?;
            service
                .pause(FAULTED_REPLICA)
                .map_err(|e| NodeError::Service(e.to_string()))?;
            Ok(Box::new(Stopped(service)) as Box<dyn Held>)
        })
    }
}

/// The replica, stopped.
struct Stopped(Arc<Replicas>);

impl Held for Stopped {
    /// Applying returned only once the signal was delivered.
    fn counted_strikes(&self) -> Option<u64> {
        Some(1)
    }

    fn heal_now(&mut self) {
        self.0.resume(FAULTED_REPLICA);
    }
}
