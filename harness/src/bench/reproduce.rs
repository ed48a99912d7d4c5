//! `overbook bench reproduce RUN_DIR --times K`: how often a failing run's printed
//! reproduce command catches the failure again. DESIGN.md's bar: at least 95%.
//!
//! The command is rebuilt from the run's structured meta (`meta.json` `argv`, the words
//! the runner wrote), never by handing a string from the run directory to a shell: a run
//! directory may come from anywhere. Each try is a child `overbook run` of the spec those
//! words parse to (its own store under `RUN_DIR/reproduce/`), as shrink runs its
//! candidates. A run of a service under test (`--service CMD`) is refused: repeating it
//! would run a shell command read from the run directory.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reports::summary::Rate;

use super::options::BenchReproduceArgs;
use crate::run::spec::command::RunCommand;
use crate::shrink::candidate::{run_once, Tally, Try};

/// How a run's command words become its spec: the CLI's parser, handed in by the binary
/// (`cli::run::spec_from_words`) so that the benchmarks never import the command line.
pub type SpecParser = fn(&[String]) -> anyhow::Result<crate::run::spec::RunSpec>;

/// Runs `overbook bench reproduce`, the run directory's command parsed by `parse`.
pub fn run(args: &BenchReproduceArgs, parse: SpecParser) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let meta = crate::shrink::failing_run(dir)?;
    if !(1..=1000).contains(&args.times) {
        bail!("--times {} is out of range: allowed 1 to 1000", args.times);
    }
    if meta.argv.is_empty() {
        bail!(
            "{}: meta.json has no argv (written by an older overbook): rerun its command \
             yourself, or make the run again with this version",
            dir.display()
        );
    }
    let command = RunCommand::from_words(meta.argv.clone())
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let spec = parse(command.options()).map_err(|e| {
        anyhow::anyhow!(
            "{}: the reproduce command does not parse: {e}",
            dir.join(crate::store::META).display()
        )
    })?;
    if spec.service.is_some() {
        bail!(
            "{}: a run of a service under test repeats a shell command read from the run \
             directory; run its reproduce command yourself if you trust it",
            dir.display()
        );
    }
    // Images, external URLs, a schema: someone else's choice, shown and asked for as
    // shrink does (no --trust-run here: a terminal's yes, else refused).
    crate::shrink::trust(dir, &spec.foreign_inputs(), false)?;
    let checked = spec.check()?;
    let work = dir.join("reproduce");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let exe = std::env::current_exe().context("cannot find the overbook executable")?;
    let deadline = spec.time_limit * 2 + Duration::from_secs(60);
    println!("bench reproduce: {} times", args.times);
    println!("  {command}");
    let started = Instant::now();
    let mut tally = Tally::default();
    for i in 1..=args.times {
        let log = work.join(format!("try-{i}.log"));
        let t = run_once(
            &exe,
            checked.spec(),
            checked.seed(),
            &work.join("store"),
            &log,
            deadline,
        );
        let said = match &t {
            Try::Failed { .. } => "fails again".to_string(),
            Try::Passed => "passes".to_string(),
            Try::NoVerdict(why) => format!("no verdict ({why})"),
        };
        // stderr, one line each, as shrink does: a CI log shows the bench moving.
        eprintln!(
            "reproduce [{:>4.0}s] try {i}/{}: {said}",
            started.elapsed().as_secs_f64(),
            args.times
        );
        tally.add(t);
    }
    let rate = Rate::wilson(u64::from(tally.failed), u64::from(tally.decided()));
    println!(
        "re-detected {}{}; {:.0} s in all",
        rate.describe(),
        if tally.no_verdict > 0 {
            format!(", {} more without a verdict", tally.no_verdict)
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
