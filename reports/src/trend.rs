//! The trend page: the last N matrices of a store as one grid, cells by nights, and for
//! each canary (a cell expected to be caught) its time to the first anomaly night after
//! night. A canary caught a little later every night is about to stop singing; the
//! grid of verdicts shows it only on the night it misses, the plot shows it coming.

use std::fmt::Write;

use plotters::prelude::*;

use crate::html::{escape, escape_into, GRID_STYLE, STYLE};
use crate::matrix::Matrix;
use crate::summary::{summarize, CellStatus, CellSummary};

/// One night: a label (its directory name) and its matrix.
#[derive(Debug, Clone)]
pub struct Night {
    /// The matrix's directory name, e.g. `20261130T021700Z-merged`.
    pub label: String,
    /// The matrix.
    pub matrix: Matrix,
}

/// Renders `trend.html` for `nights`, oldest first. `store_prefix` is the path from the
/// page to the store root (`../` for `STORE/matrix/trend.html`): each night's header
/// links to its `matrix.html` (`<label>/matrix.html`, beside the page) and each
/// cell-night to that night's run report, by relative paths, so a store uploaded or
/// copied elsewhere keeps its links.
pub fn render_trend(nights: &[Night], store_prefix: &str) -> String {
    let summaries: Vec<Vec<CellSummary>> = nights.iter().map(|n| summarize(&n.matrix)).collect();
    // Rows: every cell key, in the order of the newest night that has it.
    let mut keys: Vec<String> = Vec::new();
    for s in summaries.iter().rev() {
        for c in s {
            if !keys.contains(&c.key) {
                keys.push(c.key.clone());
            }
        }
    }
    let find = |night: usize, key: &str| summaries[night].iter().find(|c| c.key == key);
    let mut out = String::with_capacity(8192 + keys.len() * nights.len() * 64);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>overbook trend</title>\n<style>{STYLE}\n{GRID_STYLE}\n{TREND_STYLE}</style>\n</head>\n<body>\n<h1>overbook matrix trend</h1>\n<p>The last {} matrices, oldest on the left. Each cell: its status (met, flaky, missed, error, either), detection rate and worst lease margin.</p>\n",
        nights.len()
    );
    grid(&mut out, nights, &keys, &find, store_prefix);
    out.push_str("<h2>Canaries: time to the first anomaly</h2>\n");
    let canaries: Vec<&String> = keys
        .iter()
        .filter(|k| (0..nights.len()).any(|i| find(i, k).is_some_and(|c| c.expected == "invalid")))
        .collect();
    if canaries.is_empty() {
        out.push_str("<p>No cell is expected to be caught in these matrices.</p>\n");
    }
    for key in canaries {
        let points: Vec<(usize, Option<u64>, CellStatus)> = (0..nights.len())
            .filter_map(|i| find(i, key).map(|c| (i, c.first_anomaly_ms, c.status)))
            .collect();
        out.push_str("<div class=\"plot\">");
        match canary_plot(key, nights.len(), &points) {
            Ok(svg) => out.push_str(&svg),
            Err(e) => {
                out.push_str("<p>plot unavailable: ");
                escape_into(&mut out, &e.to_string());
                out.push_str("</p>");
            }
        }
        out.push_str("</div>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The grid: a row per cell key, a column per night, each cell-night linking to its
/// report.
fn grid<'s>(
    out: &mut String,
    nights: &[Night],
    keys: &[String],
    find: &dyn Fn(usize, &str) -> Option<&'s CellSummary>,
    store_prefix: &str,
) {
    out.push_str(
        "<div class=\"grid-scroll\">\n<table class=\"trend\">\n<thead><tr><th>cell \\ night</th>",
    );
    for n in nights {
        let _ = write!(
            out,
            "<th><a href=\"{}\">{}</a></th>",
            escape(&format!("{}/matrix.html", n.label)),
            escape(&n.label)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for key in keys {
        out.push_str("<tr><th>");
        escape_into(out, key);
        out.push_str("</th>");
        for (i, night) in nights.iter().enumerate() {
            match find(i, key) {
                None => out.push_str("<td class=\"absent\">-</td>"),
                Some(c) => {
                    let text = format!(
                        "{} {}/{}{}",
                        c.status.as_str(),
                        c.detection.hits,
                        c.detection.runs,
                        c.margin_max
                            .map(|m| format!(" m{:.0}%", m * 100.0))
                            .unwrap_or_default()
                    );
                    let _ = write!(
                        out,
                        "<td class=\"{}\" title=\"{}\">",
                        c.status.as_str(),
                        escape(&crate::diff::describe_cell(c)),
                    );
                    match report_of(&night.matrix, c) {
                        Some(r) => {
                            let _ = write!(
                                out,
                                "<a href=\"{}\">{}</a>",
                                escape(&format!("{store_prefix}{r}")),
                                escape(&text)
                            );
                        }
                        None => escape_into(out, &text),
                    }
                    out.push_str("</td>");
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

/// The run report a cell-night links to (relative to the store root): the first of its
/// runs that did not meet the expectation, else its first run with a report.
fn report_of<'m>(m: &'m Matrix, c: &CellSummary) -> Option<&'m str> {
    let runs: Vec<_> = m
        .cells
        .iter()
        .filter(|r| r.design == c.design && r.fault == c.fault && !r.report.is_empty())
        .collect();
    runs.iter()
        .find(|r| !r.met)
        .or(runs.first())
        .map(|r| r.report.as_str())
}

/// One canary's time to first anomaly by night (seconds); a night it was not caught is
/// drawn as a red cross at the top.
fn canary_plot(
    key: &str,
    nights: usize,
    points: &[(usize, Option<u64>, CellStatus)],
) -> Result<String, crate::RenderError> {
    let hi = points
        .iter()
        .filter_map(|p| p.1)
        .map(|ms| ms as f64 / 1000.0)
        .fold(1.0, f64::max)
        * 1.2;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 260)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: time to first anomaly", crate::html::clip(key, 80)),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..(nights as f64 - 0.5).max(0.5), 0.0..hi)?;
        chart
            .configure_mesh()
            .x_desc("night (oldest = 0)")
            .y_desc("s after the first fault window")
            .label_style(("sans-serif", 12))
            .draw()?;
        let caught: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|(i, t, _)| t.map(|ms| (*i as f64, ms as f64 / 1000.0)))
            .collect();
        chart.draw_series(LineSeries::new(
            caught.iter().copied(),
            crate::plots::LEASE.stroke_width(2),
        ))?;
        chart.draw_series(
            caught
                .iter()
                .map(|&p| Circle::new(p, 4, crate::plots::LEASE.filled())),
        )?;
        chart.draw_series(
            points
                .iter()
                .filter(|(_, t, _)| t.is_none())
                .map(|(i, _, _)| {
                    Cross::new(
                        (*i as f64, hi * 0.95),
                        6,
                        crate::plots::BELIEVED.stroke_width(2),
                    )
                }),
        )?;
        root.present()?;
    }
    Ok(svg)
}

const TREND_STYLE: &str = "table.trend td{font-size:0.8em;text-align:center;white-space:nowrap}\
td.met{background:#d8f0d8}td.missed{background:#f6c6c6}td.either{background:#eeeeee}\
td.error{background:#f3d08a}td.flaky{background:#f8e0a8}td.absent{color:#999}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{CellMeasures, MatrixCell};
    use checkers::Validity;

    fn night(label: &str, first: Option<u64>, met: bool) -> Night {
        Night {
            label: label.into(),
            matrix: Matrix {
                started_at: label.into(),
                shards: vec!["1/1".into()],
                designs: vec!["lock-only".into()],
                faults: vec!["slow-writes".into()],
                cells: vec![MatrixCell {
                    measures: CellMeasures {
                        first_anomaly_ms: first,
                        throughput: Some(10.0),
                        margin_max: Some(1.2),
                    },
                    ..MatrixCell::bare(
                        "lock-only",
                        "slow-writes",
                        1,
                        "invalid",
                        Some(if met {
                            Validity::Invalid
                        } else {
                            Validity::Valid
                        }),
                        met,
                    )
                }],
            },
        }
    }

    #[test]
    fn the_grid_has_a_column_per_night_and_each_canary_a_plot() {
        let mut nights = [
            night("n1", Some(800), true),
            night("n<2>", Some(2500), true),
            night("n3", None, false),
        ];
        nights[2].matrix.cells[0].report = "lock-only-slow-writes/2026\"x/report.html".into();
        let html = render_trend(&nights, "../");
        assert!(
            html.contains("<th><a href=\"n1/matrix.html\">n1</a></th>")
                && html.contains("n&lt;2&gt;")
        );
        // A cell-night links to its night's report, relatively and escaped.
        assert!(html.contains(
            "<a href=\"../lock-only-slow-writes/2026&quot;x/report.html\">missed 0/1 m120%</a>"
        ));
        assert_eq!(html.matches("<td class=\"met\"").count(), 2);
        assert_eq!(html.matches("<td class=\"missed\"").count(), 1);
        assert!(html.contains("lock-only under slow-writes: time to first anomaly"));
        assert!(html.matches("<svg").count() == 1);
    }
}
