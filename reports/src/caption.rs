//! Plain-words explanations of an anomaly, built from the traces of the ops it names:
//! "B acquired the lock at 5.540 s, 20 ms after A's lease expired while A's write was
//! still running; both committed; both confirmed." What the leases did is the checkers'
//! lease-hold model ([`LeaseHold`]); this module only words it.

use checkers::lease::{CommitAgainstLease, Handover, LeaseHold, ReleaseAgainstLease};

use crate::html::{dur, secs};
use crate::spans::{Outcome, Span, Window};

/// Names the n-th op of an anomaly: A, B, C, ... (then A2, B2, ... past Z).
pub(crate) fn letter(i: usize) -> String {
    let c = (b'A' + (i % 26) as u8) as char;
    if i < 26 {
        c.to_string()
    } else {
        format!("{c}{}", i / 26 + 1)
    }
}

/// The instant the op took the lock, if its trace says so.
fn acquired(sp: &Span<'_>) -> Option<u64> {
    sp.trace().and_then(|t| t.lock_acquired)
}

/// The lease the op held, as the checkers model it.
fn lease(sp: &Span<'_>) -> Option<LeaseHold> {
    sp.trace().and_then(|t| LeaseHold::of(t, sp.end))
}

/// How taking the lock at `acq` relates to the previous holder `p` (named `pn`), in
/// words: the checkers' [`Handover`].
fn relation(p: &Span<'_>, pn: &str, acq: u64) -> String {
    let Some(held) = lease(p) else {
        return String::new();
    };
    match held.handover(acq) {
        Handover::AfterRelease { gap } => format!(", {} after {pn} released it", dur(gap)),
        Handover::AfterExpiry { gap, write_running } => {
            let mut s = format!(", {} after {pn}'s lease expired", dur(gap));
            if write_running {
                s.push_str(&format!(" while {pn}'s write was still running"));
            }
            s
        }
        Handover::WhileHeld {
            let_go_in: Some(later),
        } => format!(
            ", while {pn} still held it ({pn} let go {} later)",
            dur(later)
        ),
        Handover::WhileHeld { let_go_in: None } => format!(", while {pn} still held it"),
    }
}

/// What the hold says of its own lease, in words: its commit against the lease, then its
/// release against it.
fn own_lease(held: &LeaseHold, ttl: &str) -> String {
    let mut s = match held.commit_against_lease() {
        Some(CommitAgainstLease::ExpiredBefore { expiry, commit }) => format!(
            "; its {ttl}lease expired at {}, {} before it committed at {}",
            secs(expiry),
            dur(commit - expiry),
            secs(commit)
        ),
        Some(CommitAgainstLease::Within { commit }) => {
            format!("; it committed at {} within its {ttl}lease", secs(commit))
        }
        Some(CommitAgainstLease::Committed { commit }) => {
            format!("; it committed at {}", secs(commit))
        }
        Some(CommitAgainstLease::ExpiredHeld { expiry }) => {
            format!("; its {ttl}lease expired at {}", secs(expiry))
        }
        None => String::new(),
    };
    match held.release_against_lease() {
        Some(ReleaseAgainstLease::PastExpiry { released, past }) => s.push_str(&format!(
            "; it believed it held the lock until {} ({} past expiry)",
            secs(released),
            dur(past)
        )),
        Some(ReleaseAgainstLease::Released { released }) => {
            s.push_str(&format!("; it released the lock at {}", secs(released)))
        }
        None => {}
    }
    s
}

/// The caption for the ops of one anomaly, in the order the anomaly lists them
/// (`names[i]` is what to call `spans[i]`). Plain text: the page escapes it.
pub(crate) fn explain(spans: &[&Span<'_>], names: &[String], windows: &[Window]) -> String {
    if spans.is_empty() {
        return "The ops this anomaly names are not in the history.".to_string();
    }
    let mut out: Vec<String> = Vec::new();
    // Tell the story in the order the ops took the lock (or started, without one).
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (acquired(spans[i]).unwrap_or(spans[i].start), i));
    let any_trace = spans.iter().any(|sp| sp.trace().is_some());
    let mut prev: Option<usize> = None;
    for &i in &order {
        let sp = spans[i];
        let who = &names[i];
        let mut sentence = String::new();
        match sp.trace() {
            Some(t) if t.lock_acquired.is_some() => {
                let acq = t.lock_acquired.unwrap_or(sp.start);
                let key = t.lock_key.as_deref().unwrap_or("the lock");
                sentence.push_str(&format!("{who} acquired {key} at {}", secs(acq)));
                if let Some(p) = prev {
                    sentence.push_str(&relation(spans[p], &names[p], acq));
                }
                let ttl = t
                    .lock_ttl_ms
                    .map(|ms| format!("{ms} ms "))
                    .unwrap_or_default();
                if let Some(held) = lease(sp) {
                    sentence.push_str(&own_lease(&held, &ttl));
                }
            }
            Some(t) => {
                sentence.push_str(&format!(
                    "{who} ({}) was invoked at {}",
                    sp.f(),
                    secs(sp.start)
                ));
                if let Some(c) = t.db_commit {
                    sentence.push_str(&format!(" and committed at {} without a lock", secs(c)));
                }
            }
            None => {
                sentence.push_str(&format!(
                    "{who} ({}) was invoked at {}",
                    sp.f(),
                    secs(sp.start)
                ));
            }
        }
        sentence.push_str(&match sp.outcome {
            Outcome::Ok => match sp.trace().and_then(|t| t.confirmed) {
                Some(c) => format!("; it was confirmed at {}", secs(c)),
                None => format!("; it completed ok at {}", secs(sp.end)),
            },
            Outcome::Fail => format!(
                "; it failed at {}{}",
                secs(sp.end),
                sp.error().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            Outcome::Info => format!(
                "; its outcome is unknown (info at {}{})",
                secs(sp.end),
                sp.error().map(|e| format!(", {e}")).unwrap_or_default()
            ),
            Outcome::Open => "; it was still in flight when the history ended".to_string(),
        });
        let faults: Vec<&str> = windows
            .iter()
            .filter(|w| w.start <= sp.end && sp.start <= w.end)
            .map(|w| w.name.as_str())
            .collect();
        if !faults.is_empty() {
            sentence.push_str(&format!(", during {}", faults.join(", ")));
        }
        sentence.push('.');
        out.push(sentence);
        if acquired(sp).is_some() {
            prev = Some(i);
        }
    }
    let books: Vec<&&Span<'_>> = spans
        .iter()
        .filter(|sp| *sp.f() == checkers::F::Book)
        .collect();
    if books.len() >= 2 {
        let committed = books
            .iter()
            .filter(|sp| sp.trace().and_then(|t| t.db_commit).is_some())
            .count();
        let confirmed = books.iter().filter(|sp| sp.outcome == Outcome::Ok).count();
        let all = |k: usize| match (k, books.len()) {
            (2, 2) => "both".to_string(),
            (k, n) if k == n => format!("all {n}"),
            (0, _) => "none".to_string(),
            (k, n) => format!("{k} of {n}"),
        };
        let mut end = String::new();
        if any_trace {
            end.push_str(&format!("{} committed; ", capital(&all(committed))));
            end.push_str(&format!("{} confirmed.", all(confirmed)));
        } else {
            end.push_str(&format!(
                "{} confirmed (no traces recorded, so no lock or transaction times).",
                capital(&all(confirmed))
            ));
        }
        out.push(end);
    }
    out.join(" ")
}

/// `s` with its first letter in upper case, to open a sentence.
pub(crate) fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
