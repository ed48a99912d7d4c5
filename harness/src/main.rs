//! `overbook`: a Jepsen-style correctness harness for booking systems.
//! Exit codes everywhere: 0 valid, 1 anomalies found, 2 the harness itself failed.

use std::process::ExitCode;

use clap::Parser;

use harness::cli::{ApiCommand, BenchCommand, Cli, Command, MatrixCommand};
use harness::{bench, cli, matrix, EXIT_HARNESS_ERROR};

fn main() -> ExitCode {
    let parsed = Cli::parse();
    // Ctrl-C, SIGTERM or a panic must never leave a paused or orphaned server behind.
    if let Err(e) = harness::nodes::reaper::install() {
        eprintln!("overbook: warning: no Ctrl-C cleanup: {e}");
    }
    let result = match &parsed.command {
        Command::Run(args) => {
            harness::run::log::init();
            cli::run::run(args)
        }
        Command::Matrix(args) => match &args.command {
            Some(MatrixCommand::Merge(m)) => matrix::merge(m),
            Some(MatrixCommand::Diff(d)) => matrix::diff::run(d),
            Some(MatrixCommand::Trend(t)) => matrix::trend::run(t),
            None => cli::matrix::run(args),
        },
        Command::Check(args) => cli::check::run(args),
        Command::Up(args) => cli::up::run(args),
        Command::Clean(args) => cli::clean::run(args),
        Command::Doctor => cli::doctor::run(),
        Command::Shrink(args) => cli::shrink::run(args),
        Command::Api(args) => match &args.command {
            ApiCommand::Check(a) => cli::api::check(a),
        },
        Command::Report(args) => cli::report::run(args),
        Command::Bench(args) => match &args.command {
            BenchCommand::Check(a) => bench::check::run(a),
            BenchCommand::Proxy(a) => bench::proxy::run(a),
            BenchCommand::Run(a) => bench::run::run(a),
            BenchCommand::Detect(a) => bench::run::detect(a),
            BenchCommand::Backends(a) => bench::backends::run(a),
            BenchCommand::Service(a) => bench::service::run(a),
            BenchCommand::Reproduce(a) => {
                bench::reproduce::run(a, cli::run::spec_from_words::<String>)
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // The error may name an address (redacted) and quote a service's log or a
            // run directory's contents (escaped line by line for the terminal).
            let text = format!("{err:#}");
            let text = checkers::text::redact_credentials(&text);
            for (i, line) in text.lines().enumerate() {
                let line = checkers::text::for_terminal(line);
                if i == 0 {
                    eprintln!("overbook: error: {line}");
                } else {
                    eprintln!("{line}");
                }
            }
            ExitCode::from(EXIT_HARNESS_ERROR)
        }
    }
}
