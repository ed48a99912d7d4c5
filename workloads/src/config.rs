//! What every client of a run shares: lease length, idempotency, the pause switch, the
//! clock, and the hotel (rooms and booking window).

use std::ops::RangeInclusive;
use std::time::Duration;

use checkers::Date;

use crate::{ClientPause, RunClock};

/// The number of the first room; rooms are numbered from here, as hotel rooms are
/// (`room:101` is the story's lock key).
pub const FIRST_ROOM: u64 = 101;

/// Settings shared by every client of one run (cloned into each).
#[derive(Debug, Clone)]
pub struct Config {
    /// The Redis lease length (`PX`) of the designs that lock.
    pub lock_ttl: Duration,
    /// Whether bookings store their request key and replay the original outcome on a
    /// retry of the same key (see `docs/designs.md`).
    pub idempotency: bool,
    /// The client-pause switch the nemesis flips; designs that hold a lease stop here.
    pub pause: ClientPause,
    /// The run's clock, for every trace instant.
    pub clock: RunClock,
    /// How many rooms the hotel has; they are numbered [`room_numbers`].
    pub rooms: u64,
    /// The first night that can be booked.
    pub window_start: Date,
    /// How many nights the booking window has (inventory rows per room).
    pub window_days: u32,
    /// Put before every Redis key the clients create (lock keys, fencing counters):
    /// empty on servers the run owns, a per-run `overbook_<id>:` on an external Redis,
    /// so two runs against one server never share a lock and no key of someone else's
    /// is ever touched.
    pub lock_prefix: String,
}

impl Config {
    /// The defaults of a scaled run: 500 ms lease, no idempotency, 20 rooms, 60 nights
    /// from 2026-12-01.
    pub fn new(clock: RunClock, pause: ClientPause) -> Config {
        Config {
            lock_ttl: Duration::from_millis(500),
            idempotency: false,
            pause,
            clock,
            rooms: 20,
            window_start: default_window_start(),
            window_days: 60,
            lock_prefix: String::new(),
        }
    }
}

/// The default first bookable night, 2026-12-01.
pub fn default_window_start() -> Date {
    Date(20_788)
}

/// The room numbers of a hotel of `rooms` rooms: `101..=100 + rooms`.
pub fn room_numbers(rooms: u64) -> RangeInclusive<u64> {
    FIRST_ROOM..=FIRST_ROOM.saturating_add(rooms) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_window_starts_on_the_first_of_december() {
        assert_eq!(default_window_start().to_string(), "2026-12-01");
        assert_eq!(room_numbers(3).collect::<Vec<_>>(), [101, 102, 103]);
        assert_eq!(room_numbers(0).count(), 0);
    }
}
