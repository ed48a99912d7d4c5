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
        // The invalid run's checker counted its harm: the index says it in words.
        let checks = if verdict == "invalid" {
            r#"[{"checker":"no-double-booking","validity":"invalid","summary":"","harm":{"oversold":[{"capacity":1,"guests":2,"room_nights":3}]}}]"#
        } else {
            "[]"
        };
        std::fs::write(
            dir.join("results.json"),
            format!("{{\"validity\":\"{verdict}\",\"checks\":{checks}}}"),
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
    assert!(index.contains("<td>3 room-nights were confirmed to two guests</td>"));
}

/// Measures a page's layout in the browser at 1280 px: a copy of the page gets a
/// script (the page itself has none) that reports, into the DOM, whether the document
/// scrolls sideways (it must not: wide tables scroll inside their own container) and
/// which text boxes overlap. Returns the problems found.
fn layout_problems(chrome: &Path, profile: &Path, page: &Path) -> Vec<String> {
    const PROBE: &str = r#"<script>
(function () {
  var problems = [];
  var doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) {
    problems.push("the page scrolls sideways: " + doc.scrollWidth + " px wide in " + window.innerWidth);
  }
  // Every line box of text outside SVG; two boxes of different text nodes overlap
  // when they share more than a pixel each way.
  var boxes = [];
  var walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    var n = walk.currentNode;
    if (!n.textContent.trim() || n.parentElement.closest("svg, script")) continue;
    var r = document.createRange();
    r.selectNodeContents(n);
    var rects = r.getClientRects();
    for (var i = 0; i < rects.length; i++) {
      var b = rects[i];
      if (b.width > 0 && b.height > 0) boxes.push({n: n, b: b});
    }
  }
  boxes.sort(function (x, y) { return x.b.top - y.b.top; });
  for (var i = 0; i < boxes.length && problems.length < 10; i++) {
    for (var j = i + 1; j < boxes.length && boxes[j].b.top < boxes[i].b.bottom - 1; j++) {
      var a = boxes[i], c = boxes[j];
      if (a.n === c.n) continue;
      var w = Math.min(a.b.right, c.b.right) - Math.max(a.b.left, c.b.left);
      var h = Math.min(a.b.bottom, c.b.bottom) - Math.max(a.b.top, c.b.top);
      if (w > 1 && h > 1) {
        problems.push("text overlaps: '" + a.n.textContent.trim().slice(0, 30) + "' and '" + c.n.textContent.trim().slice(0, 30) + "'");
      }
    }
  }
  var out = document.createElement("pre");
  out.id = "layout-probe";
  out.textContent = JSON.stringify(problems);
  document.body.appendChild(out);
})();
</script>"#;
    let html = std::fs::read_to_string(page).expect("page");
    let probed = page.with_extension("probe.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}</body>"))).expect("probe");
    let url = format!("file://{}", probed.display());
    let (dom, log) = browse(
        chrome,
        profile,
        &["--dump-dom", "--window-size=1280,900"],
        &url,
    );
    let start = dom
        .find("<pre id=\"layout-probe\">")
        .unwrap_or_else(|| panic!("the probe did not run on {}: {log}", page.display()))
        + "<pre id=\"layout-probe\">".len();
    let json = &dom[start..start + dom[start..].find("</pre>").expect("probe end")];
    let json = json
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let problems: Vec<String> = serde_json::from_str(&json).expect("probe JSON");
    if !problems.is_empty() {
        // Keep what the browser saw, for whoever reads the failure.
        let shot = artifacts().join(format!(
            "{}.png",
            page.file_stem().unwrap().to_string_lossy()
        ));
        browse(
            chrome,
            profile,
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1280,900",
            ],
            &format!("file://{}", page.display()),
        );
    }
    problems
}

/// Issue 28: every page kind fits a 1280 px window (wide tables scroll inside their own
/// container) and no text overlaps other text: the run report, a matrix wider than the
/// window (12 designs x 11 faults: scrolled) and one of 3 designs under 18 faults
/// (transposed), a matrix with its diff against a baseline, the trend page and the
/// store index.
#[test]
fn every_page_kind_fits_1280_px_without_overlapping_text() {
    use reports::matrix::{render_matrix, Matrix, MatrixCell};
    let tmp = TempDir::new("report-layout");
    seed_run(&tmp.0);
    let out = overbook(&["report", tmp.0.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let matrix = |designs: usize, faults: usize| {
        let designs: Vec<String> = (0..designs).map(|i| format!("design-{i}")).collect();
        let faults: Vec<String> = (0..faults).map(|i| format!("fault-number-{i}")).collect();
        let mut cells = Vec::new();
        for d in &designs {
            for f in &faults {
                let mut c =
                    MatrixCell::bare(d, f, 7, "invalid", Some(checkers::Validity::Invalid), true);
                c.report = format!("{d}/{f}/report.html");
                cells.push(c);
            }
        }
        Matrix {
            started_at: "20261208T000000Z".into(),
            shards: vec!["1/1".into()],
            designs,
            faults,
            cells,
        }
    };
    let mut pages = vec![tmp.0.join("report.html")];
    for (name, m) in [
        ("matrix-wide", matrix(12, 11)),
        ("matrix-tall", matrix(3, 18)),
    ] {
        let p = tmp.0.join(format!("{name}.html"));
        std::fs::write(&p, render_matrix(&m, "../../")).expect("matrix page");
        pages.push(p);
    }
    // The diff page: tonight's wide matrix against a night where every canary missed.
    let loaded = |m: Matrix, night: &str| harness::matrix::diff::LoadedMatrix {
        path: tmp.0.join(night).join("matrix.json"),
        matrix: m,
        plan: None,
    };
    let mut missed = matrix(12, 11);
    for c in &mut missed.cells {
        c.verdict = Some(checkers::Validity::Valid);
        c.met = false;
    }
    let d = harness::matrix::diff::diff(
        &loaded(missed, "20261207T021700Z"),
        &loaded(matrix(12, 11), "20261208T021700Z"),
        reports::diff::Thresholds::DEFAULT,
    );
    let p = tmp.0.join("matrix-diff.html");
    std::fs::write(
        &p,
        reports::matrix::render_matrix_page(&matrix(12, 11), "../../", Some(&d)),
    )
    .expect("diff page");
    pages.push(p);
    let nights: Vec<reports::trend::Night> = (0..14)
        .map(|i| reports::trend::Night {
            label: format!("202612{:02}T021700Z-merged", i + 1),
            matrix: matrix(2, 6),
        })
        .collect();
    let trend = tmp.0.join("trend.html");
    std::fs::write(&trend, reports::trend::render_trend(&nights, "../")).expect("trend");
    pages.push(trend);
    let runs: Vec<reports::RunSummary> = (0..5)
        .map(|i| reports::RunSummary {
            dir: format!("2026120{i}T101500.000Z"),
            design: "lock-only".into(),
            faults: vec!["db-latency".into(), "pause-redis".into()],
            verdict: checkers::Validity::Invalid,
            time: format!("2026120{i}T101500.000Z"),
            link: format!("lock-only/2026120{i}/report.html"),
            harm: Some("17 room-nights were confirmed to two guests and 3 to three".into()),
        })
        .collect();
    let index = tmp.0.join("index.html");
    std::fs::write(&index, reports::render_index(&runs)).expect("index");
    pages.push(index);

    let Some(chrome) = chromium() else {
        println!("SKIP: chromium not found on PATH; the pages were rendered, not measured");
        return;
    };
    let profile = tmp.0.join("profile");
    let mut failures = Vec::new();
    for page in &pages {
        for p in layout_problems(&chrome, &profile, page) {
            failures.push(format!("{}: {p}", page.display()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
