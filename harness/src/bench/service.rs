//! `overbook bench service`: is overbook's HTTP driver ever what limits a service test?
//!
//! One Redis, one Postgres and one replica of the Rust example service (fixed mode),
//! started once. Then, in alternating rounds against that same replica, overbook's
//! service sessions (one keep-alive connection per user, the contract's outcome mapping,
//! exactly what a run uses) and `wrk` post the same JSON body at the same concurrency,
//! and the request rates are printed side by side. The body is one fixed booking: the
//! service answers it the same way for both (the first POST books it, every later one is
//! the same request key again), so both measure the driver, not the hotel filling up.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use checkers::{Date, OpType};
use workloads::{BookRequest, Request, RunClock};

use super::options::BenchServiceArgs;
use crate::nodes::{Backend, Cluster, NodeOptions};
use crate::sut::service::{ServiceSpec, ServiceSystem};
use crate::sut::System;

/// The one booking both drivers post.
const BODY: &str = r#"{"room": 1, "from": "2026-12-01", "to": "2026-12-03", "request": "bench-1"}"#;

/// Runs `overbook bench service`.
pub fn run(args: &BenchServiceArgs) -> anyhow::Result<ExitCode> {
    let wrk = which("wrk").context("wrk is not installed (apt-get install wrk)")?;
    let command = match &args.service {
        Some(c) => c.clone(),
        None => {
            let exe = std::env::current_exe().context("cannot find the overbook executable")?;
            let example = exe.with_file_name("booking-service-example");
            if !example.is_file() {
                bail!(
                    "{} not found: build it with the same profile as overbook \
                     (cargo build --release -p booking-service-example), or give --service",
                    example.display()
                );
            }
            format!("BOOKING_MODE=fixed exec {}", example.display())
        }
    };
    let dir = std::env::temp_dir().join(format!(
        "overbook-bench-service-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(measure(args, &command, &wrk, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    let (ours, theirs) = result?;
    println!(
        "\nbest of {} rounds, {} users, {:?} each, against `{command}`:",
        args.rounds, args.concurrency, args.time_limit
    );
    println!("  overbook HTTP driver: {ours:>10.0} requests/s");
    println!("  wrk:                  {theirs:>10.0} requests/s");
    println!(
        "  overbook / wrk:       {:>10.1} % (target: at least 90 %)",
        100.0 * ours / theirs.max(f64::MIN_POSITIVE)
    );
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    args: &BenchServiceArgs,
    command: &str,
    wrk: &std::path::Path,
    dir: &std::path::Path,
) -> anyhow::Result<(f64, f64)> {
    let cluster = Arc::new(Cluster::start(&Backend::Local, &NodeOptions::new(dir)).await?);
    let spec = ServiceSpec::new(command);
    let system = Arc::new(ServiceSystem::new(
        &spec,
        &cluster,
        dir,
        RunClock::start(),
        Duration::from_millis(500),
        Duration::from_secs(5),
        false,
    )?);
    let result = async {
        system.setup().await?;
        let addr = system.replicas().expect("a service has replicas").addr(0);
        let script = lua_script(dir)?;
        let (mut best_ours, mut best_theirs) = (0f64, 0f64);
        for round in 1..=args.rounds {
            let ours = drive(&system, args.concurrency, args.time_limit).await?;
            let theirs = {
                let wrk = wrk.to_path_buf();
                let script = script.clone();
                let (c, t) = (args.concurrency, args.time_limit);
                tokio::task::spawn_blocking(move || run_wrk(&wrk, &script, addr, c, t)).await??
            };
            println!("round {round}: overbook {ours:.0} requests/s, wrk {theirs:.0} requests/s");
            best_ours = best_ours.max(ours);
            best_theirs = best_theirs.max(theirs);
        }
        Ok::<_, anyhow::Error>((best_ours, best_theirs))
    }
    .await;
    system.shutdown().await;
    cluster.shutdown().await?;
    result
}

/// `concurrency` sessions posting [`BODY`] back to back for `time`: answered requests/s
/// (ok and fail alike: both are a full round trip; an `info` is not counted).
async fn drive(
    system: &Arc<ServiceSystem>,
    concurrency: usize,
    time: Duration,
) -> anyhow::Result<f64> {
    let request = Request::Book(BookRequest {
        room: 1,
        from: Date::parse("2026-12-01").expect("a date"),
        to: Date::parse("2026-12-03").expect("a date"),
        request: "bench-1".into(),
    });
    let answered = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + time;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut session = system.open().await?;
        let (answered, request) = (answered.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            while tokio::time::Instant::now() < deadline {
                let o = session.invoke(&request).await;
                if o.kind != OpType::Info {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(answered.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The wrk script that posts [`BODY`], in a fresh file of unpredictable name.
fn lua_script(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("post-{:016x}.lua", rand::random::<u64>()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    writeln!(f, "wrk.method = \"POST\"")?;
    writeln!(f, "wrk.body = '{BODY}'")?;
    writeln!(f, "wrk.headers[\"Content-Type\"] = \"application/json\"")?;
    Ok(path)
}

/// Runs wrk at `concurrency` connections (2 threads, the machine's cores) for `time`;
/// its Requests/sec.
fn run_wrk(
    wrk: &std::path::Path,
    script: &std::path::Path,
    addr: std::net::SocketAddr,
    concurrency: usize,
    time: Duration,
) -> anyhow::Result<f64> {
    let threads = concurrency.min(2);
    let out = Command::new(wrk)
        .args(["-t", &threads.to_string(), "-c", &concurrency.to_string()])
        .args(["-d", &format!("{}s", time.as_secs().max(1))])
        .arg("-s")
        .arg(script)
        .arg(format!("http://{addr}/bookings"))
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}
