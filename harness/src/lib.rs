//! The `overbook` harness: everything that owns processes, sockets and files.
//!
//! - [`cli`]: the command line (clap).
//! - [`check`]: `overbook check`, judging a history file.
//! - [`bench_check`]: `overbook bench check`, its speed and memory.
//! - [`runner`]: composes nodes, nemesis, clients and checkers into one run;
//!   [`run_cmd`] is its CLI edge, [`store`] its directory, [`runlog`] its log.
//! - [`matrix`]: `overbook matrix`, every design under every fault, planned by
//!   [`matrix_plan`] and sharded for CI.
//! - [`recorder`]: appends the history to disk as the run goes.
//! - [`report_cmd`]: `overbook report`, the HTML report and the store's index page.
//! - [`node`]: the Redis and Postgres servers (local processes or external), each behind
//!   a [`proxy`] that injects network faults; [`cleanup`] makes sure none outlives us.
//! - [`nemesis`]: plans fault windows from the seed and applies them during a run.
//! - [`up`]: `overbook up`, the servers behind their proxies for manual experiments.
//! - [`bench_run`]: `overbook bench run` (harness vs pgbench) and `bench detect`.
//! - [`bench_proxy`]: `overbook bench proxy`, what the proxy costs with no fault.
//! - [`bench_backends`]: `overbook bench backends`, servers' start-to-ready, local vs docker.
//! - [`clean`]: `overbook clean`, removes what a killed docker run left.

pub mod bench_backends;
pub mod bench_check;
pub mod bench_proxy;
pub mod bench_run;
pub mod check;
pub mod clean;
pub mod cleanup;
pub mod cli;
pub mod matrix;
pub mod matrix_plan;
pub mod nemesis;
pub mod node;
pub mod proxy;
pub mod recorder;
pub mod report_cmd;
pub mod run_cmd;
pub mod runlog;
pub mod runner;
pub mod store;
pub mod up;
pub mod wire;

/// Exit code for "the harness could not do its job" (bad input, cannot start a node).
pub const EXIT_HARNESS_ERROR: u8 = 2;
