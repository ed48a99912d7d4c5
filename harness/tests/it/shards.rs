//! The matrix's arguments and shards: every cell checked before the first runs, and
//! merge refusing other matrices and missing shards (issue 13).

use crate::support::*;
use checkers::Validity;
use std::path::{Path, PathBuf};

// ---- 5. matrix -----------------------------------------------------------------------

#[test]
fn matrix_arguments_are_checked_before_the_first_cell() {
    let store = TempDir::new("matrix-args");
    for (args, says) in [
        (
            vec!["--time-limit", "0s"],
            "--time-limit 0ms is out of range",
        ),
        (
            vec!["--", "--concurrency", "0"],
            "--concurrency 0 is out of range",
        ),
        (vec!["--", "--bogus-flag"], "--bogus-flag"),
        (
            vec![
                "--designs",
                "lock-only",
                "--faults",
                "none",
                "--shard",
                "2/4",
            ],
            "holds no cell",
        ),
        (
            vec![
                "--designs",
                "lock-only",
                "--faults",
                "pause-db",
                "--time-limit",
                "1s",
            ],
            "no window of pause-db fits",
        ),
    ] {
        let mut argv = vec!["matrix", "--store", store.str()];
        // Options before `--`, the rest after.
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        argv.splice(1..1, args[..split].iter().copied());
        argv.extend(&args[split..]);
        let out = overbook(&argv);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {}", show(&out));
        assert!(stderr(&out).contains(says), "{argv:?}: {}", show(&out));
        assert!(
            !store.path("matrix").exists(),
            "{argv:?}: nothing ran, nothing was written"
        );
    }
}

/// A matrix shard directory as `overbook matrix` writes it: plan.json and matrix.json.
pub(crate) fn shard_dir(store: &Path, name: &str, shard: &str, time_limit_ms: u64) -> PathBuf {
    let dir = store.join("matrix").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let plan = harness::matrix::PlanFile {
        designs: vec!["db-unique".into()],
        faults: vec!["none".into(), "db-latency".into()],
        seeds: 1,
        seed: 1,
        time_limit_ms,
        expect: vec![],
        run_args: vec![],
        shard: shard.into(),
        cells: 1,
    };
    std::fs::write(dir.join("plan.json"), serde_json::to_vec(&plan).unwrap()).unwrap();
    let index: usize = shard[..1].parse().unwrap();
    let matrix = reports::matrix::Matrix {
        started_at: name.into(),
        shards: vec![shard.into()],
        designs: plan.designs.clone(),
        faults: vec![plan.faults[index - 1].clone()],
        cells: vec![reports::matrix::MatrixCell {
            ordinal: index - 1,
            design: "db-unique".into(),
            fault: plan.faults[index - 1].clone(),
            seed: 1,
            expected: "valid".into(),
            verdict: Some(Validity::Valid),
            met: true,
            summary: "no anomalies; valid".into(),
            reproduce: "overbook run".into(),
            report: String::new(),
            wall_ms: 1,
            overhead_ms: 0,
            measures: Default::default(),
        }],
    };
    std::fs::write(
        dir.join("matrix.json"),
        serde_json::to_vec(&matrix).unwrap(),
    )
    .unwrap();
    dir
}

fn merged_dirs(store: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(store.join("matrix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-merged"))
        .collect()
}

#[test]
fn matrix_merge_refuses_other_matrices_and_missing_shards_unless_partial() {
    let store = TempDir::new("merge");
    let one = shard_dir(&store.0, "a", "1/2", 10_000);
    let two = shard_dir(&store.0, "b", "2/2", 10_000);
    let other = shard_dir(&store.0, "c", "2/2", 20_000);
    let merge = |dirs: &[&Path], extra: &[&str]| {
        let mut argv = vec!["matrix", "merge", "--store", store.str()];
        argv.extend(extra);
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        argv.extend(dirs.iter().map(String::as_str));
        overbook(&argv)
    };

    let out = merge(&[&one, &other], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("are shards of different matrices"),
        "{}",
        show(&out)
    );
    assert!(merged_dirs(&store.0).is_empty(), "no empty merged dir left");

    let out = merge(&[&one], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("missing shards 2/2 of 2"),
        "{}",
        show(&out)
    );
    assert!(merged_dirs(&store.0).is_empty(), "no empty merged dir left");

    let out = merge(&[&one], &["--allow-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let out = merge(&[&one, &two], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("merged 2 shards: 2 cells"),
        "{}",
        show(&out)
    );
}
