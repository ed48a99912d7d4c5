//! The run's one monotonic clock: every history `time` and every trace instant comes from it.

use std::time::{Duration, Instant};

/// Nanoseconds since the run started. Cheap to copy into every client and the nemesis,
/// so that all instants in a history are comparable.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
}

impl RunClock {
    /// A clock whose zero is now.
    pub fn start() -> RunClock {
        RunClock {
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
