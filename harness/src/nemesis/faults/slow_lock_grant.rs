//! `slow-lock-grant`: the reply granting a lease (`SET ... NX`) is held until the lease
//! has expired (its key granted to someone else, or the lease plus a margin): the holder
//! works on a lease already gone.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::{Aimed, FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::aim::{printable, Aim, Hit, Protocol};
use crate::nodes::{NodeError, ServerKind};

pub(super) static KIND: SlowLockGrant = SlowLockGrant;

/// Holds the lease grants.
pub(super) struct SlowLockGrant;

impl FaultKind for SlowLockGrant {
    fn fault(&self) -> Fault {
        Fault::SlowLockGrant
    }

    fn detail(&self, params: &FaultParams) -> Value {
        json!({
            "hold_ms": params.grant_hold().as_millis() as u64,
            "lock_ttl_ms": params.lock_ttl.as_millis() as u64,
        })
    }

    fn strike_unit(&self) -> &'static str {
        "lease grants held"
    }

    fn aimed(&self) -> Aimed {
        Aimed::FiringsStrike
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        let node = on.server(ServerKind::Redis);
        let aim = HeldGrants {
            hold: on.params.grant_hold(),
        };
        Box::pin(async move { on.aim_only(Fault::SlowLockGrant, node, aim) })
    }
}

/// The aim: the reply that granted a lease is held until the lease was granted to
/// someone else (it had expired), or for `hold` at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldGrants {
    /// The longest a grant is held: the lease plus a margin.
    pub hold: Duration,
}

impl Aim for HeldGrants {
    fn protocol(&self) -> Protocol {
        Protocol::Redis
    }

    fn grant(&self, key: &[u8]) -> Option<(Duration, Hit)> {
        let hit = Hit {
            action: "held",
            command: "lease grant".into(),
            kind: "acquire",
            target: Some(printable(key)),
            held_ms: Some(self.hold.as_millis() as u64),
        };
        Some((self.hold, hit))
    }
}
