//! `overbook matrix diff OLD NEW`: what changed between two matrices, cell by cell.
//!
//! A cell is a (design, fault) with all its seeds, keyed by its name (`design under
//! fault`), so a row that later gains a lock service is a new cell rather than a changed
//! one. Only cells run under the same plan are compared: a different seed range, time
//! limit, run options or expectation changes what a verdict means, so such a cell is
//! reported as not comparable, never as a regression or a fix.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reports::diff::{describe_cell, CellChange, ChangeKind, Drift, MatrixDiff, Thresholds};
use reports::matrix::Matrix;
use reports::summary::{summarize, CellSummary};

use super::PlanFile;

/// `overbook matrix diff OLD NEW`.
#[derive(Debug, clap::Args)]
pub struct MatrixDiffArgs {
    /// The earlier matrix: its matrix.json, or the directory holding it.
    pub old: PathBuf,
    /// The later matrix.
    pub new: PathBuf,
    /// Also write the diff as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the new matrix as JUnit, regressions marked, here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

use crate::store::MATRIX;

/// A matrix file that cannot be used, naming it.
#[derive(Debug, thiserror::Error)]
pub enum MatrixFileError {
    /// Not there, or not readable.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a matrix.json (truncated, or some other JSON).
    #[error("{} is not a matrix.json: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
}

/// A matrix as read from disk, with its plan when one lies beside it.
#[derive(Debug, Clone)]
pub struct LoadedMatrix {
    /// The matrix.json read.
    pub path: PathBuf,
    /// Its contents.
    pub matrix: Matrix,
    /// The plan.json beside it, if any (matrices written before plans have none).
    pub plan: Option<PlanFile>,
}

impl LoadedMatrix {
    /// How the matrix is named to people: its directory's name.
    pub fn label(&self) -> String {
        self.path
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// Reads a matrix from `path`: a matrix.json, or the directory holding one.
pub fn load(path: &Path) -> Result<LoadedMatrix, MatrixFileError> {
    let file = if path.is_dir() {
        path.join(MATRIX)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).map_err(|source| MatrixFileError::Unreadable {
        path: file.clone(),
        source,
    })?;
    let matrix: Matrix =
        serde_json::from_slice(&bytes).map_err(|source| MatrixFileError::Corrupt {
            path: file.clone(),
            source,
        })?;
    // A plan that is missing or unreadable only costs the plan check, which says so.
    let plan = file
        .parent()
        .and_then(|d| std::fs::read(d.join(super::PLAN)).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(LoadedMatrix {
        path: file,
        matrix,
        plan,
    })
}

/// Compares `new` against `old`.
pub fn diff(old: &LoadedMatrix, new: &LoadedMatrix, t: Thresholds) -> MatrixDiff {
    let (plan_notes, global) = compare_plans(old, new);
    let olds = summarize(&old.matrix);
    let news = summarize(&new.matrix);
    let mut cells: Vec<CellChange> = Vec::new();
    for n in &news {
        let Some(o) = olds.iter().find(|o| o.key == n.key) else {
            cells.push(change(n.key.clone(), ChangeKind::Appeared, None, Some(n)));
            continue;
        };
        let reason = global.clone().or_else(|| cell_reason(o, n));
        let kind = match (&reason, o.status.passes(), n.status.passes()) {
            (Some(_), _, _) => ChangeKind::NotComparable,
            (None, true, false) => ChangeKind::Regressed,
            (None, false, true) => ChangeKind::Fixed,
            (None, false, false) => ChangeKind::StillFailing,
            (None, true, true) => ChangeKind::StillPassing,
        };
        let mut c = change(n.key.clone(), kind, Some(o), Some(n));
        if reason.is_none() {
            c.drift = drift(o, n, &t);
        }
        c.reason = reason;
        cells.push(c);
    }
    for o in &olds {
        if !news.iter().any(|n| n.key == o.key) {
            cells.push(change(
                o.key.clone(),
                ChangeKind::Disappeared,
                Some(o),
                None,
            ));
        }
    }
    // Worst first; within a kind, the page's order.
    cells.sort_by_key(|c| c.kind);
    MatrixDiff {
        old: old.label(),
        new: new.label(),
        thresholds: t,
        plan_notes,
        cells,
    }
}

fn change(
    key: String,
    kind: ChangeKind,
    old: Option<&CellSummary>,
    new: Option<&CellSummary>,
) -> CellChange {
    CellChange {
        key,
        kind,
        old: old.cloned(),
        new: new.cloned(),
        drift: Vec::new(),
        reason: None,
    }
}

/// What differs between the two plans: notes for the page, and, when something that
/// applies to every cell differs, the reason no cell can be compared.
fn compare_plans(old: &LoadedMatrix, new: &LoadedMatrix) -> (Vec<String>, Option<String>) {
    let (Some(a), Some(b)) = (&old.plan, &new.plan) else {
        let missing: Vec<String> = [old, new]
            .iter()
            .filter(|m| m.plan.is_none())
            .map(|m| m.path.display().to_string())
            .collect();
        return (
            vec![format!(
                "no readable {} beside {}: cells compared by their seeds and expectations only",
                super::PLAN,
                missing.join(" and ")
            )],
            None,
        );
    };
    let mut notes = Vec::new();
    let mut global = Vec::new();
    if a.designs != b.designs {
        notes.push(format!(
            "designs differ: {} before, {} now",
            a.designs.join(","),
            b.designs.join(",")
        ));
    }
    if a.faults != b.faults {
        notes.push(format!(
            "faults differ: {} before, {} now",
            a.faults.join(","),
            b.faults.join(",")
        ));
    }
    if (a.seed, a.seeds) != (b.seed, b.seeds) {
        global.push(format!(
            "seeds {}..{} before, {}..{} now",
            a.seed,
            a.seed + a.seeds.saturating_sub(1),
            b.seed,
            b.seed + b.seeds.saturating_sub(1)
        ));
    }
    if a.time_limit_ms != b.time_limit_ms {
        global.push(format!(
            "time limit {} ms before, {} ms now",
            a.time_limit_ms, b.time_limit_ms
        ));
    }
    if a.run_args != b.run_args {
        global.push(format!(
            "run options `{}` before, `{}` now",
            a.run_args.join(" "),
            b.run_args.join(" ")
        ));
    }
    if global.is_empty() {
        return (notes, None);
    }
    let reason = format!("the plans differ ({})", global.join("; "));
    notes.push(format!("{reason}: no cell is comparable"));
    (notes, Some(reason))
}

/// Why one cell present in both is not comparable, when it is not.
fn cell_reason(o: &CellSummary, n: &CellSummary) -> Option<String> {
    if o.expected != n.expected {
        return Some(format!(
            "expected {} before, {} now",
            o.expected, n.expected
        ));
    }
    let (mut a, mut b) = (o.seeds.clone(), n.seeds.clone());
    a.sort_unstable();
    b.sort_unstable();
    if a != b {
        return Some(format!("seeds {a:?} before, {b:?} now"));
    }
    None
}

/// The measures of a comparable cell that moved beyond their noise thresholds.
fn drift(o: &CellSummary, n: &CellSummary, t: &Thresholds) -> Vec<Drift> {
    let mut out = Vec::new();
    let pct = |a: f64, b: f64| (b - a) / a * 100.0;
    if let (Some(a), Some(b)) = (o.first_anomaly_ms, n.first_anomaly_ms) {
        let (a, b) = (a as f64, b as f64);
        if (b - a).abs() > t.first_anomaly_ms
            && (a == 0.0 || (b - a).abs() > t.first_anomaly_rel * a)
        {
            out.push(Drift {
                measure: "time to first anomaly".into(),
                old: a,
                new: b,
                text: format!(
                    "time to first anomaly {:.1} s -> {:.1} s{}",
                    a / 1000.0,
                    b / 1000.0,
                    if a > 0.0 {
                        format!(" ({:+.0}%)", pct(a, b))
                    } else {
                        String::new()
                    }
                ),
            });
        }
    }
    if let (Some(a), Some(b)) = (o.throughput, n.throughput) {
        if a > 0.0 && (b - a).abs() > t.throughput_rel * a {
            out.push(Drift {
                measure: "throughput".into(),
                old: a,
                new: b,
                text: format!(
                    "throughput {a:.1} -> {b:.1} confirmed/s ({:+.0}%)",
                    pct(a, b)
                ),
            });
        }
    }
    if let (Some(a), Some(b)) = (o.margin_max, n.margin_max) {
        if b - a >= t.margin_rise {
            out.push(Drift {
                measure: "lease margin".into(),
                old: a,
                new: b,
                text: format!(
                    "worst lease margin crept up {:.0}% -> {:.0}% of the lease",
                    a * 100.0,
                    b * 100.0
                ),
            });
        }
    }
    out
}

/// Whether the diff carries news of a failure: a regression, or a new cell that fails
/// (it has no night on which it passed).
pub fn fails(d: &MatrixDiff) -> bool {
    d.regressed()
        || d.of_kind(ChangeKind::Appeared)
            .any(|c| c.new.as_ref().is_some_and(|s| !s.status.passes()))
}

/// Prints the diff for a terminal or CI log.
pub fn print(d: &MatrixDiff) {
    println!("diff against {}: {}", d.old, d.counts());
    for note in &d.plan_notes {
        println!("  note: {}", checkers::text::for_terminal(note));
    }
    for c in &d.cells {
        if c.kind == ChangeKind::StillPassing && c.drift.is_empty() {
            continue;
        }
        let side = |s: &Option<CellSummary>| s.as_ref().map_or("-".to_string(), describe_cell);
        println!(
            "  {:<14} {}: {} -> {}{}",
            c.kind.as_str(),
            checkers::text::for_terminal(&c.key),
            side(&c.old),
            side(&c.new),
            c.reason
                .as_deref()
                .map(|r| format!(" [{}]", checkers::text::for_terminal(r)))
                .unwrap_or_default()
        );
        for d in &c.drift {
            println!("      drift: {}", d.text);
        }
    }
}

/// Runs `overbook matrix diff OLD NEW`: exit 1 on a regression (or a new cell that
/// fails), 0 otherwise, 2 when either matrix cannot be read.
pub fn run(args: &MatrixDiffArgs) -> anyhow::Result<ExitCode> {
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    let d = diff(&old, &new, Thresholds::DEFAULT);
    print(&d);
    if let Some(path) = &args.json {
        crate::store::write_file(path, serde_json::to_vec_pretty(&d)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        crate::store::write_file(path, super::junit::junit_xml(&new.matrix, Some(&d)))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(if fails(&d) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::Validity;
    use reports::matrix::{CellMeasures, MatrixCell};

    fn cell(design: &str, fault: &str, seed: u64, met: bool, m: CellMeasures) -> MatrixCell {
        let verdict = if met {
            Validity::Invalid
        } else {
            Validity::Valid
        };
        MatrixCell {
            measures: m,
            ..MatrixCell::bare(design, fault, seed, "invalid", Some(verdict), met)
        }
    }

    fn loaded(cells: Vec<MatrixCell>, plan: Option<PlanFile>) -> LoadedMatrix {
        LoadedMatrix {
            path: PathBuf::from("/s/matrix/night/matrix.json"),
            matrix: Matrix {
                started_at: "t".into(),
                shards: vec!["1/1".into()],
                designs: vec!["a".into(), "b".into(), "c".into()],
                faults: vec!["f".into()],
                cells,
            },
            plan,
        }
    }

    fn plan(seeds: u64) -> PlanFile {
        PlanFile {
            designs: vec![],
            faults: vec![],
            seeds,
            seed: 1,
            time_limit_ms: 1000,
            expect: vec![],
            run_args: vec![],
            shard: "1/1".into(),
            cells: 0,
        }
    }

    #[test]
    fn cells_regress_fix_appear_vanish_and_drift() {
        let m = |first: u64, margin: f64| CellMeasures {
            first_anomaly_ms: Some(first),
            throughput: Some(100.0),
            margin_max: Some(margin),
        };
        let old = loaded(
            vec![
                cell("a", "f", 1, true, m(1000, 0.5)),
                cell("b", "f", 1, false, m(1000, 0.5)),
                cell("gone", "f", 1, true, m(1000, 0.5)),
                cell("c", "f", 1, true, m(1000, 0.5)),
            ],
            Some(plan(1)),
        );
        let new = loaded(
            vec![
                cell("a", "f", 1, false, m(1000, 0.5)),
                cell("b", "f", 1, true, m(1000, 0.5)),
                cell("new", "f", 1, true, m(1000, 0.5)),
                // Caught 3 s later, margin up 30 points: drift, still passing.
                cell("c", "f", 1, true, m(4000, 0.8)),
            ],
            Some(plan(1)),
        );
        let d = diff(&old, &new, Thresholds::DEFAULT);
        let kind = |k: &str| d.cells.iter().find(|c| c.key == k).unwrap().kind;
        assert_eq!(kind("a under f"), ChangeKind::Regressed);
        assert_eq!(kind("b under f"), ChangeKind::Fixed);
        assert_eq!(kind("new under f"), ChangeKind::Appeared);
        assert_eq!(kind("gone under f"), ChangeKind::Disappeared);
        assert_eq!(kind("c under f"), ChangeKind::StillPassing);
        let c = d.cells.iter().find(|c| c.key == "c under f").unwrap();
        let measures: Vec<&str> = c.drift.iter().map(|d| d.measure.as_str()).collect();
        assert_eq!(measures, ["time to first anomaly", "lease margin"]);
        assert!(fails(&d));
        assert_eq!(d.cells[0].kind, ChangeKind::Regressed, "worst first");
    }

    #[test]
    fn different_plans_make_cells_not_comparable_not_regressions() {
        let old = loaded(
            vec![cell("a", "f", 1, true, CellMeasures::default())],
            Some(plan(1)),
        );
        let new = loaded(
            vec![cell("a", "f", 1, false, CellMeasures::default())],
            Some(plan(2)),
        );
        let d = diff(&old, &new, Thresholds::DEFAULT);
        assert_eq!(d.cells[0].kind, ChangeKind::NotComparable);
        assert!(d.cells[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("seeds 1..1 before, 1..2 now"));
        assert!(!fails(&d));
        // A changed expectation makes that one cell not comparable.
        let mut changed = cell("a", "f", 1, false, CellMeasures::default());
        changed.expected = "valid".into();
        let new = loaded(vec![changed], Some(plan(1)));
        let d = diff(&old, &new, Thresholds::DEFAULT);
        assert_eq!(d.cells[0].kind, ChangeKind::NotComparable);
        // Small drifts are noise.
        let small = |first| CellMeasures {
            first_anomaly_ms: Some(first),
            throughput: Some(100.0),
            margin_max: Some(0.5),
        };
        let old = loaded(vec![cell("a", "f", 1, true, small(1000))], Some(plan(1)));
        let new = loaded(vec![cell("a", "f", 1, true, small(1900))], Some(plan(1)));
        assert!(diff(&old, &new, Thresholds::DEFAULT).cells[0]
            .drift
            .is_empty());
    }
}
