//! overbook's workloads: the booking designs under test, their schema, and the op
//! generator. Each design is a client of Redis (the lease lock) and Postgres (the
//! bookings database); this crate knows SQL and Redis, nothing about processes or faults.
//!
//! - [`clock`]: the run's monotonic clock, shared with the history.
//! - [`pause`]: the `client-pause` hook designs call between taking a lease and writing.

pub mod clock;
pub mod pause;

pub use clock::RunClock;
pub use pause::ClientPause;
