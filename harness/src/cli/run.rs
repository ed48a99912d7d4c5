//! `overbook run`: the CLI edge of the runner. Turns arguments into a [`RunConfig`],
//! prints the verdict in plain words, and maps it to an exit code.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use checkers::text::for_terminal;
use checkers::{Headline, Validity};
use workloads::DesignName;

use crate::cli::RunArgs;
use crate::nemesis::{time_needed, Fault};
use crate::nodes::Backend;
use crate::run::{self, RunConfig};
use crate::sut::service::{ApiSpec, ServiceSpec};

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
    let mut faults = Vec::new();
    for f in &args.faults {
        let fault: Fault = f.parse().map_err(|e| anyhow::anyhow!("--fault: {e}"))?;
        if !faults.contains(&fault) {
            faults.push(fault);
        }
    }
    // Numbers first: a bad one is refused before anything (docker included) is asked,
    // the values left out fitted to the faults (a lease a fault cannot strike refused).
    let fitted = crate::cli::fit::fit(args, &faults)?;
    check_ranges(args, &fitted)?;
    let design: DesignName = args
        .design
        .parse()
        .map_err(|e| anyhow::anyhow!("--design: {e}"))?;
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
    let service = service_spec(&args.service)?;
    check_service_faults(&faults, service.is_some())?;
    let lock_service = check_lock_service(args, &faults, &backend)?;
    if let Some(why) = design.refusal_on(lock_service) {
        bail!("--design {why}");
    }
    if service.is_none() {
        if let Some(f) = faults.iter().find(|f| !design.exposed_to(**f)) {
            bail!(
                "--fault {f} cannot strike --design {design}: it takes no lease, so a fault on the lock service or on a lease holder finds nothing to act on and the run would test nothing (try slow-writes, db-latency, pause-db or kill-db)"
            );
        }
    }
    let expect = match args.expect.as_deref() {
        None => None,
        Some("valid") => Some(Expect::Valid),
        Some("invalid") => Some(Expect::Invalid),
        Some(other) => bail!("--expect: {other:?} is neither valid nor invalid"),
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let slow_sql = match args.slow_sql.as_deref() {
        None => None,
        Some(re) => Some(
            re.parse::<crate::nemesis::SlowSql>()
                .map_err(|e| anyhow::anyhow!("--slow-sql: {e}"))?,
        ),
    };
    let cfg = RunConfig {
        design,
        faults,
        time_limit: args.time_limit,
        concurrency: args.concurrency,
        rooms: fitted.rooms,
        window_days: fitted.window_days,
        seed,
        lock_ttl: fitted.lock_ttl,
        db_latency: args.db_latency,
        redis_latency: args.redis_latency,
        client_pause: args.client_pause.unwrap_or(fitted.lock_ttl * 2),
        slow_sql,
        // Windows scale with the lease (at the seed's 5 s lease and 6 s round trips a 4 s
        // window would end before one slow statement did), or fit a fixed-time fault.
        fault_for: fitted.fault_for,
        heal_for: fitted.heal_for,
        op_timeout: fitted.op_timeout,
        cancel_ratio: args.cancel_ratio,
        aim_at_free: workloads::generator::AIM_AT_FREE,
        rate: args.rate,
        retry: args.retry,
        idempotency: args.idempotency,
        backend,
        store: args.store.clone(),
        keep: args.keep,
        share: args.share,
        redis_aof: args.redis_aof,
        strict_lock: args.strict_lock,
        margin_warn: args.margin_warn,
        command: String::new(),
        progress: !args.quiet,
        service,
        lock_service,
        fault_node: args.fault_node,
        guard: args.service.guard,
    };
    check_schedule_fits(&cfg)?;
    let command = reproduce_command(&cfg, args);
    Ok((RunConfig { command, ..cfg }, expect))
}

/// The most replicas of a service a run starts: each is a process, a port and a share of
/// the users' connections; thousands end at "too many open files" mid-start.
pub const MAX_REPLICAS: usize = 64;

/// The service asked for by `--service` and its companions, checked.
pub fn service_spec(args: &crate::cli::ServiceArgs) -> anyhow::Result<Option<ServiceSpec>> {
    let Some(command) = &args.service else {
        if args.replicas != 1 {
            bail!("--replicas needs --service CMD (the built-in designs run in this process)");
        }
        return Ok(None);
    };
    if command.trim().is_empty() {
        bail!("--service: the command is empty");
    }
    if !(1..=MAX_REPLICAS).contains(&args.replicas) {
        bail!(
            "--replicas {} is out of range: allowed 1 to {MAX_REPLICAS} (each is a process with its own port and connections)",
            args.replicas
        );
    }
    if args.service_ready_timeout.is_zero() {
        bail!("--service-ready-timeout must be positive");
    }
    if let Some(schema) = &args.schema {
        if !schema.is_file() {
            bail!("--schema {}: no such file", schema.display());
        }
    }
    if let Some(dir) = &args.service_dir {
        if !dir.is_dir() {
            bail!("--service-dir {}: no such directory", dir.display());
        }
    }
    if matches!(&args.read_sql, Some(sql) if sql.trim().is_empty()) {
        bail!("--read-sql: the query is empty");
    }
    // A bad mapping is refused here, naming its key and line, before any server starts.
    let api = match &args.api {
        Some(path) => Some(ApiSpec::load(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    Ok(Some(ServiceSpec {
        command: command.clone(),
        schema: args.schema.clone(),
        read_sql: args.read_sql.clone(),
        dir: args.service_dir.clone(),
        ready_timeout: args.service_ready_timeout,
        replicas: args.replicas,
        api,
    }))
}

/// Refuses, before anything starts, faults the system under test cannot take: the
/// service faults without a service, and `client-pause` (a hook inside the built-in
/// designs' code) with one.
pub fn check_service_faults(faults: &[Fault], service: bool) -> anyhow::Result<()> {
    let setting = crate::nemesis::faults::Setting {
        service: Some(service),
        ..Default::default()
    };
    crate::nemesis::faults::check(faults, &setting).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The most concurrent users a run may have: each holds a Postgres connection (the
/// server is started with room for twice as many, see `nodes::max_connections_for`), a
/// Redis connection and both sides of two proxied sockets, so the file-descriptor budget
/// of one process bounds it well before the servers do.
pub const MAX_CONCURRENCY: usize = 1000;
/// The most rooms: the inventory designs insert one row per room-night at setup.
pub const MAX_ROOMS: u64 = 100_000;
/// The longest booking window, in days: ten years from 2026-12-01 keeps every date the
/// history holds a valid calendar date for `check`.
pub const MAX_WINDOW_DAYS: u32 = 3650;
/// The most room-nights (inventory rows) a hotel may have.
pub const MAX_ROOM_NIGHTS: u64 = 10_000_000;

/// Range-checks every numeric flag of `overbook run`, naming the allowed range: a value
/// outside it would be clamped, wrapped or would stall the run somewhere far from the
/// command line.
fn check_ranges(args: &RunArgs, fitted: &crate::cli::fit::Fitted) -> anyhow::Result<()> {
    let ms = |d: Duration| d.as_millis();
    let within = |flag: &str, v: Duration, lo: Duration, hi: Duration| -> anyhow::Result<()> {
        if v < lo || v > hi {
            bail!(
                "{flag} {}ms is out of range: allowed {}ms to {}ms",
                ms(v),
                ms(lo),
                ms(hi)
            );
        }
        Ok(())
    };
    const MS: Duration = Duration::from_millis(1);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);
    if !(1..=MAX_CONCURRENCY).contains(&args.concurrency) {
        bail!(
            "--concurrency {} is out of range: allowed 1 to {MAX_CONCURRENCY}",
            args.concurrency
        );
    }
    if !(1..=MAX_ROOMS).contains(&fitted.rooms) {
        bail!(
            "--rooms {} is out of range: allowed 1 to {MAX_ROOMS}",
            fitted.rooms
        );
    }
    if !(7..=MAX_WINDOW_DAYS).contains(&fitted.window_days) {
        bail!(
            "--window-days {} is out of range: allowed 7 (stays are 1 to 7 nights) to {MAX_WINDOW_DAYS}",
            fitted.window_days
        );
    }
    if fitted.rooms * u64::from(fitted.window_days) > MAX_ROOM_NIGHTS {
        bail!(
            "--rooms {} x --window-days {} is {} room-nights: allowed at most {MAX_ROOM_NIGHTS}",
            fitted.rooms,
            fitted.window_days,
            fitted.rooms * u64::from(fitted.window_days)
        );
    }
    if !(0.0..=1.0).contains(&args.cancel_ratio) {
        bail!(
            "--cancel-ratio {} is out of range: allowed 0 to 1",
            args.cancel_ratio
        );
    }
    if matches!(args.rate, Some(r) if !(r > 0.0 && r <= 1_000_000.0)) {
        bail!(
            "--rate {} is out of range: allowed more than 0 to 1000000 requests per second",
            args.rate.unwrap_or_default()
        );
    }
    within("--time-limit", args.time_limit, MS, DAY)?;
    within("--lock-ttl", fitted.lock_ttl, MS, HOUR)?;
    within("--db-latency", args.db_latency, Duration::ZERO, HOUR)?;
    within("--redis-latency", args.redis_latency, Duration::ZERO, HOUR)?;
    if let Some(d) = args.client_pause {
        within("--client-pause", d, Duration::ZERO, HOUR)?;
    }
    if let Some(d) = args.fault_for {
        within("--fault-for", d, MS, DAY)?;
    }
    if let Some(d) = args.heal_for {
        within("--heal-for", d, Duration::ZERO, DAY)?;
    }
    // 0 is allowed: such a run completes nothing and says so (exit 2), which is the
    // honest answer to the question asked.
    if let Some(d) = args.op_timeout {
        within("--op-timeout", d, Duration::ZERO, HOUR)?;
    }
    Ok(())
}

/// Refuses a run whose fault schedule cannot give every requested fault a window within
/// the time limit: it would run, inject nothing (or less than asked) and could only end
/// in a vacuous verdict.
pub fn check_schedule_fits(cfg: &RunConfig) -> anyhow::Result<()> {
    let schedule = cfg.schedule();
    let missing = schedule.missing(&cfg.faults);
    if missing.is_empty() {
        return Ok(());
    }
    let wanted = cfg.faults.iter().filter(|f| **f != Fault::None).count();
    bail!(
        "no window of {} fits in --time-limit {}ms (fault windows last about {}ms after {}ms of \
         health first; windows of {wanted} faults need about {}ms): give a longer --time-limit, \
         or a shorter --fault-for/--heal-for (or --lock-ttl, which scales them)",
        missing
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.time_limit.as_millis(),
        cfg.fault_for.as_millis(),
        cfg.heal_for.as_millis(),
        time_needed(wanted, cfg.fault_for, cfg.heal_for).as_millis()
    );
}

/// The latency-vs-lease alert of the story, from lease-margin's measurements: where the
/// critical sections' p99.9 stood against the lease, the lease that would keep it under
/// the warning fraction, and the rule to paste into monitoring (docs/alerts.md).
fn print_alert(results: &checkers::Results) {
    let Some(alert) = results
        .checks
        .iter()
        .find_map(|c| c.margin.as_ref())
        .and_then(|m| m.alert())
    else {
        return;
    };
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    println!(
        "\n  lease {:.0} ms; critical-section p99.9: {} without faults, {} worst under a fault{}",
        alert.lease_ms,
        ms(alert.healthy_p999_ms),
        ms(alert.worst_p999_ms),
        alert
            .worst_window
            .as_deref()
            .map(|w| format!(" ({})", for_terminal(w)))
            .unwrap_or_default()
    );
    println!(
        "  a lease of at least {} ms keeps the measured p99.9 under the warning; alert rule (Prometheus):",
        alert.suggested_lease_ms
    );
    for line in alert.rule.lines() {
        println!("    {line}");
    }
}

/// `--lock-service` and `--fault-node`, checked before anything starts: a known service,
/// a node it has, a backend that can start it, and no fault that needs another one.
fn check_lock_service(
    args: &RunArgs,
    faults: &[crate::nemesis::Fault],
    backend: &crate::nodes::Backend,
) -> anyhow::Result<workloads::LockService> {
    use workloads::LockService;
    let lock: LockService = args
        .lock_service
        .parse()
        .map_err(|e| anyhow::anyhow!("--lock-service: {e}"))?;
    if let Some(n) = args.fault_node {
        if n >= lock.data_nodes() {
            bail!(
                "--fault-node {n}: the {lock} lock service has nodes 0 to {}",
                lock.data_nodes() - 1
            );
        }
    }
    if lock != LockService::Single && !backend.owns_processes() {
        bail!(
            "--lock-service {lock} starts its own topology of Redis servers, so it needs \
             --backend local or docker (--backend {} brings one Redis of its own)",
            backend.name()
        );
    }
    let setting = crate::nemesis::faults::Setting {
        lock_service: Some(lock),
        ..Default::default()
    };
    crate::nemesis::faults::check(faults, &setting).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(lock)
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
    if cfg.lock_service != workloads::LockService::Single {
        cmd.push_str(&format!(" --lock-service {}", cfg.lock_service));
    }
    if let Some(n) = cfg.fault_node {
        cmd.push_str(&format!(" --fault-node {n}"));
    }
    if cfg.margin_warn != checkers::WarnFraction::DEFAULT {
        cmd.push_str(&format!(" --margin-warn {}", cfg.margin_warn));
    }
    // The backend the run used, not `auto`: on another machine auto may choose otherwise.
    if cfg.backend != Backend::Local {
        cmd.push_str(&format!(" --backend {}", cfg.backend.name()));
    }
    // External servers' URLs carry their passwords, which a reproduce command (printed,
    // kept in meta.json and reports) must not: it names the variables to supply instead.
    for (flag, url, var) in [
        ("--redis-url", &args.redis_url, EXTERNAL_REDIS_VAR),
        ("--postgres-url", &args.postgres_url, EXTERNAL_POSTGRES_VAR),
    ] {
        if url.is_some() {
            cmd.push_str(&format!(" {flag} \"${var}\""));
        }
    }
    if let Some(spec) = &cfg.service {
        // The design is not used in service mode: name the service instead.
        let design = format!("--design {} ", cfg.design);
        cmd = cmd.replacen(&design, "", 1);
        cmd.push_str(&format!(" --service {}", shell_quote(&spec.command)));
        if spec.replicas != 1 {
            cmd.push_str(&format!(" --replicas {}", spec.replicas));
        }
        if let Some(f) = &spec.schema {
            cmd.push_str(&format!(
                " --schema {}",
                shell_quote(&f.display().to_string())
            ));
        }
        if let Some(sql) = &spec.read_sql {
            cmd.push_str(&format!(" --read-sql {}", shell_quote(sql)));
        }
        if let Some(api) = &spec.api {
            cmd.push_str(&format!(
                " --api {}",
                shell_quote(&api.path.display().to_string())
            ));
        }
        if let Some(g) = cfg.guard {
            cmd.push_str(&format!(" --guard {g}"));
        }
        if let Some(d) = &spec.dir {
            cmd.push_str(&format!(
                " --service-dir {}",
                shell_quote(&d.display().to_string())
            ));
        }
        cmd.push_str(&format!(
            " --service-ready-timeout {}",
            ms(spec.ready_timeout)
        ));
    }
    for (flag, image) in [
        ("--redis-image", &args.redis_image),
        ("--postgres-image", &args.postgres_image),
    ] {
        if let Some(image) = image {
            cmd.push_str(&format!(" {flag} {}", shell_quote(image)));
        }
    }
    cmd
}

/// The variable a reproduce command reads the external Redis URL from (never written out:
/// it holds a password).
pub const EXTERNAL_REDIS_VAR: &str = "OVERBOOK_REDIS_URL";
/// The variable a reproduce command reads the external Postgres URL from.
pub const EXTERNAL_POSTGRES_VAR: &str = "OVERBOOK_POSTGRES_URL";

/// `s` as one shell word: as it is when it is plain, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `overbook run` and returns the exit code.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.repeat != 1 {
        return crate::cli::repeat::run(args);
    }
    let (cfg, expect) = config_from_args(args)?;
    if let (true, Backend::Docker { images }) = (args.backend == "auto", &cfg.backend) {
        // The first run on a machine without the servers just works, and says why it is
        // slower than it could be.
        let local = crate::nodes::machine::LocalServers::find();
        eprintln!("{}", crate::nodes::machine::fallback_note(&local, images));
    }
    let subject = match &cfg.service {
        Some(s) if s.replicas == 1 => format!("service `{}`", s.command),
        Some(s) => format!("service `{}` x {} replicas", s.command, s.replicas),
        None => cfg.design.to_string(),
    };
    println!(
        "overbook: {} under {} for {:?}, {} users, lease {:?}, seed {}",
        subject,
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
    // The first Ctrl-C ends the test early but still checks and writes what was recorded.
    crate::nodes::reaper::route_first_signal();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = rt.block_on(run::run(&cfg)).context("run failed")?;
    // Don't wait for stray client tasks (e.g. a connection blocked on a partition).
    rt.shutdown_timeout(Duration::from_secs(1));

    let results = &outcome.results;
    println!();
    for check in &results.checks {
        println!(
            "  {:<22} {:<8} {}",
            for_terminal(&check.checker),
            check.validity.as_str(),
            for_terminal(&check.summary)
        );
        for a in check.anomalies.iter().take(5) {
            println!("      - {}", for_terminal(&a.message));
        }
        if check.anomalies.len() > 5 {
            println!(
                "      ... and {} more (see results.json)",
                check.anomalies.len() - 5
            );
        }
    }
    if let Some(harm) = checkers::harm::headline(results) {
        println!("\n  What it cost the guests: {harm}.");
    }
    match results.headline {
        Headline::LockFailedDatabaseHeld => println!("\n  The lock failed (two holders at once), the database held: no room-night was confirmed twice."),
        Headline::LockFailedUnguarded => println!("\n  The lock failed (two holders at once) under a design that trusts it: nothing else guards the room-nights."),
        Headline::LockFailedDataHeld => println!("\n  The lock failed (two holders at once); the data shows no anomaly (what guards it is not declared)."),
        _ => {}
    }
    print_alert(results);
    print_service_notes(&outcome.notes);
    println!(
        "\n{}: {} ({} ops in {:.1}s)",
        match results.validity {
            Validity::Valid => "VALID",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "UNKNOWN",
        },
        subject,
        outcome.ops,
        outcome.wall.as_secs_f64()
    );
    if outcome.interrupted {
        println!("  interrupted: the verdict covers only the part of the run before Ctrl-C");
    }
    println!("  run dir:   {}", outcome.dir.path.display());
    println!("  report:    {}", outcome.dir.file("report.html").display());
    println!(
        "  history:   {}",
        outcome.dir.file("history.jsonl").display()
    );
    println!("  reproduce: {}", for_terminal(&cfg.command));
    if cfg.command.contains(EXTERNAL_REDIS_VAR) {
        println!(
            "             (set {EXTERNAL_REDIS_VAR} and {EXTERNAL_POSTGRES_VAR} to the servers' URLs first)"
        );
    }

    let problems = outcome.conditions.problems();
    if !problems.is_empty() {
        eprintln!("overbook: this run did not test what it claims:");
        for p in &problems {
            eprintln!("  - {p}");
        }
    }
    let code = match (results.validity, expect) {
        (Validity::Unknown, _) => {
            if problems.is_empty() {
                eprintln!("overbook: the checkers could not decide (see results.json): treating as a harness failure");
            } else {
                eprintln!("overbook: not a verdict (see run-conditions in results.json): treating as a harness failure");
            }
            crate::EXIT_HARNESS_ERROR
        }
        (Validity::Valid, None | Some(Expect::Valid))
        | (Validity::Invalid, Some(Expect::Invalid)) => 0,
        (Validity::Invalid, None | Some(Expect::Valid)) => 1,
        (Validity::Valid, Some(Expect::Invalid)) => {
            println!(
                "  expected invalid: the canary did not sing (the harness did not catch {}){}",
                cfg.design,
                if outcome.conditions.any_fault_struck() {
                    ""
                } else {
                    "; no fault ran (--fault none): only plain concurrency was tried"
                }
            );
            1
        }
    };
    if let Some(file) = &args.summary_md {
        crate::cli::summary_md::write_run(file, &outcome.dir.path, results)?;
        println!("  summary:   {}", file.display());
    }
    if let Some(path) = &args.outcome_file {
        let summary = crate::matrix::RunSummaryFile {
            dir: outcome.dir.path.clone(),
            validity: results.validity,
            summary: one_line_summary(results),
            command: cfg.command.clone(),
            wall_ms: outcome.wall.as_millis() as u64,
            overhead_ms: outcome.overhead.as_millis() as u64,
            // Read back from disk only here: a plain run does not need them.
            measures: crate::store::load_history(&outcome.dir.file(crate::store::HISTORY))
                .map(|h| crate::matrix::measure::measures(&h, results))
                .unwrap_or_default(),
        };
        crate::store::write_file(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(Expect::Invalid), Validity::Invalid) = (expect, results.validity) {
        println!("  expected invalid: caught, as expected");
    }
    if outcome.interrupted {
        // What a shell expects of a command stopped by SIGINT, after the files are written.
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::from(code))
}

/// The service's part of the summary: replicas, malformed answers, each log's tail.
fn print_service_notes(notes: &std::collections::BTreeMap<String, String>) {
    if notes.is_empty() {
        return;
    }
    println!();
    // The values are the service's words (its log, its answers): escaped for the terminal.
    for (k, v) in notes {
        let k = for_terminal(k);
        if v.contains('\n') || k.starts_with("service log tail") {
            println!("  {k}:");
            for line in v.lines() {
                println!("    | {}", for_terminal(line));
            }
        } else {
            println!("  {k}: {}", for_terminal(v));
        }
    }
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
        return format!("no anomalies; {}", results.validity.as_str());
    }
    // The business headline first, then the checkers' technical line.
    match checkers::harm::headline(results) {
        Some(harm) => format!("{harm}. {}", found.join("; ")),
        None => found.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn command_of(argv: &[&str]) -> String {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("not a run")
        };
        config_from_args(&args).unwrap().0.command
    }

    /// Issue 23.10: an external run's reproduce command left out the URLs (it did not
    /// reproduce), and images were not shell-quoted.
    #[test]
    fn reproduce_commands_name_external_urls_without_passwords_and_quote_images() {
        let cmd = command_of(&[
            "overbook",
            "run",
            "--backend",
            "external",
            "--redis-url",
            "redis://:S3cr3t@10.0.0.1:6379/0",
            "--postgres-url",
            "host=10.0.0.2 password=S3cr3t",
            "--fault",
            "none",
        ]);
        assert!(!cmd.contains("S3cr3t"), "{cmd}");
        assert!(
            cmd.contains(
                r#"--redis-url "$OVERBOOK_REDIS_URL" --postgres-url "$OVERBOOK_POSTGRES_URL""#
            ),
            "{cmd}"
        );
        let cmd = command_of(&[
            "overbook",
            "run",
            "--redis-image",
            "my redis;rm -rf x",
            "--postgres-image",
            "pg:15",
            "--fault",
            "none",
        ]);
        assert!(cmd.contains("--redis-image 'my redis;rm -rf x'"), "{cmd}");
        let words = crate::shrink::command::RunCommand::parse(&cmd).unwrap();
        assert_eq!(words.get("--redis-image"), Some("my redis;rm -rf x"));
        assert_eq!(words.get("--postgres-image"), Some("pg:15"));
    }

    /// Issue 23.9: `--replicas` had no bound and a large one failed mid-start at "too
    /// many open files"; it is refused up front.
    #[test]
    fn replicas_are_bounded() {
        let parse = |n: &str| {
            let cli = crate::cli::Cli::try_parse_from([
                "overbook",
                "run",
                "--service",
                "true",
                "--replicas",
                n,
                "--fault",
                "none",
            ])
            .unwrap();
            let crate::cli::Command::Run(args) = cli.command else {
                panic!("not a run")
            };
            config_from_args(&args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(parse("64").is_ok());
        let e = parse("100000").unwrap_err();
        assert!(
            e.contains("--replicas 100000 is out of range: allowed 1 to 64"),
            "{e}"
        );
        assert!(parse("0").is_err());
    }

    /// A matrix cell's tooltip says what the run cost the guests before the checkers'
    /// technical line.
    #[test]
    fn the_one_line_summary_opens_with_the_business_headline() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../checkers/testdata/invalid/told-is-true--confirmed-before-a-commit-that-failed.jsonl");
        let h = crate::store::load_history(&file).unwrap();
        let r = checkers::check_all(&h, &checkers::CheckOptions::default());
        let s = one_line_summary(&r);
        assert!(
            s.starts_with("1 guest was told they had a room they do not have. "),
            "{s}"
        );
        assert!(
            s.contains("told-is-true: 1 anomalies (first: phantom confirmation"),
            "{s}"
        );
    }
}
