//! `overbook`: a Jepsen-style correctness harness for booking systems.
//! Exit codes everywhere: 0 valid, 1 anomalies found, 2 the harness itself failed.

use std::process::ExitCode;

use clap::Parser;

use harness::bench_check;
use harness::cli::{BenchCommand, Cli, Command};
use harness::{check, EXIT_HARNESS_ERROR};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ctrl-C, SIGTERM or a panic must never leave a paused or orphaned server behind.
    if let Err(e) = harness::cleanup::install() {
        eprintln!("overbook: warning: no Ctrl-C cleanup: {e}");
    }
    let result = match &cli.command {
        Command::Run(args) => {
            harness::runlog::init();
            harness::run_cmd::run(args)
        }
        Command::Matrix(args) => match &args.command {
            Some(harness::cli::MatrixCommand::Merge(m)) => harness::matrix::merge(m),
            None => harness::matrix::run(args),
        },
        Command::Check(args) => check::run(args),
        Command::Up(args) => harness::up::run(args),
        Command::Clean(args) => harness::clean::run(args),
        Command::Report(args) => harness::report_cmd::run(args),
        Command::Bench(args) => match &args.command {
            BenchCommand::Check(a) => bench_check::run(a),
            BenchCommand::Proxy(a) => harness::bench_proxy::run(a),
            BenchCommand::Run(a) => harness::bench_run::run(a),
            BenchCommand::Detect(a) => harness::bench_run::detect(a),
            BenchCommand::Backends(a) => harness::bench_backends::run(a),
        },
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("overbook: error: {err:#}");
            ExitCode::from(EXIT_HARNESS_ERROR)
        }
    }
}
