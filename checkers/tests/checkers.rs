//! Each checker on small hand-built histories, edge cases first.

mod common;

use checkers::checks::{
    ConfirmedIsDurable, DbState, FailedIsAbsent, Fencing, Idempotency, LockExclusion,
    NoDoubleBooking,
};
use checkers::{check_all, fault_windows, CheckOptions, Checker, OpType, Role, Trace, Validity, F};
use checkers::{Guard, Oversold};
use common::{row, H};

use OpType::{Fail, Info, Ok};

fn verdicts(h: &H) -> Vec<(String, Role, Validity)> {
    check_all(&h.history(), &CheckOptions::default())
        .checks
        .into_iter()
        .map(|c| (c.checker, c.role, c.validity))
        .collect()
}

#[test]
fn overlapping_confirmations_are_a_double_booking_named_by_completion() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1); // ops 0, 1
    h.book(2, 101, "2026-12-02", "2026-12-04", "r-2", Ok, 2); // ops 2, 3
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.anomalies.len(), 1);
    let a = &r.anomalies[0];
    assert_eq!(
        a.message,
        "room 101 nights 2026-12-02..2026-12-03 confirmed to ops 1 and 3"
    );
    assert_eq!(a.ops, vec![0, 1, 2, 3]);
    assert_eq!(a.room, Some(checkers::Room::Number(101)));
    assert_eq!(r.summary, "1 anomaly (2 ok bookings checked)");
}

/// The business headline counts room-nights by how many guests held each at once: three
/// guests on one night, two on the next, and a cancel that freed a night first is no harm.
#[test]
fn oversold_room_nights_are_counted_by_the_guests_holding_them() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.book(2, 101, "2026-12-01", "2026-12-03", "r-2", Ok, 2);
    h.book(3, 101, "2026-12-01", "2026-12-02", "r-3", Ok, 3);
    h.book(4, 102, "2026-12-05", "2026-12-06", "r-4", Ok, 4);
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(
        r.harm.oversold,
        [
            Oversold {
                capacity: 1,
                guests: 2,
                room_nights: 1
            },
            Oversold {
                capacity: 1,
                guests: 3,
                room_nights: 1
            }
        ]
    );
    assert_eq!(
        r.harm.sentence().unwrap(),
        "1 room-night was confirmed to two guests and 1 to three"
    );
    // The same request confirmed twice is one guest: no harm.
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.book(2, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    assert!(NoDoubleBooking.check(&h.history()).harm.is_empty());
}

#[test]
fn adjacent_stays_share_no_night() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.book(2, 101, "2026-12-03", "2026-12-05", "r-2", Ok, 2);
    h.book(3, 102, "2026-12-01", "2026-12-05", "r-3", Ok, 3);
    assert_eq!(
        NoDoubleBooking.check(&h.history()).validity,
        Validity::Valid
    );
}

#[test]
fn multi_night_overlap_across_month_and_year_ends() {
    let mut h = H::new();
    h.book(1, 7, "2026-12-30", "2027-01-02", "r-1", Ok, 1);
    h.book(2, 7, "2027-01-01", "2027-01-04", "r-2", Ok, 2);
    h.book(3, 8, "2027-02-27", "2027-03-02", "r-3", Ok, 3);
    h.book(4, 8, "2027-02-28", "2027-03-01", "r-4", Ok, 4);
    let r = NoDoubleBooking.check(&h.history());
    let msgs: Vec<&str> = r.anomalies.iter().map(|a| a.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "room 7 nights 2027-01-01..2027-01-02 confirmed to ops 1 and 3",
            "room 8 nights 2027-02-28..2027-03-01 confirmed to ops 5 and 7",
        ]
    );
}

#[test]
fn a_long_stay_is_found_behind_many_short_ones() {
    // The sweep must not stop at the nearest earlier check-in: the long stay reaches past it.
    let mut h = H::new();
    h.book(1, 5, "2026-12-01", "2026-12-20", "long", Ok, 1);
    h.book(2, 5, "2026-12-10", "2026-12-11", "short", Ok, 2);
    h.book(3, 5, "2026-12-15", "2026-12-16", "later", Ok, 3);
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(r.anomalies.len(), 2);
}

#[test]
fn concurrent_bookings_of_one_night_are_caught() {
    let mut h = H::new();
    h.invoke_book(1, 101, "2026-12-01", "2026-12-02", "a");
    h.invoke_book(2, 101, "2026-12-01", "2026-12-02", "b");
    h.end_book(2, Ok, 2);
    h.end_book(1, Ok, 1);
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(
        r.anomalies[0].message,
        "room 101 nights 2026-12-01..2026-12-02 confirmed to ops 2 and 3"
    );
}

#[test]
fn a_cancel_invoked_before_the_other_confirmation_excuses_the_overlap() {
    for cancel_outcome in [Ok, Info] {
        let mut h = H::new();
        h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
        h.invoke_cancel(1, 1);
        h.invoke_book(2, 101, "2026-12-01", "2026-12-03", "r-2");
        h.end(1, cancel_outcome, F::Cancel);
        h.end_book(2, Ok, 2);
        assert_eq!(
            NoDoubleBooking.check(&h.history()).validity,
            Validity::Valid,
            "cancel ended {cancel_outcome:?}"
        );
    }
}

#[test]
fn a_failed_or_late_cancel_does_not_excuse_the_overlap() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.invoke_cancel(1, 1);
    h.end(1, Fail, F::Cancel);
    h.book(2, 101, "2026-12-01", "2026-12-03", "r-2", Ok, 2);
    assert_eq!(
        NoDoubleBooking.check(&h.history()).validity,
        Validity::Invalid
    );

    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.book(2, 101, "2026-12-01", "2026-12-03", "r-2", Ok, 2);
    h.invoke_cancel(1, 1);
    h.end(1, Ok, F::Cancel);
    assert_eq!(
        NoDoubleBooking.check(&h.history()).validity,
        Validity::Invalid
    );
}

#[test]
fn one_request_confirmed_twice_is_one_booking() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Info, 0);
    h.book(2, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.book(3, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.read(9, vec![row(101, "2026-12-01", "2026-12-03", "r-1")]);
    // Every data checker holds; the lock-related ones have nothing to judge.
    assert!(verdicts(&h)
        .iter()
        .all(|(_, role, v)| *v == Validity::Valid || *role != Role::Data));
}

#[test]
fn info_bookings_may_or_may_not_have_taken_effect() {
    for took_effect in [true, false] {
        let mut h = H::new();
        h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Info, 0);
        let rows = if took_effect {
            vec![row(101, "2026-12-01", "2026-12-03", "r-1")]
        } else {
            vec![]
        };
        h.read(2, rows);
        let r = check_all(&h.history(), &CheckOptions::default());
        assert_eq!(r.validity, Validity::Valid, "took effect: {took_effect}");
    }
}

#[test]
fn ops_in_flight_at_the_end_count_as_info() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.read(
        3,
        vec![
            row(101, "2026-12-01", "2026-12-03", "r-1"),
            row(102, "2026-12-01", "2026-12-02", "r-2"),
        ],
    );
    h.invoke_book(2, 102, "2026-12-01", "2026-12-02", "r-2");
    let hist = h.history();
    assert_eq!(hist.in_flight_at_end().count(), 1);
    assert_eq!(hist.outcome(4), Info);
    let r = check_all(&hist, &CheckOptions::default());
    assert_eq!(r.validity, Validity::Valid);
    assert_eq!(r.stats.counts["book"].in_flight, 1);
}

#[test]
fn no_final_read_is_unknown_not_valid() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    let r = check_all(&h.history(), &CheckOptions::default());
    assert_eq!(r.validity, Validity::Unknown);
    for name in [
        "confirmed-is-durable",
        "failed-is-absent",
        "db-state",
        "idempotency",
    ] {
        let c = r.check(name).unwrap();
        assert_eq!(c.validity, Validity::Unknown, "{name}");
        assert!(c.reason.as_deref().unwrap().contains("no final read"));
    }
    assert_eq!(
        r.check("no-double-booking").unwrap().validity,
        Validity::Valid
    );
    assert!(r.unknown_reasons[0].reason.starts_with("no final read"));
    assert_eq!(
        r.unknown_reasons[0].checkers,
        [
            "confirmed-is-durable",
            "failed-is-absent",
            "db-state",
            "idempotency"
        ]
    );
    assert_eq!(r.headline, checkers::Headline::Unknown);
}

#[test]
fn a_confirmed_booking_missing_from_the_final_read_is_lost() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.book(2, 102, "2026-12-01", "2026-12-03", "r-2", Ok, 2);
    let fr = h.read(3, vec![row(101, "2026-12-01", "2026-12-03", "r-1")]);
    let r = ConfirmedIsDurable.check(&h.history());
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(
        r.anomalies[0].message,
        format!("room 102 nights 2026-12-01..2026-12-03 confirmed to op 3 (request r-2) is missing from the final read (op {fr})")
    );
    assert_eq!(r.anomalies[0].ops, vec![2, 3, fr]);
}

#[test]
fn a_cancelled_booking_may_be_absent() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.invoke_cancel(1, 1);
    h.end(1, Info, F::Cancel);
    h.read(2, vec![]);
    assert_eq!(
        ConfirmedIsDurable.check(&h.history()).validity,
        Validity::Valid
    );
}

#[test]
fn a_retry_answered_fail_for_a_booking_that_exists_is_caught() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Info, 0);
    let fail = h.book(2, 101, "2026-12-01", "2026-12-03", "r-1", Fail, 0);
    let fr = h.read(3, vec![row(101, "2026-12-01", "2026-12-03", "r-1")]);
    let r = FailedIsAbsent.check(&h.history());
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(
        r.anomalies[0].message,
        format!("request r-1 was answered `fail` by op {fail} but the final read (op {fr}) holds its booking of room 101 nights 2026-12-01..2026-12-03")
    );
}

#[test]
fn a_fail_then_a_successful_retry_is_fine() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Fail, 0);
    h.book(2, 101, "2026-12-01", "2026-12-03", "r-1", Ok, 1);
    h.read(3, vec![row(101, "2026-12-01", "2026-12-03", "r-1")]);
    assert_eq!(FailedIsAbsent.check(&h.history()).validity, Validity::Valid);
}

#[test]
fn the_database_holding_overlapping_rows_is_invalid() {
    let mut h = H::new();
    let fr = h.read(
        1,
        vec![
            row(101, "2026-12-01", "2026-12-05", "a"),
            row(101, "2026-12-04", "2026-12-06", "b"),
            row(101, "2026-12-05", "2026-12-07", "c"),
            row(102, "2026-12-04", "2026-12-06", "d"),
        ],
    );
    let r = DbState.check(&h.history());
    let msgs: Vec<&str> = r.anomalies.iter().map(|a| a.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            format!("the final read (op {fr}) holds room 101 nights 2026-12-04..2026-12-05 twice: requests a and b"),
            format!("the final read (op {fr}) holds room 101 nights 2026-12-05..2026-12-06 twice: requests b and c"),
        ]
    );
}

#[test]
fn one_request_with_two_rows_breaks_idempotency() {
    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "r-1", Info, 0);
    h.book(2, 102, "2026-12-01", "2026-12-03", "r-1", Ok, 5);
    let fr = h.read(
        3,
        vec![
            row(101, "2026-12-01", "2026-12-03", "r-1"),
            row(102, "2026-12-01", "2026-12-03", "r-1"),
        ],
    );
    let r = Idempotency.check(&h.history());
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.anomalies[0].request.as_deref(), Some("r-1"));
    assert_eq!(r.anomalies[0].ops, vec![0, 1, 2, 3, fr]);
}

fn lock(acquired_ms: u64, released_ms: Option<u64>, token: Option<u64>) -> Trace {
    Trace {
        lock_key: Some("room:101".into()),
        lock_acquired: Some(acquired_ms * 1_000_000),
        lock_ttl_ms: Some(5_000),
        lock_released: released_ms.map(|t| t * 1_000_000),
        token,
        ..Trace::default()
    }
}

#[test]
fn two_holders_of_one_lease_are_named_with_the_expiry() {
    let mut h = H::new();
    h.invoke_book(1, 101, "2026-12-01", "2026-12-03", "a");
    h.at(5_010);
    h.invoke_book(2, 101, "2026-12-05", "2026-12-07", "b");
    h.at(6_100);
    let first = h.end_book_traced(1, Ok, 1, lock(0, Some(6_100), None));
    let second = h.end_book_traced(2, Ok, 2, lock(5_020, Some(6_200), None));
    h.read(
        3,
        vec![
            row(101, "2026-12-01", "2026-12-03", "a"),
            row(101, "2026-12-05", "2026-12-07", "b"),
        ],
    );
    let r = LockExclusion {
        strict: false,
        trusted: false,
    }
    .check(&h.history());
    assert_eq!(r.validity, Validity::Invalid);
    assert!(!r.deciding);
    assert_eq!(
        r.anomalies[0].message,
        format!("lock room:101 held by ops {first} and {second} at once: op {second} acquired at 5.020 s while op {first} held it until 6.100 s (lease expired at 5.000 s)")
    );
    // Nothing declares what guards the data: no claim that a database held.
    let all = check_all(&h.history(), &CheckOptions::default());
    assert_eq!(all.validity, Validity::Valid);
    assert_eq!(all.headline, checkers::Headline::LockFailedDataHeld);
    // The lock failed, the database held: the run stays valid unless strict.
    let db = CheckOptions {
        guard: Some(Guard::Database),
        ..CheckOptions::default()
    };
    let all = check_all(&h.history(), &db);
    assert_eq!(all.validity, Validity::Valid);
    assert_eq!(all.headline, checkers::Headline::LockFailedDatabaseHeld);
    let strict = check_all(
        &h.history(),
        &CheckOptions {
            strict_lock: true,
            ..db
        },
    );
    assert_eq!(strict.validity, Validity::Invalid);
    assert_eq!(strict.invalid_by, ["lock-exclusion"]);
    assert_eq!(strict.headline, checkers::Headline::LockFailedDatabaseHeld);
    // Issue 22: under a design whose only guard is the lock, two holders at once is the
    // design failing, though these two booked different nights.
    let trusted = check_all(
        &h.history(),
        &CheckOptions {
            guard: Some(Guard::Lock),
            ..CheckOptions::default()
        },
    );
    assert_eq!(trusted.validity, Validity::Invalid);
    assert_eq!(trusted.invalid_by, ["lock-exclusion"]);
    assert_eq!(trusted.headline, checkers::Headline::LockFailedUnguarded);
    assert!(trusted.check("lock-exclusion").unwrap().anomalies[0]
        .message
        .starts_with(&format!(
            "the lock failed under a design that trusts it: lock room:101 held by ops {first} and {second} at once"
        )));
}

#[test]
fn sequential_holders_and_lockless_histories() {
    let mut h = H::new();
    h.invoke_book(1, 101, "2026-12-01", "2026-12-03", "a");
    h.at(100);
    h.end_book_traced(1, Ok, 1, lock(0, Some(100), Some(1)));
    h.invoke_book(2, 101, "2026-12-05", "2026-12-07", "b");
    h.end_book_traced(2, Ok, 2, lock(100, None, Some(2)));
    let r = LockExclusion {
        strict: false,
        trusted: false,
    }
    .check(&h.history());
    assert_eq!(r.validity, Validity::Valid, "{:?}", r.anomalies);
    assert_eq!(Fencing.check(&h.history()).validity, Validity::Valid);

    let mut h = H::new();
    h.book(1, 101, "2026-12-01", "2026-12-03", "a", Ok, 1);
    h.read(2, vec![row(101, "2026-12-01", "2026-12-03", "a")]);
    let all = check_all(&h.history(), &CheckOptions::default());
    assert_eq!(
        all.check("lock-exclusion").unwrap().reason.as_deref(),
        Some("no lock traces")
    );
    assert_eq!(all.check("fencing").unwrap().validity, Validity::Unknown);
    assert_eq!(
        all.validity,
        Validity::Valid,
        "no lock is not an unknown run"
    );
}

#[test]
fn a_write_accepted_with_a_stale_token_breaks_fencing() {
    let mut h = H::new();
    let t = |acq: u64, commit: u64, token: u64| Trace {
        db_commit: Some(commit * 1_000_000),
        ..lock(acq, None, Some(token))
    };
    h.invoke_book(1, 101, "2026-12-01", "2026-12-03", "a");
    h.invoke_book(2, 101, "2026-12-05", "2026-12-07", "b");
    h.at(50);
    let newer = h.end_book_traced(2, Ok, 2, t(10, 20, 34));
    let stale = h.end_book_traced(1, Ok, 1, t(0, 40, 33));
    let r = Fencing.check(&h.history());
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(
        r.anomalies[0].message,
        format!("lock room:101: op {stale} was accepted with token 33 at 0.040 s after op {newer} had been accepted with token 34 at 0.020 s")
    );
}

#[test]
fn fault_windows_pair_start_and_stop_and_run_open_ones_to_the_end() {
    let mut h = H::new();
    let s1 = h.nemesis("start-db-latency");
    h.book(1, 101, "2026-12-01", "2026-12-03", "a", Ok, 1);
    let p = h.nemesis("pause-redis");
    let e1 = h.nemesis("stop-db-latency") + 1;
    h.nemesis("resume-redis");
    let s2 = h.nemesis("start-kill-db");
    h.book(2, 101, "2026-12-05", "2026-12-07", "b", Fail, 0);
    let hist = h.history();
    let w = fault_windows(&hist);
    let names: Vec<&str> = w.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["db-latency", "pause-redis", "kill-db"]);
    assert_eq!((w[0].start_op, w[0].end_op), (s1, Some(e1)));
    assert_eq!(w[1].start_op, p);
    assert_eq!((w[2].start_op, w[2].end_op), (s2, None));
    assert_eq!(w[2].end, hist.ops().last().unwrap().time);
    let stats = check_all(&hist, &CheckOptions::default()).stats;
    assert_eq!(stats.faults[0].counts.ok, 1);
    assert_eq!(stats.faults[2].counts.fail, 1);
    assert_eq!(stats.counts["start-db-latency"].info, 1);
}

#[test]
fn stats_count_outcomes_and_latency_quantiles() {
    let mut h = H::new();
    for p in 0..100 {
        h.invoke_book(p, 100 + p, "2026-12-01", "2026-12-02", &format!("r{p}"));
        h.at(h.now / 1_000_000 + p); // latency grows with p: 1 ms + p ms
        h.end_book(p, if p % 10 == 0 { Fail } else { Ok }, p);
    }
    let s = check_all(&h.history(), &CheckOptions::default()).stats;
    assert_eq!((s.counts["book"].ok, s.counts["book"].fail), (90, 10));
    let q = s.book_latency["ok"];
    assert_eq!(q.count, 90);
    assert_eq!(q.max_ms, 100.0);
    assert!(q.p50_ms < q.p90_ms && q.p90_ms <= q.p99_ms);
    assert!(!s.rate.buckets.is_empty() && s.rate.buckets.len() <= 600);
    assert_eq!(
        s.rate.buckets.iter().map(|b| b.ok + b.fail).sum::<u64>(),
        100
    );
}
