//! Property tests against a model with a known answer (Elle's approach): histories from a
//! serial hotel are valid; one planted anomaly is always found and named. And the reader
//! survives random bytes and mutated lines without panicking.

use checkers::synth::{
    inject_double_confirmation, inject_lost_confirmation, inject_phantom_booking, serial_hotel,
    SynthConfig,
};
use checkers::{check_all, read_history, CheckOptions, History, HistoryWriter, Results, Validity};
use proptest::prelude::*;

fn config() -> impl Strategy<Value = SynthConfig> {
    (
        any::<u64>(),
        50usize..800,
        1usize..12,
        1u64..8,
        1u32..20,
        0u32..25,
        0u32..15,
    )
        .prop_map(
            |(seed, events, processes, rooms, days, cancel_pct, info_pct)| SynthConfig {
                seed,
                events,
                processes,
                rooms,
                days: days as i32,
                max_nights: 4,
                cancel_pct,
                info_pct,
                traces: seed % 2 == 0,
                nemesis: true,
            },
        )
}

fn check(ops: Vec<checkers::Op>) -> Results {
    let h = History::from_ops(ops).expect("synthetic histories are well formed");
    check_all(
        &h,
        &CheckOptions {
            strict_lock: true,
            ..CheckOptions::default()
        },
    )
}

fn to_jsonl(ops: &[checkers::Op]) -> Vec<u8> {
    let mut w = HistoryWriter::new(Vec::new());
    for op in ops {
        w.append(op).unwrap();
    }
    w.into_inner()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn serial_hotel_histories_are_valid(cfg in config()) {
        let r = check(serial_hotel(&cfg));
        let bad: Vec<String> = r.anomalies().map(|a| a.message.clone()).collect();
        prop_assert_eq!(r.validity, Validity::Valid, "anomalies: {:?}", bad);
    }

    #[test]
    fn a_planted_double_confirmation_is_found_and_named(cfg in config(), pick in any::<usize>()) {
        let mut ops = serial_hotel(&cfg);
        let planted = inject_double_confirmation(&mut ops, pick);
        prop_assume!(planted.is_some());
        let (x, y) = planted.unwrap();
        let r = check(ops);
        prop_assert_eq!(r.validity, Validity::Invalid);
        let c = r.check("no-double-booking").unwrap();
        let needle = format!("confirmed to ops {x} and {y}");
        prop_assert!(
            c.anomalies.iter().any(|a| a.message.ends_with(&needle) && a.ops.contains(&x) && a.ops.contains(&y)),
            "wanted {:?} in {:?}", needle, c.anomalies
        );
    }

    #[test]
    fn a_lost_confirmation_is_found_and_named(cfg in config(), pick in any::<usize>()) {
        let mut ops = serial_hotel(&cfg);
        let lost = inject_lost_confirmation(&mut ops, pick);
        prop_assume!(lost.is_some());
        let x = lost.unwrap();
        let r = check(ops);
        prop_assert_eq!(r.validity, Validity::Invalid);
        let c = r.check("confirmed-is-durable").unwrap();
        prop_assert_eq!(c.anomalies.len(), 1);
        prop_assert!(c.anomalies[0].ops.contains(&x));
        let needle = format!("confirmed to op {x} ");
        prop_assert!(c.anomalies[0].message.contains(&needle));
    }

    #[test]
    fn a_phantom_booking_is_found_and_named(cfg in config(), pick in any::<usize>()) {
        let mut ops = serial_hotel(&cfg);
        let phantom = inject_phantom_booking(&mut ops, pick);
        prop_assume!(phantom.is_some());
        let x = phantom.unwrap();
        let r = check(ops);
        prop_assert_eq!(r.validity, Validity::Invalid);
        let c = r.check("failed-is-absent").unwrap();
        prop_assert_eq!(c.anomalies.len(), 1);
        prop_assert!(c.anomalies[0].ops.contains(&x));
        let needle = format!("answered `fail` by op {x} ");
        prop_assert!(c.anomalies[0].message.contains(&needle));
    }

    #[test]
    fn the_reader_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = read_history(&bytes[..]);
    }

    #[test]
    fn the_reader_never_panics_on_mutated_lines(
        seed in any::<u64>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let cfg = SynthConfig { seed, events: 40, processes: 3, ..SynthConfig::default() };
        let mut bytes = to_jsonl(&serial_hotel(&cfg));
        for (at, b, how) in edits {
            let at = at % bytes.len();
            match how {
                0 => bytes[at] = b,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, b),
            }
        }
        // Valid or an error naming a line inside the input: either way, no panic, and
        // whatever parses still checks without panicking.
        match read_history(&bytes[..]) {
            Ok(h) => { let _ = check_all(&h, &CheckOptions::default()); }
            Err(e) => prop_assert!(e.line() >= 1 && e.line() as usize <= bytes.len() + 1, "{}", e),
        }
    }
}

#[test]
fn a_large_serial_history_round_trips_through_jsonl_and_stays_valid() {
    let cfg = SynthConfig {
        events: 20_000,
        processes: 16,
        rooms: 30,
        days: 90,
        ..SynthConfig::default()
    };
    let ops = serial_hotel(&cfg);
    let h = read_history(&to_jsonl(&ops)[..]).unwrap();
    assert_eq!(h.ops(), &ops[..]);
    let r = check_all(
        &h,
        &CheckOptions {
            strict_lock: true,
            ..CheckOptions::default()
        },
    );
    assert_eq!(r.validity, Validity::Valid);
    assert!(r.stats.counts["book"].ok > 1_000);
    assert!(r.stats.counts["cancel"].ok > 100);
    assert!(!r.stats.faults.is_empty());
}
