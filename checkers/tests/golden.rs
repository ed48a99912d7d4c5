//! The golden corpus in `testdata/`: each file's verdict is in its directory and name.
//!
//! - `valid/*.jsonl`, `unknown/*.jsonl`: the run's verdict (and, for a file named after a
//!   headline such as `lock-failed-database-held`, that headline).
//! - `invalid/<checker>--<what>.jsonl`: invalid, and `<checker>` is among the reasons.
//! - `malformed/line<N>-<field>--<what>.jsonl`: unusable; the error names line N and the
//!   field (`json` for a line that is not JSON at all).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use checkers::{check_all, read_history, CheckOptions, Headline, History, ReadError, Validity};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", root.display());
    files
}

fn read(p: &Path) -> Result<History, ReadError> {
    read_history(BufReader::new(File::open(p).unwrap()))
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn valid_and_unknown_files_get_their_verdict() {
    for (dir, want) in [("valid", Validity::Valid), ("unknown", Validity::Unknown)] {
        for p in corpus(dir) {
            let h = read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let r = check_all(&h, &CheckOptions::default());
            let msgs: Vec<&str> = r.anomalies().map(|a| a.message.as_str()).collect();
            assert_eq!(r.validity, want, "{}: {msgs:?}", p.display());
            // Nothing harmed, nothing to say in business words.
            assert_eq!(checkers::harm::headline(&r), None, "{}", p.display());
            // A file named after a headline must get it (the seed lesson, for one).
            if let Some(h) = [Headline::LockFailedDatabaseHeld]
                .into_iter()
                .find(|h| stem(&p) == h.as_str())
            {
                assert_eq!(r.headline, h, "{}", p.display());
            }
        }
    }
}

#[test]
fn invalid_files_are_invalid_for_the_named_checker() {
    for p in corpus("invalid") {
        let name = stem(&p);
        let (checker, _) = name.split_once("--").expect("invalid/<checker>--<what>");
        let h = read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let r = check_all(&h, &CheckOptions::default());
        assert_eq!(r.validity, Validity::Invalid, "{}", p.display());
        let c = r
            .check(checker)
            .unwrap_or_else(|| panic!("no checker {checker}"));
        assert_eq!(c.validity, Validity::Invalid, "{}: {:?}", p.display(), c);
        assert!(c
            .anomalies
            .iter()
            .all(|a| !a.ops.is_empty() && !a.message.is_empty()));
        // A data finding costs the guests something, counted by its checker and worded
        // in the business headline; the lock's own finding costs nothing by itself, nor
        // does a read row that is no stay (a finding about the service's read).
        let harm = checkers::harm::headline(&r);
        if c.role.judges_data() && !name.ends_with("--reversed-read-row") {
            assert!(!c.harm.is_empty(), "{}: no harm counted", p.display());
            assert!(harm.is_some(), "{}", p.display());
        }
    }
}

#[test]
fn malformed_files_name_line_and_field() {
    for p in corpus("malformed") {
        let name = stem(&p);
        let (head, _) = name.split_once("--").expect("line<N>-<field>--<what>");
        let (line, field) = head
            .strip_prefix("line")
            .and_then(|s| s.split_once('-'))
            .expect("line<N>-<field>");
        let e = read(&p)
            .err()
            .unwrap_or_else(|| panic!("{} should be rejected", p.display()));
        assert_eq!(e.line().to_string(), line, "{}: {e}", p.display());
        match field {
            "json" => assert!(matches!(e, ReadError::Json { .. }), "{}: {e}", p.display()),
            f => assert_eq!(e.field(), Some(f), "{}: {e}", p.display()),
        }
    }
}
