//! The nemesis: decides a schedule of fault windows (a pure value, [`Schedule::plan`]),
//! then follows it against the cluster, logging each fault's start and stop in the history.
//!
//! Each fault is held in an [`ActiveFault`] guard: healing it is awaited at the window's
//! end, and dropping it unhealed (an error, a panic, a cancelled task) still heals it, so
//! no pause or partition outlives the run.

mod active;
pub mod faults;
mod schedule;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::{OpType, OpValue, Process, F};
use serde_json::json;
use tokio::sync::watch;
use workloads::{ClientPause, RunClock};

pub use active::{ActiveFault, FaultParams};
pub use faults::slow_writes::SlowSql;
pub use faults::{kind, target};
pub use schedule::{time_needed, Schedule, ScheduleConfig, Window};
pub use workloads::Fault;

use crate::nodes::{Backend, Cluster, NodeError, ServerKind};
use crate::store::recorder::Recorder;
use crate::sut::service::Replicas;

/// Why the nemesis could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NemesisError {
    /// Applying or healing a fault failed (or the backend cannot do it).
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Refuses, before anything starts, faults the backend cannot inject (pause and kill need
/// a backend that owns the processes; see [`faults::check`]).
pub fn check_backend(faults: &[Fault], backend: &Backend) -> Result<(), NemesisError> {
    let setting = faults::Setting {
        owns_servers: Some(backend.owns_processes()),
        ..faults::Setting::default()
    };
    faults::check(faults, &setting).map_err(|r| NemesisError::Node(r.into()))
}

/// What the nemesis is doing now, readable from elsewhere (the progress bar).
#[derive(Debug, Clone, Default)]
pub struct NemesisStatus(Arc<Mutex<Option<Fault>>>);

impl NemesisStatus {
    /// The fault active now, if any.
    pub fn current(&self) -> Option<Fault> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, fault: Option<Fault>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }
}

/// Follows a schedule against a cluster and logs every fault in the history.
pub struct Nemesis {
    schedule: Schedule,
    params: FaultParams,
    cluster: Arc<Cluster>,
    client_pause: ClientPause,
    recorder: Arc<Recorder>,
    status: NemesisStatus,
    /// The service's replicas, in service mode (`pause-service`, `kill-service`).
    service: Option<Arc<Replicas>>,
}

impl Nemesis {
    /// A nemesis for one run; nothing happens until [`Nemesis::run`].
    pub fn new(
        schedule: Schedule,
        params: FaultParams,
        cluster: Arc<Cluster>,
        client_pause: ClientPause,
        recorder: Arc<Recorder>,
    ) -> Nemesis {
        Nemesis {
            schedule,
            params,
            cluster,
            client_pause,
            recorder,
            status: NemesisStatus::default(),
            service: None,
        }
    }

    /// Gives the nemesis the service's replicas to pause and kill (service mode).
    pub fn with_service(mut self, service: Option<Arc<Replicas>>) -> Nemesis {
        self.service = service;
        self
    }

    /// A handle on the active fault, to read while the nemesis runs.
    pub fn status(&self) -> NemesisStatus {
        self.status.clone()
    }

    /// Follows the schedule (times relative to the recorder's clock) until it is done or
    /// `stop` turns true, then heals everything. Each fault is logged as an `invoke` then an
    /// `info` of `start-<fault>` around applying it, and the same for `stop-<fault>`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), NemesisError> {
        // Refuse before the first window rather than fail in the middle of the run.
        for fault in self.schedule.faults() {
            let setting = faults::Setting {
                owns_servers: faults::Setting::of_cluster(&self.cluster, fault, false).owns_servers,
                ..faults::Setting::default()
            };
            faults::check(&[fault], &setting).map_err(|r| NemesisError::Node(r.into()))?;
        }
        let clock = self.recorder.clock();
        let mut result = Ok(());
        for window in &self.schedule.windows {
            if wait_until(clock, window.start, &mut stop).await {
                break;
            }
            let stopped = match self.window(window, clock, &mut stop).await {
                Ok(stopped) => stopped,
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            };
            if stopped {
                break;
            }
        }
        self.status.set(None);
        self.cluster.heal_all();
        self.client_pause.heal();
        if let Some(service) = &self.service {
            service.resume(crate::sut::service::FAULTED_REPLICA);
        }
        result
    }

    /// Runs one window; true when the run was stopped during it.
    async fn window(
        &self,
        window: &Window,
        clock: RunClock,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, NodeError> {
        let fault = window.fault;
        // The lock-service node the fault hits, resolved once (under Sentinel by asking
        // the sentinels): the window's start event names the node the fault then hits,
        // even if the primary changes in between.
        let node = self.cluster.fault_node(self.params.fault_node).await;
        let params = FaultParams {
            fault_node: Some(node),
            ..self.params.clone()
        };
        let kind = faults::kind(fault);
        let mut detail = kind.detail(&params);
        if let Some(obj) = detail.as_object_mut() {
            obj.insert(
                "planned_ms".into(),
                json!((window.stop - window.start).as_millis() as u64),
            );
            if let Some(kind) = target(fault) {
                obj.insert("target".into(), json!(kind.to_string()));
            }
            if target(fault) == Some(ServerKind::Redis) {
                // Which node of the topology it hits, for the report.
                obj.insert(
                    "lock_service".into(),
                    json!(self.cluster.topology.service().name()),
                );
                obj.insert("node".into(), json!(node));
                if let Some(n) = self.cluster.lock_node(node) {
                    obj.insert("node_addr".into(), json!(n.direct_addr().to_string()));
                }
            }
            if let (true, Some(service)) = (fault.needs_service(), &self.service) {
                let i = crate::sut::service::FAULTED_REPLICA;
                obj.insert("target".into(), json!("service"));
                obj.insert("replica".into(), json!(i));
                obj.insert("addr".into(), json!(service.addr(i).to_string()));
                obj.insert("pgid".into(), json!(service.pid(i)));
            }
        }
        let start = F::from(format!("start-{fault}").as_str());
        let value = OpValue {
            detail: Some(detail),
            ..OpValue::default()
        };
        self.log(OpType::Invoke, &start, value.clone(), None);
        let mut guard = match ActiveFault::apply_to(
            fault,
            &params,
            &self.cluster,
            &self.client_pause,
            self.service.as_ref(),
        )
        .await
        {
            Ok(guard) => guard,
            Err(e) => {
                self.log(OpType::Info, &start, value, Some(e.to_string()));
                return Err(e);
            }
        };
        self.log(OpType::Info, &start, value, None);
        self.status.set(Some(fault));

        // Until the window ends, every message an aimed fault acts on is logged as it
        // happens, so its event sits among the ops it delayed or cut.
        let fire = F::from(format!("fire-{fault}").as_str());
        // The firings that are this fault's strikes (see `FaultKind::firings_strike`).
        let mut fired = 0u64;
        let stopped = loop {
            tokio::select! {
                stopped = wait_until(clock, window.stop, stop) => break stopped,
                Some(firing) = guard.next_firing() => {
                    fired += u64::from(kind.firings_strike());
                    self.log_firing(&fire, &firing);
                    // The faults that strike right after a grant do it now.
                    match guard.strike(&firing).await {
                        Ok(Some(struck)) => self.log_firing(&fire, &struck),
                        Ok(None) => {}
                        Err(e) => {
                            let value = OpValue::default();
                            self.log(OpType::Info, &fire, value, Some(e.to_string()));
                        }
                    }
                }
            }
        };

        let end = F::from(format!("stop-{fault}").as_str());
        self.log(OpType::Invoke, &end, OpValue::default(), None);
        let dropped = guard.firings_dropped();
        // Read before the heal: a kill's restart or a proxy's heal is no strike.
        let counted = guard.counted_strikes();
        let healed = guard.heal_keeping_firings().await;
        // Messages acted on just before the heal.
        if let Ok(firings) = &healed {
            for firing in firings {
                fired += u64::from(kind.firings_strike());
                self.log_firing(&fire, firing);
            }
        }
        self.status.set(None);
        // Firings the nemesis could not take in time were acted on all the same.
        let struck = counted.unwrap_or(fired + dropped);
        let mut detail = json!({"struck": struck, "unit": kind.strike_unit()});
        if dropped > 0 {
            detail["firings_not_logged"] = json!(dropped);
        }
        let value = OpValue {
            detail: Some(detail),
            ..OpValue::default()
        };
        self.log(
            OpType::Info,
            &end,
            value,
            healed.as_ref().err().map(|e| e.to_string()),
        );
        healed.map(|_| stopped)
    }

    /// Logs one message an aimed fault acted on: a lone `info` of `fire-<fault>` whose
    /// `value.detail` names what was hit (see docs/history.md).
    fn log_firing(&self, f: &F, firing: &crate::nodes::aim::Firing) {
        let value = OpValue {
            detail: Some(json!(firing)),
            ..OpValue::default()
        };
        self.log(OpType::Info, f, value, None);
    }

    fn log(&self, kind: OpType, f: &F, value: OpValue, error: Option<String>) {
        self.recorder
            .record(Process::Nemesis, kind, f.clone(), value, error);
    }
}

/// Sleeps until `at` on the run clock; true if `stop` turned true first.
async fn wait_until(clock: RunClock, at: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let sleep = tokio::time::sleep(at.saturating_sub(clock.elapsed()));
    tokio::pin!(sleep);
    loop {
        if *stop.borrow_and_update() {
            return true;
        }
        tokio::select! {
            _ = &mut sleep => return *stop.borrow(),
            changed = stop.changed() => {
                if changed.is_err() {
                    // Nobody can stop us any more: follow the schedule to its end.
                    (&mut sleep).await;
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_backends_refuse_process_faults_up_front() {
        let ext = Backend::External {
            redis_url: String::new(),
            postgres_url: String::new(),
        };
        let err = check_backend(&[Fault::DbLatency, Fault::PauseDb], &ext).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pause-db needs a backend that owns the server; --backend external does not"
        );
        assert!(check_backend(&[Fault::PartitionDb, Fault::ClientPause], &ext).is_ok());
        assert!(check_backend(&[Fault::KillRedis], &Backend::Local).is_ok());
        // The jump cuts every key's TTL: never on a server with someone else's keys.
        let err = check_backend(&[Fault::ClockJumpRedis], &ext).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("clock-jump-redis needs a backend that owns"));
        assert!(check_backend(&[Fault::ClockJumpRedis], &Backend::Local).is_ok());
    }
}
