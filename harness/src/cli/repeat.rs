//! `overbook run --repeat K`: the same run with K seeds, one after another, and what
//! they say together: how often the design was caught (with a 95% Wilson interval: 3/3
//! is not certainty), and whether the expectation held in every run, in none, or only in
//! some (flaky: for a safe design a finding all the same, for a canary a sign that its
//! fault does not reliably make the race happen).

use std::process::ExitCode;

use anyhow::bail;
use checkers::Validity;
use reports::summary::Rate;

use crate::matrix::RunSummaryFile;
use crate::run::spec::{Expect, RunSpec};

/// The most repeats: more is a benchmark (`overbook bench detect`).
pub const MAX_REPEAT: u64 = crate::matrix::MAX_SEEDS;

/// One run of a spec, its verdict written to the file given (`cli::run::run_spec`).
pub type RunOne = fn(&RunSpec, Option<&std::path::Path>) -> anyhow::Result<ExitCode>;

/// Runs `overbook run --repeat K` of `spec`, each run by `run_one`.
pub fn run(spec: &RunSpec, k: u64, run_one: RunOne) -> anyhow::Result<ExitCode> {
    if !(1..=MAX_REPEAT).contains(&k) {
        bail!("--repeat {k} is out of range: allowed 1 to {MAX_REPEAT}");
    }
    // Every argument is checked once, before the first run.
    let first = spec.check()?.seed();
    if first.checked_add(k).is_none() {
        bail!("--seed {first} + --repeat {k} overflows");
    }
    let scratch = crate::nodes::tempdir::Scratch::new("repeat")
        .map_err(|e| anyhow::anyhow!("cannot make a temp dir for the runs' outcomes: {e}"))?;
    let mut outcomes: Vec<(u64, Option<RunSummaryFile>)> = Vec::new();
    for i in 0..k {
        let seed = first + i;
        println!("=== run {}/{k}, seed {seed}", i + 1);
        let file = scratch.path().join(format!("run-{i}.json"));
        let one = RunSpec {
            seed: Some(seed),
            ..spec.clone()
        };
        let code = run_one(&one, Some(&file));
        let summary = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<RunSummaryFile>(&b).ok());
        let interrupted = matches!(&code, Ok(c) if *c == ExitCode::from(130));
        if let Err(e) = &code {
            eprintln!("overbook: run with seed {seed} failed: {e:#}");
        }
        outcomes.push((seed, summary));
        if interrupted {
            println!("interrupted: stopping after {} of {k} runs", i + 1);
            break;
        }
    }
    Ok(report(spec.expect, &outcomes))
}

/// Prints what the runs say together and returns the exit code: 2 when no run gave a
/// verdict; with `--expect`, 0 when it held in every run, 1 when flaky or never; without,
/// 1 when any run found an anomaly.
fn report(expect: Option<Expect>, outcomes: &[(u64, Option<RunSummaryFile>)]) -> ExitCode {
    let verdicts: Vec<(u64, Option<Validity>)> = outcomes
        .iter()
        .map(|(s, o)| (*s, o.as_ref().map(|o| o.validity)))
        .collect();
    let decided: Vec<(u64, Validity)> = verdicts
        .iter()
        .filter_map(|(s, v)| match v {
            Some(v @ (Validity::Valid | Validity::Invalid)) => Some((*s, *v)),
            _ => None,
        })
        .collect();
    let caught = decided
        .iter()
        .filter(|(_, v)| *v == Validity::Invalid)
        .count() as u64;
    let rate = Rate::wilson(caught, decided.len() as u64);
    println!(
        "\nrepeat: {} runs, {} with a verdict",
        outcomes.len(),
        decided.len()
    );
    println!(
        "  caught (invalid) in {} (95% Wilson interval)",
        rate.describe()
    );
    let no_verdict: Vec<String> = verdicts
        .iter()
        .filter(|(_, v)| !matches!(v, Some(Validity::Valid | Validity::Invalid)))
        .map(|(s, _)| s.to_string())
        .collect();
    if !no_verdict.is_empty() {
        println!(
            "  no verdict (unknown or harness error), not counted: seeds {}",
            no_verdict.join(", ")
        );
    }
    if decided.is_empty() {
        eprintln!("overbook: no run gave a verdict: treating as a harness failure");
        return ExitCode::from(crate::EXIT_HARNESS_ERROR);
    }
    let wanted = match expect {
        Some(Expect::Valid) => Validity::Valid,
        Some(Expect::Invalid) => Validity::Invalid,
        None => {
            return if caught > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    };
    let held = decided.iter().filter(|(_, v)| *v == wanted).count();
    let seeds = |want: bool| {
        decided
            .iter()
            .filter(|(_, v)| (*v == wanted) == want)
            .map(|(s, _)| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if held == decided.len() {
        println!("  expected {}: held in every run", wanted.as_str());
        ExitCode::SUCCESS
    } else if held == 0 {
        println!("  expected {}: FAILED in every run", wanted.as_str());
        ExitCode::from(1)
    } else {
        println!(
            "  expected {}: FLAKY, held in {held}/{} runs (seeds {}), not in seeds {}",
            wanted.as_str(),
            decided.len(),
            seeds(true),
            seeds(false)
        );
        ExitCode::from(1)
    }
}
