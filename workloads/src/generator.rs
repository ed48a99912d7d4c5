//! The op generator: a seeded stream of booking requests skewed to a hot set of rooms,
//! with optional cancellations of confirmed bookings and retries of earlier requests.
//!
//! Contention is the point: most requests go to a few rooms, so users race for the same
//! nights, which is where the unsafe designs double-book. A hot room soon fills up, and
//! once it is full no race on it can double-book anything: so most requests aim at nights
//! the generator has not seen confirmed (often the earliest free ones, which concurrent
//! users then race for, like the last room of a sold-out night), and the rest are
//! uniform, to keep exercising "room taken". When a room is full as far as the generator
//! knows, an aimed request becomes the cancellation of one of its bookings: the room
//! churns, and every freed night is raced for again, for as long as the run lasts.

use std::collections::{BTreeMap, VecDeque};

use checkers::Date;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::room_numbers;
use crate::request::{BookRequest, Request};

/// Share of requests that go to the hot rooms (the 80 of "80/20").
pub const HOT_SHARE: f64 = 0.8;

/// Share of new bookings aimed at nights not known to be booked (when there are some).
pub const AIM_AT_FREE: f64 = 0.8;

/// Share of aimed requests that start on the room's earliest free night, where
/// concurrent users converge (the rest start on a random free night).
pub const EARLIEST: f64 = 0.8;

/// How many recently issued requests the generator remembers, to learn the stay of a
/// booking reported confirmed. Confirmations come right after the request, so a bounded
/// memory suffices and a long run does not grow it.
const REMEMBERED: usize = 4096;

/// How the generator picks requests.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// The run's seed: the same seed gives the same requests.
    pub seed: u64,
    /// How many rooms the hotel has (numbered as [`room_numbers`]).
    pub rooms: u64,
    /// Share of the rooms that are hot (the lowest-numbered ones); [`HOT_SHARE`] of the
    /// requests go to them. 0.2 gives "80% of requests to 20% of rooms".
    pub hot_fraction: f64,
    /// First bookable night.
    pub window_start: Date,
    /// Nights in the booking window; every stay lies inside it.
    pub window_days: u32,
    /// Longest stay in nights (stays are 1..=max_nights, capped by the window).
    pub max_nights: u32,
    /// Share of ops that cancel a previously confirmed booking (when there is one).
    pub cancel_ratio: f64,
    /// Share of new bookings aimed at nights not known to be booked ([`AIM_AT_FREE`] by
    /// default); 0 gives plain uniform stays within the hot/cold split, which is what a
    /// throughput comparison with a fixed pgbench script needs.
    pub aim_at_free: f64,
    /// How many stays a room holds a night (a room type sold N times): a night is
    /// "free" to aim at until this many known bookings hold it, so users keep racing
    /// for the last place of a night whatever the capacity.
    pub capacity: u32,
}

impl GeneratorConfig {
    /// Defaults for `rooms` rooms: 20% hot, 60 nights from 2026-12-01, stays of up to 7
    /// nights, no cancellations.
    pub fn new(seed: u64, rooms: u64) -> GeneratorConfig {
        GeneratorConfig {
            seed,
            rooms,
            hot_fraction: 0.2,
            window_start: crate::config::default_window_start(),
            window_days: 60,
            max_nights: 7,
            cancel_ratio: 0.0,
            aim_at_free: AIM_AT_FREE,
            capacity: 1,
        }
    }
}

/// The seeded request stream (see the module docs).
#[derive(Debug)]
pub struct Generator {
    cfg: GeneratorConfig,
    rng: StdRng,
    next_id: u64,
    /// Confirmed bookings that may be cancelled, in the order they were reported, with
    /// their stay when known.
    confirmed: Vec<(u64, String, Option<BookRequest>)>,
    retries: VecDeque<BookRequest>,
    /// Recently issued requests by key, oldest first out.
    issued: BTreeMap<String, BookRequest>,
    issued_order: VecDeque<String>,
    /// Per room, how many confirmed bookings hold each night of the window.
    occupancy: BTreeMap<u64, Vec<u32>>,
    /// Cancellations issued but not yet answered: their nights stay occupied until the
    /// cancel commits, or aimed requests would race the cancel itself and fail.
    cancelling: BTreeMap<u64, (String, Option<BookRequest>)>,
}

impl Generator {
    /// A generator for `cfg`; out-of-range settings are clamped (at least one room, one
    /// night, ratios within 0..=1) rather than rejected.
    pub fn new(mut cfg: GeneratorConfig) -> Generator {
        cfg.rooms = cfg.rooms.max(1);
        cfg.window_days = cfg.window_days.max(1);
        cfg.max_nights = cfg.max_nights.clamp(1, cfg.window_days);
        cfg.hot_fraction = clamp_ratio(cfg.hot_fraction);
        cfg.cancel_ratio = clamp_ratio(cfg.cancel_ratio);
        cfg.capacity = cfg.capacity.max(1);
        Generator {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            next_id: 1,
            confirmed: Vec::new(),
            retries: VecDeque::new(),
            issued: BTreeMap::new(),
            issued_order: VecDeque::new(),
            occupancy: BTreeMap::new(),
            cancelling: BTreeMap::new(),
        }
    }

    /// The next op: a queued retry first, else a cancellation (at `cancel_ratio`, when a
    /// confirmed booking is known), else a new booking request with a fresh key.
    pub fn next_request(&mut self) -> Request {
        if let Some(retry) = self.retries.pop_front() {
            return Request::Book(retry);
        }
        if !self.confirmed.is_empty() && self.rng.random_bool(self.cfg.cancel_ratio) {
            let i = self.rng.random_range(0..self.confirmed.len());
            return self.cancel_at(i);
        }
        let room = self.pick_room();
        let aimed = if self.rng.random_bool(self.cfg.aim_at_free.clamp(0.0, 1.0)) {
            match self.aim_at_free_nights(room) {
                Some(stay) => Some(stay),
                // The room is full as far as we know: a guest cancels, and the next
                // requests race for the freed nights, instead of every request failing
                // "room taken" for the rest of the run.
                None => {
                    let theirs: Vec<usize> = (0..self.confirmed.len())
                        .filter(|&i| matches!(&self.confirmed[i].2, Some(s) if s.room == room))
                        .collect();
                    if !theirs.is_empty() {
                        let i = theirs[self.rng.random_range(0..theirs.len())];
                        return self.cancel_at(i);
                    }
                    None
                }
            }
        } else {
            None
        };
        let req = self.new_booking(room, aimed);
        self.remember(&req);
        Request::Book(req)
    }

    fn cancel_at(&mut self, i: usize) -> Request {
        let (booking, request, stay) = self.confirmed.swap_remove(i);
        self.cancelling.insert(booking, (request.clone(), stay));
        Request::Cancel { booking, request }
    }

    /// Tells the generator how a cancellation ended: `Some(true)` it happened (its nights
    /// are free to aim at), `Some(false)` it definitely did not (the booking can be
    /// cancelled again later), `None` unknown (the nights stay occupied, to be safe).
    pub fn cancelled(&mut self, booking: u64, happened: Option<bool>) {
        let Some((request, stay)) = self.cancelling.remove(&booking) else {
            return;
        };
        match happened {
            Some(true) => {
                if let Some(stay) = &stay {
                    self.occupy(stay, false);
                }
            }
            Some(false) => self.confirmed.push((booking, request, stay)),
            None => {}
        }
    }

    /// Tells the generator a booking was confirmed, so it may be cancelled later and its
    /// nights are no longer aimed at.
    pub fn confirmed(&mut self, booking: u64, request: &str) {
        let stay = self.issued.get(request).cloned();
        if let Some(stay) = &stay {
            self.occupy(stay, true);
        }
        self.confirmed.push((booking, request.to_string(), stay));
    }

    /// Queues `req` (same key) to be issued again next, as a user retrying after seeing
    /// no answer.
    pub fn retry(&mut self, req: BookRequest) {
        self.retries.push_back(req);
    }

    /// A room, [`HOT_SHARE`] of the time from the hot set.
    fn pick_room(&mut self) -> u64 {
        let total = self.cfg.rooms;
        let hot = ((total as f64 * self.cfg.hot_fraction).ceil() as u64).clamp(1, total);
        let offset = if hot == total || self.rng.random_bool(HOT_SHARE) {
            self.rng.random_range(0..hot)
        } else {
            self.rng.random_range(hot..total)
        };
        room_numbers(total).start() + offset
    }

    /// A new request for `room`: the aimed stay (window offset, nights) if any, else a
    /// uniform one.
    fn new_booking(&mut self, room: u64, aimed: Option<(u32, u32)>) -> BookRequest {
        let (start, nights) = match aimed {
            Some(stay) => stay,
            None => {
                let nights = self.rng.random_range(1..=self.cfg.max_nights);
                let latest_start = self.cfg.window_days - nights;
                (self.rng.random_range(0..=latest_start), nights)
            }
        };
        let from = self.cfg.window_start.add_days(start as i32);
        let request = format!("r-{}", self.next_id);
        self.next_id += 1;
        BookRequest {
            room,
            from,
            to: from.add_days(nights as i32),
            request,
        }
    }

    /// A stay (window offset, nights) holding only nights not known to be booked: from
    /// the earliest free night ([`EARLIEST`] of the time, so concurrent users converge on
    /// it) or a random one, as long as the free run there allows. `None` when the room is full.
    fn aim_at_free_nights(&mut self, room: u64) -> Option<(u32, u32)> {
        let free = self.free_nights(room);
        let first = *free.first()?;
        let start = if self.rng.random_bool(EARLIEST) {
            first
        } else {
            free[self.rng.random_range(0..free.len())]
        };
        let run = free_run(&free, start).min(self.cfg.max_nights);
        Some((start, self.rng.random_range(1..=run)))
    }

    /// Window offsets of the room's nights with a place left as far as known (fewer
    /// known bookings than the capacity), ascending.
    fn free_nights(&self, room: u64) -> Vec<u32> {
        match self.occupancy.get(&room) {
            None => (0..self.cfg.window_days).collect(),
            Some(held) => (0..self.cfg.window_days)
                .filter(|&d| held[d as usize] < self.cfg.capacity)
                .collect(),
        }
    }

    fn remember(&mut self, req: &BookRequest) {
        if self
            .issued
            .insert(req.request.clone(), req.clone())
            .is_none()
        {
            self.issued_order.push_back(req.request.clone());
        }
        while self.issued_order.len() > REMEMBERED {
            if let Some(old) = self.issued_order.pop_front() {
                self.issued.remove(&old);
            }
        }
    }

    /// Counts (or uncounts) the stay's nights as booked, ignoring nights outside the
    /// window (a retry of a foreign request, say).
    fn occupy(&mut self, stay: &BookRequest, booked: bool) {
        let days = self.cfg.window_days as usize;
        let start = self.cfg.window_start.0;
        let held = self
            .occupancy
            .entry(stay.room)
            .or_insert_with(|| vec![0; days]);
        for d in stay.from.0..stay.to.0 {
            let Ok(i) = usize::try_from(d - start) else {
                continue;
            };
            if let Some(n) = held.get_mut(i) {
                *n = if booked { *n + 1 } else { n.saturating_sub(1) };
            }
        }
    }
}

/// How many consecutive free nights start at `start` (which is in `free`, ascending).
fn free_run(free: &[u32], start: u32) -> u32 {
    let Ok(i) = free.binary_search(&start) else {
        return 0;
    };
    free[i..]
        .iter()
        .zip(start..)
        .take_while(|(night, expected)| **night == *expected)
        .count() as u32
}

fn clamp_ratio(r: f64) -> f64 {
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn books(g: &mut Generator, n: usize) -> Vec<BookRequest> {
        (0..n)
            .map(|_| match g.next_request() {
                Request::Book(b) => b,
                Request::Cancel { .. } => panic!("no cancellations were asked for"),
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_requests_and_another_seed_does_not() {
        let a = books(&mut Generator::new(GeneratorConfig::new(7, 50)), 200);
        let b = books(&mut Generator::new(GeneratorConfig::new(7, 50)), 200);
        let c = books(&mut Generator::new(GeneratorConfig::new(8, 50)), 200);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0].request, "r-1");
        assert_eq!(a[199].request, "r-200");
    }

    #[test]
    fn most_requests_go_to_the_hot_rooms() {
        let mut g = Generator::new(GeneratorConfig::new(1, 100));
        let reqs = books(&mut g, 10_000);
        // Hot set: the first 20 rooms, 101..=120.
        let hot = reqs.iter().filter(|r| r.room <= 120).count();
        let share = hot as f64 / reqs.len() as f64;
        assert!((0.77..0.83).contains(&share), "hot share {share}");
        assert!(reqs.iter().all(|r| (101..=200).contains(&r.room)));
        assert!(reqs.iter().any(|r| r.room > 120), "cold rooms never picked");
    }

    #[test]
    fn stays_lie_within_the_window_and_last_one_to_seven_nights() {
        let cfg = GeneratorConfig::new(3, 10);
        let (start, days) = (cfg.window_start, cfg.window_days as i32);
        let mut g = Generator::new(cfg);
        let reqs = books(&mut g, 5_000);
        for r in &reqs {
            assert!((1..=7).contains(&r.nights()), "{r:?}");
            assert!(r.from >= start && r.to <= start.add_days(days), "{r:?}");
        }
        for n in 1..=7 {
            assert!(
                reqs.iter().any(|r| r.nights() == n),
                "no stay of {n} nights"
            );
        }
    }

    #[test]
    fn a_tiny_window_caps_the_stay_length() {
        let mut cfg = GeneratorConfig::new(3, 1);
        cfg.window_days = 2;
        let mut g = Generator::new(cfg.clone());
        for r in books(&mut g, 200) {
            assert!(r.from >= cfg.window_start && r.to <= cfg.window_start.add_days(2));
            assert_eq!(r.room, 101);
        }
    }

    #[test]
    fn retries_come_next_with_the_same_key() {
        let mut g = Generator::new(GeneratorConfig::new(5, 10));
        let first = books(&mut g, 1).remove(0);
        g.retry(first.clone());
        assert_eq!(g.next_request(), Request::Book(first));
        assert_eq!(books(&mut g, 1)[0].request, "r-2");
    }

    #[test]
    fn cancellations_pick_confirmed_bookings_once_each() {
        let mut cfg = GeneratorConfig::new(9, 10);
        cfg.cancel_ratio = 1.0;
        let mut g = Generator::new(cfg);
        assert!(matches!(g.next_request(), Request::Book(_)));
        g.confirmed(1, "r-1");
        g.confirmed(2, "r-2");
        let mut cancelled = Vec::new();
        for _ in 0..2 {
            match g.next_request() {
                Request::Cancel { booking, request } => cancelled.push((booking, request)),
                other => panic!("expected a cancel, got {other:?}"),
            }
        }
        cancelled.sort();
        assert_eq!(cancelled, [(1, "r-1".to_string()), (2, "r-2".to_string())]);
        assert!(matches!(g.next_request(), Request::Book(_)));
    }

    #[test]
    fn a_full_room_draws_requests_to_its_last_free_night() {
        let mut cfg = GeneratorConfig::new(11, 1);
        cfg.window_days = 10;
        cfg.max_nights = 1;
        let start = cfg.window_start;
        let mut g = Generator::new(cfg);
        let last_free = start.add_days(7);
        let mut booked = std::collections::BTreeSet::new();
        let mut id = 0;
        while booked.len() < 9 {
            let r = books(&mut g, 1).remove(0);
            if r.from != last_free && booked.insert(r.from) {
                id += 1;
                g.confirmed(id, &r.request);
            }
            assert!(id < 1000, "the room never filled up");
        }
        let reqs = books(&mut g, 200);
        let aimed = reqs.iter().filter(|r| r.from == last_free).count();
        // 80% aim at free nights, and a tenth of the uniform rest lands there too.
        assert!(
            aimed > 140,
            "only {aimed} of 200 requests aimed at the free night"
        );

        // Cancelling a booking frees its night for the aim again.
        let mut cfg = GeneratorConfig::new(12, 1);
        cfg.cancel_ratio = 1.0;
        cfg.window_days = 1;
        let mut g = Generator::new(cfg);
        let r = books(&mut g, 1).remove(0);
        g.confirmed(1, &r.request);
        assert!(g.free_nights(101).is_empty());
        assert!(matches!(
            g.next_request(),
            Request::Cancel { booking: 1, .. }
        ));
        // Not before the cancel committed: until then a booking for that night fails.
        assert!(g.free_nights(101).is_empty());
        g.cancelled(1, Some(true));
        assert_eq!(g.free_nights(101), [0]);
    }

    #[test]
    fn a_cancel_that_failed_leaves_the_booking_cancellable_and_an_unknown_one_occupied() {
        let mut cfg = GeneratorConfig::new(14, 1);
        cfg.cancel_ratio = 1.0;
        cfg.window_days = 2;
        cfg.max_nights = 1;
        let mut g = Generator::new(cfg);
        let r = books(&mut g, 1).remove(0);
        g.confirmed(1, &r.request);
        let Request::Cancel { booking: 1, .. } = g.next_request() else {
            panic!("expected the cancellation of booking 1");
        };
        g.cancelled(1, Some(false));
        let Request::Cancel { booking: 1, .. } = g.next_request() else {
            panic!("a booking whose cancel failed must be cancellable again");
        };
        g.cancelled(1, None);
        // Outcome unknown: the night may still be booked, so it is not aimed at.
        assert_eq!(g.free_nights(101).len(), 1);
    }

    #[test]
    fn free_runs_stop_at_the_first_booked_night() {
        let free = [0, 1, 2, 5, 6, 9];
        assert_eq!(free_run(&free, 0), 3);
        assert_eq!(free_run(&free, 1), 2);
        assert_eq!(free_run(&free, 5), 2);
        assert_eq!(free_run(&free, 9), 1);
        assert_eq!(free_run(&free, 3), 0);
    }

    #[test]
    fn a_full_room_churns_instead_of_failing_every_request() {
        let mut cfg = GeneratorConfig::new(13, 1);
        cfg.window_days = 3;
        cfg.max_nights = 1;
        let mut g = Generator::new(cfg);
        let mut booked = std::collections::BTreeMap::new();
        for id in 1..1000u64 {
            if booked.len() == 3 {
                break;
            }
            let r = books(&mut g, 1).remove(0);
            if let std::collections::btree_map::Entry::Vacant(e) = booked.entry(r.from) {
                e.insert(id);
                g.confirmed(id, &r.request);
            }
        }
        assert_eq!(booked.len(), 3, "the room never filled up");
        let cancel = (0..50)
            .map(|_| g.next_request())
            .find(|r| matches!(r, Request::Cancel { .. }));
        let Some(Request::Cancel { booking, .. }) = cancel else {
            panic!("a full room never churned");
        };
        let freed = booked
            .iter()
            .find(|(_, id)| **id == booking)
            .map(|(d, _)| *d);
        // The night is raced for once the cancel committed, not while it is in flight.
        g.cancelled(booking, Some(true));
        let next: Vec<_> = books(&mut g, 20);
        assert!(
            next.iter().filter(|r| Some(r.from) == freed).count() >= 10,
            "the freed night was not raced for: {next:?}"
        );
    }
}
