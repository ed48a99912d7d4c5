//! The fault schedule: a pure value planned from the seed (Jepsen's nemesis computes its
//! plan, then applies it). Nothing here touches a process or a socket.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Fault;

/// What the schedule is planned from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// The faults to draw from (`none` entries are ignored).
    pub faults: Vec<Fault>,
    /// The run's length: every window ends by then.
    pub time_limit: Duration,
    /// A fault window's typical length (each is drawn from 75%..125% of it).
    pub fault_for: Duration,
    /// A healthy gap's typical length; the first gap is exactly this long.
    pub heal_for: Duration,
    /// The run's seed.
    pub seed: u64,
}

/// One fault window, relative to the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The fault active in the window.
    pub fault: Fault,
    /// When it starts.
    pub start: Duration,
    /// When it is healed.
    pub stop: Duration,
}

/// The fault windows of a run, in order, never overlapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    /// The windows, sorted by start.
    pub windows: Vec<Window>,
}

/// Keeps nemesis draws apart from the generator's, which uses the same run seed.
const SEED_SALT: u64 = 0x6e65_6d65_7369_7321;

impl Schedule {
    /// Plans the windows: healthy for `heal_for`, then alternating fault and healthy
    /// periods of randomised length, all deterministic for a seed. Faults are drawn from
    /// `faults` without replacement until each has had a window, then the bag refills: a
    /// run long enough for N windows injects every one of N requested faults (a fault
    /// asked for and never injected would make a VALID verdict vacuous). A window that
    /// would be cut to less than half its length by the time limit is dropped.
    pub fn plan(cfg: &ScheduleConfig) -> Schedule {
        let faults: Vec<Fault> = cfg
            .faults
            .iter()
            .copied()
            .filter(|f| *f != Fault::None)
            .collect();
        let mut windows = Vec::new();
        if faults.is_empty() || cfg.fault_for.is_zero() {
            return Schedule { windows };
        }
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ SEED_SALT);
        let spread = |d: Duration, rng: &mut StdRng| {
            let ms = d.as_millis() as u64;
            Duration::from_millis(rng.random_range(ms * 3 / 4..=ms * 5 / 4))
        };
        let mut t = cfg.heal_for;
        let mut bag: Vec<Fault> = Vec::new();
        loop {
            if bag.is_empty() {
                bag = faults.clone();
            }
            // With one fault this draws exactly what a draw with replacement did, so a
            // seed keeps its schedule.
            let fault = bag.swap_remove(rng.random_range(0..bag.len()));
            let length = spread(cfg.fault_for, &mut rng);
            let stop = (t + length).min(cfg.time_limit);
            if stop <= t || stop - t < length / 2 {
                break;
            }
            windows.push(Window {
                fault,
                start: t,
                stop,
            });
            t = stop + spread(cfg.heal_for, &mut rng);
        }
        Schedule { windows }
    }

    /// The same windows, each `offset` later: a run plans its windows from the moment
    /// its clients start, but its clock (history times) starts before its setup, so the
    /// windows move by however long setup took. Without this a slow setup (seconds on a
    /// loaded machine) ate the first healthy period and part of the first window before
    /// any client was there to feel the fault.
    pub fn after(mut self, offset: Duration) -> Schedule {
        for w in &mut self.windows {
            w.start += offset;
            w.stop += offset;
        }
        self
    }

    /// The distinct faults the schedule uses.
    pub fn faults(&self) -> BTreeSet<Fault> {
        self.windows.iter().map(|w| w.fault).collect()
    }

    /// The requested faults (`none` aside) that no window of this schedule injects, in
    /// the order requested: a run with any would test less than it claims.
    pub fn missing(&self, requested: &[Fault]) -> Vec<Fault> {
        let planned = self.faults();
        let mut out: Vec<Fault> = Vec::new();
        for f in requested {
            if *f != Fault::None && !planned.contains(f) && !out.contains(f) {
                out.push(*f);
            }
        }
        out
    }
}

/// The shortest time limit whose schedule surely fits one window of each of `n` faults:
/// the first healthy period, then per fault its longest window and the longest healthy
/// gap after it (the last gap is not needed, but a round figure reads better).
pub fn time_needed(n: usize, fault_for: Duration, heal_for: Duration) -> Duration {
    heal_for + (fault_for * 5 / 4 + heal_for * 5 / 4) * n as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(faults: Vec<Fault>, seed: u64) -> ScheduleConfig {
        ScheduleConfig {
            faults,
            time_limit: Duration::from_secs(60),
            fault_for: Duration::from_secs(3),
            heal_for: Duration::from_secs(2),
            seed,
        }
    }

    #[test]
    fn a_schedule_moves_whole_by_the_setup_time() {
        let plan = Schedule::plan(&cfg(vec![Fault::PauseDb, Fault::DbLatency], 5));
        let moved = plan.clone().after(Duration::from_millis(1800));
        assert_eq!(plan.windows.len(), moved.windows.len());
        for (a, b) in plan.windows.iter().zip(&moved.windows) {
            assert_eq!(b.fault, a.fault);
            assert_eq!(b.start - a.start, Duration::from_millis(1800));
            assert_eq!(b.stop - b.start, a.stop - a.start);
        }
    }

    #[test]
    fn plan_is_deterministic_per_seed() {
        let all = Fault::all().to_vec();
        assert_eq!(
            Schedule::plan(&cfg(all.clone(), 7)),
            Schedule::plan(&cfg(all.clone(), 7))
        );
        assert_ne!(
            Schedule::plan(&cfg(all.clone(), 7)),
            Schedule::plan(&cfg(all, 8))
        );
    }

    #[test]
    fn windows_alternate_with_healthy_gaps_inside_the_time_limit() {
        let c = cfg(Fault::all().to_vec(), 42);
        let plan = Schedule::plan(&c);
        assert!(
            plan.windows.len() >= 8,
            "60 s of 3 s faults and 2 s gaps: {plan:?}"
        );
        assert_eq!(
            plan.windows[0].start, c.heal_for,
            "starts after a healthy period"
        );
        for w in &plan.windows {
            assert!(w.start < w.stop && w.stop <= c.time_limit);
            assert!(w.stop - w.start >= c.fault_for * 3 / 8);
            assert!(w.stop - w.start <= c.fault_for * 5 / 4);
            assert_ne!(w.fault, Fault::None);
        }
        for pair in plan.windows.windows(2) {
            let gap = pair[1].start - pair[0].stop;
            assert!(gap >= c.heal_for * 3 / 4, "healthy gap {gap:?}");
        }
    }

    #[test]
    fn only_the_given_faults_are_planned() {
        let plan = Schedule::plan(&cfg(vec![Fault::KillDb, Fault::None], 1));
        assert_eq!(plan.faults(), BTreeSet::from([Fault::KillDb]));
        assert!(Schedule::plan(&cfg(vec![Fault::None], 1))
            .windows
            .is_empty());
        assert!(Schedule::plan(&cfg(vec![], 1)).windows.is_empty());
    }

    #[test]
    fn many_faults_are_all_drawn_eventually() {
        let mut c = cfg(Fault::all().to_vec(), 3);
        c.time_limit = Duration::from_secs(600);
        assert_eq!(Schedule::plan(&c).faults().len(), Fault::all().len() - 1);
    }

    #[test]
    fn every_requested_fault_gets_a_window_when_there_are_as_many_windows() {
        for seed in 0..50 {
            let mut c = cfg(vec![Fault::DbLatency, Fault::PauseDb, Fault::KillDb], seed);
            c.time_limit = time_needed(3, c.fault_for, c.heal_for);
            let plan = Schedule::plan(&c);
            assert!(plan.missing(&c.faults).is_empty(), "seed {seed}: {plan:?}");
        }
    }

    #[test]
    fn a_short_run_gets_no_window_it_cannot_fit() {
        let mut c = cfg(vec![Fault::PauseDb], 1);
        c.time_limit = Duration::from_secs(2);
        assert!(Schedule::plan(&c).windows.is_empty());
        assert_eq!(
            Schedule::plan(&c).missing(&[Fault::PauseDb, Fault::None]),
            [Fault::PauseDb]
        );
    }
}
