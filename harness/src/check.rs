//! `overbook check`: read a history, run every checker, print the verdict.

use std::process::ExitCode;

use crate::cli::CheckArgs;

/// Runs `overbook check` and returns the exit code (0 valid, 1 invalid, 2 unusable input).
pub fn run(_args: &CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
