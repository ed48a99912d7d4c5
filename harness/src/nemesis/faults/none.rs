//! `none`: no fault, the control run. Its windows strike nothing.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::{FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::NodeError;

pub(super) static KIND: NoFault = NoFault;

/// The control run's "fault".
pub(super) struct NoFault;

impl FaultKind for NoFault {
    fn fault(&self) -> Fault {
        Fault::None
    }

    fn detail(&self, _: &FaultParams) -> Value {
        json!({})
    }

    fn strike_unit(&self) -> &'static str {
        "strikes"
    }

    fn apply<'a>(&'a self, _: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async { Ok(Box::new(NoFault) as Box<dyn Held>) })
    }
}

impl Held for NoFault {
    fn counted_strikes(&self) -> Option<u64> {
        Some(0)
    }

    fn heal_now(&mut self) {}
}
