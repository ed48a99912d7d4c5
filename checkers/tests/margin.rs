//! lease-margin on hand-built histories, and a property test against an independent
//! count of the holds that outlived their lease.

mod common;

use checkers::checks::margin::SectionEnd;
use checkers::checks::LeaseMargin;
use checkers::{
    check_all, CheckOptions, Checker, Margin, OpType, Role, Trace, Validity, WarnFraction,
};
use common::{row, H};
use proptest::prelude::*;

const MS: u64 = 1_000_000;

/// A lease taken at `acquired_ms` for `ttl_ms`, its write committed `commit_ms` later.
fn lease(acquired_ms: u64, ttl_ms: u64, commit_after_ms: u64) -> Trace {
    Trace {
        lock_key: Some("room:101".into()),
        lock_acquired: Some(acquired_ms * MS),
        lock_ttl_ms: Some(ttl_ms),
        db_begin: Some(acquired_ms * MS + MS / 2),
        db_commit: Some((acquired_ms + commit_after_ms) * MS),
        confirmed: Some((acquired_ms + commit_after_ms) * MS + MS / 2),
        lock_released: Some((acquired_ms + commit_after_ms + 1) * MS),
        ..Trace::default()
    }
}

/// Appends one booking of room `room` by process `p` whose completion carries `t`;
/// returns the completion's index.
fn traced(h: &mut H, p: u64, room: u64, t: Trace) -> u64 {
    h.invoke_book(p, room, "2026-12-01", "2026-12-02", &format!("r-{p}"));
    h.end_book_traced(p, OpType::Ok, p, t)
}

fn margin(h: &H) -> Margin {
    let r = LeaseMargin {
        warn: WarnFraction::default(),
    }
    .check(&h.history());
    assert_eq!(r.validity, Validity::Valid, "{r:?}");
    r.margin.expect("a measured margin")
}

#[test]
fn holds_at_50_97_and_130_percent_are_reported_as_such() {
    let mut h = H::new();
    traced(&mut h, 1, 101, lease(0, 100, 50));
    let close = traced(&mut h, 2, 102, lease(200, 100, 97));
    let outlived = traced(&mut h, 3, 103, lease(400, 100, 130));
    let m = margin(&h);
    assert_eq!((m.holds, m.above_warn, m.outlived), (3, 2, 1));
    assert_eq!((m.p50, m.max), (0.97, 1.3));
    assert_eq!(m.closest.op, outlived);
    assert_eq!(m.closest.percent, 130);
    assert_eq!(m.closest.ended_by, SectionEnd::Commit);
    assert_eq!(
        m.sentence(),
        format!(
            "2 critical sections used more than 80% of their lease, 1 of them outlived it; closest: op {outlived} used 130%"
        )
    );

    // Without the outlived one, the 97% hold is the closest call.
    let mut h = H::new();
    traced(&mut h, 1, 101, lease(0, 100, 50));
    let close2 = traced(&mut h, 2, 102, lease(200, 100, 97));
    assert_eq!(close2, close);
    assert_eq!(
        margin(&h).sentence(),
        format!("1 critical section used more than 80% of its lease; closest: op {close} used 97%")
    );
}

#[test]
fn renewals_extend_the_lease() {
    let mut h = H::new();
    let t = Trace {
        lock_renewed: vec![80 * MS, 160 * MS],
        ..lease(0, 100, 230)
    };
    let op = traced(&mut h, 1, 101, t);
    let m = margin(&h);
    // Expiry 160 + 100 = 260 ms: 230 of 260 ms used, not outlived (230% without renewals).
    assert_eq!(m.outlived, 0);
    assert_eq!(m.above_warn, 1);
    assert_eq!((m.closest.op, m.closest.percent), (op, 88));
    assert_eq!(m.closest.lease_ms, 260.0);
}

#[test]
fn holds_without_a_commit_end_at_the_confirmation() {
    let mut h = H::new();
    let t = Trace {
        db_commit: None,
        confirmed: Some(90 * MS),
        ..lease(0, 100, 10)
    };
    traced(&mut h, 1, 101, t);
    // No commit and no confirmation: nothing to measure, counted apart.
    let t = Trace {
        db_commit: None,
        confirmed: None,
        ..lease(0, 100, 10)
    };
    traced(&mut h, 2, 102, t);
    let m = margin(&h);
    assert_eq!((m.holds, m.unmeasured), (1, 1));
    assert_eq!(m.closest.ended_by, SectionEnd::Confirmed);
    assert_eq!(m.closest.percent, 90);
    assert_eq!(m.above_warn, 1);
}

#[test]
fn no_lock_traces_is_unknown_and_does_not_make_the_run_unknown() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "a", OpType::Ok, 1);
    h.read(2, vec![row(101, "2026-12-01", "2026-12-03", "a")]);
    let r = check_all(&h.history(), &CheckOptions::default());
    let c = r
        .check("lease-margin")
        .expect("lease-margin runs with the others");
    assert_eq!(c.validity, Validity::Unknown);
    assert_eq!(c.reason.as_deref(), Some("no lock traces (not applicable)"));
    assert_eq!((c.role, c.deciding), (Role::Informational, false));
    assert!(c.margin.is_none());
    assert_eq!(r.validity, Validity::Valid);
}

#[test]
fn an_outlived_lease_never_decides_the_run() {
    let mut h = H::new();
    traced(&mut h, 1, 101, lease(0, 100, 130));
    h.read(9, vec![row(101, "2026-12-01", "2026-12-02", "r-1")]);
    for strict_lock in [false, true] {
        let opts = CheckOptions {
            strict_lock,
            ..CheckOptions::default()
        };
        let r = check_all(&h.history(), &opts);
        assert_eq!(r.validity, Validity::Valid, "strict {strict_lock}");
        assert_eq!(r.check("lease-margin").unwrap().validity, Validity::Valid);
    }
}

#[test]
fn the_warning_fraction_is_a_parameter() {
    let mut h = H::new();
    traced(&mut h, 1, 101, lease(0, 100, 50));
    traced(&mut h, 2, 102, lease(200, 100, 70));
    let opts = CheckOptions {
        margin_warn: WarnFraction::new(0.6).unwrap(),
        ..CheckOptions::default()
    };
    let r = check_all(&h.history(), &opts);
    let m = r.check("lease-margin").unwrap().margin.as_ref().unwrap();
    assert_eq!((m.warn.get(), m.above_warn), (0.6, 1));
    assert!(r.check("lease-margin").unwrap().summary.starts_with(
        "1 critical section used more than 60% of its lease; closest: op 3 used 70% (2 lease holds measured)"
    ));
}

#[test]
fn critical_section_latency_per_fault_window_and_outside() {
    let mut h = H::new();
    traced(&mut h, 1, 101, lease(0, 500, 10));
    h.at(1_000);
    let start = h.nemesis("start-db-latency");
    traced(&mut h, 2, 102, lease(1_010, 500, 300));
    traced(&mut h, 3, 103, lease(1_020, 500, 400));
    h.at(2_000);
    h.nemesis("stop-db-latency");
    traced(&mut h, 4, 104, lease(2_100, 500, 20));
    // Acquired before the window, committed inside it: the fault slowed it too.
    traced(&mut h, 5, 105, lease(900, 500, 200));
    let m = margin(&h);
    let outside = &m.latency[0];
    assert!(outside.window.is_none());
    assert_eq!(outside.holds, 2);
    assert_eq!((outside.p50_ms, outside.max_ms), (Some(10.0), Some(20.0)));
    let inside = &m.latency[1];
    assert_eq!(inside.window.as_ref().map(|w| w.start_op), Some(start));
    assert_eq!(inside.holds, 3);
    assert_eq!(
        (inside.p50_ms, inside.p99_ms, inside.p999_ms, inside.max_ms),
        (Some(300.0), Some(400.0), Some(400.0), Some(400.0))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The count above 1.0 is the number of holds whose critical section ended after the
    /// lease's expiry (last grant + TTL), computed here from the generated numbers.
    #[test]
    fn the_outlived_count_matches_an_independent_count(
        holds in proptest::collection::vec(
            (
                0u64..10_000_000_000,                       // acquired, ns
                1u64..2_000,                                // ttl, ms
                proptest::collection::vec(0u64..3_000_000_000, 0..4), // renewals after acquire, ns
                0u64..4_000_000_000,                        // section length, ns
                any::<bool>(),                              // commit (else confirmed only)
            ),
            1..40,
        ),
        warn in 1u32..=100,
    ) {
        let mut h = H::new();
        let mut expected = 0u64;
        for (i, (acquired, ttl, renewals, section, commit)) in holds.iter().enumerate() {
            let renewed: Vec<u64> = renewals.iter().map(|r| acquired + r).collect();
            let end = acquired + section;
            let expiry = renewed.iter().copied().fold(*acquired, u64::max) + ttl * MS;
            if end > expiry {
                expected += 1;
            }
            let t = Trace {
                lock_key: Some(format!("room:{i}")),
                lock_acquired: Some(*acquired),
                lock_ttl_ms: Some(*ttl),
                lock_renewed: renewed,
                db_commit: commit.then_some(end),
                confirmed: Some(end + u64::from(*commit) * 7),
                ..Trace::default()
            };
            traced(&mut h, i as u64, i as u64, t);
        }
        let warn = WarnFraction::new(f64::from(warn) / 100.0).unwrap();
        let r = LeaseMargin { warn }.check(&h.history());
        let m = r.margin.expect("every hold is measurable");
        prop_assert_eq!(m.holds, holds.len() as u64);
        prop_assert_eq!(m.outlived, expected);
        prop_assert!(m.above_warn >= m.outlived);
        prop_assert!(m.p50 <= m.p99 && m.p99 <= m.max);
        prop_assert_eq!(m.closest.fraction, m.max);
        prop_assert_eq!(m.outlived > 0, m.max > 1.0);
    }
}
