//! `overbook bench backends`: how long a cell waits for its servers, local processes vs
//! containers, measured side by side.
//!
//! Each round starts a full cluster (Redis + Postgres + their proxies) on each backend,
//! alternating which goes first so both see the same machine state, and times
//! `Cluster::start` (start to both servers answering) and `Cluster::shutdown`. The docker
//! figure includes creating the run's network and the containers; the local one includes
//! initdb, which the containers do on first start too.
//!
//! Then each lock-service topology (`single`, `sentinel`, `redlock`) is started the same
//! way and its own start-to-ready is printed (the lock service's first spawn to ready,
//! Postgres starting beside it): Redlock's five nodes at once, Sentinel until every
//! sentinel names the primary and the replica is linked. Each topology on each backend,
//! side by side.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::options::BenchBackendsArgs;
use crate::nodes::{docker, Backend, Cluster, LockService, NodeOptions};

/// Start-to-ready and shutdown times of one backend over the rounds.
#[derive(Debug, Default, Clone)]
pub struct Timings {
    /// `Cluster::start` durations.
    pub ready: Vec<Duration>,
    /// `Cluster::shutdown` durations (plus dropping it: containers are removed then).
    pub teardown: Vec<Duration>,
    /// Docker only: each container's create-to-ready, Redis then Postgres (the rest of
    /// `ready` is the network and the proxies).
    pub containers: [Vec<Duration>; 2],
}

/// The `q` quantile (nearest rank) of `xs`, in ms.
pub fn quantile_ms(xs: &[Duration], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<Duration> = xs.to_vec();
    v.sort();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1].as_secs_f64() * 1000.0
}

async fn one(backend: &Backend, dir: &std::path::Path, t: &mut Timings) -> anyhow::Result<()> {
    let began = Instant::now();
    let cluster = Cluster::start(backend, &NodeOptions::new(dir))
        .await
        .with_context(|| format!("start the {} backend", backend.name()))?;
    t.ready.push(began.elapsed());
    for (i, node) in cluster.nodes().into_iter().enumerate() {
        if let Some(d) = node.container_ready_in() {
            t.containers[i].push(d);
        }
    }
    let began = Instant::now();
    cluster.shutdown().await?;
    drop(cluster);
    t.teardown.push(began.elapsed());
    Ok(())
}

/// Runs `overbook bench backends` and prints the table.
pub fn run(args: &BenchBackendsArgs) -> anyhow::Result<ExitCode> {
    let images =
        docker::resolve_images(args.redis_image.as_deref(), args.postgres_image.as_deref())?;
    docker::check_ready(&images)?;
    println!(
        "bench backends: {} rounds, images {} and {}",
        args.rounds, images.redis, images.postgres
    );
    let docker_backend = Backend::Docker { images };
    let dir = std::env::temp_dir().join(format!("overbook-bench-backends-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (mut local, mut containers) = (Timings::default(), Timings::default());
    let result = rt.block_on(async {
        for round in 0..args.rounds {
            if round % 2 == 0 {
                one(&Backend::Local, &dir, &mut local).await?;
                one(&docker_backend, &dir, &mut containers).await?;
            } else {
                one(&docker_backend, &dir, &mut containers).await?;
                one(&Backend::Local, &dir, &mut local).await?;
            }
            println!(
                "round {:>2}: local ready {:>6.0} ms, docker ready {:>6.0} ms",
                round + 1,
                local.ready.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                containers
                    .ready
                    .last()
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
            );
        }
        anyhow::Ok(())
    });
    let topologies = match result {
        Ok(()) => rt.block_on(topologies(args.rounds, &docker_backend, &dir)),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let topologies = topologies?;
    println!();
    println!(
        "{:<8} {:>12} {:>12} {:>12} {:>15}",
        "backend", "ready p50", "ready p90", "ready max", "teardown p50"
    );
    for (name, t) in [("local", &local), ("docker", &containers)] {
        println!(
            "{:<8} {:>9.0} ms {:>9.0} ms {:>9.0} ms {:>12.0} ms",
            name,
            quantile_ms(&t.ready, 0.5),
            quantile_ms(&t.ready, 0.9),
            quantile_ms(&t.ready, 1.0),
            quantile_ms(&t.teardown, 0.5)
        );
    }
    println!(
        "docker containers, create to ready p50: redis {:.0} ms, postgres {:.0} ms",
        quantile_ms(&containers.containers[0], 0.5),
        quantile_ms(&containers.containers[1], 0.5)
    );
    println!(
        "docker/local start-to-ready (p50): {:.2}x",
        quantile_ms(&containers.ready, 0.5) / quantile_ms(&local.ready, 0.5)
    );
    println!();
    println!(
        "lock-service topologies, start to ready (p50 / max over {} rounds):",
        args.rounds
    );
    println!(
        "{:<9} {:>22} {:>22} {:>8}",
        "service", "local", "docker", "d/l p50"
    );
    for (service, local, docker) in &topologies {
        let cell =
            |t: &[Duration]| format!("{:.0} / {:.0} ms", quantile_ms(t, 0.5), quantile_ms(t, 1.0));
        println!(
            "{:<9} {:>22} {:>22} {:>7.2}x",
            service.name(),
            cell(local),
            cell(docker),
            quantile_ms(docker, 0.5) / quantile_ms(local, 0.5)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts each lock-service topology `rounds` times on each backend that can start it,
/// and returns its start-to-ready times: local, then docker.
async fn topologies(
    rounds: usize,
    docker_backend: &Backend,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<(LockService, Vec<Duration>, Vec<Duration>)>> {
    let mut out = Vec::new();
    for service in LockService::ALL {
        let opts = NodeOptions {
            lock_service: service,
            ..NodeOptions::new(dir)
        };
        let (mut local, mut docker) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            local.push(topology_ready(&Backend::Local, &opts).await?);
            docker.push(topology_ready(docker_backend, &opts).await?);
        }
        println!(
            "{:<9} local ready p50 {:>6.0} ms, docker ready p50 {:>6.0} ms",
            service.name(),
            quantile_ms(&local, 0.5),
            quantile_ms(&docker, 0.5)
        );
        out.push((service, local, docker));
    }
    Ok(out)
}

async fn topology_ready(backend: &Backend, opts: &NodeOptions) -> anyhow::Result<Duration> {
    let cluster = Cluster::start(backend, opts)
        .await
        .with_context(|| format!("start {} on {}", opts.lock_service, backend.name()))?;
    let ready = cluster.topology.ready_in();
    cluster.shutdown().await?;
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let xs: Vec<Duration> = [30, 10, 20, 40].map(Duration::from_millis).to_vec();
        assert_eq!(quantile_ms(&xs, 0.5), 20.0);
        assert_eq!(quantile_ms(&xs, 0.9), 40.0);
        assert_eq!(quantile_ms(&xs, 0.0), 10.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
