//! The `overbook` harness: everything that owns processes, sockets and files.
//!
//! - [`cli`]: the command line (clap).
//! - [`check`]: `overbook check`, judging a history file.
//! - [`recorder`]: appends the history to disk as the run goes.

pub mod check;
pub mod cli;
pub mod recorder;

/// Exit code for "the harness could not do its job" (bad input, cannot start a node).
pub const EXIT_HARNESS_ERROR: u8 = 2;
