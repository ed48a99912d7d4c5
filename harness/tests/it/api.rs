//! `--api`: a service with its own API (examples/hotel-api, room types sold N times a
//! night, or meeting rooms by the half hour) tested as it is through a mapping file,
//! against real Redis and Postgres.
//!
//! Making the race happen: under `slow-writes` every INSERT and COMMIT is held in the
//! Postgres proxy for 600 ms while reads go at full speed. The buggy hotel counts the
//! confirmed stays of a night, then inserts: with twelve users aimed at the earliest
//! night with a place left, every count taken during one held INSERT still sees the
//! room type below capacity, so four or more confirmations land on a night of three.
//! The fixed hotel locks the room type's row first (a read, not held): the second count
//! waits for the first COMMIT and sees its stay.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use checkers::{Results, Validity};
use harness::nemesis::Fault;
use harness::run::RunConfig;
use harness::sut::service::{ApiSpec, ServiceSpec};
use workloads::DesignName;

use crate::service::repo;
use crate::verdict::{checker, describe, ok_books};

fn store() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("overbook-api-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The example's mapping `name` with the API key written in (the tests do not change
/// the process environment, which other tests share).
fn mapping(name: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("examples/hotel-api").join(name)).unwrap();
    let path = store().join(name);
    std::fs::write(&path, text.replace("{env.HOTEL_API_KEY}", "k-test")).unwrap();
    path
}

/// The hotel in `mode`, selling `rooms` ("DLX:3,STE:1"), behind `mapping`.
fn hotel(mode: &str, rooms: &str, mapping_file: &str) -> ServiceSpec {
    let program = repo().join("examples/hotel-api/hotel.py");
    ServiceSpec {
        api: Some(ApiSpec::load(&mapping(mapping_file)).expect("the example mapping is valid")),
        ..ServiceSpec::new(format!(
            "HOTEL_MODE={mode} HOTEL_ROOMS={rooms} HOTEL_API_KEY=k-test exec /usr/bin/python3 {}",
            program.display()
        ))
    }
}

fn config(spec: ServiceSpec, faults: &[Fault], seed: u64) -> RunConfig {
    RunConfig {
        store: store(),
        command: "cargo test".into(),
        service: Some(spec),
        window_days: 1000,
        aim_at_free: 1.0,
        concurrency: 12,
        db_latency: Duration::from_millis(600),
        fault_for: Duration::from_secs(2),
        heal_for: Duration::from_millis(500),
        time_limit: Duration::from_secs(8),
        ..RunConfig::quick(DesignName::LockOnly, faults.to_vec(), seed)
    }
}

async fn run(cfg: RunConfig) -> Results {
    crate::verdict::run_recorded(&cfg).await.0.results
}

fn assert_oversold(r: &Results, says: &str) {
    let ndb = checker(r, "no-double-booking");
    assert_eq!(r.validity, Validity::Invalid, "{}", describe(r));
    assert!(
        ndb.anomalies.iter().any(|a| a.message.contains(says)),
        "no anomaly saying {says:?}:\n{}",
        describe(r)
    );
}

fn assert_holds(r: &Results) {
    assert_eq!(r.validity, Validity::Valid, "{}", describe(r));
    assert!(
        ok_books(r) > 10,
        "too few bookings to mean anything:\n{}",
        describe(r)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_buggy_hotel_sells_a_room_type_over_capacity_under_slow_writes() {
    let r = run(config(
        hotel("buggy", "DLX:3,STE:1", "hotel.toml"),
        &[Fault::SlowWrites],
        1,
    ))
    .await;
    assert_oversold(&r, "confirmed, capacity 3");
    let db = checker(&r, "db-state");
    assert_eq!(db.validity, Validity::Invalid, "{}", describe(&r));
    assert!(db
        .anomalies
        .iter()
        .any(|a| a.capacity == Some(3) && a.room == Some("DLX".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fixed_hotel_holds_under_slow_writes_pause_and_kill() {
    for fault in [Fault::SlowWrites, Fault::PauseService, Fault::KillService] {
        let r = run(config(
            hotel("fixed", "DLX:3,STE:1", "hotel.toml"),
            &[fault],
            2,
        ))
        .await;
        assert_holds(&r);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn meeting_rooms_by_the_half_hour_are_caught_and_held() {
    let rooms = "room-a:2,room-b:2";
    let r = run(config(
        hotel("buggy", rooms, "meeting-rooms.toml"),
        &[Fault::SlowWrites],
        3,
    ))
    .await;
    assert_oversold(&r, "confirmed, capacity 2");
    let a = &checker(&r, "no-double-booking").anomalies[0];
    let (from, _) = a.nights.unwrap();
    assert!(!from.is_night(), "slots are instants: {}", a.message);
    let r = run(config(
        hotel("fixed", rooms, "meeting-rooms.toml"),
        &[Fault::SlowWrites],
        3,
    ))
    .await;
    assert_holds(&r);
}

/// Each bad mapping ends `overbook run` with exit 2 naming the key and line, before any
/// server starts (the run makes no directory).
#[test]
fn a_bad_mapping_is_refused_before_anything_starts() {
    let good = std::fs::read_to_string(repo().join("examples/hotel-api/hotel.toml")).unwrap();
    let cases = [
        (
            "id = \"/reservation/id\"",
            "id = \"reservation/id\"",
            "key `book.id` (line 18)",
        ),
        (
            "{env.HOTEL_API_KEY}",
            "{env.OVERBOOK_TEST_NO_SUCH_VAR}",
            "OVERBOOK_TEST_NO_SUCH_VAR is not set",
        ),
        (
            "DLX = 3",
            "DLX = 0",
            "key `inventory.capacity.DLX` (line 8)",
        ),
        ("unit = \"night\"", "unit = \"7m\"", "does not divide a day"),
    ];
    for (from, to, says) in cases {
        let dir = tempdir();
        let file = dir.join("bad.toml");
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_overbook"))
            .args(["run", "--service", "true", "--api"])
            .arg(&file)
            .arg("--store")
            .arg(dir.join("store"))
            .env("HOTEL_API_KEY", "k")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
        assert!(!dir.join("store").exists(), "a run started: {err}");
    }
}

fn tempdir() -> PathBuf {
    let dir = store().join(format!("bad-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `overbook api check`: the example's mapping passes its four steps; a list pointer
/// one level off fails step 2, naming it (exit 1).
#[test]
fn api_check_walks_one_booking_through_the_mapping() {
    let program = repo().join("examples/hotel-api/hotel.py");
    let service = format!(
        "HOTEL_MODE=fixed exec /usr/bin/python3 {}",
        program.display()
    );
    let check = |file: &PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_overbook"))
            .args(["api", "check"])
            .arg(file)
            .args(["--service", &service])
            .env("HOTEL_API_KEY", "k-test")
            .output()
            .unwrap()
    };
    let out = check(&repo().join("examples/hotel-api/hotel.toml"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "step 1: book",
        "< 201",
        "step 3: cancel",
        "recorded: the booking is gone",
        "mapping OK",
    ] {
        assert!(text.contains(step), "{step}: {text}");
    }
    assert!(!text.contains("k-test"), "the API key was printed: {text}");

    let good = std::fs::read_to_string(repo().join("examples/hotel-api/hotel.toml")).unwrap();
    let wrong = tempdir().join("wrong.toml");
    std::fs::write(&wrong, good.replace("\"/data/items\"", "\"/data\"")).unwrap();
    let out = check(&wrong);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("mapping NOT OK: step 2 (read): the list at \"/data\" is not an array"),
        "{text}"
    );
}
