//! `overbook matrix`: every design under every fault (and seed), each cell its own run
//! with its own servers and store directory, judged against what the design declares it
//! survives. `overbook matrix merge` joins the `matrix.json` of several shards.
//!
//! Each cell runs as a child `overbook run` process: a cell that crashes, hangs past its
//! deadline or leaks a server cannot take the rest of the matrix with it, and `--jobs`
//! parallelism is just more children.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use checkers::Validity;
use reports::matrix::{render_matrix_page, Matrix, MatrixCell};
use serde::{Deserialize, Serialize};
use workloads::DesignName;
use workloads::LockService;

use crate::run::spec::RunSpec;

/// `overbook matrix`'s own options (the run options every cell shares are a `RunSpec`).
#[derive(Debug, Clone, clap::Args)]
pub struct MatrixOptions {
    /// Designs (rows), comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub designs: String,
    /// Lock services, comma-separated, or `all` (single, sentinel, redlock): each design
    /// gets a row per service, named `design@service` off a single Redis (docs/locks.md).
    #[arg(long, default_value = "single", value_name = "SERVICES")]
    pub lock_services: String,
    /// Faults (columns), comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub faults: String,
    /// Runs per (design, fault), with seeds --seed, --seed+1, ... (`--repeat K` is the
    /// same): each cell then reports its detection rate, and a cell whose expectation held
    /// in some runs only is flaky.
    #[arg(long, visible_alias = "repeat", default_value_t = 1)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long each cell's clients run.
    #[arg(long, default_value = "10s", value_parser = crate::run::spec::parse_duration)]
    pub time_limit: Duration,
    /// Cells run at the same time (each starts its own servers).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// A cell still running after this long is stopped (Ctrl-C, then SIGKILL) and
    /// reported as a harness error (default: twice --time-limit plus 3 minutes, room for
    /// starting containers, op timeouts and the report).
    #[arg(long, value_parser = crate::run::spec::parse_duration)]
    pub cell_timeout: Option<Duration>,
    /// Run only shard K of N (cells whose position is K-1 modulo N), e.g. 2/4: N CI
    /// runners given the same arguments share one matrix.
    #[arg(long, default_value = "1/1")]
    pub shard: String,
    /// Write one JUnit testcase per cell to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Replace a design's declared expectation for one cell: DESIGN:FAULT=valid|invalid|either
    /// (repeatable), e.g. `--expect my-design:kill-db=invalid`.
    #[arg(long)]
    pub expect: Vec<String>,
    /// Store root; the matrix goes to STORE/matrix/<timestamp>/.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Compare with a previous matrix (its matrix.json or directory): the page shows what
    /// changed first, JUnit marks regressions, and the exit code is 1 only on a
    /// regression (or a new cell that fails).
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// Append a markdown summary for reviewers to FILE (verdict, the worst cell's
    /// business headline and anomaly, the diff against --baseline, links to the reports),
    /// e.g. $GITHUB_STEP_SUMMARY.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// `overbook matrix merge DIR...`.
#[derive(Debug, clap::Args)]
pub struct MatrixMergeArgs {
    /// Matrix directories (STORE/matrix/<timestamp>/), one per shard.
    pub dirs: Vec<PathBuf>,
    /// Store root for the merged matrix (STORE/matrix/<timestamp>-merged/).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Write one JUnit testcase per cell to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Merge even when some shards are missing (or a directory has no plan.json): the
    /// merged verdict then covers only the cells present.
    #[arg(long)]
    pub allow_partial: bool,
    /// Compare the merged matrix with a previous one (see `matrix --baseline`).
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// Append the merged matrix's markdown summary to FILE (as `matrix --summary-md`).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

pub mod diff;
pub mod junit;
pub mod measure;
pub mod nightly;
pub mod plan;
pub mod summary_md;
pub mod trend;

use crate::nemesis::Fault;
use crate::store::utc_stamp;
use plan::{plan, Cell, ExpectOverride, Expectation, Row, Shard};

/// What `overbook run --outcome-file` writes: enough for the matrix to judge the cell
/// without re-reading the run's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummaryFile {
    /// The run directory.
    pub dir: PathBuf,
    /// The verdict.
    pub validity: Validity,
    /// One line: anomalies found, by checker.
    pub summary: String,
    /// The reproduce command.
    pub command: String,
    /// Wall time, ms.
    pub wall_ms: u64,
    /// Of which not testing, ms.
    pub overhead_ms: u64,
    /// What the run measured beyond its verdict (see [`measure`]).
    #[serde(default)]
    pub measures: reports::matrix::CellMeasures,
}

/// Runs `overbook matrix`: every cell is `base` (the run options, the service, the time
/// limit and store the matrix was given) with the cell's design, fault and seed;
/// `run_args` are the run options as given after `--` (for the plan and errors).
pub fn run(args: &MatrixOptions, run_args: &[String], base: &RunSpec) -> anyhow::Result<ExitCode> {
    let service = base.service.is_some();
    let designs = rows(args, service)?;
    let faults = columns(args, service)?;
    check_counts(args)?;
    let shard: Shard = args.shard.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let overrides = args
        .expect
        .iter()
        .map(|e| e.parse::<ExpectOverride>().map_err(|e| anyhow::anyhow!(e)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cells: Vec<Cell> = plan(&designs, &faults, args.seeds, args.seed, &overrides)
        .into_iter()
        .filter(|c| shard.owns(c))
        .collect();
    if cells.is_empty() {
        bail!(
            "shard {shard} of {} designs x {} faults x {} seeds holds no cell: use fewer shards",
            designs.len(),
            faults.len(),
            args.seeds
        );
    }
    // Every cell's arguments are checked before the first cell runs: a bad flag after
    // `--` must be one error now, not a harness error in every cell.
    validate_cells(args, run_args, base, &cells)?;
    let baseline = nightly::load_baseline(args.baseline.as_deref())?;
    let plan_file = PlanFile {
        designs: designs.iter().map(|d| d.to_string()).collect(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
        seeds: args.seeds,
        seed: args.seed,
        time_limit_ms: args.time_limit.as_millis() as u64,
        expect: args.expect.clone(),
        run_args: run_args.to_vec(),
        shard: shard.to_string(),
        cells: cells.len(),
    };
    let matrix = run_plan(args, base, &plan_file, &cells)?;
    let outputs = Outputs {
        junit: args.junit.as_deref(),
        summary_md: args.summary_md.as_deref(),
        store: &args.store,
    };
    let out_dir = args.store.join("matrix").join(&matrix.started_at);
    write_matrix(&matrix, &out_dir, &outputs, baseline.as_ref())
}

/// The rows: one for a service; else the designs asked for, on each lock service asked
/// for, service-major (each lock service's rows stand together on the page); a design
/// that cannot run on a service (lock-renewal on Redlock) has no row there.
fn rows(args: &MatrixOptions, service: bool) -> anyhow::Result<Vec<Row>> {
    if service {
        if args.lock_services != "single" {
            bail!("--lock-services is for the built-in designs; a --service takes its leases from the one Redis in REDIS_URL");
        }
        return Ok(vec![Row::Service]);
    }
    let designs = parse_list(&args.designs, DesignName::all(), |s| {
        s.parse::<DesignName>().map_err(|e| e.to_string())
    })
    .context("--designs")?;
    let services = parse_list(&args.lock_services, &LockService::ALL, |s| {
        s.parse::<LockService>().map_err(|e| e.to_string())
    })
    .context("--lock-services")?;
    Ok(services
        .iter()
        .flat_map(|&l| {
            designs
                .iter()
                .filter(move |d| d.runs_on(l))
                .map(move |&d| Row::Design(d, l))
        })
        .collect())
}

/// The columns: the faults asked for; `all` means every fault the rows can take (the
/// service faults need a service, client-pause a hook inside a built-in design).
fn columns(args: &MatrixOptions, service: bool) -> anyhow::Result<Vec<Fault>> {
    // Every fault the row can take (`faults::check`): the service faults need a
    // service, and client-pause needs a hook inside a built-in design.
    let setting = crate::nemesis::faults::Setting {
        service: Some(service),
        ..Default::default()
    };
    let takes = |f: &Fault| crate::nemesis::faults::check(&[*f], &setting).is_ok();
    let possible: Vec<Fault> = Fault::all().iter().copied().filter(takes).collect();
    let faults = parse_list(&args.faults, &possible, |s| {
        s.parse::<Fault>().map_err(|e| e.to_string())
    })
    .context("--faults")?;
    crate::run::spec::check_service_faults(&faults, service)?;
    Ok(faults)
}

/// `--seeds`, `--seed` and `--jobs` in range.
fn check_counts(args: &MatrixOptions) -> anyhow::Result<()> {
    if !(1..=MAX_SEEDS).contains(&args.seeds) {
        bail!(
            "--seeds {} is out of range: allowed 1 to {MAX_SEEDS}",
            args.seeds
        );
    }
    if args.seed.checked_add(args.seeds).is_none() {
        bail!(
            "--seed {} + --seeds {} overflows: allowed at most {}",
            args.seed,
            args.seeds,
            u64::MAX - args.seeds
        );
    }
    if !(1..=MAX_JOBS).contains(&args.jobs) {
        bail!(
            "--jobs {} is out of range: allowed 1 to {MAX_JOBS}",
            args.jobs
        );
    }
    Ok(())
}

/// Writes the plan, runs the cells and returns the matrix they make, saying how long
/// the cells took and how much of it was overhead.
fn run_plan(
    args: &MatrixOptions,
    base: &RunSpec,
    plan_file: &PlanFile,
    cells: &[Cell],
) -> anyhow::Result<Matrix> {
    let started_at = utc_stamp(SystemTime::now());
    let out_dir = args.store.join("matrix").join(&started_at);
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    println!(
        "overbook matrix: {} designs x {} faults x {} seeds, shard {}: {} cells, {} at a time",
        plan_file.designs.len(),
        plan_file.faults.len(),
        args.seeds,
        plan_file.shard,
        cells.len(),
        args.jobs
    );
    crate::store::write_file(out_dir.join(PLAN), serde_json::to_vec_pretty(plan_file)?)
        .with_context(|| format!("cannot write {}", out_dir.join(PLAN).display()))?;
    let exe = std::env::current_exe().context("cannot find the overbook executable")?;
    let started = Instant::now();
    let results = run_cells(&exe, args, base, cells, &out_dir);
    let (wall, overhead): (u64, u64) = results
        .iter()
        .fold((0, 0), |(w, o), c| (w + c.wall_ms, o + c.overhead_ms));
    if !results.is_empty() {
        println!(
            "{} cells in {:.1}s ({} jobs); per cell on average {:.1}s, of which {:.2}s overhead (server start, schema, final read, checks)",
            results.len(),
            started.elapsed().as_secs_f64(),
            args.jobs,
            wall as f64 / 1000.0 / results.len() as f64,
            overhead as f64 / 1000.0 / results.len() as f64,
        );
    }
    Ok(Matrix {
        started_at,
        shards: vec![plan_file.shard.clone()],
        designs: plan_file.designs.clone(),
        faults: plan_file.faults.clone(),
        cells: results,
    })
}

/// Runs `overbook matrix merge DIR...`: one page and one exit code for all shards.
/// Refuses (before writing anything) shards of different matrices, and, unless
/// `--allow-partial`, a set of shards that leaves some out.
pub fn merge(args: &MatrixMergeArgs) -> anyhow::Result<ExitCode> {
    if args.dirs.is_empty() {
        bail!("matrix merge needs at least one matrix directory (each holding matrix.json)");
    }
    check_shards(&args.dirs, args.allow_partial)?;
    let baseline = nightly::load_baseline(args.baseline.as_deref())?;
    let store_root = std::fs::canonicalize(&args.store)
        .with_context(|| format!("cannot open the store {}", args.store.display()))?;
    let mut merged: Option<Matrix> = None;
    let mut cells: BTreeMap<(usize, String, String, u64), MatrixCell> = BTreeMap::new();
    for dir in &args.dirs {
        let path = dir.join("matrix.json");
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let m: Matrix = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a matrix.json", path.display()))?;
        // Reports are linked relative to each shard's store (two levels above its
        // matrix directory); re-base them onto the merged page's store.
        let shard_store = std::fs::canonicalize(dir)
            .with_context(|| format!("cannot open {}", dir.display()))?
            .join("../..");
        let base = relative_path(&store_root, &normalize(&shard_store));
        for mut c in m.cells.clone() {
            if !c.report.is_empty() {
                c.report = base.join(&c.report).to_string_lossy().into_owned();
            }
            let key = (c.ordinal, c.design.clone(), c.fault.clone(), c.seed);
            if cells.insert(key, c).is_some() {
                bail!("{} repeats a cell another shard already ran: were the same shards merged twice?", path.display());
            }
        }
        merged = Some(match merged {
            None => m,
            Some(mut acc) => {
                acc.shards.extend(m.shards);
                for d in m.designs {
                    if !acc.designs.contains(&d) {
                        acc.designs.push(d);
                    }
                }
                for f in m.faults {
                    if !acc.faults.contains(&f) {
                        acc.faults.push(f);
                    }
                }
                acc
            }
        });
    }
    let mut matrix = merged.expect("at least one directory was read");
    let started_at = utc_stamp(SystemTime::now());
    matrix.started_at = started_at.clone();
    matrix.shards.sort();
    matrix.cells = cells.into_values().collect();
    println!(
        "merged {} shards: {} cells",
        matrix.shards.len(),
        matrix.cells.len()
    );
    // Only now, with everything read and checked, is the merged directory made; a
    // failure writing it takes it away again.
    let out_dir = args
        .store
        .join("matrix")
        .join(format!("{started_at}-merged"));
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    nightly::write_merged_plan(&args.dirs, &matrix, &out_dir);
    let outputs = Outputs {
        junit: args.junit.as_deref(),
        summary_md: args.summary_md.as_deref(),
        store: &args.store,
    };
    let written = write_matrix(&matrix, &out_dir, &outputs, baseline.as_ref());
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    written
}

/// The most seeds per (design, fault): more is a benchmark, not a matrix.
pub const MAX_SEEDS: u64 = 10_000;
/// The most cells run at once (each starts its own servers).
pub const MAX_JOBS: usize = 64;
/// The file in each matrix directory that says which matrix and which shard it is.
pub const PLAN: &str = "plan.json";

/// What a matrix was asked to run, written beside its `matrix.json` so `merge` can tell
/// shards of one matrix from shards of another, and see which are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFile {
    /// `--designs`, resolved.
    pub designs: Vec<String>,
    /// `--faults`, resolved.
    pub faults: Vec<String>,
    /// `--seeds`.
    pub seeds: u64,
    /// `--seed`.
    pub seed: u64,
    /// `--time-limit`, ms.
    pub time_limit_ms: u64,
    /// `--expect` overrides, as given.
    pub expect: Vec<String>,
    /// The run options after `--`.
    pub run_args: Vec<String>,
    /// This directory's shard, `K/N`.
    pub shard: String,
    /// Cells this shard ran.
    pub cells: usize,
}

impl PlanFile {
    /// The plan without the shard's own fields: equal for every shard of one matrix.
    fn matrix(&self) -> PlanFile {
        PlanFile {
            shard: String::new(),
            cells: 0,
            ..self.clone()
        }
    }
}

/// Refuses shards that are not of one matrix, repeated shards and (unless
/// `allow_partial`) missing shards or directories with no plan, naming each.
fn check_shards(dirs: &[PathBuf], allow_partial: bool) -> anyhow::Result<()> {
    let mut plans: Vec<(&PathBuf, PlanFile)> = Vec::new();
    let mut unplanned = Vec::new();
    for dir in dirs {
        let path = dir.join(PLAN);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let plan: PlanFile = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a matrix plan", path.display()))?;
                plans.push((dir, plan));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => unplanned.push(dir),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    if !unplanned.is_empty() && !allow_partial {
        bail!(
            "no {PLAN} in {}: cannot tell which matrix or shard it is (--allow-partial merges anyway)",
            unplanned
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let Some((first_dir, first)) = plans.first() else {
        return Ok(());
    };
    for (dir, plan) in &plans[1..] {
        if plan.matrix() != first.matrix() {
            bail!(
                "{} and {} are shards of different matrices (designs, faults, seeds, time limit, \
                 expectations or run options differ): run every shard with the same arguments",
                first_dir.display(),
                dir.display()
            );
        }
    }
    let mut seen: BTreeMap<usize, &PathBuf> = BTreeMap::new();
    let mut count = None;
    for (dir, plan) in &plans {
        let shard: Shard = plan.shard.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        if *count.get_or_insert(shard.count) != shard.count {
            bail!(
                "{} is shard {} but another is of {} shards: run every shard with the same --shard N",
                dir.display(),
                plan.shard,
                count.unwrap_or_default()
            );
        }
        if let Some(other) = seen.insert(shard.index, dir) {
            bail!(
                "shard {} appears twice: {} and {}",
                plan.shard,
                other.display(),
                dir.display()
            );
        }
    }
    let count = count.unwrap_or(1);
    let missing: Vec<String> = (1..=count)
        .filter(|k| !seen.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() && !allow_partial {
        bail!(
            "missing shards {} of {count}: merge them all, or pass --allow-partial",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The run one cell makes: `base` with the cell's design (and lock service, unless
/// single, which leaves the run options' own), fault and seed.
fn cell_spec(base: &RunSpec, cell: &Cell) -> RunSpec {
    let mut spec = RunSpec {
        faults: vec![cell.fault],
        seed: Some(cell.seed),
        ..base.clone()
    };
    if let Row::Design(design, lock) = cell.design {
        spec.design = design;
        if lock != LockService::Single {
            spec.lock_service = lock;
        }
    }
    spec
}

/// Checks every cell's run before the first one starts: the run options, their ranges,
/// each row's lock service against the backend, and that each cell's fault fits the
/// time limit. Asks nothing of the machine.
fn validate_cells(
    args: &MatrixOptions,
    run_args: &[String],
    base: &RunSpec,
    cells: &[Cell],
) -> anyhow::Result<()> {
    let mut rows: Vec<Row> = cells.iter().map(|c| c.design).collect();
    rows.sort();
    rows.dedup();
    for row in rows {
        let mut of_row = cells.iter().filter(|c| c.design == row);
        if let Some(first) = of_row.next() {
            cell_spec(base, first).check().with_context(|| {
                format!(
                    "row {row}: --time-limit {}ms -- {}",
                    args.time_limit.as_millis(),
                    run_args.join(" ")
                )
            })?;
        }
        for cell in of_row {
            cell_spec(base, cell).check().with_context(|| {
                format!(
                    "cell {} under {} (seed {})",
                    cell.design, cell.fault, cell.seed
                )
            })?;
        }
    }
    Ok(())
}

/// What a matrix writes besides its directory: the JUnit file and the markdown summary
/// (whose links start from the store root the cells' reports are relative to).
struct Outputs<'a> {
    junit: Option<&'a Path>,
    summary_md: Option<&'a Path>,
    store: &'a Path,
}

/// Writes matrix.json, matrix.html, the JUnit file and the markdown summary; prints the misses; returns the
/// exit code (0 only when every cell met its expectation; with a baseline, 0 unless a
/// cell regressed or a new cell fails).
fn write_matrix(
    matrix: &Matrix,
    out_dir: &Path,
    outputs: &Outputs<'_>,
    baseline: Option<&diff::LoadedMatrix>,
) -> anyhow::Result<ExitCode> {
    let diff = baseline.map(|b| nightly::against(b, matrix, out_dir));
    crate::store::write_file(
        out_dir.join("matrix.json"),
        serde_json::to_vec_pretty(matrix)?,
    )?;
    crate::store::write_file(
        out_dir.join("matrix.html"),
        render_matrix_page(matrix, "../../", diff.as_ref()),
    )?;
    if let Some(path) = outputs.junit {
        crate::store::write_file(path, junit::junit_xml(matrix, diff.as_ref()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = outputs.summary_md {
        summary_md::write_matrix(path, matrix, diff.as_ref(), outputs.store, out_dir)?;
        println!("summary: {}", path.display());
    }
    nightly::print_rates(matrix);
    let code = write_verdicts(matrix, out_dir);
    match &diff {
        Some(d) => nightly::finish(d, out_dir),
        None => Ok(code),
    }
}

/// Prints where the page is and the cells that missed; the exit code without a baseline.
fn write_verdicts(matrix: &Matrix, out_dir: &Path) -> ExitCode {
    let missed: Vec<&MatrixCell> = matrix.cells.iter().filter(|c| !c.met).collect();
    println!("matrix: {}", out_dir.join("matrix.html").display());
    if missed.is_empty() {
        println!("every cell met its expectation");
        ExitCode::SUCCESS
    } else {
        println!("{} cells did not meet their expectation:", missed.len());
        // A merged matrix.json is anyone's file: every string from it is escaped.
        use checkers::text::for_terminal;
        for c in &missed {
            println!(
                "  {} under {} (seed {}): expected {}, got {}: {}\n    reproduce: {}",
                for_terminal(&c.design),
                for_terminal(&c.fault),
                c.seed,
                for_terminal(&c.expected.to_string()),
                c.verdict.map_or("harness error", |v| v.as_str()),
                for_terminal(&c.summary),
                for_terminal(&c.reproduce)
            );
        }
        ExitCode::from(1)
    }
}

/// Runs the cells, `args.jobs` at a time, printing one line per finished cell.
fn run_cells(
    exe: &Path,
    args: &MatrixOptions,
    base: &RunSpec,
    cells: &[Cell],
    out_dir: &Path,
) -> Vec<MatrixCell> {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(cells.len()));
    let bar = indicatif::ProgressBar::new(cells.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:30} {pos}/{len} cells {msg}",
        )
        .expect("valid template"),
    );
    let bar = Arc::new(bar);
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(cells.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cell) = cells.get(i) else { break };
                let result = run_cell(exe, args, &cell_spec(base, cell), cell, out_dir);
                let mark = if result.met { "ok  " } else { "MISS" };
                let line = format!(
                    "{mark} {} under {} (seed {}): expected {}, got {} in {:.1}s{}",
                    result.design,
                    result.fault,
                    result.seed,
                    result.expected,
                    result.verdict.map_or("harness error", |v| v.as_str()),
                    result.wall_ms as f64 / 1000.0,
                    if result.met {
                        String::new()
                    } else {
                        format!(": {}", checkers::text::for_terminal(&result.summary))
                    }
                );
                // A hidden bar (not a terminal: CI logs) swallows println; the per-cell
                // lines are the CI log's progress, so they must always reach stdout.
                if bar.is_hidden() {
                    println!("{line}");
                } else {
                    bar.println(line);
                }
                bar.inc(1);
                done.lock().unwrap_or_else(|p| p.into_inner()).push(result);
            });
        }
    });
    bar.finish_and_clear();
    let mut results = done.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|c| c.ordinal);
    results
}

/// Runs one cell, `spec`, as a child `overbook run` and judges its verdict.
fn run_cell(
    exe: &Path,
    args: &MatrixOptions,
    spec: &RunSpec,
    cell: &Cell,
    out_dir: &Path,
) -> MatrixCell {
    let outcome_file = out_dir.join(format!("cell-{}.json", cell.ordinal));
    let log_file = out_dir.join(format!("cell-{}.log", cell.ordinal));
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .args(spec.words())
        .arg("--store")
        .arg(&spec.store)
        .arg("--quiet")
        .arg("--outcome-file")
        .arg(&outcome_file)
        .stdin(Stdio::null());
    let started = Instant::now();
    let deadline = cell_deadline(args);
    let status = match std::fs::File::create(&log_file) {
        Ok(log) => match log.try_clone() {
            Ok(log2) => cmd
                .stdout(log)
                .stderr(log2)
                .spawn()
                .and_then(|child| wait_until_deadline(child, deadline)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    let reproduce_fallback = spec.command();
    let summary: Option<RunSummaryFile> = std::fs::read(&outcome_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut result = MatrixCell {
        ordinal: cell.ordinal,
        design: cell.design.to_string(),
        fault: cell.fault.to_string(),
        seed: cell.seed,
        expected: cell.expect.as_str().to_string(),
        verdict: None,
        met: false,
        summary: String::new(),
        reproduce: reproduce_fallback,
        report: String::new(),
        wall_ms,
        overhead_ms: 0,
        measures: Default::default(),
    };
    match (status, summary) {
        (Ok(CellExit::TimedOut), _) => {
            result.summary = format!(
                "harness error: the cell was still running after its deadline of {:.0} s and was stopped; see {}: {}",
                deadline.as_secs_f64(),
                log_file.display(),
                last_line(&log_file)
            );
        }
        (Ok(_), Some(s)) => {
            result.met = match cell.expect {
                Expectation::Valid => s.validity == Validity::Valid,
                Expectation::Invalid => s.validity == Validity::Invalid,
                Expectation::Either => s.validity != Validity::Unknown,
            };
            result.verdict = Some(s.validity);
            result.summary = s.summary;
            result.reproduce = s.command;
            result.overhead_ms = s.overhead_ms;
            result.measures = s.measures;
            result.report = s
                .dir
                .strip_prefix(&args.store)
                .map(|p| p.join("report.html").to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        (Ok(CellExit::Exited(status)), None) => {
            result.summary = format!(
                "the run failed ({status}); see {}: {}",
                log_file.display(),
                last_line(&log_file)
            );
        }
        (Err(e), _) => result.summary = format!("cannot start {}: {e}", exe.display()),
    }
    result
}

/// How a cell's child process ended.
#[derive(Debug)]
pub(crate) enum CellExit {
    /// By itself.
    Exited(std::process::ExitStatus),
    /// Stopped at its deadline.
    TimedOut,
}

/// How long a cell may run: twice its time limit plus three minutes, unless
/// `--cell-timeout` says otherwise. Generous on purpose: starting containers, ops running
/// into their timeouts, the final read and the report all come on top of the time limit,
/// and a loaded CI machine is slow at all of them; only a hung cell should reach it.
fn cell_deadline(args: &MatrixOptions) -> Duration {
    args.cell_timeout
        .unwrap_or(args.time_limit * 2 + Duration::from_secs(180))
}

/// How long a cell stopped at its deadline gets to clean up after Ctrl-C.
const CELL_GRACE: Duration = Duration::from_secs(15);

/// Waits for a cell's child; at `deadline` interrupts it (its Ctrl-C handler heals and
/// stops its servers), and kills it if it is still there `CELL_GRACE` later. Nothing it
/// started outlives it either way (the reaper and the servers' parent-death signal).
pub(crate) fn wait_until_deadline(
    mut child: std::process::Child,
    deadline: Duration,
) -> std::io::Result<CellExit> {
    let started = Instant::now();
    let poll = Duration::from_millis(100);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(CellExit::Exited(status));
        }
        if started.elapsed() >= deadline {
            break;
        }
        std::thread::sleep(poll);
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: signalling our own child, which has not been reaped (try_wait saw it
        // running), so the pid cannot have been reused.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
    let interrupted = Instant::now();
    while interrupted.elapsed() < CELL_GRACE {
        if child.try_wait()?.is_some() {
            return Ok(CellExit::TimedOut);
        }
        std::thread::sleep(poll);
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(CellExit::TimedOut)
}

pub(crate) fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// `a,b,c` into values, or every value when the list is `all`.
fn parse_list<T: Copy>(
    list: &str,
    all: &[T],
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<Vec<T>> {
    if list.trim() == "all" {
        return Ok(all.to_vec());
    }
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        out.push(parse(item).map_err(|e| anyhow::anyhow!(e))?);
    }
    if out.is_empty() {
        bail!("empty list");
    }
    Ok(out)
}

/// Removes `.` and `..` components lexically (the path is already canonical up to them).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The path from directory `from` to `to`, both absolute.
pub(crate) fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_then_descend() {
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/c/d")),
            PathBuf::from("../c/d")
        );
        assert_eq!(
            relative_path(Path::new("/a"), Path::new("/a")),
            PathBuf::new()
        );
        assert_eq!(
            normalize(Path::new("/a/b/m/x/../..")),
            PathBuf::from("/a/b")
        );
    }
}
