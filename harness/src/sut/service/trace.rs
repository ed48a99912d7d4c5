//! What a service's answers say, in the history's terms: its booking ids as the
//! history's numbers, its optional trace on the history's clock.
//!
//! Ids. The history's `booking` is a number (u64), the contract's `ID` a JSON number or
//! string. A non-negative integer below [`HANDLE_BASE`] is kept as it is; any other id (a
//! string, a negative or fractional number, a huge one) is given a handle, `HANDLE_BASE`,
//! `HANDLE_BASE + 1`, ... in the order first seen, remembered for the run so the same id
//! always maps to the same handle and a cancel sends the original back. The original is
//! also logged in the op's `value.detail.service_id`.
//!
//! Clock. The service stamps its trace in nanoseconds since the Unix epoch
//! (CLOCK_REALTIME); the history counts nanoseconds of one monotonic clock since the run
//! began. The offset between the two is sampled once, when the run's clock starts, so a
//! wall-clock step during the run shifts the trace (by the step) but never reorders the
//! history.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use checkers::Trace;
use serde_json::Value;
use workloads::RunClock;

/// The first handle given to an id that is not a small non-negative integer (2^62: far
/// above any serial id, far below u64::MAX, which the checkers' synthetic ops use).
pub const HANDLE_BASE: u64 = 1 << 62;

/// The run's map between the service's ids and the history's numbers.
#[derive(Debug, Default)]
pub(crate) struct IdTable {
    // A std Mutex: nothing awaits while it is held.
    inner: Mutex<Ids>,
}

#[derive(Debug, Default)]
struct Ids {
    /// The JSON text of an id -> its handle.
    handles: BTreeMap<String, u64>,
    /// Handle -> the id as the service sent it.
    ids: BTreeMap<u64, Value>,
}

impl IdTable {
    /// The history's number for the service's `id`, and whether it is a handle (so the
    /// original is worth logging).
    pub(crate) fn number(&self, id: &Value) -> (u64, bool) {
        if let Some(n) = id.as_u64().filter(|&n| n < HANDLE_BASE) {
            return (n, false);
        }
        let key = id.to_string();
        let mut ids = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&h) = ids.handles.get(&key) {
            return (h, true);
        }
        let h = HANDLE_BASE + ids.handles.len() as u64;
        ids.handles.insert(key, h);
        ids.ids.insert(h, id.clone());
        (h, true)
    }

    /// The service's id for a history number (what a cancel sends back).
    pub(crate) fn id(&self, number: u64) -> Value {
        if number < HANDLE_BASE {
            return Value::from(number);
        }
        let ids = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ids.ids
            .get(&number)
            .cloned()
            .unwrap_or_else(|| Value::from(number))
    }
}

/// Converts a service's epoch-nanosecond instants to the run's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceClock {
    /// Nanoseconds since the epoch when the run's clock read zero.
    epoch_at_zero: u128,
}

impl TraceClock {
    /// Samples the offset between the wall clock and `clock` now.
    pub(crate) fn new(clock: RunClock) -> TraceClock {
        let run = clock.now() as u128;
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        TraceClock {
            epoch_at_zero: wall.saturating_sub(run),
        }
    }

    #[cfg(test)]
    fn at(epoch_at_zero: u128) -> TraceClock {
        TraceClock { epoch_at_zero }
    }

    /// An epoch instant on the run's clock (instants before the run read as 0).
    fn run_time(&self, epoch_ns: u64) -> u64 {
        (epoch_ns as u128)
            .saturating_sub(self.epoch_at_zero)
            .min(u64::MAX as u128) as u64
    }

    /// The history's trace for a service's `trace` object. Keys the contract does not
    /// name, and values of the wrong type, are left out (and named in the error, which
    /// the caller logs); a trace never changes an op's outcome.
    pub(crate) fn convert(&self, trace: &Value) -> (Option<Trace>, Option<String>) {
        let Some(obj) = trace.as_object() else {
            return (None, Some(format!("trace is not an object: {trace}")));
        };
        let mut t = Trace::default();
        let mut bad = Vec::new();
        for (key, v) in obj {
            let instant = || v.as_u64().map(|ns| self.run_time(ns));
            let ok = match key.as_str() {
                "lock_key" => v.as_str().map(|s| t.lock_key = Some(s.to_string())),
                "lock_ttl_ms" => v.as_u64().map(|ms| t.lock_ttl_ms = Some(ms)),
                "token" => v.as_u64().map(|n| t.token = Some(n)),
                "lock_acquired" => instant().map(|n| t.lock_acquired = Some(n)),
                "lock_released" => instant().map(|n| t.lock_released = Some(n)),
                "db_begin" => instant().map(|n| t.db_begin = Some(n)),
                "db_commit" => instant().map(|n| t.db_commit = Some(n)),
                "confirmed" => instant().map(|n| t.confirmed = Some(n)),
                "lock_renewed" => v.as_array().and_then(|a| {
                    let all: Option<Vec<u64>> = a
                        .iter()
                        .map(|x| x.as_u64().map(|ns| self.run_time(ns)))
                        .collect();
                    all.map(|r| t.lock_renewed = r)
                }),
                _ => None,
            };
            if ok.is_none() {
                bad.push(key.as_str());
            }
        }
        let error = (!bad.is_empty()).then(|| format!("trace keys ignored: {}", bad.join(", ")));
        (Some(t), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_integer_ids_are_kept_and_others_get_stable_handles() {
        let t = IdTable::default();
        assert_eq!(t.number(&json!(42)), (42, false));
        let (a, handle) = t.number(&json!("b-1"));
        assert!(handle && a >= HANDLE_BASE);
        assert_eq!(t.number(&json!("b-1")), (a, true));
        // The string "42" is not the number 42.
        let (s42, _) = t.number(&json!("42"));
        assert_ne!(s42, 42);
        assert_ne!(s42, a);
        let (neg, _) = t.number(&json!(-3));
        assert_eq!(t.id(neg), json!(-3));
        assert_eq!(t.id(a), json!("b-1"));
        assert_eq!(t.id(42), json!(42));
    }

    #[test]
    fn trace_instants_move_to_the_run_clock() {
        let c = TraceClock::at(1_000_000_000);
        let (t, err) = c.convert(&json!({
            "lock_key": "room:3", "lock_acquired": 1_000_000_500u64, "lock_ttl_ms": 500,
            "lock_renewed": [1_000_000_600u64], "db_begin": 1_000_000_700u64,
            "db_commit": 1_000_000_800u64, "confirmed": 1_000_000_900u64,
            "lock_released": 1_000_001_000u64, "token": 9, "early": 5, "db_begin2": "x"
        }));
        let t = t.unwrap();
        assert_eq!(t.lock_key.as_deref(), Some("room:3"));
        assert_eq!(t.lock_acquired, Some(500));
        assert_eq!(t.lock_ttl_ms, Some(500));
        assert_eq!(t.lock_renewed, vec![600]);
        assert_eq!(t.db_commit, Some(800));
        assert_eq!(t.lock_released, Some(1000));
        assert_eq!(t.token, Some(9));
        assert_eq!(err.as_deref(), Some("trace keys ignored: db_begin2, early"));
        // Before the run started: clamped to its start, never wrapped around.
        let (t, _) = c.convert(&json!({"db_begin": 5}));
        assert_eq!(t.unwrap().db_begin, Some(0));
        assert!(c.convert(&json!([1])).0.is_none());
    }
}
