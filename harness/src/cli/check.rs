//! `overbook check`: read a history, run every checker, print the verdict.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use checkers::text::for_terminal;
use checkers::{check_all, CheckOptions, Headline, Results, Role, Validity};

use crate::cli::CheckArgs;
use crate::exit_code;
use crate::store::load_history;

/// How many anomalies per checker the human summary lists (`--json` has them all).
const SHOWN_PER_CHECKER: usize = 20;

/// Runs `overbook check` and returns the exit code: 0 valid, 1 invalid, 2 unusable input
/// or an unknown verdict (the reason is printed).
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let opts = CheckOptions {
        strict_lock: args.strict_lock,
        margin_warn: args.margin_warn,
        guard: None,
    };
    let file = match (&args.file, &args.store) {
        (_, Some(store)) => return recheck_store(store, &opts),
        (Some(file), None) => file,
        (None, None) => anyhow::bail!("name a history file (or --store DIR)"),
    };
    if let Some(report) = &args.report {
        if file.as_os_str() != "-" && crate::store::same_file(file, report) {
            anyhow::bail!(
                "--report {} is the history being checked ({}): refusing to overwrite it",
                report.display(),
                file.display()
            );
        }
    }
    let history = load_history(file)?;
    let results = check_all(&history, &opts);
    if let Some(path) = &args.report {
        let meta = reports::RunMeta {
            command: format!("overbook check {}", file.display()),
            ..reports::RunMeta::default()
        };
        crate::store::write_report(path, &history, &results, &meta)?;
    }
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &results)?;
        writeln!(out)?;
    } else {
        out.write_all(summary(&results).as_bytes())?;
    }
    out.flush()?;
    Ok(exit_code(results.validity))
}

/// `overbook check --store DIR`: every stored run (a directory with `history.jsonl`
/// and `results.json`, symlinks not followed) checked again with this version; each
/// run whose verdict or headline differs from what it stored is listed with both, as
/// etcd's robustness suite re-evaluates old reports. Exit 0 when none changed, 1 when
/// any did, 2 when a stored run could not be read (named, the others still checked).
fn recheck_store(store: &std::path::Path, opts: &CheckOptions) -> anyhow::Result<ExitCode> {
    let mut runs = Vec::new();
    collect_runs(store, 0, &mut runs)?;
    runs.sort();
    let (mut changed, mut unreadable) = (0usize, 0usize);
    let mut out = io::stdout().lock();
    for dir in &runs {
        let stored: Result<Results, _> = std::fs::read(dir.join(crate::store::RESULTS))
            .map_err(anyhow::Error::from)
            .and_then(|b| serde_json::from_slice(&b).map_err(anyhow::Error::from));
        let again = load_history(&dir.join(crate::store::HISTORY)).map(|h| check_all(&h, opts));
        match (stored, again) {
            (Ok(old), Ok(new)) => {
                if (old.validity, old.headline) != (new.validity, new.headline) {
                    changed += 1;
                    writeln!(
                        out,
                        "changed  {}: {} ({}) -> {} ({})",
                        for_terminal(&dir.display().to_string()),
                        old.validity.as_str(),
                        old.headline.as_str(),
                        new.validity.as_str(),
                        new.headline.as_str()
                    )?;
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                unreadable += 1;
                writeln!(
                    out,
                    "unread   {}: {}",
                    for_terminal(&dir.display().to_string()),
                    for_terminal(&format!("{e:#}"))
                )?;
            }
        }
    }
    writeln!(
        out,
        "{} runs re-checked under {}: {changed} changed, {unreadable} unreadable",
        runs.len(),
        for_terminal(&store.display().to_string())
    )?;
    Ok(match (changed, unreadable) {
        (_, u) if u > 0 => ExitCode::from(crate::EXIT_HARNESS_ERROR),
        (0, _) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// The run directories under `dir` (a store's `<test>/<stamp>/`, a matrix's cells),
/// a few levels deep, without following links (`latest`).
fn collect_runs(
    dir: &std::path::Path,
    depth: usize,
    runs: &mut Vec<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if dir.join(crate::store::HISTORY).is_file() && dir.join(crate::store::RESULTS).is_file() {
        runs.push(dir.to_path_buf());
        return Ok(());
    }
    if depth >= 5 {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_runs(&e.path(), depth + 1, runs)?;
        }
    }
    Ok(())
}

/// The human summary: one line per checker, its anomalies indented, then the verdict.
/// Text from the history (in messages, summaries, reasons) is shown with control
/// characters and bidirectional overrides escaped ([`for_terminal`]).
pub fn summary(r: &Results) -> String {
    let mut s = String::new();
    for c in &r.checks {
        let _ = writeln!(
            s,
            "{:<21}{:<9}{}",
            for_terminal(&c.checker),
            c.validity.as_str(),
            for_terminal(&c.summary)
        );
        for a in c.anomalies.iter().take(SHOWN_PER_CHECKER) {
            let _ = writeln!(s, "    {}", for_terminal(&a.message));
        }
        if c.anomalies.len() > SHOWN_PER_CHECKER {
            let _ = writeln!(
                s,
                "    ... and {} more (see --json)",
                c.anomalies.len() - SHOWN_PER_CHECKER
            );
        }
        if c.role == Role::Lock
            && c.validity == Validity::Invalid
            && matches!(
                r.headline,
                Headline::LockFailedDatabaseHeld
                    | Headline::LockFailedUnguarded
                    | Headline::LockFailedDataHeld
            )
        {
            let _ = writeln!(s, "    {}", r.headline.phrase());
        }
    }
    let verdict = match r.validity {
        Validity::Valid => "valid".to_string(),
        Validity::Invalid => format!("invalid ({})", for_terminal(&r.invalid_by.join(", "))),
        Validity::Unknown => {
            let parts: Vec<String> = r
                .unknown_reasons
                .iter()
                .map(|u| {
                    format!(
                        "{} ({})",
                        for_terminal(&u.reason),
                        for_terminal(&u.checkers.join(", "))
                    )
                })
                .collect();
            format!("unknown: {}", parts.join("; "))
        }
    };
    // The business headline (no history text in it: counts and fixed words only).
    if let Some(harm) = checkers::harm::headline(r) {
        let _ = writeln!(s, "what it cost the guests: {harm}");
    }
    let _ = writeln!(s, "verdict: {verdict}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EXIT_HARNESS_ERROR;
    use std::path::Path;

    fn corpus(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../checkers/testdata")
            .join(rel)
    }

    fn check(rel: &str) -> Results {
        let h = load_history(&corpus(rel)).unwrap();
        check_all(&h, &CheckOptions::default())
    }

    #[test]
    fn summary_lists_each_checker_its_anomalies_and_the_verdict() {
        let r = check("invalid/no-double-booking--seed-story.jsonl");
        let s = summary(&r);
        assert!(s.starts_with(
            "no-double-booking    invalid  1 anomaly (2 ok bookings checked)\n    room 101 nights 2026-12-02..2026-12-03 confirmed to ops 4 and 5\n"
        ), "{s}");
        assert!(
            s.ends_with("what it cost the guests: 1 room-night was confirmed to two guests\nverdict: invalid (no-double-booking, db-state)\n"),
            "{s}"
        );
        assert_eq!(exit_code(r.validity), ExitCode::from(1));
    }

    #[test]
    fn a_lock_failure_with_the_data_intact_is_said_plainly() {
        let r = check("valid/lock-failed-database-held.jsonl");
        let s = summary(&r);
        assert!(
            s.contains("    the lock failed, the database held\n"),
            "{s}"
        );
        assert!(s.ends_with("verdict: valid\n"));
        assert_eq!(exit_code(r.validity), ExitCode::SUCCESS);
    }

    #[test]
    fn an_unknown_verdict_says_why_once() {
        let r = check("unknown/no-final-read.jsonl");
        let s = summary(&r);
        assert!(s.ends_with("verdict: unknown: no final read (no `ok` read with value.bookings) (confirmed-is-durable, failed-is-absent, db-state, idempotency)\n"), "{s}");
        assert_eq!(exit_code(r.validity), ExitCode::from(EXIT_HARNESS_ERROR));
    }

    #[test]
    fn unusable_input_names_file_line_and_field() {
        let p = corpus("malformed/line2-type--unknown-op-type.jsonl");
        let e = load_history(&p).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.starts_with("unusable history "), "{msg}");
        assert!(msg.ends_with("line 2: field `type`: unknown op type \"okay\" (expected invoke, ok, fail or info)"), "{msg}");
    }

    /// Regression: request ids reached the terminal raw inside anomaly messages, so a
    /// history could clear the screen (`ESC [2J`) or reverse a line (U+202E).
    #[test]
    fn history_text_reaches_the_terminal_escaped() {
        let text = [
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"read"}"#,
            r#"{"index":1,"time":2,"process":1,"type":"ok","f":"read","value":{"bookings":[{"room":1,"from":"2026-12-01","to":"2026-12-03","request":"a\u001b[2J"},{"room":1,"from":"2026-12-02","to":"2026-12-04","request":"b\u202e"}]}}"#,
        ]
        .join("\n");
        let h = checkers::read_history(text.as_bytes()).unwrap();
        let s = summary(&check_all(&h, &CheckOptions::default()));
        assert!(!s.contains('\x1b') && !s.contains('\u{202e}'), "{s}");
        assert!(
            s.contains("twice: requests a\\x1b[2J and b\\u{202e}\n"),
            "{s}"
        );
    }

    /// Regression: a reversed final-read row was judged as a stay (a false overlap),
    /// then made the input unusable (exit 2), which let a buggy service's read abort
    /// its own run. It is a db-state finding naming the row (issue 22).
    #[test]
    fn a_reversed_read_row_is_a_db_state_finding() {
        let r = check("invalid/db-state--reversed-read-row.jsonl");
        let s = summary(&r);
        assert!(s.contains("    the final read (op 1) holds a row that is no stay: request r-2, room 101, check-out 2026-12-02 is not after check-in 2026-12-04\n"), "{s}");
        assert!(s.ends_with("verdict: invalid (db-state)\n"), "{s}");
    }
}
