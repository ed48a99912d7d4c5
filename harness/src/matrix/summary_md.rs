//! `--summary-md FILE` on `overbook run` and `overbook matrix`: gathers what the markdown
//! summary shows (the results, the run's history for the worst anomaly's caption, the
//! matrix's diff) and appends it to FILE, links relative to FILE's directory. Appending
//! lets several runs of one CI step share `$GITHUB_STEP_SUMMARY`. The rendering is
//! [`reports::summary_md`]; this module only reads the store and writes the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use checkers::Results;
use reports::diff::MatrixDiff;
use reports::matrix::Matrix;
use reports::summary_md::{self, RunLinks, WorstCell};

use super::{normalize, relative_path};

/// Appends the summary of the run stored in `run_dir` (whose verdict is `results`).
pub fn write_run(file: &Path, run_dir: &Path, results: &Results) -> anyhow::Result<()> {
    let history = crate::store::load_history(&run_dir.join("history.jsonl"))?;
    let meta = crate::store::read_meta(run_dir)?;
    let worst = summary_md::worst_anomaly(&history, results);
    let from = summary_dir(file)?;
    let run_dir = absolute(run_dir)?;
    let link = |name: &str| link_from(&from, &run_dir.join(name));
    let links = RunLinks {
        report: link("report.html"),
        history: link("history.jsonl"),
    };
    let text = summary_md::run_summary_md(results, &meta, worst.as_ref(), &links);
    append(file, &text)
}

/// Appends the summary of `matrix` (written to `out_dir`, its cells' reports relative
/// to `store`), with the baseline's `diff` when there is one. The worst cell's run is
/// read back for its business headline and worst anomaly.
pub fn write_matrix(
    file: &Path,
    matrix: &Matrix,
    diff: Option<&MatrixDiff>,
    store: &Path,
    out_dir: &Path,
) -> anyhow::Result<()> {
    let from = summary_dir(file)?;
    let store = absolute(store)?;
    let worst = summary_md::worst_cell(matrix).map(|index| {
        let report = &matrix.cells[index].report;
        let run = (!report.is_empty())
            .then(|| store.join(report))
            .and_then(|r| r.parent().map(Path::to_path_buf));
        let (harm, anomaly) = run.map(|dir| cell_findings(&dir)).unwrap_or_default();
        WorstCell {
            index,
            harm,
            anomaly,
        }
    });
    let page = link_from(&from, &absolute(out_dir)?.join("matrix.html"));
    let report_link = |report: &str| link_from(&from, &store.join(report));
    let text = summary_md::matrix_summary_md(matrix, diff, worst.as_ref(), &page, &report_link);
    append(file, &text)
}

/// The business headline and worst anomaly of the run in `dir`, from its stored results
/// and history (a run that left neither, e.g. a harness error, has none).
fn cell_findings(dir: &Path) -> (Option<String>, Option<summary_md::WorstAnomaly>) {
    let Ok(bytes) = std::fs::read(dir.join("results.json")) else {
        return (None, None);
    };
    let Ok(results) = serde_json::from_slice::<Results>(&bytes) else {
        return (None, None);
    };
    let harm = checkers::harm::headline(&results);
    let anomaly = crate::store::load_history(&dir.join("history.jsonl"))
        .ok()
        .and_then(|h| summary_md::worst_anomaly(&h, &results));
    (harm, anomaly)
}

/// The summary file's directory, absolute (created if missing).
fn summary_dir(file: &Path) -> anyhow::Result<PathBuf> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("--summary-md: cannot create {}", dir.display()))?;
    absolute(&dir)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(normalize(&cwd.join(p)))
}

/// `to` as a link from directory `from` (both absolute), with `/` separators.
fn link_from(from: &Path, to: &Path) -> String {
    relative_path(from, &normalize(to))
        .to_string_lossy()
        .replace('\\', "/")
}

fn append(file: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("--summary-md: cannot open {}", file.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .with_context(|| format!("--summary-md: cannot write {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_climb_from_the_summary_to_the_run() {
        assert_eq!(
            link_from(Path::new("/ci/out"), Path::new("/ci/store/a/b/report.html")),
            "../store/a/b/report.html"
        );
        assert_eq!(
            link_from(Path::new("/ci"), Path::new("/ci/./store/report.html")),
            "store/report.html"
        );
    }
}
