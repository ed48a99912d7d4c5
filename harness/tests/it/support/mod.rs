//! The integration tests' kit, one of each: temporary directories, the store the runs
//! of an area share, and the `overbook` binary run as a user runs it (every run
//! directory it prints checked to agree with `overbook check`). Shared histories come
//! from the dev-only `fixtures` crate.

use std::path::{Path, PathBuf};

use checkers::Results;
use std::process::{Command, Output, Stdio};

use harness::nodes::tempdir::Scratch;

/// A private, empty temporary directory, removed on drop. `.0` is its path: a directory
/// inside `$TMPDIR/overbook-<tag>-XXXXXX` (made by mkdtemp: its name is not guessable;
/// the scratch directory itself holds overbook's owner mark, so tests that expect an
/// empty store get the empty one inside).
pub struct TempDir(pub PathBuf, #[allow(dead_code)] Scratch);

impl TempDir {
    /// A fresh directory tagged `tag` (the test's area and name).
    pub fn new(tag: &str) -> TempDir {
        let scratch = Scratch::new(tag).expect("make a temp dir");
        let dir = scratch.path().join("dir");
        std::fs::create_dir(&dir).expect("make a temp dir");
        TempDir(dir, scratch)
    }

    /// `name` inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Its path as a string, for command lines.
    pub fn str(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8")
    }
}

/// Where a test's servers write their logs: a [`TempDir`].
pub type LogDir = TempDir;

/// The store the runs of one area share in this test process (`overbook-<area>-runs-PID`
/// under the temp dir), created.
pub fn store(area: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("overbook-{area}-runs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the `overbook` binary with `args` (no stdin), and checks that every run
/// directory it printed gets the same verdict from `overbook check`.
pub fn overbook(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("overbook runs");
    crate::verdict::assert_printed_runs_agree(&String::from_utf8_lossy(&out.stdout));
    out
}

/// A command's exit status and output, for an assertion's message.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a command printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one run directory under `store/<test>/`.
pub fn run_dir(store: &Path, test: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(store.join(test))
        .unwrap_or_else(|e| panic!("no {test} in {}: {e}", store.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// A run directory's results.json.
pub fn read_results(dir: &Path) -> Results {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

/// The run-conditions check of a run's results.
pub fn conditions(r: &Results) -> &checkers::CheckResult {
    r.checks
        .iter()
        .find(|c| c.checker == "run-conditions")
        .expect("a run-conditions check")
}

/// A Postgres session on `url`, its connection driven in the background.
pub async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}
