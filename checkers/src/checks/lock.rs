//! Checkers of the lock's own promises, from the traces clients recorded: did two clients
//! believe they held one lease at once, and did the database accept a stale token.

use crate::hash::FastMap;

use crate::checks::{secs, Checker};
use crate::harm::Harm;
use crate::history::{OpType, F};
use crate::lease::LeaseHold;
use crate::pairing::History;
use crate::result::{thousands, Anomaly, CheckResult, Role};

/// No two ops held the same lock over overlapping `[lock_acquired, end)`, where `end` is
/// when the client released it, else when its lease expired, else its completion
/// ([`LeaseHold::held_until`]). A
/// finding with the data checkers valid is the lesson of the seed story: the lock failed,
/// the database held. Decides the run with `strict`, and always under a design whose
/// only guard is the lock (`trusted`): there two holders at once is the design failing,
/// a double booking waiting for two users to ask for one night, whatever nights they
/// happened to book.
pub struct LockExclusion {
    /// Whether findings make the run invalid.
    pub strict: bool,
    /// Whether the design trusts the lock alone ([`crate::Guard::Lock`]): findings then
    /// decide the run and say so.
    pub trusted: bool,
}

struct Hold {
    start: u64,
    end: u64,
    expiry: Option<u64>,
    completion: usize,
}

impl Checker for LockExclusion {
    fn name(&self) -> &'static str {
        "lock-exclusion"
    }

    fn role(&self) -> Role {
        Role::Lock
    }

    fn deciding(&self) -> bool {
        self.role().decides(self.strict || self.trusted)
    }

    fn check(&self, h: &History) -> CheckResult {
        let mut holds: FastMap<&str, Vec<Hold>> = FastMap::default();
        for &i in h.traced() {
            let i = i as usize;
            let op = &h.ops()[i];
            let Some(t) = &op.value.trace else { continue };
            let (Some(key), Some(lease)) = (t.lock_key.as_deref(), LeaseHold::of(t, op.time))
            else {
                continue;
            };
            holds.entry(key).or_default().push(Hold {
                start: lease.acquired,
                end: lease.held_until(),
                expiry: lease.expiry,
                completion: i,
            });
        }
        let ignored = ignored_traces(h);
        if holds.is_empty() {
            return CheckResult::unknown(
                self,
                match &ignored {
                    Some(note) => format!("no usable lock traces; {note}"),
                    None => "no lock traces".to_string(),
                },
            );
        }
        let mut n = 0u64;
        let mut anomalies = Vec::new();
        // Grouped by hash for speed; reported in key order for deterministic output.
        let mut holds: Vec<(&str, Vec<Hold>)> = holds.into_iter().collect();
        holds.sort_unstable_by_key(|(k, _)| *k);
        for (key, mut list) in holds {
            n += list.len() as u64;
            list.sort_by_key(|x| (x.start, x.completion));
            let mut holder: Option<&Hold> = None;
            for hold in &list {
                match holder {
                    Some(prev) if hold.start < prev.end => {
                        let expired = prev
                            .expiry
                            .map(|e| format!(" (lease expired at {})", secs(e)))
                            .unwrap_or_default();
                        let (a, b) = (prev.completion, hold.completion);
                        let trusted = if self.trusted {
                            "the lock failed under a design that trusts it: "
                        } else {
                            ""
                        };
                        let mut ops: Vec<u64> = [a, b]
                            .into_iter()
                            .flat_map(|c| [h.partner(c).unwrap_or(c) as u64, c as u64])
                            .collect();
                        ops.sort_unstable();
                        anomalies.push(Anomaly {
                            checker: self.name().into(),
                            ops,
                            room: None,
                            nights: None,
                            capacity: None,
                            lock_key: Some(key.to_string()),
                            request: None,
                            message: format!(
                                "{trusted}lock {key} held by ops {} and {} at once: op {b} acquired at {} while op {a} held it until {}{expired}",
                                a.min(b),
                                a.max(b),
                                secs(hold.start),
                                secs(prev.end)
                            ),
                        });
                        if hold.end > prev.end {
                            holder = Some(hold);
                        }
                    }
                    _ => holder = Some(hold),
                }
            }
        }
        let mut checked = format!("{} lock holds checked", thousands(n));
        if let Some(note) = &ignored {
            checked.push_str("; ");
            checked.push_str(note);
            if anomalies.is_empty() {
                // Those holds may have overlapped: nothing vouches for them.
                return CheckResult::unknown(self, checked);
            }
        }
        CheckResult::from_anomalies(self, checked, anomalies)
    }
}

/// What the lock checks left out: traces whose lease ends past the clock's range
/// ([`History::bad_traces`]), counted and named, e.g. "2 traces ignored (their lease
/// ends past the clock's range: ops 14, 90)".
pub(crate) fn ignored_traces(h: &History) -> Option<String> {
    let bad = h.bad_traces();
    if bad.is_empty() {
        return None;
    }
    let shown: Vec<String> = bad.iter().take(5).map(|i| i.to_string()).collect();
    let more = if bad.len() > 5 { ", ..." } else { "" };
    Some(if bad.len() == 1 {
        format!(
            "1 trace ignored (its lease ends past the clock's range: op {})",
            shown[0]
        )
    } else {
        format!(
            "{} traces ignored (their lease ends past the clock's range: ops {}{more})",
            thousands(bad.len() as u64),
            shown.join(", ")
        )
    })
}

/// Per lock key, in commit order, no `ok` booking was accepted with a fencing token lower
/// than one already accepted: a stale holder's write got through.
pub struct Fencing;

struct Write {
    at: u64,
    token: u64,
    completion: usize,
}

impl Checker for Fencing {
    fn name(&self) -> &'static str {
        "fencing"
    }

    fn role(&self) -> Role {
        Role::Safeguard
    }

    fn check(&self, h: &History) -> CheckResult {
        let mut writes: FastMap<&str, Vec<Write>> = FastMap::default();
        // A token needs no lease arithmetic: traces left out of the lease checks count.
        for &i in h.traced().iter().chain(h.bad_traces()) {
            let i = i as usize;
            let op = &h.ops()[i];
            if op.kind != OpType::Ok || op.f != F::Book {
                continue;
            }
            let Some(t) = &op.value.trace else { continue };
            let (Some(key), Some(token)) = (t.lock_key.as_deref(), t.token) else {
                continue;
            };
            writes.entry(key).or_default().push(Write {
                at: t.db_commit.unwrap_or(op.time),
                token,
                completion: i,
            });
        }
        if writes.is_empty() {
            return CheckResult::unknown(self, "no fencing tokens");
        }
        let mut n = 0u64;
        let mut anomalies = Vec::new();
        let mut writes: Vec<(&str, Vec<Write>)> = writes.into_iter().collect();
        writes.sort_unstable_by_key(|(k, _)| *k);
        for (key, mut list) in writes {
            n += list.len() as u64;
            list.sort_by_key(|w| (w.at, w.completion));
            let mut best: Option<&Write> = None;
            for w in &list {
                match best {
                    Some(b) if w.token < b.token => {
                        let mut ops: Vec<u64> = [b.completion, w.completion]
                            .into_iter()
                            .flat_map(|c| [h.partner(c).unwrap_or(c) as u64, c as u64])
                            .collect();
                        ops.sort_unstable();
                        anomalies.push(Anomaly {
                            checker: self.name().into(),
                            ops,
                            room: None,
                            nights: None,
                            capacity: None,
                            lock_key: Some(key.to_string()),
                            request: None,
                            message: format!(
                                "lock {key}: op {} was accepted with token {} at {} after op {} had been accepted with token {} at {}",
                                w.completion,
                                w.token,
                                secs(w.at),
                                b.completion,
                                b.token,
                                secs(b.at)
                            ),
                        });
                    }
                    Some(b) if w.token <= b.token => {}
                    _ => best = Some(w),
                }
            }
        }
        let harm = Harm {
            stale_writes: anomalies.len() as u64,
            ..Harm::default()
        };
        CheckResult::from_anomalies(
            self,
            format!("{} fenced writes checked", thousands(n)),
            anomalies,
        )
        .with_harm(harm)
    }
}
