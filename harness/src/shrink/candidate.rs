//! One configuration shrinking tries, and running it: each try is a child `overbook
//! run` (its own servers, its own deadline), exactly the command that will be printed
//! but for the seed, so the rate measured is the rate of what the user gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use checkers::Validity;

use crate::matrix::{wait_until_deadline, CellExit, RunSummaryFile};
use crate::nemesis::{Fault, Schedule, ScheduleConfig};
use crate::run::spec::RunSpec;

/// The knobs shrinking turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `--concurrency`.
    pub users: usize,
    /// `--rooms`.
    pub rooms: u64,
    /// `--time-limit`.
    pub time_limit: Duration,
    /// `--fault-for`.
    pub fault_for: Duration,
    /// `--heal-for`.
    pub heal_for: Duration,
    /// `--fault`, each.
    pub faults: Vec<Fault>,
}

impl Candidate {
    /// How many fault windows the candidate's schedule has for `seed`.
    pub fn windows(&self, seed: u64) -> usize {
        Schedule::plan(&ScheduleConfig {
            faults: self.faults.clone(),
            time_limit: self.time_limit,
            fault_for: self.fault_for,
            heal_for: self.heal_for,
            seed,
        })
        .windows
        .len()
    }

    /// E.g. "2 users, 1 room, 2.1 s, 1 window of slow-writes".
    pub fn describe(&self, seed: u64) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{}, {}, {:.1} s, {} of {}",
            plural(self.users as u64, "user", "users"),
            plural(self.rooms, "room", "rooms"),
            self.time_limit.as_secs_f64(),
            plural(self.windows(seed) as u64, "window", "windows"),
            self.faults
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("+")
        )
    }

    /// The run `base` with this candidate's values in place of its own.
    pub fn apply(&self, base: &RunSpec) -> RunSpec {
        RunSpec {
            concurrency: self.users,
            rooms: Some(self.rooms),
            time_limit: self.time_limit,
            fault_for: Some(self.fault_for),
            heal_for: Some(self.heal_for),
            faults: self.faults.clone(),
            ..base.clone()
        }
    }
}

/// What one try showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Try {
    /// Invalid: it still fails.
    Failed {
        /// The try's own reproduce command (its seed included).
        command: String,
        /// Its run directory.
        dir: PathBuf,
    },
    /// Valid.
    Passed,
    /// No verdict: its faults never fired, too few bookings, a harness error. Neither a
    /// failure nor a pass: a candidate made only of these says nothing.
    NoVerdict(String),
}

/// Runs `spec` once with `seed` as a child `overbook run`, its run directory under
/// `store`, its output in `log`. `deadline` bounds it (Ctrl-C, then SIGKILL).
pub fn run_once(
    exe: &Path,
    spec: &RunSpec,
    seed: u64,
    store: &Path,
    log: &Path,
    deadline: Duration,
) -> Try {
    let outcome = log.with_extension("json");
    let one = RunSpec {
        seed: Some(seed),
        ..spec.clone()
    };
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .args(one.words())
        .arg("--store")
        .arg(store)
        .arg("--quiet")
        .arg("--outcome-file")
        .arg(&outcome)
        .stdin(Stdio::null());
    let status = std::fs::File::create(log).and_then(|out| {
        let err = out.try_clone()?;
        let child = cmd.stdout(out).stderr(err).spawn()?;
        wait_until_deadline(child, deadline)
    });
    let summary: Option<RunSummaryFile> = std::fs::read(&outcome)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match (status, summary) {
        (Err(e), _) => Try::NoVerdict(format!("cannot start {}: {e}", exe.display())),
        (Ok(CellExit::TimedOut), _) => Try::NoVerdict(format!(
            "still running after {:.0} s, stopped",
            deadline.as_secs_f64()
        )),
        (Ok(_), Some(s)) if s.validity == Validity::Invalid => Try::Failed {
            command: s.command,
            dir: s.dir,
        },
        (Ok(_), Some(s)) if s.validity == Validity::Valid => Try::Passed,
        (Ok(_), Some(s)) => Try::NoVerdict(format!("unknown: {}", s.summary)),
        (Ok(_), None) => {
            Try::NoVerdict(format!("the run failed: {}", crate::matrix::last_line(log)))
        }
    }
}

/// A candidate's tries so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Tries that failed (invalid).
    pub failed: u32,
    /// Tries that passed (valid).
    pub passed: u32,
    /// Tries with no verdict.
    pub no_verdict: u32,
    /// The first failing try: its command and run directory.
    pub first_failure: Option<(String, PathBuf)>,
}

impl Tally {
    /// Counts one try.
    pub fn add(&mut self, t: Try) {
        match t {
            Try::Failed { command, dir } => {
                self.failed += 1;
                self.first_failure.get_or_insert((command, dir));
            }
            Try::Passed => self.passed += 1,
            Try::NoVerdict(_) => self.no_verdict += 1,
        }
    }

    /// Tries with a verdict.
    pub fn decided(&self) -> u32 {
        self.failed + self.passed
    }

    /// "fails 3/3" (and the tries without a verdict, when there were any).
    pub fn rate(&self) -> String {
        let mut s = format!("fails {}/{}", self.failed, self.decided());
        if self.no_verdict > 0 {
            s.push_str(&format!(" ({} more without a verdict)", self.no_verdict));
        }
        s
    }

    /// Whether the candidate still fails: in at least `min_rate` of its tries with a
    /// verdict, and at least once.
    pub fn still_fails(&self, min_rate: f64) -> bool {
        self.failed > 0 && f64::from(self.failed) >= min_rate * f64::from(self.decided())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_verdict_tries_count_neither_way() {
        let mut t = Tally::default();
        t.add(Try::NoVerdict("faults never fired".into()));
        assert!(!t.still_fails(0.5));
        t.add(Try::Failed {
            command: "c".into(),
            dir: PathBuf::from("d"),
        });
        t.add(Try::Passed);
        assert!(t.still_fails(0.5));
        assert!(!t.still_fails(0.6));
        assert_eq!(t.rate(), "fails 1/2 (1 more without a verdict)");
    }

    #[test]
    fn a_candidate_edits_only_its_own_flags() {
        let base = RunSpec {
            faults: vec![Fault::SlowWrites],
            time_limit: Duration::from_millis(20000),
            concurrency: 16,
            rooms: Some(5),
            seed: Some(7),
            fault_for: Some(Duration::from_millis(4000)),
            heal_for: Some(Duration::from_millis(2000)),
            ..RunSpec::default()
        };
        let c = Candidate {
            users: 2,
            rooms: 1,
            time_limit: Duration::from_millis(2500),
            fault_for: Duration::from_millis(1200),
            heal_for: Duration::from_millis(250),
            faults: vec![Fault::SlowWrites],
        };
        assert_eq!(
            c.apply(&base),
            RunSpec {
                time_limit: Duration::from_millis(2500),
                concurrency: 2,
                rooms: Some(1),
                fault_for: Some(Duration::from_millis(1200)),
                heal_for: Some(Duration::from_millis(250)),
                ..base.clone()
            }
        );
        assert!(c.apply(&base).command().starts_with(
            "overbook run --design lock-only --fault slow-writes --time-limit 2500ms --concurrency 2 --rooms 1 --seed 7"
        ));
        assert!(c.describe(7).starts_with("2 users, 1 room, 2.5 s, "));
    }
}
