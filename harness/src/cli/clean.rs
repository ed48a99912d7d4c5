//! `overbook clean`: removes what a killed run left behind: the local backend's temp dirs
//! (server data) and the server processes still working in them (e.g. Postgres backends
//! left SIGSTOPped by a kill -9 during a pause: resumed, then killed), and the docker
//! backend's containers and networks.
//!
//! A run removes its own on exit, Ctrl-C and panics; only a `kill -9` (or a crash of the
//! machine) leaves them. Temp dirs carry an owner marker (pid and start time, see
//! [`tempdir`]); containers are labelled `overbook` with `overbook.pid`. While the owner
//! lives the run is still going and its things are kept, unless `--all`. A dir without a
//! marker is never touched: it is not overbook's.

use std::process::ExitCode;

use crate::cli::CleanArgs;
use crate::nodes::{docker, tempdir};

/// Runs `overbook clean` and returns the exit code.
pub fn run(args: &CleanArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(clean(args))
}

async fn clean(args: &CleanArgs) -> anyhow::Result<ExitCode> {
    let local = clean_local(args);
    let engine = match docker::connect().await {
        Ok(engine) => engine,
        Err(e) => {
            println!("docker: not reachable, no containers checked ({e})");
            return Ok(local);
        }
    };
    let docker = clean_docker(args, &engine).await?;
    Ok(if local == ExitCode::SUCCESS {
        docker
    } else {
        local
    })
}

/// The local backend's leftovers: temp dirs of dead runs and their processes.
fn clean_local(args: &CleanArgs) -> ExitCode {
    let found = tempdir::scan();
    let (live, left): (Vec<_>, Vec<_>) = found.into_iter().partition(|l| !args.all && l.alive);
    for l in &live {
        println!(
            "keep    dir {} (run still going, pid {})",
            l.dir.display(),
            l.owner.pid
        );
    }
    let mut failed = false;
    for l in &left {
        println!(
            "{} dir {} (run pid {}{}, {:.1} MB, {} processes)",
            if args.dry_run {
                "would remove"
            } else {
                "remove "
            },
            l.dir.display(),
            l.owner.pid,
            if l.alive { ", still going" } else { ", gone" },
            l.bytes as f64 / 1e6,
            l.pids.len()
        );
        if !args.dry_run {
            if let Err(e) = tempdir::remove(l) {
                eprintln!("could not remove {}: {e}", l.dir.display());
                failed = true;
            }
        }
    }
    println!(
        "{} {} temp dirs of ours, {} kept (live runs)",
        if args.dry_run {
            "would remove"
        } else {
            "removed"
        },
        left.len(),
        live.len()
    );
    if failed {
        ExitCode::from(crate::EXIT_HARNESS_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}

/// The docker backend's leftovers: containers and networks labelled as ours.
async fn clean_docker(args: &CleanArgs, engine: &bollard::Docker) -> anyhow::Result<ExitCode> {
    let engine = engine.clone();
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
        "{} {} containers and networks of ours, {} kept (live runs)",
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
