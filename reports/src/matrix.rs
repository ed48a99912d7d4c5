//! The design matrix page: designs as rows, faults as columns, each cell coloured by
//! whether its runs met the design's declared expectation, linking to each run's report.
//!
//! The data types live here (not in the harness) because the page is their only
//! consumer besides `matrix.json`, which is these types serialised.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use checkers::Validity;

use crate::html::{escape, escape_into, STYLE};

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
    let mut by_cell: BTreeMap<(&str, &str), Vec<&MatrixCell>> = BTreeMap::new();
    for c in &m.cells {
        by_cell
            .entry((c.design.as_str(), c.fault.as_str()))
            .or_default()
            .push(c);
    }
    let failed = m.cells.iter().filter(|c| !c.met).count();
    let mut out = String::with_capacity(4096 + m.cells.len() * 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>overbook matrix</title>\n<style>{STYLE}\n{MATRIX_STYLE}\n{}</style>\n</head>\n<body>\n<h1>overbook design matrix</h1>\n",
        crate::diff::DIFF_STYLE
    );
    if let Some(d) = diff {
        out.push_str(&crate::diff::render_diff(d));
    }
    let _ = writeln!(
        out,
        "<p>Started {}; shards {}; {} cells, <b>{}</b>.</p>",
        escape(&m.started_at),
        escape(&m.shards.join(", ")),
        m.cells.len(),
        if failed == 0 {
            "every cell met its expectation".to_string()
        } else {
            format!("{failed} cells did not meet their expectation")
        }
    );
    out.push_str(
        "<p class=\"legend\"><span class=\"cell met\">met</span> verdict as expected \
         <span class=\"cell missed\">missed</span> a safe design with an anomaly (a finding), or an unsafe design not caught (a canary that did not sing) \
         <span class=\"cell either\">not asserted</span> an unsafe design under a fault that need not break it \
         <span class=\"cell flaky\">flaky</span> the expectation held in some of the cell's runs only \
         <span class=\"cell error\">error</span> the harness failed</p>\n",
    );
    out.push_str("<table class=\"matrix\">\n<tr><th>design \\ fault</th>");
    for f in &m.faults {
        out.push_str("<th>");
        escape_into(&mut out, f);
        out.push_str("</th>");
    }
    out.push_str("</tr>\n");
    for d in &m.designs {
        out.push_str("<tr><th>");
        escape_into(&mut out, d);
        out.push_str("</th>");
        for f in &m.faults {
            let cells = by_cell
                .get(&(d.as_str(), f.as_str()))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            render_cell(&mut out, cells, store_prefix);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");

    let misses: Vec<&MatrixCell> = m.cells.iter().filter(|c| !c.met).collect();
    if !misses.is_empty() {
        out.push_str("<h2>Cells that did not meet their expectation</h2>\n<ul>\n");
        for c in misses {
            out.push_str("<li><b>");
            escape_into(
                &mut out,
                &format!("{} under {} (seed {})", c.design, c.fault, c.seed),
            );
            out.push_str("</b>: expected ");
            escape_into(&mut out, &c.expected);
            out.push_str(", got ");
            escape_into(&mut out, c.verdict.map_or("harness error", |v| v.as_str()));
            out.push_str(". ");
            escape_into(&mut out, &c.summary);
            out.push_str("<br><code>");
            escape_into(&mut out, &c.reproduce);
            out.push_str("</code></li>\n");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
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
    let _ = write!(
        out,
        "<div>expect {}</div><div>{}/{} invalid</div>",
        escape(&cells[0].expected),
        summary.detection.hits,
        cells.len()
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

const MATRIX_STYLE: &str =
    "table.matrix td.cell{min-width:9em;font-size:0.85em;vertical-align:top}\
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
        assert!(html.contains("1 cells did not meet"));
        assert!(
            !html.contains("<b>room 101</b>"),
            "summaries from runs must be escaped"
        );
        assert!(html.contains("&lt;b&gt;room 101"));
    }
}
