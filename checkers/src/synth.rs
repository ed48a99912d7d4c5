//! Synthetic histories from a serial model of a hotel, with known answers.
//!
//! Concurrent-looking clients invoke `book` and `cancel`; each op takes effect on the
//! model atomically at its completion (its linearization point), so every history made
//! here is correct by construction and every checker must call it valid. The `inject_*`
//! functions then plant exactly one known anomaly. Used by the property tests and by
//! `overbook bench check` (which needs a million realistic ops without a database).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::bound::Bound;
use crate::date::Date;
use crate::history::{BookingRow, Op, OpType, OpValue, Process, Trace, F};
use crate::room::Room;

/// Shape of a synthetic history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// Seed of the generator's choices.
    pub seed: u64,
    /// About how many events to generate (the final read comes on top).
    pub events: usize,
    /// Concurrent client slots.
    pub processes: usize,
    /// Number of rooms.
    pub rooms: u64,
    /// Check-in dates fall in this many days from 2026-11-15 (crosses month and year ends).
    pub days: i32,
    /// Longest stay, nights.
    pub max_nights: i32,
    /// Percent of new ops that are cancels.
    pub cancel_pct: u32,
    /// Percent of completions that are `info` (effect applied or not, by coin).
    pub info_pct: u32,
    /// Record lock and fencing traces on completions.
    pub traces: bool,
    /// Log a `db-latency` fault window every few thousand events.
    pub nemesis: bool,
}

impl Default for SynthConfig {
    fn default() -> SynthConfig {
        SynthConfig {
            seed: 1,
            events: 2_000,
            processes: 8,
            rooms: 20,
            days: 60,
            max_nights: 5,
            cancel_pct: 15,
            info_pct: 3,
            traces: true,
            nemesis: true,
        }
    }
}

/// SplitMix64: tiny, seedable, good enough to pick ops; keeps this crate free of `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn pct(&mut self, p: u32) -> bool {
        self.below(100) < u64::from(p)
    }
}

enum Pending {
    Book {
        room: u64,
        from: Date,
        to: Date,
        request: String,
    },
    Cancel {
        booking: Option<u64>,
        request: Option<String>,
    },
}

struct Slot {
    process: u64,
    pending: Option<Pending>,
}

#[derive(Default)]
struct Hotel {
    // room -> from -> (to, booking id, request); the model keeps stays of a room disjoint.
    rooms: HashMap<u64, BTreeMap<Date, (Date, u64, String)>>,
    by_request: HashMap<String, (u64, Date)>,
    by_id: BTreeMap<u64, (u64, Date, String)>,
    next_id: u64,
}

impl Hotel {
    fn is_free(&self, room: u64, from: Date, to: Date) -> bool {
        let Some(r) = self.rooms.get(&room) else {
            return true;
        };
        match r.range(..to).next_back() {
            Some((_, (end, _, _))) => *end <= from,
            None => true,
        }
    }
    fn insert(&mut self, room: u64, from: Date, to: Date, request: &str) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.rooms
            .entry(room)
            .or_default()
            .insert(from, (to, id, request.to_string()));
        self.by_request.insert(request.to_string(), (room, from));
        self.by_id.insert(id, (room, from, request.to_string()));
        id
    }
    fn remove(&mut self, room: u64, from: Date) -> bool {
        let Some((_, id, req)) = self.rooms.get_mut(&room).and_then(|r| r.remove(&from)) else {
            return false;
        };
        self.by_request.remove(&req);
        self.by_id.remove(&id);
        true
    }
    fn rows(&self) -> Vec<BookingRow> {
        let mut rows: Vec<BookingRow> = self
            .rooms
            .iter()
            .flat_map(|(room, r)| {
                r.iter().map(|(from, (to, id, req))| BookingRow {
                    room: Room::Number(*room),
                    from: Bound::Night(*from),
                    to: Bound::Night(*to),
                    request: req.clone(),
                    booking: Some(*id),
                })
            })
            .collect();
        rows.sort();
        rows
    }
}

/// Generates a history that is correct by construction (see the module doc): some ops
/// end `info` and retire their process, some are retried with the same request key,
/// some are still in flight at the end, and a final read closes it.
pub fn serial_hotel(cfg: &SynthConfig) -> Vec<Op> {
    let mut rng = Rng(cfg.seed);
    let base = Date::from_ymd(2026, 11, 15).unwrap_or(Date(20_772));
    let mut hotel = Hotel::default();
    let mut ops: Vec<Op> = Vec::with_capacity(cfg.events + 8);
    let mut time = 0u64;
    let mut token = 0u64;
    let mut next_process = 0u64;
    let mut next_request = 0u64;
    let mut retry: Vec<(String, u64, Date, Date)> = Vec::new();
    let mut slots: Vec<Slot> = (0..cfg.processes.max(1))
        .map(|_| {
            next_process += 1;
            Slot {
                process: next_process - 1,
                pending: None,
            }
        })
        .collect();
    let mut fault_on = false;
    let push = |ops: &mut Vec<Op>, time: u64, process, kind, f, value, error: Option<&str>| {
        ops.push(Op {
            index: ops.len() as u64,
            time,
            process,
            kind,
            f,
            value,
            error: error.map(str::to_string),
        });
    };
    while ops.len() < cfg.events {
        time += 1_000 + rng.below(2_000_000);
        if cfg.nemesis && rng.below(2_000) == 0 {
            let f = if fault_on {
                "stop-db-latency"
            } else {
                "start-db-latency"
            };
            fault_on = !fault_on;
            push(
                &mut ops,
                time,
                Process::Nemesis,
                OpType::Invoke,
                F::from(f),
                OpValue::default(),
                None,
            );
            time += 1_000;
            push(
                &mut ops,
                time,
                Process::Nemesis,
                OpType::Info,
                F::from(f),
                OpValue::default(),
                None,
            );
            continue;
        }
        let k = rng.below(slots.len() as u64) as usize;
        let slot = &mut slots[k];
        let process = Process::Client(slot.process);
        match slot.pending.take() {
            None => {
                let pending = if rng.pct(cfg.cancel_pct) && !hotel.by_id.is_empty() {
                    // Target a booking the client could know of: one confirmed earlier.
                    let nth = rng.below(hotel.by_id.len() as u64) as usize;
                    // Walking a BTreeMap is linear: stay among the first few dozen.
                    let target = hotel.by_id.iter().nth(nth.min(64));
                    match target {
                        Some((&id, _)) if rng.pct(50) => Pending::Cancel {
                            booking: Some(id),
                            request: None,
                        },
                        Some((_, (_, _, req))) => Pending::Cancel {
                            booking: None,
                            request: Some(req.clone()),
                        },
                        None => Pending::Cancel {
                            booking: None,
                            request: None,
                        },
                    }
                } else if !retry.is_empty() && rng.pct(30) {
                    let (request, room, from, to) =
                        retry.swap_remove(rng.below(retry.len() as u64) as usize);
                    Pending::Book {
                        room,
                        from,
                        to,
                        request,
                    }
                } else {
                    next_request += 1;
                    let from = base.add_days(rng.below(cfg.days.max(1) as u64) as i32);
                    let to = from.add_days(1 + rng.below(cfg.max_nights.max(1) as u64) as i32);
                    Pending::Book {
                        room: 100 + rng.below(cfg.rooms.max(1)),
                        from,
                        to,
                        request: format!("r-{next_request}"),
                    }
                };
                let (f, value) = match &pending {
                    Pending::Book {
                        room,
                        from,
                        to,
                        request,
                    } => (
                        F::Book,
                        OpValue {
                            room: Some(Room::Number(*room)),
                            from: Some(Bound::Night(*from)),
                            to: Some(Bound::Night(*to)),
                            request: Some(request.clone()),
                            ..OpValue::default()
                        },
                    ),
                    Pending::Cancel { booking, request } => (
                        F::Cancel,
                        OpValue {
                            booking: *booking,
                            request: request.clone(),
                            ..OpValue::default()
                        },
                    ),
                };
                push(&mut ops, time, process, OpType::Invoke, f, value, None);
                slot.pending = Some(pending);
            }
            Some(pending) => {
                let info = rng.pct(cfg.info_pct);
                // An info op may or may not have taken effect; the model decides by coin.
                let apply = !info || rng.pct(50);
                match pending {
                    Pending::Book {
                        room,
                        from,
                        to,
                        request,
                    } => {
                        let existing = hotel.by_request.get(&request).copied();
                        let booked = if let Some((r, f)) = existing {
                            // Idempotent retry: the request already holds its booking.
                            hotel
                                .rooms
                                .get(&r)
                                .and_then(|m| m.get(&f))
                                .map(|(_, id, _)| *id)
                        } else if hotel.is_free(room, from, to) {
                            apply.then(|| hotel.insert(room, from, to, &request))
                        } else {
                            None
                        };
                        let kind = if info {
                            OpType::Info
                        } else if booked.is_some() {
                            OpType::Ok
                        } else {
                            OpType::Fail
                        };
                        let trace = (cfg.traces && kind != OpType::Info).then(|| {
                            token += 1;
                            Trace {
                                lock_key: Some(format!("room:{room}")),
                                lock_acquired: Some(time - 600),
                                lock_ttl_ms: Some(500),
                                lock_released: Some(time - 1),
                                token: Some(token),
                                db_begin: Some(time - 500),
                                db_commit: Some(time - 100),
                                confirmed: Some(time),
                                ..Trace::default()
                            }
                        });
                        let value = OpValue {
                            room: Some(Room::Number(room)),
                            from: Some(Bound::Night(from)),
                            to: Some(Bound::Night(to)),
                            request: Some(request.clone()),
                            booking: booked.filter(|_| kind == OpType::Ok),
                            trace,
                            ..OpValue::default()
                        };
                        let error = match kind {
                            OpType::Fail => Some("23P01 exclusion_violation"),
                            OpType::Info => Some("timeout"),
                            _ => None,
                        };
                        push(&mut ops, time, process, kind, F::Book, value, error);
                        if info {
                            retry.push((request, room, from, to));
                        }
                    }
                    Pending::Cancel { booking, request } => {
                        let target = booking
                            .and_then(|id| hotel.by_id.get(&id).map(|(r, f, _)| (*r, *f)))
                            .or_else(|| {
                                request
                                    .as_ref()
                                    .and_then(|r| hotel.by_request.get(r).copied())
                            });
                        let done = match target {
                            Some((room, from)) if apply => hotel.remove(room, from),
                            Some(_) => false,
                            None => false,
                        };
                        let kind = if info {
                            OpType::Info
                        } else if done {
                            OpType::Ok
                        } else {
                            OpType::Fail
                        };
                        let value = OpValue {
                            booking,
                            request,
                            ..OpValue::default()
                        };
                        push(&mut ops, time, process, kind, F::Cancel, value, None);
                    }
                }
                if info {
                    slot.process = next_process;
                    next_process += 1;
                }
            }
        }
    }
    if fault_on {
        time += 1_000;
        push(
            &mut ops,
            time,
            Process::Nemesis,
            OpType::Invoke,
            F::from("stop-db-latency"),
            OpValue::default(),
            None,
        );
        push(
            &mut ops,
            time,
            Process::Nemesis,
            OpType::Info,
            F::from("stop-db-latency"),
            OpValue::default(),
            None,
        );
    }
    time += 1_000_000;
    let reader = Process::Client(next_process);
    push(
        &mut ops,
        time,
        reader,
        OpType::Invoke,
        F::Read,
        OpValue::default(),
        None,
    );
    let value = OpValue {
        bookings: Some(hotel.rows()),
        ..OpValue::default()
    };
    push(
        &mut ops,
        time + 1_000,
        reader,
        OpType::Ok,
        F::Read,
        value,
        None,
    );
    ops
}

/// Where the final read's invocation and completion are (the last `ok` read).
fn final_read_at(ops: &[Op]) -> Option<(usize, usize)> {
    let done = ops
        .iter()
        .rposition(|o| o.f == F::Read && o.kind == OpType::Ok && o.value.bookings.is_some())?;
    let inv = ops[..done]
        .iter()
        .rposition(|o| o.process == ops[done].process && o.is_invoke())?;
    Some((inv, done))
}

/// `ok` book completions whose booking is in the final read, was never the target of a
/// cancel, and whose request no other book used: safe anchors for injected anomalies.
fn untouched_oks(ops: &[Op], fr_invoke: usize) -> Vec<usize> {
    let mut cancelled_ids = HashSet::new();
    let mut cancelled_reqs = HashSet::new();
    let mut uses: HashMap<&str, u32> = HashMap::new();
    for o in ops {
        if o.f == F::Cancel {
            cancelled_ids.extend(o.value.booking);
            cancelled_reqs.extend(o.value.request.as_deref());
        }
        if o.f == F::Book && o.is_invoke() {
            if let Some(r) = o.value.request.as_deref() {
                *uses.entry(r).or_default() += 1;
            }
        }
    }
    ops[..fr_invoke]
        .iter()
        .enumerate()
        .filter(|(_, o)| o.f == F::Book && o.kind == OpType::Ok)
        .filter(|(_, o)| o.value.booking.is_some_and(|b| !cancelled_ids.contains(&b)))
        .filter(|(_, o)| {
            o.value
                .request
                .as_deref()
                .is_some_and(|r| !cancelled_reqs.contains(r) && uses.get(r) == Some(&1))
        })
        .map(|(i, _)| i)
        .collect()
}

fn renumber(ops: &mut [Op]) {
    for (i, o) in ops.iter_mut().enumerate() {
        o.index = i as u64;
    }
}

/// Plants a second `ok` booking of the same stay as an untouched confirmed one, by a
/// fresh process just before the final read. Returns the completion indexes of the
/// original and the planted confirmation, or `None` if no booking qualifies.
pub fn inject_double_confirmation(ops: &mut Vec<Op>, pick: usize) -> Option<(u64, u64)> {
    let (fr_inv, _) = final_read_at(ops)?;
    let anchors = untouched_oks(ops, fr_inv);
    let x = *anchors.get(pick % anchors.len().max(1))?;
    let process = Process::Client(
        ops.iter()
            .filter_map(|o| match o.process {
                Process::Client(p) => Some(p),
                Process::Nemesis => None,
            })
            .max()
            .map_or(0, |p| p + 1),
    );
    let time = ops[fr_inv].time;
    let mut value = ops[x].value.clone();
    value.request = Some("injected-double".into());
    value.booking = Some(u64::MAX);
    value.trace = None;
    let invoke = Op {
        index: 0,
        time,
        process,
        kind: OpType::Invoke,
        f: F::Book,
        value: OpValue {
            booking: None,
            ..value.clone()
        },
        error: None,
    };
    let ok = Op {
        kind: OpType::Ok,
        value,
        ..invoke.clone()
    };
    ops.splice(fr_inv..fr_inv, [invoke, ok]);
    renumber(ops);
    Some((x as u64, fr_inv as u64 + 1))
}

/// Drops an untouched confirmed booking from the final read. Returns the index of its
/// `ok` completion.
pub fn inject_lost_confirmation(ops: &mut [Op], pick: usize) -> Option<u64> {
    let (fr_inv, fr) = final_read_at(ops)?;
    let anchors = untouched_oks(ops, fr_inv);
    let x = *anchors.get(pick % anchors.len().max(1))?;
    let req = ops[x].value.request.clone()?;
    let rows = ops[fr].value.bookings.as_mut()?;
    let before = rows.len();
    rows.retain(|r| r.request != req);
    (rows.len() < before).then_some(x as u64)
}

/// Adds to the final read a row for a `fail`ed booking whose request was never used
/// again. Returns the index of that `fail` completion.
pub fn inject_phantom_booking(ops: &mut [Op], pick: usize) -> Option<u64> {
    let (_, fr) = final_read_at(ops)?;
    let mut uses: HashMap<String, u32> = HashMap::new();
    for o in ops.iter().filter(|o| o.f == F::Book && o.is_invoke()) {
        if let Some(r) = &o.value.request {
            *uses.entry(r.clone()).or_default() += 1;
        }
    }
    let fails: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.f == F::Book && o.kind == OpType::Fail)
        .filter(|(_, o)| {
            o.value
                .request
                .as_ref()
                .is_some_and(|r| uses.get(r) == Some(&1))
        })
        .map(|(i, _)| i)
        .collect();
    let x = *fails.get(pick % fails.len().max(1))?;
    let v = &ops[x].value;
    let row = BookingRow {
        room: v.room.clone()?,
        from: v.from?,
        to: v.to?,
        request: v.request.clone()?,
        booking: Some(u64::MAX),
    };
    let rows = ops[fr].value.bookings.as_mut()?;
    rows.push(row);
    Some(x as u64)
}
