//! `lost-commit-ack`: a COMMIT reaches Postgres and commits; its answer is swallowed and
//! the client's connection cut, so the client cannot know whether its booking exists.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::{Aimed, FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::aim::{Aim, Hit, Protocol};
use crate::nodes::{NodeError, ServerKind};
use wire::pg::StatementKind;

pub(super) static KIND: LostCommitAck = LostCommitAck;

/// Swallows the answers to COMMITs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostCommitAck;

impl FaultKind for LostCommitAck {
    fn fault(&self) -> Fault {
        Fault::LostCommitAck
    }

    fn detail(&self, _: &FaultParams) -> Value {
        json!({"swallow": "COMMIT answer", "then": "reset"})
    }

    fn strike_unit(&self) -> &'static str {
        "COMMIT answers swallowed"
    }

    fn aimed(&self) -> Aimed {
        Aimed::FiringsStrike
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        let postgres = on.server(ServerKind::Postgres);
        Box::pin(async move { on.aim_only(Fault::LostCommitAck, postgres, LostCommitAck) })
    }
}

/// The aim: the server's answer to a COMMIT that committed is swallowed and the
/// connection cut.
impl Aim for LostCommitAck {
    fn protocol(&self) -> Protocol {
        Protocol::Postgres
    }

    fn completion(&self, kind: StatementKind) -> Option<Hit> {
        // Only `COMMIT` answers a COMMIT that committed (a failed transaction's COMMIT
        // is answered `ROLLBACK`).
        (kind == StatementKind::Commit).then(|| Hit {
            action: "swallowed",
            command: "COMMIT".into(),
            kind: "commit",
            target: None,
            held_ms: None,
        })
    }
}
