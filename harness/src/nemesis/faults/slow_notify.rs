//! `slow-notify`: the notification sink answers each of the service's notifications
//! late for the window ([`NOTIFY_DELAY`]), as a slow mail provider would. Each is
//! recorded when it arrives, since the guest was told then; only the answer waits, past
//! the time a sender usually waits for it, so the sender gives up and sends again: an
//! outbox that retries must carry the message's id (its idempotency key), or the guest
//! is told twice.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::{FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::NodeError;
use crate::sut::service::NotifyHold;

pub(super) static KIND: SlowNotify = SlowNotify;

/// How late each notification is answered: longer than the 2 s the example services
/// wait for the sink, so their retry path runs.
pub const NOTIFY_DELAY: Duration = Duration::from_secs(3);

/// Delays the sink's answers.
pub(super) struct SlowNotify;

impl FaultKind for SlowNotify {
    fn fault(&self) -> Fault {
        Fault::SlowNotify
    }

    fn detail(&self, _: &FaultParams) -> Value {
        json!({"answer_delay_ms": NOTIFY_DELAY.as_millis() as u64, "recorded": "on arrival"})
    }

    fn strike_unit(&self) -> &'static str {
        "notifications answered late"
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let hold = on.replicas(Fault::SlowNotify)?.notify().clone();
            let baseline = hold.delayed();
            hold.set(NOTIFY_DELAY);
            Ok(Box::new(Late { hold, baseline }) as Box<dyn Held>)
        })
    }
}

/// The sink, answering late.
struct Late {
    hold: NotifyHold,
    /// Answers delayed before the window.
    baseline: u64,
}

impl Held for Late {
    /// The notifications answered late in the window.
    fn counted_strikes(&self) -> Option<u64> {
        Some(self.hold.delayed().saturating_sub(self.baseline))
    }

    fn heal_now(&mut self) {
        self.hold.clear();
    }
}
