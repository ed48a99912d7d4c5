//! `overbook bench proxy`: what the fault proxy costs when no fault is active.
//!
//! Runs `redis-benchmark` against one local Redis twice per round, straight and through
//! the proxy, alternating so both see the same machine state, and reports throughput
//! (best round of each) and the p50 latency the proxy adds. The target is at least 80%
//! of direct throughput.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};

use crate::cli::BenchProxyArgs;
use crate::node::{Backend, Cluster, NodeOptions};

/// One `redis-benchmark` line: a test's throughput and median latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// Requests per second.
    pub rps: f64,
    /// Median latency in ms.
    pub p50_ms: f64,
}

/// Parses `redis-benchmark --csv` output into test name -> measure.
pub fn parse_csv(text: &str) -> anyhow::Result<BTreeMap<String, Measure>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .context("redis-benchmark printed nothing")?
        .split(',')
        .map(|h| h.trim_matches('"').to_string())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no {name:?} column in {header:?}"))
    };
    let (test, rps, p50) = (col("test")?, col("rps")?, col("p50_latency_ms")?);
    let mut out = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        let get = |i: usize| fields.get(i).copied().context("short redis-benchmark line");
        out.insert(
            get(test)?.to_string(),
            Measure {
                rps: get(rps)?.parse().context("rps")?,
                p50_ms: get(p50)?.parse().context("p50")?,
            },
        );
    }
    Ok(out)
}

fn redis_benchmark(
    addr: SocketAddr,
    args: &BenchProxyArgs,
) -> anyhow::Result<BTreeMap<String, Measure>> {
    let out = Command::new("redis-benchmark")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-t", &args.tests])
        .args(["-n", &args.requests.to_string()])
        .args(["-c", &args.clients.to_string()])
        .args(["-P", &args.pipeline.to_string()])
        .arg("--csv")
        .output()
        .context("redis-benchmark not found: apt-get install redis-tools")?;
    if !out.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_csv(&String::from_utf8_lossy(&out.stdout))
}

/// Runs the benchmark and prints the comparison.
pub fn run(args: &BenchProxyArgs) -> anyhow::Result<ExitCode> {
    crate::cleanup::install().context("install the Ctrl-C handler")?;
    // The proxy gets the runtime a run gives it: multi-threaded, all cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let dir = std::env::temp_dir().join(format!("overbook-bench-proxy-{}", std::process::id()));
    let result = runtime.block_on(async {
        let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&dir)).await?;
        let direct = cluster.redis.direct_addr();
        let proxied = cluster.redis.proxy().addr();
        let mut best: BTreeMap<(String, &str), Measure> = BTreeMap::new();
        for round in 0..args.rounds {
            for (label, addr) in [("direct", direct), ("proxy", proxied)] {
                // redis-benchmark blocks; it runs on a blocking thread so the proxy's
                // workers stay free to relay its traffic.
                let a = args.clone();
                let res = tokio::task::spawn_blocking(move || redis_benchmark(addr, &a)).await??;
                for (test, m) in res {
                    eprintln!(
                        "round {} {label:6} {test:4} {:>10.0} req/s  p50 {:.3} ms",
                        round + 1,
                        m.rps,
                        m.p50_ms
                    );
                    let e = best.entry((test, label)).or_insert(m);
                    if m.rps > e.rps {
                        *e = m;
                    }
                }
            }
        }
        cluster.shutdown().await?;
        anyhow::Ok(best)
    });
    let _ = std::fs::remove_dir_all(&dir);
    let best = result?;
    println!(
        "redis-benchmark -t {} -n {} -c {} -P {}, best of {} rounds",
        args.tests, args.requests, args.clients, args.pipeline, args.rounds
    );
    println!("test  direct req/s  proxy req/s  ratio  p50 direct  p50 proxy  p50 added");
    let mut worst = f64::INFINITY;
    let tests: Vec<&String> = best
        .keys()
        .map(|(t, _)| t)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for test in tests {
        let (Some(d), Some(p)) = (
            best.get(&(test.clone(), "direct")),
            best.get(&(test.clone(), "proxy")),
        ) else {
            continue;
        };
        let ratio = p.rps / d.rps;
        worst = worst.min(ratio);
        println!(
            "{test:4} {:>13.0} {:>12.0} {:>5.0}% {:>8.3} ms {:>7.3} ms {:>7.3} ms",
            d.rps,
            p.rps,
            ratio * 100.0,
            d.p50_ms,
            p.p50_ms,
            p.p50_ms - d.p50_ms
        );
    }
    println!(
        "proxy throughput: {:.0}% of direct at worst (target >= 80%)",
        worst * 100.0
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"80971.66\",\"0.115\",\"0.032\",\"0.103\",\"0.191\",\"0.359\",\"0.999\"\n\"GET\",\"80321.29\",\"0.111\",\"0.032\",\"0.111\",\"0.135\",\"0.207\",\"2.271\"\n";
        let m = parse_csv(text).unwrap();
        assert_eq!(
            m["SET"],
            Measure {
                rps: 80971.66,
                p50_ms: 0.103
            }
        );
        assert_eq!(m["GET"].rps, 80321.29);
        assert!(parse_csv("").is_err());
        assert!(parse_csv("\"test\",\"rps\"\n").is_err(), "no p50 column");
    }
}
