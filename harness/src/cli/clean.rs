//! `overbook clean`: removes what a killed run left behind: the local backend's temp dirs
//! (server data) and the server processes still working in them (e.g. Postgres backends
//! left SIGSTOPped by a kill -9 during a pause: resumed, then killed), and the docker
//! backend's containers and networks.
//!
//! A run removes its own on exit, Ctrl-C and panics; only a `kill -9` (or a crash of the
//! machine) leaves them. Temp dirs carry an owner marker (pid and start time, see
//! [`tempdir`]); containers are labelled `overbook` with the harness's pid, start time
//! and pid space; databases and schemas on a server (`--postgres-url`) carry the same
//! in their comment. While the owner lives the run is still going and its things are
//! kept; a mark from another pid namespace or machine, or an incomplete one, cannot be
//! judged and is kept too: both only go with `--force` (`--all`). What has no mark is
//! never touched: it is not overbook's.
//!
//! Each kind is decided first ([`tempdir::decide`], a pure function of the run's state)
//! and then done.

use std::process::ExitCode;

use crate::cli::CleanArgs;
use crate::nodes::tempdir::Cleanup;
use crate::nodes::{docker, scratch, tempdir};

/// Runs `overbook clean` and returns the exit code.
pub fn run(args: &CleanArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(clean(args))
}

async fn clean(args: &CleanArgs) -> anyhow::Result<ExitCode> {
    let mut local = clean_local(args);
    if let Some(url) = &args.postgres_url {
        let pg = clean_postgres(args, url).await?;
        if local == ExitCode::SUCCESS {
            local = pg;
        }
    }
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

fn verb(dry_run: bool) -> &'static str {
    if dry_run {
        "would remove"
    } else {
        "remove "
    }
}

/// The `overbook_*` databases and schemas on the server `url` reaches: dropped when
/// marked by a run that is gone (or with `--force`), never when unmarked.
async fn clean_postgres(args: &CleanArgs, url: &str) -> anyhow::Result<ExitCode> {
    let at = checkers::text::redact_credentials(url);
    let found = scratch::list_leftovers(url)
        .await
        .map_err(|e| anyhow::anyhow!("postgres at {at}: {e}"))?;
    let here = tempdir::pid_space();
    let (mut dropped, mut kept, mut failed) = (0, 0, false);
    for l in &found {
        let noun = match l.kind {
            scratch::ScratchKind::Database => "database",
            scratch::ScratchKind::Schema => "schema",
        };
        let Some(mark) = &l.mark else {
            println!("keep    {noun} {} (no overbook mark: not ours)", l.name);
            kept += 1;
            continue;
        };
        let pid = mark.pid.unwrap_or_default();
        match tempdir::decide(mark.state(&here), args.all) {
            Cleanup::Keep(why) => {
                println!("keep    {noun} {} ({why}, pid {pid})", l.name);
                kept += 1;
            }
            Cleanup::Remove => {
                println!("{} {noun} {} (run pid {pid})", verb(args.dry_run), l.name);
                dropped += 1;
                if !args.dry_run {
                    if let Err(e) = scratch::drop_leftover(url, l).await {
                        eprintln!("could not drop {noun} {}: {e}", l.name);
                        failed = true;
                    }
                }
            }
        }
    }
    println!(
        "{} {dropped} databases and schemas of ours on {at}, {kept} kept",
        if args.dry_run {
            "would remove"
        } else {
            "removed"
        },
    );
    Ok(if failed {
        ExitCode::from(crate::EXIT_HARNESS_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

/// The docker backend's leftovers: containers and networks labelled as ours.
async fn clean_docker(args: &CleanArgs, engine: &bollard::Docker) -> anyhow::Result<ExitCode> {
    let engine = engine.clone();
    let ours = docker::list_ours(&engine).await?;
    let here = tempdir::pid_space();
    let decided: Vec<_> = ours
        .into_iter()
        .map(|l| (tempdir::decide(l.state(&here), args.all), l))
        .collect();
    let mut live = Vec::new();
    let mut left = Vec::new();
    for (cleanup, l) in decided {
        match cleanup {
            Cleanup::Keep(why) => {
                println!(
                    "keep    {} {} (run {}: {why}, pid {})",
                    l.what,
                    l.name,
                    l.run,
                    l.pid.unwrap_or_default()
                );
                live.push(l);
            }
            Cleanup::Remove => left.push(l),
        }
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
        "{} {} containers and networks of ours, {} kept (live or unknown runs)",
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
