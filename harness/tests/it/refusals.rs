//! Numbers out of range are refused before anything starts, naming the allowed range
//! (issue 13).

use crate::support::*;

// ---- 4. numeric ranges ---------------------------------------------------------------

#[test]
fn out_of_range_numbers_are_refused_up_front_with_the_allowed_range() {
    let store = TempDir::new("ranges");
    for (flag, value, says) in [
        ("--concurrency", "100000000", "allowed 1 to 1000"),
        ("--concurrency", "0", "allowed 1 to 1000"),
        ("--rooms", "18446744073709551615", "allowed 1 to 100000"),
        ("--window-days", "100000000", "to 3650"),
        ("--time-limit", "0s", "allowed 1ms to"),
        ("--lock-ttl", "0ms", "allowed 1ms to"),
        ("--db-latency", "61m", "allowed 0ms to 3600000ms"),
        ("--cancel-ratio", "1.5", "allowed 0 to 1"),
        ("--cancel-ratio", "NaN", "allowed 0 to 1"),
        ("--rate", "0", "allowed more than 0"),
        ("--fault-for", "0s", "allowed 1ms to"),
    ] {
        let out = overbook(&["run", flag, value, "--store", store.str()]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", show(&out));
        assert!(
            stderr(&out).contains(flag) && stderr(&out).contains(says),
            "{flag} {value}: {}",
            show(&out)
        );
    }
    assert!(std::fs::read_dir(&store.0).unwrap().next().is_none());
}
