//! overbook's workloads: the booking designs under test, their schema, and the op
//! generator. Each design is a client of Redis (the lease lock) and Postgres (the
//! bookings database); this crate knows SQL and Redis, nothing about processes or faults.
//!
//! - [`clock`]: the run's monotonic clock, shared with the history.
//! - [`pause`]: the `client-pause` hook designs call between taking a lease and writing.
//! - [`fault`]: the fault table: every fault, what it acts on and needs.
//! - [`design`]: the [`Design`] trait (what each design declares) and [`DesignName`].
//! - [`config`]: settings every client of a run shares.
//! - [`schema`]: each design's tables and constraints ([`setup`]) and the final read.
//! - [`lock_service`]: single Redis, Sentinel or Redlock, and how clients reach each;
//!   [`redlock`]: the Redlock algorithm.
//! - [`client`]: one simulated user process ([`Client`]) running a design.
//! - [`classify`]: the one place errors become `fail` or `info`.
//! - [`generator`]: the seeded, skewed request stream.
//! - `designs/`: one file per design, each opening with the race it allows or prevents.

pub mod classify;
pub mod client;
pub mod clock;
pub mod config;
pub mod design;
mod designs;
pub mod error;
pub mod fault;
pub mod generator;
mod lease;
pub mod lock_service;
pub mod pause;
pub mod redlock;
pub mod request;
pub mod schema;

pub use classify::Failure;
pub use client::Client;
pub use clock::RunClock;
pub use config::{default_window_start, room_numbers, Config, FIRST_ROOM};
pub use design::{Design, DesignName, LockUse, PausePoint, Schema};
pub use error::WorkloadError;
pub use fault::{Catches, Fault, FaultRow, Fit, Needs, Target};
pub use generator::{Generator, GeneratorConfig};
pub use lock_service::{LockEndpoints, LockService, SentinelEndpoints};
pub use pause::ClientPause;
pub use request::{BookRequest, Outcome, Request};
pub use schema::{read_all, setup};
