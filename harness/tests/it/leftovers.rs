//! `overbook clean` finds a killed run's leftovers, and only those (issue 13).

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

// ---- 13. clean finds a killed run's leftovers, and only those ------------------------

/// Starts `overbook up` and waits for its `postgres data:` and `redis data:` lines.
fn start_up(logs: &Path, extra: &[&str]) -> (Child, Vec<PathBuf>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["up", "--dir", logs.to_str().unwrap()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut dirs = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(dir) = line.split(" data: ").nth(1) {
            dirs.push(PathBuf::from(dir));
        }
        if line.starts_with("Ctrl-C stops everything") {
            break;
        }
    }
    assert_eq!(dirs.len(), 2, "both servers' data dirs printed");
    (child, dirs)
}

fn processes_in(dir: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(dir))
        })
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .collect()
}

#[test]
fn clean_removes_a_killed_runs_dirs_and_stopped_servers_but_not_a_live_runs() {
    let logs = TempDir::new("clean-logs");
    // A run killed with -9 while Postgres is paused: its backends stay SIGSTOPped.
    let (mut dead, dead_dirs) = start_up(&logs.path("dead"), &["--fault", "pause-db"]);
    let db_dir = dead_dirs
        .iter()
        .find(|d| d.to_string_lossy().contains("overbook-db-"))
        .unwrap()
        .clone();
    dead.kill().unwrap();
    dead.wait().unwrap();
    // And a live one.
    let (mut live, live_dirs) = start_up(&logs.path("live"), &[]);
    // Its URLs, passwords included, are on disk for its owner only.
    let servers = logs.path("live/servers.txt");
    let mode = std::fs::metadata(&servers).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&servers).unwrap();
    assert!(
        text.contains("password=") && text.contains("redis://:"),
        "{text}"
    );

    let out = overbook(&["clean", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for dir in &dead_dirs {
        assert!(
            stdout(&out).contains(&format!("would remove dir {}", dir.display())),
            "{}",
            show(&out)
        );
        assert!(dir.exists(), "--dry-run removes nothing");
    }
    let stopped = processes_in(&db_dir);

    let out = overbook(&["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for dir in &dead_dirs {
        assert!(!dir.exists(), "{} removed: {}", dir.display(), show(&out));
    }
    assert!(
        processes_in(&db_dir).is_empty(),
        "the stopped servers {stopped:?} are gone"
    );
    for dir in &live_dirs {
        assert!(dir.exists(), "a live run's {} is kept", dir.display());
        assert!(
            stdout(&out).contains(&format!("keep    dir {}", dir.display())),
            "{}",
            show(&out)
        );
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(live.id() as i32, libc::SIGTERM) };
    live.wait().unwrap();
    for dir in &live_dirs {
        assert!(!dir.exists(), "the live run cleans up after itself");
    }
}
