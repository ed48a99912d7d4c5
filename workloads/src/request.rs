//! What the runner asks a client to do, and what comes back.

use checkers::{Date, OpType, OpValue, Trace};

/// A user's request to book `[from, to)` of one room, under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRequest {
    /// The room.
    pub room: u64,
    /// Check-in night (inclusive).
    pub from: Date,
    /// Check-out day (exclusive).
    pub to: Date,
    /// The request's idempotency key ("r-17"); a retry reuses it.
    pub request: String,
}

impl BookRequest {
    /// How many nights the stay has (0 for a malformed stay).
    pub fn nights(&self) -> u64 {
        u64::try_from(self.to.0 - self.from.0).unwrap_or(0)
    }

    /// The room as Postgres's bigint.
    pub(crate) fn room_param(&self) -> i64 {
        i64::try_from(self.room).unwrap_or(i64::MAX)
    }

    /// What the key stands for: a retry with the same key must ask for the same stay.
    pub(crate) fn fingerprint(&self) -> String {
        format!("{}|{}|{}", self.room, self.from, self.to)
    }

    /// The op value of the `invoke` of this request.
    pub fn invoke_value(&self) -> OpValue {
        OpValue {
            room: Some(self.room.into()),
            from: Some(self.from.into()),
            to: Some(self.to.into()),
            request: Some(self.request.clone()),
            ..OpValue::default()
        }
    }
}

/// One op the generator hands the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Book a stay.
    Book(BookRequest),
    /// Cancel a confirmed booking, named by its id and by the key of the request that
    /// made it.
    Cancel {
        /// The booking id the database gave.
        booking: u64,
        /// The key of the booking's request.
        request: String,
    },
}

impl Request {
    /// The op value of this request's `invoke`.
    pub fn invoke_value(&self) -> OpValue {
        match self {
            Request::Book(b) => b.invoke_value(),
            Request::Cancel { booking, request } => OpValue {
                booking: Some(*booking),
                request: Some(request.clone()),
                ..OpValue::default()
            },
        }
    }
}

/// How an op completed: the history's `type`, `value` and `error` of the completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Ok`, `Fail` or `Info` (never `Invoke`).
    pub kind: OpType,
    /// The request's fields, the booking id on `ok`, and the trace.
    pub value: OpValue,
    /// Why a `fail` or `info` happened.
    pub error: Option<String>,
}

impl Outcome {
    /// The trace of the op, if it has one.
    pub fn trace(&self) -> Option<&Trace> {
        self.value.trace.as_ref()
    }
}
