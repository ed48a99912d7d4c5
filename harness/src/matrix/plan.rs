//! The matrix plan: which (design on a lock service, fault, seed) cells exist, what each
//! is expected to show, and which shard runs which. Pure values, decided before anything
//! runs, so that N CI runners given the same arguments split the same cell list without
//! talking.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use workloads::{DesignName, LockService};

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

/// What a matrix row tests: a built-in design on a lock service, or the user's service
/// (`--service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// A built-in design, taking its leases from a lock service.
    Design(DesignName, LockService),
    /// The service given by `matrix --service CMD`.
    Service,
}

impl Row {
    /// The row's name on the page and its key across nights: the design's (`lock-only`)
    /// on a single Redis, `design@service` (`lock-only@redlock`) on the others, or
    /// `service`. A single-Redis row keeps the name it had before lock services, so
    /// yesterday's matrix still compares.
    pub fn name(&self) -> String {
        match self {
            Row::Design(d, LockService::Single) => d.as_str().to_string(),
            Row::Design(d, l) => format!("{d}@{l}"),
            Row::Service => "service".to_string(),
        }
    }

    /// The `overbook run` arguments that select this row's design and lock service
    /// (not the service row's command: the matrix adds those).
    pub fn design_args(&self) -> Vec<String> {
        match self {
            Row::Design(d, l) => {
                let mut args = vec!["--design".to_string(), d.as_str().to_string()];
                if *l != LockService::Single {
                    args.extend(["--lock-service".to_string(), l.name().to_string()]);
                }
                args
            }
            Row::Service => Vec::new(),
        }
    }

    /// Whether the row can take `fault` at all: what the fault needs of the lock service
    /// ([`crate::nemesis::faults::check`]: `failover-redis` needs Sentinel's replica to
    /// promote; a service row runs on the single lock service). A fault that
    /// cannot strike the design ([`DesignName::exposed_to`]: a lock fault on a design
    /// without a lease) would test nothing, and its run would rightly be `unknown`: not
    /// planned.
    pub fn takes(&self, fault: Fault) -> bool {
        match self {
            Row::Design(d, l) => lock_service_takes(*l, fault) && d.exposed_to(fault),
            Row::Service => lock_service_takes(LockService::Single, fault),
        }
    }
}

/// Whether `fault` can run on the lock service `lock`.
fn lock_service_takes(lock: LockService, fault: Fault) -> bool {
    let setting = crate::nemesis::faults::Setting {
        lock_service: Some(lock),
        ..Default::default()
    };
    crate::nemesis::faults::check(&[fault], &setting).is_ok()
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Row {
    type Err = String;
    /// `service`, `DESIGN` (single Redis) or `DESIGN@SERVICE`.
    fn from_str(s: &str) -> Result<Row, String> {
        if s == "service" {
            return Ok(Row::Service);
        }
        let (design, service) = match s.split_once('@') {
            Some((d, l)) => (
                d,
                l.parse()
                    .map_err(|e: workloads::WorkloadError| e.to_string())?,
            ),
            None => (s, LockService::Single),
        };
        let design: DesignName = design
            .parse()
            .map_err(|e: workloads::WorkloadError| e.to_string())?;
        Ok(Row::Design(design, service))
    }
}

/// `--expect DESIGN[@SERVICE]:FAULT=VERDICT` (or `FAULT=VERDICT` for the service row): the
/// user's own expectation for some cells, replacing the design's declaration (e.g. to assert
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
            format!("--expect takes DESIGN[@LOCK-SERVICE]:FAULT=valid|invalid|either (e.g. lock-only:none=invalid, lock-only@redlock:client-pause=invalid), or FAULT=... for --service, got {s:?}")
        };
        let (cell, verdict) = s.split_once('=').ok_or_else(bad)?;
        let (design, fault) = match cell.split_once(':') {
            Some((row, fault)) => (row.parse::<Row>()?, fault),
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
    /// What a row is expected to show under `fault`: a design's own declaration on its
    /// lock service; a service is expected to hold (the user says otherwise with
    /// `--expect`).
    pub fn of_row(row: Row, fault: Fault) -> Expectation {
        match row {
            Row::Design(d, l) => Expectation::of(d, l, fault),
            Row::Service => Expectation::Valid,
        }
    }

    /// What `design` on `service` is expected to show under `fault`, from the design's
    /// own declaration ([`DesignName::caught_by_on`]).
    pub fn of(design: DesignName, service: LockService, fault: Fault) -> Expectation {
        if design.is_safe() {
            Expectation::Valid
        } else if design.caught_by_on(service).contains(&fault) {
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

/// Every cell of rows x faults x seeds, in a fixed order (row-major, as the page reads),
/// seeds `first_seed..first_seed + seeds`. A fault a row cannot take (`failover-redis`
/// off Sentinel) makes no cell.
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
        for &fault in faults.iter().filter(|f| design.takes(**f)) {
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
        let rows: Vec<Row> = DesignName::all()
            .iter()
            .flat_map(|&d| LockService::ALL.map(|l| Row::Design(d, l)))
            .collect();
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
            Expectation::of(
                DesignName::DbExclusion,
                LockService::Single,
                Fault::DbLatency
            ),
            Expectation::Valid
        );
        assert_eq!(
            Expectation::of(DesignName::LockOnly, LockService::Single, Fault::DbLatency),
            Expectation::Invalid
        );
        assert_eq!(
            Expectation::of(
                DesignName::LockRenewal,
                LockService::Single,
                Fault::ClientPause
            ),
            Expectation::Invalid
        );
        // Declared survivable by the design itself.
        assert_eq!(
            Expectation::of(
                DesignName::LockRenewal,
                LockService::Single,
                Fault::DbLatency
            ),
            Expectation::Valid
        );
        // Neither declared caught nor survived: not asserted.
        assert_eq!(
            Expectation::of(DesignName::LockOnly, LockService::Single, Fault::KillRedis),
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
            &[Row::Design(DesignName::LockOnly, LockService::Single)],
            &[Fault::None, Fault::DbLatency],
            1,
            1,
            &[o],
        );
        assert_eq!(cells[0].expect, Expectation::Invalid);
        assert_eq!(cells[1].expect, Expectation::Invalid);
        assert_eq!(
            Expectation::of(DesignName::LockOnly, LockService::Single, Fault::None),
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
            "lock-only@zookeeper:none=valid",
        ] {
            assert!(bad.parse::<ExpectOverride>().is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod lock_service_tests {
    use super::*;

    #[test]
    fn rows_are_named_by_design_and_lock_service_and_parse_back() {
        let single = Row::Design(DesignName::LockOnly, LockService::Single);
        let redlock = Row::Design(DesignName::LockOnly, LockService::Redlock);
        assert_eq!(single.name(), "lock-only");
        assert_eq!(redlock.name(), "lock-only@redlock");
        assert_eq!(single.design_args(), ["--design", "lock-only"]);
        assert_eq!(
            redlock.design_args(),
            ["--design", "lock-only", "--lock-service", "redlock"]
        );
        for row in [single, redlock, Row::Service] {
            assert_eq!(row.name().parse::<Row>(), Ok(row));
        }
        assert!("lock-only@nope".parse::<Row>().is_err());
    }

    #[test]
    fn the_lock_service_axis_declares_its_own_expectations_and_skips_what_cannot_run() {
        let rows: Vec<Row> = LockService::ALL
            .map(|l| Row::Design(DesignName::LockOnly, l))
            .to_vec();
        let faults = [
            Fault::FailoverRedis,
            Fault::ClockJumpRedis,
            Fault::SlowLockGrant,
        ];
        let cells = plan(&rows, &faults, 1, 1, &[]);
        let got: Vec<(String, &str, &str)> = cells
            .iter()
            .map(|c| (c.design.name(), c.fault.name(), c.expect.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("lock-only".to_string(), "clock-jump-redis", "invalid"),
                ("lock-only".to_string(), "slow-lock-grant", "invalid"),
                (
                    "lock-only@sentinel".to_string(),
                    "failover-redis",
                    "invalid"
                ),
                (
                    "lock-only@sentinel".to_string(),
                    "clock-jump-redis",
                    "invalid"
                ),
                (
                    "lock-only@sentinel".to_string(),
                    "slow-lock-grant",
                    "invalid"
                ),
                (
                    "lock-only@redlock".to_string(),
                    "clock-jump-redis",
                    "invalid"
                ),
                // One node's held grant does not stop a majority: not declared caught.
                ("lock-only@redlock".to_string(), "slow-lock-grant", "either"),
            ]
        );
        // The database-enforced designs are expected to hold on every service.
        for l in LockService::ALL {
            assert_eq!(
                Expectation::of(DesignName::DbExclusion, l, Fault::ClockJumpRedis),
                Expectation::Valid
            );
        }
        let o: ExpectOverride = "lock-only@redlock:slow-lock-grant=valid".parse().unwrap();
        let cells = plan(&rows, &[Fault::SlowLockGrant], 1, 1, &[o]);
        let expects: Vec<&str> = cells.iter().map(|c| c.expect.as_str()).collect();
        assert_eq!(expects, ["invalid", "invalid", "valid"]);
    }
}
