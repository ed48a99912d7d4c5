//! `lost-renewal`: lease renewals (PEXPIRE, SET XX, a renewal script) never reach
//! Redis, so the lease lapses while its holder works. Renewals only matter while the
//! holder's work outlasts the lease: the writes are held as in `slow-writes`, and the
//! renewals that should cover them are lost.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::slow_writes::HeldStatements;
use super::{Aimed, AimsHeld, FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::aim::{printable, Aim, Hit, Protocol};
use crate::nodes::{NodeError, ServerKind};
use wire::resp::{Command, LockOp};

pub(super) static KIND: LostRenewal = LostRenewal;

/// Loses the renewals, holds the writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostRenewal;

impl FaultKind for LostRenewal {
    fn fault(&self) -> Fault {
        Fault::LostRenewal
    }

    fn detail(&self, params: &FaultParams) -> Value {
        json!({
            "drop": "lease renewals",
            "write_hold_ms": params.db_latency.as_millis() as u64,
        })
    }

    fn strike_unit(&self) -> &'static str {
        "renewals dropped or writes held"
    }

    fn aimed(&self) -> Aimed {
        Aimed::FiringsStrike
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let postgres = on.server(ServerKind::Postgres);
            let node = on.server(ServerKind::Redis);
            on.aim(Fault::LostRenewal, &postgres, HeldStatements::writes(on.params))?;
            on.aim(Fault::LostRenewal, &node, LostRenewal)?;
            Ok(Box::new(AimsHeld {
                servers: vec![postgres, node],
                resume: false,
            }) as Box<dyn Held>)
        })
    }
}

/// The aim: a lease renewal is replaced by a command that changes nothing, so the lease
/// is not extended; the client hears "not renewed".
impl Aim for LostRenewal {
    fn protocol(&self) -> Protocol {
        Protocol::Redis
    }

    fn replaces_commands(&self) -> bool {
        true
    }

    fn command(&self, command: &Command<'_>, op: &LockOp) -> Option<(Vec<u8>, Hit)> {
        let LockOp::Renew { key } = op else {
            return None;
        };
        let hit = Hit {
            action: "dropped",
            command: command.name.to_string(),
            kind: "renew",
            target: Some(printable(key)),
            held_ms: None,
        };
        Some((stand_in(command.name.as_bytes()), hit))
    }
}

/// A command standing in for a lost renewal: it changes nothing and answers like a
/// renewal that did not renew (`:0` for counts and scripts, nil for SET XX and GETEX).
fn stand_in(command_name: &[u8]) -> Vec<u8> {
    const KEY: &str = "overbook:lost-renewal";
    let integer =
        !(command_name.eq_ignore_ascii_case(b"SET") || command_name.eq_ignore_ascii_case(b"GETEX"));
    let verb = if integer { "EXISTS" } else { "GET" };
    format!(
        "*2\r\n${}\r\n{verb}\r\n${}\r\n{KEY}\r\n",
        verb.len(),
        KEY.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_renewal_is_answered_like_one_that_did_not_renew() {
        assert_eq!(
            stand_in(b"EVALSHA"),
            b"*2\r\n$6\r\nEXISTS\r\n$21\r\noverbook:lost-renewal\r\n".to_vec()
        );
        assert!(stand_in(b"set").starts_with(b"*2\r\n$3\r\nGET\r\n"));
    }
}
