//! The run: composes nodes, the system under test, nemesis, generator, recorder and
//! checkers into one test run (Jepsen's `run!`).
//!
//! - [`spec`]: what the run was asked for: defaults, checks, the reproduce command.
//! - [`log`]: the run's own log file.
//! - `worker`: one simulated user slot, playing successive processes.
//!
//! Order matters for a trustworthy verdict: clients stop issuing at the time limit, the
//! nemesis heals every fault, in-flight ops finish (or time out as `info`), the cluster is
//! given a moment of quiet, and only then is the final read taken, straight from the
//! server, never through the fault proxy.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod log;
pub mod spec;
mod worker;

pub use checkers::checks::Conditions;

use checkers::{CheckOptions, History, OpType, OpValue, Process, Results, F};
use workloads::{ClientPause, Config, DesignName, Generator, GeneratorConfig, RunClock};

use crate::nemesis::{Fault, FaultParams, Nemesis, Schedule, ScheduleConfig};
use crate::nodes::{Backend, Cluster, NodeError, NodeOptions};
use crate::store::recorder::{Recorder, RecorderError};
use crate::store::{self, RunDir};
use crate::sut::service::ServiceSpec;
use crate::sut::{SutError, System};
use worker::Worker;

/// Everything a run needs to know; the CLI builds one, the matrix builds many.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The design under test.
    pub design: DesignName,
    /// Faults the nemesis may inject (`none` for a clean run).
    pub faults: Vec<Fault>,
    /// How long clients issue requests.
    pub time_limit: Duration,
    /// Concurrent simulated users.
    pub concurrency: usize,
    /// Rooms in the hotel (a hot subset gets most requests).
    pub rooms: u64,
    /// Days in the booking window.
    pub window_days: u32,
    /// Fixes every random choice of the generator and nemesis.
    pub seed: u64,
    /// The Redis lease length.
    pub lock_ttl: Duration,
    /// Latency added to each database round trip during `db-latency`.
    pub db_latency: Duration,
    /// Latency added to each Redis round trip during `redis-latency`.
    pub redis_latency: Duration,
    /// How long a `client-pause` stops a client between lock and write.
    pub client_pause: Duration,
    /// Statements `slow-writes` holds besides the writes (`--slow-sql`).
    pub slow_sql: Option<crate::nemesis::SlowSql>,
    /// Nominal length of a fault window, and of the healthy gap between windows.
    pub fault_for: Duration,
    /// Nominal length of the healthy gaps.
    pub heal_for: Duration,
    /// Every op's deadline; a timeout completes it as `info`.
    pub op_timeout: Duration,
    /// Share of requests that cancel an earlier confirmed booking.
    pub cancel_ratio: f64,
    /// Share of bookings the generator aims at nights it has not seen booked, so users
    /// keep racing for free nights instead of hitting full rooms
    /// ([`workloads::generator::AIM_AT_FREE`] by default).
    pub aim_at_free: f64,
    /// Total requests per second across clients (None: as fast as they go).
    pub rate: Option<f64>,
    /// Retry a timed-out booking from a fresh process with the same request key.
    pub retry: bool,
    /// Store request keys so a retry returns the original outcome.
    pub idempotency: bool,
    /// Where the servers come from.
    pub backend: Backend,
    /// Store root.
    pub store: PathBuf,
    /// Keep server data directories after the run.
    pub keep: bool,
    /// The run directory readable by other local users (`--share`); private otherwise.
    pub share: bool,
    /// Redis with AOF persistence (a restart keeps locks).
    pub redis_aof: bool,
    /// Count lock-exclusion findings towards the verdict.
    pub strict_lock: bool,
    /// lease-margin's warning fraction (`--margin-warn`).
    pub margin_warn: checkers::WarnFraction,
    /// The command line that reproduces this run, for the report.
    pub command: String,
    /// Show a progress bar.
    pub progress: bool,
    /// Test the user's own service instead of `design` (`--service`).
    pub service: Option<ServiceSpec>,
    /// Where the leases come from: one Redis, Sentinel, or Redlock (`--lock-service`).
    pub lock_service: workloads::LockService,
    /// The lock-service node that Redis faults hit (`--fault-node`); `None`: node 0, or
    /// the current primary under Sentinel.
    pub fault_node: Option<usize>,
    /// What guards the invariant in a service under test (`--guard`; the built-in designs
    /// declare their own): `database` unless said otherwise.
    pub guard: Option<checkers::Guard>,
}

impl RunConfig {
    /// The command line's defaults for `design` under `faults` (the story at 1:10 scale,
    /// the values left out fitted to the faults: [`spec::fit`]).
    pub fn new(design: DesignName, faults: Vec<Fault>, seed: u64) -> RunConfig {
        spec::RunSpec::defaults_for(design, faults, seed)
    }

    /// How hard each fault hits in this run.
    pub fn fault_params(&self) -> FaultParams {
        FaultParams {
            db_latency: self.db_latency,
            redis_latency: self.redis_latency,
            jitter_pct: spec::defaults::JITTER_PCT,
            client_pause: self.client_pause,
            lock_ttl: self.lock_ttl,
            slow_sql: self.slow_sql.clone(),
            fault_node: self.fault_node,
        }
    }

    /// What guards the invariant in what the run tests: the design's declaration, or
    /// in service mode `--guard` (the database unless said otherwise).
    pub fn guard(&self) -> checkers::Guard {
        match &self.service {
            Some(_) => self.guard.unwrap_or(checkers::Guard::Database),
            None => self.design.guard(),
        }
    }

    /// The run header that opens the history: what the run asked for, so that its
    /// verdict is a function of the history alone.
    pub fn header(&self) -> checkers::RunHeader {
        let mut header = checkers::RunHeader {
            users: Some(self.concurrency as u64),
            faults: Some(
                self.faults
                    .iter()
                    .filter(|f| **f != Fault::None)
                    .map(|f| f.to_string())
                    .collect(),
            ),
            guard: Some(self.guard()),
            strict_lock: self.strict_lock,
            margin_warn: Some(self.margin_warn.get()),
            subject: Some(self.subject()),
            // Only a service can send notifications.
            notify_grace_ms: self
                .service
                .as_ref()
                .map(|_| crate::sut::service::NOTIFY_GRACE.as_millis() as u64),
            ..checkers::RunHeader::default()
        };
        // A mapped service's capacities and unit travel with the history.
        if let Some(api) = self.service.as_ref().and_then(|s| s.api.as_ref()) {
            api.mapping.annotate(&mut header);
        }
        header
    }

    /// What the run tests, for directory names and reports: the design's name, or
    /// `service` in service mode.
    pub fn subject(&self) -> String {
        match &self.service {
            Some(_) => "service".to_string(),
            None => self.design.to_string(),
        }
    }

    /// A run of a few seconds for test suites: time compressed further (300 ms lease,
    /// 400 ms latency, 1.5 s fault windows after a 0.5 s healthy start, 6 s in all, a
    /// 3-room hotel), quiet.
    pub fn quick(design: DesignName, faults: Vec<Fault>, seed: u64) -> RunConfig {
        RunConfig {
            time_limit: Duration::from_secs(6),
            rooms: 3,
            window_days: 30,
            lock_ttl: Duration::from_millis(300),
            db_latency: Duration::from_millis(400),
            redis_latency: Duration::from_millis(400),
            client_pause: Duration::from_millis(700),
            fault_for: Duration::from_millis(1500),
            heal_for: Duration::from_millis(500),
            op_timeout: Duration::from_secs(5),
            progress: false,
            ..RunConfig::new(design, faults, seed)
        }
    }
}

impl RunConfig {
    /// The run's fault schedule: a pure function of the faults, their timings and the
    /// seed, so checking that it fits and running it see the same windows.
    pub fn schedule(&self) -> Schedule {
        Schedule::plan(&ScheduleConfig {
            faults: self.faults.clone(),
            time_limit: self.time_limit,
            fault_for: self.fault_for,
            heal_for: self.heal_for,
            seed: self.seed,
        })
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run's directory (history, results, report, logs).
    pub dir: RunDir,
    /// The checkers' verdict.
    pub results: Results,
    /// Ops recorded, nemesis and final read included.
    pub ops: usize,
    /// Wall time of the whole run, server start to report.
    pub wall: Duration,
    /// Time spent outside the test proper: server start, schema setup, final read, checks.
    pub overhead: Duration,
    /// What the system under test adds to the summary (a service: command, replicas,
    /// malformed answers, log tails), by label.
    pub notes: std::collections::BTreeMap<String, String>,
    /// What the run did (faults fired, bookings confirmed, sessions opened or not).
    pub conditions: Conditions,
    /// Stopped early by Ctrl-C: the verdict covers only the part that ran.
    pub interrupted: bool,
}

/// Why a run could not produce a verdict (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The store directory could not be created or written.
    #[error("store: {}: {source}", path.display())]
    Store {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A server could not be started or controlled.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The history could not be written.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    /// The system under test could not be set up.
    #[error(transparent)]
    System(#[from] SutError),
    /// The recorded history broke the format's rules: a harness bug.
    #[error("the recorded history is malformed (a harness bug): {0}")]
    History(#[from] checkers::ReadError),
}

/// Counters the progress bar reads while the run goes.
#[derive(Debug, Default)]
pub struct Progress {
    /// Ops completed.
    pub done: AtomicU64,
    /// Completed ok.
    pub ok: AtomicU64,
    /// Completed fail.
    pub fail: AtomicU64,
    /// Completed info.
    pub info: AtomicU64,
    /// Whether a client has failed to open a session yet (the first failure is logged
    /// as a warning; every one is an `open` op in the history).
    pub open_failed: AtomicBool,
}

/// Runs one test end to end and writes its store directory.
pub async fn run(cfg: &RunConfig) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let dir = create_run_dir(cfg)?;
    let cluster = Arc::new(
        Cluster::start(
            &cfg.backend,
            &NodeOptions {
                dir: dir.path.clone(),
                keep: cfg.keep,
                redis_aof: cfg.redis_aof,
                max_connections: crate::nodes::max_connections_for(cfg.concurrency),
                lock_service: cfg.lock_service,
            },
        )
        .await?,
    );
    let result = run_on(cfg, &dir, &cluster, started).await;
    // Whatever happened above, the servers go away (resumed first if paused).
    let shut = cluster.shutdown().await;
    let outcome = result?;
    shut?;
    Ok(outcome)
}

/// Runs one test against servers that are already up (benchmarks compare the harness
/// with other load generators on the very same servers). `cfg.backend` is ignored.
/// The run's schema is emptied first: each round starts from a fresh hotel.
pub async fn run_against(cfg: &RunConfig, cluster: &Arc<Cluster>) -> Result<RunOutcome, RunError> {
    cluster.recreate_schema().await?;
    let dir = create_run_dir(cfg)?;
    run_on(cfg, &dir, cluster, Instant::now()).await
}

fn create_run_dir(cfg: &RunConfig) -> Result<RunDir, RunError> {
    let test = format!(
        "{}-{}",
        cfg.subject(),
        cfg.faults
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("+")
    );
    let dir = RunDir::create(&cfg.store, &test, cfg.share).map_err(|source| RunError::Store {
        path: cfg.store.join(&test),
        source,
    })?;
    let log = dir.file(store::RUN_LOG);
    log::attach(&log).map_err(|source| RunError::Store { path: log, source })?;
    tracing::info!(dir = %dir.path.display(), seed = cfg.seed, "run starting");
    Ok(dir)
}

/// The run proper on servers that are up, staged as Jepsen's `run!`: the system, the
/// history, nemesis and generator, the clients until the time limit, heal, the final
/// read, check, store.
async fn run_on(
    cfg: &RunConfig,
    dir: &RunDir,
    cluster: &Arc<Cluster>,
    started: Instant,
) -> Result<RunOutcome, RunError> {
    let (system, pause, clock) = set_up_system(cfg, dir, cluster).await?;
    let recorder = open_history(cfg, dir, &system, clock)?;
    let test_started = Instant::now();
    let setup_overhead = started.elapsed();
    let nemesis = start_nemesis(cfg, cluster, &system, &pause, &recorder, clock);
    let clients = start_clients(cfg, &system, &recorder, nemesis.status.clone(), clock);
    let interrupted = wait_for_the_end(clients.deadline).await;
    clients.stopping.store(true, Ordering::SeqCst);
    // Heal before waiting for stragglers: with faults healed they finish promptly instead
    // of all running into their op timeout.
    nemesis.heal().await;
    let next_process = clients.next_process.clone();
    clients.drain(cfg, interrupted, clock).await;
    let test_time = test_started.elapsed();

    // Quiet: let leases run out and the servers settle before the final read.
    let final_started = Instant::now();
    tokio::time::sleep(cfg.lock_ttl.min(Duration::from_secs(1))).await;
    // Interrupted, the servers may be what the user wanted to stop: a few tries only.
    let attempts = if interrupted { 2 } else { 20 };
    final_read(system.as_ref(), &recorder, &next_process, attempts).await;
    // Only now: the final read may go through the system (a service's GET /bookings).
    system.shutdown().await;
    let notes = system.notes();
    recorder.finish()?;
    let ran = Ran {
        test_time,
        interrupted,
    };
    let mut outcome = check_and_store(cfg, dir, system.as_ref(), notes, ran)?;
    outcome.wall = started.elapsed();
    outcome.overhead = setup_overhead + final_started.elapsed();
    Ok(outcome)
}

/// The system under test, wired to the servers and set up (schema, replicas), with the
/// client-pause hook and the run's clock it shares with the nemesis and the recorder.
async fn set_up_system(
    cfg: &RunConfig,
    dir: &RunDir,
    cluster: &Arc<Cluster>,
) -> Result<(Arc<dyn System>, ClientPause, RunClock), RunError> {
    let pause = ClientPause::new();
    let clock = RunClock::start();
    let design_cfg = Config {
        lock_ttl: cfg.lock_ttl,
        idempotency: cfg.idempotency,
        pause: pause.clone(),
        clock,
        rooms: cfg.rooms,
        window_start: workloads::config::default_window_start(),
        window_days: cfg.window_days,
        lock_prefix: cluster.lock_prefix().to_string(),
    };
    let subject = match &cfg.service {
        Some(spec) => crate::sut::Subject::Service(spec),
        None => crate::sut::Subject::Design(cfg.design),
    };
    let limits = crate::sut::Limits {
        op_timeout: cfg.op_timeout,
        keep: cfg.keep,
    };
    let system = crate::sut::build(subject, limits, cluster, design_cfg, &dir.path)?;
    system.setup().await?;
    Ok((system, pause, clock))
}

/// The history file, opened by the run header (what the run asked for), with the system's
/// notifications recorded as they come.
fn open_history(
    cfg: &RunConfig,
    dir: &RunDir,
    system: &Arc<dyn System>,
    clock: RunClock,
) -> Result<Arc<Recorder>, RunError> {
    let recorder = Arc::new(Recorder::create(&dir.file(store::HISTORY), clock)?);
    recorder.record(
        Process::Nemesis,
        OpType::Info,
        F::from(checkers::header::RUN_HEADER),
        cfg.header().to_op().value,
        None,
    );
    system.record_notifications(recorder.clone());
    Ok(recorder)
}

/// The nemesis, running its schedule in a task until healed.
struct RunningNemesis {
    status: crate::nemesis::NemesisStatus,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), crate::nemesis::NemesisError>>,
}

impl RunningNemesis {
    /// Stops the schedule and waits until every fault in force is healed.
    async fn heal(self) {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("nemesis: {e}"),
            Err(e) => tracing::error!("nemesis task: {e}"),
        }
    }
}

/// Starts the nemesis on the run's schedule; windows count from the clients' start,
/// which is now: setup is done.
fn start_nemesis(
    cfg: &RunConfig,
    cluster: &Arc<Cluster>,
    system: &Arc<dyn System>,
    pause: &ClientPause,
    recorder: &Arc<Recorder>,
    clock: RunClock,
) -> RunningNemesis {
    let schedule = cfg.schedule().after(clock.elapsed());
    let nemesis = Nemesis::new(
        schedule,
        cfg.fault_params(),
        cluster.clone(),
        pause.clone(),
        recorder.clone(),
    )
    .with_service(system.replicas());
    let status = nemesis.status();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(nemesis.run(stop_rx));
    RunningNemesis { status, stop, task }
}

/// The simulated users at work, and how their progress is shown.
struct Clients {
    workers: Vec<tokio::task::JoinHandle<()>>,
    next_process: Arc<AtomicU64>,
    progress: Arc<Progress>,
    /// Set when clients must stop (time limit or Ctrl-C); the progress lines stop too.
    stopping: Arc<AtomicBool>,
    deadline: tokio::time::Instant,
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
}

/// The run's request generator. A mapped service (`--api`) books its own rooms, with
/// their capacities; without a `[cancel]` mapping its users never cancel.
fn generator(cfg: &RunConfig) -> Generator {
    let api = cfg.service.as_ref().and_then(|s| s.api.as_ref());
    Generator::new(GeneratorConfig {
        seed: cfg.seed,
        rooms: api.and_then(|a| a.mapping.rooms()).unwrap_or(cfg.rooms),
        hot_fraction: 0.2,
        window_start: workloads::config::default_window_start(),
        window_days: cfg.window_days,
        max_nights: 7,
        cancel_ratio: if api.is_some_and(|a| !a.mapping.can_cancel()) {
            0.0
        } else {
            cfg.cancel_ratio
        },
        aim_at_free: cfg.aim_at_free,
        capacity: api.map_or(1, |a| {
            u32::try_from(a.mapping.max_capacity()).unwrap_or(u32::MAX)
        }),
    })
}

/// Starts the generator and one worker per user. Each worker plays one user at a time;
/// a user whose op ended in `info` is retired (its outcome is unknown, so it may still be
/// acting) and a fresh process id takes its place, as in Jepsen.
fn start_clients(
    cfg: &RunConfig,
    system: &Arc<dyn System>,
    recorder: &Arc<Recorder>,
    nemesis: crate::nemesis::NemesisStatus,
    clock: RunClock,
) -> Clients {
    let generator = Arc::new(Mutex::new(generator(cfg)));
    let progress = Arc::new(Progress::default());
    let stopping = Arc::new(AtomicBool::new(false));
    // A terminal gets a live bar; anything else (a CI log) a line every few seconds.
    let lines = cfg.progress && !std::io::stderr().is_terminal();
    let bar = match (cfg.progress, std::io::stderr().is_terminal()) {
        (true, true) => Some(progress_bar(cfg, progress.clone(), nemesis, clock)),
        (true, false) => {
            let (p, s) = (progress.clone(), stopping.clone());
            tokio::spawn(progress_lines(cfg.time_limit, p, nemesis, clock, s));
            None
        }
        (false, _) => None,
    };
    let next_process = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + cfg.time_limit;
    let pace = cfg
        .rate
        .map(|r| Duration::from_secs_f64(cfg.concurrency as f64 / r.max(0.001)));
    let workers = (0..cfg.concurrency)
        .map(|user| {
            tokio::spawn(
                Worker {
                    user: user as u64,
                    op_timeout: cfg.op_timeout,
                    retry: cfg.retry,
                    system: system.clone(),
                    recorder: recorder.clone(),
                    generator: generator.clone(),
                    next_process: next_process.clone(),
                    progress: progress.clone(),
                    deadline,
                    stopping: stopping.clone(),
                    pace,
                }
                .run(),
            )
        })
        .collect();
    Clients {
        workers,
        next_process,
        progress,
        stopping,
        deadline,
        bar,
        lines,
    }
}

/// Waits for the time limit, or the first Ctrl-C (which ends the test early; what was
/// recorded is still checked and kept). Returns whether it was interrupted.
async fn wait_for_the_end(deadline: tokio::time::Instant) -> bool {
    let mut interrupt = crate::nodes::reaper::interrupted();
    let interrupted = tokio::select! {
        _ = tokio::time::sleep_until(deadline) => false,
        Ok(_) = interrupt.wait_for(|stop| *stop) => true,
    };
    if interrupted {
        tracing::warn!("interrupted: stopping clients early");
    }
    interrupted
}

impl Clients {
    /// Lets in-flight ops finish: each gets its op timeout (and a second), then is
    /// abandoned, its invocation left open in the history, which counts it as `info`. So
    /// a run ends near its time limit however many users are stuck. Interrupted: a
    /// moment only.
    async fn drain(self, cfg: &RunConfig, interrupted: bool, clock: RunClock) {
        let grace = if interrupted {
            Duration::from_secs(1)
        } else {
            cfg.op_timeout + Duration::from_secs(1)
        };
        let give_up = tokio::time::Instant::now() + grace;
        for mut w in self.workers {
            match tokio::time::timeout_at(give_up, &mut w).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("client worker: {e}"),
                Err(_) => {
                    w.abort();
                    tracing::warn!("client worker still busy {grace:?} after the end: abandoned");
                }
            }
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.lines {
            // The last line, whatever the period: a short run still shows its totals.
            let line = progress_line(cfg.time_limit, &self.progress, None, clock.elapsed());
            eprintln!("{line}");
        }
    }
}

/// How the test proper went, for the meta.
#[derive(Debug, Clone, Copy)]
struct Ran {
    /// From the clients' start to the last one's end.
    test_time: Duration,
    /// Stopped early by Ctrl-C.
    interrupted: bool,
}

/// Checks what was recorded and stores the verdict, meta, report and index: the verdict
/// is computed from the history file, exactly as `overbook check history.jsonl` computes
/// it. (`wall` and `overhead` are the caller's to fill in.)
fn check_and_store(
    cfg: &RunConfig,
    dir: &RunDir,
    system: &dyn System,
    notes: std::collections::BTreeMap<String, String>,
    ran: Ran,
) -> Result<RunOutcome, RunError> {
    let history = read_recorded(&dir.file(store::HISTORY))?;
    let results = checkers::check_all(&history, &CheckOptions::default());
    let conditions = Conditions::of(&history).unwrap_or_default();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.file(name);
        store::write_file(&path, bytes).map_err(|e| RunError::Store {
            path,
            source: e.source,
        })
    };
    write(
        store::RESULTS,
        &serde_json::to_vec_pretty(&results).expect("results serialise"),
    )?;
    let mut meta = run_meta(cfg, dir, ran.test_time);
    if cfg.service.is_some() {
        meta.design = system.name();
    }
    meta.params.extend(notes.clone());
    meta.interrupted = ran.interrupted;
    meta.params.insert(
        "sessions".to_string(),
        format!(
            "{} opened, {} failed to open",
            conditions.sessions, conditions.open_failures
        ),
    );
    write(
        store::META,
        &serde_json::to_vec_pretty(&meta).expect("meta serialises"),
    )?;
    store_report(cfg, dir, &history, &results, &meta);
    Ok(RunOutcome {
        dir: dir.clone(),
        results,
        ops: history.ops().len(),
        wall: Duration::ZERO,
        overhead: Duration::ZERO,
        notes,
        conditions,
        interrupted: ran.interrupted,
    })
}

/// The report and the store's bookkeeping: each only renders what is on disk now, so a
/// failure here (a full disk) must not cost the run its verdict, which is already there.
fn store_report(
    cfg: &RunConfig,
    dir: &RunDir,
    history: &History,
    results: &Results,
    meta: &reports::RunMeta,
) {
    if let Err(e) = store::write_file(
        dir.file(store::REPORT),
        reports::render_run(history, results, meta).as_bytes(),
    ) {
        store::warn(&e);
    }
    if let Err(e) = dir.mark_latest() {
        store::warn(&e);
    }
    if let Err(e) = crate::store::index::write_index(&cfg.store) {
        store::warn(&e);
    }
}

/// Reads back the history the recorder wrote, as `overbook check` would.
fn read_recorded(path: &std::path::Path) -> Result<History, RunError> {
    let file = std::fs::File::open(path).map_err(|source| RunError::Store {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(checkers::read_history(std::io::BufReader::new(file))?)
}

/// What the report says about how the run was made.
fn run_meta(cfg: &RunConfig, dir: &RunDir, test_time: Duration) -> reports::RunMeta {
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    let mut params = std::collections::BTreeMap::new();
    params.insert("lock-ttl".to_string(), ms(cfg.lock_ttl));
    params.insert(
        "lock-service".to_string(),
        format!("{} ({})", cfg.lock_service, cfg.lock_service.topology()),
    );
    if let Some(n) = cfg.fault_node {
        params.insert("fault-node".to_string(), n.to_string());
    }
    params.insert("db-latency".to_string(), ms(cfg.db_latency));
    params.insert("redis-latency".to_string(), ms(cfg.redis_latency));
    params.insert("client-pause".to_string(), ms(cfg.client_pause));
    params.insert("op-timeout".to_string(), ms(cfg.op_timeout));
    params.insert("concurrency".to_string(), cfg.concurrency.to_string());
    params.insert("rooms".to_string(), cfg.rooms.to_string());
    params.insert("retry".to_string(), cfg.retry.to_string());
    params.insert("idempotency".to_string(), cfg.idempotency.to_string());
    params.insert("strict-lock".to_string(), cfg.strict_lock.to_string());
    params.insert("margin-warn".to_string(), cfg.margin_warn.to_string());
    params.insert("backend".to_string(), cfg.backend.name().to_string());
    reports::RunMeta {
        design: cfg.design.to_string(),
        faults: cfg.faults.iter().map(|f| f.to_string()).collect(),
        seed: Some(cfg.seed),
        duration_ms: test_time.as_millis() as u64,
        command: cfg.command.clone(),
        // The words of the command this process just wrote (shell-quoted where needed),
        // so they split back exactly; a command that is not `overbook run` (a test's
        // placeholder) has none.
        argv: crate::run::spec::command::RunCommand::parse(&cfg.command)
            .map(|c| c.words().to_vec())
            .unwrap_or_default(),
        started_at: dir.stamp.clone(),
        params,
        interrupted: false,
    }
}

/// The final read, retried while a just-restarted server warms up. Recorded as an
/// ordinary `read` op so the checkers find it where the contract says.
async fn final_read(
    system: &dyn System,
    recorder: &Recorder,
    next_process: &AtomicU64,
    attempts: u32,
) {
    let process = Process::Client(next_process.fetch_add(1, Ordering::SeqCst));
    recorder.record(process, OpType::Invoke, F::Read, OpValue::default(), None);
    let mut last_err = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        match system.read_all().await {
            Ok(rows) => {
                let value = OpValue {
                    bookings: Some(rows),
                    ..OpValue::default()
                };
                recorder.record(process, OpType::Ok, F::Read, value, None);
                return;
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    tracing::error!("final read failed: {last_err}");
    recorder.record(
        process,
        OpType::Fail,
        F::Read,
        OpValue::default(),
        Some(last_err),
    );
}

/// How often a run not attached to a terminal prints a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One line of progress, for logs: time, ops, outcomes, the fault in force.
fn progress_line(limit: Duration, p: &Progress, fault: Option<Fault>, at: Duration) -> String {
    format!(
        "overbook: {:.0}s/{:.0}s ops {} ok {} fail {} info {} | {}",
        at.as_secs_f64(),
        limit.as_secs_f64(),
        p.done.load(Ordering::Relaxed),
        p.ok.load(Ordering::Relaxed),
        p.fail.load(Ordering::Relaxed),
        p.info.load(Ordering::Relaxed),
        fault.map_or_else(|| "healthy".to_string(), |f| f.to_string())
    )
}

/// Prints a progress line to stderr every [`PROGRESS_EVERY`] until the clients stop:
/// without it a CI log shows nothing until the run ends.
async fn progress_lines(
    limit: Duration,
    progress: Arc<Progress>,
    nemesis: crate::nemesis::NemesisStatus,
    clock: RunClock,
    stopping: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        eprintln!(
            "{}",
            progress_line(limit, &progress, nemesis.current(), clock.elapsed())
        );
    }
}

fn progress_bar(
    cfg: &RunConfig,
    progress: Arc<Progress>,
    nemesis: crate::nemesis::NemesisStatus,
    clock: RunClock,
) -> indicatif::ProgressBar {
    let total = cfg.time_limit.as_millis() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let b = bar.clone();
    tokio::spawn(async move {
        while !b.is_finished() {
            let fault = nemesis
                .current()
                .map(|f| f.to_string())
                .unwrap_or_else(|| "healthy".into());
            b.set_position((clock.elapsed().as_millis() as u64).min(total));
            b.set_message(format!(
                "ops {} ok {} fail {} info {} | {}",
                progress.done.load(Ordering::Relaxed),
                progress.ok.load(Ordering::Relaxed),
                progress.fail.load(Ordering::Relaxed),
                progress.info.load(Ordering::Relaxed),
                fault
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    bar
}
