//! The `overbook` harness: everything that owns processes, sockets and files.
//!
//! - [`cli`]: the command line (clap).
//! - [`check`]: `overbook check`, judging a history file.
//! - [`recorder`]: appends the history to disk as the run goes.
//! - [`node`]: the Redis and Postgres servers (local processes or external), each behind
//!   a [`proxy`] that injects network faults; [`cleanup`] makes sure none outlives us.

pub mod check;
pub mod cleanup;
pub mod cli;
pub mod node;
pub mod proxy;
pub mod recorder;

/// Exit code for "the harness could not do its job" (bad input, cannot start a node).
pub const EXIT_HARNESS_ERROR: u8 = 2;
