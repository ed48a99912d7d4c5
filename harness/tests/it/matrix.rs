//! `overbook matrix` end to end with the real binary and real servers: expected cells
//! pass, a deliberately wrong expectation fails with exit 1 and a JUnit failure, and
//! shards 1/2 + 2/2 merged hold exactly the unsharded cells.

use std::path::{Path, PathBuf};

use crate::support::{overbook, show};
use reports::matrix::Matrix;

/// The one matrix directory under `store/matrix` whose name does (or does not) end in
/// `-merged`.
fn matrix_dirs(store: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join("matrix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

fn read_matrix(dir: &Path) -> Matrix {
    serde_json::from_slice(&std::fs::read(dir.join("matrix.json")).unwrap()).unwrap()
}

fn cell_keys(m: &Matrix) -> Vec<(usize, String, String, u64)> {
    let mut keys: Vec<_> = m
        .cells
        .iter()
        .map(|c| (c.ordinal, c.design.clone(), c.fault.clone(), c.seed))
        .collect();
    keys.sort();
    keys
}

const CELLS: [&str; 8] = [
    "--designs",
    "lock-only,db-exclusion",
    "--faults",
    "none,slow-writes",
    "--time-limit",
    "8s",
    "--jobs",
    "2",
];
/// Start the first fault window early so a short cell still has most of its time faulted.
const RUN_ARGS: [&str; 5] = ["--", "--heal-for", "500ms", "--fault-for", "4s"];

#[test]
fn matrix_meets_expectations_flags_a_wrong_one_and_shards_merge_to_the_whole() {
    let root = std::env::temp_dir().join(format!("overbook-matrix-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);

    // 1. The whole matrix: every cell as its design declares.
    let whole_store = root.join("whole");
    let junit = root.join("whole.xml");
    let mut args = vec!["matrix"];
    args.extend(CELLS);
    args.extend([
        "--store",
        whole_store.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    args.extend(RUN_ARGS);
    let out = overbook(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "every cell should meet its expectation\n{}",
        show(&out)
    );
    let whole = read_matrix(&matrix_dirs(&whole_store)[0]);
    assert_eq!(whole.cells.len(), 4);
    // The canary is aimed: every write in a window is held past the lease.
    let lock_only_latency = whole
        .cells
        .iter()
        .find(|c| c.design == "lock-only" && c.fault == "slow-writes")
        .unwrap();
    assert_eq!(lock_only_latency.expected, "invalid");
    assert!(
        lock_only_latency.met,
        "the canary must sing: {}",
        lock_only_latency.summary
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"4\" failures=\"0\" errors=\"0\""),
        "{xml}"
    );
    let page = std::fs::read_to_string(matrix_dirs(&whole_store)[0].join("matrix.html")).unwrap();
    assert!(page.contains("every cell met its expectation"));

    // 2. The same cells in two shards, with one expectation deliberately wrong: lock-only
    //    does not double-book with no fault, but we claim it must.
    let shard_store = root.join("shards");
    let shard_junit = root.join("shard1.xml");
    for shard in ["1/2", "2/2"] {
        let mut args = vec!["matrix"];
        args.extend(CELLS);
        args.extend([
            "--store",
            shard_store.to_str().unwrap(),
            "--shard",
            shard,
            "--expect",
            "lock-only:none=invalid",
        ]);
        if shard == "1/2" {
            args.extend(["--junit", shard_junit.to_str().unwrap()]);
        }
        args.extend(RUN_ARGS);
        let out = overbook(&args);
        // lock-only under none is cell 0, which shard 1/2 runs.
        let expected = if shard == "1/2" { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "shard {shard}\n{}",
            show(&out)
        );
        if shard == "1/2" {
            assert!(
                String::from_utf8_lossy(&out.stdout)
                    .contains("lock-only under none (seed 1): expected invalid, got valid"),
                "{}",
                show(&out)
            );
        }
    }
    let xml = std::fs::read_to_string(&shard_junit).unwrap();
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"expected invalid, got valid"),
        "{xml}"
    );
    assert!(
        xml.contains("reproduce: overbook run --design lock-only --fault none"),
        "{xml}"
    );

    // 3. Merge: one page, one exit code, exactly the unsharded cells.
    let shard_dirs = matrix_dirs(&shard_store);
    assert_eq!(shard_dirs.len(), 2);
    let mut args = vec!["matrix", "merge", "--store", shard_store.to_str().unwrap()];
    let dir_strs: Vec<String> = shard_dirs.iter().map(|d| d.display().to_string()).collect();
    args.extend(dir_strs.iter().map(String::as_str));
    let out = overbook(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the merged matrix carries the wrong expectation\n{}",
        show(&out)
    );
    let merged_dir = matrix_dirs(&shard_store)
        .into_iter()
        .find(|d| d.to_string_lossy().ends_with("-merged"))
        .unwrap();
    let merged = read_matrix(&merged_dir);
    assert_eq!(cell_keys(&merged), cell_keys(&whole));
    assert_eq!(merged.shards, vec!["1/2".to_string(), "2/2".to_string()]);
    // Every run report the merged page links to exists.
    for c in &merged.cells {
        assert!(
            merged_dir.join("../..").join(&c.report).is_file(),
            "missing report {}",
            c.report
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Regression: a hung cell used to hang the whole matrix. A cell still running at its
/// deadline is stopped and reported as a harness error for that cell, and the matrix
/// goes on to its verdict. (A deadline shorter than any run stands in for a hang.)
#[test]
fn a_cell_past_its_deadline_is_stopped_and_reported_as_a_harness_error() {
    let root =
        std::env::temp_dir().join(format!("overbook-matrix-deadline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = root.join("store");
    let out = overbook(&[
        "matrix",
        "--designs",
        "db-exclusion",
        "--faults",
        "none",
        "--time-limit",
        "30s",
        "--cell-timeout",
        "1s",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let m = read_matrix(&matrix_dirs(&store)[0]);
    assert_eq!(m.cells.len(), 1);
    let cell = &m.cells[0];
    assert!(!cell.met);
    assert_eq!(cell.verdict, None, "{cell:?}");
    assert!(cell.summary.contains("deadline"), "{}", cell.summary);
    let _ = std::fs::remove_dir_all(&root);
}

/// The lock-service axis: rows named `design@service`, each cell run on its own topology
/// with the expectation its design declares there. Whether a fault breaks a lease on a
/// topology is it/locks.rs's business (aimed, deterministic); this checks the wiring,
/// with cells whose outcome does not hang on a race: the database holds on every
/// service while a lock node is frozen.
#[test]
fn the_lock_service_axis_runs_each_row_on_its_own_topology() {
    let store = std::env::temp_dir().join(format!(
        "overbook-matrix-locks-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let out = overbook(&[
        "matrix",
        "--designs",
        // A design that takes a lease: pause-redis cannot strike one that takes none.
        "db-unique",
        "--lock-services",
        "sentinel,redlock",
        "--faults",
        "pause-redis",
        "--time-limit",
        "6s",
        "--store",
        store.to_str().unwrap(),
        "--",
        "--lock-ttl",
        "1s",
        "--fault-for",
        "3s",
        "--heal-for",
        "500ms",
    ]);
    let dir = matrix_dirs(&store).remove(0);
    let m = read_matrix(&dir);
    let pages: Vec<String> = m
        .cells
        .iter()
        .map(|c| std::fs::read_to_string(store.join(&c.report)).unwrap_or_default())
        .collect();
    let _ = std::fs::remove_dir_all(&store);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let cells: Vec<(&str, &str, &str, bool)> = m
        .cells
        .iter()
        .map(|c| {
            (
                c.design.as_str(),
                c.fault.as_str(),
                c.expected.as_str(),
                c.met,
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("db-unique@sentinel", "pause-redis", "valid", true),
            ("db-unique@redlock", "pause-redis", "valid", true),
        ],
        "{}",
        show(&out)
    );
    // Each cell ran on its topology: its command says so, and so does its report.
    for ((c, page), topology) in m.cells.iter().zip(&pages).zip([
        "Redis primary + replica, three sentinels",
        "Redlock over five independent Redis nodes",
    ]) {
        let service = c.design.split('@').nth(1).unwrap();
        assert!(
            c.reproduce.contains(&format!("--lock-service {service}")),
            "{}",
            c.reproduce
        );
        assert!(
            page.contains(topology),
            "{} report lacks {topology}",
            c.design
        );
    }
    // Refused before any cell: a lock service that does not exist.
    let bad = overbook(&[
        "matrix",
        "--lock-services",
        "zookeeper",
        "--store",
        "/nonexistent",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
    assert!(show(&bad).contains("--lock-services"), "{}", show(&bad));
}
