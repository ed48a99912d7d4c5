//! The matrix plan: which (design, fault, seed) cells exist, what each is expected to
//! show, and which shard runs which. Pure values, decided before anything runs, so that
//! N CI runners given the same arguments split the same cell list without talking.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use workloads::DesignName;

use crate::nemesis::Fault;

/// What a cell's verdict should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    /// A safe design: any anomaly is a finding.
    Valid,
    /// An unsafe design under a fault that breaks it: no anomaly means the canary did
    /// not sing (the harness failed to catch a known bug).
    Invalid,
    /// An unsafe design under a fault that need not break it: recorded, not asserted.
    Either,
}

impl FromStr for Expectation {
    type Err = String;
    fn from_str(s: &str) -> Result<Expectation, String> {
        match s {
            "valid" => Ok(Expectation::Valid),
            "invalid" => Ok(Expectation::Invalid),
            "either" => Ok(Expectation::Either),
            other => Err(format!(
                "{other:?} is not an expectation: valid, invalid or either"
            )),
        }
    }
}

/// What a matrix row tests: a built-in design, or the user's service (`--service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// A built-in design.
    Design(DesignName),
    /// The service given by `matrix --service CMD`.
    Service,
}

impl Row {
    /// The row's name on the page: the design's, or `service`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Row::Design(d) => d.as_str(),
            Row::Service => "service",
        }
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--expect DESIGN:FAULT=VERDICT` (or `FAULT=VERDICT` for the service row): the user's
/// own expectation for some cells, replacing the design's declaration (e.g. to assert
/// that a design of theirs is caught).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectOverride {
    /// The row the override applies to.
    pub design: Row,
    /// The fault it applies to.
    pub fault: Fault,
    /// What the cell must show.
    pub expect: Expectation,
}

impl FromStr for ExpectOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<ExpectOverride, String> {
        let bad = || {
            format!("--expect takes DESIGN:FAULT=valid|invalid|either (e.g. lock-only:none=invalid), or FAULT=... for --service, got {s:?}")
        };
        let (cell, verdict) = s.split_once('=').ok_or_else(bad)?;
        let (design, fault) = match cell.split_once(':') {
            Some(("service", fault)) => (Row::Service, fault),
            Some((design, fault)) => (
                Row::Design(
                    design
                        .parse()
                        .map_err(|e: workloads::WorkloadError| e.to_string())?,
                ),
                fault,
            ),
            None => (Row::Service, cell),
        };
        Ok(ExpectOverride {
            design,
            fault: fault.parse().map_err(|e| format!("{e}"))?,
            expect: verdict.parse()?,
        })
    }
}

impl Expectation {
    /// What a row is expected to show under `fault`: a design's own declaration; a
    /// service is expected to hold (the user says otherwise with `--expect`).
    pub fn of_row(row: Row, fault: Fault) -> Expectation {
        match row {
            Row::Design(d) => Expectation::of(d, fault),
            Row::Service => Expectation::Valid,
        }
    }

    /// What `design` is expected to show under `fault`, from the design's own declaration.
    pub fn of(design: DesignName, fault: Fault) -> Expectation {
        if design.is_safe() {
            Expectation::Valid
        } else if design.caught_by().contains(&fault) {
            Expectation::Invalid
        } else if design.survives().contains(&fault) {
            Expectation::Valid
        } else {
            Expectation::Either
        }
    }

    /// The name used in matrix.json and on the page.
    pub fn as_str(self) -> &'static str {
        match self {
            Expectation::Valid => "valid",
            Expectation::Invalid => "invalid",
            Expectation::Either => "either",
        }
    }
}

/// One run of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Position in the full (unsharded) plan: the cell's stable identity.
    pub ordinal: usize,
    /// What the cell tests.
    pub design: Row,
    /// The fault injected.
    pub fault: Fault,
    /// The run's seed.
    pub seed: u64,
    /// What the verdict should be.
    pub expect: Expectation,
}

/// `--shard K/N`: this runner takes every cell whose ordinal is K-1 modulo N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index of this shard.
    pub index: usize,
    /// How many shards share the matrix.
    pub count: usize,
}

impl Shard {
    /// The whole matrix in one runner.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether this shard runs the cell.
    pub fn owns(&self, cell: &Cell) -> bool {
        cell.ordinal % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard takes K/N with 1 <= K <= N (e.g. 2/4), got {s:?}");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Every cell of designs x faults x seeds, in a fixed order (design-major, as the page
/// reads), seeds `first_seed..first_seed + seeds`.
/// `overrides` replace the designs' own expectations for the cells they name.
pub fn plan(
    designs: &[Row],
    faults: &[Fault],
    seeds: u64,
    first_seed: u64,
    overrides: &[ExpectOverride],
) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &design in designs {
        for &fault in faults {
            let expect = overrides
                .iter()
                .rev()
                .find(|o| o.design == design && o.fault == fault)
                .map_or_else(|| Expectation::of_row(design, fault), |o| o.expect);
            for s in 0..seeds {
                cells.push(Cell {
                    ordinal: cells.len(),
                    design,
                    fault,
                    seed: first_seed + s,
                    expect,
                });
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_plan_exactly() {
        let rows: Vec<Row> = DesignName::all().iter().map(|&d| Row::Design(d)).collect();
        let cells = plan(&rows, Fault::all(), 3, 1, &[]);
        for n in 1..=5 {
            let mut seen: Vec<usize> = (1..=n)
                .flat_map(|k| {
                    let shard = Shard { index: k, count: n };
                    cells
                        .iter()
                        .filter(move |c| shard.owns(c))
                        .map(|c| c.ordinal)
                })
                .collect();
            seen.sort();
            assert_eq!(seen, (0..cells.len()).collect::<Vec<_>>(), "{n} shards");
        }
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "1", "a/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn expectations_follow_the_designs_declarations() {
        assert_eq!(
            Expectation::of(DesignName::DbExclusion, Fault::DbLatency),
            Expectation::Valid
        );
        assert_eq!(
            Expectation::of(DesignName::LockOnly, Fault::DbLatency),
            Expectation::Invalid
        );
        assert_eq!(
            Expectation::of(DesignName::LockRenewal, Fault::ClientPause),
            Expectation::Invalid
        );
        // Declared survivable by the design itself.
        assert_eq!(
            Expectation::of(DesignName::LockRenewal, Fault::DbLatency),
            Expectation::Valid
        );
        // Neither declared caught nor survived: not asserted.
        assert_eq!(
            Expectation::of(DesignName::LockOnly, Fault::KillRedis),
            Expectation::Either
        );
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;

    #[test]
    fn overrides_replace_the_declared_expectation_of_their_cell_only() {
        let o: ExpectOverride = "lock-only:none=invalid".parse().unwrap();
        let cells = plan(
            &[Row::Design(DesignName::LockOnly)],
            &[Fault::None, Fault::DbLatency],
            1,
            1,
            &[o],
        );
        assert_eq!(cells[0].expect, Expectation::Invalid);
        assert_eq!(cells[1].expect, Expectation::Invalid);
        assert_eq!(
            Expectation::of(DesignName::LockOnly, Fault::None),
            Expectation::Valid
        );
        let svc: ExpectOverride = "kill-service=invalid".parse().unwrap();
        assert_eq!(svc.design, Row::Service);
        assert_eq!(svc.fault, Fault::KillService);
        let cells = plan(
            &[Row::Service],
            &[Fault::None, Fault::KillService],
            1,
            1,
            &[svc],
        );
        assert_eq!(cells[0].expect, Expectation::Valid);
        assert_eq!(cells[1].expect, Expectation::Invalid);
        for bad in [
            "lock-only=valid",
            "lock-only:none",
            "nope:none=valid",
            "lock-only:nope=valid",
            "lock-only:none=maybe",
        ] {
            assert!(bad.parse::<ExpectOverride>().is_err(), "{bad}");
        }
    }
}
