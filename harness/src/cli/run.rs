//! `overbook run`: the CLI edge of the runner. Turns arguments into a [`RunConfig`],
//! prints the verdict in plain words, and maps it to an exit code.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use checkers::Validity;
use workloads::DesignName;

use crate::cli::RunArgs;
use crate::nemesis::Fault;
use crate::nodes::Backend;
use crate::run::{self, RunConfig};

/// What the user expects of the verdict (`--expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The design must hold.
    Valid,
    /// The design must be caught (a canary).
    Invalid,
}

/// Builds the run's configuration from the command line, rejecting bad combinations with
/// a message that says what to write instead.
pub fn config_from_args(args: &RunArgs) -> anyhow::Result<(RunConfig, Option<Expect>)> {
    let design: DesignName = args
        .design
        .parse()
        .map_err(|e| anyhow::anyhow!("--design: {e}"))?;
    let mut faults = Vec::new();
    for f in &args.faults {
        let fault: Fault = f.parse().map_err(|e| anyhow::anyhow!("--fault: {e}"))?;
        if !faults.contains(&fault) {
            faults.push(fault);
        }
    }
    let backend = match args.backend.as_str() {
        "local" => Backend::Local,
        "external" => match (&args.redis_url, &args.postgres_url) {
            (Some(r), Some(p)) => Backend::External {
                redis_url: r.clone(),
                postgres_url: p.clone(),
            },
            _ => bail!("--backend external needs both --redis-url and --postgres-url"),
        },
        "docker" => Backend::Docker {
            images: crate::nodes::docker::resolve_images(
                args.redis_image.as_deref(),
                args.postgres_image.as_deref(),
            )?,
        },
        "auto" => {
            crate::nodes::auto_backend(args.redis_image.as_deref(), args.postgres_image.as_deref())?
        }
        other => {
            bail!("--backend: unknown backend {other:?} (expected local, docker, auto or external)")
        }
    };
    // Refuse pause/kill faults on a backend that does not own the servers now, not
    // after servers and schema are up.
    crate::nemesis::check_backend(&faults, &backend).map_err(|e| anyhow::anyhow!("{e}"))?;
    let expect = match args.expect.as_deref() {
        None => None,
        Some("valid") => Some(Expect::Valid),
        Some("invalid") => Some(Expect::Invalid),
        Some(other) => bail!("--expect: {other:?} is neither valid nor invalid"),
    };
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.rooms == 0 {
        bail!("--rooms must be at least 1");
    }
    if args.window_days < 7 {
        bail!("--window-days must be at least 7 (stays are 1 to 7 nights)");
    }
    if !(0.0..=1.0).contains(&args.cancel_ratio) {
        bail!("--cancel-ratio must be between 0 and 1");
    }
    if matches!(args.rate, Some(r) if !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of requests per second");
    }
    if args.lock_ttl < Duration::from_millis(1) {
        bail!("--lock-ttl must be at least 1ms");
    }
    if args.time_limit.is_zero() {
        bail!("--time-limit must be positive");
    }
    let worst_latency = args.db_latency.max(args.redis_latency);
    let op_timeout = args
        .op_timeout
        .unwrap_or(Duration::from_secs(5) + worst_latency * 8);
    let seed = args.seed.unwrap_or_else(rand::random);
    let slow_sql = match args.slow_sql.as_deref() {
        None => None,
        Some(re) => Some(
            re.parse::<crate::nodes::aim::SlowSql>()
                .map_err(|e| anyhow::anyhow!("--slow-sql: {e}"))?,
        ),
    };
    let cfg = RunConfig {
        design,
        faults,
        time_limit: args.time_limit,
        concurrency: args.concurrency,
        rooms: args.rooms,
        window_days: args.window_days,
        seed,
        lock_ttl: args.lock_ttl,
        db_latency: args.db_latency,
        redis_latency: args.redis_latency,
        client_pause: args.client_pause.unwrap_or(args.lock_ttl * 2),
        slow_sql,
        // Windows scale with the lease: at the seed's 5 s lease and 6 s round trips a 4 s
        // window would end before one slow statement did.
        fault_for: args.fault_for.unwrap_or(args.lock_ttl * 8),
        heal_for: args.heal_for.unwrap_or(args.lock_ttl * 4),
        op_timeout,
        cancel_ratio: args.cancel_ratio,
        aim_at_free: workloads::generator::AIM_AT_FREE,
        rate: args.rate,
        retry: args.retry,
        idempotency: args.idempotency,
        backend,
        store: args.store.clone(),
        keep: args.keep,
        redis_aof: args.redis_aof,
        strict_lock: args.strict_lock,
        command: String::new(),
        progress: !args.quiet,
    };
    let command = reproduce_command(&cfg, args);
    Ok((RunConfig { command, ..cfg }, expect))
}

/// The command line that reproduces this run: every choice spelled out, the seed included.
fn reproduce_command(cfg: &RunConfig, args: &RunArgs) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut cmd = format!(
        "overbook run --design {} {} --time-limit {} --concurrency {} --rooms {} --window-days {} --seed {} --lock-ttl {} --db-latency {} --redis-latency {} --client-pause {} --fault-for {} --heal-for {} --op-timeout {} --cancel-ratio {}",
        cfg.design,
        cfg.faults.iter().map(|f| format!("--fault {f}")).collect::<Vec<_>>().join(" "),
        ms(cfg.time_limit),
        cfg.concurrency,
        cfg.rooms,
        cfg.window_days,
        cfg.seed,
        ms(cfg.lock_ttl),
        ms(cfg.db_latency),
        ms(cfg.redis_latency),
        ms(cfg.client_pause),
        ms(cfg.fault_for),
        ms(cfg.heal_for),
        ms(cfg.op_timeout),
        cfg.cancel_ratio,
    );
    if let Some(re) = &cfg.slow_sql {
        cmd.push_str(&format!(
            " --slow-sql '{}'",
            re.as_str().replace('\'', "'\\''")
        ));
    }
    for (on, flag) in [
        (cfg.retry, "--retry"),
        (cfg.idempotency, "--idempotency"),
        (cfg.redis_aof, "--redis-aof"),
        (cfg.strict_lock, "--strict-lock"),
    ] {
        if on {
            cmd.push(' ');
            cmd.push_str(flag);
        }
    }
    if let Some(rate) = cfg.rate {
        cmd.push_str(&format!(" --rate {rate}"));
    }
    if args.backend != "local" {
        cmd.push_str(&format!(" --backend {}", args.backend));
    }
    for (flag, image) in [
        ("--redis-image", &args.redis_image),
        ("--postgres-image", &args.postgres_image),
    ] {
        if let Some(image) = image {
            cmd.push_str(&format!(" {flag} {image}"));
        }
    }
    cmd
}

/// Runs `overbook run` and returns the exit code.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let (cfg, expect) = config_from_args(args)?;
    println!(
        "overbook: {} under {} for {:?}, {} users, lease {:?}, seed {}",
        cfg.design,
        cfg.faults
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("+"),
        cfg.time_limit,
        cfg.concurrency,
        cfg.lock_ttl,
        cfg.seed
    );
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = rt.block_on(run::run(&cfg)).context("run failed")?;
    // Don't wait for stray client tasks (e.g. a connection blocked on a partition).
    rt.shutdown_timeout(Duration::from_secs(1));

    let results = &outcome.results;
    println!();
    for check in &results.checks {
        println!(
            "  {:<22} {:<8} {}",
            check.checker,
            check.validity.as_str(),
            check.summary
        );
        for a in check.anomalies.iter().take(5) {
            println!("      - {}", a.message);
        }
        if check.anomalies.len() > 5 {
            println!(
                "      ... and {} more (see results.json)",
                check.anomalies.len() - 5
            );
        }
    }
    let lock_failed = results
        .checks
        .iter()
        .any(|c| c.checker == "lock-exclusion" && c.validity == Validity::Invalid);
    if lock_failed && results.validity == Validity::Valid {
        println!("\n  The lock failed (two holders at once), the database held: no room-night was confirmed twice.");
    }
    println!(
        "\n{}: {} ({} ops in {:.1}s)",
        match results.validity {
            Validity::Valid => "VALID",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "UNKNOWN",
        },
        cfg.design,
        outcome.ops,
        outcome.wall.as_secs_f64()
    );
    println!("  report:    {}", outcome.dir.file("report.html").display());
    println!(
        "  history:   {}",
        outcome.dir.file("history.jsonl").display()
    );
    println!("  reproduce: {}", cfg.command);

    let code = match (results.validity, expect) {
        (Validity::Unknown, _) => {
            eprintln!("overbook: the checkers could not decide (see results.json): treating as a harness failure");
            crate::EXIT_HARNESS_ERROR
        }
        (Validity::Valid, None | Some(Expect::Valid))
        | (Validity::Invalid, Some(Expect::Invalid)) => 0,
        (Validity::Invalid, None | Some(Expect::Valid)) => 1,
        (Validity::Valid, Some(Expect::Invalid)) => {
            println!(
                "  expected invalid: the canary did not sing (the harness did not catch {})",
                cfg.design
            );
            1
        }
    };
    if let Some(path) = &args.outcome_file {
        let summary = crate::matrix::RunSummaryFile {
            dir: outcome.dir.path.clone(),
            validity: results.validity,
            summary: one_line_summary(results),
            command: cfg.command.clone(),
            wall_ms: outcome.wall.as_millis() as u64,
            overhead_ms: outcome.overhead.as_millis() as u64,
        };
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(Expect::Invalid), Validity::Invalid) = (expect, results.validity) {
        println!("  expected invalid: caught, as expected");
    }
    Ok(ExitCode::from(code))
}

/// One line naming what each checker found, e.g.
/// "no-double-booking: 3 anomalies (room 101 nights ... confirmed to ops 14 and 19); lock-exclusion: 5".
pub fn one_line_summary(results: &checkers::Results) -> String {
    let found: Vec<String> = results
        .checks
        .iter()
        .filter(|c| !c.anomalies.is_empty())
        .map(|c| {
            format!(
                "{}: {} anomalies (first: {})",
                c.checker,
                c.anomalies.len(),
                c.anomalies[0].message
            )
        })
        .collect();
    if found.is_empty() {
        format!("no anomalies; {}", results.validity.as_str())
    } else {
        found.join("; ")
    }
}
