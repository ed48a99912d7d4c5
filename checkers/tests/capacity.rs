//! Rooms that hold N stays a night (a room type sold N times), rooms by name, and time
//! slots: the generalised no-double-booking and db-state, by hand and against a
//! brute-force model.

mod common;

use std::collections::HashMap;

use checkers::checks::{DbState, NoDoubleBooking};
use checkers::{
    check_all, read_history, CheckOptions, Checker, HistoryWriter, Instant, OpType, RoomCapacity,
    RunHeader, Validity,
};
use common::{row, H};
use proptest::prelude::*;

use OpType::Ok;

fn dlx_header(capacity: u64) -> RunHeader {
    RunHeader {
        room_capacity: vec![RoomCapacity {
            room: "DLX".into(),
            capacity,
        }],
        ..RunHeader::default()
    }
}

#[test]
fn the_stay_over_capacity_names_room_night_capacity_and_every_booking() {
    let mut h = H::new();
    h.header(dlx_header(3)); // op 0
    for (p, req) in [(1, "r-1"), (2, "r-2"), (3, "r-3")] {
        h.book(p, "DLX", "2027-01-01", "2027-01-02", req, Ok, p);
    }
    assert_eq!(
        NoDoubleBooking.check(&h.history()).validity,
        Validity::Valid,
        "three stays in a room type of three is full, not over"
    );
    let fourth = h.book(4, "DLX", "2026-12-31", "2027-01-03", "r-4", Ok, 4);
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(r.anomalies.len(), 1);
    let a = &r.anomalies[0];
    assert_eq!(
        a.message,
        format!("room DLX, night 2027-01-01: 4 confirmed, capacity 3 (ops 2, 4, 6 and {fourth})")
    );
    assert_eq!(a.capacity, Some(3));
    assert_eq!(a.room, Some("DLX".into()));
    assert_eq!(a.ops, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        r.harm.oversold,
        vec![checkers::Oversold {
            capacity: 3,
            guests: 4,
            room_nights: 1
        }],
        "one room-night of a room type of three held four guests"
    );
    assert_eq!(
        a.nights,
        Some((common::d("2027-01-01"), common::d("2027-01-02")))
    );
}

#[test]
fn capacity_one_keeps_the_mission_wording_for_named_rooms() {
    let mut h = H::new();
    h.book(1, "STE", "2027-01-01", "2027-01-03", "r-1", Ok, 1);
    h.book(2, "STE", "2027-01-02", "2027-01-04", "r-2", Ok, 2);
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(
        r.anomalies[0].message,
        "room STE nights 2027-01-02..2027-01-03 confirmed to ops 1 and 3"
    );
    assert_eq!(r.anomalies[0].capacity, None);
}

#[test]
fn a_cancel_before_the_confirmation_frees_a_place() {
    let mut h = H::new();
    h.header(dlx_header(2));
    h.book(1, "DLX", "2027-01-01", "2027-01-02", "r-1", Ok, 1);
    h.book(2, "DLX", "2027-01-01", "2027-01-02", "r-2", Ok, 2);
    h.invoke_cancel(1, 1);
    h.end(1, Ok, checkers::F::Cancel);
    h.book(3, "DLX", "2027-01-01", "2027-01-02", "r-3", Ok, 3);
    assert_eq!(
        NoDoubleBooking.check(&h.history()).validity,
        Validity::Valid
    );
}

#[test]
fn db_state_counts_rows_against_capacity() {
    let mut h = H::new();
    h.header(dlx_header(2));
    h.read(
        1,
        vec![
            row("DLX", "2027-01-01", "2027-01-03", "r-1"),
            row("DLX", "2027-01-02", "2027-01-04", "r-2"),
            row("DLX", "2027-01-02", "2027-01-03", "r-3"),
            row(7, "2027-01-02", "2027-01-03", "r-4"),
        ],
    );
    let r = DbState.check(&h.history());
    assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
    assert_eq!(
        r.anomalies[0].message,
        "the final read (op 2) holds room DLX, night 2027-01-02: 3 stays, capacity 2 (requests r-1, r-2 and r-3)"
    );
}

#[test]
fn slots_are_judged_like_nights_and_offsets_are_one_instant() {
    let header = RunHeader {
        capacity: Some(1),
        unit: Some("30m".into()),
        ..RunHeader::default()
    };
    let mut h = H::new();
    h.header(header.clone());
    h.book(
        1,
        "chair-1",
        "2027-01-01T09:00:00Z",
        "2027-01-01T10:00:00Z",
        "r-1",
        Ok,
        1,
    );
    h.book(
        2,
        "chair-1",
        "2027-01-01T10:00:00Z",
        "2027-01-01T10:30:00Z",
        "r-2",
        Ok,
        2,
    );
    assert_eq!(
        NoDoubleBooking.check(&h.history()).validity,
        Validity::Valid,
        "back to back"
    );
    // The same half hour, written in another offset by a foreign history.
    h.book(
        3,
        "chair-1",
        "2027-01-01T10:30:00+01:00",
        "2027-01-01T11:30:00+01:00",
        "r-3",
        Ok,
        3,
    );
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(
        r.anomalies[0].message,
        "room chair-1 slots 2027-01-01T09:30:00Z..2027-01-01T10:00:00Z confirmed to ops 2 and 6"
    );

    let mut h = H::new();
    h.header(RunHeader {
        capacity: Some(2),
        ..header
    });
    for p in 1..=3 {
        h.book(
            p,
            "room-a",
            "2027-01-01T09:00:00Z",
            "2027-01-01T09:30:00Z",
            &format!("r-{p}"),
            Ok,
            p,
        );
    }
    let r = NoDoubleBooking.check(&h.history());
    assert_eq!(
        r.anomalies[0].message,
        "room room-a, slot 2027-01-01T09:00:00Z: 3 confirmed, capacity 2 (ops 2, 4 and 6)"
    );
}

#[test]
fn a_history_alone_carries_its_capacity_through_jsonl() {
    let mut h = H::new();
    h.header(dlx_header(2));
    for p in 1..=3 {
        h.book(
            p,
            "DLX",
            "2027-01-01",
            "2027-01-02",
            &format!("r-{p}"),
            Ok,
            p,
        );
    }
    let mut w = HistoryWriter::new(Vec::new());
    for op in &h.ops {
        w.append(op).unwrap();
    }
    let text = w.into_inner();
    let back = read_history(&text[..]).unwrap();
    let r = check_all(&back, &CheckOptions::default());
    let ndb = r
        .checks
        .iter()
        .find(|c| c.checker == "no-double-booking")
        .unwrap();
    assert_eq!(ndb.validity, Validity::Invalid);
    assert!(ndb.anomalies[0].message.contains("3 confirmed, capacity 2"));
    // Without the header the same stays are judged at capacity 1: three pairs.
    let mut headless = H::new();
    for p in 1..=3 {
        headless.book(
            p,
            "DLX",
            "2027-01-01",
            "2027-01-02",
            &format!("r-{p}"),
            Ok,
            p,
        );
    }
    assert_eq!(
        NoDoubleBooking.check(&headless.history()).anomalies.len(),
        3
    );
}

/// The model: per room and night unit, how many `ok` stays (distinct requests) hold it.
fn over_model(stays: &[(u8, i64, i64)], capacity: &HashMap<u8, u64>) -> bool {
    let mut count: HashMap<(u8, i64), u64> = HashMap::new();
    for &(room, from, to) in stays {
        for n in from..to {
            *count.entry((room, n)).or_default() += 1;
        }
    }
    count
        .iter()
        .any(|(&(room, _), &c)| c > capacity.get(&room).copied().unwrap_or(1))
}

fn bound(slots: bool, n: i64) -> String {
    if slots {
        Instant(1_798_761_600_000_000 + n * 30 * 60_000_000).to_string()
    } else {
        checkers::Date(20_000 + n as i32).to_string()
    }
}

fn stays() -> impl Strategy<Value = Vec<(u8, i64, i64)>> {
    prop::collection::vec((0u8..3, 0i64..8, 1i64..4), 1..14)
        .prop_map(|v| v.into_iter().map(|(r, f, len)| (r, f, f + len)).collect())
}

fn header_of(capacity: &HashMap<u8, u64>, slots: bool) -> RunHeader {
    RunHeader {
        room_capacity: capacity
            .iter()
            .map(|(&r, &c)| RoomCapacity {
                room: if r == 0 {
                    100u64.into()
                } else {
                    format!("T{r}").as_str().into()
                },
                capacity: c,
            })
            .collect(),
        unit: slots.then(|| "30m".to_string()),
        ..RunHeader::default()
    }
}

fn room_of(r: u8) -> checkers::Room {
    if r == 0 {
        100u64.into()
    } else {
        format!("T{r}").as_str().into()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Sequential confirmations (no cancels): the run is invalid exactly when some room
    /// holds more stays on one night (or slot) than its capacity, and every anomaly
    /// names more bookings than the capacity.
    #[test]
    fn no_double_booking_agrees_with_counting_nights(
        stays in stays(),
        caps in prop::collection::vec(1u64..4, 3),
        slots in any::<bool>(),
    ) {
        let capacity: HashMap<u8, u64> = (0u8..3).zip(caps).collect();
        let mut h = H::new();
        h.header(header_of(&capacity, slots));
        for (i, &(room, from, to)) in stays.iter().enumerate() {
            let p = i as u64 + 1;
            h.book(p, room_of(room), &bound(slots, from), &bound(slots, to), &format!("r-{p}"), Ok, p);
        }
        let r = NoDoubleBooking.check(&h.history());
        prop_assert_eq!(r.validity == Validity::Invalid, over_model(&stays, &capacity), "{:?}", r.anomalies);
        for a in &r.anomalies {
            let cap = a.capacity.unwrap_or(1);
            prop_assert!(a.ops.len() as u64 >= 2 * (cap + 1), "{}", a.message);
            let (from, to) = a.nights.unwrap();
            prop_assert!(from < to);
            prop_assert_eq!(from.is_night(), !slots);
        }

        // The final read holding exactly those stays is judged the same by db-state.
        let rows = stays
            .iter()
            .enumerate()
            .map(|(i, &(room, from, to))| row(room_of(room), &bound(slots, from), &bound(slots, to), &format!("r-{}", i + 1)))
            .collect();
        h.read(99, rows);
        let db = DbState.check(&h.history());
        prop_assert_eq!(db.validity == Validity::Invalid, over_model(&stays, &capacity), "{:?}", db.anomalies);
    }

    /// Capacity 1 written explicitly and capacity 1 by default decide the same, and a
    /// capacity no booking can reach is always valid.
    #[test]
    fn capacity_one_is_the_default_and_a_huge_capacity_never_fails(stays in stays()) {
        let mut plain = H::new();
        let mut explicit = H::new();
        let mut huge = H::new();
        explicit.header(RunHeader { capacity: Some(1), ..RunHeader::default() });
        huge.header(RunHeader { capacity: Some(1000), ..RunHeader::default() });
        for h in [&mut plain, &mut explicit, &mut huge] {
            for (i, &(room, from, to)) in stays.iter().enumerate() {
                let p = i as u64 + 1;
                h.book(p, room_of(room), &bound(false, from), &bound(false, to), &format!("r-{p}"), Ok, p);
            }
        }
        let msgs = |h: &H| -> Vec<String> {
            NoDoubleBooking.check(&h.history()).anomalies.into_iter().map(|a| a.message).collect()
        };
        let (a, b) = (msgs(&plain), msgs(&explicit));
        prop_assert_eq!(a.len(), b.len());
        prop_assert_eq!(NoDoubleBooking.check(&huge.history()).validity, Validity::Valid);
    }
}

/// A mapped service whose read does not say which request made a row: rows carry an
/// empty request, matched by stay, never duplicates of each other.
#[test]
fn rows_without_their_request_are_matched_by_stay() {
    use checkers::checks::{ConfirmedIsDurable, Idempotency};
    let mut h = H::new();
    h.header(dlx_header(2));
    h.book(1, "DLX", "2027-01-01", "2027-01-02", "r-1", Ok, 1);
    h.book(2, "DLX", "2027-01-01", "2027-01-02", "r-2", Ok, 2);
    h.read(
        9,
        vec![
            row("DLX", "2027-01-01", "2027-01-02", ""),
            row("DLX", "2027-01-01", "2027-01-02", ""),
        ],
    );
    let hist = h.history();
    assert_eq!(ConfirmedIsDurable.check(&hist).validity, Validity::Valid);
    assert_eq!(Idempotency.check(&hist).validity, Validity::Valid);
    let mut lost = H::new();
    lost.book(1, "DLX", "2027-01-01", "2027-01-02", "r-1", Ok, 1);
    lost.read(9, vec![row("DLX", "2027-01-02", "2027-01-03", "")]);
    assert_eq!(
        ConfirmedIsDurable.check(&lost.history()).validity,
        Validity::Invalid
    );
}
