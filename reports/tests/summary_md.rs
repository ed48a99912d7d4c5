//! Golden files for the markdown summary (`--summary-md`): a valid run, an invalid run
//! (the seed race, judged by the real checkers) and a matrix diffed against its
//! baseline. `UPDATE_GOLDEN=1 cargo test -p reports --test summary_md` rewrites them;
//! review the diff before committing.

use checkers::{check_all, CheckOptions, Validity};
use fixtures::seed_race;
use reports::diff::{CellChange, ChangeKind, Drift, MatrixDiff, Thresholds};
use reports::matrix::{Matrix, MatrixCell};
use reports::summary::summarize_cell;
use reports::summary_md::{self, RunLinks, WorstCell};
use reports::RunMeta;

/// Compares `actual` with `tests/golden/NAME`, or rewrites it under `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} differs (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

fn meta(design: &str) -> RunMeta {
    RunMeta {
        design: design.into(),
        faults: vec!["db-latency".into()],
        seed: Some(7),
        duration_ms: 3400,
        command: format!("overbook run --design {design} --fault db-latency --seed 7"),
        ..RunMeta::default()
    }
}

fn links() -> RunLinks {
    RunLinks {
        report: "store/lock-only-db-latency/20261208T000000.000Z/report.html".into(),
        history: "store/lock-only-db-latency/20261208T000000.000Z/history.jsonl".into(),
    }
}

#[test]
fn an_invalid_run_says_what_it_cost_the_guests_and_shows_the_race() {
    let h = seed_race(false).history();
    let results = check_all(&h, &CheckOptions::default());
    assert_eq!(results.validity, Validity::Invalid);
    let worst = summary_md::worst_anomaly(&h, &results).expect("an anomaly");
    assert_eq!(worst.checker, "no-double-booking");
    let md = summary_md::run_summary_md(&results, &meta("lock-only"), Some(&worst), &links());
    assert!(
        md.contains("**2 room-nights were confirmed to two guests.**"),
        "{md}"
    );
    golden("run-invalid.md", &md);
}

#[test]
fn a_valid_run_where_the_lock_failed_says_the_database_held() {
    // The race's loser hit the exclusion constraint: a database guards the invariant.
    let h = seed_race(true).history();
    let opts = CheckOptions {
        guard: Some(checkers::Guard::Database),
        ..CheckOptions::default()
    };
    let results = check_all(&h, &opts);
    assert_eq!(results.validity, Validity::Valid);
    let worst = summary_md::worst_anomaly(&h, &results);
    let md = summary_md::run_summary_md(&results, &meta("db-exclusion"), worst.as_ref(), &links());
    assert!(md.starts_with("## overbook: VALID"), "{md}");
    assert!(!md.contains("confirmed to two guests"), "{md}");
    assert!(md.contains("the database held"), "{md}");
    golden("run-valid.md", &md);
}

fn cell(design: &str, fault: &str, expected: &str, verdict: Validity, met: bool) -> MatrixCell {
    MatrixCell {
        summary: match verdict {
            Validity::Invalid => {
                "1 room-night was confirmed to two guests. no-double-booking: 1 anomalies".into()
            }
            _ => "no anomalies; valid".into(),
        },
        report: format!("{design}-{fault}/20261208T000000.000Z/report.html"),
        ..MatrixCell::bare(design, fault, 1, expected, Some(verdict), met)
    }
}

#[test]
fn a_matrix_against_its_baseline_leads_with_the_regression() {
    // (design, fault, verdict last night, verdict tonight); a safe design expects valid.
    let rows = [
        (
            "db-unique",
            "kill-db",
            Some(Validity::Valid),
            Validity::Invalid,
        ),
        (
            "lock-only",
            "slow-writes",
            Some(Validity::Invalid),
            Validity::Invalid,
        ),
        (
            "db-exclusion",
            "pause-db",
            Some(Validity::Invalid),
            Validity::Valid,
        ),
        ("db-unique", "pause-db | <b>", None, Validity::Valid),
    ];
    let expected = |design: &str| {
        if design == "lock-only" {
            Validity::Invalid
        } else {
            Validity::Valid
        }
    };
    let at = |design: &str, fault: &str, v: Validity| {
        let want = expected(design);
        cell(design, fault, want.as_str(), v, v == want)
    };
    let old: Vec<MatrixCell> = rows
        .iter()
        .filter_map(|(d, f, was, _)| was.map(|v| at(d, f, v)))
        .collect();
    let new: Vec<MatrixCell> = rows.iter().map(|(d, f, _, now)| at(d, f, *now)).collect();
    let change = |i: usize, kind| CellChange {
        key: format!("{} under {}", new[i].design, new[i].fault),
        kind,
        old: old.get(i).map(|c| summarize_cell(&[c])),
        new: Some(summarize_cell(&[&new[i]])),
        drift: Vec::new(),
        reason: None,
    };
    let mut still = change(1, ChangeKind::StillPassing);
    still.drift.push(Drift {
        measure: "time to first anomaly".into(),
        old: 1200.0,
        new: 4800.0,
        text: "time to first anomaly 1.2 s -> 4.8 s (+300%)".into(),
    });
    let diff = MatrixDiff {
        old: "20261207T000000.000Z".into(),
        new: "20261208T000000.000Z".into(),
        thresholds: Thresholds::DEFAULT,
        plan_notes: Vec::new(),
        cells: vec![
            change(0, ChangeKind::Regressed),
            change(2, ChangeKind::Fixed),
            CellChange {
                old: None,
                ..change(3, ChangeKind::Appeared)
            },
            still,
        ],
    };
    let matrix = Matrix {
        started_at: "20261208T000000.000Z".into(),
        shards: vec!["1/1".into()],
        designs: vec![
            "db-unique".into(),
            "lock-only".into(),
            "db-exclusion".into(),
        ],
        faults: vec!["kill-db".into(), "slow-writes".into(), "pause-db".into()],
        cells: new.clone(),
    };
    assert_eq!(
        summary_md::worst_cell(&matrix),
        Some(0),
        "the broken safe design"
    );
    let h = seed_race(false).history();
    let results = check_all(&h, &CheckOptions::default());
    let worst = WorstCell {
        index: 0,
        harm: checkers::harm::headline(&results),
        anomaly: summary_md::worst_anomaly(&h, &results),
    };
    let md = summary_md::matrix_summary_md(
        &matrix,
        Some(&diff),
        Some(&worst),
        "store/matrix/20261208T000000.000Z/matrix.html",
        &|report| format!("store/{report}"),
    );
    assert!(
        md.starts_with("## overbook matrix: REGRESSED (3 of 4 cells met"),
        "{md}"
    );
    assert!(
        md.contains("&lt;b&gt;"),
        "a hostile cell name stays text: {md}"
    );
    golden("matrix-diff.md", &md);
}
