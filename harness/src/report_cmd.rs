//! `overbook report RUN_DIR`: re-renders a run's report from its `history.jsonl` (and
//! `meta.json` when present), plus the store's index page and `check --report`.
//!
//! Re-rendering re-runs the checkers on the history rather than trusting a
//! `results.json` that an older overbook may have written: the page then always agrees
//! with what `overbook check` says about the same file today.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use checkers::{check_all, CheckOptions, History, Results, Validity, WarnFraction};
use reports::{render_index, render_run, RunMeta, RunSummary};

use crate::check::{exit_code, load};
use crate::cli::ReportArgs;

/// Runs `overbook report RUN_DIR`: writes `RUN_DIR/report.html` and prints its path.
/// Exit code as `overbook check`: 0 valid, 1 invalid, 2 unusable input or unknown.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let (path, validity) = render_dir(&args.dir)?;
    println!("{} ({})", path.display(), validity.as_str());
    Ok(exit_code(validity))
}

/// Re-renders the run in `dir` to `dir/report.html`; returns that path and the verdict.
pub fn render_dir(dir: &Path) -> anyhow::Result<(PathBuf, Validity)> {
    let history = load(&dir.join("history.jsonl"))?;
    let meta = read_meta(dir)?;
    let strict_lock = meta.params.get("strict-lock").is_some_and(|v| v == "true");
    let margin_warn = match meta.params.get("margin-warn") {
        None => WarnFraction::DEFAULT,
        Some(v) => v
            .parse()
            .with_context(|| format!("{}: margin-warn {v:?}", dir.join("meta.json").display()))?,
    };
    let results = check_all(
        &history,
        &CheckOptions {
            strict_lock,
            margin_warn,
        },
    );
    let out = dir.join("report.html");
    write_report(&out, &history, &results, &meta)?;
    Ok((out, results.validity))
}

/// The run's `meta.json`, or an empty [`RunMeta`] when the directory has none (a history
/// copied from elsewhere).
pub fn read_meta(dir: &Path) -> anyhow::Result<RunMeta> {
    let path = dir.join("meta.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("unusable {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunMeta::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Renders a report to `path` (used by `overbook report` and `overbook check --report`).
pub fn write_report(
    path: &Path,
    history: &History,
    results: &Results,
    meta: &RunMeta,
) -> anyhow::Result<()> {
    std::fs::write(path, render_run(history, results, meta))
        .with_context(|| format!("cannot write report {}", path.display()))
}

/// Every run in the store (`STORE/<test>/<stamp>/` holding a `report.html`), read from
/// its `meta.json` and `results.json`; a run missing either is still listed, with what
/// is known (verdict `unknown`).
pub fn summaries(store: &Path) -> std::io::Result<Vec<RunSummary>> {
    let mut runs = Vec::new();
    let Ok(tests) = std::fs::read_dir(store) else {
        return Ok(runs);
    };
    for test in tests.flatten() {
        // `latest` is a link to a run we list anyway.
        if !test.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(stamps) = std::fs::read_dir(test.path()) else {
            continue;
        };
        for stamp in stamps.flatten() {
            let dir = stamp.path();
            if !dir.join("report.html").is_file() {
                continue;
            }
            let meta = read_meta(&dir).unwrap_or_default();
            let verdict = std::fs::read(dir.join("results.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| serde_json::from_value::<Validity>(v.get("validity")?.clone()).ok())
                .unwrap_or(Validity::Unknown);
            let test_name = test.file_name().to_string_lossy().into_owned();
            let stamp_name = stamp.file_name().to_string_lossy().into_owned();
            runs.push(RunSummary {
                dir: format!("{test_name}/{stamp_name}"),
                design: if meta.design.is_empty() {
                    test_name.clone()
                } else {
                    meta.design
                },
                faults: meta.faults,
                verdict,
                time: if meta.started_at.is_empty() {
                    stamp_name.clone()
                } else {
                    meta.started_at
                },
                link: format!("{test_name}/{stamp_name}/report.html"),
            });
        }
    }
    Ok(runs)
}

/// Writes `STORE/index.html` listing every run, newest first. Written to a temporary file
/// and renamed, so a browser (or a parallel run) never sees a half-written index.
pub fn write_index(store: &Path) -> std::io::Result<()> {
    let html = render_index(&summaries(store)?);
    let tmp = store.join(format!(".index-{}.html", std::process::id()));
    std::fs::write(&tmp, html)?;
    std::fs::rename(&tmp, store.join("index.html"))
}
