//! End to end: `overbook report RUN_DIR` and `overbook check FILE --report OUT` write a
//! page that headless Chromium loads without console errors, showing the anomaly
//! section; a screenshot is kept in target/test-artifacts/ for people to look at.
//! Skips the browser part (saying so) when no Chromium is installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{overbook, TempDir};
use reports::RunMeta;

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create artifacts dir");
    dir
}

/// Writes the seed race (double booking) as a run directory: history.jsonl + meta.json.
fn seed_run(dir: &Path) {
    let history = fixtures::seed_race(false).history();
    let mut lines = String::new();
    for op in history.ops() {
        lines.push_str(&serde_json::to_string(op).expect("op serialises"));
        lines.push('\n');
    }
    std::fs::write(dir.join("history.jsonl"), lines).expect("write history");
    let meta = RunMeta {
        design: "lock-only".into(),
        faults: vec!["db-latency".into()],
        seed: Some(42),
        duration_ms: 3400,
        command: "overbook run --design lock-only --fault db-latency --seed 42".into(),
        started_at: "20261123T101500.000Z".into(),
        params: [
            ("lock-ttl".to_string(), "500ms".to_string()),
            ("db-latency".to_string(), "600ms".to_string()),
        ]
        .into(),
        argv: Vec::new(),
        interrupted: false,
    };
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_vec(&meta).expect("meta serialises"),
    )
    .expect("write meta");
}

/// The first Chromium on PATH, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs Chromium headless with a deadline (a browser that hangs must not hang the suite).
fn browse(chrome: &Path, profile: &Path, extra: &[&str], url: &str) -> (String, String) {
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let out_pipe = child.stdout.take().expect("stdout");
    let err_pipe = child.stderr.take().expect("stderr");
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out_pipe)), read(Box::new(err_pipe)));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match child.try_wait().expect("wait for chromium") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 90 s");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

#[test]
fn report_renders_and_loads_in_headless_chromium() {
    let tmp = TempDir::new("report-e2e");
    seed_run(&tmp.0);

    // `overbook report` re-renders from the files; the run is invalid, so exit 1.
    let dir = tmp.0.to_str().expect("utf-8 temp path");
    let out = overbook(&["report", dir]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = tmp.0.join("report.html");
    let html = std::fs::read_to_string(&report).expect("report.html written");
    assert!(html.contains("id=\"anomaly-1\""));
    assert!(
        html.contains("overbook run --design lock-only --fault db-latency --seed 42"),
        "meta.json is used"
    );
    // Self-contained: nothing to fetch, nothing to run.
    for banned in ["<script", "<link", " src=", "@import", "url("] {
        assert!(!html.contains(banned), "page contains {banned:?}");
    }
    let foreign: Vec<&str> = html
        .match_indices("http")
        .map(|(i, _)| &html[i..(i + 30).min(html.len())])
        .filter(|s| !s.starts_with("http://www.w3.org/2000/svg"))
        .collect();
    assert!(foreign.is_empty(), "external references: {foreign:?}");

    // `overbook check --report` writes the same kind of page for a foreign history.
    let out_html = tmp.0.join("check.html");
    let out = overbook(&[
        "check",
        tmp.0.join("history.jsonl").to_str().expect("utf-8"),
        "--report",
        out_html.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(std::fs::read_to_string(&out_html)
        .expect("check --report wrote")
        .contains("id=\"anomaly-1\""));
    std::fs::copy(&report, artifacts().join("report-e2e.html")).expect("keep html artifact");

    let Some(chrome) = chromium() else {
        println!("SKIP: chromium not found on PATH (apt-get install -y chromium); the page was rendered and checked, but not opened in a browser");
        return;
    };
    let url = format!("file://{}", report.display());
    let profile = tmp.0.join("profile");
    let (dom, log) = browse(&chrome, &profile, &["--dump-dom"], &url);
    assert!(
        dom.contains("id=\"anomaly-1\""),
        "the browser's DOM has the anomaly section"
    );
    assert!(dom.contains("Anomalies ("));
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR_"))
        .collect();
    assert!(
        console.is_empty(),
        "console errors while loading the report: {console:#?}"
    );

    let shot = artifacts().join("report-e2e.png");
    let _ = std::fs::remove_file(&shot);
    let (_, log) = browse(
        &chrome,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,3000",
        ],
        &url,
    );
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{log}", shot.display()));
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    assert!(
        png.len() > 50_000,
        "screenshot is not blank ({} bytes)",
        png.len()
    );
    println!("screenshot: {}", shot.display());
}

#[test]
fn store_index_lists_runs_newest_first() {
    let store = TempDir::new("report-index");
    for (test, stamp, verdict) in [
        ("lock-only-db-latency", "20261123T100000.000Z", "invalid"),
        ("db-exclusion-db-latency", "20261123T110000.000Z", "valid"),
    ] {
        let dir = store.0.join(test).join(stamp);
        std::fs::create_dir_all(&dir).expect("run dir");
        std::fs::write(dir.join("report.html"), "<html></html>").expect("report");
        std::fs::write(
            dir.join("results.json"),
            format!("{{\"validity\":\"{verdict}\",\"checks\":[]}}"),
        )
        .expect("results");
    }
    harness::store::index::write_index(&store.0).expect("index written");
    let index = std::fs::read_to_string(store.0.join("index.html")).expect("index.html");
    let newer = index
        .find("db-exclusion-db-latency/20261123T110000.000Z/report.html")
        .expect("newer run linked");
    let older = index
        .find("lock-only-db-latency/20261123T100000.000Z/report.html")
        .expect("older run linked");
    assert!(newer < older, "newest first");
    assert!(index.contains("badge invalid") && index.contains("badge valid"));
}
