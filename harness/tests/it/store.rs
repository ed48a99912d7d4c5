//! The store's bookkeeping (latest, index) never costs a run its verdict (issue 13).

use crate::support::*;

// ---- 9. the store's bookkeeping never costs a verdict --------------------------------

#[test]
fn a_store_whose_latest_and_index_are_directories_still_gets_the_verdict() {
    let store = TempDir::new("store-dirs");
    std::fs::create_dir_all(store.path("latest/x")).unwrap();
    std::fs::create_dir_all(store.path("index.html/x")).unwrap();
    let out = overbook(&[
        "run",
        "--design",
        "db-unique",
        "--fault",
        "none",
        "--concurrency",
        "4",
        "--time-limit",
        "5s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("VALID: db-unique"), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains(&store.path("latest").display().to_string()),
        "{}",
        show(&out)
    );
    assert!(
        err.contains(&store.path("index.html").display().to_string()),
        "{}",
        show(&out)
    );
    let stray: Vec<_> = std::fs::read_dir(&store.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}
