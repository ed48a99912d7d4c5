//! The nightly additions to a matrix run or merge: `--baseline OLD` (what changed since
//! last night, first on the page, marked in JUnit, and the exit status), the per-cell
//! detection rates of a repeated matrix, and the plan of a merged matrix (so tomorrow's
//! diff can tell whether tonight's cells are comparable).

use std::path::Path;
use std::process::ExitCode;

use reports::diff::{MatrixDiff, Thresholds};
use reports::matrix::Matrix;
use reports::summary::{summarize, CellStatus};

use super::diff::{self, LoadedMatrix};
use super::{PlanFile, PLAN};

/// Reads `--baseline` before anything runs: a missing or corrupt baseline is exit 2
/// now, not after an hour of cells.
pub fn load_baseline(path: Option<&Path>) -> anyhow::Result<Option<LoadedMatrix>> {
    Ok(match path {
        None => None,
        Some(p) => Some(diff::load(p).map_err(|e| anyhow::anyhow!("--baseline: {e}"))?),
    })
}

/// The diff of the matrix just written in `out_dir` against the baseline.
pub fn against(baseline: &LoadedMatrix, matrix: &Matrix, out_dir: &Path) -> MatrixDiff {
    let new = LoadedMatrix {
        path: out_dir.join(crate::store::MATRIX),
        matrix: matrix.clone(),
        plan: std::fs::read(out_dir.join(PLAN))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()),
    };
    diff::diff(baseline, &new, Thresholds::DEFAULT)
}

/// Prints the diff, writes it as `diff.json` beside the matrix, and returns the exit
/// status: 1 on a regression (or a new cell that fails), 0 otherwise. Cells that failed
/// last night too are printed above, but do not fail the night again.
pub fn finish(d: &MatrixDiff, out_dir: &Path) -> anyhow::Result<ExitCode> {
    diff::print(d);
    let path = out_dir.join("diff.json");
    crate::store::write_file(&path, serde_json::to_vec_pretty(d)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(if diff::fails(d) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// With several seeds per cell (`--repeat K`): each cell's detection rate with its 95%
/// interval, and the flaky cells named as such.
pub fn print_rates(m: &Matrix) {
    let cells = summarize(m);
    if cells.iter().all(|c| c.runs < 2) {
        return;
    }
    println!("detection rate per cell (95% Wilson interval):");
    for c in &cells {
        let mark = match c.status {
            CellStatus::Flaky => format!("FLAKY: expectation held in {}/{} runs", c.met, c.runs),
            s => s.as_str().to_string(),
        };
        println!(
            "  {}: expected {}, caught {}; {mark}",
            checkers::text::for_terminal(&c.key),
            c.expected,
            c.detection.describe()
        );
    }
}

/// Writes the merged matrix's `plan.json`: the shards' common plan, now whole. Only when
/// every shard had a plan (they were checked to agree); otherwise none is written and a
/// later diff says it compared without one.
pub fn write_merged_plan(dirs: &[std::path::PathBuf], matrix: &Matrix, out_dir: &Path) {
    let plans: Vec<Option<PlanFile>> = dirs
        .iter()
        .map(|d| {
            std::fs::read(d.join(PLAN))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        })
        .collect();
    let Some(Some(first)) = plans.first() else {
        return;
    };
    if plans.iter().any(Option::is_none) {
        return;
    }
    let plan = PlanFile {
        shard: "1/1".to_string(),
        cells: matrix.cells.len(),
        ..first.clone()
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&plan) {
        let _ = crate::store::write_file(out_dir.join(PLAN), bytes);
    }
}
