//! `overbook`: a Jepsen-style correctness harness for booking systems.
//! Exit codes everywhere: 0 valid, 1 anomalies found, 2 the harness itself failed.

use std::process::ExitCode;

use clap::Parser;

use harness::cli::{Cli, Command};
use harness::{check, EXIT_HARNESS_ERROR};

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
