//! lease-margin: how close each lease hold came to outliving its lease. Informational:
//! it never decides the verdict; it is the data an alert on "DB latency nears the TTL"
//! needs, before lock-exclusion has anything to report.
//!
//! For each lock trace, the critical section runs from `lock_acquired` to `db_commit`
//! (or `confirmed` when there is no commit), and the lease held runs from `lock_acquired`
//! to its expiry, the last grant (acquire or renewal) plus the TTL
//! ([`crate::Trace::lease_expiry`]). The fraction used is critical section / lease held:
//! 0.5 left half the lease to spare, above 1.0 the write landed after the lease expired.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::checks::Checker;
use crate::lease::LeaseHold;
use crate::pairing::History;
use crate::result::{thousands, CheckResult, Role};
use crate::stats::{fault_windows, FaultWindow};

/// The checker's name in results.
pub const NAME: &str = "lease-margin";

/// The fraction of its lease above which a critical section counts as a close call
/// (`--margin-warn`): above 0, at most 1, 0.8 by default. Never NaN, hence `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct WarnFraction(f64);

/// Why a number is not a [`WarnFraction`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WarnFractionError {
    /// Not in `(0, 1]`.
    #[error("must be above 0 and at most 1 (a fraction of the lease, e.g. 0.8), got {0}")]
    OutOfRange(f64),
    /// Not a number at all.
    #[error("not a number: {0:?} (write a fraction of the lease, e.g. 0.8)")]
    NotANumber(String),
}

impl WarnFraction {
    /// 0.8: a critical section using more than 80% of its lease is a close call.
    pub const DEFAULT: WarnFraction = WarnFraction(0.8);

    /// `x` as a warning fraction, when `0 < x <= 1`.
    pub fn new(x: f64) -> Result<WarnFraction, WarnFractionError> {
        if x > 0.0 && x <= 1.0 {
            Ok(WarnFraction(x))
        } else {
            Err(WarnFractionError::OutOfRange(x))
        }
    }

    /// The fraction.
    pub fn get(self) -> f64 {
        self.0
    }

    /// As a percentage for people: `80%`, `92.5%`.
    pub fn percent(self) -> String {
        let p = (self.0 * 1000.0).round() / 10.0;
        format!("{p}%")
    }
}

impl Eq for WarnFraction {}

impl Default for WarnFraction {
    fn default() -> WarnFraction {
        WarnFraction::DEFAULT
    }
}

impl fmt::Display for WarnFraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for WarnFraction {
    type Err = WarnFractionError;
    fn from_str(s: &str) -> Result<WarnFraction, WarnFractionError> {
        let x: f64 = s
            .trim()
            .parse()
            .map_err(|_| WarnFractionError::NotANumber(s.to_string()))?;
        WarnFraction::new(x)
    }
}

impl TryFrom<f64> for WarnFraction {
    type Error = WarnFractionError;
    fn try_from(x: f64) -> Result<WarnFraction, WarnFractionError> {
        WarnFraction::new(x)
    }
}

impl From<WarnFraction> for f64 {
    fn from(w: WarnFraction) -> f64 {
        w.0
    }
}

pub use crate::lease::SectionEnd;

/// One lease hold, measured from a lock trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Index of the completion whose trace recorded it.
    pub op: u64,
    /// When the lease was acquired (ns).
    pub acquired: u64,
    /// When the critical section ended (ns): `db_commit`, else `confirmed`.
    pub end: u64,
    /// Which of the two it was.
    pub ended_by: SectionEnd,
    /// When the lease expired on the server (ns): last grant plus TTL.
    pub expiry: u64,
}

impl Hold {
    /// Length of the critical section (ns).
    pub fn critical_ns(&self) -> u64 {
        self.end.saturating_sub(self.acquired)
    }

    /// Length of the lease actually held, renewals included (ns).
    pub fn lease_ns(&self) -> u64 {
        self.expiry.saturating_sub(self.acquired)
    }

    /// The fraction of the lease the critical section used. A zero-length lease is taken
    /// as 1 ns long, so the fraction stays finite (and huge) for JSON.
    pub fn fraction(&self) -> f64 {
        self.critical_ns() as f64 / self.lease_ns().max(1) as f64
    }

    /// The fraction as a whole percentage, rounded down (computed in integers, so 97%
    /// of a lease reads 97, never 96).
    pub fn percent(&self) -> u64 {
        let p = u128::from(self.critical_ns()) * 100 / u128::from(self.lease_ns().max(1));
        u64::try_from(p).unwrap_or(u64::MAX)
    }

    /// Whether the critical section outlived the lease: it ended after the expiry.
    pub fn outlived(&self) -> bool {
        self.end > self.expiry
    }
}

/// Every lease hold of a history, in completion order, and what could not be measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds {
    /// The measured holds.
    pub holds: Vec<Hold>,
    /// Completions whose trace names a lock.
    pub lock_traces: u64,
    /// Lock traces without an acquire time, a TTL, or an end of the critical section
    /// (`db_commit` or `confirmed`), or whose section ends before it began.
    pub unmeasured: u64,
}

/// Measures every lease hold in `h` (see the module docs). The report draws these; the
/// checker summarises them.
pub fn lease_holds(h: &History) -> Holds {
    let mut out = Holds::default();
    for &i in h.traced() {
        let op = &h.ops()[i as usize];
        let Some(t) = &op.value.trace else { continue };
        out.lock_traces += 1;
        let lease = LeaseHold::of(t, op.time);
        let measured = lease.and_then(|l| Some((l, l.section_end()?, l.expiry?)));
        match measured {
            Some((l, (end, ended_by), expiry)) if end >= l.acquired => out.holds.push(Hold {
                op: u64::from(i),
                acquired: l.acquired,
                end,
                ended_by,
                expiry,
            }),
            _ => out.unmeasured += 1,
        }
    }
    out
}

/// The hold that came closest to outliving its lease (the largest fraction used).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosestCall {
    /// Index of the completion whose trace recorded it.
    pub op: u64,
    /// The lock it held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_key: Option<String>,
    /// The fraction of its lease it used.
    pub fraction: f64,
    /// The same as a whole percentage, rounded down.
    pub percent: u64,
    /// Its critical section, ms.
    pub critical_ms: f64,
    /// Its lease, renewals included, ms.
    pub lease_ms: f64,
    /// Where its critical section ended.
    pub ended_by: SectionEnd,
}

/// Critical-section latency of the holds that overlapped one fault window (or none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionLatency {
    /// The fault window; `None` for the holds that overlapped no fault window.
    pub window: Option<FaultWindow>,
    /// How many holds.
    pub holds: u64,
    /// Median critical section, ms (`None` without holds).
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile, ms.
    pub p999_ms: Option<f64>,
    /// Longest, ms.
    pub max_ms: Option<f64>,
}

/// What lease-margin found: how much of their leases critical sections used, and how
/// long they took inside and outside fault windows. Serialized in results.json as the
/// `margin` of the lease-margin result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Margin {
    /// The warning fraction it counted against.
    pub warn: WarnFraction,
    /// Holds measured.
    pub holds: u64,
    /// Lock traces that could not be measured (see [`Holds::unmeasured`]).
    pub unmeasured: u64,
    /// Median fraction of the lease used (nearest rank).
    pub p50: f64,
    /// 99th percentile of the fraction used.
    pub p99: f64,
    /// The largest fraction used.
    pub max: f64,
    /// Holds that used more than `warn` of their lease (the outlived ones included).
    pub above_warn: u64,
    /// Holds whose critical section outlived their lease (fraction above 1).
    pub outlived: u64,
    /// The hold with the largest fraction.
    pub closest: ClosestCall,
    /// Critical-section latency outside fault windows (first, `window: null`), then in
    /// each fault window in start order. A hold counts in every window its critical
    /// section overlaps.
    pub latency: Vec<SectionLatency>,
}

impl Margin {
    /// The sentence people read, e.g. "3 critical sections used more than 80% of their
    /// lease; closest: op 812 used 97%".
    pub fn sentence(&self) -> String {
        let warn = self.warn.percent();
        let mut s = match self.above_warn {
            0 => format!("no critical section used more than {warn} of its lease"),
            1 => format!("1 critical section used more than {warn} of its lease"),
            n => format!(
                "{} critical sections used more than {warn} of their lease",
                thousands(n)
            ),
        };
        match (self.outlived, self.above_warn) {
            (0, _) => {}
            (1, 1) => s.push_str(" and outlived it"),
            (o, n) if o == n => s.push_str(", all of them outlived it"),
            (o, _) => s.push_str(&format!(", {} of them outlived it", thousands(o))),
        }
        s.push_str(&format!(
            "; closest: op {} used {}%",
            self.closest.op, self.closest.percent
        ));
        s
    }
}

/// The alert the story asks for: how close critical sections came to the lease, the
/// lease that would keep the measured p99.9 under the warning fraction, and a rule an
/// operator can paste into their monitoring, with this run's numbers filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The lease the holds ran with (the closest call's lease, renewals included), ms.
    pub lease_ms: f64,
    /// p99.9 of the critical section outside fault windows, ms (`None`: no healthy holds).
    pub healthy_p999_ms: Option<f64>,
    /// The worst p99.9 measured in any fault window, ms, and that window's fault.
    pub worst_p999_ms: Option<f64>,
    /// The fault of the worst window.
    pub worst_window: Option<String>,
    /// The lease (ms, rounded up to 10 ms) that keeps the largest measured p99.9 under
    /// the warning fraction. It is a floor from one run, not a guarantee: no lease is safe
    /// against an unbounded pause (see docs/alerts.md).
    pub suggested_lease_ms: u64,
    /// A Prometheus alerting rule on a critical-section histogram against the lease.
    pub rule: String,
}

impl Margin {
    /// The alert for this run's measurements; `None` when nothing was measured.
    pub fn alert(&self) -> Option<Alert> {
        if self.holds == 0 {
            return None;
        }
        let healthy = self
            .latency
            .iter()
            .find(|l| l.window.is_none())
            .and_then(|l| l.p999_ms);
        let worst = self
            .latency
            .iter()
            .filter(|l| l.window.is_some())
            .filter_map(|l| Some((l.p999_ms?, l)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let largest = healthy
            .into_iter()
            .chain(worst.map(|w| w.0))
            .fold(0.0f64, f64::max);
        let warn = self.warn.get();
        let suggested = ((largest / warn / 10.0).ceil() * 10.0).max(10.0) as u64;
        let lease_s = self.closest.lease_ms / 1000.0;
        let threshold_s = lease_s * warn;
        let rule = format!(
            "- alert: CriticalSectionNearLease\n  \
             expr: histogram_quantile(0.999, sum by (le) (rate(booking_critical_section_seconds_bucket[5m]))) > {threshold_s:.3}\n  \
             for: 5m\n  \
             labels:\n    severity: page\n  \
             annotations:\n    \
             summary: \"p99.9 of lock-to-commit time is above {pct} of the {lease_s:.3} s lease\"\n    \
             description: \"Measured by overbook: p99.9 {largest:.1} ms against a {lease_ms:.0} ms lease; a lease of at least {suggested} ms keeps it under {pct}. The database must still hold the invariant: no lease survives an unbounded pause.\"",
            pct = self.warn.percent(),
            lease_ms = self.closest.lease_ms,
        );
        Some(Alert {
            lease_ms: self.closest.lease_ms,
            healthy_p999_ms: healthy,
            worst_p999_ms: worst.map(|w| w.0),
            worst_window: worst.and_then(|w| w.1.window.as_ref().map(|f| f.name.clone())),
            suggested_lease_ms: suggested,
            rule,
        })
    }
}

/// The lease-margin checker: always informational; `unknown` ("not applicable") without
/// lock traces to measure.
pub struct LeaseMargin {
    /// The warning fraction.
    pub warn: WarnFraction,
}

impl Checker for LeaseMargin {
    fn name(&self) -> &'static str {
        NAME
    }

    fn role(&self) -> Role {
        Role::Informational
    }

    fn check(&self, h: &History) -> CheckResult {
        let holds = lease_holds(h);
        match margin(h, &holds, self.warn) {
            None if holds.lock_traces == 0 => {
                CheckResult::unknown(self, "no lock traces (not applicable)")
            }
            None => CheckResult::unknown(
                self,
                format!(
                    "no lock trace records a lease and the end of its critical section (db_commit or confirmed): {} unmeasured (not applicable)",
                    thousands(holds.unmeasured)
                ),
            ),
            Some(m) => {
                let mut summary = format!(
                    "{} ({} lease hold{} measured",
                    m.sentence(),
                    thousands(m.holds),
                    if m.holds == 1 { "" } else { "s" }
                );
                if m.unmeasured > 0 {
                    summary.push_str(&format!(", {} unmeasured", thousands(m.unmeasured)));
                }
                summary.push(')');
                CheckResult {
                    margin: Some(m),
                    ..CheckResult::valid(self, summary)
                }
            }
        }
    }
}

/// Nearest-rank quantiles of `v` at each of `ps` (ascending), by selection rather than
/// a full sort: the checker runs on every history, so it stays linear. Each rank is
/// selected within the part left of the rank above it. `v` must not be empty.
fn ranks<T: Copy>(v: &mut [T], ps: &[f64], cmp: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    let n = v.len();
    let mut out = vec![v[0]; ps.len()];
    let mut hi = n;
    for (k, &p) in ps.iter().enumerate().rev() {
        let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        let part = &mut v[..hi.max(i + 1)];
        part.select_nth_unstable_by(i, &cmp);
        out[k] = part[i];
        hi = i + 1;
    }
    out
}

fn latency(window: Option<FaultWindow>, mut ns: Vec<u64>) -> SectionLatency {
    let q = (!ns.is_empty()).then(|| ranks(&mut ns, &[0.5, 0.99, 0.999, 1.0], Ord::cmp));
    let at = |k: usize| q.as_ref().map(|q| q[k] as f64 / 1e6);
    SectionLatency {
        window,
        holds: ns.len() as u64,
        p50_ms: at(0),
        p99_ms: at(1),
        p999_ms: at(2),
        max_ms: at(3),
    }
}

/// Summarises the holds; `None` when there are none.
fn margin(h: &History, holds: &Holds, warn: WarnFraction) -> Option<Margin> {
    let list = &holds.holds;
    let mut fractions: Vec<f64> = list.iter().map(Hold::fraction).collect();
    // The largest fraction, the earliest op among equals.
    let closest = list
        .iter()
        .zip(&fractions)
        .reduce(|best, x| if x.1 > best.1 { x } else { best })?
        .0;
    let above_warn = fractions.iter().filter(|&&f| f > warn.get()).count() as u64;
    let outlived = list.iter().filter(|x| x.outlived()).count() as u64;
    let q = ranks(&mut fractions, &[0.5, 0.99, 1.0], f64::total_cmp);

    // Latency per fault window: a hold belongs to each window its critical section
    // overlaps. Holds sorted by acquire time (they mostly are already, in completion
    // order), so a window only looks at those acquired between (its start - the
    // longest section) and its end.
    let windows = fault_windows(h);
    let key = |x: &Hold| (x.acquired, x.op);
    let by_start: Cow<'_, [Hold]> = if windows.is_empty() || list.is_sorted_by_key(key) {
        Cow::Borrowed(list)
    } else {
        let mut sorted = list.clone();
        sorted.sort_unstable_by_key(key);
        Cow::Owned(sorted)
    };
    let longest = list.iter().map(Hold::critical_ns).max().unwrap_or(0);
    let mut in_fault = vec![false; by_start.len()];
    let mut inside = Vec::with_capacity(windows.len());
    for w in windows {
        let lo = by_start.partition_point(|x| x.acquired < w.start.saturating_sub(longest));
        let hi = by_start.partition_point(|x| x.acquired <= w.end);
        let mut ns = Vec::new();
        for (k, x) in by_start.iter().enumerate().take(hi).skip(lo) {
            if x.end >= w.start {
                in_fault[k] = true;
                ns.push(x.critical_ns());
            }
        }
        inside.push(latency(Some(w), ns));
    }
    let outside: Vec<u64> = by_start
        .iter()
        .zip(&in_fault)
        .filter(|(_, &f)| !f)
        .map(|(x, _)| x.critical_ns())
        .collect();
    let mut latencies = vec![latency(None, outside)];
    latencies.extend(inside);

    let trace = h.ops()[closest.op as usize].value.trace.as_ref();
    Some(Margin {
        warn,
        holds: list.len() as u64,
        unmeasured: holds.unmeasured,
        p50: q[0],
        p99: q[1],
        max: q[2],
        above_warn,
        outlived,
        closest: ClosestCall {
            op: closest.op,
            lock_key: trace.and_then(|t| t.lock_key.clone()),
            fraction: closest.fraction(),
            percent: closest.percent(),
            critical_ms: closest.critical_ns() as f64 / 1e6,
            lease_ms: closest.lease_ns() as f64 / 1e6,
            ended_by: closest.ended_by,
        },
        latency: latencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(window: Option<&str>, p999_ms: f64) -> SectionLatency {
        SectionLatency {
            window: window.map(|name| FaultWindow {
                name: name.to_string(),
                start: 0,
                end: 1,
                start_op: 0,
                end_op: None,
            }),
            holds: 10,
            p50_ms: Some(p999_ms / 2.0),
            p99_ms: Some(p999_ms),
            p999_ms: Some(p999_ms),
            max_ms: Some(p999_ms),
        }
    }

    #[test]
    fn the_alert_names_the_worst_window_and_a_lease_that_keeps_p999_under_the_warning() {
        let m = Margin {
            warn: WarnFraction::DEFAULT,
            holds: 30,
            unmeasured: 0,
            p50: 0.2,
            p99: 0.9,
            max: 1.3,
            above_warn: 3,
            outlived: 1,
            closest: ClosestCall {
                op: 812,
                lock_key: Some("room:101".into()),
                fraction: 1.3,
                percent: 130,
                critical_ms: 650.0,
                lease_ms: 500.0,
                ended_by: SectionEnd::Commit,
            },
            latency: vec![
                latency(None, 40.0),
                latency(Some("db-latency"), 642.0),
                latency(Some("pause-redis"), 90.0),
            ],
        };
        let a = m.alert().unwrap();
        assert_eq!(a.healthy_p999_ms, Some(40.0));
        assert_eq!(a.worst_p999_ms, Some(642.0));
        assert_eq!(a.worst_window.as_deref(), Some("db-latency"));
        // 642 / 0.8 = 802.5, rounded up to 810 ms.
        assert_eq!(a.suggested_lease_ms, 810);
        assert!(a.rule.contains("> 0.400"), "{}", a.rule);
        assert!(a.rule.contains("at least 810 ms"), "{}", a.rule);
        let empty = Margin { holds: 0, ..m };
        assert!(empty.alert().is_none());
    }

    #[test]
    fn the_warning_fraction_is_above_zero_and_at_most_one() {
        for ok in ["0.8", "1", "0.001", " 0.5 "] {
            assert!(ok.parse::<WarnFraction>().is_ok(), "{ok}");
        }
        for bad in ["0", "-0.1", "1.01", "NaN", "inf", "x", ""] {
            assert!(bad.parse::<WarnFraction>().is_err(), "{bad}");
        }
        assert_eq!(
            "1.5".parse::<WarnFraction>().unwrap_err().to_string(),
            "must be above 0 and at most 1 (a fraction of the lease, e.g. 0.8), got 1.5"
        );
        assert_eq!(WarnFraction::default().percent(), "80%");
        assert_eq!(WarnFraction::new(0.925).unwrap().percent(), "92.5%");
        assert!(serde_json::from_str::<WarnFraction>("2.0").is_err());
        assert_eq!(
            serde_json::to_string(&WarnFraction::DEFAULT).unwrap(),
            "0.8"
        );
    }

    proptest::proptest! {
        /// Selection gives the nearest ranks a full sort gives.
        #[test]
        fn ranks_by_selection_agree_with_sorting(mut v in proptest::collection::vec(0u64..50, 1..200)) {
            let ps = [0.0, 0.5, 0.9, 0.99, 0.999, 1.0];
            let got = ranks(&mut v.clone(), &ps, Ord::cmp);
            v.sort_unstable();
            let want: Vec<u64> = ps
                .iter()
                .map(|p| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1])
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn percentages_are_exact_in_integers() {
        let hold = |critical: u64, lease: u64| Hold {
            op: 0,
            acquired: 10,
            end: 10 + critical,
            ended_by: SectionEnd::Commit,
            expiry: 10 + lease,
        };
        assert_eq!(hold(97_000_000, 100_000_000).percent(), 97);
        assert_eq!(hold(130, 100).percent(), 130);
        assert!(hold(130, 100).outlived() && !hold(100, 100).outlived());
        assert_eq!(hold(5, 0).fraction(), 5.0, "a zero lease counts as 1 ns");
    }
}
