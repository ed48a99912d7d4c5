//! The operation events of a history (the contract in `docs/history.md`).
//!
//! One [`Op`] is one line of `history.jsonl`. The types mirror the JSON closely so that a
//! history written by someone else's system reads the same as ours; fields the checkers
//! do not know are ignored on read.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::bound::Bound;
use crate::room::Room;

/// One event of a history: an invocation or a completion of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history, 0-based, strictly increasing by 1.
    pub index: u64,
    /// Nanoseconds since the run started, on one monotonic clock.
    pub time: u64,
    /// The logical client that issued the op, or the nemesis.
    pub process: Process,
    /// Whether this starts an op or completes it, and how.
    #[serde(rename = "type")]
    pub kind: OpType,
    /// What the op is: `book`, `cancel`, `read`, or a fault name for the nemesis.
    pub f: F,
    /// Arguments (on invoke) and result (on completion).
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: OpValue,
    /// Why a `fail` or `info` happened (e.g. `"23P01 exclusion_violation"`, `"timeout"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Who issued an op: a numbered logical client, or the fault injector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Process {
    /// A simulated user; at most one op in flight at a time.
    Client(u64),
    /// The fault injector, written `"nemesis"`.
    Nemesis,
}

/// The four event types of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// Starts an op.
    Invoke,
    /// The op happened.
    Ok,
    /// The op definitely did not happen.
    Fail,
    /// Unknown: timeout, crash, lost connection. The process is retired.
    Info,
}

/// The op's function. Booking ops are variants; anything else (nemesis faults,
/// ops of a foreign system) is kept by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum F {
    /// Book a stay.
    Book,
    /// Cancel a booking.
    Cancel,
    /// Read every booking the database holds.
    Read,
    /// Any other name, e.g. `start-db-latency`.
    Other(String),
}

/// Arguments and results of an op. Every field is optional because which ones appear
/// depends on `f` and `type`; the checkers say `unknown` when what they need is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpValue {
    /// The room of a `book`: a number or a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Room>,
    /// Check-in (inclusive): a date, or a slot's start instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Bound>,
    /// Check-out (exclusive): a date, or the instant the last slot ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Bound>,
    /// The idempotency key of the user request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The booking id the database gave (on `ok` book), or the booking to cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<u64>,
    /// On a `read` completion: every row the database holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookings: Option<Vec<BookingRow>>,
    /// What the client saw happen inside the op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
    /// Free-form detail (nemesis fault parameters, retry attempt, ...); not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// One row of a `read`: a stored booking.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BookingRow {
    /// The room.
    pub room: Room,
    /// Check-in (inclusive).
    pub from: Bound,
    /// Check-out (exclusive).
    pub to: Bound,
    /// The idempotency key of the request that created it.
    pub request: String,
    /// The database's id for it, when the design has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<u64>,
}

/// What a client saw inside one op, each instant on the history's clock (ns).
/// Lets the checkers and reports reconstruct the race: lease taken and lost, transaction
/// begun and committed, confirmation sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The lock name, e.g. `room:101`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_key: Option<String>,
    /// When the client got the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_acquired: Option<u64>,
    /// The lease length asked for, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_ttl_ms: Option<u64>,
    /// When each successful lease renewal happened (lock-renewal designs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lock_renewed: Vec<u64>,
    /// When the client released the lease, or believed it gave it up; absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_released: Option<u64>,
    /// The fencing token the client got with the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    /// When its transaction started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_begin: Option<u64>,
    /// When its transaction committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_commit: Option<u64>,
    /// When the confirmation was sent to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<u64>,
}

impl Trace {
    /// The last time the lease was granted: the acquire or the latest renewal.
    pub fn last_grant(&self) -> Option<u64> {
        self.lock_renewed
            .iter()
            .copied()
            .chain(self.lock_acquired)
            .max()
    }

    /// When the lease really ran out on the server: the last grant (acquire or renewal)
    /// plus the TTL. `None` without an acquire time or TTL.
    ///
    /// Saturates at `u64::MAX` ns (a lease that never runs out on this clock). A history
    /// read by [`crate::read_history`] never needs it: a lease ending past the clock's
    /// range is a read error there. Traces built by hand get the saturated value rather
    /// than a wrapped one that would "expire" before it began.
    pub fn lease_expiry(&self) -> Option<u64> {
        let granted = self.last_grant()?;
        Some(granted.saturating_add(self.lock_ttl_ms?.saturating_mul(1_000_000)))
    }
}

/// A half-open stay `[from, to)` of one room: the check-out day (or the end instant of
/// the last slot) is free for the next guest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stay {
    /// The room.
    pub room: Room,
    /// Check-in night or first slot's start (inclusive).
    pub from: Bound,
    /// Check-out day or last slot's end (exclusive).
    pub to: Bound,
}

impl Stay {
    /// Whether two stays share at least one night (or slot time) of the same room. A
    /// stay with no night (check-out not after check-in: a malformed read row) shares
    /// none.
    pub fn overlaps(&self, other: &Stay) -> bool {
        self.room == other.room
            && self.from < other.to
            && other.from < self.to
            && self.is_well_formed()
            && other.is_well_formed()
    }

    /// The nights (or slot time) both stays share, as a half-open `[from, to)`, if any.
    pub fn shared_nights(&self, other: &Stay) -> Option<(Bound, Bound)> {
        self.overlaps(other)
            .then(|| (self.from.max(other.from), self.to.min(other.to)))
    }

    /// Whether the stay has at least one night (`from < to`).
    pub fn is_well_formed(&self) -> bool {
        self.from < self.to
    }

    /// "nights" or "slots": what this stay's bounds count, for messages.
    pub fn unit_word(&self) -> &'static str {
        span_word(self.from)
    }
}

/// "nights" for a stay of dates, "slots" for one of instants.
pub fn span_word(from: Bound) -> &'static str {
    if from.is_night() {
        "nights"
    } else {
        "slots"
    }
}

impl fmt::Display for Stay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "room {} {} {}..{}",
            self.room,
            self.unit_word(),
            self.from,
            self.to
        )
    }
}

impl OpValue {
    /// The stay a `book` asks for, when room, from and to are all present.
    pub fn stay(&self) -> Option<Stay> {
        Some(Stay {
            room: self.room.clone()?,
            from: self.from?,
            to: self.to?,
        })
    }
}

impl BookingRow {
    /// The stay this stored row occupies.
    pub fn stay(&self) -> Stay {
        Stay {
            room: self.room.clone(),
            from: self.from,
            to: self.to,
        }
    }
}

impl Op {
    /// Whether this event starts an op.
    pub fn is_invoke(&self) -> bool {
        self.kind == OpType::Invoke
    }

    /// Whether this event completes an op (`ok`, `fail` or `info`).
    pub fn is_completion(&self) -> bool {
        self.kind != OpType::Invoke
    }

    /// Whether the nemesis issued it.
    pub fn is_nemesis(&self) -> bool {
        self.process == Process::Nemesis
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => s.serialize_u64(*n),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Process, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("process must not be negative, got {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    Err(E::custom(format!(
                        "process must be an integer or \"nemesis\", got {v:?}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl F {
    /// The name as written in the history.
    pub fn as_str(&self) -> &str {
        match self {
            F::Book => "book",
            F::Cancel => "cancel",
            F::Read => "read",
            F::Other(s) => s,
        }
    }
}

impl From<&str> for F {
    fn from(s: &str) -> F {
        match s {
            "book" => F::Book,
            "cancel" => F::Cancel,
            "read" => F::Read,
            other => F::Other(other.to_string()),
        }
    }
}

impl fmt::Display for F {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for F {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<F, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = F;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string naming the op")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<F, E> {
                Ok(F::from(v))
            }
        }
        d.deserialize_str(V)
    }
}

fn null_as_default<'de, D: Deserializer<'de>>(d: D) -> Result<OpValue, D::Error> {
    Ok(Option::<OpValue>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_examples() {
        let line = r#"{"index":9,"time":612830021,"process":3,"type":"ok","f":"book","value":{"room":101,"from":"2026-12-01","to":"2026-12-03","request":"r-17","booking":42}}"#;
        let op: Op = serde_json::from_str(line).unwrap();
        assert_eq!(op.process, Process::Client(3));
        assert_eq!(op.kind, OpType::Ok);
        assert_eq!(op.f, F::Book);
        assert_eq!(op.value.booking, Some(42));
        assert_eq!(op.value.room, Some(Room::Number(101)));
        assert_eq!(serde_json::to_string(&op).unwrap(), line);

        let nem = r#"{"index":1,"time":5,"process":"nemesis","type":"info","f":"start-db-latency","value":null}"#;
        let op: Op = serde_json::from_str(nem).unwrap();
        assert!(op.is_nemesis());
        assert_eq!(op.f, F::Other("start-db-latency".into()));
    }

    #[test]
    fn half_open_stays_do_not_overlap_on_the_checkout_day() {
        let d = |s| Bound::parse(s).unwrap();
        let a = Stay {
            room: Room::Number(1),
            from: d("2026-12-01"),
            to: d("2026-12-03"),
        };
        let b = Stay {
            room: Room::Number(1),
            from: d("2026-12-03"),
            to: d("2026-12-05"),
        };
        let c = Stay {
            room: Room::Number(1),
            from: d("2026-12-02"),
            to: d("2026-12-04"),
        };
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&c));
        assert_eq!(
            a.shared_nights(&c),
            Some((d("2026-12-02"), d("2026-12-03")))
        );
        assert_eq!(a.to_string(), "room 1 nights 2026-12-01..2026-12-03");
    }

    #[test]
    fn lease_expiry_counts_from_the_last_renewal() {
        let t = Trace {
            lock_acquired: Some(0),
            lock_ttl_ms: Some(500),
            lock_renewed: vec![300_000_000],
            ..Trace::default()
        };
        assert_eq!(t.lease_expiry(), Some(800_000_000));
    }

    /// Regression: the expiry was computed unchecked and wrapped (or panicked in debug).
    #[test]
    fn lease_expiry_saturates_instead_of_wrapping() {
        let t = Trace {
            lock_acquired: Some(u64::MAX - 5),
            lock_ttl_ms: Some(u64::MAX / 1000),
            ..Trace::default()
        };
        assert_eq!(t.lease_expiry(), Some(u64::MAX));
    }
}
