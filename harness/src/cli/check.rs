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
    if let Some(report) = &args.report {
        if args.file.as_os_str() != "-" && crate::store::same_file(&args.file, report) {
            anyhow::bail!(
                "--report {} is the history being checked ({}): refusing to overwrite it",
                report.display(),
                args.file.display()
            );
        }
    }
    let history = load_history(&args.file)?;
    let results = check_all(
        &history,
        &CheckOptions {
            strict_lock: args.strict_lock,
            margin_warn: args.margin_warn,
            guard: None,
        },
    );
    if let Some(path) = &args.report {
        let meta = reports::RunMeta {
            command: format!("overbook check {}", args.file.display()),
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
            s.ends_with("verdict: invalid (no-double-booking, db-state)\n"),
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
