//! The command line. Each subcommand's arguments are a plain struct so its module can be
//! driven from tests without parsing.

use std::path::PathBuf;

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
    /// Check a history file (JSON Lines, `-` for stdin) and print the verdict.
    Check(CheckArgs),
    /// Re-render a run's report (RUN_DIR/report.html) from its history.jsonl and meta.json.
    Report(ReportArgs),
    /// Measure overbook itself, e.g. `bench check`: how fast `overbook check` is.
    Bench(BenchArgs),
    /// Start Redis and Postgres behind their fault proxies and hold them until Ctrl-C.
    Up(UpArgs),
}

/// `overbook check FILE`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history to check, in overbook's JSONL format; `-` reads standard input.
    pub file: PathBuf,
    /// Print the full result as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Count lock-exclusion findings towards the verdict (by default they are reported
    /// but the lock is coordination, not correctness).
    #[arg(long)]
    pub strict_lock: bool,
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
}

/// `overbook bench check`.
#[derive(Debug, Args)]
pub struct BenchCheckArgs {
    /// Events in the generated history.
    #[arg(long, default_value_t = 1_000_000)]
    pub ops: usize,
    /// Measurements of each kind; the best is reported.
    #[arg(long, default_value_t = 3)]
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
    /// Requests per test (-n).
    #[arg(long, default_value_t = 200_000)]
    pub requests: u64,
    /// Parallel connections (-c).
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// Pipelined requests per connection (-P).
    #[arg(long, default_value_t = 1)]
    pub pipeline: u32,
    /// Rounds of direct-then-proxy; the best of each is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}
