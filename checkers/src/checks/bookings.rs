//! Checkers that judge the data: what users were told against what the database holds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use crate::hash::{FastMap as HashMap, FastSet as HashSet};

use crate::checks::Checker;
use crate::harm::Harm;
use crate::history::{BookingRow, OpType, Stay};
use crate::pairing::{BookOp, History};
use crate::result::{thousands, Anomaly, CheckResult, Role};

const NO_FINAL_READ: &str = "no final read (no `ok` read with value.bookings)";

/// Earliest invocation time of an `ok` or `info` cancel (it may have taken effect), by
/// the booking id and by the request key it names.
struct Cancels<'h> {
    by_booking: HashMap<u64, u64>,
    by_request: HashMap<&'h str, u64>,
}

impl<'h> Cancels<'h> {
    fn of(h: &'h History) -> Cancels<'h> {
        let mut c = Cancels {
            by_booking: HashMap::default(),
            by_request: HashMap::default(),
        };
        // Cancels are in invocation order, so the first entry per key is the earliest.
        for cancel in h.cancels() {
            if let Some(b) = cancel.booking {
                c.by_booking.entry(b).or_insert(cancel.time);
            }
            if let Some(r) = h.cancel_request(cancel) {
                c.by_request.entry(r).or_insert(cancel.time);
            }
        }
        c
    }

    /// When the first cancel that may have freed this booking was invoked.
    fn of_book(&self, h: &History, b: &BookOp) -> Option<u64> {
        let by_id = h.book_id(b).and_then(|id| self.by_booking.get(&id));
        let by_req = h.book_request(b).and_then(|r| self.by_request.get(r));
        match (by_id, by_req) {
            (Some(a), Some(b)) => Some(*a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }
}

fn nights(s: &Stay) -> String {
    format!("{}..{}", s.from, s.to)
}

/// No two `ok` bookings of one room share a night, unless one of them was cancelled
/// (`ok` or `info` cancel) before the other was confirmed: the cancel may have freed the
/// nights first. Two confirmations of the same request are one booking shown twice, not
/// a double booking (idempotency judges the rows).
///
/// Sweeps confirmations in time order keeping, per room, the stays still live (confirmed
/// and not yet cancelled) ordered by check-in; a new stay is compared only with live
/// stays that can reach it, so the work is O(n log n) plus the anomalies found.
pub struct NoDoubleBooking;

/// Per room: the longest stay seen (bounds how far back a stay can reach) and the live
/// stays by check-in.
type RoomLive = (i32, BTreeMap<(i32, usize), Live>);

struct Live {
    to: i32,
    book: usize,
}

impl Checker for NoDoubleBooking {
    fn name(&self) -> &'static str {
        "no-double-booking"
    }

    fn role(&self) -> Role {
        Role::Data
    }

    fn check(&self, h: &History) -> CheckResult {
        let cancels = Cancels::of(h);
        let books = h.books();
        // (completion index, book): completion index order is time order.
        let mut oks: Vec<(u32, usize)> = books
            .iter()
            .enumerate()
            .filter(|(_, b)| b.outcome == OpType::Ok)
            .filter_map(|(i, b)| Some((b.completion?, i)))
            .collect();
        oks.sort_unstable();
        let cancel_at: Vec<Option<u64>> = oks
            .iter()
            .map(|&(_, i)| cancels.of_book(h, &books[i]))
            .collect();

        let mut live: HashMap<u64, RoomLive> = HashMap::default();
        let mut expiry: BinaryHeap<Reverse<(u64, u64, i32, usize)>> = BinaryHeap::new();
        let mut anomalies = Vec::new();
        // The most guests seen holding one room-night at once, where more than one did.
        let mut guests: BTreeMap<(u64, i32), u32> = BTreeMap::new();
        for (k, &(done_idx, bi)) in oks.iter().enumerate() {
            let y = &books[bi];
            let done = y.done_at.unwrap_or(y.invoked_at);
            // A booking whose cancel was invoked before this confirmation may already
            // have been freed: it no longer counts against anyone confirmed from now on.
            while let Some(&Reverse((c, room, from, key))) = expiry.peek() {
                if c >= done {
                    break;
                }
                expiry.pop();
                if let Some((_, rooms)) = live.get_mut(&room) {
                    rooms.remove(&(from, key));
                }
            }
            let (max_len, room_live) = live.entry(y.stay.room).or_default();
            let lo = y.stay.from.0.saturating_sub(*max_len);
            let y_req = h.book_request(y);
            let y_cancel = cancel_at[k];
            // The nights y shares with each live stay it conflicts with: how many guests
            // hold each of y's nights at once, for the business headline.
            let mut shared_with: Vec<(i32, i32)> = Vec::new();
            for (_, x) in room_live.range((lo, 0)..(y.stay.to.0, 0)) {
                if x.to <= y.stay.from.0 {
                    continue;
                }
                let xb = &books[x.book];
                let x_done_idx = xb.completion.unwrap_or(xb.invoke);
                let x_done = xb.done_at.unwrap_or(xb.invoked_at);
                if y_cancel.is_some_and(|c| c < x_done) {
                    continue;
                }
                if y_req.is_some() && h.book_request(xb) == y_req {
                    continue;
                }
                let Some((from, to)) = xb.stay.shared_nights(&y.stay) else {
                    continue;
                };
                shared_with.push((from.0, to.0));
                let shared = Stay {
                    room: y.stay.room,
                    from,
                    to,
                };
                let mut involved = vec![
                    xb.invoke as u64,
                    x_done_idx as u64,
                    y.invoke as u64,
                    done_idx as u64,
                ];
                involved.sort_unstable();
                anomalies.push(Anomaly {
                    checker: self.name().into(),
                    ops: involved,
                    room: Some(shared.room),
                    nights: Some((from, to)),
                    lock_key: None,
                    request: None,
                    message: format!(
                        "room {} nights {} confirmed to ops {} and {}",
                        shared.room,
                        nights(&shared),
                        x_done_idx.min(done_idx),
                        x_done_idx.max(done_idx)
                    ),
                });
            }
            for night in y.stay.from.0..y.stay.to.0 {
                let holders = shared_with
                    .iter()
                    .filter(|&&(f, t)| f <= night && night < t)
                    .count() as u32;
                if holders > 0 {
                    let most = guests.entry((y.stay.room, night)).or_default();
                    *most = (*most).max(holders + 1);
                }
            }
            if y_cancel.is_none_or(|c| c >= done) {
                *max_len = (*max_len).max(y.stay.to.0 - y.stay.from.0);
                room_live.insert(
                    (y.stay.from.0, k),
                    Live {
                        to: y.stay.to.0,
                        book: bi,
                    },
                );
                if let Some(c) = y_cancel {
                    expiry.push(Reverse((c, y.stay.room, y.stay.from.0, k)));
                }
            }
        }
        CheckResult::from_anomalies(
            self,
            format!("{} ok bookings checked", thousands(oks.len() as u64)),
            anomalies,
        )
        // Every room holds one guest a night here (capacity 1).
        .with_harm(Harm::oversold_from(&guests, |_| 1))
    }
}

/// The final read, its invocation index, and its rows.
fn final_read(h: &History) -> Option<(usize, usize, &[BookingRow])> {
    let fr = h.final_read()?;
    let rows = h.ops()[fr].value.bookings.as_deref()?;
    Some((fr, h.partner(fr).unwrap_or(fr), rows))
}

/// Every `ok` booking confirmed before the final read began is in it (same request and
/// stay; same stay when the history has no request keys), unless an `ok` or `info`
/// cancel of it exists. Unknown without a final read.
pub struct ConfirmedIsDurable;

impl Checker for ConfirmedIsDurable {
    fn name(&self) -> &'static str {
        "confirmed-is-durable"
    }

    fn role(&self) -> Role {
        Role::Data
    }

    fn check(&self, h: &History) -> CheckResult {
        let Some((fr, fr_invoke, rows)) = final_read(h) else {
            return CheckResult::unknown(self, NO_FINAL_READ);
        };
        let cancels = Cancels::of(h);
        let by_request: HashSet<(&str, Stay)> = rows
            .iter()
            .map(|r| (r.request.as_str(), r.stay()))
            .collect();
        let stays: HashSet<Stay> = rows.iter().map(BookingRow::stay).collect();
        let mut checked = 0u64;
        let mut anomalies = Vec::new();
        for b in h.books() {
            let Some(done) = b.completion else { continue };
            // A booking confirmed while the final read ran may or may not be in it.
            if b.outcome != OpType::Ok || done as usize >= fr_invoke {
                continue;
            }
            if cancels.of_book(h, b).is_some() {
                continue;
            }
            checked += 1;
            let req = h.book_request(b);
            let present = match req {
                Some(r) => by_request.contains(&(r, b.stay)),
                None => stays.contains(&b.stay),
            };
            if present {
                continue;
            }
            let req_note = req.map(|r| format!(" (request {r})")).unwrap_or_default();
            anomalies.push(Anomaly {
                checker: self.name().into(),
                ops: vec![b.invoke as u64, done as u64, fr as u64],
                room: Some(b.stay.room),
                nights: Some((b.stay.from, b.stay.to)),
                lock_key: None,
                request: req.map(str::to_string),
                message: format!(
                    "{} confirmed to op {done}{req_note} is missing from the final read (op {fr})",
                    b.stay
                ),
            });
        }
        // One anomaly per confirmed booking, so per guest answered "booked".
        let harm = Harm {
            confirmed_lost: anomalies.len() as u64,
            ..Harm::default()
        };
        CheckResult::from_anomalies(
            self,
            format!(
                "{} ok bookings checked against {} rows",
                thousands(checked),
                thousands(rows.len() as u64)
            ),
            anomalies,
        )
        .with_harm(harm)
    }
}

/// No `fail`ed booking's request key is in the final read: "not booked" must mean not
/// booked. A later attempt with the same key that ended `ok` or `info` (invoked after
/// the fail) may have made the row, so it excuses it; an earlier `info` attempt does not
/// (the retry answered "not booked" for a booking that exists).
pub struct FailedIsAbsent;

impl Checker for FailedIsAbsent {
    fn name(&self) -> &'static str {
        "failed-is-absent"
    }

    fn role(&self) -> Role {
        Role::Data
    }

    fn check(&self, h: &History) -> CheckResult {
        let Some((fr, _, rows)) = final_read(h) else {
            return CheckResult::unknown(self, NO_FINAL_READ);
        };
        let mut row_of: HashMap<&str, &BookingRow> = HashMap::default();
        for r in rows {
            row_of.entry(r.request.as_str()).or_insert(r);
        }
        let mut last_maybe: HashMap<&str, u32> = HashMap::default();
        for b in h.books() {
            if b.outcome != OpType::Fail {
                if let Some(r) = h.book_request(b) {
                    let e = last_maybe.entry(r).or_insert(b.invoke);
                    *e = (*e).max(b.invoke);
                }
            }
        }
        let mut checked = 0u64;
        let mut anomalies = Vec::new();
        for b in h.books() {
            if b.outcome != OpType::Fail {
                continue;
            }
            checked += 1;
            let (Some(req), Some(done)) = (h.book_request(b), b.completion) else {
                continue;
            };
            let Some(row) = row_of.get(req) else { continue };
            if last_maybe.get(req).is_some_and(|&i| i > done) {
                continue;
            }
            anomalies.push(Anomaly {
                checker: self.name().into(),
                ops: vec![b.invoke as u64, done as u64, fr as u64],
                room: Some(row.room),
                nights: Some((row.from, row.to)),
                lock_key: None,
                request: Some(req.to_string()),
                message: format!(
                    "request {req} was answered `fail` by op {done} but the final read (op {fr}) holds its booking of {}",
                    row.stay()
                ),
            });
        }
        // A request answered `fail` twice is still one guest.
        let guests: HashSet<&str> = anomalies
            .iter()
            .filter_map(|a| a.request.as_deref())
            .collect();
        let harm = Harm {
            failed_but_booked: guests.len() as u64,
            ..Harm::default()
        };
        CheckResult::from_anomalies(
            self,
            format!("{} failed bookings checked", thousands(checked)),
            anomalies,
        )
        .with_harm(harm)
    }
}

/// The final read itself holds no two stays of one room sharing a night. Sorts the rows
/// and sweeps each room, comparing each row with the earlier row reaching furthest.
pub struct DbState;

impl Checker for DbState {
    fn name(&self) -> &'static str {
        "db-state"
    }

    fn role(&self) -> Role {
        Role::Data
    }

    fn check(&self, h: &History) -> CheckResult {
        let Some((fr, _, rows)) = final_read(h) else {
            return CheckResult::unknown(self, NO_FINAL_READ);
        };
        let mut anomalies = Vec::new();
        // A row whose check-out is not after its check-in is no stay: whoever answered
        // the read (a service's GET, its own SQL) is wrong about its data, which is a
        // finding about the system under test, never a reason to stop judging it.
        for row in rows.iter().filter(|r| !r.stay().is_well_formed()) {
            anomalies.push(Anomaly {
                checker: self.name().into(),
                ops: vec![fr as u64],
                room: Some(row.room),
                nights: None,
                lock_key: None,
                request: Some(row.request.clone()),
                message: format!(
                    "the final read (op {fr}) holds a row that is no stay: request {}, room {}, check-out {} is not after check-in {}",
                    row.request, row.room, row.to, row.from
                ),
            });
        }
        let mut sorted: Vec<&BookingRow> =
            rows.iter().filter(|r| r.stay().is_well_formed()).collect();
        sorted.sort_by(|a, b| {
            (a.room, a.from, a.to, &a.request).cmp(&(b.room, b.from, b.to, &b.request))
        });
        // The room-nights held twice or more, for the business headline.
        let mut doubled: BTreeSet<(u64, i32)> = BTreeSet::new();
        let mut reach: Option<&BookingRow> = None;
        for row in sorted {
            match reach {
                Some(prev) if prev.room == row.room && prev.to > row.from => {
                    let s = prev
                        .stay()
                        .shared_nights(&row.stay())
                        .unwrap_or((row.from, row.to));
                    doubled.extend((s.0 .0..s.1 .0).map(|night| (row.room, night)));
                    anomalies.push(Anomaly {
                        checker: self.name().into(),
                        ops: vec![fr as u64],
                        room: Some(row.room),
                        nights: Some(s),
                        lock_key: None,
                        request: None,
                        message: format!(
                            "the final read (op {fr}) holds room {} nights {}..{} twice: requests {} and {}",
                            row.room, s.0, s.1, prev.request, row.request
                        ),
                    });
                    if row.to > prev.to {
                        reach = Some(row);
                    }
                }
                _ => reach = Some(row),
            }
        }
        let harm = Harm {
            rows_overlapping: doubled.len() as u64,
            ..Harm::default()
        };
        CheckResult::from_anomalies(
            self,
            format!("{} rows checked", thousands(rows.len() as u64)),
            anomalies,
        )
        .with_harm(harm)
    }
}

/// One request key yields at most one row in the final read: a retried request must not
/// book twice.
pub struct Idempotency;

impl Checker for Idempotency {
    fn name(&self) -> &'static str {
        "idempotency"
    }

    fn role(&self) -> Role {
        Role::Data
    }

    fn check(&self, h: &History) -> CheckResult {
        let Some((fr, _, rows)) = final_read(h) else {
            return CheckResult::unknown(self, NO_FINAL_READ);
        };
        let mut by_request: BTreeMap<&str, Vec<&BookingRow>> = BTreeMap::new();
        for r in rows {
            by_request.entry(r.request.as_str()).or_default().push(r);
        }
        let dups: BTreeMap<&str, Vec<&BookingRow>> = by_request
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut anomalies = Vec::new();
        if !dups.is_empty() {
            let mut ops_of: HashMap<&str, Vec<u64>> = HashMap::default();
            for b in h.books() {
                if let Some(r) = h.book_request(b).filter(|r| dups.contains_key(r)) {
                    let e = ops_of.entry(r).or_default();
                    e.push(b.invoke as u64);
                    e.extend(b.completion.map(u64::from));
                }
            }
            for (req, rs) in &dups {
                let mut ops = ops_of.remove(req).unwrap_or_default();
                ops.push(fr as u64);
                ops.sort_unstable();
                let list: Vec<String> = rs.iter().map(|r| r.stay().to_string()).collect();
                anomalies.push(Anomaly {
                    checker: self.name().into(),
                    ops,
                    room: Some(rs[0].room),
                    nights: Some((rs[0].from, rs[0].to)),
                    lock_key: None,
                    request: Some(req.to_string()),
                    message: format!(
                        "request {req} has {} bookings in the final read (op {fr}): {}",
                        rs.len(),
                        list.join(", ")
                    ),
                });
            }
        }
        let harm = Harm {
            booked_twice: dups.len() as u64,
            ..Harm::default()
        };
        CheckResult::from_anomalies(
            self,
            format!("{} requests checked", thousands(by_request.len() as u64)),
            anomalies,
        )
        .with_harm(harm)
    }
}
