//! Assembles one run's report page: summary, anomalies with their zoomed timelines, and
//! the whole-run plots, into one self-contained HTML document.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use checkers::checks::margin::SectionEnd;
use checkers::{Anomaly, Headline, Hold, Margin, Op, Role, Stay, UnknownReason, Validity, F};

use crate::caption::{capital, explain, letter};
use crate::html::{count, dur, escape, escape_into, head, row, secs, STYLE};
use crate::meta::RunMeta;
use crate::plots::{self, Lane};
use crate::spans::{Outcome, Span, Spans, Window};

/// At most this many related bookings are drawn beside a read-only anomaly.
const RELATED_MAX: usize = 6;

/// At most this many anomalies get a zoomed timeline each; all are listed.
const ANOMALY_VIEWS_MAX: usize = 100;

/// One checker's verdict as the page shows it.
pub(crate) struct CheckRow<'a> {
    pub checker: &'a str,
    pub validity: Validity,
    pub role: Role,
    pub deciding: bool,
    pub summary: &'a str,
    pub reason: Option<&'a str>,
    pub anomalies: &'a [Anomaly],
}

/// Everything a run page is made from.
pub(crate) struct PageInput<'a> {
    pub ops: &'a [Op],
    pub checks: Vec<CheckRow<'a>>,
    pub validity: Validity,
    pub headline: Headline,
    pub unknown_reasons: &'a [UnknownReason],
    /// lease-margin's measurements, when it measured any.
    pub margin: Option<&'a Margin>,
    /// Why lease-margin measured nothing (its unknown reason), when it did not.
    pub margin_reason: Option<&'a str>,
    /// Every lease hold, for the margin plot.
    pub holds: &'a [Hold],
    pub windows: Vec<Window>,
    pub meta: &'a RunMeta,
}

fn badge(v: Validity) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", v.as_str())
}

/// A plot, or the reason it could not be drawn, never a failed page.
fn plot_or_note(out: &mut String, r: Result<String, crate::RenderError>) {
    match r {
        Ok(svg) => out.push_str(&svg),
        Err(e) => {
            out.push_str("<p class=\"note\">");
            escape_into(out, &e.to_string());
            out.push_str("</p>");
        }
    }
}

fn note(out: &mut String, n: Option<String>) {
    if let Some(n) = n {
        out.push_str("<p class=\"note\">");
        escape_into(out, &n);
        out.push_str("</p>\n");
    }
}

/// "no final read (confirmed-is-durable, db-state); ..." from the verdict's reasons.
fn reasons(unknown: &[UnknownReason]) -> String {
    let parts: Vec<String> = unknown
        .iter()
        .map(|u| format!("{}: {}", u.checkers.join(", "), u.reason))
        .collect();
    parts.join("; ")
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Renders the page.
pub(crate) fn render(input: &PageInput<'_>) -> String {
    let meta = input.meta;
    let mut wanted = BTreeSet::new();
    for c in &input.checks {
        for a in c.anomalies {
            wanted.extend(a.ops.iter().copied());
        }
    }
    // The closest call gets a zoomed timeline too, so its span must be found.
    if let Some(m) = input.margin {
        wanted.insert(m.closest.op);
    }
    let mut spans = Spans::build(input.ops);
    spans.index_ops(&wanted);
    let end_time = spans.end_time;
    let anomalies: Vec<&Anomaly> = input
        .checks
        .iter()
        .flat_map(|c| c.anomalies.iter())
        .collect();
    let role_of = |checker: &str| {
        input
            .checks
            .iter()
            .find(|c| c.checker == checker)
            .map(|c| c.role)
    };

    let mut out = String::with_capacity(256 * 1024);
    let title = if meta.design.is_empty() {
        "history".to_string()
    } else {
        meta.design.clone()
    };
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>overbook: ");
    escape_into(&mut out, &title);
    let _ = write!(
        out,
        " ({})</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        input.validity.as_str()
    );
    out.push_str("<h1>overbook report: ");
    escape_into(&mut out, &title);
    let _ = writeln!(
        out,
        " <span class=\"verdict {0}\">{1}</span></h1>",
        input.validity.as_str(),
        input.validity.as_str().to_uppercase()
    );
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#anomalies\">Anomalies</a><a href=\"#timeline\">Timeline</a><a href=\"#latency\">Latency</a><a href=\"#throughput\">Throughput</a><a href=\"#lease\">Lease</a><a href=\"#margin\">Margin</a><a href=\"#faults\">Faults</a></nav>\n");

    // The headline: what the run shows, in one sentence. Decided by the checkers
    // (`checkers::verdict`); the page only words it.
    let count_where = |f: &dyn Fn(Role) -> bool| -> u64 {
        input
            .checks
            .iter()
            .filter(|c| f(c.role))
            .map(|c| c.anomalies.len() as u64)
            .sum()
    };
    let lock_findings = count_where(&|r| r == Role::Lock);
    let data_findings = count_where(&Role::judges_data);
    let plural =
        |n: u64, one: &str, many: &str| format!("{} {}", count(n), if n == 1 { one } else { many });
    match input.headline {
        Headline::DataWrong => {
            let wrong: Vec<&str> = input
                .checks
                .iter()
                .filter(|c| c.role.judges_data() && c.validity == Validity::Invalid)
                .map(|c| c.checker)
                .collect();
            let _ = writeln!(
                out,
                "<p class=\"callout bad\">The data is wrong: {} found {}.{}</p>",
                escape(&wrong.join(", ")),
                plural(data_findings, "anomaly", "anomalies"),
                if lock_findings > 0 {
                    format!(
                        " The lock also failed ({}).",
                        plural(
                            lock_findings,
                            "lock-exclusion finding",
                            "lock-exclusion findings"
                        )
                    )
                } else {
                    String::new()
                }
            );
        }
        Headline::LockFailedDatabaseHeld => {
            let _ = writeln!(
                out,
                "<p class=\"callout\"><b>The lock failed, the database held.</b> Two clients held the same lock at once ({}), yet no double booking, lost confirmation or phantom booking resulted: the invariant lives in the database.{}</p>",
                plural(lock_findings, "lock-exclusion finding", "lock-exclusion findings"),
                if input.validity == Validity::Invalid {
                    " The run is invalid because lock-exclusion decides it (--strict-lock)."
                } else {
                    ""
                }
            );
        }
        Headline::LockFailedUnguarded => {
            let _ = writeln!(
                out,
                "<p class=\"callout bad\"><b>The lock failed under a design that trusts it.</b> Two clients held the same lock at once ({}), and nothing else guards the room-nights: a double booking waiting for two users to ask for one night, whatever nights these two booked.</p>",
                plural(lock_findings, "lock-exclusion finding", "lock-exclusion findings"),
            );
        }
        Headline::LockFailedDataHeld => {
            let _ = writeln!(
                out,
                "<p class=\"callout\"><b>The lock failed; the data shows no anomaly.</b> Two clients held the same lock at once ({}); the history does not declare what guards the room-nights, so no claim is made that a database held.{}</p>",
                plural(lock_findings, "lock-exclusion finding", "lock-exclusion findings"),
                if input.validity == Validity::Invalid {
                    " The run is invalid because lock-exclusion decides it (--strict-lock)."
                } else {
                    ""
                }
            );
        }
        Headline::LockFailed => {
            let _ = writeln!(
                out,
                "<p class=\"callout bad\">The lock failed ({}), and whether the database held is unknown ({}).</p>",
                plural(lock_findings, "lock-exclusion finding", "lock-exclusion findings"),
                escape(&reasons(input.unknown_reasons))
            );
        }
        Headline::Unknown => {
            let _ = writeln!(
                out,
                "<p class=\"callout bad\">Unknown: the checkers lacked what they needed ({}).</p>",
                escape(&reasons(input.unknown_reasons))
            );
        }
        Headline::AllHeld => {
            out.push_str("<p class=\"callout\">No anomalies: every checker that decides the verdict found the history valid.</p>\n");
        }
    }

    if meta.interrupted {
        out.push_str(
            "<p class=\"callout bad\">Interrupted: the run was stopped early (Ctrl-C); \
             the history and this verdict cover only the part that ran.</p>\n",
        );
    }

    // Summary.
    out.push_str("<h2 id=\"summary\">Summary</h2>\n<table>\n");
    let faults = if meta.faults.is_empty() {
        "none recorded".to_string()
    } else {
        meta.faults.join(", ")
    };
    let duration = if meta.duration_ms > 0 {
        dur(meta.duration_ms.saturating_mul(1_000_000))
    } else {
        format!("{} (history span)", dur(end_time))
    };
    let ops_line = format!(
        "{} events, {} client ops",
        count(input.ops.len() as u64),
        count(spans.spans.len() as u64)
    );
    let seed = meta
        .seed
        .map(|s| s.to_string())
        .unwrap_or_else(|| "none".into());
    for (k, v) in [
        (
            "design",
            if meta.design.is_empty() {
                "unknown (foreign history)"
            } else {
                meta.design.as_str()
            },
        ),
        ("faults", faults.as_str()),
        ("seed", seed.as_str()),
        ("duration", duration.as_str()),
        (
            "started at",
            if meta.started_at.is_empty() {
                "unknown"
            } else {
                meta.started_at.as_str()
            },
        ),
        ("history", ops_line.as_str()),
    ] {
        row(&mut out, &[k, v]);
    }
    for (k, v) in &meta.params {
        if v.contains('\n') {
            // A log tail (service mode): keep its lines.
            out.push_str("<tr><td>");
            escape_into(&mut out, k);
            out.push_str("</td><td><pre>");
            escape_into(&mut out, v);
            out.push_str("</pre></td></tr>\n");
        } else {
            row(&mut out, &[k, v]);
        }
    }
    out.push_str("</table>\n");
    if !meta.command.is_empty() {
        out.push_str("<p>Reproduce with:</p><pre>");
        escape_into(&mut out, &meta.command);
        out.push_str("</pre>\n");
    }

    out.push_str("<h3>Checkers</h3>\n<table>\n");
    head(
        &mut out,
        &["checker", "verdict", "decides the run", "summary"],
    );
    for c in &input.checks {
        let decides = match (c.deciding, c.role) {
            (true, _) => "yes",
            (false, Role::Lock) => "no (only with --strict-lock)",
            (false, _) => "no",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{decides}</td><td>",
            escape(c.checker),
            badge(c.validity),
        );
        escape_into(&mut out, c.summary);
        if let Some(r) = c.reason {
            out.push_str(" <span class=\"note\">(");
            escape_into(&mut out, r);
            out.push_str(")</span>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");

    // Counts per op and outcome.
    let mut counts: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for sp in &spans.spans {
        let e = counts.entry(sp.f().to_string()).or_default();
        e[match sp.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
            Outcome::Open => 3,
        }] += 1;
    }
    out.push_str("<h3>Ops by outcome</h3>\n<table>\n");
    head(&mut out, &["op", "ok", "fail", "info", "in flight at end"]);
    for (f, c) in &counts {
        let _ = write!(out, "<tr><td>{}</td>", escape(f));
        for n in c {
            let _ = write!(out, "<td class=\"num\">{}</td>", count(*n));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");

    // Anomalies.
    let _ = writeln!(
        out,
        "<h2 id=\"anomalies\">Anomalies ({})</h2>",
        count(anomalies.len() as u64)
    );
    if anomalies.is_empty() {
        out.push_str("<p>None found.</p>\n");
    } else {
        out.push_str(LEGEND);
    }
    for (n, a) in anomalies.iter().enumerate() {
        let _ = write!(
            out,
            "<article class=\"anomaly\" id=\"anomaly-{}\">\n<h3>{}. ",
            n + 1,
            n + 1
        );
        escape_into(&mut out, &a.checker);
        out.push_str("</h3>\n<p class=\"message\">");
        escape_into(&mut out, &a.message);
        out.push_str("</p>\n");
        // One lane per op involved: an invoke and its completion are the same op.
        let mut ids: Vec<usize> = Vec::new();
        for &ix in &a.ops {
            if let Some(i) = spans.span_of(ix) {
                if !ids.contains(&i) {
                    ids.push(i);
                }
            }
        }
        if n < ANOMALY_VIEWS_MAX && !ids.iter().any(|&i| *spans.spans[i].f() == F::Book) {
            ids.extend(related_books(&spans.spans, a));
        }
        let involved: Vec<&Span<'_>> = ids.iter().map(|&i| &spans.spans[i]).collect();
        let names: Vec<String> = involved
            .iter()
            .enumerate()
            .map(|(i, sp)| format!("{} (op {})", letter(i), sp.last_index()))
            .collect();
        out.push_str("<p class=\"caption\">");
        let letters: Vec<String> = (0..involved.len()).map(letter).collect();
        escape_into(&mut out, &explain(&involved, &letters, &input.windows));
        if input.headline == Headline::LockFailedDatabaseHeld
            && role_of(&a.checker) == Some(Role::Lock)
        {
            out.push_str(
                " <b>The lock failed, the database held:</b> the data checkers found no anomaly.",
            );
        }
        out.push_str("</p>\n");
        if n < ANOMALY_VIEWS_MAX && !involved.is_empty() {
            let lanes: Vec<Lane<'_, '_>> = involved
                .iter()
                .enumerate()
                .map(|(i, sp)| Lane {
                    label: lane_label(&letter(i), sp),
                    span: sp,
                })
                .collect();
            plot_or_note(&mut out, plots::anomaly_timeline(&lanes, &input.windows));
            let t0 = involved.iter().map(|sp| sp.start).min().unwrap_or(0);
            let t1 = involved.iter().map(|sp| sp.end).max().unwrap_or(0);
            let shaded: Vec<String> = input
                .windows
                .iter()
                .filter(|w| w.start <= t1 && t0 <= w.end)
                .map(|w| format!("{} ({} to {})", w.name, secs(w.start), secs(w.end)))
                .collect();
            if !shaded.is_empty() {
                note(
                    &mut out,
                    Some(format!("Shaded fault windows: {}.", shaded.join("; "))),
                );
            }
        } else if n == ANOMALY_VIEWS_MAX {
            let _ = writeln!(out, "<p class=\"note\">Only the first {ANOMALY_VIEWS_MAX} anomalies get a timeline; the rest are listed.</p>");
        }
        op_table(&mut out, &involved, &names);
        out.push_str("</article>\n");
    }

    // Whole-run plots.
    out.push_str("<h2 id=\"timeline\">Timeline of the run</h2>\n<p class=\"note\">Each bar is one op from invocation to completion, on the lane of the client that issued it; clients that replace a retired one reuse its lane. Shaded: fault windows.</p>\n");
    match plots::run_timeline(&spans.spans, &input.windows, end_time) {
        Ok((svg, n)) => {
            out.push_str(&svg);
            note(&mut out, Some(n));
        }
        Err(e) => plot_or_note(&mut out, Err(e)),
    }

    out.push_str("<h2 id=\"latency\">Latency</h2>\n");
    match plots::latency(&spans.spans, &input.windows, end_time) {
        Ok((svg, n)) => {
            out.push_str(&svg);
            note(&mut out, n);
        }
        Err(e) => plot_or_note(&mut out, Err(e)),
    }
    quantile_table(&mut out, &spans.spans);

    out.push_str("<h2 id=\"throughput\">Throughput</h2>\n");
    plot_or_note(
        &mut out,
        plots::throughput(&spans.spans, &input.windows, end_time),
    );

    out.push_str("<h2 id=\"lease\">Lease held vs lease believed</h2>\n");
    match plots::lease(&spans.spans, &input.windows, end_time) {
        Ok(Some(svg)) => {
            lease_summary(&mut out, &spans.spans);
            out.push_str(&svg);
        }
        Ok(None) => out.push_str("<p>No trace in this history records a lock: not a lock design, or traces were not recorded.</p>\n"),
        Err(e) => plot_or_note(&mut out, Err(e)),
    }

    out.push_str("<h2 id=\"margin\">How close it came</h2>\n");
    match input.margin {
        Some(m) => {
            margin_section(&mut out, m, input.holds, &input.windows, end_time);
            near_miss(&mut out, m, &spans, &input.windows);
        }
        None => {
            out.push_str("<p>No lease hold to measure");
            if let Some(r) = input.margin_reason {
                out.push_str(": ");
                escape_into(&mut out, r);
            }
            out.push_str(".</p>\n");
        }
    }

    out.push_str("<h2 id=\"faults\">Fault windows</h2>\n");
    if input.windows.is_empty() {
        out.push_str("<p>No faults were logged in this history.</p>\n");
    } else {
        out.push_str("<table>\n");
        head(&mut out, &["fault", "hit", "from", "to", "length", "fired"]);
        for w in &input.windows {
            let fired = if w.firings.is_empty() {
                String::new()
            } else {
                crate::html::count(w.firings.len() as u64)
            };
            row(
                &mut out,
                &[
                    &w.name,
                    w.hit.as_deref().unwrap_or(""),
                    &secs(w.start),
                    &secs(w.end),
                    &dur(w.end.saturating_sub(w.start)),
                    &fired,
                ],
            );
        }
        out.push_str("</table>\n");
        if input.windows.iter().any(|w| !w.firings.is_empty()) {
            out.push_str("<p class=\"note\">Fired: how many messages an aimed fault acted on in the window (each is a <code>fire-&lt;fault&gt;</code> event in the history naming what it hit, and a red tick at the top of the plots).</p>\n");
        }
    }
    out.push_str("<p class=\"note\">Generated by overbook. Times are seconds since the run started, on the history's clock.</p>\n</body>\n</html>\n");
    out
}

/// A fraction of a lease as a percentage: `97.0%`.
fn pct(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// "How close it came": the closest call, the fraction quantiles and counts, the plot of
/// every hold, and the critical-section latency outside and inside fault windows.
fn margin_section(out: &mut String, m: &Margin, holds: &[Hold], windows: &[Window], end: u64) {
    let c = &m.closest;
    let class = if m.outlived > 0 {
        "callout bad"
    } else {
        "callout"
    };
    let _ = write!(out, "<p class=\"{class}\"><b>");
    escape_into(out, &capital(&m.sentence()));
    out.push_str(".</b> ");
    let on = c
        .lock_key
        .as_deref()
        .map(|k| format!(" on {k}"))
        .unwrap_or_default();
    let ended = match c.ended_by {
        SectionEnd::Commit => "commit",
        SectionEnd::Confirmed => "confirmation (no commit recorded)",
    };
    escape_into(
        out,
        &format!(
            "Op {}{on} held its lease for {} (renewals included); its critical section took {}, from acquiring the lock to its {ended}.",
            c.op,
            dur((c.lease_ms * 1e6) as u64),
            dur((c.critical_ms * 1e6) as u64),
        ),
    );
    out.push_str("</p>\n<p class=\"note\">Each lock hold's critical section (lock acquired → commit, or → confirmation without a commit) as a share of the lease it actually held (to its last renewal plus the TTL). Above 100%, the write landed after the lease had expired: another client could hold the lock by then.</p>\n<table>\n");
    let above = format!("above {}", m.warn.percent());
    head(
        out,
        &[
            "lease holds",
            "unmeasured",
            "p50",
            "p99",
            "max",
            &above,
            "outlived (above 100%)",
        ],
    );
    row(
        out,
        &[
            &count(m.holds),
            &count(m.unmeasured),
            &pct(m.p50),
            &pct(m.p99),
            &pct(m.max),
            &count(m.above_warn),
            &count(m.outlived),
        ],
    );
    out.push_str("</table>\n");
    match plots::margin(holds, m.warn.get(), windows, end) {
        Ok((svg, n)) => {
            out.push_str(&svg);
            note(out, n);
        }
        Err(e) => plot_or_note(out, Err(e)),
    }
    out.push_str("<h3>Critical-section latency, outside and inside fault windows</h3>\n<p class=\"note\">What an alert on database latency nearing the lease needs: compare p99.9 with the TTL. A hold counts in every fault window its critical section overlaps.</p>\n<table>\n");
    head(
        out,
        &["where", "from", "to", "holds", "p50", "p99", "p99.9", "max"],
    );
    let ms = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.1} ms"));
    for l in &m.latency {
        let (name, from, to) = match &l.window {
            Some(w) => (w.name.clone(), secs(w.start), secs(w.end)),
            None => ("outside fault windows".to_string(), "—".into(), "—".into()),
        };
        row(
            out,
            &[
                &name,
                &from,
                &to,
                &count(l.holds),
                &ms(l.p50_ms),
                &ms(l.p99_ms),
                &ms(l.p999_ms),
                &ms(l.max_ms),
            ],
        );
    }
    out.push_str("</table>\n");
    if let Some(alert) = m.alert() {
        out.push_str("<h3>The alert</h3>\n<p class=\"note\">");
        let largest = alert
            .worst_p999_ms
            .into_iter()
            .chain(alert.healthy_p999_ms)
            .fold(0.0f64, f64::max);
        escape_into(
            out,
            &format!(
                "Against a {:.0} ms lease, a lease of at least {} ms keeps this run's largest p99.9 ({largest:.1} ms) under the warning fraction. No lease is safe against an unbounded pause: the database must hold the invariant. A rule to paste into monitoring, with this run's numbers:",
                alert.lease_ms, alert.suggested_lease_ms,
            ),
        );
        out.push_str("</p>\n<pre>");
        escape_into(out, &alert.rule);
        out.push_str("</pre>\n");
    }
}

/// The closest call's zoomed timeline, drawn like an anomaly's: its own op, the holder
/// of the same lock just before it and the one just after. In a valid run this is the
/// near miss: how much of the lease was left when the write landed, and how soon the
/// next client took the lock. Holders are matched by lock key and acquisition time.
fn near_miss(out: &mut String, m: &Margin, spans: &Spans<'_>, windows: &[Window]) {
    let Some(i) = spans.span_of(m.closest.op) else {
        return;
    };
    let me = &spans.spans[i];
    let (Some(key), Some(acquired)) = (
        m.closest.lock_key.as_deref(),
        me.trace().and_then(|t| t.lock_acquired),
    ) else {
        return;
    };
    // The holders of the same lock right before and right after the closest call.
    let mut before: Option<(u64, usize)> = None;
    let mut after: Option<(u64, usize)> = None;
    for (j, sp) in spans.spans.iter().enumerate() {
        let Some(t) = sp.trace() else { continue };
        let Some(at) = t.lock_acquired else { continue };
        if j == i || t.lock_key.as_deref() != Some(key) {
            continue;
        }
        if at < acquired && before.is_none_or(|(b, _)| at > b) {
            before = Some((at, j));
        } else if at >= acquired && after.is_none_or(|(a, _)| at < a) {
            after = Some((at, j));
        }
    }
    let mut ids: Vec<usize> = before.map(|(_, j)| j).into_iter().collect();
    ids.push(i);
    ids.extend(after.map(|(_, j)| j));
    let lanes: Vec<Lane<'_, '_>> = ids
        .iter()
        .enumerate()
        .map(|(n, &j)| Lane {
            label: lane_label(&letter(n), &spans.spans[j]),
            span: &spans.spans[j],
        })
        .collect();
    let me_letter = letter(usize::from(before.is_some()));
    let c = &m.closest;
    let left = c.lease_ms - c.critical_ms;
    let mut caption = if left >= 0.0 {
        format!(
            "Near miss: {me_letter} (op {}) finished its critical section {} before its lease on {key} expired, using {}% of it.",
            c.op,
            dur((left * 1e6) as u64),
            c.percent
        )
    } else {
        format!(
            "The closest call was no near miss: {me_letter} (op {}) finished its critical section {} after its lease on {key} expired ({}% of it).",
            c.op,
            dur((-left * 1e6) as u64),
            c.percent
        )
    };
    if let Some((at, j)) = after {
        let next = letter(lanes.len() - 1);
        let ended = me
            .trace()
            .and_then(|t| t.db_commit.or(t.confirmed))
            .unwrap_or(acquired);
        let gap = if at >= ended {
            format!("{} after that", dur(at - ended))
        } else {
            format!("{} before that", dur(ended - at))
        };
        let _ = write!(
            caption,
            " The next holder, {next} (op {}), acquired the lock {gap}.",
            spans.spans[j].last_index()
        );
    }
    out.push_str("<h3>The closest call</h3>\n<p class=\"caption\">");
    escape_into(out, &caption);
    out.push_str("</p>\n");
    out.push_str(LEGEND);
    plot_or_note(out, plots::anomaly_timeline(&lanes, windows));
}

/// The HTML legend shared by every anomaly timeline.
const LEGEND: &str = concat!(
    "<p class=\"note\">How to read an anomaly timeline: one lane per op involved. ",
    "<span style=\"color:rgb(31,119,180)\">■</span> lease valid on the lock server (acquire → expiry); ",
    "<span style=\"color:rgb(214,39,40)\">▨</span> the client still believed it held the lock after its lease expired (expiry → release); ",
    "| lease renewal; ",
    "<span style=\"color:rgb(214,39,40)\">|</span> at the top: an aimed fault fired (a write held, a COMMIT answer swallowed, a grant held, a renewal dropped); ",
    "<span style=\"color:rgb(230,171,2)\">■</span> database transaction (begin → commit; hollow: never committed); ",
    "thin bar: the op from invocation to completion, coloured by outcome (",
    "<span style=\"color:rgb(44,160,44)\">ok</span>, <span style=\"color:rgb(255,127,14)\">fail</span>, <span style=\"color:rgb(148,103,189)\">info</span>); ",
    "▲ confirmation sent to the user; ",
    "<span style=\"background:rgba(214,39,40,0.15)\">shaded</span>: fault window.</p>\n"
);

/// For an anomaly found in the final read (db-state, idempotency, durability) that names
/// only the read: the bookings that wrote what it is about (same request, or a stay
/// overlapping its room and nights), so the timeline shows how the rows got there.
fn related_books(spans: &[Span<'_>], a: &Anomaly) -> Vec<usize> {
    let target = match (&a.room, a.nights) {
        (Some(room), Some((from, to))) => Some(Stay {
            room: room.clone(),
            from,
            to,
        }),
        _ => None,
    };
    spans
        .iter()
        .enumerate()
        .filter(|(_, sp)| {
            *sp.f() == F::Book && matches!(sp.outcome, Outcome::Ok | Outcome::Info | Outcome::Open)
        })
        .filter(|(_, sp)| {
            let by_request = a.request.is_some() && sp.request() == a.request.as_deref();
            let by_stay = match (&target, sp.invoke.value.stay()) {
                (Some(t), Some(st)) => t.overlaps(&st),
                _ => false,
            };
            by_request || by_stay
        })
        .map(|(i, _)| i)
        .take(RELATED_MAX)
        .collect()
}

fn lane_label(letter: &str, sp: &Span<'_>) -> String {
    let mut l = format!(
        "{letter}: op {} · process {} · {}",
        sp.last_index(),
        sp.process,
        sp.f()
    );
    if let Some(st) = sp.invoke.value.stay() {
        let _ = write!(l, " {st}");
    }
    if let Some(r) = sp.request() {
        let _ = write!(l, " · request {}", crate::html::clip(r, 40));
    }
    let _ = write!(l, " · {}", sp.outcome.word());
    l
}

fn op_table(out: &mut String, involved: &[&Span<'_>], names: &[String]) {
    if involved.is_empty() {
        return;
    }
    out.push_str("<table>\n");
    head(
        out,
        &[
            "op",
            "process",
            "f",
            "stay",
            "request",
            "invoked",
            "completed",
            "latency",
            "outcome",
            "error",
        ],
    );
    for (sp, name) in involved.iter().zip(names) {
        let stay = sp
            .invoke
            .value
            .stay()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let done = if sp.completion.is_some() {
            secs(sp.end)
        } else {
            "—".to_string()
        };
        row(
            out,
            &[
                name,
                &sp.process.to_string(),
                sp.f().as_str(),
                &stay,
                sp.request().unwrap_or(""),
                &secs(sp.start),
                &done,
                &dur(sp.latency()),
                sp.outcome.word(),
                sp.error().unwrap_or(""),
            ],
        );
    }
    out.push_str("</table>\n");
}

fn quantile_table(out: &mut String, spans: &[Span<'_>]) {
    let mut lat: BTreeMap<(String, &'static str), Vec<u64>> = BTreeMap::new();
    for sp in spans.iter().filter(|sp| sp.completion.is_some()) {
        lat.entry((sp.f().to_string(), sp.outcome.word()))
            .or_default()
            .push(sp.latency());
    }
    if lat.is_empty() {
        return;
    }
    out.push_str("<table>\n");
    head(out, &["op", "outcome", "count", "p50", "p90", "p99", "max"]);
    for ((f, o), mut v) in lat {
        v.sort_unstable();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td>",
            escape(&f),
            o,
            count(v.len() as u64)
        );
        for q in [0.5, 0.9, 0.99, 1.0] {
            let _ = write!(out, "<td class=\"num\">{}</td>", dur(quantile(&v, q)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn lease_summary(out: &mut String, spans: &[Span<'_>]) {
    let mut holds = 0u64;
    let mut outlived = 0u64;
    let mut worst = 0u64;
    for t in spans.iter().filter_map(|sp| sp.trace()) {
        if t.lock_acquired.is_none() {
            continue;
        }
        holds += 1;
        if let (Some(e), Some(r)) = (t.lease_expiry(), t.lock_released) {
            if r > e {
                outlived += 1;
                worst = worst.max(r - e);
            }
        }
    }
    if outlived == 0 {
        let _ = writeln!(
            out,
            "<p>{} lock acquisitions; every client released the lock before its lease expired.</p>",
            count(holds)
        );
    } else {
        let _ = writeln!(
            out,
            "<p>{} lock acquisitions; <b>{} outlived their lease</b>: the client still believed it held the lock after the lock server had let it go (longest by {}). Red crosses above the blue dots are those holds.</p>",
            count(holds),
            count(outlived),
            dur(worst)
        );
    }
}
