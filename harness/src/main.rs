//! `overbook`: a Jepsen-style correctness harness for booking systems.
//!
//! - [`cli`]: the command line (clap).
//! - [`check`]: `overbook check`, judging a history file.
//!
//! Exit codes everywhere: 0 valid, 1 anomalies found, 2 the harness itself failed.

mod check;
mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Exit code for "the harness could not do its job" (bad input, cannot start a node).
pub const EXIT_HARNESS_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("overbook: error: {err:#}");
            ExitCode::from(EXIT_HARNESS_ERROR)
        }
    }
}
