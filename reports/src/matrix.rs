//! The design matrix page: designs as rows, faults as columns, each cell coloured by
//! whether its runs met the design's declared expectation, linking to each run's report.
//!
//! The data types live here (not in the harness) because the page is their only
//! consumer besides `matrix.json`, which is these types serialised.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use checkers::Validity;

use crate::html::{escape, escape_into, GRID_STYLE, STYLE};

/// One finished (design, fault, seed) run of a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixCell {
    /// Position in the unsharded plan; identifies the cell across shards.
    pub ordinal: usize,
    /// The design under test.
    pub design: String,
    /// The fault injected.
    pub fault: String,
    /// The run's seed.
    pub seed: u64,
    /// `valid`, `invalid` or `either` (not asserted).
    pub expected: String,
    /// The run's verdict; `None` when the harness failed (exit 2).
    pub verdict: Option<Validity>,
    /// Whether the verdict met the expectation (a harness failure never does).
    pub met: bool,
    /// One line on what happened: the anomalies found, or why the run failed.
    pub summary: String,
    /// The command that reproduces this cell.
    pub reproduce: String,
    /// The run's report, relative to the store root (empty when the run failed early).
    pub report: String,
    /// Wall time of the cell, ms.
    pub wall_ms: u64,
    /// Of which not spent testing (server start, schema, final read, checks), ms.
    pub overhead_ms: u64,
    /// What the run measured beyond its verdict (absent in matrices written before).
    #[serde(default)]
    pub measures: CellMeasures,
}

impl MatrixCell {
    /// A cell of `design` under `fault` with `seed` whose run expected `expected` and
    /// ended in `verdict`, met or not, with nothing else recorded: for matrices built by
    /// hand (tests, tools), where only the verdicts matter.
    pub fn bare(
        design: &str,
        fault: &str,
        seed: u64,
        expected: &str,
        verdict: Option<Validity>,
        met: bool,
    ) -> MatrixCell {
        MatrixCell {
            ordinal: 0,
            design: design.into(),
            fault: fault.into(),
            seed,
            expected: expected.into(),
            verdict,
            met,
            summary: String::new(),
            reproduce: String::new(),
            report: String::new(),
            wall_ms: 1,
            overhead_ms: 1,
            measures: CellMeasures::default(),
        }
    }
}

/// What a run measured beyond its verdict, for the diff between nights and the trend:
/// a canary caught later and later, a throughput drop, a lease margin creeping up are
/// each a change worth reading before it turns into a miss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CellMeasures {
    /// Time from the first fault window's start to the first double booking, ms
    /// (absent when there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_anomaly_ms: Option<u64>,
    /// Confirmed bookings per second of test time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
    /// The largest fraction of its lease any critical section used (lease-margin's
    /// max; absent when the run held no lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_max: Option<f64>,
}

/// A whole matrix (`matrix.json`): every cell this runner (or a merge) holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// When the matrix started (sortable UTC stamp).
    pub started_at: String,
    /// The shards whose cells are here, e.g. `["1/2", "2/2"]`, or `["1/1"]`.
    pub shards: Vec<String>,
    /// Row order.
    pub designs: Vec<String>,
    /// Column order.
    pub faults: Vec<String>,
    /// Every cell, in plan order.
    pub cells: Vec<MatrixCell>,
}

impl Matrix {
    /// Whether every cell met its expectation: the matrix's exit status.
    pub fn all_met(&self) -> bool {
        self.cells.iter().all(|c| c.met)
    }
}

/// Renders `matrix.html`. `store_prefix` is the path from the page to the store root, so
/// each cell links to its run's report.
pub fn render_matrix(m: &Matrix, store_prefix: &str) -> String {
    render_matrix_page(m, store_prefix, None)
}

/// Renders `matrix.html` with, when given, what changed since a baseline matrix first:
/// the morning question is what changed, not what the hundred cells say.
pub fn render_matrix_page(
    m: &Matrix,
    store_prefix: &str,
    diff: Option<&crate::diff::MatrixDiff>,
) -> String {
    let mut out = String::with_capacity(4096 + m.cells.len() * 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>overbook matrix</title>\n<style>{STYLE}\n{GRID_STYLE}\n{MATRIX_STYLE}\n{}</style>\n</head>\n<body>\n<h1>overbook design matrix</h1>\n",
        crate::diff::DIFF_STYLE
    );
    if let Some(d) = diff {
        out.push_str(&crate::diff::render_diff(d));
    }
    let _ = writeln!(
        out,
        "<p>Started {}; shards {}; {}</p>",
        escape(&m.started_at),
        escape(&m.shards.join(", ")),
        cell_counts(m)
    );
    out.push_str(
        "<p class=\"legend\">Each cell says first what happened (<b>caught</b>: the run found an anomaly; <b>held</b>: it found none; <b>unknown</b>: no verdict), then what the design declares. \
         <span class=\"cell met\">met</span> verdict as expected \
         <span class=\"cell missed\">missed</span> a safe design with an anomaly (a finding), or an unsafe design not caught (a canary that did not sing) \
         <span class=\"cell either\">not asserted</span> an unsafe design under a fault that need not break it \
         <span class=\"cell flaky\">flaky</span> the expectation held in some of the cell's runs only \
         <span class=\"cell error\">error</span> the harness failed</p>\n",
    );
    grid(&mut out, m, store_prefix);
    misses(&mut out, m);
    out.push_str("</body>\n</html>\n");
    out
}

/// "15 cells, 15 runs: 2 asserted and met, 13 not asserted; every cell met its
/// expectation.": how many cells the verdict rests on, not just that none failed.
fn cell_counts(m: &Matrix) -> String {
    let cells = crate::summary::summarize(m);
    let of = |s: crate::summary::CellStatus| cells.iter().filter(|c| c.status == s).count();
    use crate::summary::CellStatus::*;
    let mut parts = vec![format!("{} asserted and met", of(Met))];
    for (n, what) in [
        (of(Missed), "asserted and missed"),
        (of(Flaky), "flaky"),
        (of(Error), "without a verdict"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.push(format!("{} not asserted", of(Either)));
    let failed = m.cells.iter().filter(|c| !c.met).count();
    format!(
        "{} cells, {} runs: {}; <b>{}</b>.",
        cells.len(),
        m.cells.len(),
        parts.join(", "),
        if failed == 0 {
            "every cell met its expectation".to_string()
        } else {
            format!("{failed} runs did not meet their expectation")
        }
    )
}

/// The grid: designs as rows and faults as columns, or transposed when faults
/// outnumber designs (one design under 18 faults is a column, not a row wider than a
/// laptop). Its first column and header row stay in view while it scrolls.
fn grid(out: &mut String, m: &Matrix, store_prefix: &str) {
    let mut by_cell: BTreeMap<(&str, &str), Vec<&MatrixCell>> = BTreeMap::new();
    for c in &m.cells {
        by_cell
            .entry((c.design.as_str(), c.fault.as_str()))
            .or_default()
            .push(c);
    }
    let transposed = m.faults.len() > m.designs.len();
    let (rows, columns, corner) = if transposed {
        (&m.faults, &m.designs, "fault \\ design")
    } else {
        (&m.designs, &m.faults, "design \\ fault")
    };
    let _ = write!(
        out,
        "<div class=\"grid-scroll\">\n<table class=\"matrix\">\n<thead><tr><th>{corner}</th>"
    );
    for c in columns {
        out.push_str("<th>");
        escape_into(out, c);
        out.push_str("</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr><th>");
        escape_into(out, r);
        out.push_str("</th>");
        for c in columns {
            let key = if transposed {
                (c.as_str(), r.as_str())
            } else {
                (r.as_str(), c.as_str())
            };
            let cells = by_cell.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            render_cell(out, cells, store_prefix);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

/// Every run that did not meet its expectation, with what it found and how to
/// reproduce it.
fn misses(out: &mut String, m: &Matrix) {
    let misses: Vec<&MatrixCell> = m.cells.iter().filter(|c| !c.met).collect();
    if misses.is_empty() {
        return;
    }
    out.push_str("<h2>Cells that did not meet their expectation</h2>\n<ul>\n");
    for c in misses {
        out.push_str("<li><b>");
        escape_into(
            out,
            &format!("{} under {} (seed {})", c.design, c.fault, c.seed),
        );
        out.push_str("</b>: expected ");
        escape_into(out, &c.expected);
        out.push_str(", got ");
        escape_into(out, c.verdict.map_or("harness error", |v| v.as_str()));
        out.push_str(". ");
        escape_into(out, &c.summary);
        out.push_str("<br><code>");
        escape_into(out, &c.reproduce);
        out.push_str("</code></li>\n");
    }
    out.push_str("</ul>\n");
}

/// What a cell's runs did, before what was expected: "caught 3/3", "held 2/3 ·
/// caught 1/3", "unknown 1/1".
fn happened(cells: &[&MatrixCell]) -> String {
    let n = cells.len();
    let count = |v: Option<Validity>| {
        cells
            .iter()
            .filter(|c| match v {
                Some(Validity::Unknown) | None => {
                    matches!(c.verdict, None | Some(Validity::Unknown))
                }
                _ => c.verdict == v,
            })
            .count()
    };
    let parts: Vec<String> = [
        ("caught", count(Some(Validity::Invalid))),
        ("held", count(Some(Validity::Valid))),
        ("unknown", count(None)),
    ]
    .into_iter()
    .filter(|(_, k)| *k > 0)
    .map(|(w, k)| format!("<b>{w}</b> {k}/{n}"))
    .collect();
    parts.join(" · ")
}

fn render_cell(out: &mut String, cells: &[&MatrixCell], store_prefix: &str) {
    if cells.is_empty() {
        out.push_str("<td class=\"cell absent\">-</td>");
        return;
    }
    let summary = crate::summary::summarize_cell(cells);
    let class = match summary.status {
        crate::summary::CellStatus::Error => "error",
        crate::summary::CellStatus::Missed => "missed",
        crate::summary::CellStatus::Flaky => "flaky",
        crate::summary::CellStatus::Either => "either",
        crate::summary::CellStatus::Met => "met",
    };
    let _ = write!(out, "<td class=\"cell {class}\">");
    let expected = match cells[0].expected.as_str() {
        "either" => "not asserted".to_string(),
        e => format!("expected {}", escape(e)),
    };
    let _ = write!(
        out,
        "<div class=\"happened\">{}</div><div class=\"expected\">{expected}</div>",
        happened(cells)
    );
    if cells.len() > 1 {
        let _ = write!(
            out,
            "<div title=\"detection rate, 95% Wilson interval\">{:.0}% [{:.0}-{:.0}%]</div>",
            summary.detection.value() * 100.0,
            summary.detection.low * 100.0,
            summary.detection.high * 100.0
        );
    }
    if let Some(m) = summary.margin_max {
        // The worst lease margin: a valid cell at 95% is one slow write from a miss.
        let close = if m > 0.8 { " close" } else { "" };
        let _ = write!(
            out,
            "<div class=\"margin{close}\" title=\"largest fraction of a lease a critical section used\">margin {:.0}%</div>",
            m * 100.0
        );
    }
    out.push_str("<div>");
    for c in cells {
        let label = format!("s{}:{}", c.seed, c.verdict.map_or("error", |v| v.as_str()));
        if c.report.is_empty() {
            escape_into(out, &label);
        } else {
            let _ = write!(
                out,
                "<a href=\"{}\" title=\"{}\">{}</a>",
                escape(&format!("{store_prefix}{}", c.report)),
                escape(&c.summary),
                escape(&label)
            );
        }
        out.push(' ');
    }
    out.push_str("</div></td>");
}

const MATRIX_STYLE: &str = ".happened{font-size:1.05em}.expected{color:#555;white-space:nowrap}\
table.matrix td.cell{min-width:8em;font-size:0.85em;vertical-align:top}\
.cell.met{background:#d8f0d8}.cell.missed{background:#f6c6c6}.cell.either{background:#eeeeee}\
.cell.error{background:#f3d08a}.cell.absent{color:#999}.cell.flaky{background:#f8e0a8}\
.margin.close{font-weight:bold;color:#a00}\
.legend .cell{display:inline-block;padding:0 .4em;margin:0 .2em}";

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(
        design: &str,
        fault: &str,
        expected: &str,
        verdict: Option<Validity>,
        met: bool,
    ) -> MatrixCell {
        MatrixCell {
            summary: "<b>room 101</b>".into(),
            reproduce: "overbook run --design x".into(),
            report: "x/y/report.html".into(),
            ..MatrixCell::bare(design, fault, 1, expected, verdict, met)
        }
    }

    #[test]
    fn cells_are_coloured_by_expectation_and_text_is_escaped() {
        let m = Matrix {
            started_at: "now".into(),
            shards: vec!["1/1".into()],
            designs: vec!["lock-only".into(), "db-exclusion".into()],
            faults: vec!["db-latency".into()],
            cells: vec![
                cell(
                    "lock-only",
                    "db-latency",
                    "invalid",
                    Some(Validity::Valid),
                    false,
                ),
                cell(
                    "db-exclusion",
                    "db-latency",
                    "valid",
                    Some(Validity::Valid),
                    true,
                ),
            ],
        };
        assert!(!m.all_met());
        let html = render_matrix(&m, "../../");
        assert!(html.contains("cell missed"));
        assert!(html.contains("cell met"));
        assert!(html.contains("../../x/y/report.html"));
        assert!(html.contains("1 runs did not meet"));
        // What happened before what was expected.
        assert!(html.contains(
            "<td class=\"cell missed\"><div class=\"happened\"><b>held</b> 1/1</div><div class=\"expected\">expected invalid</div>"
        ));
        assert!(
            !html.contains("<b>room 101</b>"),
            "summaries from runs must be escaped"
        );
        assert!(html.contains("&lt;b&gt;room 101"));
    }

    /// Issue 28: one design under many faults is a column, not a row wider than a
    /// laptop; the header counts the cells the verdict rests on; names are escaped.
    #[test]
    fn more_faults_than_designs_transpose_and_the_header_counts_asserted_cells() {
        let faults: Vec<String> = (0..15).map(|i| format!("fault-{i}")).collect();
        let mut cells: Vec<MatrixCell> = faults
            .iter()
            .map(|f| cell("<x>", f, "either", Some(Validity::Invalid), true))
            .collect();
        cells[0].expected = "invalid".into();
        cells[1].expected = "invalid".into();
        let m = Matrix {
            started_at: "now".into(),
            shards: vec!["1/1".into()],
            designs: vec!["<x>".into()],
            faults,
            cells,
        };
        let html = render_matrix(&m, "");
        assert!(html.contains(
            "15 cells, 15 runs: 2 asserted and met, 13 not asserted; <b>every cell met its expectation</b>."
        ));
        assert!(html.contains("<thead><tr><th>fault \\ design</th><th>&lt;x&gt;</th></tr></thead>"));
        assert_eq!(
            html.matches("<tr><th>fault-").count(),
            15,
            "a row per fault"
        );
        assert!(!html.contains("<x>"));
        assert!(html.contains("<div class=\"expected\">not asserted</div>"));
        assert!(html.contains("class=\"grid-scroll\""));
        // Two designs under one fault stay rows.
        let m2 = Matrix {
            designs: vec!["a".into(), "b".into()],
            faults: vec!["f".into()],
            cells: vec![
                cell("a", "f", "valid", Some(Validity::Valid), true),
                cell("b", "f", "valid", None, false),
            ],
            ..m
        };
        let html = render_matrix(&m2, "");
        assert!(html.contains("<th>design \\ fault</th>"));
        assert!(html.contains("<b>unknown</b> 1/1"));
        assert!(html.contains("1 without a verdict"));
    }
}
