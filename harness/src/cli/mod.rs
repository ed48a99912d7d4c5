//! The command line: the clap definitions ([`args`], re-exported here) and one module per
//! subcommand, each parsing nothing itself: it calls the engine and prints.

pub mod api;
mod args;
pub mod check;
pub mod clean;
pub mod doctor;
pub mod matrix;
pub mod repeat;
pub mod report;
pub mod run;
pub mod shrink;
pub mod up;

pub use args::*;
