//! The command line. Each subcommand's arguments are a plain struct so its module can be
//! driven from tests without parsing.

use std::path::PathBuf;
use std::time::Duration;

use checkers::WarnFraction;

use crate::run::spec::{self, RunSpec};
use crate::sut::service::{ApiSpec, ServiceSpec};
use clap::{Args, Parser, Subcommand};

/// overbook: can this booking design confirm the same room-night twice under faults?
#[derive(Debug, Parser)]
#[command(name = "overbook", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one design under faults against real Redis and Postgres, check, and report.
    /// With no arguments: the story at 1:10 scale (lock-only, 500 ms lease, 600 ms DB latency).
    Run(Box<RunArgs>),
    /// Run every design under every fault (and seed), each cell its own run, and judge
    /// each against what the design declares it survives. `matrix merge` joins shards.
    Matrix(Box<MatrixArgs>),
    /// Check a history file (JSON Lines, `-` for stdin) and print the verdict.
    Check(CheckArgs),
    /// Re-render a run's report (RUN_DIR/report.html) from its history.jsonl and meta.json.
    Report(ReportArgs),
    /// Measure overbook itself, e.g. `bench check`: how fast `overbook check` is.
    Bench(BenchArgs),
    /// Start Redis and Postgres behind their fault proxies and hold them until Ctrl-C.
    Up(UpArgs),
    /// Remove what a killed run left: local temp dirs (server data) and the server
    /// processes still in them, docker containers and networks (labelled `overbook`).
    Clean(CleanArgs),
    /// What this machine has for overbook (server binaries and versions, docker engine
    /// and images, chromium) and what each missing piece costs; exit 1 when no run can
    /// start here.
    Doctor,
    /// From a failing run's directory, search for the smallest configuration that still
    /// fails (fewer seconds, fault windows, one fault, rooms, users), within a budget.
    Shrink(crate::cli::shrink::ShrinkArgs),
    /// Mapping files for services with their own API (`--api`, docs/api.md).
    Api(ApiArgs),
}

/// `overbook api`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// What to do with a mapping.
    #[command(subcommand)]
    pub command: ApiCommand,
}

/// `overbook api` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Start the service once against fresh servers (no faults), book, read, cancel and
    /// read again through the mapping, printing each request, the answer and what was
    /// recorded. Exit 0 when all four recorded what a correct service would, else 1
    /// naming the step; 2 for a bad mapping or a service that does not start.
    Check(ApiCheckArgs),
}

/// `overbook api check`.
#[derive(Debug, Clone, Args)]
pub struct ApiCheckArgs {
    /// The mapping file (TOML, docs/api.md).
    pub file: PathBuf,
    /// The service command, run with `sh -c` as for `run --service`.
    #[arg(long, value_name = "CMD")]
    pub service: String,
    /// The service's working directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub service_dir: Option<PathBuf>,
    /// How long the service may take to answer its health call.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub service_ready_timeout: Duration,
}

/// `overbook clean`.
#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Also remove what belongs to runs still going (their harness pid is alive) or
    /// that cannot be judged from here (marked in another pid namespace or machine, or
    /// by an older overbook).
    #[arg(long, visible_alias = "force")]
    pub all: bool,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Also look on the Postgres server this connection string reaches: drop the
    /// `overbook_*` databases (and schemas in its database) that killed runs left, only
    /// those carrying overbook's mark.
    #[arg(long, value_name = "URL")]
    pub postgres_url: Option<String>,
}

/// `overbook check FILE`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history to check, in overbook's JSONL format; `-` reads standard input.
    #[arg(required_unless_present = "store")]
    pub file: Option<PathBuf>,
    /// Re-check every run stored under DIR with this version of the checkers and list
    /// the runs whose verdict or headline changed (exit 1 when any did): upgrade safety.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["file", "report", "json"])]
    pub store: Option<PathBuf>,
    /// Print the full result as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Count lock-exclusion findings towards the verdict (by default they are reported
    /// but the lock is coordination, not correctness).
    #[arg(long)]
    pub strict_lock: bool,
    /// lease-margin counts a critical section using more than this fraction of its lease
    /// as a close call (informational, never decides; above 0, at most 1).
    #[arg(long, value_name = "FRACTION", default_value_t = WarnFraction::DEFAULT)]
    pub margin_warn: WarnFraction,
    /// Also write the HTML report (plots, anomaly timelines) to this file.
    #[arg(long, value_name = "OUT.html")]
    pub report: Option<PathBuf>,
}

/// `overbook report RUN_DIR`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory holding history.jsonl (and meta.json, when the runner wrote it).
    pub dir: PathBuf,
}

/// `overbook up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Where the servers come from: local (start them here) or external (--redis-url,
    /// --postgres-url; only proxy faults).
    #[arg(long, default_value = "local")]
    pub backend: String,
    /// Redis URL for --backend external.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Postgres URL for --backend external.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Where the server logs go.
    #[arg(long, default_value = "store/up")]
    pub dir: PathBuf,
    /// Keep the servers' data directories after Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// Run Redis with AOF persistence, so a restart keeps its locks.
    #[arg(long)]
    pub redis_aof: bool,
    /// Inject a fault right away and hold it until Ctrl-C (e.g. pause-redis, db-latency);
    /// repeat for several.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
}

/// `overbook run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The design under test (see `docs/designs.md`): lock-only, check-then-insert,
    /// lock-renewal, lock-fencing, db-unique, db-exclusion, atomic-reserve, row-lock,
    /// serializable, confirm-before-commit (default lock-only).
    #[arg(long)]
    pub design: Option<String>,
    /// A fault the nemesis injects in alternating windows; repeat for several: none,
    /// db-latency, redis-latency, pause-db, pause-redis, kill-db, kill-redis, partition-db,
    /// partition-redis, client-pause, and the aimed slow-writes, lost-commit-ack,
    /// slow-lock-grant, lost-renewal (see docs/faults.md). The default, slow-writes, holds
    /// only the writes for --db-latency: the story, at every lock hand-over.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// How long clients issue requests (e.g. 500ms, 20s, 2m; default 20s).
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// Concurrent simulated users (default 16: several users queued on a hot room's
    /// lease, so an expired lease is taken over while the holder's write still runs).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Rooms in the hotel; a hot fifth of them gets most requests (default 5; 1 under a
    /// fault that strikes one lease holder a window, clock-jump-redis and failover-redis,
    /// so every user wants the struck lease).
    #[arg(long)]
    pub rooms: Option<u64>,
    /// Days in the booking window, from 2026-12-01 (default 60; 3650, a calendar that
    /// never fills, where the hotel is one room).
    #[arg(long)]
    pub window_days: Option<u32>,
    /// Seed for every random choice (generator, nemesis); random when absent, always printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The Redis lease length (default 500ms; 12s under failover-redis, whose failover
    /// takes seconds: see docs/locks.md). A lease too short for a fault to strike is
    /// refused.
    #[arg(long, value_parser = parse_duration)]
    pub lock_ttl: Option<Duration>,
    /// Latency added to every database round trip during a db-latency window, and how
    /// long slow-writes (and lost-renewal) hold each write (default 600ms).
    #[arg(long, value_parser = parse_duration)]
    pub db_latency: Option<Duration>,
    /// Latency added to every Redis round trip during a redis-latency window (default
    /// 600ms).
    #[arg(long, value_parser = parse_duration)]
    pub redis_latency: Option<Duration>,
    /// How long a client-pause stops a client between taking the lock and writing
    /// (default: twice the lease).
    #[arg(long, value_parser = parse_duration)]
    pub client_pause: Option<Duration>,
    /// During slow-writes, also hold the statements whose SQL matches this regular
    /// expression (case-insensitive), e.g. 'pg_advisory_xact_lock|FOR UPDATE'.
    #[arg(long)]
    pub slow_sql: Option<String>,
    /// Nominal length of each fault window (randomised from the seed; default 8 leases,
    /// 4 s at the default lease, so a window always spans several slow round trips).
    #[arg(long, value_parser = parse_duration)]
    pub fault_for: Option<Duration>,
    /// Nominal length of the healthy gaps between fault windows (default 4 leases).
    #[arg(long, value_parser = parse_duration)]
    pub heal_for: Option<Duration>,
    /// Deadline of every op; a timed-out op is recorded as info and its user retired
    /// (default: 5 s plus 8 times the largest injected latency).
    #[arg(long, value_parser = parse_duration)]
    pub op_timeout: Option<Duration>,
    /// Share of requests that cancel an earlier confirmed booking (0 to 1; default 0.1).
    #[arg(long)]
    pub cancel_ratio: Option<f64>,
    /// Total requests per second across all users (default: as fast as they go).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Retry a timed-out booking from a fresh user with the same request key.
    #[arg(long)]
    pub retry: bool,
    /// Store request keys so that a retry returns the original outcome.
    #[arg(long)]
    pub idempotency: bool,
    /// Where the servers come from: auto (the default: local if redis-server and
    /// postgres are installed, else docker, saying so), local (start them here), docker
    /// (one container per server) or external (--redis-url, --postgres-url; only proxy
    /// faults).
    #[arg(long)]
    pub backend: Option<String>,
    /// Redis URL for --backend external, e.g. redis://127.0.0.1:6379/.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Postgres URL for --backend external, e.g. postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Redis image for --backend docker/auto (default redis:7, or overbook/redis:7-offline
    /// when only that one is present; never pulled).
    #[arg(long)]
    pub redis_image: Option<String>,
    /// Postgres image for --backend docker/auto (default postgres:15, or
    /// overbook/postgres:15-offline when only that one is present; never pulled).
    #[arg(long)]
    pub postgres_image: Option<String>,
    /// Store root: runs go to STORE/<design>-<faults>/<timestamp>/ (default ./store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// valid or invalid: exit 0 when the verdict is the one expected, 1 otherwise
    /// (unsafe designs run as canaries with --expect invalid).
    #[arg(long)]
    pub expect: Option<String>,
    /// Keep the servers' data directories after the run.
    #[arg(long)]
    pub keep: bool,
    /// Make the run directory readable by other local users (0755, files 0644); by
    /// default it is 0700 and its files 0600, since logs and errors name the servers.
    #[arg(long)]
    pub share: bool,
    /// Run Redis with AOF persistence, so a restart keeps its locks.
    #[arg(long)]
    pub redis_aof: bool,
    /// Count lock-exclusion findings towards the verdict.
    #[arg(long)]
    pub strict_lock: bool,
    /// lease-margin counts a critical section using more than this fraction of its lease
    /// as a close call (informational, never decides; above 0, at most 1; default 0.8).
    #[arg(long, value_name = "FRACTION")]
    pub margin_warn: Option<WarnFraction>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write the verdict as JSON to this file (used by `overbook matrix`).
    #[arg(long, hide = true)]
    pub outcome_file: Option<PathBuf>,
    /// Append a markdown summary for reviewers to FILE (verdict, what it cost the guests,
    /// the worst anomaly's caption, links to the report), e.g. $GITHUB_STEP_SUMMARY.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Run K times, seeds --seed, --seed+1, ...: report the detection rate with its 95%
    /// confidence interval, and whether the expectation held in all, some (flaky) or none.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub repeat: u64,
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Where the leases come from (docs/locks.md): single (one Redis), sentinel (a
    /// primary, a replica and three sentinels) or redlock (five independent nodes).
    /// Default single.
    #[arg(long)]
    pub lock_service: Option<String>,
    /// The lock-service node that Redis faults hit (0-based: redlock 0-4, sentinel 0 the
    /// first primary, 1 the replica). Default: node 0, or the current primary under
    /// sentinel.
    #[arg(long, value_name = "N")]
    pub fault_node: Option<usize>,
}

impl RunArgs {
    /// The run these flags ask for: each flag given, typed; what was left out at the
    /// spec's default. Parses names (designs, faults, services); every other check is the
    /// spec's ([`RunSpec::check`]). A run option's line goes here, beside its clap line.
    pub fn spec(&self) -> anyhow::Result<RunSpec> {
        let args = self;
        let d = RunSpec::default();
        let faults = if args.faults.is_empty() {
            d.faults.clone()
        } else {
            args.faults
                .iter()
                .map(|f| f.parse().map_err(|e| anyhow::anyhow!("--fault: {e}")))
                .collect::<anyhow::Result<_>>()?
        };
        Ok(RunSpec {
            design: parse("--design", &args.design)?.unwrap_or(d.design),
            faults,
            time_limit: args.time_limit.unwrap_or(d.time_limit),
            concurrency: args.concurrency.unwrap_or(d.concurrency),
            rooms: args.rooms,
            window_days: args.window_days,
            seed: args.seed,
            lock_ttl: args.lock_ttl,
            db_latency: args.db_latency.unwrap_or(d.db_latency),
            redis_latency: args.redis_latency.unwrap_or(d.redis_latency),
            client_pause: args.client_pause,
            slow_sql: parse("--slow-sql", &args.slow_sql)?,
            fault_for: args.fault_for,
            heal_for: args.heal_for,
            op_timeout: args.op_timeout,
            cancel_ratio: args.cancel_ratio.unwrap_or(d.cancel_ratio),
            rate: args.rate,
            retry: args.retry,
            idempotency: args.idempotency,
            backend: parse("--backend", &args.backend)?.unwrap_or(d.backend),
            redis_url: args.redis_url.clone(),
            postgres_url: args.postgres_url.clone(),
            redis_image: args.redis_image.clone(),
            postgres_image: args.postgres_image.clone(),
            store: args.store.clone().unwrap_or(d.store),
            keep: args.keep,
            share: args.share,
            redis_aof: args.redis_aof,
            strict_lock: args.strict_lock,
            margin_warn: args.margin_warn.unwrap_or(d.margin_warn),
            progress: !args.quiet,
            service: args.service.spec()?,
            lock_service: parse("--lock-service", &args.lock_service)?.unwrap_or(d.lock_service),
            fault_node: args.fault_node,
            guard: args.service.guard,
            expect: args.expect.as_deref().map(str::parse).transpose()?,
            summary_md: args.summary_md.clone(),
        })
    }
}

impl ServiceArgs {
    /// The service `--service` and its companions ask for (checked with the rest of the
    /// spec by [`RunSpec::check`]).
    pub fn spec(&self) -> anyhow::Result<Option<ServiceSpec>> {
        let args = self;
        let Some(command) = &args.service else {
            if args.replicas.is_some_and(|r| r != 1) {
                anyhow::bail!(
                    "--replicas needs --service CMD (the built-in designs run in this process)"
                );
            }
            return Ok(None);
        };
        let d = spec::service(command.clone());
        Ok(Some(ServiceSpec {
            schema: args.schema.clone(),
            read_sql: args.read_sql.clone(),
            dir: args.service_dir.clone(),
            // A bad mapping is refused here, naming its key and line, before any server
            // starts.
            api: args
                .api
                .as_deref()
                .map(ApiSpec::load)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            ready_timeout: args.service_ready_timeout.unwrap_or(d.ready_timeout),
            replicas: args.replicas.unwrap_or(d.replicas),
            ..d
        }))
    }
}

/// `given` parsed, the flag named in the error.
fn parse<T: std::str::FromStr>(flag: &str, given: &Option<String>) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    given
        .as_deref()
        .map(|v| v.parse().map_err(|e| anyhow::anyhow!("{flag}: {e}")))
        .transpose()
}
/// Service mode: test the user's own booking service (docs/service.md) instead of a
/// built-in design. Shared by `run` and `matrix`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceArgs {
    /// Test your own booking service: run CMD with `sh -c` (N replicas, see --replicas),
    /// give it OVERBOOK_LISTEN, DATABASE_URL, REDIS_URL and OVERBOOK_LOCK_TTL_MS (and
    /// REDIS_SENTINEL_URL, REDIS_MASTER_NAME or REDIS_URLS with --lock-service sentinel or
    /// redlock), drive it over HTTP as docs/service.md says. Replaces --design.
    #[arg(long, value_name = "CMD")]
    pub service: Option<String>,
    /// SQL applied to the run's empty database before the service starts.
    #[arg(long, value_name = "FILE", requires = "service")]
    pub schema: Option<PathBuf>,
    /// Take the final read straight from Postgres with this query (columns room, from,
    /// to, request) instead of GET /bookings.
    #[arg(long, value_name = "SQL", requires = "service")]
    pub read_sql: Option<String>,
    /// The service's working directory (default: the current one).
    #[arg(long, value_name = "DIR", requires = "service")]
    pub service_dir: Option<PathBuf>,
    /// The service speaks its own API: the TOML mapping file of docs/api.md (paths,
    /// fields, statuses, room types with capacities, time slots). Read and checked
    /// before any server starts.
    #[arg(long, value_name = "FILE", requires = "service")]
    pub api: Option<PathBuf>,
    /// How long each replica may take to answer GET /health with 200 (default 30s).
    #[arg(long, value_parser = parse_duration)]
    pub service_ready_timeout: Option<Duration>,
    /// Instances of the service, each on its own port; the users are spread across them
    /// (default 1).
    #[arg(long)]
    pub replicas: Option<usize>,
    /// What guards one stay per room-night in the service: `database` (a constraint, an
    /// atomic update: two lock holders at once is the lock failing, the database
    /// holding), `lock` (the lease alone: two holders at once is the service failing,
    /// INVALID), `fencing` or `nothing`.
    #[arg(long, value_name = "GUARD", requires = "service")]
    pub guard: Option<checkers::Guard>,
}

/// `overbook matrix`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MatrixArgs {
    #[command(subcommand)]
    pub command: Option<MatrixCommand>,
    #[command(flatten)]
    pub options: crate::matrix::MatrixOptions,
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Further `overbook run` options for every cell, after `--`
    /// (e.g. `-- --concurrency 16 --lock-ttl 1s`).
    #[arg(last = true)]
    pub run_args: Vec<String>,
}

pub use crate::matrix::diff::MatrixDiffArgs;
pub use crate::matrix::trend::MatrixTrendArgs;
pub use crate::matrix::{MatrixMergeArgs, MatrixOptions};

/// `overbook matrix merge`.
#[derive(Debug, Subcommand)]
pub enum MatrixCommand {
    /// Join the matrix.json of several shards into one matrix page and one exit code.
    Merge(MatrixMergeArgs),
    /// What changed between two matrices: regressions, fixes, new and gone cells, and
    /// drift beyond noise. Exit 1 on a regression.
    Diff(MatrixDiffArgs),
    /// The last N matrices of a store as one page: cells x nights, and each canary's
    /// time to first anomaly.
    Trend(MatrixTrendArgs),
}

pub use crate::bench::options::*;
pub use crate::run::spec::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23.9: bench subcommands took any count (a zero divided by it or measured
    /// nothing, an absurd one ran for days); every count and duration is range-checked
    /// as it is parsed, naming the range (clap's usage error: exit 2).
    #[test]
    fn bench_flags_are_range_checked() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let mut all = vec!["overbook", "bench"];
            all.extend(args);
            Cli::try_parse_from(all)
                .map(|_| ())
                .map_err(|e| (e.exit_code(), e.to_string()))
        };
        for ok in [
            &["service", "--rounds", "100", "--concurrency", "1000"][..],
            &["run", "--rooms", "1", "--time-limit", "100ms"],
            &["check", "--ops", "10", "--runs", "1"],
            &["detect", "--seeds", "1", "--time-limit", "60m"],
            &[
                "proxy",
                "--clients",
                "1",
                "--pipeline",
                "1000",
                "--rounds",
                "1",
            ],
            &["backends", "--rounds", "1"],
        ] {
            assert_eq!(parse(ok), Ok(()), "{ok:?}");
        }
        for (bad, says) in [
            (&["service", "--rounds", "0"][..], "0 is not in 1..=100"),
            (
                &["service", "--concurrency", "100000"],
                "100000 is not in 1..=1000",
            ),
            (&["service", "--time-limit", "0s"], "allowed 100ms to 60m"),
            (&["run", "--rounds", "0"], "0 is not in 1..=100"),
            (&["run", "--rooms", "0"], "0 is not in 1..=100000"),
            (&["run", "--concurrency", "0"], "0 is not in 1..=1000"),
            (&["run", "--time-limit", "61m"], "allowed 100ms to 60m"),
            (&["detect", "--seeds", "0"], "0 is not in 1..=10000"),
            (
                &["detect", "--seeds", "18446744073709551615"],
                "is not in 1..=10000",
            ),
            (&["detect", "--time-limit", "5ms"], "allowed 100ms to 60m"),
            (&["check", "--ops", "0"], "0 is not in 10..=50000000"),
            (&["check", "--runs", "0"], "0 is not in 1..=100"),
            (&["proxy", "--requests", "0"], "0 is not in 1..=100000000"),
            (&["proxy", "--clients", "0"], "0 is not in 1..=1000"),
            (&["proxy", "--pipeline", "0"], "0 is not in 1..=1000"),
            (&["proxy", "--rounds", "1000"], "1000 is not in 1..=100"),
            (&["backends", "--rounds", "0"], "0 is not in 1..=100"),
        ] {
            let (code, text) = parse(bad).unwrap_err();
            assert_eq!(code, 2, "{bad:?}: {text}");
            assert!(text.contains(says), "{bad:?}: {text}");
        }
    }

    #[test]
    fn durations_take_ms_s_and_m() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "5", "5h", "ms", "-1s", "1e999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn run_with_no_arguments_is_the_story_at_one_tenth_scale() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["overbook", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        let spec = args.spec().unwrap();
        assert_eq!(spec.design.as_str(), "lock-only");
        assert_eq!(
            spec.faults
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>(),
            vec!["slow-writes".to_string()]
        );
        assert_eq!(spec.db_latency, Duration::from_millis(600));
        let cfg = spec.check().unwrap().config(crate::nodes::Backend::Local);
        assert_eq!(cfg.lock_ttl, Duration::from_millis(500));
        assert_eq!((cfg.rooms, cfg.window_days), (5, 60));
        assert_eq!(spec.margin_warn, WarnFraction::DEFAULT);
        // One default for the client pause: twice the lease, for a run and for `up`.
        assert_eq!(cfg.client_pause, Duration::from_millis(1000));
        assert_eq!(spec.fault_params().unwrap().client_pause, cfg.client_pause);
    }

    #[test]
    fn margin_warn_is_a_fraction_above_zero_and_at_most_one() {
        use clap::Parser;
        for ok in ["0.5", "1"] {
            assert!(Cli::try_parse_from(["overbook", "check", "-", "--margin-warn", ok]).is_ok());
            assert!(Cli::try_parse_from(["overbook", "run", "--margin-warn", ok]).is_ok());
        }
        for bad in ["0", "1.5", "1e9", "eighty"] {
            let e = Cli::try_parse_from(["overbook", "run", "--margin-warn", bad]).unwrap_err();
            assert!(
                e.to_string().contains("above 0 and at most 1")
                    || e.to_string().contains("not a number"),
                "{e}"
            );
        }
    }
}
