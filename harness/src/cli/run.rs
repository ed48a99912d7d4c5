//! `overbook run`: the CLI edge of the runner. Turns the flags the user gave into a
//! [`RunSpec`] (the spec decides everything else), prints the verdict in plain words, and
//! maps it to an exit code.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use checkers::text::for_terminal;
use checkers::{Headline, Validity};

use crate::cli::RunArgs;
use crate::nodes::Backend;
use crate::run::spec::{BackendKind, Expect, RunSpec, EXTERNAL_POSTGRES_VAR, EXTERNAL_REDIS_VAR};
use crate::run::{self, RunConfig};

/// The spec `overbook run OPTIONS` asks for, from the options' words (a run's
/// `meta.json` argv, a matrix's options after `--`): the same parser as the command line.
pub fn spec_from_words<S: AsRef<str>>(options: &[S]) -> anyhow::Result<RunSpec> {
    use clap::Parser;
    let argv = ["overbook", "run"]
        .into_iter()
        .chain(options.iter().map(AsRef::as_ref));
    let cli = crate::cli::Cli::try_parse_from(argv)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    let crate::cli::Command::Run(args) = cli.command else {
        anyhow::bail!("the options changed the subcommand");
    };
    if args.repeat != 1 || args.outcome_file.is_some() {
        anyhow::bail!("--repeat and --outcome-file are not options of one run");
    }
    args.spec()
}

/// The latency-vs-lease alert of the story, from lease-margin's measurements: where the
/// critical sections' p99.9 stood against the lease, the lease that would keep it under
/// the warning fraction, and the rule to paste into monitoring (docs/alerts.md).
fn print_alert(results: &checkers::Results) {
    let Some(alert) = results
        .checks
        .iter()
        .find_map(|c| c.margin.as_ref())
        .and_then(|m| m.alert())
    else {
        return;
    };
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    println!(
        "\n  lease {:.0} ms; critical-section p99.9: {} without faults, {} worst under a fault{}",
        alert.lease_ms,
        ms(alert.healthy_p999_ms),
        ms(alert.worst_p999_ms),
        alert
            .worst_window
            .as_deref()
            .map(|w| format!(" ({})", for_terminal(w)))
            .unwrap_or_default()
    );
    println!(
        "  a lease of at least {} ms keeps the measured p99.9 under the warning; alert rule (Prometheus):",
        alert.suggested_lease_ms
    );
    for line in alert.rule.lines() {
        println!("    {line}");
    }
}

/// When the default `auto` backend fell back to containers, says so in one line: the
/// first run on a machine without the servers just works, and says why it is slower than
/// it could be.
pub(crate) fn say_fallback(asked: BackendKind, resolved: &Backend) {
    if let (BackendKind::Auto, Backend::Docker { images }) = (asked, resolved) {
        let local = crate::nodes::machine::LocalServers::find();
        eprintln!("{}", crate::nodes::machine::fallback_note(&local, images));
    }
}

/// Runs `overbook run` and returns the exit code.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let spec = args.spec()?;
    if args.repeat != 1 {
        return crate::cli::repeat::run(&spec, args.repeat, run_spec);
    }
    run_spec(&spec, args.outcome_file.as_deref())
}

/// Runs one spec: checks it, resolves its backend, runs, prints the verdict; writes the
/// verdict as JSON to `outcome_file` when given (the matrix's cells, `--repeat`).
pub fn run_spec(spec: &RunSpec, outcome_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let checked = spec.check()?;
    // Only now is the machine asked anything (docker's images, whether it answers).
    let cfg = checked.config(spec.resolve_backend()?);
    let expect = spec.expect;
    say_fallback(spec.backend, &cfg.backend);
    let subject = match &cfg.service {
        Some(s) if s.replicas == 1 => format!("service `{}`", s.command),
        Some(s) => format!("service `{}` x {} replicas", s.command, s.replicas),
        None => cfg.design.to_string(),
    };
    println!(
        "overbook: {} under {} for {:?}, {} users, lease {:?}, seed {}",
        subject,
        cfg.faults
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("+"),
        cfg.time_limit,
        cfg.concurrency,
        cfg.lock_ttl,
        cfg.seed
    );
    // The first Ctrl-C ends the test early but still checks and writes what was recorded.
    crate::nodes::reaper::route_first_signal();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = rt.block_on(run::run(&cfg)).context("run failed")?;
    // Don't wait for stray client tasks (e.g. a connection blocked on a partition).
    rt.shutdown_timeout(Duration::from_secs(1));
    print_verdict(&cfg, &outcome, &subject);
    let code = exit_code(&cfg, &outcome, expect);
    if let Some(file) = &spec.summary_md {
        crate::matrix::summary_md::write_run(file, &outcome.dir.path, &outcome.results)?;
        println!("  summary:   {}", file.display());
    }
    if let Some(path) = outcome_file {
        write_outcome(path, &cfg, &outcome)?;
    }
    if let (Some(Expect::Invalid), Validity::Invalid) = (expect, outcome.results.validity) {
        println!("  expected invalid: caught, as expected");
    }
    if outcome.interrupted {
        // What a shell expects of a command stopped by SIGINT, after the files are written.
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::from(code))
}

/// What each checker said, the headline, the alert, the service's notes, the verdict and
/// where the files are.
fn print_verdict(cfg: &RunConfig, outcome: &run::RunOutcome, subject: &str) {
    let results = &outcome.results;
    println!();
    for check in &results.checks {
        println!(
            "  {:<22} {:<8} {}",
            for_terminal(&check.checker),
            check.validity.as_str(),
            for_terminal(&check.summary)
        );
        for a in check.anomalies.iter().take(5) {
            println!("      - {}", for_terminal(&a.message));
        }
        if check.anomalies.len() > 5 {
            println!(
                "      ... and {} more (see results.json)",
                check.anomalies.len() - 5
            );
        }
    }
    if let Some(harm) = checkers::harm::headline(results) {
        println!("\n  What it cost the guests: {harm}.");
    }
    match results.headline {
        Headline::LockFailedDatabaseHeld => println!("\n  The lock failed (two holders at once), the database held: no room-night was confirmed twice."),
        Headline::LockFailedUnguarded => println!("\n  The lock failed (two holders at once) under a design that trusts it: nothing else guards the room-nights."),
        Headline::LockFailedDataHeld => println!("\n  The lock failed (two holders at once); the data shows no anomaly (what guards it is not declared)."),
        _ => {}
    }
    print_alert(results);
    print_service_notes(&outcome.notes);
    println!(
        "\n{}: {} ({} ops in {:.1}s)",
        match results.validity {
            Validity::Valid => "VALID",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "UNKNOWN",
        },
        subject,
        outcome.ops,
        outcome.wall.as_secs_f64()
    );
    if outcome.interrupted {
        println!("  interrupted: the verdict covers only the part of the run before Ctrl-C");
    }
    println!("  run dir:   {}", outcome.dir.path.display());
    println!("  report:    {}", outcome.dir.file("report.html").display());
    println!(
        "  history:   {}",
        outcome.dir.file("history.jsonl").display()
    );
    println!("  reproduce: {}", for_terminal(&cfg.command));
    if cfg.command.contains(EXTERNAL_REDIS_VAR) {
        println!(
            "             (set {EXTERNAL_REDIS_VAR} and {EXTERNAL_POSTGRES_VAR} to the servers' URLs first)"
        );
    }
}

/// The exit code: 0 when the verdict is the one expected (valid without `--expect`), 1
/// when not, 2 when there is no verdict.
fn exit_code(cfg: &RunConfig, outcome: &run::RunOutcome, expect: Option<Expect>) -> u8 {
    let results = &outcome.results;
    let problems = outcome.conditions.problems();
    if !problems.is_empty() {
        eprintln!("overbook: this run did not test what it claims:");
        for p in &problems {
            eprintln!("  - {p}");
        }
    }
    match (results.validity, expect) {
        (Validity::Unknown, _) => {
            if problems.is_empty() {
                eprintln!("overbook: the checkers could not decide (see results.json): treating as a harness failure");
            } else {
                eprintln!("overbook: not a verdict (see run-conditions in results.json): treating as a harness failure");
            }
            crate::EXIT_HARNESS_ERROR
        }
        (Validity::Valid, None | Some(Expect::Valid))
        | (Validity::Invalid, Some(Expect::Invalid)) => 0,
        (Validity::Invalid, None | Some(Expect::Valid)) => 1,
        (Validity::Valid, Some(Expect::Invalid)) => {
            println!(
                "  expected invalid: the canary did not sing (the harness did not catch {}){}",
                cfg.design,
                if outcome.conditions.any_fault_struck() {
                    ""
                } else {
                    "; no fault ran (--fault none): only plain concurrency was tried"
                }
            );
            1
        }
    }
}

/// The verdict as JSON for whoever started this run (`overbook matrix`, `--repeat`).
fn write_outcome(path: &Path, cfg: &RunConfig, outcome: &run::RunOutcome) -> anyhow::Result<()> {
    let results = &outcome.results;
    let summary = crate::matrix::RunSummaryFile {
        dir: outcome.dir.path.clone(),
        validity: results.validity,
        summary: one_line_summary(results),
        command: cfg.command.clone(),
        wall_ms: outcome.wall.as_millis() as u64,
        overhead_ms: outcome.overhead.as_millis() as u64,
        // Read back from disk only here: a plain run does not need them.
        measures: crate::store::load_history(&outcome.dir.file(crate::store::HISTORY))
            .map(|h| crate::matrix::measure::measures(&h, results))
            .unwrap_or_default(),
    };
    crate::store::write_file(path, serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The service's part of the summary: replicas, malformed answers, each log's tail.
fn print_service_notes(notes: &std::collections::BTreeMap<String, String>) {
    if notes.is_empty() {
        return;
    }
    println!();
    // The values are the service's words (its log, its answers): escaped for the terminal.
    for (k, v) in notes {
        let k = for_terminal(k);
        if v.contains('\n') || k.starts_with("service log tail") {
            println!("  {k}:");
            for line in v.lines() {
                println!("    | {}", for_terminal(line));
            }
        } else {
            println!("  {k}: {}", for_terminal(v));
        }
    }
}

/// One line naming what each checker found, e.g.
/// "no-double-booking: 3 anomalies (room 101 nights ... confirmed to ops 14 and 19); lock-exclusion: 5".
pub fn one_line_summary(results: &checkers::Results) -> String {
    let found: Vec<String> = results
        .checks
        .iter()
        .filter(|c| !c.anomalies.is_empty())
        .map(|c| {
            format!(
                "{}: {} anomalies (first: {})",
                c.checker,
                c.anomalies.len(),
                c.anomalies[0].message
            )
        })
        .collect();
    if found.is_empty() {
        return format!("no anomalies; {}", results.validity.as_str());
    }
    // The business headline first, then the checkers' technical line.
    match checkers::harm::headline(results) {
        Some(harm) => format!("{harm}. {}", found.join("; ")),
        None => found.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn command_of(argv: &[&str]) -> String {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("not a run")
        };
        args.spec().unwrap().check().unwrap().command()
    }

    /// Issue 23.10: an external run's reproduce command left out the URLs (it did not
    /// reproduce), and images were not shell-quoted.
    #[test]
    fn reproduce_commands_name_external_urls_without_passwords_and_quote_images() {
        let cmd = command_of(&[
            "overbook",
            "run",
            "--backend",
            "external",
            "--redis-url",
            "redis://:S3cr3t@10.0.0.1:6379/0",
            "--postgres-url",
            "host=10.0.0.2 password=S3cr3t",
            "--fault",
            "none",
        ]);
        assert!(!cmd.contains("S3cr3t"), "{cmd}");
        assert!(
            cmd.contains(
                r#"--redis-url "$OVERBOOK_REDIS_URL" --postgres-url "$OVERBOOK_POSTGRES_URL""#
            ),
            "{cmd}"
        );
        let cmd = command_of(&[
            "overbook",
            "run",
            "--redis-image",
            "my redis;rm -rf x",
            "--postgres-image",
            "pg:15",
            "--fault",
            "none",
        ]);
        assert!(cmd.contains("--redis-image 'my redis;rm -rf x'"), "{cmd}");
        let words = crate::run::spec::command::RunCommand::parse(&cmd).unwrap();
        assert_eq!(words.get("--redis-image"), Some("my redis;rm -rf x"));
        assert_eq!(words.get("--postgres-image"), Some("pg:15"));
    }

    /// Issue 23.9: `--replicas` had no bound and a large one failed mid-start at "too
    /// many open files"; it is refused up front.
    #[test]
    fn replicas_are_bounded() {
        let parse = |n: &str| {
            let cli = crate::cli::Cli::try_parse_from([
                "overbook",
                "run",
                "--service",
                "true",
                "--replicas",
                n,
                "--fault",
                "none",
            ])
            .unwrap();
            let crate::cli::Command::Run(args) = cli.command else {
                panic!("not a run")
            };
            args.spec()
                .and_then(|s| Ok(s.check()?))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(parse("64").is_ok());
        let e = parse("100000").unwrap_err();
        assert!(
            e.contains("--replicas 100000 is out of range: allowed 1 to 64"),
            "{e}"
        );
        assert!(parse("0").is_err());
    }

    /// Issue 24: a spec spelled out as words parses back to the same spec, for every
    /// kind of option: what lets matrix cells, shrinking's tries and reproduce commands
    /// run exactly the run they name.
    #[test]
    fn a_checked_spec_round_trips_through_its_words() {
        for argv in [
            &["--seed", "3"][..],
            &[
                "--design",
                "row-lock",
                "--fault",
                "db-latency",
                "--fault",
                "kill-db",
                "--rate",
                "50",
                "--retry",
                "--idempotency",
                "--strict-lock",
                "--margin-warn",
                "0.5",
                "--slow-sql",
                "FOR UPDATE|x'y",
                "--keep",
            ],
            &[
                "--lock-service",
                "sentinel",
                "--fault",
                "failover-redis",
                "--fault-node",
                "1",
                "--redis-aof",
            ],
            &[
                "--service",
                "exec my 'service'",
                "--replicas",
                "3",
                "--read-sql",
                "select 1",
                "--guard",
                "lock",
                "--fault",
                "kill-service",
            ],
            &[
                "--backend",
                "docker",
                "--redis-image",
                "r:1",
                "--postgres-image",
                "p q",
                "--fault",
                "none",
            ],
        ] {
            let spec = spec_from_words(argv).unwrap();
            let checked = spec.check().unwrap();
            let again = spec_from_words(&checked.spec().words()).unwrap();
            assert_eq!(&again, checked.spec(), "{argv:?}");
            let words = crate::run::spec::command::RunCommand::parse(&checked.command()).unwrap();
            let from_command = spec_from_words(words.options()).unwrap();
            assert_eq!(&from_command, checked.spec(), "{argv:?}");
        }
    }

    /// A matrix cell's tooltip says what the run cost the guests before the checkers'
    /// technical line.
    #[test]
    fn the_one_line_summary_opens_with_the_business_headline() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../checkers/testdata/invalid/told-is-true--confirmed-before-a-commit-that-failed.jsonl");
        let h = crate::store::load_history(&file).unwrap();
        let r = checkers::check_all(&h, &checkers::CheckOptions::default());
        let s = one_line_summary(&r);
        assert!(
            s.starts_with("1 guest was told they had a room they do not have. "),
            "{s}"
        );
        assert!(
            s.contains("told-is-true: 1 anomalies (first: phantom confirmation"),
            "{s}"
        );
    }
}
