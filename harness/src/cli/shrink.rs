//! `overbook shrink RUN_DIR`: the arguments; the search is in [`crate::shrink`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::cli::parse_duration;
use crate::cli::run::spec_from_words;
use crate::run::spec::command::RunCommand;
use crate::run::spec::RunSpec;

/// `overbook shrink`.
#[derive(Debug, Clone, Args)]
pub struct ShrinkArgs {
    /// A failing run's directory (store/<test>/<stamp>): its meta.json holds the command
    /// to shrink.
    pub dir: PathBuf,
    /// How long the search may take in all; it stops before a try that would not fit.
    #[arg(long, default_value = "4m", value_parser = parse_duration)]
    pub budget: Duration,
    /// Runs per candidate (seeds from the run's own), to estimate how often it fails.
    #[arg(long, default_value_t = 3)]
    pub tries: u32,
    /// Runs of the shrunk configuration in all, budget permitting: its failure rate is
    /// measured on these.
    #[arg(long, default_value_t = 10)]
    pub confirm: u32,
    /// A candidate still fails when at least this share of its tries with a verdict fail
    /// (0.8: with 3 tries, every one; a reproducer that fails half the time is not one).
    #[arg(long, default_value_t = 0.8)]
    pub min_rate: f64,
    /// Run what the run directory names that executes or connects beyond overbook's own
    /// servers (a --service command, a --schema file, a --service-dir, a --read-sql
    /// query, external URLs, images) without asking. A run directory is input from
    /// whoever made it (a CI artifact, a fork's): without this flag those values are
    /// shown and need a yes on a terminal, and anything else refuses them.
    #[arg(long)]
    pub trust_run: bool,
}

/// Runs `overbook shrink`: the failing run's command parsed into a spec here, trusted
/// by the user, then searched by [`crate::shrink::run`].
pub fn run(args: &ShrinkArgs) -> anyhow::Result<ExitCode> {
    let meta = crate::shrink::failing_run(&args.dir)?;
    let base = spec_of_run(&meta.command, &args.dir.join(crate::store::META))?;
    crate::shrink::trust(&args.dir, &base.foreign_inputs(), args.trust_run)?;
    let opts = crate::shrink::Options {
        budget: args.budget,
        tries: args.tries,
        confirm: args.confirm,
        min_rate: args.min_rate,
    };
    crate::shrink::run(&opts, &args.dir, base)
}

/// The spec a run's reproduce `command` (from `whence`, its meta.json) runs: parsed as
/// `overbook run` parses its command line. Runs nothing.
pub fn spec_of_run(command: &str, whence: &std::path::Path) -> anyhow::Result<RunSpec> {
    let words =
        RunCommand::parse(command).map_err(|e| anyhow::anyhow!("{}: {e}", whence.display()))?;
    spec_from_words(words.options()).map_err(|e| {
        anyhow::anyhow!(
            "{}: the reproduce command does not parse: {e}",
            whence.display()
        )
    })
}
