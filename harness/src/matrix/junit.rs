//! The matrix as JUnit XML, for CI systems that show test results: one testcase per run
//! (cell and seed), so a CI's per-test history follows each seed across nights.
//!
//! A missed expectation is a `failure` carrying the anomaly summary and the reproduce
//! command; a run with no verdict an `error`. Two marks tell the morning's questions
//! apart: `type="regression"` on the failures of a cell that passed in the baseline,
//! `type="flaky"` on the failures of a cell whose expectation held in some runs only
//! (and a `flaky` property on every run of such a cell, passes included).

use reports::diff::{ChangeKind, MatrixDiff};
use reports::matrix::Matrix;
use reports::summary::{cell_key, summarize, CellStatus};

/// Renders `m` as JUnit XML; with `diff`, the regressions it found are marked.
pub fn junit_xml(m: &Matrix, diff: Option<&MatrixDiff>) -> String {
    let esc = reports::html::escape;
    let summaries = summarize(m);
    let status = |key: &str| summaries.iter().find(|s| s.key == key);
    let regressed =
        |key: &str| diff.is_some_and(|d| d.of_kind(ChangeKind::Regressed).any(|c| c.key == key));
    let failures = m
        .cells
        .iter()
        .filter(|c| !c.met && c.verdict.is_some())
        .count();
    let errors = m.cells.iter().filter(|c| c.verdict.is_none()).count();
    let time: u64 = m.cells.iter().map(|c| c.wall_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"overbook\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">\n",
        m.cells.len(),
        time as f64 / 1000.0
    ));
    out.push_str(&format!(
        "<testsuite name=\"overbook matrix {}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">\n",
        esc(&m.shards.join(" ")),
        m.cells.len(),
        time as f64 / 1000.0
    ));
    for c in &m.cells {
        let key = cell_key(&c.design, &c.fault);
        let summary = status(&key);
        let flaky = summary.is_some_and(|s| s.status == CellStatus::Flaky);
        out.push_str(&format!(
            "  <testcase classname=\"overbook.{}\" name=\"{} under {} (seed {})\" time=\"{:.3}\"",
            esc(&c.design),
            esc(&c.design),
            esc(&c.fault),
            c.seed,
            c.wall_ms as f64 / 1000.0
        ));
        if c.met && !flaky {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        if let (true, Some(s)) = (flaky, summary) {
            out.push_str(&format!(
                "    <properties><property name=\"flaky\" value=\"expectation held in {}/{} runs of this cell\"/></properties>\n",
                s.met, s.runs
            ));
        }
        if !c.met {
            let (tag, mut message) = match c.verdict {
                Some(v) => (
                    "failure",
                    format!("expected {}, got {}: {}", c.expected, v.as_str(), c.summary),
                ),
                None => ("error", format!("harness error: {}", c.summary)),
            };
            let kind = if regressed(&key) {
                message = format!(
                    "REGRESSION since {}: {message}",
                    diff.map_or("", |d| d.old.as_str())
                );
                " type=\"regression\""
            } else if flaky {
                message = format!("FLAKY: {message}");
                " type=\"flaky\""
            } else {
                ""
            };
            out.push_str(&format!(
                "    <{tag} message=\"{}\"{kind}>{}\nreproduce: {}</{tag}>\n",
                esc(&message),
                esc(&message),
                esc(&c.reproduce)
            ));
        }
        out.push_str("  </testcase>\n");
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::Validity;
    use reports::diff::{CellChange, Thresholds};
    use reports::matrix::MatrixCell;

    fn cell(fault: &str, seed: u64, met: bool, verdict: Option<Validity>) -> MatrixCell {
        MatrixCell {
            summary: "room <101> & more".into(),
            reproduce: format!("overbook run --seed {seed}"),
            ..MatrixCell::bare("lock-only", fault, seed, "invalid", verdict, met)
        }
    }

    fn matrix(cells: Vec<MatrixCell>) -> Matrix {
        Matrix {
            started_at: "t".into(),
            shards: vec!["1/1".into()],
            designs: vec![],
            faults: vec![],
            cells,
        }
    }

    #[test]
    fn junit_marks_misses_as_failures_and_escapes() {
        let m = matrix(vec![
            cell("db-latency", 3, true, Some(Validity::Invalid)),
            cell("none", 3, false, Some(Validity::Valid)),
            cell("kill-db", 3, false, None),
        ]);
        let xml = junit_xml(&m, None);
        assert!(xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""));
        assert!(xml.contains(
            "<failure message=\"expected invalid, got valid: room &lt;101&gt; &amp; more\">"
        ));
        assert!(xml.contains("reproduce: overbook run --seed 3"));
        assert!(xml.contains("<error message=\"harness error"));
    }

    #[test]
    fn flaky_cells_and_regressions_are_marked() {
        let m = matrix(vec![
            cell("slow-writes", 1, true, Some(Validity::Invalid)),
            cell("slow-writes", 2, false, Some(Validity::Valid)),
            cell("db-latency", 1, false, Some(Validity::Valid)),
        ]);
        let d = MatrixDiff {
            old: "last-night".into(),
            new: "tonight".into(),
            thresholds: Thresholds::DEFAULT,
            plan_notes: vec![],
            cells: vec![CellChange {
                key: "lock-only under db-latency".into(),
                kind: ChangeKind::Regressed,
                old: None,
                new: None,
                drift: vec![],
                reason: None,
            }],
        };
        let xml = junit_xml(&m, Some(&d));
        assert_eq!(xml.matches("<property name=\"flaky\"").count(), 2, "{xml}");
        assert!(xml.contains("<failure message=\"FLAKY: expected invalid, got valid"));
        assert!(xml.contains("type=\"flaky\""));
        assert!(xml.contains(
            "<failure message=\"REGRESSION since last-night: expected invalid, got valid"
        ));
        assert!(xml.contains("type=\"regression\""));
    }
}
