//! Checkers of what the guest was told: the notifications a service sent (an e-mail, a
//! push, a webhook), against what the database holds.
//!
//! A service shows what it tells guests by POSTing each message to overbook's
//! notification sink; every arrival is a lone `info` event of the nemesis named
//! [`NOTIFY`] whose `value.detail` is the message as received (`kind`, `booking`,
//! `request`, extra fields kept) and whose `value.request` / `value.booking` are its
//! request key and booking id in the history's terms. A message the sink could not use
//! (not JSON, naming no booking or request, too large) carries an `error` and is only
//! counted.
//!
//! The harm of a double booking is two guests *told* they have the room; these checkers
//! judge the telling itself:
//!
//! - [`ToldIsTrue`]: every `confirmed` names a booking that committed (a *phantom
//!   confirmation* is the e-mail sent before a COMMIT that then failed), and every
//!   `cancelled` a booking that no longer holds the room (a *false cancellation*);
//! - [`ToldOnce`]: at most one `confirmed` per request (a retry must not e-mail twice);
//! - [`ToldEventually`]: every committed booking was confirmed by the end of the history
//!   (an outbox that stalls shows);
//! - [`ToldAfterCommit`]: no `confirmed` arrived before its booking's traced commit.
//!
//! A history without notifications (a service that sends none, a built-in design) gets
//! `unknown` ("no notifications") from each: the first three are [`Role::Safeguard`],
//! whose unknown never decides the run while its invalid does; told-after-commit is
//! informational (see [`ToldAfterCommit`] for why).

use std::collections::{BTreeMap, BTreeSet};

use crate::checks::{secs, Checker};
use crate::harm::Harm;
use crate::history::{Op, OpType, Stay};
use crate::pairing::History;
use crate::result::{thousands, Anomaly, CheckResult, Role};

/// The name of a notification event (`f`) in the history.
pub const NOTIFY: &str = "notify";

const NO_NOTIFICATIONS: &str =
    "no notifications (none reached OVERBOOK_NOTIFY_URL; a built-in design sends none)";
const NO_FINAL_READ: &str = "no final read (no `ok` read with value.bookings)";

/// What a notification says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// "Your booking is confirmed."
    Confirmed,
    /// "Your booking is cancelled."
    Cancelled,
    /// Any other `kind` (kept, not judged).
    Other,
}

/// One usable notification: a `notify` event without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice<'h> {
    /// The event's index in the history.
    pub index: u64,
    /// When the sink received it (the history's clock).
    pub time: u64,
    /// What it says.
    pub kind: NoticeKind,
    /// The request key it names, if any.
    pub request: Option<&'h str>,
    /// The booking id it names, in the history's terms, if any.
    pub booking: Option<u64>,
    /// The message's own id (`detail.id`), if it has one: its idempotency key, so a
    /// redelivery of one message is not a second message.
    pub id: Option<String>,
}

/// The notifications of a history: the usable ones in order, and how many the sink
/// recorded as unusable.
#[derive(Debug, Clone, Default)]
pub struct Notices<'h> {
    /// Every usable notification, in receive order.
    pub list: Vec<Notice<'h>>,
    /// `notify` events carrying an error (bad input), counted only.
    pub rejected: usize,
}

impl<'h> Notices<'h> {
    /// Collects the `notify` events of `h`.
    pub fn of(h: &'h History) -> Notices<'h> {
        let mut n = Notices::default();
        for &i in h.nemesis_ops() {
            let op = &h.ops()[i as usize];
            if op.f.as_str() != NOTIFY || op.is_invoke() {
                continue;
            }
            if op.error.is_some() {
                n.rejected += 1;
                continue;
            }
            match notice(op) {
                Some(x) => n.list.push(x),
                None => n.rejected += 1,
            }
        }
        n
    }

    /// Whether the history holds any notification at all, usable or not.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.rejected == 0
    }

    /// The usable `confirmed` notifications.
    pub fn confirmed(&self) -> impl Iterator<Item = &Notice<'h>> + '_ {
        self.list.iter().filter(|n| n.kind == NoticeKind::Confirmed)
    }

    /// Checker `by`'s verdict from its anomalies; the summary says what was `checked`
    /// and counts the notifications: "3 confirmations checked; 12 notifications".
    fn verdict(&self, by: &dyn Checker, checked: String, anomalies: Vec<Anomaly>) -> CheckResult {
        let mut summary = format!(
            "{checked}; {} notifications",
            thousands(self.list.len() as u64)
        );
        if self.rejected > 0 {
            summary.push_str(&format!(", {} rejected as bad input", self.rejected));
        }
        CheckResult::from_anomalies(by, summary, anomalies)
    }
}

/// A notification's fields: the typed `value.request` / `value.booking` the sink fills
/// in, else the received `detail`'s (a history written by someone else's system).
fn notice(op: &Op) -> Option<Notice<'_>> {
    let detail = op.value.detail.as_ref();
    let kind = match detail.and_then(|d| d.get("kind")).and_then(|k| k.as_str()) {
        Some("confirmed") => NoticeKind::Confirmed,
        Some("cancelled") => NoticeKind::Cancelled,
        _ => NoticeKind::Other,
    };
    let request = op.value.request.as_deref().or_else(|| {
        detail
            .and_then(|d| d.get("request"))
            .and_then(|r| r.as_str())
    });
    let booking = op.value.booking.or_else(|| {
        detail
            .and_then(|d| d.get("booking"))
            .and_then(|b| b.as_u64())
    });
    if request.is_none() && booking.is_none() {
        return None;
    }
    let id = detail.and_then(|d| d.get("id")).and_then(|i| match i {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    Some(Notice {
        index: op.index,
        time: op.time,
        kind,
        request,
        booking,
        id,
    })
}

/// What may have committed: the final read's rows (by request and by booking id) and
/// what a cancel that may have taken effect names (the booking may have been freed).
struct Committed<'h> {
    requests: BTreeSet<&'h str>,
    bookings: BTreeSet<u64>,
}

impl<'h> Committed<'h> {
    /// `None` when the history has no final read.
    fn of(h: &'h History) -> Option<Committed<'h>> {
        let read = h.final_read()?;
        let rows = h.ops()[read].value.bookings.as_deref()?;
        let mut c = Committed {
            requests: rows.iter().map(|r| r.request.as_str()).collect(),
            bookings: rows.iter().filter_map(|r| r.booking).collect(),
        };
        // Every cancel that may have taken effect (`ok`, `info`, in flight): a booking it
        // names may have committed and been freed since, so its confirmation may be true.
        for cancel in h.cancels() {
            if let Some(b) = cancel.booking {
                c.bookings.insert(b);
            }
            if let Some(r) = h.cancel_request(cancel) {
                c.requests.insert(r);
            }
        }
        Some(c)
    }

    fn holds(&self, n: &Notice<'_>) -> bool {
        n.request.is_some_and(|r| self.requests.contains(r))
            || n.booking.is_some_and(|b| self.bookings.contains(&b))
    }
}

/// The book ops (invocation and completion indexes) of one request key.
fn book_ops_of(h: &History, request: Option<&str>, booking: Option<u64>) -> Vec<u64> {
    let mut ops = Vec::new();
    for b in h.books() {
        let by_req = request.is_some() && h.book_request(b) == request;
        let by_id = booking.is_some() && h.book_id(b) == booking;
        if by_req || by_id {
            ops.push(b.invoke as u64);
            ops.extend(b.completion.map(u64::from));
        }
    }
    ops
}

/// An anomaly of checker `by` about `request` (and the stay of its booking, when known).
fn anomaly(
    by: &dyn Checker,
    ops: Vec<u64>,
    stay: Option<&Stay>,
    request: Option<&str>,
    message: String,
) -> Anomaly {
    Anomaly {
        checker: by.name().into(),
        ops,
        room: stay.map(|s| s.room.clone()),
        nights: stay.map(|s| (s.from, s.to)),
        capacity: None,
        lock_key: None,
        request: request.map(str::to_string),
        message,
    }
}

/// Whose notification this is: its request key, else its booking id. Two messages
/// naming one request are about one guest.
fn guest<'h>(n: &Notice<'h>) -> (Option<&'h str>, Option<u64>) {
    match n.request {
        Some(r) => (Some(r), None),
        None => (None, n.booking),
    }
}

/// How a notification names its booking, for messages.
fn naming(n: &Notice<'_>) -> String {
    match (n.request, n.booking) {
        (Some(r), Some(b)) => format!("request {r} (booking {b})"),
        (Some(r), None) => format!("request {r}"),
        (None, Some(b)) => format!("booking {b}"),
        (None, None) => "nothing".to_string(),
    }
}

/// Every `confirmed` notification names a booking that committed: its request (or
/// booking id) is in the final read, or a cancel that may have taken effect (`ok`,
/// `info`, in flight) names it: a cancel whose answer was lost in a crash may have freed
/// it, as no-double-booking also allows. Otherwise the guest
/// holds a *phantom confirmation*: told "confirmed" of a room they do not have (the
/// e-mail sent before a COMMIT that then failed).
pub struct ToldIsTrue;

impl Checker for ToldIsTrue {
    fn name(&self) -> &'static str {
        "told-is-true"
    }

    fn role(&self) -> Role {
        Role::Safeguard
    }

    fn check(&self, h: &History) -> CheckResult {
        let notices = Notices::of(h);
        if notices.is_empty() {
            return CheckResult::unknown(self, NO_NOTIFICATIONS);
        }
        let Some(committed) = Committed::of(h) else {
            return CheckResult::unknown(self, NO_FINAL_READ);
        };
        let mut anomalies = Vec::new();
        let mut checked = 0u64;
        // The guests told of a room they do not have, by what the message names: two
        // phantom e-mails to one guest are one guest misled.
        let mut misled: BTreeSet<(Option<&str>, Option<u64>)> = BTreeSet::new();
        for n in notices.confirmed() {
            checked += 1;
            if committed.holds(n) {
                continue;
            }
            misled.insert(guest(n));
            let mut ops = vec![n.index];
            ops.extend(book_ops_of(h, n.request, n.booking));
            anomalies.push(anomaly(
                self,
                ops,
                None,
                n.request,
                format!(
                    "phantom confirmation: the guest of {} was told \"confirmed\" at {} (op {}), but no such booking committed (not in the final read, no cancel names it)",
                    naming(n),
                    secs(n.time),
                    n.index
                ),
            ));
        }
        let cancelled = false_cancellations(self, h, &notices, &mut anomalies);
        notices
            .verdict(
                self,
                format!(
                    "{} confirmations and {} cancellations checked",
                    thousands(checked),
                    thousands(cancelled.checked)
                ),
                anomalies,
            )
            .with_harm(Harm {
                told_untrue: misled.len() as u64,
                told_cancelled_falsely: cancelled.misled,
                ..Harm::default()
            })
    }
}

/// Judges every `cancelled` notification (their count is returned): one is false when
/// its booking still holds the room in the final read and no cancel of it may still
/// land after that read (one `info` or in flight at the end). The guest was told the
/// room is free while the booking holds it: they will not come, and the room is not
/// sold again (the notice sent before a cancel's COMMIT that then failed).
fn false_cancellations(
    by: &dyn Checker,
    h: &History,
    notices: &Notices<'_>,
    anomalies: &mut Vec<Anomaly>,
) -> Cancellations {
    let mut counted = Cancellations::default();
    let Some(read) = h.final_read() else {
        return counted;
    };
    let mut misled: BTreeSet<(Option<&str>, Option<u64>)> = BTreeSet::new();
    let rows = h.ops()[read].value.bookings.as_deref().unwrap_or_default();
    for n in notices
        .list
        .iter()
        .filter(|n| n.kind == NoticeKind::Cancelled)
    {
        counted.checked += 1;
        let Some(row) = rows.iter().find(|r| {
            n.booking.is_some_and(|b| r.booking == Some(b))
                || n.request.is_some_and(|q| r.request == q)
        }) else {
            continue;
        };
        let names = |c: &&crate::pairing::CancelOp| {
            (n.booking.is_some() && c.booking == n.booking)
                || (n.request.is_some() && h.cancel_request(c) == n.request)
        };
        let cancels: Vec<_> = h.cancels().iter().filter(names).collect();
        if cancels
            .iter()
            .any(|c| h.outcome(c.invoke as usize) == OpType::Info)
        {
            continue;
        }
        misled.insert(guest(n));
        let mut ops = vec![n.index];
        for c in &cancels {
            ops.push(u64::from(c.invoke));
            ops.extend(h.partner(c.invoke as usize).map(|p| p as u64));
        }
        ops.push(read as u64);
        let stay = Stay {
            room: row.room.clone(),
            from: row.from,
            to: row.to,
        };
        anomalies.push(anomaly(
            by,
            ops,
            Some(&stay),
            Some(row.request.as_str()),
            format!(
                "false cancellation: the guest of {} was told \"cancelled\" at {} (op {}), but the booking still holds room {} {}..{} in the final read",
                naming(n),
                secs(n.time),
                n.index,
                row.room,
                row.from,
                row.to
            ),
        ));
    }
    counted.misled = misled.len() as u64;
    counted
}

/// What [`false_cancellations`] counted: `cancelled` notices judged, and the guests
/// told one falsely.
#[derive(Default)]
struct Cancellations {
    checked: u64,
    misled: u64,
}

/// At most one `confirmed` notification per request key (a booking id when the message
/// names no request): a retried request, or an outbox that redelivers, must not tell the
/// guest twice. Arrivals carrying the same message `id` are one message delivered again
/// (an at-least-once outbox resending after a crash, to a mailer that honours the id as
/// an idempotency key); messages without an `id` each count.
pub struct ToldOnce;

impl Checker for ToldOnce {
    fn name(&self) -> &'static str {
        "told-once"
    }

    fn role(&self) -> Role {
        Role::Safeguard
    }

    fn check(&self, h: &History) -> CheckResult {
        let notices = Notices::of(h);
        if notices.is_empty() {
            return CheckResult::unknown(self, NO_NOTIFICATIONS);
        }
        // Keyed by request, else by booking id: two messages are about one booking when
        // they name the same request.
        let mut by_key: BTreeMap<(Option<&str>, Option<u64>), Vec<&Notice<'_>>> = BTreeMap::new();
        for n in notices.confirmed() {
            let key = guest(n);
            let same = by_key.entry(key).or_default();
            if n.id.is_none() || !same.iter().any(|m| m.id == n.id) {
                same.push(n);
            }
        }
        let anomalies: Vec<Anomaly> = by_key
            .values()
            .filter(|ns| ns.len() > 1)
            .map(|ns| {
                anomaly(
                    self,
                    ns.iter().map(|n| n.index).collect(),
                    None,
                    ns[0].request,
                    format!(
                        "the guest of {} was told \"confirmed\" {} times (ops {})",
                        naming(ns[0]),
                        ns.len(),
                        ns.iter()
                            .map(|n| n.index.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
            .collect();
        // One anomaly per guest told more than once.
        let harm = Harm {
            told_twice: anomalies.len() as u64,
            ..Harm::default()
        };
        notices
            .verdict(
                self,
                format!("{} requests confirmed", thousands(by_key.len() as u64)),
                anomalies,
            )
            .with_harm(harm)
    }
}

/// Every `ok` booking present in the final read got a `confirmed` notification (by
/// request, else by booking id) in time. With the run header's `notify_grace_ms`, in
/// time is by the run's final heal (the last `stop-` event of the nemesis, else the
/// final read's invocation) plus that grace, or by the booking's own completion plus
/// the grace when it completed after that heal (the users keep booking after the last
/// window): an outbox that stalls through a fault and catches up only later shows. Without it (a history from elsewhere), notifications
/// received up to the end of the history count.
pub struct ToldEventually;

/// The history's final heal and grace (history clock, ns), when its header gives a
/// grace: a booking's confirmation is in time until the later of that heal and the
/// booking's completion, plus the grace.
fn grace_of(h: &History) -> Option<(u64, u64)> {
    let grace = h.header()?.notify_grace_ms?.saturating_mul(1_000_000);
    let heal = h
        .nemesis_ops()
        .iter()
        .map(|&i| &h.ops()[i as usize])
        .filter(|o| o.f.as_str().starts_with("stop-"))
        .map(|o| o.time)
        .max()
        .or_else(|| {
            let read = h.final_read()?;
            Some(h.invoke_of(read).map_or(h.ops()[read].time, |o| o.time))
        })?;
    Some((heal, grace))
}

impl Checker for ToldEventually {
    fn name(&self) -> &'static str {
        "told-eventually"
    }

    fn role(&self) -> Role {
        Role::Safeguard
    }

    fn check(&self, h: &History) -> CheckResult {
        let notices = Notices::of(h);
        if notices.is_empty() {
            return CheckResult::unknown(self, NO_NOTIFICATIONS);
        }
        let Some(read) = h.final_read() else {
            return CheckResult::unknown(self, NO_FINAL_READ);
        };
        let rows = h.ops()[read].value.bookings.as_deref().unwrap_or_default();
        let held: BTreeSet<&str> = rows.iter().map(|r| r.request.as_str()).collect();
        let grace = grace_of(h);
        // The first confirmation of each request and booking: the one that counts.
        let mut told_requests: BTreeMap<&str, u64> = BTreeMap::new();
        let mut told_bookings: BTreeMap<u64, u64> = BTreeMap::new();
        for n in notices.confirmed() {
            if let Some(r) = n.request {
                told_requests.entry(r).or_insert(n.time);
            }
            if let Some(b) = n.booking {
                told_bookings.entry(b).or_insert(n.time);
            }
        }
        let mut anomalies = Vec::new();
        let mut checked = 0u64;
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for b in h.books() {
            if b.outcome != OpType::Ok {
                continue;
            }
            let Some(req) = h.book_request(b) else {
                continue;
            };
            // One booking per request: a retry confirmed twice is still one guest.
            if !held.contains(req) || !seen.insert(req) {
                continue;
            }
            checked += 1;
            let told_at = [
                told_requests.get(req).copied(),
                h.book_id(b).and_then(|id| told_bookings.get(&id).copied()),
            ]
            .into_iter()
            .flatten()
            .min();
            let deadline = grace
                .map(|(heal, grace)| heal.max(b.done_at.unwrap_or(heal)).saturating_add(grace));
            let late = match (told_at, deadline) {
                (Some(at), Some(by)) if at > by => Some(at),
                (Some(_), _) => continue,
                (None, _) => None,
            };
            let mut ops = vec![b.invoke as u64];
            ops.extend(b.completion.map(u64::from));
            let what = match late {
                Some(at) => format!(
                    "its guest was sent \"confirmed\" only at {}, {} after its grace ended",
                    secs(at),
                    secs(at - deadline.unwrap_or(at))
                ),
                None => "its guest was never sent \"confirmed\"".to_string(),
            };
            anomalies.push(anomaly(
                self,
                ops,
                Some(&b.stay),
                Some(req),
                format!(
                    "request {req} booked room {} {}..{} (in the final read), but {what}",
                    b.stay.room, b.stay.from, b.stay.to
                ),
            ));
        }
        // One anomaly per request held and not confirmed in time: per guest.
        let harm = Harm {
            never_told: anomalies.len() as u64,
            ..Harm::default()
        };
        notices
            .verdict(
                self,
                format!("{} committed bookings checked", thousands(checked)),
                anomalies,
            )
            .with_harm(harm)
    }
}

/// When a book's completion carries `value.trace.db_commit`, no `confirmed` for its
/// request arrived before that commit: a confirmation sent before COMMIT is a promise
/// the database had not yet made (and a phantom whenever the COMMIT then fails).
///
/// Informational, never deciding: `db_commit` is when the service saw its COMMIT
/// acknowledged, not when Postgres committed. Under a slow or faulted link the commit is
/// visible to other connections before its acknowledgement arrives, so a correct outbox
/// worker may deliver between the two (seen under `db-latency` with `kill-service`).
/// Deciding soundly would need the instant COMMIT was sent, which the trace does not
/// carry; the phantom itself is judged by [`ToldIsTrue`].
pub struct ToldAfterCommit;

impl Checker for ToldAfterCommit {
    fn name(&self) -> &'static str {
        "told-after-commit"
    }

    fn role(&self) -> Role {
        Role::Informational
    }

    fn check(&self, h: &History) -> CheckResult {
        let notices = Notices::of(h);
        if notices.is_empty() {
            return CheckResult::unknown(self, NO_NOTIFICATIONS);
        }
        let mut by_request: BTreeMap<&str, Vec<&Notice<'_>>> = BTreeMap::new();
        for n in notices.confirmed() {
            if let Some(r) = n.request {
                by_request.entry(r).or_default().push(n);
            }
        }
        let mut anomalies = Vec::new();
        let mut checked = 0u64;
        for b in h.books() {
            let Some(done) = b.completion else {
                continue;
            };
            let Some(commit) = h.ops()[done as usize]
                .value
                .trace
                .as_ref()
                .and_then(|t| t.db_commit)
            else {
                continue;
            };
            checked += 1;
            let Some(req) = h.book_request(b) else {
                continue;
            };
            for n in by_request.get(req).into_iter().flatten() {
                if n.time >= commit {
                    continue;
                }
                anomalies.push(anomaly(
                    self,
                    vec![n.index, b.invoke as u64, done as u64],
                    Some(&b.stay),
                    Some(req),
                    format!(
                        "the guest of request {req} was told \"confirmed\" at {} (op {}), before its commit at {} (op {})",
                        secs(n.time),
                        n.index,
                        secs(commit),
                        done
                    ),
                ));
            }
        }
        if checked == 0 {
            return CheckResult::unknown(
                self,
                "no traced commit (no book carries trace.db_commit)",
            );
        }
        notices.verdict(
            self,
            format!("{} traced commits checked", thousands(checked)),
            anomalies,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::Validity;

    /// A history from JSON lines without `index`/`time`: indexes in order, times 1 ms apart.
    fn history(lines: &[&str]) -> History {
        let ops = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["index"] = i.into();
                v["time"] = ((i as u64 + 1) * 1_000_000).into();
                serde_json::from_value(v).unwrap()
            })
            .collect();
        History::from_ops(ops).unwrap()
    }

    const BOOK_R1: &str = r#"{"process":1,"type":"invoke","f":"book","value":{"room":1,"from":"2026-12-01","to":"2026-12-03","request":"r-1"}}"#;
    const OK_R1: &str = r#"{"process":1,"type":"ok","f":"book","value":{"booking":7,"trace":{"db_commit":2500000}}}"#;
    const FAIL_R1: &str =
        r#"{"process":1,"type":"fail","f":"book","error":"409 the room is already booked"}"#;
    const TOLD_R1: &str = r#"{"process":"nemesis","type":"info","f":"notify","value":{"request":"r-1","booking":7,"detail":{"kind":"confirmed","booking":7,"request":"r-1"}}}"#;
    const READ: &str = r#"{"process":9,"type":"invoke","f":"read"}"#;
    const READ_R1: &str = r#"{"process":9,"type":"ok","f":"read","value":{"bookings":[{"room":1,"from":"2026-12-01","to":"2026-12-03","request":"r-1"}]}}"#;
    const READ_NONE: &str = r#"{"process":9,"type":"ok","f":"read","value":{"bookings":[]}}"#;

    #[test]
    fn no_notifications_is_unknown_for_every_checker_and_never_decides() {
        let h = history(&[BOOK_R1, OK_R1, READ, READ_R1]);
        for c in [
            &ToldIsTrue as &dyn Checker,
            &ToldOnce,
            &ToldEventually,
            &ToldAfterCommit,
        ] {
            let r = c.check(&h);
            assert_eq!(r.validity, Validity::Unknown, "{}", c.name());
            assert!(r.reason.unwrap().contains("no notifications"));
            assert!(!c.role().unknown_decides());
        }
    }

    #[test]
    fn a_confirmation_after_the_commit_of_a_kept_booking_is_true_once_and_in_time() {
        let h = history(&[BOOK_R1, OK_R1, TOLD_R1, READ, READ_R1]);
        for c in [
            &ToldIsTrue as &dyn Checker,
            &ToldOnce,
            &ToldEventually,
            &ToldAfterCommit,
        ] {
            assert_eq!(c.check(&h).validity, Validity::Valid, "{}", c.name());
        }
    }

    #[test]
    fn a_confirmation_for_a_booking_that_failed_is_a_phantom_naming_the_book_ops() {
        // Told at 2 ms, then the commit failed: the guest holds an e-mail for nothing.
        let h = history(&[BOOK_R1, TOLD_R1, FAIL_R1, READ, READ_NONE]);
        let r = ToldIsTrue.check(&h);
        assert_eq!(r.validity, Validity::Invalid);
        assert_eq!(r.anomalies[0].ops, vec![1, 0, 2]);
        assert!(r.anomalies[0].message.starts_with("phantom confirmation"));
        assert_eq!(r.anomalies[0].request.as_deref(), Some("r-1"));
    }

    #[test]
    fn a_confirmation_of_a_booking_a_lost_cancel_may_have_freed_is_not_a_phantom() {
        // The cancel's answer was lost (a killed replica): it may have deleted booking 7.
        let h = history(&[
            BOOK_R1,
            OK_R1,
            TOLD_R1,
            r#"{"process":2,"type":"invoke","f":"cancel","value":{"booking":7}}"#,
            r#"{"process":2,"type":"info","f":"cancel","error":"connection reset"}"#,
            READ,
            READ_NONE,
        ]);
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Valid);
    }

    #[test]
    fn a_confirmation_of_a_booking_cancelled_later_is_true() {
        let h = history(&[
            BOOK_R1,
            OK_R1,
            TOLD_R1,
            r#"{"process":2,"type":"invoke","f":"cancel","value":{"booking":7}}"#,
            r#"{"process":2,"type":"ok","f":"cancel"}"#,
            READ,
            READ_NONE,
        ]);
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Valid);
        // Cancelled, so not in the final read: nothing is owed a confirmation.
        assert_eq!(ToldEventually.check(&h).validity, Validity::Valid);
    }

    const CANCEL_7: &str = r#"{"process":2,"type":"invoke","f":"cancel","value":{"booking":7}}"#;
    const UNTOLD_R1: &str = r#"{"process":"nemesis","type":"info","f":"notify","value":{"request":"r-1","booking":7,"detail":{"kind":"cancelled","booking":7,"request":"r-1"}}}"#;

    #[test]
    fn a_cancellation_of_a_booking_that_still_holds_the_room_is_false() {
        // Told "cancelled" before a cancel whose COMMIT then failed: the row stays.
        let failed = r#"{"process":2,"type":"fail","f":"cancel","error":"409"}"#;
        let h = history(&[
            BOOK_R1, OK_R1, TOLD_R1, CANCEL_7, UNTOLD_R1, failed, READ, READ_R1,
        ]);
        let r = ToldIsTrue.check(&h);
        assert_eq!(r.validity, Validity::Invalid);
        assert!(r.anomalies[0].message.starts_with("false cancellation"));
        assert_eq!(r.anomalies[0].ops, vec![4, 7]);
        assert_eq!(r.anomalies[0].request.as_deref(), Some("r-1"));
        assert!(
            r.summary.contains("1 cancellations checked"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn a_cancellation_is_true_once_the_row_is_gone_or_while_its_cancel_may_land() {
        let ok = r#"{"process":2,"type":"ok","f":"cancel"}"#;
        let lost = r#"{"process":2,"type":"info","f":"cancel","error":"timeout"}"#;
        let h = history(&[
            BOOK_R1, OK_R1, TOLD_R1, CANCEL_7, ok, UNTOLD_R1, READ, READ_NONE,
        ]);
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Valid);
        // The cancel's outcome is unknown: it may delete the row after the read.
        let h = history(&[
            BOOK_R1, OK_R1, TOLD_R1, CANCEL_7, UNTOLD_R1, lost, READ, READ_R1,
        ]);
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Valid);
    }

    #[test]
    fn two_confirmations_of_one_request_are_told_twice() {
        let h = history(&[BOOK_R1, OK_R1, TOLD_R1, TOLD_R1, READ, READ_R1]);
        let r = ToldOnce.check(&h);
        assert_eq!(r.validity, Validity::Invalid);
        assert_eq!(r.anomalies[0].ops, vec![2, 3]);
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Valid);
    }

    #[test]
    fn a_redelivery_of_one_message_id_is_told_once_but_two_ids_are_twice() {
        let told = |id: &str| {
            format!(
                r#"{{"process":"nemesis","type":"info","f":"notify","value":{{"request":"r-1","detail":{{"kind":"confirmed","request":"r-1","id":"{id}"}}}}}}"#
            )
        };
        let (a, b) = (told("m-1"), told("m-2"));
        let h = history(&[BOOK_R1, OK_R1, &a, &a, READ, READ_R1]);
        assert_eq!(ToldOnce.check(&h).validity, Validity::Valid);
        let h = history(&[BOOK_R1, OK_R1, &a, &b, READ, READ_R1]);
        assert_eq!(ToldOnce.check(&h).validity, Validity::Invalid);
    }

    #[test]
    fn a_kept_booking_never_confirmed_is_not_told_eventually() {
        let told_other = r#"{"process":"nemesis","type":"info","f":"notify","value":{"detail":{"kind":"confirmed","request":"r-2"}}}"#;
        let h = history(&[BOOK_R1, OK_R1, told_other, READ, READ_R1]);
        let r = ToldEventually.check(&h);
        assert_eq!(r.validity, Validity::Invalid);
        assert_eq!(r.anomalies[0].ops, vec![0, 1]);
        // r-2 never booked anything: that one is a phantom.
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Invalid);
    }

    #[test]
    fn with_a_grace_in_the_header_a_confirmation_after_it_is_late() {
        let header = |ms: u64| {
            format!(
                r#"{{"process":"nemesis","type":"info","f":"run","value":{{"detail":{{"notify_grace_ms":{ms}}}}}}}"#
            )
        };
        let stop = r#"{"process":"nemesis","type":"info","f":"stop-kill-service"}"#;
        // The final heal at 4 ms, told at 7 ms: late with a 2 ms grace, in time with 5.
        let (short, long) = (header(2), header(5));
        let h = history(&[&short, BOOK_R1, OK_R1, stop, READ, READ_R1, TOLD_R1]);
        let r = ToldEventually.check(&h);
        assert_eq!(r.validity, Validity::Invalid);
        assert!(
            r.anomalies[0].message.contains("only at 0.007 s"),
            "{}",
            r.anomalies[0].message
        );
        let h = history(&[&long, BOOK_R1, OK_R1, stop, READ, READ_R1, TOLD_R1]);
        assert_eq!(ToldEventually.check(&h).validity, Validity::Valid);
        // Without faults the grace runs from the final read's invocation (5 ms here).
        let h = history(&[&short, BOOK_R1, OK_R1, READ, READ_R1, TOLD_R1]);
        assert_eq!(ToldEventually.check(&h).validity, Validity::Valid);
        // A booking completed after the final heal gets the grace from its completion:
        // heal at 2 ms, booked at 4 ms, told at 6 ms, within 2 ms of the booking.
        let h = history(&[&short, stop, BOOK_R1, OK_R1, TOLD_R1, READ, READ_R1]);
        assert_eq!(ToldEventually.check(&h).validity, Validity::Valid);
    }

    #[test]
    fn a_confirmation_received_after_the_final_read_still_counts() {
        let h = history(&[BOOK_R1, OK_R1, READ, READ_R1, TOLD_R1]);
        assert_eq!(ToldEventually.check(&h).validity, Validity::Valid);
    }

    #[test]
    fn a_confirmation_before_the_traced_commit_is_told_before_commit() {
        // The commit is traced at 5 ms; the confirmation arrived at 2 ms.
        let ok_late = r#"{"process":1,"type":"ok","f":"book","value":{"booking":7,"trace":{"db_commit":5000000}}}"#;
        let h = history(&[BOOK_R1, TOLD_R1, ok_late, READ, READ_R1]);
        let r = ToldAfterCommit.check(&h);
        assert_eq!(r.validity, Validity::Invalid);
        assert_eq!(r.anomalies[0].ops, vec![1, 0, 2]);
        // It did commit in the end: true, just early.
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Valid);
    }

    #[test]
    fn without_traced_commits_told_after_commit_is_unknown() {
        let ok_untraced = r#"{"process":1,"type":"ok","f":"book","value":{"booking":7}}"#;
        let h = history(&[BOOK_R1, ok_untraced, TOLD_R1, READ, READ_R1]);
        assert_eq!(ToldAfterCommit.check(&h).validity, Validity::Unknown);
    }

    #[test]
    fn rejected_notifications_are_counted_not_judged() {
        let bad = r#"{"process":"nemesis","type":"info","f":"notify","value":{"detail":{"body":"not json"}},"error":"not JSON"}"#;
        let nameless = r#"{"process":"nemesis","type":"info","f":"notify","value":{"detail":{"kind":"confirmed"}}}"#;
        let h = history(&[BOOK_R1, OK_R1, bad, nameless, TOLD_R1, READ, READ_R1]);
        let r = ToldIsTrue.check(&h);
        assert_eq!(r.validity, Validity::Valid);
        assert!(r.summary.contains("2 rejected"), "{}", r.summary);
    }

    #[test]
    fn notifications_without_a_final_read_are_unknown_for_what_needs_it() {
        let h = history(&[BOOK_R1, OK_R1, TOLD_R1]);
        assert_eq!(ToldIsTrue.check(&h).validity, Validity::Unknown);
        assert_eq!(ToldEventually.check(&h).validity, Validity::Unknown);
        assert_eq!(ToldOnce.check(&h).validity, Validity::Valid);
    }
}
