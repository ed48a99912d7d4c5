//! The command line. Each subcommand's arguments are a plain struct so its module can be
//! driven from tests without parsing.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// overbook: can this booking design confirm the same room-night twice under faults?
#[derive(Debug, Parser)]
#[command(name = "overbook", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a history file (JSON Lines, `-` for stdin) and print the verdict.
    Check(CheckArgs),
}

/// `overbook check FILE`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history to check, in overbook's JSONL format; `-` reads standard input.
    pub file: PathBuf,
    /// Print the full result as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Count lock-exclusion findings towards the verdict (by default they are reported
    /// but the lock is coordination, not correctness).
    #[arg(long)]
    pub strict_lock: bool,
}
