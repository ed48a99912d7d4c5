//! What a report says about the run itself, beside the history: how it was started.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use checkers::Validity;

/// How a run was made, so the report can say what was tested and how to reproduce it.
/// The runner fills it (and writes it to `meta.json`); for a foreign history checked with
/// `overbook check FILE --report` most fields stay empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    /// The booking design under test, e.g. `lock-only`.
    pub design: String,
    /// The faults the nemesis injected, e.g. `["db-latency", "pause-redis"]`.
    pub faults: Vec<String>,
    /// The seed of the generator and nemesis, when the run had one.
    pub seed: Option<u64>,
    /// How long the run lasted, in milliseconds (0 when unknown).
    pub duration_ms: u64,
    /// The command line that reproduces the run.
    pub command: String,
    /// The same command as words (`overbook`, `run`, then its options), written by the
    /// runner from the run's configuration: what tools that repeat a run (`bench
    /// reproduce`) rebuild it from, with no shell and no parsing of `command`. Empty for
    /// runs of overbook versions before it, and for foreign histories.
    pub argv: Vec<String>,
    /// When the run started (RFC 3339 or any sortable text the runner chooses).
    pub started_at: String,
    /// Further run parameters worth showing (lease TTL, injected latency, clients, ...).
    pub params: BTreeMap<String, String>,
    /// The run was stopped early (Ctrl-C): the history covers only part of the time
    /// limit, so the verdict speaks for that part only.
    pub interrupted: bool,
}

/// One line of the store's run index (`store/index.html`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's directory name, e.g. `20261123T101500`.
    pub dir: String,
    /// The design under test.
    pub design: String,
    /// The faults injected.
    pub faults: Vec<String>,
    /// The run's overall verdict.
    pub verdict: Validity,
    /// When the run started; the index sorts on it, newest first.
    pub time: String,
    /// Where the run's report is, relative to the index page.
    pub link: String,
    /// What its findings cost the guests ([`checkers::harm::headline`]), when anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harm: Option<String>,
}
