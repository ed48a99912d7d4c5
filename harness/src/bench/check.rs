//! `overbook bench check`: how fast `overbook check` is, and how much memory it needs.
//!
//! Generates a synthetic history (the serial hotel model of `checkers::synth`, so every
//! checker has real work and the verdict is known: valid), writes it to a temp file, then
//! measures in fresh child processes of this same binary, one per measurement, so that
//! each child's peak resident memory (VmHWM) is the peak for exactly that work and not
//! for the generation done here. Prints figures; asserts nothing about speed.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use checkers::synth::{serial_hotel, SynthConfig};
use checkers::{check_all, read_history, CheckOptions, HistoryWriter, Validity};
use serde::{Deserialize, Serialize};

use super::options::BenchCheckArgs;

/// Which measurement a child process makes.
const MODE_END_TO_END: &str = "end-to-end";
const MODE_SPLIT: &str = "split";

/// What one child measured.
#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    ops: u64,
    /// Wall-clock and CPU seconds of each phase (`split` mode times them apart).
    parse: Option<Secs>,
    check: Option<Secs>,
    total: Secs,
    base_hwm_kb: u64,
    hwm_kb: u64,
    validity: Validity,
}

/// Wall-clock and CPU time of one phase. CPU time is the figure "on one core" means: the
/// machine may be shared (other builds, other benchmarks) and wall time then includes
/// waiting for a core.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Secs {
    wall: f64,
    cpu: f64,
}

/// Starts timing a phase.
struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: cpu_secs(),
        }
    }

    fn stop(&self) -> Secs {
        Secs {
            wall: self.wall.elapsed().as_secs_f64(),
            cpu: cpu_secs() - self.cpu,
        }
    }
}

/// CPU time this process has used (user + system), in seconds.
fn cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which outlives the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Removes the generated history even if the benchmark fails half way.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the benchmark (or, with `--worker`, one measurement in this process).
pub fn run(args: &BenchCheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(mode) = &args.worker {
        let input = args.input.as_deref().context("--worker needs --input")?;
        let m = measure(mode, input)?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(ExitCode::SUCCESS);
    }
    let n = args.ops;
    println!(
        "overbook bench check: {} ops, single thread{}",
        group(n as u64),
        if cfg!(debug_assertions) {
            " (DEBUG BUILD: figures are not meaningful, use --release)"
        } else {
            ""
        }
    );
    let full = generate(n, "full")?;
    let size = std::fs::metadata(&full.0)?.len();
    let lines = count_lines(&full.0)?;
    println!(
        "history: {} lines, {:.1} MB ({} bytes/line)",
        group(lines),
        size as f64 / 1e6,
        size / lines.max(1)
    );
    let runs = args.runs;
    let mut e2e: Vec<Measurement> = Vec::new();
    let mut split: Vec<Measurement> = Vec::new();
    for _ in 0..runs {
        e2e.push(child(MODE_END_TO_END, &full.0)?);
        split.push(child(MODE_SPLIT, &full.0)?);
    }
    let ops = e2e[0].ops as f64;
    let line = |what: &str, secs: &dyn Fn(&Measurement) -> Option<Secs>, ms: &[Measurement]| {
        let cpu = best(ms, |m| secs(m).map_or(f64::INFINITY, |s| s.cpu));
        let wall = best(ms, |m| secs(m).map_or(f64::INFINITY, |s| s.wall));
        println!(
            "{what:<24}{cpu:.3} s CPU = {} ops/s per core (wall {wall:.3} s = {} ops/s)",
            group((ops / cpu) as u64),
            group((ops / wall) as u64)
        );
    };
    println!(
        "best of {runs} fresh processes each; verdict {}",
        e2e[0].validity.as_str()
    );
    line("parse+check end to end:", &|m| Some(m.total), &e2e);
    line("parse alone:", &|m| m.parse, &split);
    line("check alone:", &|m| m.check, &split);
    let m = &e2e[0];
    let per_op =
        |m: &Measurement| (m.hwm_kb.saturating_sub(m.base_hwm_kb)) as f64 * 1024.0 / m.ops as f64;
    println!(
        "peak memory (VmHWM, end to end): {:.1} MB, {:.1} MB above the process baseline = {:.0} bytes/op",
        m.hwm_kb as f64 / 1024.0,
        m.hwm_kb.saturating_sub(m.base_hwm_kb) as f64 / 1024.0,
        per_op(m)
    );
    drop(full);
    // Memory linear in the history: a quarter of the ops should need a quarter of it.
    let quarter = generate(n / 4, "quarter")?;
    let q = child(MODE_END_TO_END, &quarter.0)?;
    println!(
        "linearity: {} ops -> {:.0} bytes/op, {} ops -> {:.0} bytes/op",
        group(q.ops),
        per_op(&q),
        group(m.ops),
        per_op(m)
    );
    Ok(ExitCode::SUCCESS)
}

fn best(ms: &[Measurement], f: impl Fn(&Measurement) -> f64) -> f64 {
    ms.iter().map(f).fold(f64::INFINITY, f64::min)
}

fn generate(n: usize, tag: &str) -> anyhow::Result<TempFile> {
    let path = std::env::temp_dir().join(format!(
        "overbook-bench-check-{}-{tag}.jsonl",
        std::process::id()
    ));
    let guard = TempFile(path.clone());
    let ops = serial_hotel(&SynthConfig {
        seed: 42,
        events: n,
        processes: 32,
        rooms: 500,
        days: 365,
        max_nights: 7,
        cancel_pct: 10,
        info_pct: 2,
        traces: true,
        nemesis: true,
    });
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = HistoryWriter::new(BufWriter::with_capacity(1 << 20, file));
    for op in &ops {
        w.append(op)?;
    }
    w.flush()?;
    Ok(guard)
}

fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut n = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        r.consume(len);
    }
}

/// Runs one measurement in a fresh process of this binary.
fn child(mode: &str, input: &Path) -> anyhow::Result<Measurement> {
    let exe = std::env::current_exe().context("cannot find the overbook binary")?;
    let out = Command::new(exe)
        .args(["bench", "check", "--worker", mode, "--input"])
        .arg(input)
        .output()
        .context("cannot start the measuring process")?;
    if !out.status.success() {
        bail!(
            "measuring process failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .with_context(|| format!("unexpected output from the measuring process: {text}"))
}

fn measure(mode: &str, input: &Path) -> anyhow::Result<Measurement> {
    let base_hwm_kb = vm_hwm_kb()?;
    let open = || -> anyhow::Result<BufReader<File>> {
        let f = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
        Ok(BufReader::with_capacity(1 << 20, f))
    };
    let opts = CheckOptions::default();
    let (parse, check, total, ops, validity) = match mode {
        MODE_END_TO_END => {
            let t = Stopwatch::start();
            let h = read_history(open()?)?;
            let r = check_all(&h, &opts);
            (None, None, t.stop(), h.len() as u64, r.validity)
        }
        MODE_SPLIT => {
            let t0 = Stopwatch::start();
            let h = read_history(open()?)?;
            let parse = t0.stop();
            let t1 = Stopwatch::start();
            let r = check_all(&h, &opts);
            let check = t1.stop();
            let total = Secs {
                wall: parse.wall + check.wall,
                cpu: parse.cpu + check.cpu,
            };
            (Some(parse), Some(check), total, h.len() as u64, r.validity)
        }
        other => bail!("unknown measurement {other:?}"),
    };
    Ok(Measurement {
        ops,
        parse,
        check,
        total,
        base_hwm_kb,
        hwm_kb: vm_hwm_kb()?,
        validity,
    })
}

/// Peak resident set size of this process so far, from /proc/self/status.
fn vm_hwm_kb() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}

/// `1234567` as `"1,234,567"`.
fn group(n: u64) -> String {
    checkers::result::thousands(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_peak_memory() {
        let kb = vm_hwm_kb().unwrap();
        assert!(kb > 0, "VmHWM should be positive, got {kb}");
    }

    #[test]
    fn a_small_generated_history_measures_valid() {
        let f = generate(2_000, "unit-test").unwrap();
        let m = measure(MODE_SPLIT, &f.0).unwrap();
        assert_eq!(m.validity, Validity::Valid);
        assert!(m.ops >= 2_000);
        assert!(m.hwm_kb >= m.base_hwm_kb);
    }
}
