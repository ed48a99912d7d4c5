//! Plain-words explanations of an anomaly, built from the traces of the ops it names:
//! "B acquired the lock at 5.540 s, 20 ms after A's lease expired while A's write was
//! still running; both committed; both confirmed."

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

/// When the op's own write was over: its commit, else the op's end.
fn write_end(sp: &Span<'_>) -> u64 {
    sp.trace().and_then(|t| t.db_commit).unwrap_or(sp.end)
}

/// How taking the lock at `acq` relates to the previous holder `p` (named `pn`): after it
/// released, after its lease expired (while its write still ran, the seed race), or while
/// it still held the lock.
fn relation(p: &Span<'_>, pn: &str, acq: u64) -> String {
    let Some(t) = p.trace() else {
        return String::new();
    };
    let released = t.lock_released;
    let expiry = t.lease_expiry();
    if let Some(r) = released.filter(|&r| r <= acq) {
        return format!(", {} after {pn} released it", dur(acq - r));
    }
    if let Some(e) = expiry.filter(|&e| e <= acq) {
        let mut s = format!(", {} after {pn}'s lease expired", dur(acq - e));
        if write_end(p) > acq {
            s.push_str(&format!(" while {pn}'s write was still running"));
        }
        return s;
    }
    match [released, expiry].into_iter().flatten().min() {
        Some(until) => format!(
            ", while {pn} still held it ({pn} let go {} later)",
            dur(until - acq)
        ),
        None => format!(", while {pn} still held it"),
    }
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
                let e = t.lease_expiry();
                let ttl = t
                    .lock_ttl_ms
                    .map(|ms| format!("{ms} ms "))
                    .unwrap_or_default();
                match (e, t.db_commit) {
                    (Some(e), Some(c)) if c > e => sentence.push_str(&format!(
                        "; its {ttl}lease expired at {}, {} before it committed at {}",
                        secs(e),
                        dur(c - e),
                        secs(c)
                    )),
                    (Some(_), Some(c)) => sentence.push_str(&format!(
                        "; it committed at {} within its {ttl}lease",
                        secs(c)
                    )),
                    (None, Some(c)) => sentence.push_str(&format!("; it committed at {}", secs(c))),
                    // No commit: the expiry only matters if the client still held the lock then.
                    (Some(e), None) if t.lock_released.is_none_or(|r| r > e) => {
                        sentence.push_str(&format!("; its {ttl}lease expired at {}", secs(e)))
                    }
                    _ => {}
                }
                match (t.lock_released, e) {
                    (Some(r), Some(e)) if r > e => sentence.push_str(&format!(
                        "; it believed it held the lock until {} ({} past expiry)",
                        secs(r),
                        dur(r - e)
                    )),
                    (Some(r), _) => {
                        sentence.push_str(&format!("; it released the lock at {}", secs(r)))
                    }
                    (None, _) => {}
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
