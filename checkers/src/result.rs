//! What a checker decides: a three-valued verdict plus anomalies that name op indexes.
//!
//! Results are plain serde data so `reports/` can render them without re-checking, and
//! `results.json` can be read back by CI tooling.

use crate::header::Guard;
use serde::{Deserialize, Serialize};

use crate::bound::Bound;
use crate::checks::margin::Margin;
use crate::checks::Checker;
use crate::harm::Harm;
use crate::room::Room;

/// A checker's verdict. Ordered so that composing takes the worst: `Valid < Unknown < Invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// The history shows no violation of what this checker decides.
    Valid,
    /// The checker lacked what it needed (no final read, no traces) or errored.
    Unknown,
    /// At least one anomaly was found.
    Invalid,
}

impl Validity {
    /// The worse of two verdicts (Jepsen's `merge-valid`).
    pub fn merge(self, other: Validity) -> Validity {
        self.max(other)
    }

    /// The lowercase name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Unknown => "unknown",
            Validity::Invalid => "invalid",
        }
    }
}

/// One violation found in a history, with the ops involved so a report can draw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Which checker found it (e.g. `no-double-booking`).
    pub checker: String,
    /// The indexes of the ops involved (invocations and/or completions).
    pub ops: Vec<u64>,
    /// The room concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Room>,
    /// The nights (or slot time) concerned, half-open `[from, to)`, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nights: Option<(Bound, Bound)>,
    /// The room's capacity, when an anomaly is about a room holding more stays than it
    /// (and the capacity is not 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// The lock key concerned (lock-exclusion, fencing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_key: Option<String>,
    /// The request id concerned (idempotency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// One sentence saying what happened, e.g.
    /// "room 101 nights 2026-12-01..2026-12-03 confirmed to ops 14 and 19".
    pub message: String,
}

/// What a checker's verdict counts for. Every checker has one ([`crate::Checker::role`]);
/// the run's verdict and headline are computed from roles ([`verdict`]), never from
/// lists of checker names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Judges the data: what users were told against what the database holds
    /// (no-double-booking, confirmed-is-durable, failed-is-absent, db-state,
    /// idempotency). Invalid makes the run invalid; unknown (no final read) makes it
    /// unknown, because then nobody knows whether the data held.
    Data,
    /// Judges a safeguard of the data that only some designs have (fencing: did the
    /// database accept a write with a stale token). Invalid makes the run invalid, like
    /// data; unknown only means the design lacks the safeguard, so it never makes the
    /// run unknown.
    Safeguard,
    /// Judges the lock's own promise (lock-exclusion). Reported prominently, but the lock
    /// is coordination, not correctness: invalid makes the run invalid only with
    /// `--strict-lock`, and unknown (no lock) never makes it unknown.
    Lock,
    /// Measures without judging (stats, lease-margin): never decides, and its unknown
    /// means "not applicable".
    Informational,
}

impl Role {
    /// Whether an `invalid` from a checker of this role makes the run invalid.
    pub fn decides(self, strict_lock: bool) -> bool {
        match self {
            Role::Data | Role::Safeguard => true,
            Role::Lock => strict_lock,
            Role::Informational => false,
        }
    }

    /// Whether an `unknown` from a checker of this role makes the run unknown.
    pub fn unknown_decides(self) -> bool {
        self == Role::Data
    }

    /// Whether the role judges the data (data or one of its safeguards): its findings
    /// mean "the data is wrong".
    pub fn judges_data(self) -> bool {
        matches!(self, Role::Data | Role::Safeguard)
    }

    /// The lowercase name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Data => "data",
            Role::Safeguard => "safeguard",
            Role::Lock => "lock",
            Role::Informational => "informational",
        }
    }

    /// The role of a result written before results carried one: the built-in checker of
    /// that name's role, else data when it was deciding, informational when not.
    pub fn of_legacy(checker: &str, deciding: bool) -> Role {
        crate::checks::role_of(checker).unwrap_or(if deciding {
            Role::Data
        } else {
            Role::Informational
        })
    }
}

/// What a checker decided about a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "CheckResultJson")]
pub struct CheckResult {
    /// The checker's name, e.g. `no-double-booking`.
    pub checker: String,
    /// Its verdict.
    pub validity: Validity,
    /// What its verdict counts for (see [`Role`]).
    pub role: Role,
    /// Whether an `invalid` here makes the run invalid: the role's rule under the options
    /// the checker ran with (lock-exclusion only with `--strict-lock`). Kept in JSON for
    /// tools that read results.json without knowing roles.
    pub deciding: bool,
    /// One line of counts, e.g. "2 anomalies (1,204 ok bookings checked)".
    pub summary: String,
    /// Every violation found, each naming op indexes.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// Why the verdict is `unknown` (e.g. "no final read"), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What lease-margin measured (only on its result): how much of their leases the
    /// critical sections used, and their latency per fault window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<Margin>,
    /// What its findings cost the guests, counted (room-nights oversold, guests told
    /// something untrue), for the business headline ([`crate::harm::headline`]). Empty
    /// when it found nothing or counts no harm.
    #[serde(default, skip_serializing_if = "Harm::is_empty")]
    pub harm: Harm,
}

/// [`CheckResult`] as JSON may hold it: results.json files written before results
/// carried a `role` get the one their checker name (or `deciding`) implies.
#[derive(Deserialize)]
struct CheckResultJson {
    checker: String,
    validity: Validity,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    deciding: Option<bool>,
    summary: String,
    #[serde(default)]
    anomalies: Vec<Anomaly>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    margin: Option<Margin>,
    #[serde(default)]
    harm: Harm,
}

impl From<CheckResultJson> for CheckResult {
    fn from(j: CheckResultJson) -> CheckResult {
        let role = j
            .role
            .unwrap_or_else(|| Role::of_legacy(&j.checker, j.deciding.unwrap_or(false)));
        CheckResult {
            deciding: j.deciding.unwrap_or_else(|| role.decides(false)),
            checker: j.checker,
            validity: j.validity,
            role,
            summary: j.summary,
            anomalies: j.anomalies,
            reason: j.reason,
            margin: j.margin,
            harm: j.harm,
        }
    }
}

impl CheckResult {
    /// A verdict with no anomalies from checker `by`: `valid`.
    pub fn valid(by: &dyn Checker, summary: String) -> CheckResult {
        CheckResult {
            checker: by.name().to_string(),
            validity: Validity::Valid,
            role: by.role(),
            deciding: by.deciding(),
            summary,
            anomalies: Vec::new(),
            reason: None,
            margin: None,
            harm: Harm::default(),
        }
    }

    /// A verdict checker `by` could not reach, with the reason.
    pub fn unknown(by: &dyn Checker, reason: impl Into<String>) -> CheckResult {
        let reason = reason.into();
        CheckResult {
            summary: reason.clone(),
            validity: Validity::Unknown,
            reason: Some(reason),
            ..CheckResult::valid(by, String::new())
        }
    }

    /// This result with `harm` counted: what its findings cost the guests.
    pub fn with_harm(self, harm: Harm) -> CheckResult {
        CheckResult { harm, ..self }
    }

    /// `valid` when `anomalies` is empty, else `invalid`; the summary gets the anomaly
    /// count in front of `checked` (what was looked at).
    pub fn from_anomalies(
        by: &dyn Checker,
        checked: String,
        anomalies: Vec<Anomaly>,
    ) -> CheckResult {
        if anomalies.is_empty() {
            return CheckResult::valid(by, checked);
        }
        let n = anomalies.len();
        let noun = if n == 1 { "anomaly" } else { "anomalies" };
        CheckResult {
            validity: Validity::Invalid,
            summary: format!("{} {noun} ({checked})", thousands(n as u64)),
            anomalies,
            ..CheckResult::valid(by, String::new())
        }
    }
}

/// What a run shows, in one phrase: decided once here from the checkers' roles and
/// verdicts, so `overbook check`, `overbook run` and the report say the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Headline {
    /// A data or safeguard checker found anomalies: a double booking, a lost
    /// confirmation, a phantom booking, overlapping rows, a request booked twice or a
    /// stale write accepted. The run is invalid.
    DataWrong,
    /// lock-exclusion found two holders of one lock at once, yet every data checker is
    /// valid (and no safeguard invalid), under a design whose database guards the
    /// invariant (a constraint, or a fence): the lock failed, the database held. The
    /// lesson of the seed story. The run is valid, or invalid only under `--strict-lock`.
    LockFailedDatabaseHeld,
    /// lock-exclusion found two holders under a design whose only guard is the lock: the
    /// design failed, whatever nights the two holders happened to book (a double booking
    /// waiting for two users to ask for one night). The run is invalid.
    LockFailedUnguarded,
    /// lock-exclusion found two holders and the data checkers are valid, but the history
    /// does not say what guards the invariant (no run header): no claim that a database
    /// held. Valid, or invalid under `--strict-lock`.
    LockFailedDataHeld,
    /// lock-exclusion found two holders and made the run invalid (`--strict-lock`), but
    /// whether the data held is unknown (a data checker lacked what it needs).
    LockFailed,
    /// The run is unknown: a data checker lacked what it needs (see the reasons).
    Unknown,
    /// Every checker that decides found the history valid, and the lock (if any) held.
    AllHeld,
}

impl Headline {
    /// The kebab-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Headline::DataWrong => "data-wrong",
            Headline::LockFailedDatabaseHeld => "lock-failed-database-held",
            Headline::LockFailedUnguarded => "lock-failed-unguarded",
            Headline::LockFailedDataHeld => "lock-failed-data-held",
            Headline::LockFailed => "lock-failed",
            Headline::Unknown => "unknown",
            Headline::AllHeld => "all-held",
        }
    }

    /// The headline as a short phrase for people, e.g. "the lock failed, the database held".
    pub fn phrase(self) -> &'static str {
        match self {
            Headline::DataWrong => "the data is wrong",
            Headline::LockFailedDatabaseHeld => "the lock failed, the database held",
            Headline::LockFailedUnguarded => {
                "the lock failed under a design that trusts it: nothing else guards the room-nights"
            }
            Headline::LockFailedDataHeld => {
                "the lock failed; the data shows no anomaly (what guards it is not declared)"
            }
            Headline::LockFailed => "the lock failed; whether the database held is unknown",
            Headline::Unknown => "unknown: the checkers lacked what they needed",
            Headline::AllHeld => "no anomalies",
        }
    }
}

/// One reason the run is (or would be) unknown, with the data checkers that gave it:
/// several usually share one ("no final read"), so it is said once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownReason {
    /// Why, e.g. "no final read (no `ok` read with value.bookings)".
    pub reason: String,
    /// The checkers that said so, in result order.
    pub checkers: Vec<String>,
}

/// The run's verdict and what to say about it, computed from the checkers' results by
/// [`verdict`] and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `invalid` if any deciding checker is invalid; else `unknown` if a data checker
    /// is unknown; else `valid`.
    pub validity: Validity,
    /// What the run shows, in one phrase.
    pub headline: Headline,
    /// The deciding checkers that found anomalies, in result order.
    pub invalid_by: Vec<String>,
    /// Why data checkers were unknown, grouped by reason in order of first appearance.
    pub unknown_reasons: Vec<UnknownReason>,
}

/// Composes the run's verdict and headline from its checkers' results and what guards
/// the invariant (the run header's, `None` when undeclared): the one place where roles
/// turn into a verdict (see [`Role`] and [`Headline`] for the rules).
pub fn verdict(checks: &[CheckResult], guard: Option<Guard>) -> Verdict {
    let invalid_by: Vec<String> = checks
        .iter()
        .filter(|c| c.deciding && c.validity == Validity::Invalid)
        .map(|c| c.checker.clone())
        .collect();
    let mut unknown_reasons: Vec<UnknownReason> = Vec::new();
    for c in checks
        .iter()
        .filter(|c| c.role.unknown_decides() && c.validity == Validity::Unknown)
    {
        let reason = c.reason.as_deref().unwrap_or("unknown");
        match unknown_reasons.iter_mut().find(|u| u.reason == reason) {
            Some(u) => u.checkers.push(c.checker.clone()),
            None => unknown_reasons.push(UnknownReason {
                reason: reason.to_string(),
                checkers: vec![c.checker.clone()],
            }),
        }
    }
    let validity = if !invalid_by.is_empty() {
        Validity::Invalid
    } else if !unknown_reasons.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let data_wrong = checks
        .iter()
        .any(|c| c.role.judges_data() && c.validity == Validity::Invalid);
    let lock_failed = checks
        .iter()
        .any(|c| c.role == Role::Lock && c.validity == Validity::Invalid);
    // "The database held" needs a data checker that looked, and every one valid: an
    // unknown one (no final read) cannot vouch for the data.
    let mut data = checks.iter().filter(|c| c.role == Role::Data).peekable();
    let data_held = data.peek().is_some() && data.all(|c| c.validity == Validity::Valid);
    let headline = if data_wrong {
        Headline::DataWrong
    } else if lock_failed && guard == Some(Guard::Lock) {
        Headline::LockFailedUnguarded
    } else if lock_failed && data_held && guard.is_some_and(Guard::is_in_database) {
        Headline::LockFailedDatabaseHeld
    } else if lock_failed && data_held {
        Headline::LockFailedDataHeld
    } else {
        match validity {
            Validity::Invalid => Headline::LockFailed,
            Validity::Unknown => Headline::Unknown,
            Validity::Valid => Headline::AllHeld,
        }
    };
    Verdict {
        validity,
        headline,
        invalid_by,
        unknown_reasons,
    }
}

/// Everything `check_all` decided: the run's verdict, its headline, each checker's
/// result and the stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ResultsJson")]
pub struct Results {
    /// The run's verdict (see [`verdict`]).
    pub validity: Validity,
    /// What the run shows (see [`Headline`]).
    pub headline: Headline,
    /// The deciding checkers that made the run invalid, in result order.
    pub invalid_by: Vec<String>,
    /// Why data checkers were unknown, grouped by reason.
    pub unknown_reasons: Vec<UnknownReason>,
    /// One result per checker, in a fixed order.
    pub checks: Vec<CheckResult>,
    /// Counts, latencies, rates and fault windows.
    pub stats: crate::stats::Stats,
    /// What guards the invariant, from the run header (`None`: undeclared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
}

/// [`Results`] as JSON may hold it: files written before the headline existed get it
/// (and the reasons) computed from their checks; their stored verdict is kept.
#[derive(Deserialize)]
struct ResultsJson {
    validity: Validity,
    #[serde(default)]
    headline: Option<Headline>,
    #[serde(default)]
    invalid_by: Option<Vec<String>>,
    #[serde(default)]
    unknown_reasons: Option<Vec<UnknownReason>>,
    checks: Vec<CheckResult>,
    stats: crate::stats::Stats,
    #[serde(default)]
    guard: Option<Guard>,
}

impl From<ResultsJson> for Results {
    fn from(j: ResultsJson) -> Results {
        let v = verdict(&j.checks, j.guard);
        Results {
            validity: j.validity,
            headline: j.headline.unwrap_or(v.headline),
            invalid_by: j.invalid_by.unwrap_or(v.invalid_by),
            unknown_reasons: j.unknown_reasons.unwrap_or(v.unknown_reasons),
            checks: j.checks,
            stats: j.stats,
            guard: j.guard,
        }
    }
}

impl Results {
    /// The results of `checks` with the verdict composed by [`verdict`] under `guard`.
    pub fn new(
        checks: Vec<CheckResult>,
        stats: crate::stats::Stats,
        guard: Option<Guard>,
    ) -> Results {
        let v = verdict(&checks, guard);
        Results {
            validity: v.validity,
            headline: v.headline,
            invalid_by: v.invalid_by,
            unknown_reasons: v.unknown_reasons,
            checks,
            stats,
            guard,
        }
    }

    /// Every anomaly of every checker, in checker order.
    pub fn anomalies(&self) -> impl Iterator<Item = &Anomaly> + '_ {
        self.checks.iter().flat_map(|c| c.anomalies.iter())
    }

    /// The result of the checker named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.checker == name)
    }

    /// The role of the checker named `name` (an anomaly's `checker`), if it ran.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.check(name).map(|c| c.role)
    }
}

/// `1204` as `"1,204"`: summaries are read by people.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(checker: &str, role: Role, validity: Validity, strict: bool) -> CheckResult {
        CheckResult {
            checker: checker.into(),
            validity,
            role,
            deciding: role.decides(strict),
            summary: String::new(),
            anomalies: Vec::new(),
            reason: (validity == Validity::Unknown).then(|| format!("{checker} lacked it")),
            margin: None,
            harm: Harm::default(),
        }
    }

    /// One run: five data checkers sharing a verdict, fencing, lock-exclusion, and two
    /// informational ones (whose verdicts must never matter).
    fn run(data: Validity, fencing: Validity, lock: Validity, strict: bool) -> Vec<CheckResult> {
        let mut v: Vec<CheckResult> = ["no-double-booking", "db-state"]
            .into_iter()
            .map(|c| result(c, Role::Data, data, strict))
            .collect();
        v.push(result("fencing", Role::Safeguard, fencing, strict));
        v.push(result("lock-exclusion", Role::Lock, lock, strict));
        v.push(result(
            "lease-margin",
            Role::Informational,
            Validity::Unknown,
            strict,
        ));
        v.push(result(
            "stats",
            Role::Informational,
            Validity::Invalid,
            strict,
        ));
        v
    }

    #[test]
    fn the_verdict_and_headline_table() {
        use Headline::*;
        use Validity::{Invalid as I, Unknown as U, Valid as V};
        // (data, fencing, lock, strict) -> (verdict, headline)
        let table = [
            ((V, V, V, false), (V, AllHeld)),
            ((V, U, U, false), (V, AllHeld)),
            ((V, U, I, false), (V, LockFailedDatabaseHeld)),
            ((V, V, I, true), (I, LockFailedDatabaseHeld)),
            ((V, I, V, false), (I, DataWrong)),
            ((V, I, I, false), (I, DataWrong)),
            ((I, U, V, false), (I, DataWrong)),
            ((I, U, I, true), (I, DataWrong)),
            ((U, U, V, false), (U, Unknown)),
            ((U, U, I, false), (U, Unknown)),
            ((U, U, I, true), (I, LockFailed)),
            ((U, I, V, false), (I, DataWrong)),
        ];
        for ((data, fencing, lock, strict), (validity, headline)) in table {
            let v = verdict(&run(data, fencing, lock, strict), Some(Guard::Database));
            assert_eq!(
                (v.validity, v.headline),
                (validity, headline),
                "data {data:?}, fencing {fencing:?}, lock {lock:?}, strict {strict}"
            );
        }
    }

    #[test]
    fn the_reasons_name_only_what_made_it_so() {
        let v = verdict(
            &run(
                Validity::Invalid,
                Validity::Invalid,
                Validity::Invalid,
                false,
            ),
            None,
        );
        assert_eq!(v.invalid_by, ["no-double-booking", "db-state", "fencing"]);

        let mut checks = run(
            Validity::Unknown,
            Validity::Unknown,
            Validity::Unknown,
            false,
        );
        checks[1].reason = checks[0].reason.clone();
        let v = verdict(&checks, None);
        assert_eq!(
            v.unknown_reasons,
            [UnknownReason {
                reason: "no-double-booking lacked it".into(),
                checkers: vec!["no-double-booking".into(), "db-state".into()],
            }]
        );
        assert!(v.invalid_by.is_empty());
    }

    #[test]
    fn the_database_held_needs_a_data_checker_that_looked() {
        let only_lock = [result(
            "lock-exclusion",
            Role::Lock,
            Validity::Invalid,
            false,
        )];
        let g = Some(Guard::Database);
        assert_eq!(verdict(&only_lock, g).headline, Headline::AllHeld);
    }

    /// Issue 22: lock-only under clock-jump ran VALID with "the lock failed, the database
    /// held" when its two holders happened to book different nights. The database held
    /// nothing there: only the lock guards lock-only.
    #[test]
    fn the_headline_follows_what_guards_the_invariant() {
        use Headline::*;
        let checks = run(Validity::Valid, Validity::Unknown, Validity::Invalid, false);
        let headline = |g| verdict(&checks, g).headline;
        assert_eq!(headline(Some(Guard::Database)), LockFailedDatabaseHeld);
        assert_eq!(headline(Some(Guard::Fencing)), LockFailedDatabaseHeld);
        assert_eq!(headline(Some(Guard::Lock)), LockFailedUnguarded);
        assert_eq!(headline(Some(Guard::Nothing)), LockFailedDataHeld);
        assert_eq!(headline(None), LockFailedDataHeld);
        // The data wrong says so first, whatever the guard.
        let wrong = run(
            Validity::Invalid,
            Validity::Unknown,
            Validity::Invalid,
            false,
        );
        assert_eq!(verdict(&wrong, Some(Guard::Lock)).headline, DataWrong);
    }

    #[test]
    fn results_json_without_roles_or_headline_still_reads() {
        // A results.json as overbook wrote it before roles and headlines.
        let old = r#"{"validity":"valid","checks":[
            {"checker":"no-double-booking","validity":"valid","deciding":true,"summary":"2 ok bookings checked","anomalies":[]},
            {"checker":"fencing","validity":"unknown","deciding":true,"summary":"no fencing tokens","reason":"no fencing tokens"},
            {"checker":"lock-exclusion","validity":"invalid","deciding":false,"summary":"1 anomaly","anomalies":[{"checker":"lock-exclusion","ops":[1,2],"message":"m"}]},
            {"checker":"someone-elses","validity":"valid","deciding":true,"summary":""},
            {"checker":"stats","validity":"valid","deciding":false,"summary":"10 ops"}],
            "stats":{"ops":10,"duration_ns":5,"counts":{},"book_latency":{},"rate":{"bucket_ms":1000,"buckets":[]},"faults":[]}}"#;
        let r: Results = serde_json::from_str(old).unwrap();
        let roles: Vec<Role> = r.checks.iter().map(|c| c.role).collect();
        assert_eq!(
            roles,
            [
                Role::Data,
                Role::Safeguard,
                Role::Lock,
                Role::Data,
                Role::Informational
            ]
        );
        assert_eq!(r.validity, Validity::Valid);
        // Written before the guard was declared: no claim that a database held.
        assert_eq!(r.headline, Headline::LockFailedDataHeld);
        // And what we write now reads back the same.
        let again: Results = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["headline"], "lock-failed-data-held");
        assert_eq!(json["checks"][2]["role"], "lock");
        assert_eq!(json["checks"][2]["deciding"], false);
    }
}
