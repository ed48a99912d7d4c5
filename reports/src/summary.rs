//! A matrix cell as people read it: every seed of one (design, fault) together, with
//! its detection rate and a 95% confidence interval, and whether its expectation held in
//! all runs (met), none (missed) or only some (flaky). The page, the JUnit file, the
//! diff between two nights and the trend page all read cells through this one summary,
//! so a cell is flaky in all of them or in none.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use checkers::Validity;

use crate::matrix::{Matrix, MatrixCell};

/// The z of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// How often something happened in `n` independent runs, with its Wilson score
/// interval: unlike `k/n ± z·sqrt(p(1-p)/n)` it stays inside [0, 1] and says something
/// honest at 0/n and n/n, which is where a canary lives (caught 3/3 is not "100%
/// certain": it is [44%, 100%]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Runs where it happened.
    pub hits: u64,
    /// Runs counted.
    pub runs: u64,
    /// Lower bound of the 95% interval.
    pub low: f64,
    /// Upper bound of the 95% interval.
    pub high: f64,
}

impl Rate {
    /// `hits` out of `runs`, with its 95% Wilson interval (`[0, 1]` for no runs).
    pub fn wilson(hits: u64, runs: u64) -> Rate {
        if runs == 0 {
            return Rate {
                hits,
                runs,
                low: 0.0,
                high: 1.0,
            };
        }
        let n = runs as f64;
        let p = hits as f64 / n;
        let z2 = Z95 * Z95;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        Rate {
            hits,
            runs,
            low: (centre - half).max(0.0),
            high: (centre + half).min(1.0),
        }
    }

    /// The point estimate, `hits / runs` (0 with no runs).
    pub fn value(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.hits as f64 / self.runs as f64
        }
    }

    /// E.g. `3/4 (75%, 95% CI 30%-95%)`.
    pub fn describe(&self) -> String {
        format!(
            "{}/{} ({:.0}%, 95% CI {:.0}%-{:.0}%)",
            self.hits,
            self.runs,
            self.value() * 100.0,
            self.low * 100.0,
            self.high * 100.0
        )
    }
}

/// What a cell's runs say, all seeds together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellStatus {
    /// Every run met the expectation.
    Met,
    /// Not asserted (`either`), and every run produced a verdict.
    Either,
    /// The expectation held in some runs only: the cell is flaky, which for a safe
    /// design is still a finding, but a different one from a cell that always fails.
    Flaky,
    /// The expectation held in no run.
    Missed,
    /// A run had no verdict (harness error or `unknown`).
    Error,
}

impl CellStatus {
    /// The name on pages, in JSON and in JUnit.
    pub fn as_str(self) -> &'static str {
        match self {
            CellStatus::Met => "met",
            CellStatus::Either => "either",
            CellStatus::Flaky => "flaky",
            CellStatus::Missed => "missed",
            CellStatus::Error => "error",
        }
    }

    /// Whether the cell counts as passing (its expectation held every time).
    pub fn passes(self) -> bool {
        matches!(self, CellStatus::Met | CellStatus::Either)
    }
}

/// One (design, fault) cell, every seed of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    /// The cell's identity across nights: `design under fault`. A string on purpose: a
    /// row that gains a lock service (`design@service`) is a new key, never a
    /// silently different cell.
    pub key: String,
    /// The row.
    pub design: String,
    /// The column.
    pub fault: String,
    /// `valid`, `invalid` or `either`.
    pub expected: String,
    /// What its runs say.
    pub status: CellStatus,
    /// Runs that met the expectation.
    pub met: u64,
    /// Runs with a verdict (harness errors and `unknown` aside).
    pub decided: u64,
    /// Runs in all.
    pub runs: u64,
    /// The share of decided runs that found an anomaly (invalid), with its interval.
    pub detection: Rate,
    /// Median time from the first fault window to the first double booking, ms, over
    /// the runs that found one.
    pub first_anomaly_ms: Option<u64>,
    /// Median confirmed bookings per second over the decided runs.
    pub throughput: Option<f64>,
    /// The largest fraction of a lease any critical section used, over all runs (from
    /// lease-margin; absent when no run held a lease).
    pub margin_max: Option<f64>,
    /// The seeds run.
    pub seeds: Vec<u64>,
}

/// The cell key of a (design, fault): `design under fault`.
pub fn cell_key(design: &str, fault: &str) -> String {
    format!("{design} under {fault}")
}

/// Every cell of `m` in the page's order (rows, then columns), seeds together. Cells
/// whose row or column the matrix does not list come last, by name.
pub fn summarize(m: &Matrix) -> Vec<CellSummary> {
    let position =
        |list: &[String], x: &str| list.iter().position(|y| y == x).unwrap_or(usize::MAX);
    let mut groups: BTreeMap<(usize, usize, String), Vec<&MatrixCell>> = BTreeMap::new();
    for c in &m.cells {
        groups
            .entry((
                position(&m.designs, &c.design),
                position(&m.faults, &c.fault),
                cell_key(&c.design, &c.fault),
            ))
            .or_default()
            .push(c);
    }
    groups.values().map(|cells| summarize_cell(cells)).collect()
}

/// The summary of one cell's runs (all of one design and fault).
pub fn summarize_cell(cells: &[&MatrixCell]) -> CellSummary {
    let first = cells[0];
    let runs = cells.len() as u64;
    let decided: Vec<&&MatrixCell> = cells.iter().filter(|c| has_verdict(c)).collect();
    let met = cells.iter().filter(|c| c.met).count() as u64;
    let invalid = decided
        .iter()
        .filter(|c| c.verdict == Some(Validity::Invalid))
        .count() as u64;
    let status = if decided.len() as u64 != runs {
        CellStatus::Error
    } else if met == runs {
        if first.expected == "either" {
            CellStatus::Either
        } else {
            CellStatus::Met
        }
    } else if met == 0 {
        CellStatus::Missed
    } else {
        CellStatus::Flaky
    };
    let mut firsts: Vec<u64> = cells
        .iter()
        .filter_map(|c| c.measures.first_anomaly_ms)
        .collect();
    let mut rates: Vec<f64> = decided
        .iter()
        .filter_map(|c| c.measures.throughput)
        .collect();
    let margin_max = cells
        .iter()
        .filter_map(|c| c.measures.margin_max)
        .fold(None, |acc: Option<f64>, x| {
            Some(acc.map_or(x, |a| a.max(x)))
        });
    CellSummary {
        key: cell_key(&first.design, &first.fault),
        design: first.design.clone(),
        fault: first.fault.clone(),
        expected: first.expected.clone(),
        status,
        met,
        decided: decided.len() as u64,
        runs,
        detection: Rate::wilson(invalid, decided.len() as u64),
        first_anomaly_ms: median_u64(&mut firsts),
        throughput: median_f64(&mut rates),
        margin_max,
        seeds: cells.iter().map(|c| c.seed).collect(),
    }
}

/// A run with a verdict that counts: valid or invalid. `unknown` (the run did not test
/// what it claims) and harness errors do not.
fn has_verdict(c: &MatrixCell) -> bool {
    matches!(c.verdict, Some(Validity::Valid | Validity::Invalid))
}

fn median_u64(v: &mut [u64]) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len().checked_sub(1)? / 2).copied()
}

fn median_f64(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len().checked_sub(1)? / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::CellMeasures;

    fn run(seed: u64, expected: &str, verdict: Option<Validity>, met: bool) -> MatrixCell {
        MatrixCell {
            measures: CellMeasures {
                first_anomaly_ms: (verdict == Some(Validity::Invalid)).then_some(seed * 100),
                throughput: Some(seed as f64),
                margin_max: Some(0.5 + seed as f64 / 10.0),
            },
            ..MatrixCell::bare("lock-only", "slow-writes", seed, expected, verdict, met)
        }
    }

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 0/10: [0, 27.8%]; 10/10: [72.2%, 100%]; 5/10: [23.7%, 76.3%].
        let r = Rate::wilson(0, 10);
        assert_eq!(r.low, 0.0);
        assert!((r.high - 0.2775).abs() < 1e-3, "{r:?}");
        let r = Rate::wilson(10, 10);
        assert!((r.low - 0.7225).abs() < 1e-3, "{r:?}");
        assert!((r.high - 1.0).abs() < 1e-9, "{r:?}");
        let r = Rate::wilson(5, 10);
        assert!((r.low - 0.2366).abs() < 1e-3 && (r.high - 0.7634).abs() < 1e-3);
        assert_eq!(Rate::wilson(0, 0).high, 1.0);
        assert_eq!(Rate::wilson(3, 4).describe(), "3/4 (75%, 95% CI 30%-95%)");
    }

    #[test]
    fn a_cell_is_met_missed_flaky_or_error_by_how_many_runs_held() {
        let v = Some(Validity::Valid);
        let i = Some(Validity::Invalid);
        let s = |runs: &[MatrixCell]| summarize_cell(&runs.iter().collect::<Vec<_>>());
        let all = s(&[run(1, "invalid", i, true), run(2, "invalid", i, true)]);
        assert_eq!(all.status, CellStatus::Met);
        assert_eq!(all.detection.hits, 2);
        assert_eq!(all.first_anomaly_ms, Some(100));
        assert_eq!(all.margin_max, Some(0.7));
        let flaky = s(&[run(1, "invalid", i, true), run(2, "invalid", v, false)]);
        assert_eq!(flaky.status, CellStatus::Flaky);
        assert_eq!((flaky.met, flaky.runs), (1, 2));
        let none = s(&[run(1, "invalid", v, false), run(2, "invalid", v, false)]);
        assert_eq!(none.status, CellStatus::Missed);
        let err = s(&[run(1, "invalid", i, true), run(2, "invalid", None, false)]);
        assert_eq!(err.status, CellStatus::Error);
        let unknown = s(&[run(1, "valid", Some(Validity::Unknown), false)]);
        assert_eq!(unknown.status, CellStatus::Error);
        let either = s(&[run(1, "either", v, true), run(2, "either", i, true)]);
        assert_eq!(either.status, CellStatus::Either);
        assert_eq!(either.key, "lock-only under slow-writes");
    }
}
