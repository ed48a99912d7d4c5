//! Reading a run's verdict in a test: one checker's result, and every checker on one
//! line each for an assertion's message.

use checkers::{CheckResult, Results, Validity};

/// The result of the checker named `name` (panics, naming it, when there is none).
pub fn checker<'a>(r: &'a Results, name: &str) -> &'a CheckResult {
    r.checks
        .iter()
        .find(|c| c.checker == name)
        .unwrap_or_else(|| panic!("no checker {name}"))
}

/// Every checker's verdict and summary, one per line.
pub fn describe(r: &Results) -> String {
    r.checks
        .iter()
        .map(|c| format!("{} {}: {}", c.checker, c.validity.as_str(), c.summary))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many bookings the run confirmed: a valid verdict over none proves nothing.
pub fn ok_books(r: &Results) -> u64 {
    r.stats.counts.get("book").map_or(0, |c| c.ok)
}

/// Asserts that `overbook check` of a run directory's `history.jsonl` decides exactly
/// what the run wrote to its `results.json`: the verdict, the headline, every checker's
/// verdict and anomaly count, and the exit code. The verdict is a function of the
/// history alone (issue 22); every run the integration tests make goes through here.
pub fn assert_check_agrees(dir: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_overbook"))
        .arg("check")
        .arg(dir.join("history.jsonl"))
        .arg("--json")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("overbook check runs");
    let checked: Results = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "overbook check {}: {e}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let ran: Results =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let shape = |r: &Results| -> Vec<(String, Validity, usize)> {
        r.checks
            .iter()
            .map(|c| (c.checker.clone(), c.validity, c.anomalies.len()))
            .collect()
    };
    assert_eq!(
        (checked.validity, checked.headline, shape(&checked)),
        (ran.validity, ran.headline, shape(&ran)),
        "overbook check of {} disagrees with its run",
        dir.display()
    );
    let code = match ran.validity {
        Validity::Valid => 0,
        Validity::Invalid => 1,
        Validity::Unknown => 2,
    };
    assert_eq!(out.status.code(), Some(code), "overbook check exit code");
}

/// [`assert_check_agrees`] for every run directory an `overbook` command printed
/// (`run dir: PATH` lines); returns how many it checked.
pub fn assert_printed_runs_agree(stdout: &str) -> usize {
    let dirs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("run dir:"))
        .map(str::trim)
        .collect();
    for d in &dirs {
        let dir = std::path::Path::new(d);
        if dir.join("results.json").is_file() {
            assert_check_agrees(dir);
        }
    }
    dirs.len()
}

/// Runs `cfg` (a harness failure panics, naming the subject), asserts that `overbook
/// check` of its history agrees with it, and returns the outcome with the history.
pub async fn run_recorded(
    cfg: &harness::run::RunConfig,
) -> (harness::run::RunOutcome, checkers::History) {
    let out = harness::run::run(cfg).await.unwrap_or_else(|e| {
        panic!(
            "{} under {:?} on {}: harness failed: {e}",
            cfg.subject(),
            cfg.faults,
            cfg.lock_service
        )
    });
    assert_check_agrees(&out.dir.path);
    let file = std::fs::File::open(out.dir.file("history.jsonl")).unwrap();
    let history = checkers::read_history(std::io::BufReader::new(file)).unwrap();
    (out, history)
}
