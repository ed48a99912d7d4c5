//! `overbook shrink RUN_DIR`: from a failing run, the smallest configuration that still
//! fails, found by running candidates on real servers within a time budget.
//!
//! Jepsen does not shrink, and simulators shrink a simulated history; here every
//! candidate is a real run, so a candidate is judged by how often it fails over a few
//! seeds, never by one lucky try. The search is greedy, one knob at a time, cheapest
//! first: the run's length and its fault windows (every later try is faster for it),
//! then the faults (the single one that matters), then rooms (one room makes every user
//! contend for one lock), then users. For each knob
//! the smallest value is tried first (an aimed fault usually still fails there), and
//! when it does not fail, a binary search between it and the current value.
//!
//! A candidate that comes out without a verdict (its faults never fired, too few
//! bookings) is neither a failure nor a pass: it does not count towards the rate.

pub mod candidate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use checkers::{Results, Validity};
use serde::Serialize;

use crate::nemesis::{time_needed, Fault};
use crate::run::spec::RunSpec;
use candidate::{run_once, Candidate, Tally, Try};

/// The smallest number of users a candidate has: one user cannot race itself.
const MIN_USERS: usize = 2;
/// What a candidate's run costs besides its time limit before anything was measured
/// (server start, schema, final read, checks, report), a guess for the budget.
const OVERHEAD_GUESS: Duration = Duration::from_secs(5);

/// What `shrink` writes beside its tries (`RUN_DIR/shrink/shrink.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ShrinkResult {
    /// The original configuration.
    pub from: String,
    /// The shrunk one.
    pub to: String,
    /// Its failure rate, e.g. "fails 3/3".
    pub rate: String,
    /// The command that reproduces it (a failing try's, seed included).
    pub command: String,
    /// That try's report.
    pub report: PathBuf,
    /// Candidates run, and seconds spent.
    pub candidates: u32,
    /// Seconds spent.
    pub seconds: f64,
}

/// The search's state: the budget, the tries made, where they go.
struct Search {
    exe: PathBuf,
    work: PathBuf,
    base: RunSpec,
    seed: u64,
    tries: u32,
    min_rate: f64,
    started: Instant,
    budget: Duration,
    overhead: Duration,
    runs: u32,
    candidates: u32,
    out_of_budget: bool,
}

impl Search {
    /// Whether one more try of `c` fits in the budget.
    fn fits(&self, c: &Candidate) -> bool {
        self.started.elapsed() + c.time_limit + self.overhead <= self.budget
    }

    fn progress(&self, line: &str) {
        // stderr, one line each, terminal or not: a CI log shows the search moving.
        eprintln!(
            "shrink [{:>4.0}s/{:.0}s] {line}",
            self.started.elapsed().as_secs_f64(),
            self.budget.as_secs_f64()
        );
    }

    /// Runs `c` up to `tries` times (fewer once the answer is known or the budget ends)
    /// and returns its tally, or `None` when the budget ended before it said anything.
    fn measure(&mut self, c: &Candidate) -> Option<Tally> {
        self.candidates += 1;
        let tally = self.more(c, Tally::default(), 0, self.tries, true);
        if tally.decided() == 0 {
            return None;
        }
        let verdict = if tally.still_fails(self.min_rate) {
            "still fails"
        } else {
            "does not fail enough"
        };
        self.progress(&format!(
            "{}: {} ({verdict})",
            c.describe(self.seed),
            tally.rate()
        ));
        Some(tally)
    }

    /// Adds tries `from..to` of `c` to `tally` (seeds continue from the run's own);
    /// with `give_up`, stops once enough passes mean the rate cannot reach `min_rate`.
    fn more(
        &mut self,
        c: &Candidate,
        mut tally: Tally,
        from: u32,
        to: u32,
        give_up: bool,
    ) -> Tally {
        let spec = c.apply(&self.base);
        let deadline = c.time_limit * 2 + Duration::from_secs(60);
        for i in from..to {
            if !self.fits(c) {
                self.out_of_budget = true;
                self.progress("budget spent");
                break;
            }
            let seed = self.seed.wrapping_add(u64::from(i));
            self.runs += 1;
            let log = self.work.join(format!("try-{}.log", self.runs));
            let began = Instant::now();
            let t = run_once(
                &self.exe,
                &spec,
                seed,
                &self.work.join("store"),
                &log,
                deadline,
            );
            self.overhead = self
                .overhead
                .max(began.elapsed().saturating_sub(c.time_limit));
            let said = match &t {
                Try::Failed { .. } => "fails".to_string(),
                Try::Passed => "passes".to_string(),
                Try::NoVerdict(why) => format!("no verdict ({why})"),
            };
            tally.add(t);
            self.progress(&format!(
                "{}: try {}/{} (seed {seed}) {said}",
                c.describe(self.seed),
                i + 1,
                to
            ));
            // Enough passes that the rate cannot reach min_rate: stop early.
            let left = to - i - 1;
            if give_up
                && f64::from(tally.failed + left)
                    < self.min_rate * f64::from(tally.decided() + left)
            {
                break;
            }
        }
        tally
    }

    /// Searches `values` (ascending, all smaller than the current one) for the smallest
    /// that still fails: the smallest first, then a binary search. Returns the accepted
    /// candidate and its tally, if any.
    fn smallest(&mut self, values: Vec<Candidate>) -> Option<(Candidate, Tally)> {
        let first = values.first()?.clone();
        if self.out_of_budget {
            return None;
        }
        match self.measure(&first) {
            Some(t) if t.still_fails(self.min_rate) => return Some((first, t)),
            _ => {}
        }
        let (mut lo, mut hi) = (0, values.len());
        let mut best = None;
        while hi - lo > 1 && !self.out_of_budget {
            let mid = (lo + hi) / 2;
            match self.measure(&values[mid]) {
                Some(t) if t.still_fails(self.min_rate) => {
                    best = Some((values[mid].clone(), t));
                    hi = mid;
                }
                _ => lo = mid,
            }
        }
        best
    }
}

/// Values from `floor` up to (not including) `current`: the floor, a few small ones,
/// and the halvings of `current`, ascending.
fn ladder(floor: u64, current: u64) -> Vec<u64> {
    let mut v: Vec<u64> = vec![floor, floor + 1, floor * 2];
    let mut x = current / 2;
    while x > floor {
        v.push(x);
        x /= 2;
    }
    v.retain(|&x| x >= floor && x < current);
    v.sort_unstable();
    v.dedup();
    v
}

/// The time limit that fits one window of each of `faults` of `fault_for` after
/// `heal_for` of health, rounded up to 100 ms.
fn time_for(faults: usize, fault_for: Duration, heal_for: Duration) -> Duration {
    let ms = time_needed(faults.max(1), fault_for, heal_for).as_millis() as u64;
    Duration::from_millis(ms.div_ceil(100) * 100)
}

/// How the search spends its budget (`overbook shrink`'s options).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// How long the search may take in all.
    pub budget: Duration,
    /// Runs per candidate.
    pub tries: u32,
    /// Runs of the shrunk configuration in all, budget permitting.
    pub confirm: u32,
    /// A candidate still fails when at least this share of its decided tries fail.
    pub min_rate: f64,
}

/// The best candidate so far, and its tally once one was measured.
type Best = (Candidate, Option<Tally>);

/// Runs `overbook shrink` of the failing run in `dir`, whose command is `base` (the
/// user already trusts what it names: [`trust`]).
pub fn run(opts: &Options, dir: &std::path::Path, base: RunSpec) -> anyhow::Result<ExitCode> {
    if !(1..=1000).contains(&opts.tries) {
        bail!("--tries {} is out of range: allowed 1 to 1000", opts.tries);
    }
    if !(opts.min_rate > 0.0 && opts.min_rate <= 1.0) {
        bail!(
            "--min-rate {} is out of range: above 0, at most 1",
            opts.min_rate
        );
    }
    // Every value of the original spelled out: the candidates shrink from these.
    let base = base.check()?.spec().clone();
    let work = dir.join("shrink");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let start = Candidate {
        users: base.concurrency,
        rooms: base.rooms.unwrap_or(1),
        time_limit: base.time_limit,
        fault_for: base.fault_for.unwrap_or_default(),
        heal_for: base.heal_for.unwrap_or_default(),
        faults: base.faults.clone(),
    };
    let seed = base.seed.unwrap_or_default();
    let mut search = Search {
        exe: std::env::current_exe().context("cannot find the overbook executable")?,
        work: work.clone(),
        base,
        seed,
        tries: opts.tries,
        min_rate: opts.min_rate,
        started: Instant::now(),
        budget: opts.budget,
        overhead: OVERHEAD_GUESS,
        runs: 0,
        candidates: 0,
        out_of_budget: false,
    };
    let from = start.describe(seed);
    search.progress(&format!(
        "from {from} (the original run failed); {} tries a candidate",
        opts.tries
    ));
    let mut best: Best = (start, None);
    shorter(&mut search, &mut best);
    single_fault(&mut search, &mut best);
    fewer_rooms_and_users(&mut search, &mut best);
    confirm(&mut search, &mut best, opts.confirm);
    finish(&search, best, &from, &work, opts.min_rate)
}

/// Takes `found` as the best candidate, when there is one.
fn accept(best: &mut Best, found: Option<(Candidate, Tally)>) {
    if let Some((c, t)) = found {
        *best = (c, Some(t));
    }
}

/// Step 1, shorter: short windows soon after the start, and only as many as faults. The floor
/// keeps room in each window for three leases taken over while a slow round trip still
/// runs: one such race in a window fails only as often as the two users happen to want
/// the same nights; three make the reproducer fail nearly always.
fn shorter(search: &mut Search, best: &mut Best) {
    let base = &search.base;
    let lock_ttl = base.lock_ttl.unwrap_or_default();
    let floor_ms = ((lock_ttl + base.db_latency.max(base.redis_latency)) * 3).as_millis() as u64;
    let heal = (lock_ttl / 2).clamp(
        Duration::from_millis(100),
        best.0.heal_for.max(Duration::from_millis(100)),
    );
    let n = best.0.faults.iter().filter(|f| **f != Fault::None).count();
    let current_ms = best.0.fault_for.as_millis() as u64;
    let mut shorter: Vec<Candidate> = ladder(floor_ms, current_ms)
        .into_iter()
        .chain(std::iter::once(current_ms))
        .map(|ff| {
            let fault_for = Duration::from_millis(ff);
            Candidate {
                fault_for,
                heal_for: heal,
                time_limit: time_for(n, fault_for, heal).min(best.0.time_limit),
                ..best.0.clone()
            }
        })
        .filter(|c| c.time_limit < best.0.time_limit && fits(base, c))
        .collect();
    shorter.dedup();
    let found = search.smallest(shorter);
    accept(best, found);
}

/// Step 2: the single fault that matters.
fn single_fault(search: &mut Search, best: &mut Best) {
    if best.0.faults.len() <= 1 {
        return;
    }
    for f in best.0.faults.clone() {
        if search.out_of_budget {
            break;
        }
        let c = Candidate {
            faults: vec![f],
            time_limit: time_for(1, best.0.fault_for, best.0.heal_for).min(best.0.time_limit),
            ..best.0.clone()
        };
        if !fits(&search.base, &c) {
            continue;
        }
        if let Some(t) = search.measure(&c) {
            if t.still_fails(search.min_rate) {
                *best = (c, Some(t));
                break;
            }
        }
    }
}

/// Steps 3 and 4: fewer rooms, then fewer users. Rooms first: one room puts every user on one lock, so
/// a held write is always met by a user waiting for its lease, and the users step is
/// then judged where the race is certain rather than on a hotel where two users may
/// spend a whole window on different rooms.
fn fewer_rooms_and_users(search: &mut Search, best: &mut Best) {
    let rooms: Vec<Candidate> = ladder(1, best.0.rooms)
        .into_iter()
        .map(|r| Candidate {
            rooms: r,
            ..best.0.clone()
        })
        .collect();
    let found = search.smallest(rooms);
    accept(best, found);
    let users: Vec<Candidate> = ladder(MIN_USERS as u64, best.0.users as u64)
        .into_iter()
        .map(|u| Candidate {
            users: u as usize,
            ..best.0.clone()
        })
        .collect();
    let found = search.smallest(users);
    accept(best, found);
}

/// Step 5: what is left of the budget measures the result's rate better ("fails 10/10"),
/// which is what the person reading the reproducer needs to trust it.
fn confirm(search: &mut Search, best: &mut Best, runs: u32) {
    if let (c, Some(t)) = &*best {
        let done = t.failed + t.passed + t.no_verdict;
        if runs > done && !search.out_of_budget {
            let (c, t) = (c.clone(), t.clone());
            let t = search.more(&c, t, done, runs, false);
            search.progress(&format!("{}: {} in all", c.describe(search.seed), t.rate()));
            *best = (c, Some(t));
        }
    }
}

/// Writes `shrink.json` and prints the result; exit 1 when nothing smaller still fails.
fn finish(
    search: &Search,
    best: Best,
    from: &str,
    work: &std::path::Path,
    min_rate: f64,
) -> anyhow::Result<ExitCode> {
    let seconds = search.started.elapsed().as_secs_f64();
    let (shrunk, Some(tally)) = best else {
        println!(
            "shrink: no smaller configuration still fails {} of its tries within {:.0} s ({} candidates); the original stands: {from}",
            min_rate, seconds, search.candidates
        );
        return Ok(ExitCode::from(1));
    };
    let (command, run_dir) = tally
        .first_failure
        .clone()
        .expect("a candidate that still fails has a failing try");
    let result = ShrinkResult {
        from: from.to_string(),
        to: shrunk.describe(search.seed),
        rate: tally.rate(),
        command,
        report: run_dir.join(crate::store::REPORT),
        candidates: search.candidates,
        seconds,
    };
    crate::store::write_file(
        work.join("shrink.json"),
        serde_json::to_vec_pretty(&result)?,
    )
    .with_context(|| format!("cannot write {}", work.join("shrink.json").display()))?;
    println!(
        "shrunk in {:.0} s ({} candidates, {} runs){}:",
        seconds,
        search.candidates,
        search.runs,
        if search.out_of_budget {
            ", budget spent"
        } else {
            ""
        }
    );
    println!("  {} with {}", result.rate, result.to);
    println!("  from {from} (the original run failed)");
    println!(
        "  reproduce: {}",
        checkers::text::for_terminal(&result.command)
    );
    println!("  report:    {}", result.report.display());
    Ok(ExitCode::SUCCESS)
}

/// Refuses to replay `inputs` (what the run directory's command would execute or
/// connect to) unless the user trusts them: `--trust-run`, or a yes typed on a terminal
/// after seeing each one. Shown escaped: they are someone else's words.
pub fn trust(
    dir: &std::path::Path,
    inputs: &[(&'static str, String)],
    trusted: bool,
) -> anyhow::Result<()> {
    use checkers::text::{for_terminal, redact_credentials};
    use std::io::{BufRead, IsTerminal, Write};
    if inputs.is_empty() || trusted {
        return Ok(());
    }
    let mut shown = format!(
        "{} asks to run or connect to what its maker chose:\n",
        for_terminal(&dir.display().to_string())
    );
    for (flag, value) in inputs {
        shown.push_str(&format!(
            "  {flag} {}\n",
            for_terminal(&redact_credentials(value))
        ));
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!("{shown}run these? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
        bail!("not trusted: nothing was run");
    }
    bail!("{shown}a run directory is someone else's input: check these, then give --trust-run to run them")
}

/// The meta of the failing run in `dir`: refuses a directory that is not a run, a run
/// that did not fail (valid, or without a verdict), and an interrupted one (its command
/// does not describe what ran). What `shrink` and `bench reproduce` start from.
pub fn failing_run(dir: &std::path::Path) -> anyhow::Result<reports::RunMeta> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: give a run directory (store/<test>/<stamp>)",
            dir.display()
        );
    }
    let meta_path = dir.join(crate::store::META);
    let results_path = dir.join(crate::store::RESULTS);
    if !meta_path.is_file() || !results_path.is_file() {
        bail!(
            "{} is not a run directory: it has no {} and {} (give store/<test>/<stamp> of an `overbook run`)",
            dir.display(),
            crate::store::META,
            crate::store::RESULTS
        );
    }
    let meta: reports::RunMeta = serde_json::from_slice(
        &std::fs::read(&meta_path)
            .with_context(|| format!("cannot read {}", meta_path.display()))?,
    )
    .with_context(|| format!("{} is not a run's meta.json", meta_path.display()))?;
    let results: Results = serde_json::from_slice(
        &std::fs::read(&results_path)
            .with_context(|| format!("cannot read {}", results_path.display()))?,
    )
    .with_context(|| format!("{} is not a run's results.json", results_path.display()))?;
    match results.validity {
        Validity::Invalid => {}
        Validity::Valid => bail!(
            "{} is a valid run: nothing failed, so there is nothing to shrink or reproduce",
            dir.display()
        ),
        Validity::Unknown => bail!(
            "{} has no verdict (unknown: it did not test what it claims): there is no failure to shrink or reproduce",
            dir.display()
        ),
    }
    if meta.interrupted {
        bail!(
            "{} was interrupted (Ctrl-C): its command does not describe what ran",
            dir.display()
        );
    }
    Ok(meta)
}

/// Whether `c` is a configuration `overbook run` accepts (every fault has a window).
fn fits(base: &RunSpec, c: &Candidate) -> bool {
    c.apply(base).check().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders_climb_from_the_floor_below_the_current_value() {
        assert_eq!(ladder(2, 16), vec![2, 3, 4, 8]);
        assert_eq!(ladder(1, 5), vec![1, 2]);
        assert_eq!(ladder(1, 1), Vec::<u64>::new());
        assert_eq!(ladder(2, 3), vec![2]);
        assert_eq!(
            time_for(1, Duration::from_millis(1100), Duration::from_millis(250)).as_millis(),
            2000
        );
    }
}
