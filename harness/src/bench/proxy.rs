//! `overbook bench proxy`: what the fault proxy costs when no fault is active.
//!
//! Runs `redis-benchmark` against one local Redis twice per round, straight and through
//! the proxy, alternating which goes first so both see the same machine state, and
//! reports throughput (the best round of each, and the median of each round's ratio), the
//! p50 latency the proxy adds, and the CPU time per request of the proxy and of Redis,
//! which does not depend on what else the machine is running. The target is at least 80%
//! of direct throughput.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context};

use super::options::BenchProxyArgs;
use crate::nodes::{Backend, Cluster, NodeOptions};

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
    password: Option<&str>,
    args: &BenchProxyArgs,
) -> anyhow::Result<BTreeMap<String, Measure>> {
    let mut cmd = Command::new("redis-benchmark");
    // redis-benchmark takes the password only as an argument; it is the bench's own
    // throw-away server's, gone when the bench ends.
    if let Some(password) = password {
        cmd.args(["-a", password]);
    }
    let out = cmd
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

/// CPU time (user + system) of a process or thread, from its /proc stat file.
fn cpu_time(stat_path: &Path) -> Option<Duration> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 0, utime 11, stime 12 (in clock ticks).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// The stat file of this process's proxy thread.
fn proxy_thread_stat() -> Option<PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            (comm.trim() == "overbook-proxy").then(|| t.path().join("stat"))
        })
}

/// CPU spent per request by a process over one measurement.
#[derive(Debug, Default, Clone, Copy)]
struct CpuCost {
    total: Duration,
    requests: u64,
}

impl CpuCost {
    fn add(&mut self, before: Option<Duration>, after: Option<Duration>, requests: u64) {
        if let (Some(b), Some(a)) = (before, after) {
            self.total += a.saturating_sub(b);
            self.requests += requests;
        }
    }

    fn micros_per_request(&self) -> f64 {
        self.total.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs the benchmark and prints the comparison.
pub fn run(args: &BenchProxyArgs) -> anyhow::Result<ExitCode> {
    crate::nodes::reaper::install().context("install the Ctrl-C handler")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let dir = std::env::temp_dir().join(format!("overbook-bench-proxy-{}", std::process::id()));
    let tests = args.tests.split(',').count() as u64;
    let result = runtime.block_on(async {
        let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&dir)).await?;
        let direct = cluster.redis.direct_addr();
        let proxied = cluster.redis.proxy().addr();
        let redis_stat = PathBuf::from(format!(
            "/proc/{}/stat",
            cluster.redis.pid().context("redis is not running")?
        ));
        let proxy_stat = proxy_thread_stat().context("no proxy thread")?;
        let mut rounds: Vec<BTreeMap<(String, &str), Measure>> = Vec::new();
        let (mut proxy_cpu, mut redis_cpu_proxied, mut redis_cpu_direct) =
            (CpuCost::default(), CpuCost::default(), CpuCost::default());
        for round in 0..args.rounds {
            // Alternate which goes first, so a load change on the machine during a round
            // does not always favour the same side.
            let order = if round % 2 == 0 {
                [("direct", direct), ("proxy", proxied)]
            } else {
                [("proxy", proxied), ("direct", direct)]
            };
            let mut this = BTreeMap::new();
            for (label, addr) in order {
                let (p0, r0) = (cpu_time(&proxy_stat), cpu_time(&redis_stat));
                // redis-benchmark blocks: it runs on a blocking thread.
                let a = args.clone();
                let password = cluster.redis.password().map(str::to_string);
                let res = tokio::task::spawn_blocking(move || {
                    redis_benchmark(addr, password.as_deref(), &a)
                })
                .await??;
                let (p1, r1) = (cpu_time(&proxy_stat), cpu_time(&redis_stat));
                let n = args.requests * tests;
                if label == "proxy" {
                    proxy_cpu.add(p0, p1, n);
                    redis_cpu_proxied.add(r0, r1, n);
                } else {
                    redis_cpu_direct.add(r0, r1, n);
                }
                for (test, m) in res {
                    eprintln!(
                        "round {} {label:6} {test:4} {:>10.0} req/s  p50 {:.3} ms",
                        round + 1,
                        m.rps,
                        m.p50_ms
                    );
                    this.insert((test, label), m);
                }
            }
            rounds.push(this);
        }
        cluster.shutdown().await?;
        anyhow::Ok((rounds, proxy_cpu, redis_cpu_proxied, redis_cpu_direct))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (rounds, proxy_cpu, redis_cpu_proxied, redis_cpu_direct) = result?;
    println!(
        "redis-benchmark -t {} -n {} -c {} -P {}, {} rounds of direct and proxy",
        args.tests, args.requests, args.clients, args.pipeline, args.rounds
    );
    println!(
        "test  best direct req/s  best proxy req/s  ratio of bests  median ratio  p50 direct  p50 proxy  p50 added"
    );
    let names: BTreeSet<String> = rounds
        .iter()
        .flat_map(|r| r.keys().map(|(t, _)| t.clone()))
        .collect();
    let mut worst = f64::INFINITY;
    for test in names {
        let pick = |label: &str| -> Vec<Measure> {
            rounds
                .iter()
                .filter_map(|r| r.get(&(test.clone(), label)).copied())
                .collect()
        };
        let best = |v: &[Measure]| v.iter().copied().max_by(|a, b| a.rps.total_cmp(&b.rps));
        let (ds, ps) = (pick("direct"), pick("proxy"));
        let (Some(d), Some(p)) = (best(&ds), best(&ps)) else {
            continue;
        };
        // Each round's proxy figure against the same round's direct one.
        let paired = median(ds.iter().zip(&ps).map(|(d, p)| p.rps / d.rps).collect());
        let ratio = p.rps / d.rps;
        worst = worst.min(ratio).min(paired);
        println!(
            "{test:4} {:>18.0} {:>17.0} {:>14.0}% {:>12.0}% {:>8.3} ms {:>7.3} ms {:>7.3} ms",
            d.rps,
            p.rps,
            ratio * 100.0,
            paired * 100.0,
            d.p50_ms,
            p.p50_ms,
            p.p50_ms - d.p50_ms
        );
    }
    println!(
        "cpu per request: proxy {:.1} us, redis {:.1} us behind the proxy (unix socket), {:.1} us direct (tcp)",
        proxy_cpu.micros_per_request(),
        redis_cpu_proxied.micros_per_request(),
        redis_cpu_direct.micros_per_request()
    );
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
