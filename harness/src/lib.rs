//! The `overbook` harness: everything that owns processes, sockets and files.
//!
//! The modules follow the data flow of a run, one folder per stage:
//!
//! - [`cli`]: one file per subcommand: parse arguments, call the engine, print.
//! - [`run`]: [`run::RunConfig`] and the run loop: the generator feeds simulated users
//!   who drive the system under test while the nemesis injects faults; the recorder
//!   appends every op to the history; then the checkers judge it and the store keeps it.
//! - [`sut`]: the system under test, behind the [`sut::System`] / [`sut::Session`] seam
//!   (Jepsen's client): the built-in designs are one implementation.
//! - [`nemesis`]: the pure fault schedule and the faults in force, held as guards.
//!   The faults themselves are a table in `workloads::fault`.
//! - [`nodes`]: the Redis and Postgres servers (local processes, docker, external), each
//!   behind its fault [`nodes::proxy`]; [`nodes::process`] signals them and
//!   [`nodes::reaper`] makes sure none outlives us.
//! - [`matrix`]: every design under every fault, planned, sharded, merged, as JUnit;
//!   diffed against last night, repeated for rates, drawn as a trend.
//! - [`shrink`]: from a failing run, the smallest configuration that still fails.
//! - [`store`]: a run's directory (every file name once), its metadata, the index page.
//! - [`bench`]: the benchmarks behind `overbook bench`.
//!
//! The Postgres and Redis protocols, followed message by message so the proxy can aim a
//! fault at one statement, answer, grant or renewal, are the `wire` crate's (pure, no
//! tokio).

pub mod bench;
pub mod cli;
pub mod matrix;
pub mod nemesis;
pub mod nodes;
pub mod run;
pub mod shrink;
pub mod store;
pub mod sut;

use std::process::ExitCode;

use checkers::Validity;

/// Exit code for "the harness could not do its job" (bad input, cannot start a node).
pub const EXIT_HARNESS_ERROR: u8 = 2;

/// The exit code of a verdict: 0 valid, 1 invalid, 2 unknown (nothing trustworthy to say).
pub fn exit_code(v: Validity) -> ExitCode {
    match v {
        Validity::Valid => ExitCode::SUCCESS,
        Validity::Invalid => ExitCode::from(1),
        Validity::Unknown => ExitCode::from(EXIT_HARNESS_ERROR),
    }
}
