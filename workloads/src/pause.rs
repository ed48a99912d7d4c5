//! The `client-pause` hook: a stop-the-world pause of a client between taking the lock
//! and writing, the GC pause of the lock literature.
//!
//! The nemesis switches it on for a fault window; every design that holds a lease calls
//! [`ClientPause::point`] right after acquiring it. A paused client keeps believing it
//! holds the lock while the lease runs out on the Redis side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shared switch the nemesis sets and the clients obey. Cloning shares the switch.
#[derive(Debug, Clone, Default)]
pub struct ClientPause {
    /// Pause length in ms while the fault is active; 0 when it is not.
    pause_ms: Arc<AtomicU64>,
    /// How many pauses clients have entered, ever.
    entered: Arc<AtomicU64>,
}

impl ClientPause {
    /// A switch that starts off.
    pub fn new() -> ClientPause {
        ClientPause::default()
    }

    /// Starts pausing every client that reaches a pause point for `pause`.
    pub fn activate(&self, pause: Duration) {
        self.pause_ms
            .store(pause.as_millis().max(1) as u64, Ordering::SeqCst);
    }

    /// Stops pausing clients (those already paused finish their pause).
    pub fn heal(&self) {
        self.pause_ms.store(0, Ordering::SeqCst);
    }

    /// How long a client reaching a pause point now would stop, if the fault is active.
    pub fn current(&self) -> Option<Duration> {
        match self.pause_ms.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Called by designs between taking the lease and writing: sleeps for the pause when
    /// the fault is active, and returns how long it slept.
    pub async fn point(&self) -> Option<Duration> {
        let pause = self.current()?;
        self.entered.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(pause).await;
        Some(pause)
    }

    /// How many times a client has entered a pause so far: lets a test wait until a
    /// client is surely paused instead of guessing how long that takes.
    pub fn entered(&self) -> u64 {
        self.entered.load(Ordering::SeqCst)
    }
}
