//! `client-pause`: the built-in clients stop for `--client-pause` between taking their
//! lease and writing (a GC pause), at the pause point each design declares.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::{ClientPause, Fault};

use super::{FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::NodeError;

pub(super) static KIND: ClientPauseFault = ClientPauseFault;

/// Stops the clients at their pause point.
pub(super) struct ClientPauseFault;

impl FaultKind for ClientPauseFault {
    fn fault(&self) -> Fault {
        Fault::ClientPause
    }

    fn detail(&self, params: &FaultParams) -> Value {
        json!({"pause_ms": params.client_pause.as_millis() as u64})
    }

    fn strike_unit(&self) -> &'static str {
        "client pauses entered"
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let held = Paused {
                pause: on.client_pause.clone(),
                baseline: on.client_pause.entered(),
            };
            on.client_pause.activate(on.params.client_pause);
            Ok(Box::new(held) as Box<dyn Held>)
        })
    }
}

/// The pause point, active.
struct Paused {
    pause: ClientPause,
    /// Pauses entered before the window.
    baseline: u64,
}

impl Held for Paused {
    /// The pauses the clients entered in the window.
    fn counted_strikes(&self) -> Option<u64> {
        Some(self.pause.entered().saturating_sub(self.baseline))
    }

    fn heal_now(&mut self) {
        self.pause.heal();
    }
}
