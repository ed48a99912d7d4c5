//! The crate's typed errors. A booking op never returns one of these (its failures are
//! classified into `fail` / `info` outcomes); they come from setup, the final read and
//! connecting, where the caller (the runner) must stop the run.

use thiserror::Error;

/// Why setting up, connecting or reading failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// Postgres refused or failed a statement, or the connection broke.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Redis refused or failed a command, or the connection broke.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A design name that is not one of ours.
    #[error("unknown design {name:?}; valid designs: {valid}")]
    UnknownDesign {
        /// The name given.
        name: String,
        /// Every valid name, comma separated.
        valid: String,
    },
    /// A fault name that is not in the fault table.
    #[error("unknown fault {name:?}; known: {valid}")]
    UnknownFault {
        /// The name given.
        name: String,
        /// Every valid name, comma separated.
        valid: String,
    },
    /// A configuration value that cannot work (e.g. zero rooms, a zero lease).
    #[error("invalid workload configuration: {0}")]
    InvalidConfig(String),
    /// Connecting to a server took longer than [`crate::client::CONNECT_TIMEOUT`] (a
    /// server that accepts but never answers, or a partition).
    #[error("connecting to {server} timed out after {after:?}")]
    ConnectTimeout {
        /// `postgres` or `redis`.
        server: &'static str,
        /// How long it waited.
        after: std::time::Duration,
    },
    /// A row the database returned does not fit our schema (e.g. a negative id).
    #[error("unexpected row from postgres: {0}")]
    BadRow(String),
}
