//! The command line. Each subcommand's arguments are a plain struct so its module can be
//! driven from tests without parsing.

use std::path::PathBuf;
use std::time::Duration;

use checkers::WarnFraction;
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

/// `overbook bench WHAT`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// What `overbook bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Parse+check throughput (ops/s) and peak memory per op of `overbook check` on a
    /// generated history; run it from a release build.
    Check(BenchCheckArgs),
    /// Throughput and latency of redis-benchmark through the fault proxy vs direct.
    Proxy(BenchProxyArgs),
    /// Harness throughput on atomic-reserve with no fault vs pgbench running the same
    /// statements at the same concurrency against the same server.
    Run(BenchRunArgs),
    /// Detection power: over many seeds, how often a design is caught and how soon.
    Detect(BenchDetectArgs),
    /// Start-to-ready time of a cell's servers: local processes vs docker containers.
    Backends(BenchBackendsArgs),
    /// overbook's HTTP driver vs wrk, posting the same booking at the same concurrency to
    /// the same service (the Rust example, fixed mode, unless --service).
    Service(BenchServiceArgs),
    /// A failing run's reproduce command, K times: how often it fails again, with its
    /// Wilson 95% interval.
    Reproduce(BenchReproduceArgs),
}

/// `overbook bench reproduce`.
#[derive(Debug, Clone, Args)]
pub struct BenchReproduceArgs {
    /// A failing run's directory (store/<test>/<stamp>); its meta.json holds the command.
    pub dir: PathBuf,
    /// How many times to run the command.
    #[arg(long, default_value_t = 10)]
    pub times: u32,
}

/// `overbook bench service`.
#[derive(Debug, Clone, Args)]
pub struct BenchServiceArgs {
    /// Concurrent users (overbook sessions and wrk connections alike), 1 to 1000.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BENCH_CONCURRENCY))]
    pub concurrency: usize,
    /// Length of each measurement, 100ms to 60m.
    #[arg(long, default_value = "10s", value_parser = parse_bench_duration)]
    pub time_limit: Duration,
    /// Rounds, overbook and wrk alternating; the best of each is compared (1 to 100).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BENCH_ROUNDS))]
    pub rounds: usize,
    /// The service to drive (default: booking-service-example next to overbook, fixed mode).
    #[arg(long, value_name = "CMD")]
    pub service: Option<String>,
}

/// `overbook bench backends`.
#[derive(Debug, Clone, Args)]
pub struct BenchBackendsArgs {
    /// Clusters started per backend, 1 to 100.
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BENCH_ROUNDS))]
    pub rounds: usize,
    /// Redis image (default as for `run --backend docker`).
    #[arg(long)]
    pub redis_image: Option<String>,
    /// Postgres image (default as for `run --backend docker`).
    #[arg(long)]
    pub postgres_image: Option<String>,
}

/// `overbook bench run`.
#[derive(Debug, Clone, Args)]
pub struct BenchRunArgs {
    /// Concurrent clients (harness users and pgbench clients alike), 1 to 1000.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BENCH_CONCURRENCY))]
    pub concurrency: usize,
    /// Rooms in the hotel, 1 to 100000.
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=MAX_BENCH_ROOMS))]
    pub rooms: u64,
    /// Length of each measurement, 100ms to 60m.
    #[arg(long, default_value = "10s", value_parser = parse_bench_duration)]
    pub time_limit: Duration,
    /// Rounds, harness and pgbench alternating; the best of each is compared (1 to 100).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BENCH_ROUNDS))]
    pub rounds: usize,
}

/// `overbook bench detect`.
#[derive(Debug, Clone, Args)]
pub struct BenchDetectArgs {
    /// The design whose detection is measured.
    #[arg(long, default_value = "lock-only")]
    pub design: String,
    /// The fault injected.
    #[arg(long, default_value = "db-latency")]
    pub fault: String,
    /// Seeds 1..=N, one run each (N from 1 to 10000).
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=MAX_BENCH_SEEDS))]
    pub seeds: u64,
    /// Length of each run, 100ms to 60m.
    #[arg(long, default_value = "10s", value_parser = parse_bench_duration)]
    pub time_limit: Duration,
    /// Also run every seed under this fault and print both side by side (default:
    /// db-latency when --fault is another fault; `none` for no comparison).
    #[arg(long)]
    pub against: Option<String>,
    /// Keep two busy processes (one per core of a 2-core machine) spinning for the whole
    /// benchmark: detection on a loaded machine.
    #[arg(long)]
    pub load: bool,
}

/// `overbook bench check`.
#[derive(Debug, Args)]
pub struct BenchCheckArgs {
    /// Events in the generated history, 10 to 50000000.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(10..=MAX_BENCH_OPS))]
    pub ops: usize,
    /// Measurements of each kind; the best is reported (1 to 100).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BENCH_ROUNDS))]
    pub runs: usize,
    /// Internal: make one measurement in this process (`end-to-end` or `split`).
    #[arg(long, hide = true)]
    pub worker: Option<String>,
    /// Internal: the history the worker measures.
    #[arg(long, hide = true)]
    pub input: Option<PathBuf>,
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

/// `overbook bench proxy`.
#[derive(Debug, Clone, Args)]
pub struct BenchProxyArgs {
    /// redis-benchmark tests (-t).
    #[arg(long, default_value = "set,get")]
    pub tests: String,
    /// Requests per test (-n), 1 to 100000000.
    #[arg(long, default_value_t = 200_000, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=MAX_BENCH_REQUESTS))]
    pub requests: u64,
    /// Parallel connections (-c), 1 to 1000.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=MAX_BENCH_CONCURRENCY))]
    pub clients: u32,
    /// Pipelined requests per connection (-P), 1 to 1000.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=MAX_BENCH_PIPELINE))]
    pub pipeline: u32,
    /// Rounds of direct-then-proxy; the best of each is reported (1 to 100).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=MAX_BENCH_ROUNDS))]
    pub rounds: u32,
}

/// `overbook run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The design under test (see `docs/designs.md`): lock-only, check-then-insert,
    /// lock-renewal, lock-fencing, db-unique, db-exclusion, atomic-reserve, row-lock,
    /// serializable, confirm-before-commit.
    #[arg(long, default_value = "lock-only")]
    pub design: String,
    /// A fault the nemesis injects in alternating windows; repeat for several: none,
    /// db-latency, redis-latency, pause-db, pause-redis, kill-db, kill-redis, partition-db,
    /// partition-redis, client-pause, and the aimed slow-writes, lost-commit-ack,
    /// slow-lock-grant, lost-renewal (see docs/faults.md). The default, slow-writes, holds
    /// only the writes for --db-latency: the story, at every lock hand-over.
    #[arg(long = "fault", default_value = "slow-writes")]
    pub faults: Vec<String>,
    /// How long clients issue requests (e.g. 500ms, 20s, 2m).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Concurrent simulated users (16 keep several users queued on a hot room's lease,
    /// so an expired lease is taken over while the holder's write still runs).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
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
    /// long slow-writes (and lost-renewal) hold each write.
    #[arg(long, default_value = "600ms", value_parser = parse_duration)]
    pub db_latency: Duration,
    /// Latency added to every Redis round trip during a redis-latency window.
    #[arg(long, default_value = "600ms", value_parser = parse_duration)]
    pub redis_latency: Duration,
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
    /// Share of requests that cancel an earlier confirmed booking (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    pub cancel_ratio: f64,
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
    #[arg(long, default_value = "auto")]
    pub backend: String,
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
    /// Store root: runs go to STORE/<design>-<faults>/<timestamp>/.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
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
    /// as a close call (informational, never decides; above 0, at most 1).
    #[arg(long, value_name = "FRACTION", default_value_t = WarnFraction::DEFAULT)]
    pub margin_warn: WarnFraction,
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
    #[arg(long, default_value = "single")]
    pub lock_service: String,
    /// The lock-service node that Redis faults hit (0-based: redlock 0-4, sentinel 0 the
    /// first primary, 1 the replica). Default: node 0, or the current primary under
    /// sentinel.
    #[arg(long, value_name = "N")]
    pub fault_node: Option<usize>,
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
    /// How long each replica may take to answer GET /health with 200.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub service_ready_timeout: Duration,
    /// Instances of the service, each on its own port; the users are spread across them.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
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
    /// Designs (rows), comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub designs: String,
    /// Lock services, comma-separated, or `all` (single, sentinel, redlock): each design
    /// gets a row per service, named `design@service` off a single Redis (docs/locks.md).
    #[arg(long, default_value = "single", value_name = "SERVICES")]
    pub lock_services: String,
    /// Faults (columns), comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub faults: String,
    /// Runs per (design, fault), with seeds --seed, --seed+1, ... (`--repeat K` is the
    /// same): each cell then reports its detection rate, and a cell whose expectation held
    /// in some runs only is flaky.
    #[arg(long, visible_alias = "repeat", default_value_t = 1)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long each cell's clients run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Cells run at the same time (each starts its own servers).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// A cell still running after this long is stopped (Ctrl-C, then SIGKILL) and
    /// reported as a harness error (default: twice --time-limit plus 3 minutes, room for
    /// starting containers, op timeouts and the report).
    #[arg(long, value_parser = parse_duration)]
    pub cell_timeout: Option<Duration>,
    /// Run only shard K of N (cells whose position is K-1 modulo N), e.g. 2/4: N CI
    /// runners given the same arguments share one matrix.
    #[arg(long, default_value = "1/1")]
    pub shard: String,
    /// Write one JUnit testcase per cell to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Replace a design's declared expectation for one cell: DESIGN:FAULT=valid|invalid|either
    /// (repeatable), e.g. `--expect my-design:kill-db=invalid`.
    #[arg(long)]
    pub expect: Vec<String>,
    /// Store root; the matrix goes to STORE/matrix/<timestamp>/.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Compare with a previous matrix (its matrix.json or directory): the page shows what
    /// changed first, JUnit marks regressions, and the exit code is 1 only on a
    /// regression (or a new cell that fails).
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// Append a markdown summary for reviewers to FILE (verdict, the worst cell's
    /// business headline and anomaly, the diff against --baseline, links to the reports),
    /// e.g. $GITHUB_STEP_SUMMARY.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Further `overbook run` options for every cell, after `--`
    /// (e.g. `-- --concurrency 16 --lock-ttl 1s`).
    #[arg(last = true)]
    pub run_args: Vec<String>,
}

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

/// `overbook matrix diff OLD NEW`.
#[derive(Debug, Args)]
pub struct MatrixDiffArgs {
    /// The earlier matrix: its matrix.json, or the directory holding it.
    pub old: PathBuf,
    /// The later matrix.
    pub new: PathBuf,
    /// Also write the diff as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the new matrix as JUnit, regressions marked, here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

/// `overbook matrix trend`.
#[derive(Debug, Args)]
pub struct MatrixTrendArgs {
    /// Store root: reads STORE/matrix/*/matrix.json, writes STORE/matrix/trend.html.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// How many of the newest matrices (shards left out when a merge covers them).
    #[arg(long, default_value_t = 14)]
    pub last: usize,
}

/// `overbook matrix merge DIR...`.
#[derive(Debug, Args)]
pub struct MatrixMergeArgs {
    /// Matrix directories (STORE/matrix/<timestamp>/), one per shard.
    pub dirs: Vec<PathBuf>,
    /// Store root for the merged matrix (STORE/matrix/<timestamp>-merged/).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Write one JUnit testcase per cell to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Merge even when some shards are missing (or a directory has no plan.json): the
    /// merged verdict then covers only the cells present.
    #[arg(long)]
    pub allow_partial: bool,
    /// Compare the merged matrix with a previous one (see `matrix --baseline`).
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// Append the merged matrix's markdown summary to FILE (as `matrix --summary-md`).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// Bench subcommands' bounds, checked as the flags are parsed (exit 2 naming the range):
/// a zero count measures nothing (or divides by it), an absurd one runs for days or
/// exhausts memory or file descriptors far from the command line.
/// Rounds (and `bench check --runs`).
pub const MAX_BENCH_ROUNDS: u64 = 100;
/// Concurrent users or connections, as for `run` (each holds several sockets).
pub const MAX_BENCH_CONCURRENCY: u64 = 1000;
/// Rooms, as for `run`.
pub const MAX_BENCH_ROOMS: u64 = 100_000;
/// `bench detect --seeds`: one run each.
pub const MAX_BENCH_SEEDS: u64 = 10_000;
/// `bench check --ops`: the history is held in memory.
pub const MAX_BENCH_OPS: u64 = 50_000_000;
/// `bench proxy --requests`.
pub const MAX_BENCH_REQUESTS: u64 = 100_000_000;
/// `bench proxy --pipeline`.
pub const MAX_BENCH_PIPELINE: u64 = 1000;

/// A bench measurement's length: a duration from 100 ms (shorter measures start-up,
/// not throughput) to one hour (each is repeated per round and side).
pub fn parse_bench_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    let (lo, hi) = (Duration::from_millis(100), Duration::from_secs(3600));
    if d < lo || d > hi {
        return Err(format!("{s:?} is out of range: allowed 100ms to 60m"));
    }
    Ok(d)
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
        assert_eq!(args.design, "lock-only");
        assert_eq!(args.faults, vec!["slow-writes".to_string()]);
        assert_eq!(args.db_latency, Duration::from_millis(600));
        let (cfg, _) = crate::cli::run::config_from_args(&args).unwrap();
        assert_eq!(cfg.lock_ttl, Duration::from_millis(500));
        assert_eq!((cfg.rooms, cfg.window_days), (5, 60));
        assert_eq!(args.margin_warn, WarnFraction::DEFAULT);
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
