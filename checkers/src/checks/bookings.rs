//! Checkers that judge the data: what users were told against what the database holds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use crate::hash::{FastMap as HashMap, FastSet as HashSet};

use crate::bound::Bound;
use crate::checks::capacity::{crowds, stretch, units};
use crate::checks::Checker;
use crate::harm::Harm;
use crate::history::{span_word, BookingRow, OpType, Stay};
use crate::pairing::{BookOp, History};
use crate::result::{thousands, Anomaly, CheckResult, Role};
use crate::room::Room;

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

/// No room holds more `ok` bookings on one night (or slot) than its capacity (the run
/// header's, 1 by default: no two `ok` bookings of one room share a night), unless one
/// of them was cancelled (`ok` or `info` cancel) before another was confirmed: the
/// cancel may have freed the nights first. Two confirmations of the same request are
/// one booking shown twice, not a double booking (idempotency judges the rows).
///
/// Sweeps confirmations in time order keeping, per room, the stays still live (confirmed
/// and not yet cancelled) ordered by check-in; a new stay is compared only with live
/// stays that can reach it, so the work is O(n log n) plus the anomalies found.
pub struct NoDoubleBooking;

/// Per room: the longest stay seen (bounds how far back a stay can reach) and the live
/// stays by check-in.
type RoomLive = (i64, BTreeMap<(i64, usize), Live>);

struct Live {
    to: i64,
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

        let mut live: HashMap<&Room, RoomLive> = HashMap::default();
        let mut expiry: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        let mut anomalies = Vec::new();
        // The most guests seen holding one room-night (or slot) at once, where more than
        // its capacity did: the business headline counts them.
        let mut guests: BTreeMap<(Room, i64), u32> = BTreeMap::new();
        let slot = h.header().and_then(|hd| hd.slot_micros());
        for (k, &(done_idx, bi)) in oks.iter().enumerate() {
            let y = &books[bi];
            let done = y.done_at.unwrap_or(y.invoked_at);
            // A booking whose cancel was invoked before this confirmation may already
            // have been freed: it no longer counts against anyone confirmed from now on.
            while let Some(&Reverse((c, kk))) = expiry.peek() {
                if c >= done {
                    break;
                }
                expiry.pop();
                let s = &books[oks[kk].1].stay;
                if let Some((_, rooms)) = live.get_mut(&s.room) {
                    rooms.remove(&(s.from.key(), kk));
                }
            }
            let (max_len, room_live) = live.entry(&y.stay.room).or_default();
            let (y_from, y_to) = (y.stay.from.key(), y.stay.to.key());
            let lo = y_from.saturating_sub(*max_len);
            let y_req = h.book_request(y);
            let y_cancel = cancel_at[k];
            // The live stays this confirmation shares a night with.
            let mut others: Vec<usize> = Vec::new();
            for (_, x) in room_live.range((lo, 0)..(y_to, 0)) {
                if x.to <= y_from {
                    continue;
                }
                let xb = &books[x.book];
                let x_done = xb.done_at.unwrap_or(xb.invoked_at);
                if y_cancel.is_some_and(|c| c < x_done) {
                    continue;
                }
                if y_req.is_some() && h.book_request(xb) == y_req {
                    continue;
                }
                if xb.stay.overlaps(&y.stay) {
                    others.push(x.book);
                }
            }
            let capacity = h.header().map_or(1, |hd| hd.capacity_of(&y.stay.room));
            if capacity == 1 {
                for &x in &others {
                    anomalies.push(self.pair(&books[x], y, done_idx));
                }
            } else if others.len() as u64 >= capacity {
                anomalies.extend(self.over_capacity(books, &others, y, capacity, slot));
            }
            if others.len() as u64 >= capacity {
                count_guests(&mut guests, books, &others, y, capacity, slot);
            }
            if y_cancel.is_none_or(|c| c >= done) {
                *max_len = (*max_len).max(y_to - y_from);
                room_live.insert((y_from, k), Live { to: y_to, book: bi });
                if let Some(c) = y_cancel {
                    expiry.push(Reverse((c, k)));
                }
            }
        }
        CheckResult::from_anomalies(
            self,
            format!("{} ok bookings checked", thousands(oks.len() as u64)),
            anomalies,
        )
        .with_harm(Harm::oversold_from(&guests, |(room, _)| {
            let c = h.header().map_or(1, |hd| hd.capacity_of(room));
            u32::try_from(c).unwrap_or(u32::MAX)
        }))
    }
}

/// Records, for each night (or slot) of `y`'s stay that `y` and the live `others` hold
/// more than `capacity` times, the most guests seen there at once.
fn count_guests(
    guests: &mut BTreeMap<(Room, i64), u32>,
    books: &[BookOp],
    others: &[usize],
    y: &BookOp,
    capacity: u64,
    slot: Option<i64>,
) {
    let clip = |b: &BookOp| (b.stay.from.max(y.stay.from), b.stay.to.min(y.stay.to));
    let mut stays: Vec<(Bound, Bound)> = vec![(y.stay.from, y.stay.to)];
    stays.extend(others.iter().map(|&x| clip(&books[x])));
    for c in crowds(&stays, capacity) {
        let g = u32::try_from(c.members.len()).unwrap_or(u32::MAX);
        for unit in units(c.from, c.to, slot) {
            let most = guests.entry((y.stay.room.clone(), unit)).or_default();
            *most = (*most).max(g);
        }
    }
}

impl NoDoubleBooking {
    /// Capacity 1: `x` and `y` were both confirmed for the nights they share.
    fn pair(&self, x: &BookOp, y: &BookOp, y_done_idx: u32) -> Anomaly {
        let (from, to) = x
            .stay
            .shared_nights(&y.stay)
            .unwrap_or((y.stay.from, y.stay.to));
        let x_done_idx = x.completion.unwrap_or(x.invoke);
        let mut involved = vec![
            x.invoke as u64,
            x_done_idx as u64,
            y.invoke as u64,
            y_done_idx as u64,
        ];
        involved.sort_unstable();
        Anomaly {
            checker: self.name().into(),
            ops: involved,
            room: Some(y.stay.room.clone()),
            nights: Some((from, to)),
            capacity: None,
            lock_key: None,
            request: None,
            message: format!(
                "room {} {} {from}..{to} confirmed to ops {} and {}",
                y.stay.room,
                span_word(from),
                x_done_idx.min(y_done_idx),
                x_done_idx.max(y_done_idx)
            ),
        }
    }

    /// Capacity N: the stretches of `y`'s stay where `y` and the live `others` hold the
    /// room more than N times, each naming every booking there.
    fn over_capacity(
        &self,
        books: &[BookOp],
        others: &[usize],
        y: &BookOp,
        capacity: u64,
        slot: Option<i64>,
    ) -> Vec<Anomaly> {
        // Clipped to y's stay: only the nights y's confirmation added can be over.
        let clip = |b: &BookOp| (b.stay.from.max(y.stay.from), b.stay.to.min(y.stay.to));
        let mut stays: Vec<(Bound, Bound)> = vec![(y.stay.from, y.stay.to)];
        stays.extend(others.iter().map(|&x| clip(&books[x])));
        let all: Vec<&BookOp> = std::iter::once(y)
            .chain(others.iter().map(|&x| &books[x]))
            .collect();
        crowds(&stays, capacity)
            .into_iter()
            .map(|c| {
                let mut members: Vec<&BookOp> = c.members.iter().map(|&m| all[m]).collect();
                members.sort_by_key(|b| b.completion);
                let mut ops: Vec<u64> = members
                    .iter()
                    .flat_map(|b| [Some(b.invoke), b.completion])
                    .flatten()
                    .map(u64::from)
                    .collect();
                ops.sort_unstable();
                let confirmed: Vec<String> = members
                    .iter()
                    .filter_map(|b| b.completion)
                    .map(|c| c.to_string())
                    .collect();
                Anomaly {
                    checker: self.name().into(),
                    ops,
                    room: Some(y.stay.room.clone()),
                    nights: Some((c.from, c.to)),
                    capacity: Some(capacity),
                    lock_key: None,
                    request: None,
                    message: format!(
                        "room {}, {}: {} confirmed, capacity {capacity} (ops {})",
                        y.stay.room,
                        stretch(c.from, c.to, slot),
                        members.len(),
                        join_and(&confirmed)
                    ),
                }
            })
            .collect()
    }
}

/// "1", "1 and 2", "1, 2 and 3".
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
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
        // Rows whose read did not say which request made them (a mapped service without
        // a `request` pointer) can only be matched by their stay.
        let unkeyed: HashSet<Stay> = rows
            .iter()
            .filter(|r| r.request.is_empty())
            .map(BookingRow::stay)
            .collect();
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
                Some(r) => by_request.contains(&(r, b.stay.clone())) || unkeyed.contains(&b.stay),
                None => stays.contains(&b.stay),
            };
            if present {
                continue;
            }
            let req_note = req.map(|r| format!(" (request {r})")).unwrap_or_default();
            anomalies.push(Anomaly {
                checker: self.name().into(),
                ops: vec![b.invoke as u64, done as u64, fr as u64],
                room: Some(b.stay.room.clone()),
                nights: Some((b.stay.from, b.stay.to)),
                capacity: None,
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
        // A row without its request (empty) names no request to judge.
        for r in rows.iter().filter(|r| !r.request.is_empty()) {
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
                room: Some(row.room.clone()),
                nights: Some((row.from, row.to)),
                capacity: None,
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

/// The final read itself holds no more stays of one room on a night (or slot) than the
/// room's capacity (1 by default: no two stays of one room share a night). Sorts the
/// rows and sweeps each room.
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
                room: Some(row.room.clone()),
                nights: None,
                capacity: None,
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
            (&a.room, a.from, a.to, &a.request).cmp(&(&b.room, b.from, b.to, &b.request))
        });
        for room_rows in sorted.chunk_by(|a, b| a.room == b.room) {
            let capacity = h
                .header()
                .map_or(1, |hd| hd.capacity_of(&room_rows[0].room));
            if capacity == 1 {
                self.twice(fr, room_rows, &mut anomalies);
            } else {
                let slot = h.header().and_then(|hd| hd.slot_micros());
                self.over_capacity(fr, room_rows, capacity, slot, &mut anomalies);
            }
        }
        // The room-nights (or slots) held more often than the room holds guests, for
        // the business headline.
        let slot = h.header().and_then(|hd| hd.slot_micros());
        let mut over: BTreeSet<(&Room, i64)> = BTreeSet::new();
        for a in &anomalies {
            if let (Some(room), Some((from, to))) = (&a.room, a.nights) {
                over.extend(units(from, to, slot).into_iter().map(|u| (room, u)));
            }
        }
        let harm = Harm {
            rows_overlapping: over.len() as u64,
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

impl DbState {
    /// Capacity 1: rows of one room (sorted by check-in) sharing a night, each compared
    /// with the earlier row reaching furthest.
    fn twice(&self, fr: usize, rows: &[&BookingRow], anomalies: &mut Vec<Anomaly>) {
        let mut reach: Option<&BookingRow> = None;
        for &row in rows {
            match reach {
                Some(prev) if prev.to > row.from => {
                    let s = prev
                        .stay()
                        .shared_nights(&row.stay())
                        .unwrap_or((row.from, row.to));
                    anomalies.push(Anomaly {
                        checker: self.name().into(),
                        ops: vec![fr as u64],
                        room: Some(row.room.clone()),
                        nights: Some(s),
                        capacity: None,
                        lock_key: None,
                        request: None,
                        message: format!(
                            "the final read (op {fr}) holds room {} {} {}..{} twice: requests {} and {}",
                            row.room, span_word(s.0), s.0, s.1, prev.request, row.request
                        ),
                    });
                    if row.to > prev.to {
                        reach = Some(row);
                    }
                }
                _ => reach = Some(row),
            }
        }
    }

    /// Capacity N: the stretches where more than N rows of one room hold it.
    fn over_capacity(
        &self,
        fr: usize,
        rows: &[&BookingRow],
        capacity: u64,
        slot: Option<i64>,
        anomalies: &mut Vec<Anomaly>,
    ) {
        let stays: Vec<(Bound, Bound)> = rows.iter().map(|r| (r.from, r.to)).collect();
        for c in crowds(&stays, capacity) {
            let mut requests: Vec<String> =
                c.members.iter().map(|&m| rows[m].request.clone()).collect();
            requests.sort();
            anomalies.push(Anomaly {
                checker: self.name().into(),
                ops: vec![fr as u64],
                room: Some(rows[0].room.clone()),
                nights: Some((c.from, c.to)),
                capacity: Some(capacity),
                lock_key: None,
                request: None,
                message: format!(
                    "the final read (op {fr}) holds room {}, {}: {} stays, capacity {capacity} (requests {})",
                    rows[0].room,
                    stretch(c.from, c.to, slot),
                    c.members.len(),
                    join_and(&requests)
                ),
            });
        }
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
        // A row without its request (empty) cannot be a retry's twin of another.
        for r in rows.iter().filter(|r| !r.request.is_empty()) {
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
                    room: Some(rs[0].room.clone()),
                    nights: Some((rs[0].from, rs[0].to)),
                    capacity: None,
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
