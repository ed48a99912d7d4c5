//! `slow-writes`: only the statements that write (INSERT, UPDATE, DELETE, MERGE, COMMIT,
//! or `--slow-sql`) are held on their way to Postgres for `--db-latency`; reads, BEGIN
//! and Redis go at full speed: the seed's story, a write slower than the lease.
//!
//! Its aim, [`HeldStatements`], also serves the faults that keep a lease holder at work
//! (`clock-jump-redis`, `failover-redis`: only INSERTs, half a lease).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use rand::Rng;
use serde_json::{json, Value};
use workloads::Fault;

use super::{Aimed, FaultKind, Held, Targets};
use crate::nemesis::FaultParams;
use crate::nodes::aim::{Aim, Hit, Protocol};
use crate::nodes::{NodeError, ServerKind};
use wire::pg::{self, StatementKind};

pub(super) static KIND: SlowWrites = SlowWrites;

/// Holds the writes.
pub(super) struct SlowWrites;

impl FaultKind for SlowWrites {
    fn fault(&self) -> Fault {
        Fault::SlowWrites
    }

    fn detail(&self, params: &FaultParams) -> Value {
        let mut d = json!({
            "hold_ms": params.db_latency.as_millis() as u64,
            "jitter_ms": params.jitter(params.db_latency).as_millis() as u64,
        });
        if let Some(re) = &params.slow_sql {
            d["slow_sql"] = json!(re.as_str());
        }
        d
    }

    fn strike_unit(&self) -> &'static str {
        "writes held"
    }

    fn aimed(&self) -> Aimed {
        Aimed::FiringsStrike
    }

    fn apply<'a>(&'a self, on: &'a Targets<'a>) -> BoxFuture<'a, Result<Box<dyn Held>, NodeError>> {
        let postgres = on.server(ServerKind::Postgres);
        let aim = HeldStatements::writes(on.params);
        Box::pin(async move { on.aim_only(Fault::SlowWrites, postgres, aim) })
    }
}

/// Extra statements `slow-writes` holds: `--slow-sql REGEX`, matched against each
/// statement's SQL text.
#[derive(Clone)]
pub struct SlowSql(Arc<regex::Regex>);

impl SlowSql {
    /// Whether `sql` matches.
    pub fn matches(&self, sql: &str) -> bool {
        self.0.is_match(sql)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for SlowSql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlowSql({:?})", self.as_str())
    }
}

impl PartialEq for SlowSql {
    fn eq(&self, other: &SlowSql) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SlowSql {}

impl FromStr for SlowSql {
    type Err = regex::Error;
    fn from_str(s: &str) -> Result<SlowSql, regex::Error> {
        regex::RegexBuilder::new(s)
            .case_insensitive(true)
            // A user's pattern must not make the proxy build an unbounded automaton.
            .size_limit(1 << 20)
            .build()
            .map(|r| SlowSql(Arc::new(r)))
    }
}

/// The aim: every statement that writes (INSERT, UPDATE, DELETE, MERGE, ...), every
/// COMMIT, and every statement matching `also`, is held for `hold` (plus up to
/// `jitter`) on its way to Postgres; reads and BEGIN pass at full speed. With
/// `inserts_only`, only INSERTs are held (a booking being written; a cancel's DELETE and
/// every COMMIT pass): a lease holder at work, for the faults that strike then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldStatements {
    /// How long each statement is held.
    pub hold: Duration,
    /// A uniform random extra in `[0, jitter]`.
    pub jitter: Duration,
    /// Statements held besides the writes.
    pub also: Option<SlowSql>,
    /// Hold only INSERTs.
    pub inserts_only: bool,
}

impl HeldStatements {
    /// `slow-writes`' aim: the writes held for `--db-latency`.
    pub fn writes(params: &FaultParams) -> HeldStatements {
        HeldStatements {
            hold: params.db_latency,
            jitter: params.jitter(params.db_latency),
            also: params.slow_sql.clone(),
            inserts_only: false,
        }
    }

    /// A lease holder kept at work: its booking INSERT held `hold`.
    pub fn inserts(hold: Duration) -> HeldStatements {
        HeldStatements {
            hold,
            jitter: Duration::ZERO,
            also: None,
            inserts_only: true,
        }
    }
}

impl Aim for HeldStatements {
    fn protocol(&self) -> Protocol {
        Protocol::Postgres
    }

    fn statement(&self, sql: &str) -> Option<(Duration, Hit)> {
        let (kind, table) = slow_writes_kind(sql, self.also.as_ref())?;
        if self.inserts_only && first_word(sql) != "INSERT" {
            return None;
        }
        let mut held = self.hold;
        if !self.jitter.is_zero() {
            let extra = rand::rng().random_range(0..=self.jitter.as_micros() as u64);
            held += Duration::from_micros(extra);
        }
        let hit = Hit {
            action: "held",
            command: first_word(sql),
            kind,
            target: table,
            held_ms: Some(held.as_millis() as u64),
        };
        Some((held, hit))
    }
}

/// The first word of a statement, uppercased, for the history (`INSERT`, `COMMIT`).
fn first_word(sql: &str) -> String {
    sql.split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// What slow-writes does with a statement: hold it (and why), or not.
fn slow_writes_kind(sql: &str, also: Option<&SlowSql>) -> Option<(&'static str, Option<String>)> {
    let statement = pg::classify(sql);
    match statement.kind {
        StatementKind::Write => return Some(("write", statement.table)),
        StatementKind::Commit => return Some(("commit", None)),
        _ => {}
    }
    also.filter(|re| re.matches(sql))
        .map(|_| ("matched", statement.table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_writes_holds_writes_and_commits_not_reads_or_begin() {
        let held = |sql: &str| slow_writes_kind(sql, None).map(|(k, _)| k);
        assert_eq!(held("INSERT INTO bookings VALUES (1)"), Some("write"));
        assert_eq!(
            slow_writes_kind("update inventory set booking = 1", None),
            Some(("write", Some("inventory".to_string())))
        );
        assert_eq!(held("DELETE FROM bookings WHERE id = 1"), Some("write"));
        assert_eq!(held("COMMIT"), Some("commit"));
        assert_eq!(held("BEGIN"), None);
        assert_eq!(held("START TRANSACTION ISOLATION LEVEL SERIALIZABLE"), None);
        assert_eq!(held("SELECT 1 FROM bookings WHERE room = $1"), None);
        let also: SlowSql = "pg_advisory_xact_lock".parse().unwrap();
        assert_eq!(
            slow_writes_kind("SELECT pg_advisory_xact_lock($1)", Some(&also)).map(|(k, _)| k),
            Some("matched")
        );
        assert!("(".parse::<SlowSql>().is_err());
    }

    #[test]
    fn first_words_name_the_statement() {
        assert_eq!(first_word("  insert into x"), "INSERT");
        assert_eq!(first_word("COMMIT"), "COMMIT");
    }
}
