//! `overbook matrix trend`: the last N whole matrices of a store on one page
//! (`STORE/matrix/trend.html`): each cell's status night by night, and each canary's
//! time to first anomaly, so a slow drift is seen before it turns into a miss.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use reports::trend::{render_trend, Night};

use super::diff;

/// `overbook matrix trend`.
#[derive(Debug, clap::Args)]
pub struct MatrixTrendArgs {
    /// Store root: reads STORE/matrix/*/matrix.json, writes STORE/matrix/trend.html.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// How many of the newest matrices (shards left out when a merge covers them).
    #[arg(long, default_value_t = 14)]
    pub last: usize,
}

/// Runs `overbook matrix trend`.
pub fn run(args: &MatrixTrendArgs) -> anyhow::Result<ExitCode> {
    if args.last == 0 {
        anyhow::bail!("--last 0: give at least one night");
    }
    let root = args.store.join("matrix");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot read {}: no matrices in this store", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(crate::store::MATRIX).is_file())
        .collect();
    // Stamps sort by time; a night's shards are left out (their merge is the night).
    dirs.sort();
    let mut nights = Vec::new();
    for dir in dirs {
        let loaded = match diff::load(&dir) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("overbook: warning: skipping {e}");
                continue;
            }
        };
        let is_shard = loaded
            .plan
            .as_ref()
            .and_then(|p| p.shard.parse::<super::plan::Shard>().ok())
            .is_some_and(|s| s.count > 1);
        if is_shard {
            continue;
        }
        nights.push(Night {
            label: loaded.label(),
            matrix: loaded.matrix,
        });
    }
    if nights.is_empty() {
        anyhow::bail!(
            "no whole matrix (unsharded or merged) under {}",
            root.display()
        );
    }
    let skip = nights.len().saturating_sub(args.last);
    let nights = &nights[skip..];
    let out = root.join("trend.html");
    // The page sits in STORE/matrix/, the reports' paths start at the store root.
    crate::store::write_file(&out, render_trend(nights, "../"))
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("trend over {} matrices: {}", nights.len(), out.display());
    Ok(ExitCode::SUCCESS)
}
