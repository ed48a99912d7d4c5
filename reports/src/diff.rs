//! What changed between two matrices (last night and tonight), cell by cell: the data
//! `overbook matrix diff` computes and the section `matrix.html` shows first.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::html::{escape, escape_into};
use crate::summary::CellSummary;

/// How a cell changed between two matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Passed before, fails now (missed, flaky or no verdict): what the morning is for.
    Regressed,
    /// Ran under a different plan (seeds, time limit, run options, expectation): its
    /// verdicts are not comparable, so it is neither a regression nor a fix.
    NotComparable,
    /// Failed before, passes now.
    Fixed,
    /// Failed before and fails now.
    StillFailing,
    /// Only in the new matrix.
    Appeared,
    /// Only in the old matrix.
    Disappeared,
    /// Passed before and passes now.
    StillPassing,
}

impl ChangeKind {
    /// Every kind, worst first: the order counts and summaries list them in.
    pub const WORST_FIRST: [ChangeKind; 7] = [
        ChangeKind::Regressed,
        ChangeKind::Fixed,
        ChangeKind::StillFailing,
        ChangeKind::Appeared,
        ChangeKind::Disappeared,
        ChangeKind::NotComparable,
        ChangeKind::StillPassing,
    ];

    /// The name in JSON, on the page and in the terminal.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Regressed => "regressed",
            ChangeKind::NotComparable => "not comparable",
            ChangeKind::Fixed => "fixed",
            ChangeKind::StillFailing => "still failing",
            ChangeKind::Appeared => "new",
            ChangeKind::Disappeared => "gone",
            ChangeKind::StillPassing => "still passing",
        }
    }
}

/// A measure that moved beyond its noise threshold (see [`Thresholds`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// `time to first anomaly`, `throughput` or `lease margin`.
    pub measure: String,
    /// Before.
    pub old: f64,
    /// Now.
    pub new: f64,
    /// One line for people, e.g. "time to first anomaly 1.2 s -> 4.8 s (+300%)".
    pub text: String,
}

/// One cell's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellChange {
    /// The cell's key (`design under fault`).
    pub key: String,
    /// What happened to it.
    pub kind: ChangeKind,
    /// The cell in the old matrix.
    pub old: Option<CellSummary>,
    /// The cell in the new matrix.
    pub new: Option<CellSummary>,
    /// Measures that moved beyond noise (comparable cells only).
    pub drift: Vec<Drift>,
    /// Why the cell is not comparable, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The noise thresholds a drift must exceed to be reported. Differences smaller than
/// these are what two runs of the same cell on a shared CI machine show anyway.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Time to first anomaly: relative change (0.5 = 50%) ...
    pub first_anomaly_rel: f64,
    /// ... and at least this many ms.
    pub first_anomaly_ms: f64,
    /// Throughput: relative change.
    pub throughput_rel: f64,
    /// Worst lease margin: an increase of at least this fraction of a lease.
    pub margin_rise: f64,
}

impl Thresholds {
    /// The defaults documented in docs/ci.md: 50% and 1 s for the time to first
    /// anomaly, 25% for throughput, 10 points of lease for the worst margin.
    pub const DEFAULT: Thresholds = Thresholds {
        first_anomaly_rel: 0.5,
        first_anomaly_ms: 1000.0,
        throughput_rel: 0.25,
        margin_rise: 0.10,
    };
}

/// Everything that changed between two matrices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixDiff {
    /// Where the old matrix came from.
    pub old: String,
    /// Where the new one came from.
    pub new: String,
    /// The thresholds drifts were judged by.
    pub thresholds: Thresholds,
    /// Why the plans differ, when they do (cells then may be not comparable).
    pub plan_notes: Vec<String>,
    /// Every cell of either matrix, worst change first.
    pub cells: Vec<CellChange>,
}

impl MatrixDiff {
    /// The cells that changed in a given way.
    pub fn of_kind(&self, kind: ChangeKind) -> impl Iterator<Item = &CellChange> {
        self.cells.iter().filter(move |c| c.kind == kind)
    }

    /// Whether any cell regressed: the diff's exit status.
    pub fn regressed(&self) -> bool {
        self.of_kind(ChangeKind::Regressed).next().is_some()
    }

    /// Cells with a drift beyond noise.
    pub fn drifting(&self) -> impl Iterator<Item = &CellChange> {
        self.cells.iter().filter(|c| !c.drift.is_empty())
    }

    /// One line per count, e.g. "1 regressed, 1 fixed, 1 new, 4 still passing".
    pub fn counts(&self) -> String {
        let parts: Vec<String> = ChangeKind::WORST_FIRST
            .iter()
            .map(|k| (k, self.of_kind(*k).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        let drift = self.drifting().count();
        let mut s = if parts.is_empty() {
            "no cells".to_string()
        } else {
            parts.join(", ")
        };
        if drift > 0 {
            let _ = write!(s, "; {drift} drifting beyond noise");
        }
        s
    }
}

/// How a cell summary reads in one line: status, runs and detection rate.
pub fn describe_cell(c: &CellSummary) -> String {
    let mut s = format!(
        "{} (expected {}, held in {}/{} runs; caught {}",
        c.status.as_str(),
        c.expected,
        c.met,
        c.runs,
        c.detection.describe()
    );
    if let Some(m) = c.margin_max {
        let _ = write!(s, "; worst lease margin {:.0}%", m * 100.0);
    }
    s.push(')');
    s
}

/// The diff as an HTML section, for the top of `matrix.html`.
pub fn render_diff(d: &MatrixDiff) -> String {
    let mut out = String::new();
    out.push_str("<section class=\"diff\">\n<h2>What changed since ");
    escape_into(&mut out, &d.old);
    out.push_str("</h2>\n<p>");
    escape_into(&mut out, &d.counts());
    out.push_str("</p>\n");
    for note in &d.plan_notes {
        out.push_str("<p class=\"note\">");
        escape_into(&mut out, note);
        out.push_str("</p>\n");
    }
    let listed: Vec<&CellChange> = d
        .cells
        .iter()
        .filter(|c| c.kind != ChangeKind::StillPassing || !c.drift.is_empty())
        .collect();
    if !listed.is_empty() {
        out.push_str("<table class=\"diff\">\n<tr><th>cell</th><th>change</th><th>before</th><th>now</th><th>drift beyond noise</th></tr>\n");
        for c in listed {
            let class = c.kind.as_str().replace(' ', "-");
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><td>{}</td><td><b>{}</b>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&c.key),
                escape(c.kind.as_str()),
                c.reason
                    .as_deref()
                    .map(|r| format!("<br>{}", escape(r)))
                    .unwrap_or_default(),
                c.old.as_ref().map_or("-".to_string(), |s| escape(&describe_cell(s))),
                c.new.as_ref().map_or("-".to_string(), |s| escape(&describe_cell(s))),
                escape(
                    &c.drift
                        .iter()
                        .map(|d| d.text.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
    out
}

/// The diff section's colours.
pub const DIFF_STYLE: &str = "table.diff td{font-size:0.85em;vertical-align:top}\
tr.regressed{background:#f6c6c6}tr.fixed{background:#d8f0d8}tr.new{background:#dde8f8}\
tr.gone{background:#eeeeee}tr.not-comparable{background:#f3e7c0}tr.still-failing{background:#f3d0d0}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{CellStatus, Rate};

    fn summary(key: &str) -> CellSummary {
        CellSummary {
            key: key.into(),
            design: "<d>".into(),
            fault: "f".into(),
            expected: "valid".into(),
            status: CellStatus::Missed,
            met: 0,
            decided: 1,
            runs: 1,
            detection: Rate::wilson(1, 1),
            first_anomaly_ms: None,
            throughput: None,
            margin_max: Some(0.97),
            seeds: vec![1],
        }
    }

    #[test]
    fn the_section_lists_changes_escaped_and_counts_them() {
        let d = MatrixDiff {
            old: "night <1>".into(),
            new: "night 2".into(),
            thresholds: Thresholds::DEFAULT,
            plan_notes: vec![],
            cells: vec![
                CellChange {
                    key: "<d> under f".into(),
                    kind: ChangeKind::Regressed,
                    old: None,
                    new: Some(summary("<d> under f")),
                    drift: vec![],
                    reason: None,
                },
                CellChange {
                    key: "x under y".into(),
                    kind: ChangeKind::StillPassing,
                    old: None,
                    new: None,
                    drift: vec![],
                    reason: None,
                },
            ],
        };
        assert!(d.regressed());
        assert_eq!(d.counts(), "1 regressed, 1 still passing");
        let html = render_diff(&d);
        assert!(html.contains("night &lt;1&gt;"));
        assert!(html.contains("&lt;d&gt; under f"));
        assert!(html.contains("worst lease margin 97%"));
        assert!(
            !html.contains("x under y"),
            "unchanged cells are not listed"
        );
    }
}
