//! `overbook bench run` and `overbook bench detect`: what the harness costs as a load
//! generator, and how reliably it catches the story's bug.
//!
//! `bench run` drives one design with no fault from the harness and then the same
//! statements from `pgbench -f` at the same concurrency, against the same servers and
//! through the same proxy, each from an empty hotel, and prints both rates side by side.
//! `bench detect` runs `lock-only` under a fault (and, side by side, under another one,
//! db-latency by default) for many seeds, optionally with the cores kept busy, and
//! reports the share of runs that caught a double booking and the time to the first one.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use checkers::{Validity, F};
use workloads::{ClientPause, Config, DesignName, RunClock};

use super::options::{BenchDetectArgs, BenchRunArgs};
use crate::nemesis::Fault;
use crate::nodes::{Backend, Cluster, NodeOptions};
use crate::run::spec::RunSpec;
use crate::run::{self, RunConfig};

/// The pgbench twin of `atomic-reserve`'s transaction: insert the booking, claim every
/// night with one conditional UPDATE, commit only if all nights were claimed. Rooms are
/// drawn 80/20 like the generator's hot set. Run with `-M extended`: pgbench 15 in
/// `-M prepared` mode fails on statements inside `\if` branches ("prepared statement P_1
/// does not exist").
const ATOMIC_RESERVE_SCRIPT: &str = r"\set hot random(1, 10)
\if :hot <= 8
\set room random(101, 100 + :hot_rooms)
\else
\set room random(101 + :hot_rooms, 100 + :rooms)
\endif
\set from random(:window_start, :window_start + :window_days - 7)
\set nights random(1, 7)
\set checkout :from + :nights
BEGIN;
INSERT INTO bookings (room, check_in, check_out, request) VALUES (:room::int8, '1970-01-01'::date + :from::int4, '1970-01-01'::date + (:checkout)::int4, 'pgbench') RETURNING id AS booking \gset
WITH claimed AS (UPDATE inventory SET booking = :booking WHERE room = :room::int8 AND night >= '1970-01-01'::date + :from::int4 AND night < '1970-01-01'::date + (:checkout)::int4 AND booking IS NULL RETURNING 1) SELECT count(*) AS claimed FROM claimed \gset
\if :claimed = :nights
COMMIT;
\else
ROLLBACK;
\endif
";

/// A default run for benchmarks: the CLI's defaults with these values, quiet, a throw-away
/// store, checked as `overbook run` checks its flags.
fn bench_config(
    design: DesignName,
    faults: Vec<Fault>,
    concurrency: usize,
    rooms: u64,
    time_limit: Duration,
    seed: u64,
) -> anyhow::Result<RunConfig> {
    let spec = RunSpec {
        design,
        faults,
        time_limit,
        concurrency,
        rooms: Some(rooms),
        seed: Some(seed),
        store: std::env::temp_dir().join(format!("overbook-bench-{}", std::process::id())),
        progress: false,
        ..RunSpec::default()
    };
    Ok(RunConfig {
        command: "overbook bench".into(),
        ..spec.check()?.config(Backend::Local)
    })
}

/// Runs `overbook bench run`.
pub fn run(args: &BenchRunArgs) -> anyhow::Result<ExitCode> {
    let design: DesignName = "atomic-reserve".parse().expect("a design name");
    let pgbench = find_pgbench()?;
    let rt = tokio::runtime::Runtime::new()?;
    let cfg = RunConfig {
        // The same load as the pgbench script: uniform stays over the 80/20 room split,
        // no cancellations, none of the generator's steering towards free nights.
        cancel_ratio: 0.0,
        aim_at_free: 0.0,
        ..bench_config(
            design,
            vec![Fault::None],
            args.concurrency,
            args.rooms,
            args.time_limit,
            1,
        )?
    };
    let dir = cfg.store.join("servers");
    std::fs::create_dir_all(&dir)?;
    let cluster = Arc::new(rt.block_on(Cluster::start(&Backend::Local, &NodeOptions::new(&dir)))?);
    let result = rt.block_on(compare(&cfg, &cluster, &pgbench, args.rounds));
    let _ = rt.block_on(cluster.shutdown());
    let _ = std::fs::remove_dir_all(&cfg.store);
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn compare(
    cfg: &RunConfig,
    cluster: &Arc<Cluster>,
    pgbench: &str,
    rounds: usize,
) -> anyhow::Result<()> {
    println!(
        "bench run: {} with no fault, {} clients, {} rooms, {:?} per round, {rounds} rounds, harness and pgbench alternating, both through the fault proxy",
        cfg.design, cfg.concurrency, cfg.rooms, cfg.time_limit
    );
    let (mut harness_best, mut pgbench_best, mut direct_best) = (0.0f64, 0.0f64, 0.0f64);
    for round in 1..=rounds {
        let out = run::run_against(cfg, cluster).await?;
        let book = out
            .results
            .stats
            .counts
            .get(F::Book.as_str())
            .cloned()
            .unwrap_or_default();
        let secs = cfg.time_limit.as_secs_f64();
        let harness_tps = (book.ok + book.fail + book.info) as f64 / secs;

        reset_schema(cfg, cluster).await?;
        let proxied = pgbench_tps(pgbench, cfg, &cluster.postgres.url(), &cluster.postgres)?;
        reset_schema(cfg, cluster).await?;
        let direct = pgbench_tps(
            pgbench,
            cfg,
            &cluster.postgres.direct_url(),
            &cluster.postgres,
        )?;
        println!(
            "  round {round}: harness {harness_tps:>8.0} bookings/s ({} ok)   pgbench via proxy {proxied:>8.0} tx/s   pgbench direct {direct:>8.0} tx/s   harness/pgbench {:.0}%",
            book.ok,
            100.0 * harness_tps / proxied
        );
        harness_best = harness_best.max(harness_tps);
        pgbench_best = pgbench_best.max(proxied);
        direct_best = direct_best.max(direct);
    }
    println!(
        "best: harness {harness_best:.0}/s, pgbench via proxy {pgbench_best:.0}/s, pgbench direct {direct_best:.0}/s; harness = {:.0}% of pgbench on the same path (target >= 90%), {:.0}% of pgbench direct",
        100.0 * harness_best / pgbench_best,
        100.0 * harness_best / direct_best
    );
    Ok(())
}

/// Empties the hotel so every load generator starts from the same state.
async fn reset_schema(cfg: &RunConfig, cluster: &Cluster) -> anyhow::Result<()> {
    // The schema is the run's own: emptied, then set up again.
    cluster.recreate_schema().await?;
    let url = cluster.postgres.direct_url();
    let connect = tokio_postgres::connect(&url, tokio_postgres::NoTls);
    let (client, conn) = tokio::time::timeout(workloads::client::CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to postgres timed out"))??;
    tokio::spawn(conn);
    let mut design_cfg = Config::new(RunClock::start(), ClientPause::new());
    design_cfg.rooms = cfg.rooms;
    design_cfg.window_days = cfg.window_days;
    workloads::setup(cfg.design, &client, &design_cfg).await?;
    Ok(())
}

/// Runs pgbench with the design's transaction and returns transactions per second.
fn pgbench_tps(
    pgbench: &str,
    cfg: &RunConfig,
    url: &str,
    server: &crate::nodes::ServerHandle,
) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join(format!("overbook-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script, ATOMIC_RESERVE_SCRIPT)?;
    let (host, port) =
        host_port(url).with_context(|| format!("cannot read host and port from {url}"))?;
    let hot_rooms = (cfg.rooms / 5).max(1);
    let mut cmd = Command::new(pgbench);
    // The password in the environment (not argv, which every local user can read), and
    // the run's schema as the session's search_path, as the harness's own clients have.
    if let Some(password) = server.password() {
        cmd.env("PGPASSWORD", password);
    }
    if let Some(schema) = server.schema() {
        cmd.env("PGOPTIONS", format!("-c search_path={schema}"));
    }
    let out = cmd
        .args([
            "-n", "-M", "extended", "-h", &host, "-p", &port, "-U", "postgres",
        ])
        .args([
            "-c",
            &cfg.concurrency.to_string(),
            "-j",
            "2",
            "-T",
            &cfg.time_limit.as_secs().max(1).to_string(),
        ])
        .args([
            "-D",
            &format!("rooms={}", cfg.rooms),
            "-D",
            &format!("hot_rooms={hot_rooms}"),
        ])
        .args([
            "-D",
            &format!(
                "window_start={}",
                workloads::config::default_window_start().0
            ),
        ])
        .args(["-D", &format!("window_days={}", cfg.window_days)])
        .arg("-f")
        .arg(&script)
        .arg("postgres")
        .output()
        .with_context(|| format!("cannot run {pgbench}"))?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "tps = 1234.567890 (without initial connection time)"
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .with_context(|| format!("no tps line in pgbench output:\n{text}"))
}

/// `host=127.0.0.1 port=5432 ...` -> ("127.0.0.1", "5432").
fn host_port(url: &str) -> Option<(String, String)> {
    let field = |k: &str| {
        url.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .map(str::to_string)
    };
    Some((field("host=")?, field("port=")?))
}

fn find_pgbench() -> anyhow::Result<String> {
    if Command::new("pgbench")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok("pgbench".into());
    }
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.exists())
        .collect();
    dirs.sort();
    match dirs.pop() {
        Some(p) => Ok(p.display().to_string()),
        None => bail!("pgbench not found: apt-get install postgresql-contrib (or postgresql-15)"),
    }
}

/// Runs `overbook bench detect`.
pub fn detect(args: &BenchDetectArgs) -> anyhow::Result<ExitCode> {
    let design: DesignName = args
        .design
        .parse()
        .map_err(|e| anyhow::anyhow!("--design: {e}"))?;
    let fault: Fault = args
        .fault
        .parse()
        .map_err(|e| anyhow::anyhow!("--fault: {e}"))?;
    let against: Option<Fault> = match args.against.as_deref() {
        Some(name) => Some(
            name.parse()
                .map_err(|e| anyhow::anyhow!("--against: {e}"))?,
        ),
        None if fault != Fault::DbLatency => Some(Fault::DbLatency),
        None => None,
    }
    .filter(|f| *f != Fault::None && *f != fault);
    let faults: Vec<Fault> = std::iter::once(fault).chain(against).collect();
    let rt = tokio::runtime::Runtime::new()?;
    let _load = if args.load {
        Some(Load::start(2).context("--load: cannot start the busy processes")?)
    } else {
        None
    };
    println!(
        "bench detect: {design} under {}, {} seeds, {:?} each{}",
        faults
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(" vs "),
        args.seeds,
        args.time_limit,
        if args.load {
            ", with 2 busy processes on the cores"
        } else {
            ""
        }
    );
    println!("  'first' is the first double booking's time since the first fault window opened");
    let mut tallies: Vec<Tally> = faults.iter().map(|_| Tally::default()).collect();
    let started = Instant::now();
    for seed in 1..=args.seeds {
        let mut line = format!("  seed {seed:>3}:");
        for (k, &f) in faults.iter().enumerate() {
            let one = detect_one(&rt, design, f, args.time_limit, seed)?;
            tallies[k].add(&one);
            line.push_str(&format!(
                "  {f}: {} {:>8}",
                if one.caught { "caught" } else { "missed" },
                one.first
                    .map_or("-".to_string(), |t| format!("{:.2} s", t as f64 / 1e9))
            ));
        }
        println!("{line}");
    }
    for (f, t) in faults.iter().zip(&tallies) {
        println!(
            "{f}: caught in {}/{} runs ({:.0}%); median time to the first double booking {}",
            t.caught,
            args.seeds,
            100.0 * t.caught as f64 / args.seeds.max(1) as f64,
            t.median()
        );
    }
    println!("{:.0} s in all", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// One detection run's result.
struct Detection {
    caught: bool,
    /// The first double booking, ns after the first fault window opened.
    first: Option<u64>,
}

#[derive(Default)]
struct Tally {
    caught: u64,
    firsts: Vec<u64>,
}

impl Tally {
    fn add(&mut self, d: &Detection) {
        if d.caught {
            self.caught += 1;
        }
        if let Some(t) = d.first {
            self.firsts.push(t);
        }
    }

    fn median(&self) -> String {
        let mut v = self.firsts.clone();
        v.sort();
        v.get(v.len() / 2)
            .map_or("-".to_string(), |t| format!("{:.2} s", *t as f64 / 1e9))
    }
}

fn detect_one(
    rt: &tokio::runtime::Runtime,
    design: DesignName,
    fault: Fault,
    time_limit: Duration,
    seed: u64,
) -> anyhow::Result<Detection> {
    let cfg = bench_config(design, vec![fault], 16, 5, time_limit, seed)?;
    let out = rt.block_on(run::run(&cfg))?;
    let history = crate::store::load_history(&out.dir.file(crate::store::HISTORY))?;
    let first = crate::matrix::measure::first_double_booking_ns(&history, &out.results);
    let _ = std::fs::remove_dir_all(&cfg.store);
    Ok(Detection {
        caught: out.results.validity == Validity::Invalid,
        first,
    })
}

/// Busy processes keeping the machine's cores loaded (`yes > /dev/null`), killed when
/// dropped, and by the kernel if overbook dies first (parent-death signal).
struct Load(Vec<std::process::Child>);

impl Load {
    fn start(n: usize) -> std::io::Result<Load> {
        let mut children = Vec::new();
        for _ in 0..n {
            let mut cmd = Command::new("yes");
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    );
                    Ok(())
                });
            }
            children.push(cmd.spawn()?);
        }
        Ok(Load(children))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
