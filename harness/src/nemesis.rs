//! The nemesis: decides a schedule of fault windows (a pure value, [`Schedule::plan`]),
//! then follows it against the cluster, logging each fault's start and stop in the history.
//!
//! Each fault is held in an [`ActiveFault`] guard: healing it is awaited at the window's
//! end, and dropping it unhealed (an error, a panic, a cancelled task) still heals it, so
//! no pause or partition outlives the run.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::{OpType, OpValue, Process, F};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::watch;
use workloads::{ClientPause, RunClock};

use crate::node::{Backend, Cluster, NodeError, ServerHandle, ServerKind};
use crate::proxy::ProxyFaults;
use crate::recorder::Recorder;

/// A fault the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// No fault: the control run.
    None,
    /// Every Postgres round trip takes longer (proxy latency): the slow write of the story.
    DbLatency,
    /// Every Redis round trip takes longer.
    RedisLatency,
    /// Postgres is SIGSTOPped: it holds its connections and locks but answers nothing.
    PauseDb,
    /// Redis is SIGSTOPped.
    PauseRedis,
    /// Postgres is `kill -9`ed, and restarted at the window's end.
    KillDb,
    /// Redis is `kill -9`ed (losing every lease unless it runs with AOF), then restarted.
    KillRedis,
    /// The clients cannot reach Postgres (proxy blackhole).
    PartitionDb,
    /// The clients cannot reach Redis.
    PartitionRedis,
    /// Clients stop between taking the lease and writing (a GC pause).
    ClientPause,
}

impl Fault {
    /// Every fault, `none` first.
    pub fn all() -> &'static [Fault] {
        &[
            Fault::None,
            Fault::DbLatency,
            Fault::RedisLatency,
            Fault::PauseDb,
            Fault::PauseRedis,
            Fault::KillDb,
            Fault::KillRedis,
            Fault::PartitionDb,
            Fault::PartitionRedis,
            Fault::ClientPause,
        ]
    }

    /// The kebab-case name used on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::DbLatency => "db-latency",
            Fault::RedisLatency => "redis-latency",
            Fault::PauseDb => "pause-db",
            Fault::PauseRedis => "pause-redis",
            Fault::KillDb => "kill-db",
            Fault::KillRedis => "kill-redis",
            Fault::PartitionDb => "partition-db",
            Fault::PartitionRedis => "partition-redis",
            Fault::ClientPause => "client-pause",
        }
    }

    /// The server the fault hits, if it hits one.
    pub fn target(self) -> Option<ServerKind> {
        match self {
            Fault::DbLatency | Fault::PauseDb | Fault::KillDb | Fault::PartitionDb => {
                Some(ServerKind::Postgres)
            }
            Fault::RedisLatency | Fault::PauseRedis | Fault::KillRedis | Fault::PartitionRedis => {
                Some(ServerKind::Redis)
            }
            Fault::None | Fault::ClientPause => None,
        }
    }

    /// Whether the fault signals the server process (so needs a backend that owns it).
    pub fn needs_process(self) -> bool {
        matches!(
            self,
            Fault::PauseDb | Fault::PauseRedis | Fault::KillDb | Fault::KillRedis
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = NemesisError;

    fn from_str(s: &str) -> Result<Fault, NemesisError> {
        Fault::all()
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| NemesisError::UnknownFault {
                name: s.to_string(),
            })
    }
}

/// Why the nemesis could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NemesisError {
    /// A fault name that does not exist.
    #[error("unknown fault {name:?}; known: none, db-latency, redis-latency, pause-db, pause-redis, kill-db, kill-redis, partition-db, partition-redis, client-pause")]
    UnknownFault {
        /// The name given.
        name: String,
    },
    /// Applying or healing a fault failed (or the backend cannot do it).
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Refuses, before anything starts, faults the backend cannot inject (pause and kill need
/// a backend that owns the processes).
pub fn check_backend(faults: &[Fault], backend: &Backend) -> Result<(), NemesisError> {
    if backend.owns_processes() {
        return Ok(());
    }
    match faults.iter().find(|f| f.needs_process()) {
        Some(f) => Err(NodeError::Unsupported {
            action: f.name().to_string(),
        }
        .into()),
        None => Ok(()),
    }
}

/// What the schedule is planned from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// The faults to draw from (`none` entries are ignored).
    pub faults: Vec<Fault>,
    /// The run's length: every window ends by then.
    pub time_limit: Duration,
    /// A fault window's typical length (each is drawn from 75%..125% of it).
    pub fault_for: Duration,
    /// A healthy gap's typical length; the first gap is exactly this long.
    pub heal_for: Duration,
    /// The run's seed.
    pub seed: u64,
}

/// One fault window, relative to the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The fault active in the window.
    pub fault: Fault,
    /// When it starts.
    pub start: Duration,
    /// When it is healed.
    pub stop: Duration,
}

/// The fault windows of a run, in order, never overlapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    /// The windows, sorted by start.
    pub windows: Vec<Window>,
}

/// Keeps nemesis draws apart from the generator's, which uses the same run seed.
const SEED_SALT: u64 = 0x6e65_6d65_7369_7321;

impl Schedule {
    /// Plans the windows: healthy for `heal_for`, then alternating fault and healthy
    /// periods of randomised length, each fault drawn from `faults`, all deterministic for
    /// a seed. A window that would be cut to less than half its length by the time limit
    /// is dropped.
    pub fn plan(cfg: &ScheduleConfig) -> Schedule {
        let faults: Vec<Fault> = cfg
            .faults
            .iter()
            .copied()
            .filter(|f| *f != Fault::None)
            .collect();
        let mut windows = Vec::new();
        if faults.is_empty() || cfg.fault_for.is_zero() {
            return Schedule { windows };
        }
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ SEED_SALT);
        let spread = |d: Duration, rng: &mut StdRng| {
            let ms = d.as_millis() as u64;
            Duration::from_millis(rng.random_range(ms * 3 / 4..=ms * 5 / 4))
        };
        let mut t = cfg.heal_for;
        loop {
            let fault = faults[rng.random_range(0..faults.len())];
            let length = spread(cfg.fault_for, &mut rng);
            let stop = (t + length).min(cfg.time_limit);
            if stop <= t || stop - t < length / 2 {
                break;
            }
            windows.push(Window {
                fault,
                start: t,
                stop,
            });
            t = stop + spread(cfg.heal_for, &mut rng);
        }
        Schedule { windows }
    }

    /// The distinct faults the schedule uses.
    pub fn faults(&self) -> BTreeSet<Fault> {
        self.windows.iter().map(|w| w.fault).collect()
    }
}

/// How hard each fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultParams {
    /// Added to every Postgres round trip during `db-latency`.
    pub db_latency: Duration,
    /// Added to every Redis round trip during `redis-latency`.
    pub redis_latency: Duration,
    /// Extra random delay, up to this percentage of the latency.
    pub jitter_pct: u32,
    /// How long a client stops at its pause point during `client-pause`.
    pub client_pause: Duration,
}

impl Default for FaultParams {
    /// The scaled story: a 500 ms lease against 600 ms of injected delay.
    fn default() -> FaultParams {
        FaultParams {
            db_latency: Duration::from_millis(600),
            redis_latency: Duration::from_millis(600),
            jitter_pct: 10,
            client_pause: Duration::from_millis(600),
        }
    }
}

impl FaultParams {
    fn jitter(&self, latency: Duration) -> Duration {
        latency * self.jitter_pct / 100
    }

    /// The parameters logged with a fault's start, as the op's `value.detail`.
    pub fn detail(&self, fault: Fault) -> serde_json::Value {
        let ms = |d: Duration| d.as_millis() as u64;
        match fault {
            Fault::DbLatency => json!({
                "latency_ms": ms(self.db_latency),
                "jitter_ms": ms(self.jitter(self.db_latency)),
            }),
            Fault::RedisLatency => json!({
                "latency_ms": ms(self.redis_latency),
                "jitter_ms": ms(self.jitter(self.redis_latency)),
            }),
            Fault::PauseDb | Fault::PauseRedis => json!({"signal": "SIGSTOP"}),
            Fault::KillDb | Fault::KillRedis => json!({"signal": "SIGKILL"}),
            Fault::PartitionDb | Fault::PartitionRedis => json!({"blackhole": true}),
            Fault::ClientPause => json!({"pause_ms": ms(self.client_pause)}),
            Fault::None => json!({}),
        }
    }
}

/// A fault in force. Heal it with [`ActiveFault::heal`]; dropping it heals what can be
/// healed without waiting (a killed server is respawned, not waited for).
#[must_use = "dropping an ActiveFault heals it at once"]
pub struct ActiveFault {
    fault: Fault,
    cluster: Arc<Cluster>,
    client_pause: ClientPause,
    healed: bool,
}

impl fmt::Debug for ActiveFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveFault")
            .field("fault", &self.fault)
            .field("healed", &self.healed)
            .finish()
    }
}

fn node(cluster: &Cluster, kind: ServerKind) -> &ServerHandle {
    match kind {
        ServerKind::Redis => &cluster.redis,
        ServerKind::Postgres => &cluster.postgres,
    }
}

impl ActiveFault {
    /// Injects `fault` now.
    pub async fn apply(
        fault: Fault,
        params: &FaultParams,
        cluster: &Arc<Cluster>,
        client_pause: &ClientPause,
    ) -> Result<ActiveFault, NodeError> {
        if fault.needs_process() {
            if let Some(kind) = fault.target() {
                if !node(cluster, kind).owns_process() {
                    return Err(NodeError::Unsupported {
                        action: fault.name().to_string(),
                    });
                }
            }
        }
        let guard = ActiveFault {
            fault,
            cluster: cluster.clone(),
            client_pause: client_pause.clone(),
            healed: false,
        };
        match fault {
            Fault::None => {}
            Fault::DbLatency => cluster.postgres.proxy().set(ProxyFaults::latency(
                params.db_latency,
                params.jitter(params.db_latency),
            )),
            Fault::RedisLatency => cluster.redis.proxy().set(ProxyFaults::latency(
                params.redis_latency,
                params.jitter(params.redis_latency),
            )),
            Fault::PauseDb => cluster.postgres.pause().await?,
            Fault::PauseRedis => cluster.redis.pause().await?,
            Fault::KillDb => cluster.postgres.kill().await?,
            Fault::KillRedis => cluster.redis.kill().await?,
            Fault::PartitionDb => cluster.postgres.proxy().set(ProxyFaults::partition()),
            Fault::PartitionRedis => cluster.redis.proxy().set(ProxyFaults::partition()),
            Fault::ClientPause => client_pause.activate(params.client_pause),
        }
        Ok(guard)
    }

    /// The fault held.
    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// Ends the fault; for a kill, restarts the server and waits until it is ready.
    pub async fn heal(mut self) -> Result<(), NodeError> {
        self.healed = true;
        match self.fault {
            Fault::KillDb => self.cluster.postgres.restart().await,
            Fault::KillRedis => self.cluster.redis.restart().await,
            _ => {
                self.heal_now();
                Ok(())
            }
        }
    }

    fn heal_now(&self) {
        match self.fault {
            Fault::None => {}
            Fault::ClientPause => self.client_pause.heal(),
            Fault::KillDb | Fault::KillRedis => {
                if let Some(kind) = self.fault.target() {
                    let _ = node(&self.cluster, kind).respawn_now();
                }
            }
            _ => {
                if let Some(kind) = self.fault.target() {
                    let n = node(&self.cluster, kind);
                    n.proxy().heal();
                    n.resume_now();
                }
            }
        }
    }
}

impl Drop for ActiveFault {
    fn drop(&mut self) {
        if !self.healed {
            self.heal_now();
        }
    }
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
        }
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
            if let (true, Some(kind)) = (fault.needs_process(), fault.target()) {
                if !node(&self.cluster, kind).owns_process() {
                    return Err(NodeError::Unsupported {
                        action: fault.name().to_string(),
                    }
                    .into());
                }
            }
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
        let mut detail = self.params.detail(fault);
        if let Some(obj) = detail.as_object_mut() {
            obj.insert(
                "planned_ms".into(),
                json!((window.stop - window.start).as_millis() as u64),
            );
            if let Some(kind) = fault.target() {
                obj.insert("target".into(), json!(kind.to_string()));
            }
        }
        let start = F::from(format!("start-{fault}").as_str());
        let value = OpValue {
            detail: Some(detail),
            ..OpValue::default()
        };
        self.log(OpType::Invoke, &start, value.clone(), None);
        let guard = match ActiveFault::apply(fault, &self.params, &self.cluster, &self.client_pause)
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

        let stopped = wait_until(clock, window.stop, stop).await;

        let end = F::from(format!("stop-{fault}").as_str());
        self.log(OpType::Invoke, &end, OpValue::default(), None);
        let healed = guard.heal().await;
        self.status.set(None);
        self.log(
            OpType::Info,
            &end,
            OpValue::default(),
            healed.as_ref().err().map(|e| e.to_string()),
        );
        healed.map(|()| stopped)
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

    fn cfg(faults: Vec<Fault>, seed: u64) -> ScheduleConfig {
        ScheduleConfig {
            faults,
            time_limit: Duration::from_secs(60),
            fault_for: Duration::from_secs(3),
            heal_for: Duration::from_secs(2),
            seed,
        }
    }

    #[test]
    fn fault_names_round_trip() {
        for f in Fault::all() {
            assert_eq!(f.name().parse::<Fault>().unwrap(), *f);
            assert_eq!(f.to_string(), f.name());
        }
        assert!("pause-everything".parse::<Fault>().is_err());
    }

    #[test]
    fn plan_is_deterministic_per_seed() {
        let all = Fault::all().to_vec();
        assert_eq!(
            Schedule::plan(&cfg(all.clone(), 7)),
            Schedule::plan(&cfg(all.clone(), 7))
        );
        assert_ne!(
            Schedule::plan(&cfg(all.clone(), 7)),
            Schedule::plan(&cfg(all, 8))
        );
    }

    #[test]
    fn windows_alternate_with_healthy_gaps_inside_the_time_limit() {
        let c = cfg(Fault::all().to_vec(), 42);
        let plan = Schedule::plan(&c);
        assert!(
            plan.windows.len() >= 8,
            "60 s of 3 s faults and 2 s gaps: {plan:?}"
        );
        assert_eq!(
            plan.windows[0].start, c.heal_for,
            "starts after a healthy period"
        );
        for w in &plan.windows {
            assert!(w.start < w.stop && w.stop <= c.time_limit);
            assert!(w.stop - w.start >= c.fault_for * 3 / 8);
            assert!(w.stop - w.start <= c.fault_for * 5 / 4);
            assert_ne!(w.fault, Fault::None);
        }
        for pair in plan.windows.windows(2) {
            let gap = pair[1].start - pair[0].stop;
            assert!(gap >= c.heal_for * 3 / 4, "healthy gap {gap:?}");
        }
    }

    #[test]
    fn only_the_given_faults_are_planned() {
        let plan = Schedule::plan(&cfg(vec![Fault::KillDb, Fault::None], 1));
        assert_eq!(plan.faults(), BTreeSet::from([Fault::KillDb]));
        assert!(Schedule::plan(&cfg(vec![Fault::None], 1))
            .windows
            .is_empty());
        assert!(Schedule::plan(&cfg(vec![], 1)).windows.is_empty());
    }

    #[test]
    fn many_faults_are_all_drawn_eventually() {
        let mut c = cfg(Fault::all().to_vec(), 3);
        c.time_limit = Duration::from_secs(600);
        assert_eq!(Schedule::plan(&c).faults().len(), Fault::all().len() - 1);
    }

    #[test]
    fn a_short_run_gets_no_window_it_cannot_fit() {
        let mut c = cfg(vec![Fault::PauseDb], 1);
        c.time_limit = Duration::from_secs(2);
        assert!(Schedule::plan(&c).windows.is_empty());
    }

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
    }
}
