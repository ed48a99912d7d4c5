//! The nightly questions end to end, with the real binary, real servers and the Python
//! example service (BOOKING_MODE=buggy|fixed): what regressed since last night (`matrix
//! diff`, `--baseline`, `trend`), which cells are flaky (`--repeat`), and the smallest run
//! that still fails (`shrink`).
//!
//! Making the outcomes happen, not hoping for them: "the service changed overnight" is a
//! wrapper command that reads its mode from a file the test writes, and a flaky service
//! is the same wrapper alternating buggy and fixed from one run to the next (a counter
//! file). A buggy run is caught by aimed faults on a one-room hotel whose lease (100 ms)
//! is a quarter of one database round trip (400 ms): every booking of the buggy mode
//! (check, insert, commit) outlives a dozen leases, and the users queued on the room's
//! lease take it over in turn and book the same earliest free nights. The fixed mode
//! holds whatever the timing (the database refuses the overlap). Every run is a proper
//! run: its fault fires, it confirms bookings.

use std::path::{Path, PathBuf};

use reports::matrix::Matrix;

use crate::support::{overbook, show};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("overbook-nightly-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The buggy mode's own work inside its lease (ms), three leases long: every booking
/// outlives its lease whatever the faults do, so the users queued on the room take the
/// lease over in turn, each checks before the previous holder inserted, and the buggy
/// mode is caught in every cell. With no work of its own, a db-latency cell was caught
/// only when a window happened to meet enough hand-overs (missed once in CI: 2 in 43).
const WORK_MS: u32 = 300;

/// A service command whose mode is read, at each start, from `dir/mode`; with
/// `alternate`, from a counter instead: buggy on the 1st, 3rd, ... start, fixed on the
/// others.
fn wrapper(dir: &Path, alternate: bool) -> String {
    let script = dir.join("service.sh");
    let service = repo().join("examples/python-service/service.py");
    let mode = if alternate {
        format!(
            "n=$(cat {c} 2>/dev/null || echo 0); echo $((n + 1)) > {c}\n\
             if [ $((n % 2)) -eq 0 ]; then mode=buggy; else mode=fixed; fi\n",
            c = dir.join("starts").display()
        )
    } else {
        format!("mode=$(cat {})\n", dir.join("mode").display())
    };
    std::fs::write(
        &script,
        format!(
            "{mode}BOOKING_MODE=$mode BOOKING_WORK_MS={WORK_MS} exec /usr/bin/python3 {}\n",
            service.display()
        ),
    )
    .unwrap();
    format!("sh {}", script.display())
}

/// The run options of every cell: the one-room race of the module doc, two windows.
const RUN_ARGS: [&str; 11] = [
    "--",
    "--rooms",
    "1",
    "--concurrency",
    "12",
    "--lock-ttl",
    "100ms",
    "--db-latency",
    "400ms",
    "--fault-for",
    "2s",
];

fn matrix_args<'a>(service: &'a str, faults: &'a str, store: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "matrix",
        "--service",
        service,
        "--faults",
        faults,
        // The service is expected to hold everywhere but under slow-writes, where this
        // matrix asserts it is caught: a canary of its own.
        "--expect",
        "slow-writes=invalid",
        "--time-limit",
        "6s",
        "--store",
        store,
    ];
    a.extend(RUN_ARGS);
    a.extend(["--heal-for", "300ms"]);
    a
}

fn matrix_dirs(store: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join("matrix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn diff_names_the_regression_the_fix_and_the_new_cell_of_real_matrices() {
    let dir = scratch("diff");
    let service = wrapper(&dir, false);
    let store = dir.join("store");
    let store_s = store.to_str().unwrap();

    // Last night: the fixed service. It holds under db-latency (met) and, being fixed,
    // is not caught under slow-writes (the override's canary misses).
    std::fs::write(dir.join("mode"), "fixed").unwrap();
    let out = overbook(&matrix_args(&service, "db-latency,slow-writes", store_s));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let old = matrix_dirs(&store)[0].clone();

    // Tonight: a buggy build, and a new column. db-latency regresses, slow-writes is
    // "fixed" (caught, as asserted), `none` is new.
    std::fs::write(dir.join("mode"), "buggy").unwrap();
    let junit = dir.join("junit.xml");
    let mut args = matrix_args(&service, "db-latency,slow-writes,none", store_s);
    let tail = args.split_off(args.iter().position(|a| *a == "--").unwrap());
    args.extend([
        "--baseline",
        old.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    args.extend(tail);
    let out = overbook(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a regression fails the night\n{}",
        show(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("1 regressed, 1 fixed, 1 new"),
        "{}",
        show(&out)
    );
    let new = matrix_dirs(&store)[1].clone();
    let page = std::fs::read_to_string(new.join("matrix.html")).unwrap();
    let changed = page
        .find("What changed since")
        .expect("the diff is on the page");
    assert!(
        changed < page.find("<table class=\"matrix\"").unwrap(),
        "the diff comes first"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("type=\"regression\""), "{xml}");
    assert!(xml.contains("REGRESSION since"), "{xml}");

    // The same from the two files, with the diff as JSON.
    let json = dir.join("diff.json");
    let out = overbook(&[
        "matrix",
        "diff",
        old.join("matrix.json").to_str().unwrap(),
        new.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let d: reports::diff::MatrixDiff =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let kind = |key: &str| d.cells.iter().find(|c| c.key == key).map(|c| c.kind);
    use reports::diff::ChangeKind;
    assert_eq!(
        kind("service under db-latency"),
        Some(ChangeKind::Regressed)
    );
    assert_eq!(kind("service under slow-writes"), Some(ChangeKind::Fixed));
    assert_eq!(kind("service under none"), Some(ChangeKind::Appeared));
    // Each cell carries its worst lease margin; the buggy one outlived its leases.
    let regressed = d.cells[0].new.as_ref().unwrap();
    assert!(regressed.margin_max.unwrap() > 1.0, "{regressed:?}");

    // Reversed, the fix is a regression and the new cell is gone.
    let out = overbook(&[
        "matrix",
        "diff",
        new.to_str().unwrap(),
        old.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains("1 regressed, 1 fixed, 1 gone"),
        "{}",
        show(&out)
    );

    // Both nights on the trend page.
    let out = overbook(&["matrix", "trend", "--store", store_s]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let trend = std::fs::read_to_string(store.join("matrix/trend.html")).unwrap();
    assert!(trend.contains("service under db-latency"));
    assert!(trend.contains("service under slow-writes: time to first anomaly"));
    // Each night and cell-night links to its matrix and run report by a relative path
    // that resolves in the store (issue 28), so an uploaded store keeps its links.
    let links: Vec<&str> = trend
        .split("<a href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(
        links.iter().any(|l| l.ends_with("/report.html")),
        "{links:?}"
    );
    for l in &links {
        assert!(!l.starts_with('/'), "{l} is not relative");
        assert!(
            store.join("matrix").join(l).is_file(),
            "{l} does not resolve"
        );
    }

    // Bad input: exit 2 naming the file.
    let missing = dir.join("nowhere");
    let out = overbook(&[
        "matrix",
        "diff",
        missing.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nowhere"),
        "{}",
        show(&out)
    );
    let corrupt = dir.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("matrix.json"), "{\"cells\": [").unwrap();
    let out = overbook(&[
        "matrix",
        "diff",
        old.to_str().unwrap(),
        corrupt.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt/matrix.json is not a matrix.json"),
        "{}",
        show(&out)
    );
    let out = overbook(&{
        let mut a = matrix_args(&service, "none", store_s);
        a.insert(1, "--baseline");
        a.insert(2, missing.to_str().unwrap());
        a
    });
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad baseline is refused before any cell\n{}",
        show(&out)
    );
    assert_eq!(matrix_dirs(&store).len(), 2, "nothing ran");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_repeat_whose_expectation_holds_in_some_runs_only_is_flaky() {
    let dir = scratch("flaky");
    // Buggy on the first start, fixed on the second: caught once, held once.
    let service = wrapper(&dir, true);
    let store = dir.join("store");
    let junit = dir.join("junit.xml");
    let mut args = matrix_args(&service, "slow-writes", store.to_str().unwrap());
    args.splice(1..1, ["--repeat", "2", "--junit", junit.to_str().unwrap()]);
    let out = overbook(&args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("service under slow-writes: expected invalid, caught 1/2 (50%, 95% CI 9%-91%); FLAKY: expectation held in 1/2 runs"),
        "{}",
        show(&out)
    );
    let m: Matrix =
        serde_json::from_slice(&std::fs::read(matrix_dirs(&store)[0].join("matrix.json")).unwrap())
            .unwrap();
    let summary = &reports::summary::summarize(&m)[0];
    assert_eq!(summary.status, reports::summary::CellStatus::Flaky);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("type=\"flaky\""), "{xml}");
    assert_eq!(xml.matches("<property name=\"flaky\"").count(), 2, "{xml}");
    let page = std::fs::read_to_string(matrix_dirs(&store)[0].join("matrix.html")).unwrap();
    assert!(page.contains("<td class=\"cell flaky\">"));

    // `run --repeat` says the same of the same alternation (3rd start buggy, 4th fixed).
    let mut run = vec![
        "run",
        "--service",
        &service,
        "--fault",
        "slow-writes",
        "--repeat",
        "2",
        "--expect",
        "invalid",
        "--time-limit",
        "6s",
        "--heal-for",
        "300ms",
        "--quiet",
        "--store",
    ];
    let store_s = store.display().to_string();
    run.push(&store_s);
    run.extend(&RUN_ARGS[1..]);
    let out = overbook(&run);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains("expected invalid: FLAKY, held in 1/2 runs (seeds"),
        "{}",
        show(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The story with a race that happens on purpose: slow-writes holds every write of its
/// window for 1.5 s, three leases, so a user waiting for a room's lock takes it over
/// while the first holder's INSERT is still held. Whether the two also want the same
/// nights is a rate (the generator aims at the earliest free night, most of the time), so
/// the verdict is the lock's failure (`--strict-lock`: lock-only trusts the lock alone).
/// No cancels and a calendar that never fills keep every op a booking: on one room every
/// user waits on that room's lock, and every run fails.
const CERTAIN_RACE: [&str; 14] = [
    "run",
    "--design",
    "lock-only",
    "--fault",
    "slow-writes",
    "--window-days",
    "3650",
    "--cancel-ratio",
    "0",
    "--strict-lock",
    "--db-latency",
    "1500ms",
    "--fault-for",
    "3500ms",
];

#[test]
fn shrink_finds_a_smaller_run_that_fails_again() {
    let dir = scratch("shrink");
    let store = dir.join("store");
    let store_s = store.to_str().unwrap();
    // The story, smaller, on three rooms and six users; shrink tries rooms before users,
    // so each smaller candidate has one room and fails every time: 1 room, then 2 users.
    let out = overbook(
        &[
            &CERTAIN_RACE[..],
            &[
                "--time-limit",
                "6s",
                "--concurrency",
                "6",
                "--rooms",
                "3",
                "--heal-for",
                "500ms",
                "--seed",
                "1",
                "--quiet",
                "--store",
                store_s,
            ],
        ]
        .concat(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the story fails\n{}",
        show(&out)
    );
    let run_dir = std::fs::read_link(store.join("latest"))
        .map(|l| store.join(l))
        .unwrap();

    let out = overbook(&[
        "shrink",
        run_dir.to_str().unwrap(),
        "--budget",
        "180s",
        "--tries",
        "2",
        "--confirm",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shrink ["),
        "progress lines without a terminal\n{}",
        show(&out)
    );
    let text = stdout(&out);
    let command = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: "))
        .unwrap_or_else(|| panic!("no reproduce line\n{}", show(&out)))
        .to_string();
    let value = |flag: &str| -> u64 {
        let words: Vec<&str> = command.split_whitespace().collect();
        let i = words.iter().position(|w| *w == flag).unwrap();
        words[i + 1].parse().unwrap()
    };
    assert_eq!(value("--rooms"), 1, "{command}");
    assert_eq!(value("--concurrency"), 2, "{command}");
    assert!(text.contains("fails "), "{text}");
    let report = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("report:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(Path::new(&report).is_file(), "{report}");

    // The printed command fails again (its own store, no progress bar).
    let again = dir.join("again");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --quiet --store {}",
            command.replacen("overbook", env!("CARGO_BIN_EXE_overbook"), 1),
            again.display()
        ))
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));

    // Bad input: a valid run, a directory that is not a run.
    let out = overbook(&[
        "run",
        "--design",
        "db-unique",
        "--fault",
        "none",
        "--time-limit",
        "2s",
        "--quiet",
        "--store",
        store_s,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let valid = std::fs::read_link(store.join("latest"))
        .map(|l| store.join(l))
        .unwrap();
    let out = overbook(&["shrink", valid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a valid run"),
        "{}",
        show(&out)
    );
    let out = overbook(&["shrink", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a run directory"),
        "{}",
        show(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `bench reproduce` reruns a failing run's command from its meta's words (no shell) and
/// prints the re-detection rate with its interval; a meta without those words, from an
/// older overbook, is refused rather than guessed at.
#[test]
fn bench_reproduce_reruns_the_command_and_prints_the_rate() {
    let dir = scratch("reproduce");
    let store = dir.join("store");
    // The shrink test's smallest run: one room, two users. It fails every time.
    let out = overbook(
        &[
            &CERTAIN_RACE[..],
            &[
                "--time-limit",
                "5s",
                "--concurrency",
                "2",
                "--rooms",
                "1",
                "--heal-for",
                "250ms",
                "--quiet",
                "--store",
                store.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let run_dir = std::fs::read_link(store.join("latest"))
        .map(|l| store.join(l))
        .unwrap();
    let out = overbook(&[
        "bench",
        "reproduce",
        run_dir.to_str().unwrap(),
        "--times",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("re-detected 2/2 (100%, 95% CI "), "{text}");
    assert!(run_dir.join("reproduce/store").is_dir(), "{text}");

    // An older meta.json, without argv.
    let meta_path = run_dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("argv");
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let out = overbook(&["bench", "reproduce", run_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no argv"),
        "{}",
        show(&out)
    );
}
