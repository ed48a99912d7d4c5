//! The CI files (action.yml, .github/workflows, ci/gitlab-overbook.yml) pass the
//! structural checks of `ci/check_actions.py` (no runner is reachable here, and actionlint
//! is not installed), and the checker itself catches the mistakes it is for. Skipped with
//! a message when python3 with its yaml module is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the checker on `dir`: `None` when python3 or its yaml module is missing.
fn check(dir: &Path) -> Option<(bool, String)> {
    let has_yaml = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_yaml {
        eprintln!("SKIPPED: ci/check_actions.py needs python3 with yaml");
        return None;
    }
    let out = Command::new("python3")
        .arg(root().join("ci/check_actions.py"))
        .arg(dir)
        .output()
        .unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[test]
fn the_action_and_workflows_pass_the_structural_checks() {
    let Some((ok, problems)) = check(&root()) else {
        return;
    };
    assert!(ok, "{problems}");
}

#[test]
fn the_checker_catches_an_undeclared_input_and_a_step_without_shell() {
    let dir = std::env::temp_dir().join(format!("overbook-ci-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let broken = action
        .replacen("inputs.time-limit", "inputs.time-limt", 1)
        .replacen("      shell: bash\n", "", 1);
    std::fs::write(dir.join("action.yml"), broken).unwrap();
    std::fs::write(
        dir.join(".github/workflows/x.yml"),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: ./\n        with:\n          sahrd: 1/2\n",
    )
    .unwrap();
    let result = check(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let Some((ok, problems)) = result else {
        return;
    };
    assert!(!ok, "{problems}");
    for want in [
        "inputs.time-limt is not declared",
        "a composite run step needs a shell",
        "with.sahrd is not an input of action.yml",
    ] {
        assert!(problems.contains(want), "{want}: {problems}");
    }
}
