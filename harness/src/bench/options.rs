//! `overbook bench`'s flags: each benchmark's own options, with their bounds checked as
//! they are parsed (the CLI composes them into its command line).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::run::spec::parse_duration;

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
