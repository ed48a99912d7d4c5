//! overbook's reports: one self-contained HTML page per run (SVG plots drawn with
//! plotters, inlined; no scripts, fonts or stylesheets fetched), and the store's index.
//!
//! - [`meta`]: [`RunMeta`] (how a run was made) and [`RunSummary`] (one index line).
//! - `page`: the run page: summary, anomalies with zoomed timelines, whole-run plots.
//! - `plots`: every SVG plot.
//! - `caption`: plain-words explanations of anomalies built from traces.
//! - `index`: the store's run index.
//! - [`matrix`]: the design matrix page and its data (`matrix.json`).
//! - [`summary`]: a matrix cell's runs together: detection rate (Wilson), met/flaky/missed.
//! - [`summary_md`]: the markdown summary of a run or matrix (`--summary-md`).
//! - [`diff`]: what changed between two matrices, and its section of `matrix.html`.
//! - [`trend`]: the last N matrices as one page: cells x nights, time to first anomaly.
//! - [`html`]: escaping; everything from a history is escaped before it reaches the page.

mod caption;
pub mod diff;
mod error;
pub mod html;
mod index;
pub mod matrix;
pub mod meta;
mod page;
mod plots;
mod spans;
mod strikes;
pub mod summary;
pub mod summary_md;
pub mod trend;

pub use error::RenderError;
pub use index::render_index;
pub use meta::{RunMeta, RunSummary};

use checkers::{History, Results};

/// Renders one run's report: a complete, self-contained HTML page (inline CSS and SVG,
/// no scripts, nothing fetched) with the summary, every anomaly with its own zoomed
/// timeline and caption, the whole-run timeline, latency, throughput and lease plots, and
/// how close each lease hold came to outliving its lease.
/// Never fails: a plot that cannot be drawn is replaced by a note saying why.
pub fn render_run(history: &History, results: &Results, meta: &RunMeta) -> String {
    let windows = spans::windows(history);
    let checks = results
        .checks
        .iter()
        .map(|c| page::CheckRow {
            checker: &c.checker,
            validity: c.validity,
            role: c.role,
            deciding: c.deciding,
            summary: &c.summary,
            reason: c.reason.as_deref(),
            anomalies: &c.anomalies,
        })
        .collect();
    // lease-margin's numbers come from the results; the plot's points, one per hold,
    // are measured from the history by the same function the checker uses.
    let margin = results.checks.iter().find_map(|c| c.margin.as_ref());
    let holds = match margin {
        Some(_) => checkers::lease_holds(history).holds,
        None => Vec::new(),
    };
    let margin_reason = results
        .check(checkers::checks::margin::NAME)
        .and_then(|c| c.reason.as_deref());
    let harm = checkers::harm::headline(results);
    let notices = checkers::checks::told::Notices::of(history);
    page::render(&page::PageInput {
        ops: history.ops(),
        checks,
        validity: results.validity,
        headline: results.headline,
        unknown_reasons: &results.unknown_reasons,
        margin,
        margin_reason,
        holds: &holds,
        windows,
        meta,
        harm: harm.as_deref(),
        // Under the built-in designs each session opens its own connections; a service
        // serves every user from its own pool (and a foreign history says neither).
        sessions_own_connections: history
            .header()
            .and_then(|h| h.subject.as_deref())
            .is_some_and(|s| s != "service"),
        notices: &notices.list,
        notices_rejected: notices.rejected,
        told_untrue: checkers::Harm::of(results).told_untrue_words(),
    })
}
