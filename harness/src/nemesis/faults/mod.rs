//! Every fault as a module of its own (Jepsen's nemesis packages; turmoil's paired verbs):
//! each implements [`FaultKind`], whose `apply` returns a [`Held`] fault that the nemesis's
//! [`super::ActiveFault`] guard heals at the window's end, or at once if dropped.
//!
//! A fault is two files: its row in `workloads::fault` (name, doc, what it acts on and
//! needs, which designs it catches; the designs declare their expectations over it, so
//! it lives below the harness) and its module here: how it is applied, struck, healed
//! and logged, and the protocol [`Aim`](crate::nodes::aim::Aim) it sets on a proxy.
//! The registry below is generated from `workloads::each_fault!`, so it has no line to
//! add: a fault without its module, or a module without its fault, does not compile.
//!
//! What a fault needs of the run is checked here once ([`check`]), for the command line,
//! the matrix, the nemesis before its first window and each fault as it is applied.
//! `nodes/` keeps only the mechanisms faults use: the proxy and its protocol following,
//! the processes, the topology.

mod holder;
mod server;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use workloads::{ClientPause, Fault, LockService, Needs, Target};

use super::FaultParams;
use crate::nodes::aim::{Aim, Firing, Firings};
use crate::nodes::{Cluster, NodeError, ServerHandle, ServerKind};
use crate::sut::service::Replicas;

/// One kind of fault: what the nemesis needs to know of it and how to inject it.
///
/// Its name, doc, target and needs are its row in `workloads::fault`
/// ([`Fault::row`]); which designs it must catch is declared there too (the designs name
/// it in their own files, the row's `catches` adds every unfenced lease it takes).
pub trait FaultKind: Sync {
    /// The fault, whose row says its name, doc, target and needs.
    fn fault(&self) -> Fault;

    /// What it needs of the run beyond its row's [`Needs`].
    fn requires(&self) -> Requires {
        Requires::default()
    }

    /// The parameters logged with its start, as the op's `value.detail`.
    fn detail(&self, params: &FaultParams) -> Value;

    /// What one strike of it is, for the window's stop event and the reasons a run that
    /// was never struck gives.
    fn strike_unit(&self) -> &'static str;

    /// Whether it is aimed, and how its strikes are judged.
    fn aimed(&self) -> Aimed {
        Aimed::No
    }

    /// Whether it is aimed: the proxy follows the protocol and acts on single messages
    /// (a write, a COMMIT's answer, a lease grant, a renewal), logging each firing in the
    /// history as a `fire-<name>` event.
    fn is_aimed(&self) -> bool {
        self.aimed() != Aimed::No
    }

    /// Whether every firing is one of its strikes (the aimed faults judged by what they
    /// acted on), rather than strikes being counted by its [`Held::counted_strikes`].
    fn firings_strike(&self) -> bool {
        self.aimed() == Aimed::FiringsStrike
    }

    /// Injects it now on `on`.
    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>>;
}

/// Whether a fault is aimed (acts on single protocol messages through a proxy), and
/// what its strikes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aimed {
    /// Not aimed: its strikes are counted ([`Held::counted_strikes`]).
    No,
    /// Aimed, and every firing is a strike (what it held, swallowed or dropped).
    FiringsStrike,
    /// Aimed, but its firings only wait for the strike they lead to (a held INSERT
    /// waiting for a clock jump): strikes are counted.
    StrikesCounted,
}

/// A fault in force, as its module holds it: [`super::ActiveFault`] wraps it with the
/// firings and heals it (awaited, or at once on drop).
pub trait Held: Send {
    /// What it struck in its window so far, for faults judged by a counter rather than
    /// by their firings (`None` for those): a window that opened is not a strike.
    fn counted_strikes(&self) -> Option<u64>;

    /// Acts on a firing when the fault strikes inside a holder's critical section; once
    /// per window. Returns what it did, to log as a firing of its own.
    fn strike<'a>(
        &'a mut self,
        _firing: &'a Firing,
    ) -> BoxFuture<'a, Result<Option<Firing>, NodeError>> {
        Box::pin(async { Ok(None) })
    }

    /// Heals what can be healed without waiting (a killed server is respawned, not
    /// waited for): from a drop, and to lift an aim before the last firings are taken.
    fn heal_now(&mut self);

    /// Ends the fault; for a kill, restarts the server and waits until it is ready.
    fn heal(&mut self) -> BoxFuture<'_, Result<(), NodeError>> {
        self.heal_now();
        Box::pin(async { Ok(()) })
    }
}

/// What a fault needs of the run beyond its row's [`Needs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requires {
    /// It touches every key on its server (a clock jump), so never one someone else runs.
    pub owned_server: bool,
    /// The lock service it needs (a failover needs Sentinel's replica to promote).
    pub lock_service: Option<LockService>,
}

/// What a run offers the faults, as far as it is known where they are checked (`None`:
/// not known there, not checked).
#[derive(Debug, Clone, Copy, Default)]
pub struct Setting {
    /// Whether overbook owns the servers' processes (pause, kill, a clock jump).
    pub owns_servers: Option<bool>,
    /// Whether a service under test runs (`--service`).
    pub service: Option<bool>,
    /// The lock service.
    pub lock_service: Option<LockService>,
}

impl Setting {
    /// What a cluster offers `fault`: whether it owns the server the fault acts on.
    pub fn of_cluster(cluster: &Cluster, fault: Fault, service: bool) -> Setting {
        Setting {
            owns_servers: Some(target(fault).is_none_or(|k| cluster.node(k).owns_process())),
            service: Some(service),
            lock_service: Some(cluster.topology.service()),
        }
    }
}

/// Why a fault cannot run in a setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// It signals a server process, or touches keys that are not overbook's.
    #[error("{0} needs a backend that owns the server; --backend external does not")]
    NotOwned(Fault),
    /// It acts on a service under test and there is none.
    #[error("--fault {0} acts on a service under test: give one with --service CMD")]
    NoService(Fault),
    /// It stops a built-in design inside its own code, which a service does not have.
    #[error(
        "--fault {0} stops a built-in design at a point inside its own code, which a \
         service overbook did not write does not have; use pause-service (SIGSTOP of \
         one replica) for the same stop-the-world pause"
    )]
    NoClientHook(Fault),
    /// It needs another lock service.
    #[error("--fault {fault} needs --lock-service {wanted} (a replica to promote), not {has}")]
    LockService {
        /// The fault.
        fault: Fault,
        /// The lock service it needs.
        wanted: LockService,
        /// The one the run has.
        has: LockService,
    },
}

impl From<Refusal> for NodeError {
    fn from(r: Refusal) -> NodeError {
        match r {
            Refusal::NotOwned(f) => NodeError::Unsupported {
                action: f.name().to_string(),
            },
            other => NodeError::Refused(other.to_string()),
        }
    }
}

/// The first of `faults` the setting cannot take, and why: the one place what a fault
/// needs is checked.
pub fn check(faults: &[Fault], setting: &Setting) -> Result<(), Refusal> {
    faults.iter().try_for_each(|&f| check_one(f, setting))
}

fn check_one(fault: Fault, setting: &Setting) -> Result<(), Refusal> {
    let requires = kind(fault).requires();
    let owned = fault.needs() == Needs::ProcessControl || requires.owned_server;
    if owned && setting.owns_servers == Some(false) {
        return Err(Refusal::NotOwned(fault));
    }
    match (fault.needs(), setting.service) {
        (Needs::Service, Some(false)) => return Err(Refusal::NoService(fault)),
        (Needs::ClientHook, Some(true)) => return Err(Refusal::NoClientHook(fault)),
        _ => {}
    }
    match (requires.lock_service, setting.lock_service) {
        (Some(wanted), Some(has)) if wanted != has => {
            Err(Refusal::LockService { fault, wanted, has })
        }
        _ => Ok(()),
    }
}

/// The server a fault acts on, if it acts on one.
pub fn target(fault: Fault) -> Option<ServerKind> {
    match fault.acts_on() {
        Target::Postgres => Some(ServerKind::Postgres),
        Target::Redis => Some(ServerKind::Redis),
        Target::Nothing | Target::Clients | Target::Service => None,
    }
}

/// What a fault is applied to: the run's cluster, clients and service, and the
/// lock-service node resolved for this window.
pub struct Targets<'a> {
    /// How hard each fault hits.
    pub params: &'a FaultParams,
    /// The servers, through their proxies.
    pub cluster: &'a Arc<Cluster>,
    /// The built-in clients' pause point.
    pub client_pause: &'a ClientPause,
    /// The service's replicas, in service mode.
    pub service: Option<&'a Arc<Replicas>>,
    /// Where the proxies report what an aimed fault hit.
    pub firings: &'a Firings,
    /// The lock-service node Redis faults hit.
    pub node: usize,
}

impl Targets<'_> {
    /// The server `kind` as a fault holds it (for Redis: the node it hits).
    pub fn server(&self, kind: ServerKind) -> Server {
        Server {
            cluster: self.cluster.clone(),
            lock_node: (kind == ServerKind::Redis).then_some(self.node),
        }
    }

    /// The server the fault acts on (Postgres when it acts on no server).
    pub fn server_of(&self, fault: Fault) -> Server {
        self.server(target(fault).unwrap_or(ServerKind::Postgres))
    }

    /// Sets `aim` on `server`'s proxy, its firings reported to this window's queue.
    pub fn aim(
        &self,
        fault: Fault,
        server: &Server,
        aim: impl Aim + 'static,
    ) -> Result<(), NodeError> {
        server
            .get()
            .proxy()
            .aim(aim, self.firings)
            .map_err(|e| NodeError::Unsupported {
                action: format!("{fault}: {e}"),
            })
    }
}

impl Targets<'_> {
    /// The service's replicas, for `fault` on a service.
    pub fn replicas(&self, fault: Fault) -> Result<Arc<Replicas>, NodeError> {
        self.service
            .cloned()
            .ok_or_else(|| Refusal::NoService(fault).into())
    }
}

impl Targets<'_> {
    /// Sets `aim` on `server` for `fault`, which is held until its heal lifts it (and
    /// resumes the server, as every fault on one server does).
    pub fn aim_only(
        &self,
        fault: Fault,
        server: Server,
        aim: impl Aim + 'static,
    ) -> Result<Box<dyn Held>, NodeError> {
        self.aim(fault, &server, aim)?;
        Ok(Box::new(AimsHeld {
            servers: vec![server],
            resume: true,
        }))
    }
}

/// An aim set on proxies, in force: lifting it heals those proxies (and, for a fault on
/// one server, resumes it as every fault on a server does).
pub(super) struct AimsHeld {
    /// The servers whose proxies carry the aim.
    pub(super) servers: Vec<Server>,
    /// Whether healing also resumes (or respawns) the servers' processes.
    pub(super) resume: bool,
}

impl Held for AimsHeld {
    /// Judged by its firings.
    fn counted_strikes(&self) -> Option<u64> {
        None
    }

    fn heal_now(&mut self) {
        for s in &self.servers {
            if self.resume {
                s.heal_now();
            } else {
                s.get().proxy().heal();
            }
        }
    }
}

/// One server a held fault acts on: Postgres, or one node of the lock service.
#[derive(Clone)]
pub struct Server {
    cluster: Arc<Cluster>,
    lock_node: Option<usize>,
}

impl Server {
    /// Its handle.
    pub fn get(&self) -> &ServerHandle {
        match self.lock_node {
            None => &self.cluster.postgres,
            Some(i) => self.cluster.lock_node(i).unwrap_or(&self.cluster.redis),
        }
    }

    /// Lifts every fault on its proxy and resumes (or respawns) its process: what can
    /// be healed at once.
    pub fn heal_now(&self) {
        let n = self.get();
        n.proxy().heal();
        n.resume_now();
    }
}

macro_rules! registry {
    ($($variant:ident => $module:ident,)*) => {
        $(pub mod $module;)*

        /// The module of `fault`.
        pub fn kind(fault: Fault) -> &'static dyn FaultKind {
            match fault {
                $(Fault::$variant => &$module::KIND,)*
            }
        }
    };
}

workloads::each_fault!(registry);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_its_module() {
        for &f in Fault::all() {
            assert_eq!(kind(f).fault(), f);
        }
    }

    #[test]
    fn aimed_faults_act_through_the_proxy() {
        let aimed: Vec<&str> = Fault::all()
            .iter()
            .filter(|f| kind(**f).is_aimed())
            .map(|f| f.name())
            .collect();
        assert_eq!(
            aimed,
            [
                "slow-writes",
                "lost-commit-ack",
                "slow-lock-grant",
                "lost-renewal",
                "clock-jump-redis",
                "failover-redis"
            ]
        );
        // Every aimed fault watches through a proxy; failover-redis also kills the primary.
        for f in Fault::all().iter().filter(|f| kind(**f).is_aimed()) {
            let expected = match f {
                Fault::FailoverRedis => Needs::ProcessControl,
                _ => Needs::Proxy,
            };
            assert_eq!(f.row().needs, expected, "{f}");
        }
    }

    #[test]
    fn what_a_fault_needs_is_checked_once() {
        let external = Setting {
            owns_servers: Some(false),
            ..Setting::default()
        };
        let e = check(&[Fault::DbLatency, Fault::PauseDb], &external).unwrap_err();
        assert_eq!(e, Refusal::NotOwned(Fault::PauseDb));
        assert!(check(&[Fault::ClockJumpRedis], &external).is_err());
        let built_in = Setting {
            service: Some(false),
            lock_service: Some(LockService::Single),
            ..Setting::default()
        };
        assert_eq!(
            check(&[Fault::KillService], &built_in),
            Err(Refusal::NoService(Fault::KillService))
        );
        assert!(matches!(
            check(&[Fault::FailoverRedis], &built_in),
            Err(Refusal::LockService { .. })
        ));
        let service = Setting {
            service: Some(true),
            ..Setting::default()
        };
        assert_eq!(
            check(&[Fault::ClientPause], &service),
            Err(Refusal::NoClientHook(Fault::ClientPause))
        );
        // Nothing known, nothing refused.
        assert!(check(Fault::all(), &Setting::default()).is_ok());
    }
}
