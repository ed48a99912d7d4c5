//! The store's index page: every run under `STORE/<test>/<stamp>/`, newest first.

use std::path::Path;

use checkers::Validity;
use reports::{render_index, RunSummary};

use super::StoreError;

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
            if !dir.join(super::REPORT).is_file() {
                continue;
            }
            let meta = super::read_meta(&dir).unwrap_or_default();
            let results = std::fs::read(dir.join(super::RESULTS))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let verdict = results
                .as_ref()
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
                harm: results.as_ref().and_then(harm_of),
            });
        }
    }
    Ok(runs)
}

/// The business headline of a run from its results.json: each check's `harm` added up
/// and worded by the one function every summary uses.
fn harm_of(results: &serde_json::Value) -> Option<String> {
    let mut total = checkers::Harm::default();
    for check in results.get("checks")?.as_array()? {
        if let Some(h) = check.get("harm") {
            total.add(&serde_json::from_value(h.clone()).ok()?);
        }
    }
    total.sentence()
}

/// Writes `STORE/index.html` listing every run, newest first. Written to a temporary file
/// and renamed, so a browser (or a parallel run) never sees a half-written index.
/// On failure the temporary file is removed and the error names the path.
pub fn write_index(store: &Path) -> Result<(), StoreError> {
    let html = render_index(&summaries(store).map_err(|e| StoreError::at(store, e))?);
    super::write_file(store.join(super::INDEX), html.as_bytes())
}
