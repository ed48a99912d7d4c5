//! Assembles one run's report page: summary, anomalies with their zoomed timelines, and
//! the whole-run plots, into one self-contained HTML document.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use checkers::checks::margin::SectionEnd;
use checkers::{Anomaly, Headline, Hold, Margin, Op, Role, Stay, UnknownReason, Validity, F};

use crate::caption::{capital, explain, letter};
use crate::html::{count, dur, escape, escape_into, head, row, secs, STYLE};
use crate::meta::RunMeta;
use crate::plots::Told;
use crate::plots::{self, Lane};
use crate::spans::{Outcome, Span, Spans, Window};
use crate::strikes::Strikes;
use checkers::checks::told::{Notice, NoticeKind};

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
    /// Whether each client session owns its connections (the built-in designs), so the
    /// strikes of aimed faults can be attributed to ops (see [`crate::strikes`]).
    pub sessions_own_connections: bool,
    /// The notifications the service sent its guests (usable ones), in receive order.
    pub notices: &'a [Notice<'a>],
    /// Notifications the sink recorded as unusable.
    pub notices_rejected: usize,
    /// "3 guests were told they had a room they do not have", from told-is-true.
    pub told_untrue: Option<String>,
    /// What the findings cost the guests, in words (`checkers::harm::headline`), when
    /// they cost anything.
    pub harm: Option<&'a str>,
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

/// Renders the page: each section is its own function, in page order.
pub(crate) fn render(input: &PageInput<'_>) -> String {
    let spans = spans_of(input);
    let marks = Marks {
        strikes: strikes_of(input, &spans),
        notices: input.notices,
        phantoms: phantoms(&input.checks),
    };
    let mut out = String::with_capacity(256 * 1024);
    page_head(&mut out, input);
    headline(&mut out, input);
    if input.meta.interrupted {
        out.push_str(
            "<p class=\"callout bad\">Interrupted: the run was stopped early (Ctrl-C); \
             the history and this verdict cover only the part that ran.</p>\n",
        );
    }
    summary(&mut out, input, &spans);
    checker_table(&mut out, &input.checks);
    outcome_table(&mut out, &spans.spans);
    anomalies(&mut out, input, &spans, &marks);
    run_plots(&mut out, &spans, &input.windows);
    lease_section(&mut out, &spans, &input.windows);
    out.push_str("<h2 id=\"margin\">How close it came</h2>\n");
    match input.margin {
        Some(m) => {
            margin_section(&mut out, m, input.holds, &input.windows, spans.end_time);
            near_miss(&mut out, m, &spans, &marks, &input.windows);
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
    fault_table(&mut out, &input.windows);
    out.push_str("<p class=\"note\">Generated by overbook. Times are seconds since the run started, on the history's clock.</p>\n</body>\n</html>\n");
    out
}

/// The client ops as spans, with every op an anomaly or the closest call names indexed.
fn spans_of<'a>(input: &PageInput<'a>) -> Spans<'a> {
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
    spans
}

/// What an anomaly view draws on a lane besides the op's own trace: the strikes that
/// hit its connection and the notifications its guest was sent.
struct Marks<'a> {
    strikes: Strikes,
    notices: &'a [Notice<'a>],
    /// The notifications told-is-true found untrue (phantom confirmations), by index.
    phantoms: BTreeSet<u64>,
}

impl Marks<'_> {
    /// The lane of `sp`, called `letter`.
    fn lane<'s, 'a>(&'s self, letter: &str, sp: &'s Span<'a>) -> Lane<'s, 'a> {
        let (request, booking) = (sp.request(), sp.booking());
        let told = if *sp.f() == F::Book {
            self.notices
                .iter()
                .filter(|n| {
                    (n.request.is_some() && n.request == request)
                        || (n.booking.is_some() && n.booking == booking)
                })
                .map(|n| Told {
                    time: n.time,
                    cancelled: n.kind == NoticeKind::Cancelled,
                    phantom: self.phantoms.contains(&n.index),
                })
                .collect()
        } else {
            Vec::new()
        };
        Lane {
            label: lane_label(letter, sp),
            span: sp,
            strikes: self.strikes.on(sp),
            told,
        }
    }
}

/// The notifications told-is-true found untrue: the events its anomalies name.
fn phantoms(checks: &[CheckRow<'_>]) -> BTreeSet<u64> {
    checks
        .iter()
        .filter(|c| c.checker == "told-is-true")
        .flat_map(|c| c.anomalies.iter().flat_map(|a| a.ops.iter().copied()))
        .collect()
}

/// The strikes of aimed faults, those that hit an op an anomaly names attributed to it
/// (when the history's client sessions own their connections: see [`crate::strikes`]).
fn strikes_of(input: &PageInput<'_>, spans: &Spans<'_>) -> Strikes {
    let mut strikes = Strikes::of(input.ops, &input.windows);
    if input.sessions_own_connections && !strikes.list.is_empty() {
        let mut drawn = BTreeSet::new();
        for c in &input.checks {
            for a in c.anomalies {
                drawn.extend(a.ops.iter().filter_map(|&ix| spans.span_of(ix)));
            }
        }
        let processes = drawn.iter().map(|&i| spans.spans[i].process).collect();
        strikes.attribute(&spans.spans, &processes);
    }
    strikes
}

/// The page's title: the design, or "history" for a foreign one.
fn title(meta: &RunMeta) -> &str {
    if meta.design.is_empty() {
        "history"
    } else {
        &meta.design
    }
}

/// The document head, the title with the verdict, and the section links.
fn page_head(out: &mut String, input: &PageInput<'_>) {
    let title = title(input.meta);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>overbook: ");
    escape_into(out, title);
    let _ = write!(
        out,
        " ({})</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        input.validity.as_str()
    );
    out.push_str("<h1>overbook report: ");
    escape_into(out, title);
    let _ = writeln!(
        out,
        " <span class=\"verdict {0}\">{1}</span></h1>",
        input.validity.as_str(),
        input.validity.as_str().to_uppercase()
    );
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#anomalies\">Anomalies</a><a href=\"#timeline\">Timeline</a><a href=\"#latency\">Latency</a><a href=\"#throughput\">Throughput</a><a href=\"#lease\">Lease</a><a href=\"#margin\">Margin</a><a href=\"#faults\">Faults</a></nav>\n");
}

/// "3 lock-exclusion findings".
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// The headline: what the run cost the guests in business words (when it cost them
/// anything), then what the run shows in the checkers' terms. Both are decided by the
/// checkers (`checkers::harm::headline`, `checkers::verdict`); the page only words the
/// second and shows the first.
fn headline(out: &mut String, input: &PageInput<'_>) {
    let technical = technical_line(input);
    let class = match input.headline {
        Headline::LockFailedDatabaseHeld | Headline::LockFailedDataHeld | Headline::AllHeld => {
            "callout"
        }
        _ => "callout bad",
    };
    let _ = write!(out, "<p class=\"{class}\">");
    if let Some(harm) = input.harm {
        out.push_str("<b class=\"harm\">");
        escape_into(out, &capital(harm));
        out.push_str(".</b><br>");
    }
    out.push_str(&technical);
    out.push_str("</p>\n");
}

/// The technical line of the headline (HTML, escaped): the phrase of `input.headline`
/// with the checkers and counts behind it.
fn technical_line(input: &PageInput<'_>) -> String {
    let count_where = |f: &dyn Fn(Role) -> bool| -> u64 {
        input
            .checks
            .iter()
            .filter(|c| f(c.role))
            .map(|c| c.anomalies.len() as u64)
            .sum()
    };
    let lock = plural(
        count_where(&|r| r == Role::Lock),
        "lock-exclusion finding",
        "lock-exclusion findings",
    );
    let strict = if input.validity == Validity::Invalid {
        " The run is invalid because lock-exclusion decides it (--strict-lock)."
    } else {
        ""
    };
    match input.headline {
        Headline::DataWrong => {
            let wrong: Vec<&str> = input
                .checks
                .iter()
                .filter(|c| c.role.judges_data() && c.validity == Validity::Invalid)
                .map(|c| c.checker)
                .collect();
            let lock_findings = count_where(&|r| r == Role::Lock);
            format!(
                "The data is wrong: {} found {}.{}",
                escape(&wrong.join(", ")),
                plural(count_where(&Role::judges_data), "anomaly", "anomalies"),
                if lock_findings > 0 {
                    format!(" The lock also failed ({lock}).")
                } else {
                    String::new()
                }
            )
        }
        Headline::LockFailedDatabaseHeld => format!("<b>The lock failed, the database held.</b> Two clients held the same lock at once ({lock}), yet no double booking, lost confirmation or phantom booking resulted: the invariant lives in the database.{strict}"),
        Headline::LockFailedUnguarded => format!("<b>The lock failed under a design that trusts it.</b> Two clients held the same lock at once ({lock}), and nothing else guards the room-nights: a double booking waiting for two users to ask for one night, whatever nights these two booked."),
        Headline::LockFailedDataHeld => format!("<b>The lock failed; the data shows no anomaly.</b> Two clients held the same lock at once ({lock}); the history does not declare what guards the room-nights, so no claim is made that a database held.{strict}"),
        Headline::LockFailed => format!(
            "The lock failed ({lock}), and whether the database held is unknown ({}).",
            escape(&reasons(input.unknown_reasons))
        ),
        Headline::Unknown => format!(
            "Unknown: the checkers lacked what they needed ({}).",
            escape(&reasons(input.unknown_reasons))
        ),
        Headline::AllHeld => "No anomalies: every checker that decides the verdict found the history valid.".to_string(),
    }
}

/// The summary table: what ran, how, and the command that reproduces it.
fn summary(out: &mut String, input: &PageInput<'_>, spans: &Spans<'_>) {
    let meta = input.meta;
    out.push_str("<h2 id=\"summary\">Summary</h2>\n<table>\n");
    let faults = if meta.faults.is_empty() {
        "none recorded".to_string()
    } else {
        meta.faults.join(", ")
    };
    let duration = if meta.duration_ms > 0 {
        dur(meta.duration_ms.saturating_mul(1_000_000))
    } else {
        format!("{} (history span)", dur(spans.end_time))
    };
    let ops_line = format!(
        "{} events, {} client ops",
        count(input.ops.len() as u64),
        count(spans.spans.len() as u64)
    );
    let seed = meta.seed.map_or_else(|| "none".into(), |s| s.to_string());
    let or_unknown = |s: &'static str, v: &str| {
        if v.is_empty() {
            s.to_string()
        } else {
            v.to_string()
        }
    };
    for (k, v) in [
        (
            "design",
            or_unknown("unknown (foreign history)", &meta.design),
        ),
        ("faults", faults),
        ("seed", seed),
        ("duration", duration),
        ("started at", or_unknown("unknown", &meta.started_at)),
        ("history", ops_line),
    ] {
        row(out, &[k, &v]);
    }
    if let Some(told) = notifications_line(input) {
        row(out, &["notifications", &told]);
    }
    for (k, v) in &meta.params {
        if v.contains('\n') {
            // A log tail (service mode): keep its lines.
            out.push_str("<tr><td>");
            escape_into(out, k);
            out.push_str("</td><td><pre>");
            escape_into(out, v);
            out.push_str("</pre></td></tr>\n");
        } else {
            row(out, &[k, v]);
        }
    }
    out.push_str("</table>\n");
    if !meta.command.is_empty() {
        out.push_str("<p>Reproduce with:</p><pre>");
        escape_into(out, &meta.command);
        out.push_str("</pre>\n");
    }
}

/// "12 received: 10 confirmed, 2 cancelled; 3 guests were told they had a room they do
/// not have", or `None` when the service sent nothing.
fn notifications_line(input: &PageInput<'_>) -> Option<String> {
    let received = input.notices.len() + input.notices_rejected;
    if received == 0 {
        return None;
    }
    let of = |k: NoticeKind| input.notices.iter().filter(|n| n.kind == k).count() as u64;
    let mut parts = vec![
        format!("{} confirmed", count(of(NoticeKind::Confirmed))),
        format!("{} cancelled", count(of(NoticeKind::Cancelled))),
    ];
    if of(NoticeKind::Other) > 0 {
        parts.push(format!("{} of other kinds", count(of(NoticeKind::Other))));
    }
    if input.notices_rejected > 0 {
        parts.push(format!(
            "{} rejected as bad input",
            count(input.notices_rejected as u64)
        ));
    }
    let mut line = format!("{} received: {}", count(received as u64), parts.join(", "));
    if let Some(untrue) = &input.told_untrue {
        line.push_str("; ");
        line.push_str(untrue);
    }
    Some(line)
}

/// One row per checker: verdict, whether it decides the run, its counts.
fn checker_table(out: &mut String, checks: &[CheckRow<'_>]) {
    out.push_str("<h3>Checkers</h3>\n<table>\n");
    head(out, &["checker", "verdict", "decides the run", "summary"]);
    for c in checks {
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
        escape_into(out, c.summary);
        // An unknown's summary is usually its reason: say it once.
        if let Some(r) = c.reason.filter(|r| *r != c.summary) {
            out.push_str(" <span class=\"note\">(");
            escape_into(out, r);
            out.push_str(")</span>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
}

/// Client ops counted by `f` and how they ended.
fn outcome_table(out: &mut String, spans: &[Span<'_>]) {
    let mut counts: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for sp in spans {
        let e = counts.entry(sp.f().to_string()).or_default();
        e[match sp.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
            Outcome::Open => 3,
        }] += 1;
    }
    out.push_str("<h3>Ops by outcome</h3>\n<table>\n");
    head(out, &["op", "ok", "fail", "info", "in flight at end"]);
    for (f, c) in &counts {
        let _ = write!(out, "<tr><td>{}</td>", escape(f));
        for n in c {
            let _ = write!(out, "<td class=\"num\">{}</td>", count(*n));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Every anomaly in its own box, the first [`ANOMALY_VIEWS_MAX`] with a timeline.
fn anomalies(out: &mut String, input: &PageInput<'_>, spans: &Spans<'_>, marks: &Marks<'_>) {
    let all: Vec<&Anomaly> = input
        .checks
        .iter()
        .flat_map(|c| c.anomalies.iter())
        .collect();
    let _ = writeln!(
        out,
        "<h2 id=\"anomalies\">Anomalies ({})</h2>",
        count(all.len() as u64)
    );
    if all.is_empty() {
        out.push_str("<p>None found.</p>\n");
    } else {
        out.push_str(LEGEND);
    }
    for (n, a) in all.iter().enumerate() {
        anomaly(out, input, (spans, marks), n, a);
    }
}

/// Anomaly number `n` (from 0): its message, caption, timeline and op table.
fn anomaly(
    out: &mut String,
    input: &PageInput<'_>,
    (spans, marks): (&Spans<'_>, &Marks<'_>),
    n: usize,
    a: &Anomaly,
) {
    let _ = write!(
        out,
        "<article class=\"anomaly\" id=\"anomaly-{}\">\n<h3>{}. ",
        n + 1,
        n + 1
    );
    escape_into(out, &a.checker);
    out.push_str("</h3>\n<p class=\"message\">");
    escape_into(out, &a.message);
    out.push_str("</p>\n");
    let involved = involved(spans, a, n < ANOMALY_VIEWS_MAX);
    let names: Vec<String> = involved
        .iter()
        .enumerate()
        .map(|(i, sp)| format!("{} (op {})", letter(i), sp.last_index()))
        .collect();
    out.push_str("<p class=\"caption\">");
    escape_into(out, &caption(&involved, &input.windows));
    let role = input
        .checks
        .iter()
        .find(|c| c.checker == a.checker)
        .map(|c| c.role);
    if input.headline == Headline::LockFailedDatabaseHeld && role == Some(Role::Lock) {
        out.push_str(
            " <b>The lock failed, the database held:</b> the data checkers found no anomaly.",
        );
    }
    out.push_str("</p>\n");
    if n < ANOMALY_VIEWS_MAX && !involved.is_empty() {
        anomaly_timeline(out, &involved, marks, &input.windows);
    } else if n == ANOMALY_VIEWS_MAX {
        let _ = writeln!(out, "<p class=\"note\">Only the first {ANOMALY_VIEWS_MAX} anomalies get a timeline; the rest are listed.</p>");
    }
    op_table(out, &involved, &names);
    out.push_str("</article>\n");
}

/// The ops of anomaly `a`, one lane each (an invoke and its completion are the same op);
/// with `related`, an anomaly naming no booking (a lock finding) gets the bookings it
/// concerns too, so its caption and timeline show what the lock guarded.
pub(crate) fn involved<'s, 'a>(
    spans: &'s Spans<'a>,
    a: &Anomaly,
    related: bool,
) -> Vec<&'s Span<'a>> {
    let mut ids: Vec<usize> = Vec::new();
    for &ix in &a.ops {
        if let Some(i) = spans.span_of(ix) {
            if !ids.contains(&i) {
                ids.push(i);
            }
        }
    }
    if related && !ids.iter().any(|&i| *spans.spans[i].f() == F::Book) {
        ids.extend(related_books(&spans.spans, a));
    }
    ids.iter().map(|&i| &spans.spans[i]).collect()
}

/// The plain-words caption of the ops `involved` in an anomaly, named A, B, ...
pub(crate) fn caption(involved: &[&Span<'_>], windows: &[Window]) -> String {
    let letters: Vec<String> = (0..involved.len()).map(letter).collect();
    explain(involved, &letters, windows)
}

/// The zoomed timeline of the ops `involved` in an anomaly, and the fault windows it
/// shades named under it.
fn anomaly_timeline(
    out: &mut String,
    involved: &[&Span<'_>],
    marks: &Marks<'_>,
    windows: &[Window],
) {
    let lanes: Vec<Lane<'_, '_>> = involved
        .iter()
        .enumerate()
        .map(|(i, sp)| marks.lane(&letter(i), sp))
        .collect();
    plot_or_note(out, plots::anomaly_timeline(&lanes, windows));
    let t0 = involved.iter().map(|sp| sp.start).min().unwrap_or(0);
    let t1 = involved.iter().map(|sp| sp.end).max().unwrap_or(0);
    let shaded: Vec<String> = windows
        .iter()
        .filter(|w| w.start <= t1 && t0 <= w.end)
        .map(|w| format!("{} ({} to {})", w.name, secs(w.start), secs(w.end)))
        .collect();
    if !shaded.is_empty() {
        note(
            out,
            Some(format!("Shaded fault windows: {}.", shaded.join("; "))),
        );
    }
}

/// The whole-run plots: timeline, latency (with its quantile table), throughput.
fn run_plots(out: &mut String, spans: &Spans<'_>, windows: &[Window]) {
    let end_time = spans.end_time;
    out.push_str("<h2 id=\"timeline\">Timeline of the run</h2>\n<p class=\"note\">Each bar is one op from invocation to completion, on the lane of the client that issued it; clients that replace a retired one reuse its lane. Shaded: fault windows.</p>\n");
    match plots::run_timeline(&spans.spans, windows, end_time) {
        Ok((svg, n)) => {
            out.push_str(&svg);
            note(out, Some(n));
        }
        Err(e) => plot_or_note(out, Err(e)),
    }
    out.push_str("<h2 id=\"latency\">Latency</h2>\n");
    match plots::latency(&spans.spans, windows, end_time) {
        Ok((svg, n)) => {
            out.push_str(&svg);
            note(out, n);
        }
        Err(e) => plot_or_note(out, Err(e)),
    }
    quantile_table(out, &spans.spans);
    out.push_str("<h2 id=\"throughput\">Throughput</h2>\n");
    plot_or_note(out, plots::throughput(&spans.spans, windows, end_time));
}

/// Lease held vs lease believed, for lock designs.
fn lease_section(out: &mut String, spans: &Spans<'_>, windows: &[Window]) {
    out.push_str("<h2 id=\"lease\">Lease held vs lease believed</h2>\n");
    match plots::lease(&spans.spans, windows, spans.end_time) {
        Ok(Some(svg)) => {
            lease_summary(out, &spans.spans);
            out.push_str(&svg);
        }
        Ok(None) => out.push_str("<p>No trace in this history records a lock: not a lock design, or traces were not recorded.</p>\n"),
        Err(e) => plot_or_note(out, Err(e)),
    }
}

/// The fault windows the nemesis logged, with how often an aimed fault fired in each.
fn fault_table(out: &mut String, windows: &[Window]) {
    out.push_str("<h2 id=\"faults\">Fault windows</h2>\n");
    if windows.is_empty() {
        out.push_str("<p>No faults were logged in this history.</p>\n");
        return;
    }
    out.push_str("<table>\n");
    head(out, &["fault", "hit", "from", "to", "length", "fired"]);
    for w in windows {
        let fired = if w.firings.is_empty() {
            String::new()
        } else {
            count(w.firings.len() as u64)
        };
        row(
            out,
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
    if windows.iter().any(|w| !w.firings.is_empty()) {
        out.push_str("<p class=\"note\">Fired: how many messages an aimed fault acted on in the window (each is a <code>fire-&lt;fault&gt;</code> event in the history naming what it hit, a red tick at the top of the whole-run plots, and a named mark on an anomaly's lane when it hit that op).</p>\n");
    }
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
    out.push_str("</p>\n");
    margin_table(out, m);
    match plots::margin(holds, m.warn.get(), windows, end) {
        Ok((svg, n)) => {
            out.push_str(&svg);
            note(out, n);
        }
        Err(e) => plot_or_note(out, Err(e)),
    }
    margin_latency(out, m);
    margin_alert(out, m);
}

/// The shares of their leases the critical sections used: quantiles and counts.
fn margin_table(out: &mut String, m: &Margin) {
    out.push_str("<p class=\"note\">Each lock hold's critical section (lock acquired → commit, or → confirmation without a commit) as a share of the lease it actually held (to its last renewal plus the TTL). Above 100%, the write landed after the lease had expired: another client could hold the lock by then.</p>\n<table>\n");
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
}

/// Critical-section latency outside and inside each fault window.
fn margin_latency(out: &mut String, m: &Margin) {
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
}

/// The alert rule to paste into monitoring, with this run's numbers, when there is one.
fn margin_alert(out: &mut String, m: &Margin) {
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

/// A neighbouring holder of a lock: when it acquired it, and its span.
type Neighbour = Option<(u64, usize)>;

/// The holders of lock `key` right before and right after span `i` (which acquired it
/// at `acquired`).
fn neighbours(spans: &Spans<'_>, i: usize, key: &str, acquired: u64) -> (Neighbour, Neighbour) {
    let mut before: Neighbour = None;
    let mut after: Neighbour = None;
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
    (before, after)
}

/// The closest call's zoomed timeline, drawn like an anomaly's: its own op, the holder
/// of the same lock just before it and the one just after. In a valid run this is the
/// near miss: how much of the lease was left when the write landed, and how soon the
/// next client took the lock. Holders are matched by lock key and acquisition time.
fn near_miss(
    out: &mut String,
    m: &Margin,
    spans: &Spans<'_>,
    marks: &Marks<'_>,
    windows: &[Window],
) {
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
    let (before, after) = neighbours(spans, i, key, acquired);
    let mut ids: Vec<usize> = before.map(|(_, j)| j).into_iter().collect();
    ids.push(i);
    ids.extend(after.map(|(_, j)| j));
    let lanes: Vec<Lane<'_, '_>> = ids
        .iter()
        .enumerate()
        .map(|(n, &j)| marks.lane(&letter(n), &spans.spans[j]))
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
    "<span style=\"color:rgb(214,39,40)\"><b>|</b></span> on a lane, named under its bar: an aimed fault struck this op's own connection (a write held, a COMMIT answer swallowed, a grant held, a renewal dropped), across the row it hit; ",
    "<span style=\"color:rgba(214,39,40,0.35)\">|</span> faint, through the shading: the fault's other strikes (other connections, or none the history pins to an op); ",
    "<span style=\"color:rgb(230,171,2)\">■</span> database transaction (begin → commit; hollow: never committed); ",
    "thin bar: the op from invocation to completion, coloured by outcome (",
    "<span style=\"color:rgb(44,160,44)\">ok</span>, <span style=\"color:rgb(255,127,14)\">fail</span>, <span style=\"color:rgb(148,103,189)\">info</span>); ",
    "▲ confirmation sent to the user; ",
    "<span style=\"color:rgb(23,90,160)\">○</span> a notification the service sent the guest (\"confirmed\"; <span style=\"color:rgb(23,90,160)\">✕</span> \"cancelled\"), when overbook's sink received it; <span style=\"color:rgb(214,39,40)\">●</span> a phantom confirmation (told-is-true: no such booking committed); ",
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
