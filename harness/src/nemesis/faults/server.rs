//! What the faults on one server share (`db-latency`, `pause-redis`, `kill-db`, ...): the
//! verb (delay, cut off, stop, kill) is the same on Postgres and on a lock-service node,
//! so each of those faults' modules is one [`ServerFault`] naming its fault.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use workloads::Fault;

use super::{target, FaultKind, Held, Server, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::proxy::ProxyFaults;
use crate::nodes::{NodeError, ServerKind};

/// What a [`ServerFault`] does to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    /// Every round trip through the proxy is delayed.
    Latency,
    /// The proxy holds every byte and connection attempt.
    Partition,
    /// SIGSTOP (docker: pause).
    Pause,
    /// SIGKILL, restarted at the window's end.
    Kill,
}

/// A fault that does [`Verb`] to the server its row acts on.
pub(super) struct ServerFault {
    fault: Fault,
    verb: Verb,
}

impl ServerFault {
    /// `fault` doing `verb` to its server.
    pub(super) const fn new(fault: Fault, verb: Verb) -> ServerFault {
        ServerFault { fault, verb }
    }

    fn latency(&self, params: &FaultParams) -> std::time::Duration {
        match target(self.fault) {
            Some(ServerKind::Redis) => params.redis_latency,
            _ => params.db_latency,
        }
    }
}

impl FaultKind for ServerFault {
    fn fault(&self) -> Fault {
        self.fault
    }

    fn detail(&self, params: &FaultParams) -> Value {
        match self.verb {
            Verb::Latency => {
                let latency = self.latency(params);
                json!({
                    "latency_ms": latency.as_millis() as u64,
                    "jitter_ms": params.jitter(latency).as_millis() as u64,
                })
            }
            Verb::Partition => json!({"blackhole": true}),
            Verb::Pause => json!({"signal": "SIGSTOP"}),
            Verb::Kill => json!({"signal": "SIGKILL"}),
        }
    }

    fn strike_unit(&self) -> &'static str {
        match self.verb {
            Verb::Latency => "chunks delayed",
            Verb::Partition => "chunks or connects held",
            Verb::Pause => "processes stopped",
            Verb::Kill => "processes killed",
        }
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        Box::pin(async move {
            let server = on.server_of(self.fault);
            let node = server.get();
            // The proxy's counter before the window: its strikes are what it adds.
            let baseline = node.proxy().hits();
            match self.verb {
                Verb::Latency => {
                    let latency = self.latency(on.params);
                    node.proxy()
                        .set(ProxyFaults::latency(latency, on.params.jitter(latency)))
                }
                Verb::Partition => node.proxy().set(ProxyFaults::partition()),
                Verb::Pause => node.pause().await?,
                Verb::Kill => node.kill().await?,
            }
            let held: Box<dyn Held> = Box::new(HeldServer {
                server,
                verb: self.verb,
                baseline,
            });
            Ok(held)
        })
    }
}

/// A server fault in force.
struct HeldServer {
    server: Server,
    verb: Verb,
    baseline: u64,
}

impl Held for HeldServer {
    /// Latency: chunks delayed at the proxy; partition: chunks or connection attempts
    /// held; pause and kill: the signal was delivered (applying returned only then).
    fn counted_strikes(&self) -> Option<u64> {
        match self.verb {
            Verb::Latency | Verb::Partition => Some(
                self.server
                    .get()
                    .proxy()
                    .hits()
                    .saturating_sub(self.baseline),
            ),
            Verb::Pause | Verb::Kill => Some(1),
        }
    }

    fn heal_now(&mut self) {
        match self.verb {
            Verb::Kill => {
                let _ = self.server.get().respawn_now();
            }
            _ => self.server.heal_now(),
        }
    }

    fn heal(&mut self) -> BoxFuture<'_, Result<(), NodeError>> {
        Box::pin(async move {
            match self.verb {
                Verb::Kill => self.server.get().restart().await,
                _ => {
                    self.heal_now();
                    Ok(())
                }
            }
        })
    }
}
