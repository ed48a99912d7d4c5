//! The markdown summary a reviewer reads (`--summary-md FILE` on `overbook run` and
//! `overbook matrix`; in CI, GitHub's `$GITHUB_STEP_SUMMARY`): the verdict, what it cost
//! the guests in business words ([`checkers::harm::headline`], the one wording the report
//! and the terminal share), the worst anomaly with its caption, the diff against the
//! baseline (matrix), and relative links to the reports.
//!
//! Nothing here is re-checked: everything comes from the checkers' results, the
//! matrix's cells and its diff. Every string that came from a history or a matrix file
//! is escaped for markdown ([`md_text`]), so a hostile room name or service message
//! cannot inject links, images or HTML into a CI page.

use std::fmt::Write;

use checkers::{Headline, History, Results, Role, Validity};

use crate::diff::{describe_cell, ChangeKind, MatrixDiff};
use crate::matrix::{Matrix, MatrixCell};
use crate::meta::RunMeta;
use crate::spans::{self, Spans};

/// The anomaly a summary shows: the first of the deciding data (or safeguard) checker
/// that made the run invalid, else the first anomaly of any checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorstAnomaly {
    /// Its number in the report (1-based): the report's `#anomaly-N` anchor.
    pub number: usize,
    /// The checker that found it.
    pub checker: String,
    /// Its one-sentence message.
    pub message: String,
    /// The report's plain-words caption of its ops (A, B, ...).
    pub caption: String,
}

/// Picks the worst anomaly of `results` and captions it from `history` as the report does.
pub fn worst_anomaly(history: &History, results: &Results) -> Option<WorstAnomaly> {
    // The report numbers anomalies in result order, all checkers together.
    let numbered: Vec<(usize, &checkers::CheckResult, &checkers::Anomaly)> = results
        .checks
        .iter()
        .flat_map(|c| c.anomalies.iter().map(move |a| (c, a)))
        .enumerate()
        .map(|(i, (c, a))| (i + 1, c, a))
        .collect();
    let rank = |c: &checkers::CheckResult| match (c.deciding, c.role) {
        (true, Role::Data) => 0,
        (true, Role::Safeguard) => 1,
        (true, _) => 2,
        (false, _) => 3,
    };
    let (number, check, anomaly) = numbered
        .iter()
        .filter(|(_, c, _)| c.validity == Validity::Invalid)
        .min_by_key(|(n, c, _)| (rank(c), *n))
        .or_else(|| numbered.first())?;
    let mut spans = Spans::build(history.ops());
    spans.index_ops(&anomaly.ops.iter().copied().collect());
    let windows = spans::windows(history);
    let involved = crate::page::involved(&spans, anomaly, true);
    Some(WorstAnomaly {
        number: *number,
        checker: check.checker.clone(),
        message: anomaly.message.clone(),
        caption: crate::page::caption(&involved, &windows),
    })
}

/// Links from the summary file to a run's files, already relative to the summary's
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLinks {
    /// The run's `report.html`.
    pub report: String,
    /// The run's `history.jsonl`.
    pub history: String,
}

/// One run's summary.
pub fn run_summary_md(
    results: &Results,
    meta: &RunMeta,
    worst: Option<&WorstAnomaly>,
    links: &RunLinks,
) -> String {
    let mut out = String::new();
    let faults = if meta.faults.is_empty() {
        "no fault".to_string()
    } else {
        meta.faults.join(" + ")
    };
    let _ = writeln!(
        out,
        "## overbook: {} ({} under {})\n",
        verdict_word(results.validity),
        md_text(&meta.design),
        md_text(&faults)
    );
    if let Some(harm) = checkers::harm::headline(results) {
        let _ = writeln!(out, "**{}.**\n", md_text(&capital(&harm)));
    }
    let _ = writeln!(out, "{}\n", shows(results));
    if let Some(w) = worst {
        worst_section(&mut out, w, &links.report);
    }
    out.push_str("| checker | verdict | summary |\n|---|---|---|\n");
    for c in &results.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            md_text(&c.checker),
            c.validity.as_str(),
            md_text(&c.summary)
        );
    }
    let _ = writeln!(
        out,
        "\n[Report]({}) · [history]({}) · {} ops in {:.1} s{}",
        md_link(&links.report),
        md_link(&links.history),
        results.stats.ops,
        meta.duration_ms as f64 / 1000.0,
        meta.seed
            .map(|s| format!(" · seed {s}"))
            .unwrap_or_default()
    );
    if !meta.command.is_empty() {
        let _ = writeln!(out, "\nReproduce:\n\n{}", code_block(&meta.command));
    }
    out
}

/// The cell a matrix summary explains: its label, its business headline and worst
/// anomaly (read from its run), and its report relative to the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorstCell {
    /// The cell's position in the matrix's cell list.
    pub index: usize,
    /// What its run cost the guests ([`checkers::harm::headline`]), when anything.
    pub harm: Option<String>,
    /// Its run's worst anomaly.
    pub anomaly: Option<WorstAnomaly>,
}

/// Picks the cell a matrix summary explains: a missed cell that found anomalies (a safe
/// design broke), else any missed cell, else a caught canary (an invalid cell that met
/// its expectation); `None` when every cell is valid and met.
pub fn worst_cell(m: &Matrix) -> Option<usize> {
    let invalid = |c: &MatrixCell| c.verdict == Some(Validity::Invalid);
    let pick = |f: &dyn Fn(&MatrixCell) -> bool| m.cells.iter().position(f);
    pick(&|c| !c.met && invalid(c))
        .or_else(|| pick(&|c| !c.met))
        .or_else(|| pick(&invalid))
}

/// A matrix's summary; `report_link` turns a cell's report (relative to the store root)
/// into a link relative to the summary, `matrix_page` is `matrix.html` likewise.
pub fn matrix_summary_md(
    m: &Matrix,
    diff: Option<&MatrixDiff>,
    worst: Option<&WorstCell>,
    matrix_page: &str,
    report_link: &dyn Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    let missed: Vec<&MatrixCell> = m.cells.iter().filter(|c| !c.met).collect();
    let verdict = match (missed.len(), diff.map(MatrixDiff::regressed)) {
        (_, Some(true)) => "REGRESSED".to_string(),
        (0, _) => "PASS".to_string(),
        (n, _) => format!("{n} MISSED"),
    };
    let _ = writeln!(
        out,
        "## overbook matrix: {verdict} ({} of {} cells met their expectation)\n",
        m.cells.len() - missed.len(),
        m.cells.len()
    );
    if let Some(w) = worst {
        worst_cell_section(&mut out, m, w, report_link);
    }
    if let Some(d) = diff {
        diff_section(&mut out, d);
    }
    if !missed.is_empty() {
        out.push_str("### Cells that missed\n\n| design | fault | seed | expected | got | what happened | report |\n|---|---|---|---|---|---|---|\n");
        for c in &missed {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md_text(&c.design),
                md_text(&c.fault),
                c.seed,
                md_text(&c.expected),
                c.verdict.map_or("harness error", |v| v.as_str()),
                md_text(&c.summary),
                cell_link(c, report_link)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "[Matrix page]({})", md_link(matrix_page));
    out
}

fn worst_cell_section(
    out: &mut String,
    m: &Matrix,
    w: &WorstCell,
    report_link: &dyn Fn(&str) -> String,
) {
    let Some(c) = m.cells.get(w.index) else {
        return;
    };
    let what = if c.met {
        "caught as expected"
    } else {
        "missed"
    };
    let _ = write!(
        out,
        "**{} under {} (seed {}), {what}",
        md_text(&c.design),
        md_text(&c.fault),
        c.seed
    );
    match &w.harm {
        Some(h) => {
            let _ = writeln!(out, ": {}.**\n", md_text(h));
        }
        None => {
            let _ = writeln!(out, ": {}.**\n", md_text(&c.summary));
        }
    }
    if let Some(a) = &w.anomaly {
        let link = if c.report.is_empty() {
            String::new()
        } else {
            report_link(&c.report)
        };
        worst_section(out, a, &link);
    }
}

fn diff_section(out: &mut String, d: &MatrixDiff) {
    let _ = writeln!(
        out,
        "### Against the baseline\n\n{}\n",
        md_text(&d.counts())
    );
    let before = out.len();
    for note in &d.plan_notes {
        let _ = writeln!(out, "- plan: {}", md_text(note));
    }
    // Cells still passing are the bulk of a nightly: only their drift is listed.
    let shown = ChangeKind::WORST_FIRST
        .into_iter()
        .filter(|k| *k != ChangeKind::StillPassing);
    for kind in shown {
        for c in d.of_kind(kind) {
            let was = c.old.as_ref().map(describe_cell);
            let now = c.new.as_ref().map(describe_cell);
            let change = match (was, now) {
                (Some(w), Some(n)) => format!("{w} → {n}"),
                (Some(w), None) => format!("was {w}"),
                (None, Some(n)) => n,
                (None, None) => String::new(),
            };
            let _ = write!(
                out,
                "- **{}** {}: {}",
                kind.as_str(),
                md_text(&c.key),
                md_text(&change)
            );
            if let Some(r) = &c.reason {
                let _ = write!(out, " ({})", md_text(r));
            }
            out.push('\n');
        }
    }
    for c in d.drifting() {
        for drift in &c.drift {
            let _ = writeln!(out, "- drift {}: {}", md_text(&c.key), md_text(&drift.text));
        }
    }
    if out.len() > before {
        out.push('\n');
    }
}

fn worst_section(out: &mut String, w: &WorstAnomaly, report: &str) {
    let anchor = if report.is_empty() {
        format!("#{}", w.number)
    } else {
        format!(
            "[#{}]({})",
            w.number,
            md_link(&format!("{report}#anomaly-{}", w.number))
        )
    };
    let _ = writeln!(
        out,
        "Worst anomaly ({}, {anchor} in the report): {}\n\n> {}\n",
        md_text(&w.checker),
        md_text(&w.message),
        md_text(&w.caption)
    );
}

/// What the run shows in the checkers' terms, one sentence (the report's technical line,
/// without its counts).
fn shows(results: &Results) -> String {
    match results.headline {
        Headline::DataWrong => format!(
            "The data is wrong: {} found anomalies.",
            md_text(&results.invalid_by.join(", "))
        ),
        Headline::LockFailedDatabaseHeld => "The lock failed (two holders at once), the database held: no room-night was confirmed twice.".into(),
        Headline::LockFailedUnguarded => "The lock failed (two holders at once) under a design that trusts it: nothing else guards the room-nights.".into(),
        Headline::LockFailedDataHeld => "The lock failed (two holders at once); the data shows no anomaly (what guards it is not declared).".into(),
        Headline::LockFailed => "The lock failed, and whether the database held is unknown.".into(),
        Headline::Unknown => {
            let reasons: Vec<String> = results
                .unknown_reasons
                .iter()
                .map(|r| format!("{}: {}", r.checkers.join(", "), r.reason))
                .collect();
            format!(
                "Unknown: the checkers lacked what they needed ({}).",
                md_text(&reasons.join("; "))
            )
        }
        Headline::AllHeld => "No anomalies: every checker that decides the verdict found the history valid.".into(),
    }
}

fn verdict_word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "VALID",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "UNKNOWN",
    }
}

fn cell_link(c: &MatrixCell, report_link: &dyn Fn(&str) -> String) -> String {
    if c.report.is_empty() {
        "none".into()
    } else {
        format!("[report]({})", md_link(&report_link(&c.report)))
    }
}

fn capital(s: &str) -> String {
    crate::caption::capital(s)
}

/// Text for a markdown paragraph or table cell: controls made visible, every character
/// markdown or HTML would act on backslash-escaped (or as an entity), one line.
pub fn md_text(s: &str) -> String {
    let s = checkers::text::for_terminal(s);
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            // No link or image can form without `[`, so `(`, `)` and `!` stay as they are.
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A relative link target: percent-encodes what would end or break it.
fn md_link(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for b in target.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'#' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A fenced code block holding `text` on one line, fenced longer than any backtick run
/// inside it.
fn code_block(text: &str) -> String {
    let line: String = checkers::text::for_terminal(text)
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let longest = line.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}sh\n{line}\n{fence}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_from_a_history_are_inert() {
        let s = md_text("room *1* [x](javascript:y) <img src=x> | a\nb `c` ![i](u)");
        assert_eq!(
            s,
            "room \\*1\\* \\[x\\](javascript:y) &lt;img src=x&gt; \\| a\\\\x0ab \\`c\\` !\\[i\\](u)"
        );
    }

    #[test]
    fn links_are_percent_encoded_and_fences_outgrow_backticks() {
        assert_eq!(md_link("a b/(x)#anomaly-1"), "a%20b/%28x%29#anomaly-1");
        assert_eq!(code_block("echo ````"), "`````sh\necho ````\n`````\n");
        assert_eq!(code_block("overbook run"), "```sh\noverbook run\n```\n");
    }
}
