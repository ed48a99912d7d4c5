//! The op generator: a seeded stream of booking requests skewed to a hot set of rooms,
//! with optional cancellations of confirmed bookings and retries of earlier requests.
//!
//! Contention is the point: most requests go to a few rooms, so users race for the same
//! nights, which is where the unsafe designs double-book.

use std::collections::VecDeque;

use checkers::Date;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::room_numbers;
use crate::request::{BookRequest, Request};

/// Share of requests that go to the hot rooms (the 80 of "80/20").
pub const HOT_SHARE: f64 = 0.8;

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
        }
    }
}

/// The seeded request stream (see the module docs).
#[derive(Debug)]
pub struct Generator {
    cfg: GeneratorConfig,
    rng: StdRng,
    next_id: u64,
    /// Confirmed bookings that may be cancelled, in the order they were reported.
    confirmed: Vec<(u64, String)>,
    retries: VecDeque<BookRequest>,
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
        Generator {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            next_id: 1,
            confirmed: Vec::new(),
            retries: VecDeque::new(),
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
            let (booking, request) = self.confirmed.swap_remove(i);
            return Request::Cancel { booking, request };
        }
        Request::Book(self.new_booking())
    }

    /// Tells the generator a booking was confirmed, so it may be cancelled later.
    pub fn confirmed(&mut self, booking: u64, request: &str) {
        self.confirmed.push((booking, request.to_string()));
    }

    /// Queues `req` (same key) to be issued again next, as a user retrying after seeing
    /// no answer.
    pub fn retry(&mut self, req: BookRequest) {
        self.retries.push_back(req);
    }

    fn new_booking(&mut self) -> BookRequest {
        let rooms = room_numbers(self.cfg.rooms);
        let total = self.cfg.rooms;
        let hot = ((total as f64 * self.cfg.hot_fraction).ceil() as u64).clamp(1, total);
        let offset = if hot == total || self.rng.random_bool(HOT_SHARE) {
            self.rng.random_range(0..hot)
        } else {
            self.rng.random_range(hot..total)
        };
        let nights = self.rng.random_range(1..=self.cfg.max_nights);
        let latest_start = self.cfg.window_days - nights;
        let start = self.rng.random_range(0..=latest_start);
        let from = self.cfg.window_start.add_days(start as i32);
        let request = format!("r-{}", self.next_id);
        self.next_id += 1;
        BookRequest {
            room: rooms.start() + offset,
            from,
            to: from.add_days(nights as i32),
            request,
        }
    }
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
}
