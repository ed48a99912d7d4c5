//! `overbook report RUN_DIR`: re-renders a run's report from its `history.jsonl` (and
//! `meta.json` when present).
//!
//! Re-rendering re-runs the checkers on the history rather than trusting a
//! `results.json` that an older overbook may have written: the page then always agrees
//! with what `overbook check` says about the same file today.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use checkers::{check_all, CheckOptions, Validity, WarnFraction};

use crate::cli::ReportArgs;
use crate::exit_code;
use crate::store::{self, load_history, read_meta, write_report};

/// Runs `overbook report RUN_DIR`: writes `RUN_DIR/report.html` and prints its path.
/// Exit code as `overbook check`: 0 valid, 1 invalid, 2 unusable input or unknown.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let (path, validity) = render_dir(&args.dir)?;
    println!("{} ({})", path.display(), validity.as_str());
    Ok(exit_code(validity))
}

/// Re-renders the run in `dir` to `dir/report.html`; returns that path and the verdict.
pub fn render_dir(dir: &Path) -> anyhow::Result<(PathBuf, Validity)> {
    let history = load_history(&dir.join(store::HISTORY))?;
    let meta = read_meta(dir)?;
    let strict_lock = meta.params.get("strict-lock").is_some_and(|v| v == "true");
    let margin_warn = match meta.params.get("margin-warn") {
        None => WarnFraction::DEFAULT,
        Some(v) => v
            .parse()
            .with_context(|| format!("{}: margin-warn {v:?}", dir.join(store::META).display()))?,
    };
    let results = check_all(
        &history,
        &CheckOptions {
            strict_lock,
            margin_warn,
            guard: None,
        },
    );
    let out = dir.join(store::REPORT);
    write_report(&out, &history, &results, &meta)?;
    Ok((out, results.validity))
}
