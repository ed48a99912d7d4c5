//! `overbook up`: starts Redis and Postgres behind their fault proxies, prints how to reach
//! them, and holds them until Ctrl-C, for manual experiments against the same setup a run
//! uses. Optional `--fault` injects faults right away and holds them until the end.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::cli::UpArgs;
use crate::nemesis::{check_backend, ActiveFault, Fault};
use crate::nodes::reaper;
use crate::nodes::{Backend, Cluster, NodeOptions};
use crate::run::spec::RunSpec;

/// Builds the backend from the command line's `--backend`, `--redis-url`, `--postgres-url`.
pub fn backend_from_args(
    backend: &str,
    redis_url: Option<&str>,
    postgres_url: Option<&str>,
) -> anyhow::Result<Backend> {
    match backend {
        "local" => {
            if redis_url.is_some() || postgres_url.is_some() {
                bail!("--redis-url and --postgres-url need --backend external");
            }
            Ok(Backend::Local)
        }
        "external" => match (redis_url, postgres_url) {
            (Some(r), Some(p)) => Ok(Backend::External {
                redis_url: r.to_string(),
                postgres_url: p.to_string(),
            }),
            _ => bail!("--backend external needs --redis-url and --postgres-url"),
        },
        other => bail!("unknown backend {other:?}: use local or external"),
    }
}

/// Runs `overbook up` until SIGINT/SIGTERM (the cleanup handler stops everything and
/// exits 130/143).
pub fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let backend = backend_from_args(
        &args.backend,
        args.redis_url.as_deref(),
        args.postgres_url.as_deref(),
    )?;
    let faults = args
        .faults
        .iter()
        .map(|f| f.parse::<Fault>())
        .collect::<Result<Vec<_>, _>>()?;
    check_backend(&faults, &backend)?;
    // A default run's strength (lease, latencies, client pause), fitted to these faults.
    let params = RunSpec {
        faults: faults.clone(),
        ..RunSpec::default()
    }
    .fault_params()?;
    reaper::install().context("install the Ctrl-C handler")?;
    // One thread: servers are spawned from it, and their parent-death signal is tied to
    // the spawning thread, which must live as long as they do.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let opts = NodeOptions {
            dir: args.dir.clone(),
            keep: args.keep,
            redis_aof: args.redis_aof,
            max_connections: crate::nodes::DEFAULT_MAX_CONNECTIONS,
            lock_service: workloads::LockService::Single,
        };
        let cluster = Arc::new(Cluster::start(&backend, &opts).await?);
        let mut held = Vec::new();
        for fault in faults {
            let pause = workloads::ClientPause::new();
            held.push(ActiveFault::apply(fault, &params, &cluster, &pause).await?);
        }
        print_cluster(&cluster, &backend, &opts, &held)?;
        // Ctrl-C is handled by the cleanup thread, which stops every server and exits;
        // until then the proxies keep serving on this thread.
        std::future::pending::<()>().await;
        drop(held);
        cluster.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_cluster(
    cluster: &Cluster,
    backend: &Backend,
    opts: &NodeOptions,
    held: &[ActiveFault],
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(text, "overbook up: ready (backend {})", backend.name());
    for node in cluster.nodes() {
        let _ = writeln!(text, "{} url: {}", node.kind(), node.url());
        let _ = writeln!(text, "{} direct: {}", node.kind(), node.direct_url());
        if let Some(pid) = node.pid() {
            let _ = writeln!(text, "{} pid: {pid}", node.kind());
        }
        if let Some(dir) = node.temp_dir() {
            let _ = writeln!(
                text,
                "{} data: {}{}",
                node.kind(),
                dir.display(),
                if opts.keep { " (kept)" } else { "" }
            );
        }
    }
    if backend.owns_processes() {
        let _ = writeln!(text, "logs: {}", opts.dir.display());
    }
    for f in held {
        let _ = writeln!(text, "fault held: {}", f.fault());
    }
    // The URLs carry the run's passwords: the copy on disk is for its owner only.
    let path = opts.dir.join(SERVERS);
    write_private(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    print!("{text}");
    println!("servers: {} (mode 0600)", path.display());
    println!("Ctrl-C stops everything.");
    Ok(())
}

/// Where `overbook up` writes the servers' URLs (with passwords), in its `--dir`.
pub const SERVERS: &str = "servers.txt";

/// Writes `bytes` to `path`, readable by its owner only, replacing what was there.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
    // Removed first: an existing file (or a link planted there) keeps its own mode.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_arguments_must_agree() {
        assert_eq!(
            backend_from_args("local", None, None).unwrap(),
            Backend::Local
        );
        assert!(backend_from_args("local", Some("redis://x"), None).is_err());
        assert!(backend_from_args("external", Some("redis://x"), None).is_err());
        assert!(backend_from_args("docker", None, None).is_err());
        let ext = backend_from_args("external", Some("redis://a:1/"), Some("host=b")).unwrap();
        assert!(!ext.owns_processes());
    }
}
