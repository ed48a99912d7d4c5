//! `overbook check`: never writes over its input, and `--store` re-checks stored runs
//! (issues 13, 22).

use crate::support::*;
use std::process::Command;

// ---- 8. check never overwrites its input ---------------------------------------------

#[test]
fn check_refuses_to_write_its_report_over_the_history() {
    let dir = TempDir::new("check-self");
    let history = dir.path("h.jsonl");
    let mut lines = String::new();
    for op in fixtures::seed_race(false).history().ops() {
        lines.push_str(&serde_json::to_string(op).unwrap());
        lines.push('\n');
    }
    std::fs::write(&history, &lines).unwrap();
    std::os::unix::fs::symlink(&history, dir.path("link.jsonl")).unwrap();
    std::fs::hard_link(&history, dir.path("hard.jsonl")).unwrap();
    std::fs::create_dir(dir.path("sub")).unwrap();
    for report in [
        history.display().to_string(),
        format!("{}/sub/../h.jsonl", dir.str()),
        dir.path("link.jsonl").display().to_string(),
        dir.path("hard.jsonl").display().to_string(),
    ] {
        let out = overbook(&["check", history.to_str().unwrap(), "--report", &report]);
        assert_eq!(out.status.code(), Some(2), "{report}: {}", show(&out));
        assert!(
            stderr(&out).contains("refusing to overwrite"),
            "{}",
            show(&out)
        );
        assert_eq!(std::fs::read_to_string(&history).unwrap(), lines);
    }
    // Relative to the working directory, too.
    let out = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["check", "h.jsonl", "--report", "./h.jsonl"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(std::fs::read_to_string(&history).unwrap(), lines);
}

/// Issue 22: `overbook check --store DIR` re-checks every stored run with this version
/// and lists the runs whose verdict changed (upgrade safety): none for a run just made,
/// and a run whose stored verdict no longer matches its history is named (exit 1).
#[test]
fn check_store_lists_runs_whose_verdict_changed() {
    let store = TempDir::new("recheck");
    let out = overbook(&[
        "run",
        "--design",
        "db-exclusion",
        "--fault",
        "none",
        "--concurrency",
        "4",
        "--time-limit",
        "3s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let again = overbook(&["check", "--store", store.str()]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert!(
        stdout(&again).contains("1 runs re-checked under") && stdout(&again).contains("0 changed"),
        "{}",
        show(&again)
    );
    // A stored verdict the history does not support: as if written by another version.
    let dir = std::fs::read_link(store.path("latest"))
        .map(|l| store.0.join(l))
        .unwrap();
    let results = dir.join("results.json");
    let text = std::fs::read_to_string(&results).unwrap();
    std::fs::write(
        &results,
        text.replacen("\"validity\": \"valid\"", "\"validity\": \"invalid\"", 1),
    )
    .unwrap();
    let changed = overbook(&["check", "--store", store.str()]);
    assert_eq!(changed.status.code(), Some(1), "{}", show(&changed));
    assert!(
        stdout(&changed).contains("changed  ")
            && stdout(&changed).contains("invalid (all-held) -> valid (all-held)"),
        "{}",
        show(&changed)
    );
}
