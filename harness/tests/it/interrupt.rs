//! Ctrl-C keeps what was recorded, a second one does not wait; without a terminal,
//! progress comes as lines (issue 13).

use crate::support::*;
use checkers::Validity;
use harness::nodes::{Backend, Cluster, NodeOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// ---- 14. Ctrl-C keeps what was recorded ----------------------------------------------

/// Waits (with no deadline: the run is long) until the run's history holds `oks` ok
/// completions; a run that exits first fails the test with its output instead.
fn wait_for_oks(child: &mut Child, store: &Path, test: &str, oks: usize) -> PathBuf {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("the run ended before any booking ({status}): {err}");
        }
        let found = std::fs::read_dir(store.join(test))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path().join("history.jsonl"));
        if let Some(h) = found {
            let text = std::fs::read_to_string(&h).unwrap_or_default();
            if text.matches("\"type\":\"ok\"").count() >= oks {
                return h;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_first_ctrl_c_writes_an_interrupted_report_and_exits_130() {
    let store = TempDir::new("ctrl-c");
    let mut child = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args([
            "run",
            "--design",
            "db-unique",
            "--fault",
            "none",
            "--time-limit",
            "10m",
            "--quiet",
            "--store",
            store.str(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let history = wait_for_oks(&mut child, &store.0, "db-unique-none", 10);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    let dir = history.parent().unwrap();
    assert!(
        stdout(&out).contains(&format!("run dir:   {}", dir.display())),
        "{}",
        show(&out)
    );
    assert!(stdout(&out).contains("interrupted"), "{}", show(&out));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["interrupted"], true);
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("Interrupted"));
    let results = read_results(dir);
    assert_eq!(results.validity, Validity::Valid, "{results:?}");
    // The final read was taken: the history ends with it.
    assert!(std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"f\":\"read\"") && l.contains("\"type\":\"ok\"")));
}

// ---- 15. progress in CI logs ---------------------------------------------------------

#[test]
fn without_a_terminal_progress_comes_as_lines() {
    let store = TempDir::new("progress");
    let out = overbook(&[
        "run",
        "--design",
        "db-unique",
        "--fault",
        "none",
        "--time-limit",
        "6s",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let lines: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("overbook: ") && l.contains(" ops ") && l.contains(" ok "))
        .map(String::from)
        .collect();
    assert!(!lines.is_empty(), "{}", show(&out));
    assert!(lines.iter().all(|l| l.ends_with("| healthy")), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_aborts_without_waiting_for_the_servers() {
    // Servers of the test's own, run as external ones: the test can freeze Postgres so
    // that the interrupted run's final read waits (up to its one-hour op timeout); only
    // the second Ctrl-C can end the run then.
    let logs = TempDir::new("ctrl-c-twice-logs");
    let servers = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let store = TempDir::new("ctrl-c-twice");
    let (redis_url, pg_url) = (servers.redis.direct_url(), servers.postgres.direct_url());
    let mut child = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["run", "--design", "db-unique", "--fault", "none"])
        .args(["--time-limit", "10m", "--op-timeout", "60m", "--quiet"])
        .args(["--backend", "external", "--redis-url", &redis_url])
        .args(["--postgres-url", &pg_url, "--store", store.str()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let history = wait_for_oks(&mut child, &store.0, "db-unique-none", 1);
    servers.postgres.pause().await.unwrap();
    let (status, said) = crate::security::interrupt_twice(&mut child);
    servers.postgres.resume().await.unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("interrupted, stopping servers"), "{said}");
    let dir = history.parent().unwrap();
    assert!(
        !dir.join("results.json").exists(),
        "aborted: no verdict was made up"
    );
    // What was recorded up to then is on disk.
    assert!(std::fs::read_to_string(&history)
        .unwrap()
        .contains("\"type\":\"ok\""));
    servers.shutdown().await.unwrap();
}
