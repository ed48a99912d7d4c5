//! A run's specification: what one `overbook run` was asked for, as typed values, with
//! the one home of every run default, every check of the values against each other, and
//! the round trip to the command line that reproduces the run.
//!
//! ripgrep splits its arguments in two: the flags as written (`LowArgs`) and what the
//! program runs with (`HiArgs`). Here the CLI's `RunArgs` (clap) only say which values
//! the user gave; a [`RunSpec`] holds them typed, every value the user left out at its
//! default or `None` (fitted to the faults by [`fit`]), and [`RunSpec::check`] turns it
//! into a [`Checked`] run: every value decided, every refusal made, without any I/O
//! (no Docker daemon is asked anything: [`RunSpec::resolve_backend`] does that, once,
//! when a run is really about to start). The CLI, the matrix's cells, shrinking's
//! candidates, `--repeat`, the benchmarks and `overbook up` all build a `RunSpec`, so a
//! new run option is this file plus its clap line.
//!
//! [`RunSpec::words`] spells a spec out as `overbook run` options; parsing those words
//! gives the same spec back, which is what lets a matrix cell or a shrinking candidate run
//! as a child process and a reproduce command replay a run exactly.

pub mod command;
pub mod fit;
mod words;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use checkers::{Guard, WarnFraction};
use workloads::{DesignName, LockService};

use crate::nemesis::SlowSql;
use crate::nemesis::{faults, time_needed, Fault, FaultParams};
use crate::nodes::{Backend, NodeError};
use crate::run::RunConfig;
use crate::sut::service::ServiceSpec;
pub use words::{shell_quote, EXTERNAL_POSTGRES_VAR, EXTERNAL_REDIS_VAR};

/// Why a run specification was refused: says which option and what to write instead.
/// Reported before anything starts (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

macro_rules! refuse {
    ($($t:tt)*) => { return Err(SpecError(format!($($t)*))) };
}

/// What the user expects of the verdict (`--expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The design must hold.
    Valid,
    /// The design must be caught (a canary).
    Invalid,
}

impl FromStr for Expect {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Expect, SpecError> {
        match s {
            "valid" => Ok(Expect::Valid),
            "invalid" => Ok(Expect::Invalid),
            other => Err(SpecError(format!(
                "--expect: {other:?} is neither valid nor invalid"
            ))),
        }
    }
}

/// Where the servers come from (`--backend`), before anything is asked of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Start them here from the installed binaries.
    Local,
    /// One container per server.
    Docker,
    /// Local when installed, else docker.
    Auto,
    /// Servers someone else runs (`--redis-url`, `--postgres-url`).
    External,
}

impl BackendKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Docker => "docker",
            BackendKind::Auto => "auto",
            BackendKind::External => "external",
        }
    }

    /// Whether overbook owns the servers' processes (pause and kill faults need that).
    pub fn owns_processes(self) -> bool {
        self != BackendKind::External
    }

    /// The kind a resolved backend is (never `auto`: what auto chose).
    pub fn of(backend: &Backend) -> BackendKind {
        match backend {
            Backend::Local => BackendKind::Local,
            Backend::Docker { .. } => BackendKind::Docker,
            Backend::External { .. } => BackendKind::External,
        }
    }
}

impl FromStr for BackendKind {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<BackendKind, SpecError> {
        Ok(match s {
            "local" => BackendKind::Local,
            "docker" => BackendKind::Docker,
            "auto" => BackendKind::Auto,
            "external" => BackendKind::External,
            other => {
                refuse!("unknown backend {other:?} (expected local, docker, auto or external)")
            }
        })
    }
}

/// The default lease and fault windows live in [`fit`] (they depend on the faults); the
/// rest of the run's defaults are here, once.
pub mod defaults {
    use std::time::Duration;
    /// `--design`: the story's design.
    pub const DESIGN: &str = "lock-only";
    /// `--fault`: holds only the writes for `--db-latency`, at every lock hand-over.
    pub const FAULT: &str = "slow-writes";
    /// `--time-limit`.
    pub const TIME_LIMIT: Duration = Duration::from_secs(20);
    /// `--concurrency`: several users queued on a hot room's lease.
    pub const CONCURRENCY: usize = 16;
    /// `--db-latency` and `--redis-latency`: longer than the default 500 ms lease.
    pub const LATENCY: Duration = Duration::from_millis(600);
    /// `--cancel-ratio`.
    pub const CANCEL_RATIO: f64 = 0.1;
    /// `--store`.
    pub const STORE: &str = "store";
    /// `--service-ready-timeout`: the contract's (docs/service.md).
    pub const SERVICE_READY: Duration = Duration::from_secs(30);
    /// `--replicas`.
    pub const REPLICAS: usize = 1;
    /// Injected latency's jitter, a percentage of it.
    pub const JITTER_PCT: u32 = 10;
}

/// The most replicas of a service a run starts: each is a process, a port and a share of
/// the users' connections; thousands end at "too many open files" mid-start.
pub const MAX_REPLICAS: usize = 64;
/// The most concurrent users a run may have: each holds a Postgres connection (the
/// server is started with room for twice as many, see `nodes::max_connections_for`), a
/// Redis connection and both sides of two proxied sockets, so the file-descriptor budget
/// of one process bounds it well before the servers do.
pub const MAX_CONCURRENCY: usize = 1000;
/// The most rooms: the inventory designs insert one row per room-night at setup.
pub const MAX_ROOMS: u64 = 100_000;
/// The longest booking window, in days: ten years from 2026-12-01 keeps every date the
/// history holds a valid calendar date for `check`.
pub const MAX_WINDOW_DAYS: u32 = 3650;
/// The most room-nights (inventory rows) a hotel may have.
pub const MAX_ROOM_NIGHTS: u64 = 10_000_000;

/// One run, as asked for. `None` means "left out": fitted to the faults ([`fit`]), or for
/// the seed, drawn at random by [`RunSpec::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// `--design` (unused in service mode).
    pub design: DesignName,
    /// `--fault`, each; duplicates are dropped by [`RunSpec::check`].
    pub faults: Vec<Fault>,
    /// `--time-limit`.
    pub time_limit: Duration,
    /// `--concurrency`.
    pub concurrency: usize,
    /// `--rooms`.
    pub rooms: Option<u64>,
    /// `--window-days`.
    pub window_days: Option<u32>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--lock-ttl`.
    pub lock_ttl: Option<Duration>,
    /// `--db-latency`.
    pub db_latency: Duration,
    /// `--redis-latency`.
    pub redis_latency: Duration,
    /// `--client-pause` (default: twice the lease).
    pub client_pause: Option<Duration>,
    /// `--slow-sql`.
    pub slow_sql: Option<SlowSql>,
    /// `--fault-for`.
    pub fault_for: Option<Duration>,
    /// `--heal-for`.
    pub heal_for: Option<Duration>,
    /// `--op-timeout`.
    pub op_timeout: Option<Duration>,
    /// `--cancel-ratio`.
    pub cancel_ratio: f64,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--retry`.
    pub retry: bool,
    /// `--idempotency`.
    pub idempotency: bool,
    /// `--backend`.
    pub backend: BackendKind,
    /// `--redis-url` (external).
    pub redis_url: Option<String>,
    /// `--postgres-url` (external).
    pub postgres_url: Option<String>,
    /// `--redis-image` (docker, auto).
    pub redis_image: Option<String>,
    /// `--postgres-image` (docker, auto).
    pub postgres_image: Option<String>,
    /// `--store`.
    pub store: PathBuf,
    /// `--keep`.
    pub keep: bool,
    /// `--share`.
    pub share: bool,
    /// `--redis-aof`.
    pub redis_aof: bool,
    /// `--strict-lock`.
    pub strict_lock: bool,
    /// `--margin-warn`.
    pub margin_warn: WarnFraction,
    /// Not `--quiet`.
    pub progress: bool,
    /// `--service` and its companions (`--replicas`, `--schema`, ...).
    pub service: Option<ServiceSpec>,
    /// `--lock-service`.
    pub lock_service: LockService,
    /// `--fault-node`.
    pub fault_node: Option<usize>,
    /// `--guard` (service mode).
    pub guard: Option<Guard>,
    /// `--expect`.
    pub expect: Option<Expect>,
    /// `--summary-md`: where the run appends its markdown summary (how it reports, not
    /// what it runs: not in [`RunSpec::words`]).
    pub summary_md: Option<PathBuf>,
}

impl Default for RunSpec {
    /// `overbook run` with no arguments: the story at 1:10 scale.
    fn default() -> RunSpec {
        RunSpec {
            design: defaults::DESIGN.parse().expect("the default design exists"),
            faults: vec![defaults::FAULT.parse().expect("the default fault exists")],
            time_limit: defaults::TIME_LIMIT,
            concurrency: defaults::CONCURRENCY,
            rooms: None,
            window_days: None,
            seed: None,
            lock_ttl: None,
            db_latency: defaults::LATENCY,
            redis_latency: defaults::LATENCY,
            client_pause: None,
            slow_sql: None,
            fault_for: None,
            heal_for: None,
            op_timeout: None,
            cancel_ratio: defaults::CANCEL_RATIO,
            rate: None,
            retry: false,
            idempotency: false,
            // Local when the servers are installed, else docker, saying so.
            backend: BackendKind::Auto,
            redis_url: None,
            postgres_url: None,
            redis_image: None,
            postgres_image: None,
            store: PathBuf::from(defaults::STORE),
            keep: false,
            share: false,
            redis_aof: false,
            strict_lock: false,
            margin_warn: WarnFraction::DEFAULT,
            progress: true,
            service: None,
            lock_service: LockService::Single,
            fault_node: None,
            guard: None,
            expect: None,
            summary_md: None,
        }
    }
}

/// A service spec with the defaults of `--service CMD` alone.
pub fn service(command: impl Into<String>) -> ServiceSpec {
    ServiceSpec {
        ready_timeout: defaults::SERVICE_READY,
        replicas: defaults::REPLICAS,
        ..ServiceSpec::new(command)
    }
}

/// A spec every check passed: every value decided (the seed drawn, the values left out
/// fitted), ready to become a [`RunConfig`] once the backend is resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The spec with every value spelled out: what the reproduce command says.
    spec: RunSpec,
}

impl Checked {
    /// The spec, every value explicit.
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// The seed the run uses.
    pub fn seed(&self) -> u64 {
        self.spec.seed.expect("a checked spec has its seed")
    }

    /// The command line that reproduces the run.
    pub fn command(&self) -> String {
        self.spec.command()
    }

    /// The run's configuration, on `backend` ([`RunSpec::resolve_backend`]'s answer).
    /// Its reproduce command names the backend the run used, not `auto`: on another
    /// machine auto may choose otherwise.
    pub fn config(&self, backend: Backend) -> RunConfig {
        let s = RunSpec {
            backend: BackendKind::of(&backend),
            ..self.spec.clone()
        };
        let fitted = fit::fit(&s, &s.faults).expect("a checked spec fits");
        RunConfig {
            command: s.command(),
            backend,
            ..s.config_with(&fitted, self.seed())
        }
    }
}

impl RunSpec {
    /// Every check `overbook run` makes before starting anything, and every value
    /// decided; no I/O but stat calls on `--schema` and `--service-dir`.
    pub fn check(&self) -> Result<Checked, SpecError> {
        let mut spec = self.clone();
        let mut seen = Vec::new();
        spec.faults.retain(|f| {
            let new = !seen.contains(f);
            seen.push(*f);
            new
        });
        // Numbers first: a bad one is refused before the combinations are looked at,
        // the values left out fitted to the faults (a lease a fault cannot strike refused).
        let fitted = fit::fit(&spec, &spec.faults)?;
        spec.check_ranges(&fitted)?;
        spec.check_backend()?;
        spec.check_faults()?;
        spec.check_design()?;
        let seed = spec.seed.unwrap_or_else(rand::random);
        let cfg = spec.config_with(&fitted, seed);
        check_schedule_fits(&cfg)?;
        spec.seed = Some(seed);
        spec.rooms = Some(fitted.rooms);
        spec.window_days = Some(fitted.window_days);
        spec.lock_ttl = Some(fitted.lock_ttl);
        spec.client_pause = Some(cfg.client_pause);
        spec.fault_for = Some(fitted.fault_for);
        spec.heal_for = Some(fitted.heal_for);
        spec.op_timeout = Some(fitted.op_timeout);
        Ok(Checked { spec })
    }

    /// The servers the spec names, asked of the machine: the only step that talks to
    /// Docker (which images are present, whether the engine answers).
    pub fn resolve_backend(&self) -> Result<Backend, NodeError> {
        let (redis, postgres) = (self.redis_image.as_deref(), self.postgres_image.as_deref());
        Ok(match self.backend {
            BackendKind::Local => Backend::Local,
            BackendKind::External => Backend::External {
                redis_url: self.redis_url.clone().unwrap_or_default(),
                postgres_url: self.postgres_url.clone().unwrap_or_default(),
            },
            BackendKind::Docker => Backend::Docker {
                images: crate::nodes::docker::resolve_images(redis, postgres)?,
            },
            BackendKind::Auto => crate::nodes::auto_backend(redis, postgres)?,
        })
    }

    /// How hard each fault hits, fitted as a run would fit it (`overbook up` holds
    /// faults with exactly a default run's strength).
    pub fn fault_params(&self) -> Result<FaultParams, SpecError> {
        let fitted = fit::fit(self, &self.faults)?;
        Ok(self.config_with(&fitted, 0).fault_params())
    }

    /// The values of a run, unchecked: the fitted ones from `fitted`.
    fn config_with(&self, fitted: &fit::Fitted, seed: u64) -> RunConfig {
        RunConfig {
            design: self.design,
            faults: self.faults.clone(),
            time_limit: self.time_limit,
            concurrency: self.concurrency,
            rooms: fitted.rooms,
            window_days: fitted.window_days,
            seed,
            lock_ttl: fitted.lock_ttl,
            db_latency: self.db_latency,
            redis_latency: self.redis_latency,
            client_pause: self.client_pause.unwrap_or(fitted.lock_ttl * 2),
            slow_sql: self.slow_sql.clone(),
            // Windows scale with the lease (at a 5 s lease and 6 s round trips a 4 s
            // window would end before one slow statement did), or fit a fixed-time fault.
            fault_for: fitted.fault_for,
            heal_for: fitted.heal_for,
            op_timeout: fitted.op_timeout,
            cancel_ratio: self.cancel_ratio,
            aim_at_free: workloads::generator::AIM_AT_FREE,
            rate: self.rate,
            retry: self.retry,
            idempotency: self.idempotency,
            backend: Backend::Local,
            store: self.store.clone(),
            keep: self.keep,
            share: self.share,
            redis_aof: self.redis_aof,
            strict_lock: self.strict_lock,
            margin_warn: self.margin_warn,
            command: String::new(),
            progress: self.progress,
            service: self.service.clone(),
            lock_service: self.lock_service,
            fault_node: self.fault_node,
            guard: self.guard,
        }
    }

    /// The values `overbook run` builds into a [`RunConfig`] when the user leaves them
    /// out, for `design` under `faults` with `seed`: what tests and benchmarks start from.
    pub fn defaults_for(design: DesignName, faults: Vec<Fault>, seed: u64) -> RunConfig {
        let spec = RunSpec {
            design,
            faults,
            ..RunSpec::default()
        };
        let fitted = fit::fit(&spec, &spec.faults).expect("no lease given: nothing to refuse");
        spec.config_with(&fitted, seed)
    }

    /// Range-checks every numeric value, naming the allowed range: a value outside it
    /// would be clamped, wrapped or would stall the run somewhere far from the command line.
    fn check_ranges(&self, fitted: &fit::Fitted) -> Result<(), SpecError> {
        let ms = |d: Duration| d.as_millis();
        let within = |flag: &str, v: Duration, lo: Duration, hi: Duration| {
            if v < lo || v > hi {
                refuse!(
                    "{flag} {}ms is out of range: allowed {}ms to {}ms",
                    ms(v),
                    ms(lo),
                    ms(hi)
                );
            }
            Ok(())
        };
        const MS: Duration = Duration::from_millis(1);
        const HOUR: Duration = Duration::from_secs(3600);
        const DAY: Duration = Duration::from_secs(86_400);
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            refuse!(
                "--concurrency {} is out of range: allowed 1 to {MAX_CONCURRENCY}",
                self.concurrency
            );
        }
        if !(1..=MAX_ROOMS).contains(&fitted.rooms) {
            refuse!(
                "--rooms {} is out of range: allowed 1 to {MAX_ROOMS}",
                fitted.rooms
            );
        }
        if !(7..=MAX_WINDOW_DAYS).contains(&fitted.window_days) {
            refuse!(
                "--window-days {} is out of range: allowed 7 (stays are 1 to 7 nights) to {MAX_WINDOW_DAYS}",
                fitted.window_days
            );
        }
        let room_nights = fitted.rooms * u64::from(fitted.window_days);
        if room_nights > MAX_ROOM_NIGHTS {
            refuse!(
                "--rooms {} x --window-days {} is {room_nights} room-nights: allowed at most {MAX_ROOM_NIGHTS}",
                fitted.rooms,
                fitted.window_days,
            );
        }
        if !(0.0..=1.0).contains(&self.cancel_ratio) {
            refuse!(
                "--cancel-ratio {} is out of range: allowed 0 to 1",
                self.cancel_ratio
            );
        }
        if matches!(self.rate, Some(r) if !(r > 0.0 && r <= 1_000_000.0)) {
            refuse!(
                "--rate {} is out of range: allowed more than 0 to 1000000 requests per second",
                self.rate.unwrap_or_default()
            );
        }
        within("--time-limit", self.time_limit, MS, DAY)?;
        within("--lock-ttl", fitted.lock_ttl, MS, HOUR)?;
        within("--db-latency", self.db_latency, Duration::ZERO, HOUR)?;
        within("--redis-latency", self.redis_latency, Duration::ZERO, HOUR)?;
        if let Some(d) = self.client_pause {
            within("--client-pause", d, Duration::ZERO, HOUR)?;
        }
        if let Some(d) = self.fault_for {
            within("--fault-for", d, MS, DAY)?;
        }
        if let Some(d) = self.heal_for {
            within("--heal-for", d, Duration::ZERO, DAY)?;
        }
        // 0 is allowed: such a run completes nothing and says so (exit 2), which is the
        // honest answer to the question asked.
        if let Some(d) = self.op_timeout {
            within("--op-timeout", d, Duration::ZERO, HOUR)?;
        }
        Ok(())
    }

    /// The backend's own needs, and the lock service's: a node it has, a backend that
    /// can start it.
    fn check_backend(&self) -> Result<(), SpecError> {
        if self.backend == BackendKind::External
            && (self.redis_url.is_none() || self.postgres_url.is_none())
        {
            refuse!("--backend external needs both --redis-url and --postgres-url");
        }
        if let Some(s) = &self.service {
            check_service_spec(s)?;
        }
        let lock = self.lock_service;
        if let Some(n) = self.fault_node {
            if n >= lock.data_nodes() {
                refuse!(
                    "--fault-node {n}: the {lock} lock service has nodes 0 to {}",
                    lock.data_nodes() - 1
                );
            }
        }
        if lock != LockService::Single && !self.backend.owns_processes() {
            refuse!(
                "--lock-service {lock} starts its own topology of Redis servers, so it needs \
                 --backend local or docker (--backend {} brings one Redis of its own)",
                self.backend.name()
            );
        }
        Ok(())
    }

    /// What each fault needs of the run ([`faults::check`], the one place it is
    /// decided): owned servers for a pause or a kill, a service or a built-in design, the
    /// lock service it acts on. Refused now, not after servers and schema are up.
    fn check_faults(&self) -> Result<(), SpecError> {
        let setting = faults::Setting {
            owns_servers: Some(self.backend.owns_processes()),
            service: Some(self.service.is_some()),
            lock_service: Some(self.lock_service),
        };
        faults::check(&self.faults, &setting).map_err(|r| SpecError(NodeError::from(r).to_string()))
    }

    /// The design against the lock service and the faults: a fault on the lock service
    /// finds nothing to act on in a design that takes no lease.
    fn check_design(&self) -> Result<(), SpecError> {
        if let Some(why) = self.design.refusal_on(self.lock_service) {
            refuse!("--design {why}");
        }
        if self.service.is_none() {
            if let Some(f) = self.faults.iter().find(|f| !self.design.exposed_to(**f)) {
                refuse!(
                    "--fault {f} cannot strike --design {}: it takes no lease, so a fault on the lock service or on a lease holder finds nothing to act on and the run would test nothing (try slow-writes, db-latency, pause-db or kill-db)",
                    self.design
                );
            }
        }
        Ok(())
    }
}

impl RunSpec {
    /// The `overbook run` options that give this spec back when parsed (everything but
    /// `--store`, `--quiet` and `--expect`, which say where and how a run reports, not
    /// what it runs). A value left out (`None`) stays out, so the child fits it itself.
    pub fn words(&self) -> Vec<String> {
        let mut w = Words(Vec::new());
        if self.service.is_none() {
            w.pair("--design", self.design.as_str());
        }
        for f in &self.faults {
            w.pair("--fault", f.name());
        }
        w.pair("--time-limit", ms(self.time_limit));
        w.pair("--concurrency", self.concurrency);
        w.opt("--rooms", self.rooms);
        w.opt("--window-days", self.window_days);
        w.opt("--seed", self.seed);
        w.opt("--lock-ttl", self.lock_ttl.map(ms));
        w.pair("--db-latency", ms(self.db_latency));
        w.pair("--redis-latency", ms(self.redis_latency));
        w.opt("--client-pause", self.client_pause.map(ms));
        w.opt("--fault-for", self.fault_for.map(ms));
        w.opt("--heal-for", self.heal_for.map(ms));
        w.opt("--op-timeout", self.op_timeout.map(ms));
        w.pair("--cancel-ratio", self.cancel_ratio);
        w.opt("--slow-sql", self.slow_sql.as_ref().map(|re| re.as_str()));
        for (on, flag) in [
            (self.retry, "--retry"),
            (self.idempotency, "--idempotency"),
            (self.redis_aof, "--redis-aof"),
            (self.strict_lock, "--strict-lock"),
            (self.keep, "--keep"),
            (self.share, "--share"),
        ] {
            if on {
                w.0.push(flag.to_string());
            }
        }
        w.opt("--rate", self.rate);
        if self.lock_service != workloads::LockService::Single {
            w.pair("--lock-service", self.lock_service);
        }
        w.opt("--fault-node", self.fault_node);
        if self.margin_warn != checkers::WarnFraction::DEFAULT {
            w.pair("--margin-warn", self.margin_warn);
        }
        // Every backend but the default is named: a reproduce command says `local` (what
        // the run used), since on another machine `auto` may choose docker.
        if self.backend != BackendKind::Auto {
            w.pair("--backend", self.backend.name());
        }
        w.opt("--redis-url", self.redis_url.as_deref());
        w.opt("--postgres-url", self.postgres_url.as_deref());
        if let Some(s) = &self.service {
            w.pair("--service", &s.command);
            if s.replicas != 1 {
                w.pair("--replicas", s.replicas);
            }
            w.opt("--schema", s.schema.as_ref().map(|f| f.display()));
            w.opt("--read-sql", s.read_sql.as_deref());
            w.opt("--api", s.api.as_ref().map(|a| a.path.display()));
            w.opt("--guard", self.guard);
            w.opt("--service-dir", s.dir.as_ref().map(|d| d.display()));
            w.pair("--service-ready-timeout", ms(s.ready_timeout));
        }
        w.opt("--redis-image", self.redis_image.as_deref());
        w.opt("--postgres-image", self.postgres_image.as_deref());
        w.0
    }
}

/// Options being spelled out.
struct Words(Vec<String>);

impl Words {
    fn pair(&mut self, flag: &str, value: impl ToString) {
        self.0.push(flag.to_string());
        self.0.push(value.to_string());
    }

    fn opt(&mut self, flag: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.pair(flag, v);
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// A service's values, checked: a command, replicas in range, files that exist.
pub fn check_service_spec(s: &ServiceSpec) -> Result<(), SpecError> {
    if s.command.trim().is_empty() {
        refuse!("--service: the command is empty");
    }
    if !(1..=MAX_REPLICAS).contains(&s.replicas) {
        refuse!(
            "--replicas {} is out of range: allowed 1 to {MAX_REPLICAS} (each is a process with its own port and connections)",
            s.replicas
        );
    }
    if s.ready_timeout.is_zero() {
        refuse!("--service-ready-timeout must be positive");
    }
    if let Some(schema) = &s.schema {
        if !schema.is_file() {
            refuse!("--schema {}: no such file", schema.display());
        }
    }
    if let Some(dir) = &s.dir {
        if !dir.is_dir() {
            refuse!("--service-dir {}: no such directory", dir.display());
        }
    }
    if matches!(&s.read_sql, Some(sql) if sql.trim().is_empty()) {
        refuse!("--read-sql: the query is empty");
    }
    Ok(())
}

/// Refuses faults the system under test cannot take: the service faults without a
/// service, and `client-pause` (a hook inside the built-in designs' code) with one.
pub fn check_service_faults(faults: &[Fault], service: bool) -> Result<(), SpecError> {
    let setting = faults::Setting {
        service: Some(service),
        ..Default::default()
    };
    faults::check(faults, &setting).map_err(|r| SpecError(r.to_string()))
}

/// Refuses a run whose fault schedule cannot give every requested fault a window within
/// the time limit: it would run, inject nothing (or less than asked) and could only end
/// in a vacuous verdict.
pub fn check_schedule_fits(cfg: &RunConfig) -> Result<(), SpecError> {
    let missing = cfg.schedule().missing(&cfg.faults);
    if missing.is_empty() {
        return Ok(());
    }
    let wanted = cfg.faults.iter().filter(|f| **f != Fault::None).count();
    refuse!(
        "no window of {} fits in --time-limit {}ms (fault windows last about {}ms after {}ms of \
         health first; windows of {wanted} faults need about {}ms): give a longer --time-limit, \
         or a shorter --fault-for/--heal-for (or --lock-ttl, which scales them)",
        missing
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.time_limit.as_millis(),
        cfg.fault_for.as_millis(),
        cfg.heal_for.as_millis(),
        time_needed(wanted, cfg.fault_for, cfg.heal_for).as_millis()
    );
}

/// Parses durations written as `500ms`, `5s`, `1.5s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write e.g. 500ms, 5s, 2m"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "" => return Err(format!("{s:?} needs a unit: ms, s or m (e.g. {s}ms)")),
        other => return Err(format!("unknown unit {other:?} in {s:?}: use ms, s or m")),
    };
    if !secs.is_finite() || secs > 86_400.0 {
        return Err(format!("{s:?} is out of range (at most 24 h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests;
