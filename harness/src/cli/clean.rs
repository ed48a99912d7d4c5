//! `overbook clean`: removes the containers and networks a killed docker run left behind.
//!
//! A run removes its own on exit, Ctrl-C and panics; only a `kill -9` (or a crash of the
//! machine) leaves them. Everything of ours is labelled `overbook`, and `overbook.pid`
//! names the harness that made it: while that pid lives the run is still going and its
//! containers are kept, unless `--all`.

use std::process::ExitCode;

use crate::cli::CleanArgs;
use crate::nodes::docker;

/// Runs `overbook clean` and returns the exit code.
pub fn run(args: &CleanArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(clean(args))
}

async fn clean(args: &CleanArgs) -> anyhow::Result<ExitCode> {
    let engine = docker::connect().await?;
    let ours = docker::list_ours(&engine).await?;
    let (live, left): (Vec<_>, Vec<_>) =
        ours.into_iter().partition(|l| !args.all && l.owner_alive());
    for l in &live {
        println!(
            "keep    {} {} (run {} still going, pid {})",
            l.what,
            l.name,
            l.run,
            l.pid.unwrap_or_default()
        );
    }
    for l in &left {
        println!(
            "{} {} {} (run {})",
            if args.dry_run {
                "would remove"
            } else {
                "remove "
            },
            l.what,
            l.name,
            l.run
        );
    }
    if !args.dry_run {
        docker::remove_leftovers(&engine, &left).await;
        let still: Vec<_> = docker::list_ours(&engine)
            .await?
            .into_iter()
            .filter(|l| left.iter().any(|r| r.what == l.what && r.name == l.name))
            .collect();
        if !still.is_empty() {
            for l in &still {
                eprintln!("could not remove {} {}", l.what, l.name);
            }
            return Ok(ExitCode::from(crate::EXIT_HARNESS_ERROR));
        }
    }
    println!(
        "{} {} of ours, {} kept (live runs)",
        if args.dry_run {
            "would remove"
        } else {
            "removed"
        },
        left.len(),
        live.len()
    );
    Ok(ExitCode::SUCCESS)
}
