//! How long rendering a report takes for a large history (not a timed test: it prints
//! the figures). `cargo bench -p reports --bench render [-- OPS]`, default 100,000 events.

use std::time::Instant;

use checkers::{check_all, CheckOptions};
use reports::{render_run, RunMeta};

fn main() {
    // `cargo bench` passes `--bench`; the first plain number is the history size.
    let ops: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    // Without anomalies, and with a double booking every 1,000 bookings (so ~50 anomaly
    // timelines per 100k events, each drawn in full).
    for double_every in [None, Some(1_000)] {
        bench(fixtures::big_run_with(ops, double_every).history());
    }
}

fn bench(history: checkers::History) {
    let results = check_all(&history, &CheckOptions::default());
    let meta = RunMeta {
        design: "bench".into(),
        ..RunMeta::default()
    };
    let mut best = f64::MAX;
    let mut bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let html = render_run(&history, &results, &meta);
        best = best.min(t.elapsed().as_secs_f64());
        bytes = html.len();
    }
    println!(
        "render_run: {} events ({} anomalies) in {:.1} ms (best of 5), page {:.1} KiB, {:.0} events/s",
        history.len(),
        results.anomalies().count(),
        best * 1e3,
        bytes as f64 / 1024.0,
        history.len() as f64 / best
    );
}
