//! Every SVG plot of a report, drawn with plotters into strings that the page inlines.
//!
//! Whole-run plots are down-sampled so a 100k-op history still gives a page a browser
//! opens quickly; anomaly timelines never are: they draw every instant of the ops named.

use std::collections::BTreeMap;

use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::RenderError;
use crate::html::clip;
use crate::spans::{Outcome, Span, Window};
use crate::strikes::Strike;

/// Colour of `ok` ops.
pub(crate) const OK: RGBColor = RGBColor(44, 160, 44);
/// Colour of `fail` ops.
pub(crate) const FAIL: RGBColor = RGBColor(255, 127, 14);
/// Colour of `info` ops (and ops in flight at the end).
pub(crate) const INFO: RGBColor = RGBColor(148, 103, 189);
/// Colour of a valid lease.
pub(crate) const LEASE: RGBColor = RGBColor(31, 119, 180);
/// Colour of "client still believed it held the lock" after the lease ran out.
pub(crate) const BELIEVED: RGBColor = RGBColor(214, 39, 40);
/// Colour of a database transaction.
pub(crate) const TXN: RGBColor = RGBColor(230, 171, 2);
/// Colour of fault windows (drawn translucent).
pub(crate) const FAULT: RGBColor = RGBColor(214, 39, 40);
/// A notification the service sent the guest.
pub(crate) const NOTICE: RGBColor = RGBColor(23, 90, 160);

const FONT: &str = "sans-serif";
/// Plot width in px; the page scales it down on narrow screens.
const WIDTH: u32 = 1300;
/// Above this many ops the whole-run timeline is drawn from per-lane time buckets.
const TIMELINE_EXACT_MAX: usize = 3000;
/// At most this many points in a scatter plot.
const SCATTER_MAX: usize = 4000;
/// At most this many lanes in the whole-run timeline; more are merged.
const LANES_MAX: usize = 120;

fn colour(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => OK,
        Outcome::Fail => FAIL,
        Outcome::Info | Outcome::Open => INFO,
    }
}

fn s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The x range (seconds) for a whole-run plot: never empty, so plotters has a scale.
/// The right 16% is left empty for the legend, so it never hides data.
fn run_range(end_time: u64) -> std::ops::Range<f64> {
    0.0..s(end_time).max(0.001) * 1.19
}

type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// Shades the fault windows behind a plot's data, each named at its top when it is wide
/// enough for its name (narrow ones are listed in the table under the plot instead).
fn shade<Y>(
    chart: &mut Chart<'_, '_, Y>,
    windows: &[Window],
    y: (f64, f64),
) -> Result<(), RenderError>
where
    Y: Ranged<ValueType = f64>,
{
    if windows.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(windows.iter().map(|w| {
            Rectangle::new(
                [(s(w.start), y.0), (s(w.end), y.1)],
                FAULT.mix(0.10).filled(),
            )
        }))?
        .label("fault window")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], FAULT.mix(0.25).filled()));
    let label_colour = FAULT.mix(0.9);
    let style = TextStyle::from((FONT, 14).into_font())
        .color(&label_colour)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let mut labels = Vec::new();
    let mut last_right = i32::MIN;
    for w in windows {
        let (x0, _) = chart.backend_coord(&(s(w.start), y.1));
        let (x1, _) = chart.backend_coord(&(s(w.end), y.1));
        let name = clip(&w.name, 28);
        let need = (name.chars().count() as i32) * 8 + 8;
        if x1 - x0 >= need && x0 >= last_right {
            last_right = x0 + need;
            labels.push(Text::new(name, (s(w.start), y.1), style.clone()));
        }
    }
    chart.draw_series(labels)?;
    mark_firings(chart, windows, y)?;
    Ok(())
}

/// At most this many firing marks per plot; more are thinned evenly.
const FIRINGS_MAX: usize = 2000;

/// Draws each firing of an aimed fault as a short tick hanging from the top of the plot,
/// in the fault colour: where a write was held, an answer swallowed, a grant delayed.
fn mark_firings<Y>(
    chart: &mut Chart<'_, '_, Y>,
    windows: &[Window],
    y: (f64, f64),
) -> Result<(), RenderError>
where
    Y: Ranged<ValueType = f64>,
{
    let times: Vec<u64> = windows
        .iter()
        .flat_map(|w| w.firings.iter().copied())
        .collect();
    if times.is_empty() {
        return Ok(());
    }
    let drop = (y.1 - y.0) * 0.06;
    chart
        .draw_series(stride(&times, FIRINGS_MAX).into_iter().map(|t| {
            PathElement::new(vec![(s(t), y.1), (s(t), y.1 - drop)], FAULT.stroke_width(2))
        }))?
        .label("aimed fault fired")
        .legend(|(x, y)| {
            PathElement::new(vec![(x + 7, y - 6), (x + 7, y + 6)], FAULT.stroke_width(2))
        });
    Ok(())
}

fn legend_box(c: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled())
}

fn finish_legend<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
    pos: SeriesLabelPosition,
) -> Result<(), RenderError> {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 15))
        .draw()?;
    Ok(())
}

/// Gives each process a lane; a process retired after `info` is replaced by a fresh one,
/// so processes whose lifetimes do not overlap share a lane (one lane per client slot).
fn lanes(spans: &[Span<'_>]) -> (BTreeMap<checkers::Process, usize>, usize) {
    let mut life: BTreeMap<checkers::Process, (u64, u64)> = BTreeMap::new();
    for sp in spans {
        let e = life.entry(sp.process).or_insert((sp.start, sp.end));
        e.0 = e.0.min(sp.start);
        e.1 = e.1.max(sp.end);
    }
    let mut order: Vec<_> = life.into_iter().collect();
    order.sort_by_key(|(p, (start, _))| (*start, *p));
    let mut lane_end: Vec<u64> = Vec::new();
    let mut lane_of = BTreeMap::new();
    for (p, (start, end)) in order {
        let lane = match lane_end.iter().position(|&e| e < start) {
            Some(l) => l,
            None => {
                lane_end.push(0);
                lane_end.len() - 1
            }
        };
        lane_end[lane] = end;
        lane_of.insert(p, lane);
    }
    (lane_of, lane_end.len())
}

/// The whole-run timeline: every client op as a bar on its client's lane, coloured by
/// outcome, fault windows shaded. Returns the SVG and a note on lanes and down-sampling.
pub(crate) fn run_timeline(
    spans: &[Span<'_>],
    windows: &[Window],
    end_time: u64,
) -> Result<(String, String), RenderError> {
    let (lane_of, n_lanes) = lanes(spans);
    let merge = n_lanes.div_ceil(LANES_MAX).max(1);
    let shown_lanes = n_lanes.div_ceil(merge).max(1);
    let height = (110 + shown_lanes as u32 * 14).clamp(260, 1000);
    let xr = run_range(end_time);
    let x_max = xr.end;
    let mut svg = String::new();
    let mut note = None;
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let y = (-0.5, shown_lanes as f64 - 0.5);
        let mut chart = ChartBuilder::on(&root)
            .caption("Ops per client over time", (FONT, 20))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(xr, y.0..y.1)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("time since run start (s)")
            .y_desc(if merge > 1 {
                "client lanes (merged)"
            } else {
                "client lane"
            })
            .y_labels(shown_lanes.min(20))
            .y_label_formatter(&|v| format!("{}", v.round() as i64 * merge as i64))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()?;
        shade(&mut chart, windows, y)?;
        let lane_y =
            |sp: &Span<'_>| (lane_of.get(&sp.process).copied().unwrap_or(0) / merge) as f64;
        let min_w = x_max / WIDTH as f64;
        let mut bars: [Vec<Rectangle<(f64, f64)>>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let slot = |o: Outcome| match o {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            _ => 2,
        };
        if spans.len() <= TIMELINE_EXACT_MAX {
            for sp in spans {
                let ly = lane_y(sp);
                let x0 = s(sp.start);
                let x1 = s(sp.end).max(x0 + min_w);
                bars[slot(sp.outcome)].push(Rectangle::new(
                    [(x0, ly - 0.32), (x1, ly + 0.32)],
                    colour(sp.outcome).filled(),
                ));
            }
        } else {
            // Per lane and time bucket keep the worst outcome seen, so a rare fail or
            // info stays visible however many ok ops surround it.
            const BUCKETS: usize = 500;
            let width = (x_max / BUCKETS as f64).max(1e-9);
            let mut grid = vec![0u8; shown_lanes * BUCKETS];
            for sp in spans {
                let lane = lane_y(sp) as usize;
                let b0 = ((s(sp.start) / width) as usize).min(BUCKETS - 1);
                let b1 = ((s(sp.end) / width) as usize).min(BUCKETS - 1);
                let v = slot(sp.outcome) as u8 + 1;
                for cell in &mut grid[lane * BUCKETS + b0..=lane * BUCKETS + b1] {
                    *cell = (*cell).max(v);
                }
            }
            for lane in 0..shown_lanes {
                let row = &grid[lane * BUCKETS..(lane + 1) * BUCKETS];
                let mut b = 0;
                while b < BUCKETS {
                    let v = row[b];
                    let mut e = b + 1;
                    while e < BUCKETS && row[e] == v {
                        e += 1;
                    }
                    if v > 0 {
                        let o = [Outcome::Ok, Outcome::Fail, Outcome::Info][v as usize - 1];
                        let ly = lane as f64;
                        bars[v as usize - 1].push(Rectangle::new(
                            [(b as f64 * width, ly - 0.32), (e as f64 * width, ly + 0.32)],
                            colour(o).filled(),
                        ));
                    }
                    b = e;
                }
            }
            note = Some(format!(
                "{} ops drawn as {} time buckets per lane; each bucket shows the worst outcome in it (info over fail over ok).",
                crate::html::count(spans.len() as u64),
                BUCKETS
            ));
        }
        for (i, (name, c)) in [("ok", OK), ("fail", FAIL), ("info / unknown", INFO)]
            .into_iter()
            .enumerate()
        {
            let series = std::mem::take(&mut bars[i]);
            chart.draw_series(series)?.label(name).legend(legend_box(c));
        }
        finish_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
    }
    let mut lines = format!(
        "{} processes on {} client lanes.",
        crate::html::count(lane_of.len() as u64),
        crate::html::count(n_lanes as u64)
    );
    if merge > 1 {
        lines.push_str(&format!(" Lanes merged {merge} to a row."));
    }
    if let Some(n) = note {
        lines.push(' ');
        lines.push_str(&n);
    }
    Ok((svg, lines))
}

/// Keeps exactly `max` items (when there are more) spread evenly by position:
/// deterministic, and even over time because the input is in time order.
fn stride<T: Copy>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max || max == 0 {
        return items.to_vec();
    }
    (0..max).map(|i| items[i * items.len() / max]).collect()
}

/// Splits a scatter budget over outcome groups: rare outcomes (fail, info) keep all their
/// points up to a third of the budget each; ok fills the rest.
fn sample_groups<T: Copy>(groups: [&[T]; 3], max: usize) -> ([Vec<T>; 3], bool) {
    let total: usize = groups.iter().map(|g| g.len()).sum();
    if total <= max {
        return (
            [groups[0].to_vec(), groups[1].to_vec(), groups[2].to_vec()],
            false,
        );
    }
    let fail = stride(groups[1], max / 3);
    let info = stride(groups[2], max / 3);
    let ok = stride(groups[0], max - fail.len() - info.len());
    ([ok, fail, info], true)
}

/// Latency of every op against its invocation time, log scale, by outcome, fault windows
/// shaded. Returns the SVG and a note when it was down-sampled.
pub(crate) fn latency(
    spans: &[Span<'_>],
    windows: &[Window],
    end_time: u64,
) -> Result<(String, Option<String>), RenderError> {
    let mut groups: [Vec<(f64, f64)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for sp in spans {
        let pt = (s(sp.start), (sp.latency() as f64 / 1e6).max(0.01));
        match sp.outcome {
            Outcome::Ok => groups[0].push(pt),
            Outcome::Fail => groups[1].push(pt),
            _ => groups[2].push(pt),
        }
    }
    let total: usize = groups.iter().map(Vec::len).sum();
    let (shown, sampled) = sample_groups([&groups[0], &groups[1], &groups[2]], SCATTER_MAX);
    let hi = groups.iter().flatten().map(|p| p.1).fold(1.0f64, f64::max) * 2.0;
    let lo = groups
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(hi, f64::min)
        .min(0.5)
        / 2.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency of each op (log scale)", (FONT, 20))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(run_range(end_time), (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("invocation time since run start (s)")
            .y_desc("latency (ms)")
            .y_label_formatter(&|v| {
                if *v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            })
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()?;
        shade(&mut chart, windows, (lo, hi))?;
        for (pts, (name, c)) in
            shown
                .iter()
                .zip([("ok", OK), ("fail", FAIL), ("info / unknown", INFO)])
        {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.mix(0.7).filled())))?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
        }
        finish_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
    }
    let note = sampled.then(|| {
        format!(
            "Showing {} of {} ops (every k-th op per outcome; fail and info keep up to a third of the points each).",
            crate::html::count(shown.iter().map(Vec::len).sum::<usize>() as u64),
            crate::html::count(total as u64)
        )
    });
    Ok((svg, note))
}

/// A bucket width (ns) giving between ~50 and 600 buckets over the run.
fn bucket_ns(end_time: u64) -> u64 {
    const STEPS_MS: [u64; 12] = [
        10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000,
    ];
    for ms in STEPS_MS {
        if end_time / (ms * 1_000_000) <= 120 {
            return ms * 1_000_000;
        }
    }
    (end_time / 600).max(60_000_000_000)
}

/// Completions per second over time, one line per outcome, fault windows shaded.
pub(crate) fn throughput(
    spans: &[Span<'_>],
    windows: &[Window],
    end_time: u64,
) -> Result<String, RenderError> {
    let b = bucket_ns(end_time);
    let n = (end_time / b + 1) as usize;
    let mut counts = vec![[0u64; 3]; n];
    for sp in spans.iter().filter(|sp| sp.completion.is_some()) {
        let i = ((sp.end / b) as usize).min(n - 1);
        let k = match sp.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            _ => 2,
        };
        counts[i][k] += 1;
    }
    let per_s = 1e9 / b as f64;
    let hi = counts
        .iter()
        .flat_map(|c| c.iter())
        .map(|&c| c as f64 * per_s)
        .fold(1.0, f64::max)
        * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let caption = format!(
            "Throughput: completions per second ({} buckets)",
            crate::html::dur(b)
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 20))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(run_range(end_time), 0.0..hi)?;
        chart
            .configure_mesh()
            .x_desc("time since run start (s)")
            .y_desc("ops/s")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()?;
        shade(&mut chart, windows, (0.0, hi))?;
        for (k, (name, c)) in [("ok", OK), ("fail", FAIL), ("info / unknown", INFO)]
            .into_iter()
            .enumerate()
        {
            let pts = counts.iter().enumerate().map(|(i, cs)| {
                (
                    s((i as u64 * b).saturating_add(b / 2)),
                    cs[k] as f64 * per_s,
                )
            });
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(name)
                .legend(legend_box(c));
        }
        finish_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
    }
    Ok(svg)
}

/// Lease held vs lease believed, per lock acquisition: how long the lease was valid on
/// the server (acquire -> expiry) and how long the client believed it held the lock
/// (acquire -> release). Points above the lease line are holds that outlived the lease.
/// `None` when no trace has a lock.
pub(crate) fn lease(
    spans: &[Span<'_>],
    windows: &[Window],
    end_time: u64,
) -> Result<Option<String>, RenderError> {
    let mut held = Vec::new();
    let mut believed = Vec::new();
    for sp in spans {
        let Some(t) = sp.trace() else { continue };
        let (Some(acq), Some(exp)) = (t.lock_acquired, t.lease_expiry()) else {
            continue;
        };
        held.push((s(acq), exp.saturating_sub(acq) as f64 / 1e6));
        if let Some(rel) = t.lock_released {
            believed.push((s(acq), rel.saturating_sub(acq) as f64 / 1e6));
        }
    }
    if held.is_empty() {
        return Ok(None);
    }
    let held = stride(&held, SCATTER_MAX / 2);
    let believed = stride(&believed, SCATTER_MAX / 2);
    let hi = held
        .iter()
        .chain(&believed)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.2;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Lease held vs lease believed, per lock acquisition",
                (FONT, 18),
            )
            .margin(12)
            .margin_right(36)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(run_range(end_time), 0.0..hi)?;
        chart
            .configure_mesh()
            .x_desc("lock acquired at (s since run start)")
            .y_desc("time since acquire (ms)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()?;
        shade(&mut chart, windows, (0.0, hi))?;
        chart
            .draw_series(
                held.iter()
                    .map(|&p| Circle::new(p, 3, LEASE.mix(0.8).filled())),
            )?
            .label("lease valid on server (acquire → expiry)")
            .legend(|(x, y)| Circle::new((x + 7, y), 4, LEASE.filled()));
        chart
            .draw_series(
                believed
                    .iter()
                    .map(|&p| Cross::new(p, 4, BELIEVED.stroke_width(2))),
            )?
            .label("client believed it held (acquire → release)")
            .legend(|(x, y)| Cross::new((x + 7, y), 4, BELIEVED.stroke_width(2)));
        finish_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
    }
    Ok(Some(svg))
}

/// A point of a plot: (seconds since the run started, y).
type Point = (f64, f64);

/// The highest fraction of its lease a hold is drawn at; holds above it sit on the top
/// edge (as triangles) so one runaway hold does not flatten the rest.
const MARGIN_CAP: f64 = 3.0;

/// How close each lease hold came: one point per hold at the time it acquired the lease,
/// at the height of the fraction of its lease its critical section used, with the
/// warning fraction and 100% drawn across and fault windows shaded. Blue within the
/// warning fraction, amber above it, red above 100% (outlived). Returns the SVG and a
/// note on sampling and clamping.
pub(crate) fn margin(
    holds: &[checkers::Hold],
    warn: f64,
    windows: &[Window],
    end_time: u64,
) -> Result<(String, Option<String>), RenderError> {
    let mut groups: [Vec<Point>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let max = holds.iter().map(|x| x.fraction()).fold(0.0, f64::max);
    let top = (max.min(MARGIN_CAP) * 1.1).max(1.2);
    let mut clamped = 0u64;
    for x in holds {
        let f = x.fraction();
        if f > top {
            clamped += 1;
        }
        let pt = (s(x.acquired), f.min(top) * 100.0);
        let g = if x.outlived() {
            2
        } else if f > warn {
            1
        } else {
            0
        };
        groups[g].push(pt);
    }
    // Close calls are what the plot is for: they keep their points, the rest is thinned.
    let total: usize = groups.iter().map(Vec::len).sum();
    let outlived = stride(&groups[2], SCATTER_MAX / 3);
    let close = stride(&groups[1], SCATTER_MAX / 3);
    let rest = stride(&groups[0], SCATTER_MAX - outlived.len() - close.len());
    let shown = [rest, close, outlived];
    let y_hi = top * 100.0 * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Share of its lease each critical section used (acquire → commit)",
                (FONT, 18),
            )
            .margin(12)
            .margin_right(36)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(run_range(end_time), 0.0..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("lock acquired at (s since run start)")
            .y_desc("% of lease used")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()?;
        shade(&mut chart, windows, (0.0, y_hi))?;
        let x_end = run_range(end_time).end;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, warn * 100.0), (x_end, warn * 100.0)],
                TXN.stroke_width(2),
            )))?
            .label(format!("warning: {:.0}% of the lease", warn * 100.0))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], TXN.stroke_width(2)));
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 100.0), (x_end, 100.0)],
                BELIEVED.stroke_width(2),
            )))?
            .label("100%: the lease expired before the commit")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BELIEVED.stroke_width(2)));
        let cap = top * 100.0;
        for (pts, (name, c)) in shown.iter().zip([
            ("within the warning", LEASE),
            ("above the warning", TXN),
            ("outlived its lease", BELIEVED),
        ]) {
            let (capped, below): (Vec<Point>, Vec<Point>) = pts.iter().partition(|p| p.1 >= cap);
            chart
                .draw_series(
                    below
                        .iter()
                        .map(|&p| Circle::new(p, 3, c.mix(0.8).filled())),
                )?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
            chart.draw_series(
                capped
                    .iter()
                    .map(|&p| TriangleMarker::new(p, 6, c.filled())),
            )?;
        }
        finish_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
    }
    let shown_n: usize = shown.iter().map(Vec::len).sum();
    let mut notes = Vec::new();
    if shown_n < total {
        notes.push(format!(
            "Showing {} of {} holds (every k-th within the warning; close calls keep up to a third of the points each).",
            crate::html::count(shown_n as u64),
            crate::html::count(total as u64)
        ));
    }
    if clamped > 0 {
        notes.push(format!(
            "{} hold{} above {:.0}% drawn as triangles on the top edge.",
            crate::html::count(clamped),
            if clamped == 1 { "" } else { "s" },
            top * 100.0
        ));
    }
    Ok((svg, (!notes.is_empty()).then(|| notes.join(" "))))
}

/// One lane of an anomaly view: an op, what to call it, and the strikes of aimed faults
/// that hit its own connection (see [`crate::strikes`]).
pub(crate) struct Lane<'s, 'a> {
    pub label: String,
    pub span: &'s Span<'a>,
    pub strikes: Vec<&'s Strike>,
    /// The notifications its guest was sent (booking ops only).
    pub told: Vec<Told>,
}

/// A notification the service sent the op's guest, as the sink received it.
pub(crate) struct Told {
    /// When the sink received it (ns).
    pub time: u64,
    /// A "cancelled" notice (else "confirmed" or another kind).
    pub cancelled: bool,
    /// told-is-true found it untrue: a phantom confirmation.
    pub phantom: bool,
}

/// Plot-area width of an anomaly view in pixels (the SVG width less margins and the
/// label area), for placing text that must not overlap.
const VIEW_PLOT_PX: f64 = (WIDTH - 12 - 36 - 10) as f64;

/// The time range an anomaly view shows: every instant the lanes' traces recorded,
/// padded; a lease released before it expired does not stretch it.
fn view_range(lanes: &[Lane<'_, '_>]) -> (u64, u64) {
    let mut t0 = u64::MAX;
    let mut t1 = 0u64;
    for l in lanes {
        let sp = l.span;
        let mut ts = vec![sp.start, sp.end];
        if let Some(t) = sp.trace() {
            // The expiry of a lease released in time is off-stage: drawing it would
            // stretch the view and squash the race into a corner.
            let expiry = t
                .lease_expiry()
                .filter(|&e| t.lock_released.is_none_or(|r| r > e));
            ts.extend(
                [
                    t.lock_acquired,
                    t.lock_released,
                    expiry,
                    t.db_begin,
                    t.db_commit,
                    t.confirmed,
                ]
                .into_iter()
                .flatten(),
            );
            ts.extend(&t.lock_renewed);
        }
        // An outbox may tell the guest long after: the view reaches the notification.
        ts.extend(l.told.iter().map(|n| n.time));
        t0 = t0.min(*ts.iter().min().unwrap_or(&0));
        t1 = t1.max(*ts.iter().max().unwrap_or(&0));
    }
    if t0 > t1 {
        (t0, t1) = (0, 1_000_000);
    }
    let pad = ((t1 - t0) / 20).max(1_000_000);
    // Instants come from the history: anywhere on the u64 clock, its end included.
    (t0.saturating_sub(pad), t1.saturating_add(pad))
}

/// The zoomed timeline of one anomaly: a lane per op involved showing its lease (and
/// where the client believed it still held it after expiry), its transaction, its
/// confirmation and its invoke -> completion span, the strikes that hit its own
/// connection, with fault windows shaded behind and every other strike faint in them.
/// Nothing is sampled here: every instant the traces recorded is drawn.
pub(crate) fn anomaly_timeline(
    lanes: &[Lane<'_, '_>],
    windows: &[Window],
) -> Result<String, RenderError> {
    let (lo, hi) = view_range(lanes);
    let (x0, x1) = (s(lo), s(hi));
    // Ticks a few ms apart need more decimals than the run-wide plots.
    let decimals = if x1 - x0 < 0.05 { 4 } else { 3 };
    let n = lanes.len().max(1);
    let height = 110 + n as u32 * 100;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let y = (0.0, n as f64);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(36)
            .x_label_area_size(44)
            .y_label_area_size(10)
            .build_cartesian_2d(x0..x1, y.0..y.1)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .max_light_lines(2)
            .x_desc("time since run start (s)")
            .x_label_formatter(&|v| format!("{v:.decimals$}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()?;
        let visible: Vec<Window> = windows
            .iter()
            .filter(|w| w.end >= lo && w.start <= hi)
            .map(|w| Window {
                name: w.name.clone(),
                hit: w.hit.clone(),
                start: w.start.max(lo),
                end: w.end.min(hi),
                firings: Vec::new(),
            })
            .collect();
        chart.draw_series(visible.iter().map(|w| {
            Rectangle::new(
                [(s(w.start), y.0), (s(w.end), y.1)],
                FAULT.mix(0.10).filled(),
            )
        }))?;
        background_strikes(&mut chart, lanes, windows, (lo, hi), y)?;
        for (i, l) in lanes.iter().enumerate() {
            draw_lane(&mut chart, l, (n - i) as f64, i > 0, (x0, x1))?;
        }
    }
    Ok(svg)
}

/// The strikes in view that hit none of the lanes' ops: faint lines through the fault
/// band, behind everything (other connections' held writes, or strikes the history
/// cannot pin to an op).
fn background_strikes(
    chart: &mut Chart<'_, '_, RangedCoordf64>,
    lanes: &[Lane<'_, '_>],
    windows: &[Window],
    (lo, hi): (u64, u64),
    y: (f64, f64),
) -> Result<(), RenderError> {
    let mut own: Vec<u64> = lanes
        .iter()
        .flat_map(|l| l.strikes.iter().map(|s| s.time))
        .collect();
    own.sort_unstable();
    let mut times: Vec<u64> = Vec::new();
    for t in windows.iter().flat_map(|w| w.firings.iter().copied()) {
        if t < lo || t > hi {
            continue;
        }
        // One firing at an instant is drawn on its lane: the rest there stay faint.
        match own.binary_search(&t) {
            Ok(k) => {
                own.remove(k);
            }
            Err(_) => times.push(t),
        }
    }
    chart.draw_series(
        stride(&times, FIRINGS_MAX)
            .into_iter()
            .map(|t| PathElement::new(vec![(s(t), y.0), (s(t), y.1)], FAULT.mix(0.22))),
    )?;
    Ok(())
}

/// One lane, its top edge at `top` (lanes are one unit high): the label on a white
/// ground (nothing drawn may cross it), lease, transaction, op bar, confirmation, and the
/// strikes that hit the op, each labelled under the op bar where labels do not collide.
fn draw_lane(
    chart: &mut Chart<'_, '_, RangedCoordf64>,
    l: &Lane<'_, '_>,
    top: f64,
    rule: bool,
    (x0, x1): (f64, f64),
) -> Result<(), RenderError> {
    let sp = l.span;
    let cx = |t: u64| s(t).clamp(x0, x1);
    let px = (x1 - x0) / VIEW_PLOT_PX;
    let mut rects = Vec::new();
    let mut ticks = Vec::new();
    if rule {
        ticks.push(PathElement::new(
            vec![(x0, top), (x1, top)],
            BLACK.mix(0.25),
        ));
    }
    // Row 3: the op as the client saw it, invoke -> completion.
    rects.push(Rectangle::new(
        [(cx(sp.start), top - 0.76), (cx(sp.end), top - 0.84)],
        colour(sp.outcome).filled(),
    ));
    if let Some(t) = sp.trace() {
        trace_rows(t, sp.end, top, &cx, &mut rects, &mut ticks);
    }
    chart.draw_series(ticks)?;
    chart.draw_series(rects)?;
    if let Some(c) = sp.trace().and_then(|t| t.confirmed) {
        chart.draw_series([TriangleMarker::new((cx(c), top - 0.80), 8, BLACK.filled())])?;
    }
    // The notifications the guest was sent, on the op's row: a circle for "confirmed"
    // (filled red when it was a phantom), a cross for "cancelled".
    for n in &l.told {
        let at = (cx(n.time), top - 0.80);
        if n.cancelled {
            chart.draw_series([Cross::new(at, 6, NOTICE.stroke_width(2))])?;
        } else if n.phantom {
            chart.draw_series([Circle::new(at, 7, FAULT.filled())])?;
        } else {
            chart.draw_series([Circle::new(at, 7, NOTICE.stroke_width(2))])?;
        }
    }
    lane_strikes(chart, &l.strikes, top, (x0, x1))?;
    // The label last, on white: no bar, mark or strike crosses it.
    let label = clip(&l.label, 150);
    let width = (label.chars().count() as f64 * 8.6 + 8.0) * px;
    chart.draw_series([Rectangle::new(
        [(x0, top - 0.01), ((x0 + width).min(x1), top - 0.20)],
        WHITE.filled(),
    )])?;
    let label_style = TextStyle::from((FONT, 17).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Top));
    chart.draw_series([Text::new(label, (x0, top - 0.03), label_style)])?;
    Ok(())
}

/// The strikes on a lane's op's own connection: a bold mark across the row they hit
/// (lease for the lock server, transaction for the database), named below the op bar
/// where the name does not collide with the one before.
fn lane_strikes(
    chart: &mut Chart<'_, '_, RangedCoordf64>,
    strikes: &[&Strike],
    top: f64,
    (x0, x1): (f64, f64),
) -> Result<(), RenderError> {
    let cx = |t: u64| s(t).clamp(x0, x1);
    let px = (x1 - x0) / VIEW_PLOT_PX;
    let mut marks = Vec::new();
    let mut names = Vec::new();
    let style = TextStyle::from((FONT, 13).into_font())
        .color(&FAULT)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let mut free_from = f64::MIN;
    for st in strikes {
        let x = cx(st.time);
        let (a, b) = if st.on_lease() {
            (0.18, 0.44)
        } else {
            (0.46, 0.70)
        };
        marks.push(PathElement::new(
            vec![(x, top - a), (x, top - b)],
            FAULT.stroke_width(3),
        ));
        let name = clip(&st.label(), 40);
        let width = (name.chars().count() as f64 * 7.5 + 8.0) * px;
        if x >= free_from && x + width <= x1 {
            free_from = x + width;
            names.push(Text::new(name, (x, top - 0.86), style.clone()));
        }
    }
    chart.draw_series(marks)?;
    chart.draw_series(names)?;
    Ok(())
}

/// A lane's lease row (the lease, the stretch believed after it expired, renewals) and
/// transaction row (hollow when it never committed, ending at the op's `end`).
fn trace_rows(
    t: &checkers::Trace,
    end: u64,
    top: f64,
    cx: &dyn Fn(u64) -> f64,
    rects: &mut Vec<Rectangle<(f64, f64)>>,
    ticks: &mut Vec<PathElement<(f64, f64)>>,
) {
    if let Some(acq) = t.lock_acquired {
        let exp = t.lease_expiry();
        let held_to = match (exp, t.lock_released) {
            (Some(e), Some(r)) => e.min(r),
            (Some(e), None) => e,
            (None, Some(r)) => r,
            (None, None) => end,
        };
        rects.push(Rectangle::new(
            [(cx(acq), top - 0.22), (cx(held_to), top - 0.40)],
            LEASE.filled(),
        ));
        if let (Some(e), Some(r)) = (exp, t.lock_released) {
            if r > e {
                rects.push(Rectangle::new(
                    [(cx(e), top - 0.22), (cx(r), top - 0.40)],
                    BELIEVED.mix(0.35).filled(),
                ));
                rects.push(Rectangle::new(
                    [(cx(e), top - 0.22), (cx(r), top - 0.40)],
                    BELIEVED.stroke_width(2),
                ));
            }
        }
        for &r in &t.lock_renewed {
            ticks.push(PathElement::new(
                vec![(cx(r), top - 0.18), (cx(r), top - 0.44)],
                BLACK.stroke_width(2),
            ));
        }
    }
    if let Some(b) = t.db_begin {
        match t.db_commit {
            Some(c) => rects.push(Rectangle::new(
                [(cx(b), top - 0.48), (cx(c), top - 0.66)],
                TXN.filled(),
            )),
            None => rects.push(Rectangle::new(
                [(cx(b), top - 0.48), (cx(end), top - 0.66)],
                TXN.stroke_width(2),
            )),
        }
    }
}
