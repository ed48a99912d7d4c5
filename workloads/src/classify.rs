//! Error classification, once per backend: is a failed op definitely not applied
//! (`fail`) or unknown (`info`)?
//!
//! The rule: an op is `fail` only if no write of it can have committed. Postgres commits
//! a transaction only on COMMIT, so every error before COMMIT was sent is `fail` (the
//! server rolls back an open transaction when the connection dies). An error *on* COMMIT
//! is `fail` only when the server answered it with an ordinary SQLSTATE (a deferred
//! constraint, a serialization failure): the transaction was rolled back. A commit whose
//! answer never came (closed connection, I/O error, a FATAL from a shutting-down server)
//! is `info`: it may have committed. Redis only holds leases, never bookings, so every
//! Redis error is `fail`.

use checkers::OpType;
use tokio_postgres::error::SqlState;

/// A classified failure: the outcome kind (`Fail` or `Info`) and the history's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `OpType::Fail` (definitely not applied) or `OpType::Info` (unknown).
    pub kind: OpType,
    /// Why, e.g. `"23P01 exclusion_violation"`, `"lock busy"`, `"room taken"`.
    pub error: String,
}

impl Failure {
    /// A definite failure.
    pub fn fail(error: impl Into<String>) -> Failure {
        Failure {
            kind: OpType::Fail,
            error: error.into(),
        }
    }

    /// An unknown outcome.
    pub fn info(error: impl Into<String>) -> Failure {
        Failure {
            kind: OpType::Info,
            error: error.into(),
        }
    }
}

/// Where in a transaction a Postgres error happened: the only thing besides the error
/// itself that decides between `fail` and `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgStage {
    /// Connecting, or any statement before COMMIT was sent.
    BeforeCommit,
    /// The COMMIT itself.
    Commit,
}

/// Classifies a Postgres error (see the module docs for the rule).
pub fn classify_pg(err: &tokio_postgres::Error, stage: PgStage) -> Failure {
    let error = describe_pg(err);
    match stage {
        PgStage::BeforeCommit => Failure::fail(error),
        PgStage::Commit => match err.as_db_error() {
            Some(db) if !is_connection_fatal(db.severity(), db.code()) => Failure::fail(error),
            _ => Failure::info(error),
        },
    }
}

/// Whether a server error means the session died rather than the transaction failing
/// (FATAL/PANIC, connection exceptions, operator intervention, system errors).
fn is_connection_fatal(severity: &str, code: &SqlState) -> bool {
    let class = &code.code()[..2];
    matches!(severity, "FATAL" | "PANIC") || matches!(class, "08" | "57" | "58" | "XX")
}

/// The history `error` text of a Postgres error: `"<SQLSTATE> <name>"` for the states
/// the checkers and reports care about, else the SQLSTATE and message.
pub fn describe_pg(err: &tokio_postgres::Error) -> String {
    if let Some(code) = err.code() {
        let name = match code.code() {
            "23505" => Some("unique_violation"),
            "23P01" => Some("exclusion_violation"),
            "40001" => Some("serialization_failure"),
            "40P01" => Some("deadlock_detected"),
            _ => None,
        };
        return match (name, err.as_db_error()) {
            (Some(name), _) => format!("{} {name}", code.code()),
            (None, Some(db)) => format!("{} {}", code.code(), db.message()),
            (None, None) => code.code().to_string(),
        };
    }
    if err.is_closed() {
        return "postgres connection closed".to_string();
    }
    format!("postgres: {err}")
}

/// Whether a Postgres error is worth retrying the whole transaction for: a
/// serialization failure or a deadlock, both of which roll the transaction back.
pub fn is_retryable_pg(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Classifies a Redis error: always `fail`, since Redis holds no booking (a lost reply
/// to `SET NX` may leave a lease behind, which only costs availability until it expires).
pub fn classify_redis(err: &redis::RedisError) -> Failure {
    let what = if err.is_timeout() {
        "timeout"
    } else if err.is_connection_refusal() {
        "connection refused"
    } else if err.is_connection_dropped() || err.is_io_error() {
        "connection lost"
    } else {
        "error"
    };
    Failure::fail(format!("redis {what}: {err}"))
}

/// Whether the Redis connection is unusable after this error and must be replaced
/// before the next op.
pub(crate) fn is_redis_connection_broken(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        || err.is_timeout()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_deaths_are_not_transaction_failures() {
        assert!(is_connection_fatal("FATAL", &SqlState::ADMIN_SHUTDOWN));
        assert!(is_connection_fatal("ERROR", &SqlState::CONNECTION_FAILURE));
        assert!(!is_connection_fatal(
            "ERROR",
            &SqlState::EXCLUSION_VIOLATION
        ));
        assert!(!is_connection_fatal(
            "ERROR",
            &SqlState::T_R_SERIALIZATION_FAILURE
        ));
    }

    #[test]
    fn redis_errors_are_always_definite_failures() {
        let err = redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        let f = classify_redis(&err);
        assert_eq!(f.kind, OpType::Fail);
        assert!(f.error.starts_with("redis"), "{}", f.error);
        assert!(is_redis_connection_broken(&err));
    }
}
