//! The Postgres wire protocol (v3), followed one message at a time, and a classifier for
//! the SQL it carries.
//!
//! [`FrontendFollower`] reads what a client sends, [`BackendFollower`] what the server
//! answers; [`classify`] tells what a statement does, so the proxy can slow only writes or
//! swallow only the answer to a COMMIT.
//!
//! The protocol, briefly: a connection opens with untyped messages (an i32 length that
//! counts itself, then an i32 code): optionally an SSLRequest or GSSENCRequest, which the
//! server answers with one unframed byte (`N` no, `S`/`G` yes, then TLS/GSSAPI follows
//! and nothing more can be read), then the StartupMessage, or a CancelRequest on a
//! connection of its own. Every later message, both ways, is one type byte and an i32
//! length that counts itself but not the type byte.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::{be_i32, WireError};

/// The code of an SSLRequest (`1234 5679`).
pub(super) const SSL_REQUEST: i32 = 80_877_103;
/// The code of a GSSENCRequest (`1234 5680`).
pub(super) const GSSENC_REQUEST: i32 = 80_877_104;
/// The code of a CancelRequest (`1234 5678`).
pub(super) const CANCEL_REQUEST: i32 = 80_877_102;
/// The server refuses longer startup packets (`MAX_STARTUP_PACKET_LENGTH`).
pub(super) const MAX_STARTUP_LEN: i32 = 10_000;
/// The first byte of a TLS handshake record: a client that starts TLS without asking
/// (`sslnegotiation=direct`, Postgres 17) or after an accepted SSLRequest.
pub(super) const TLS_HANDSHAKE: u8 = 0x16;
/// Message types a client may send after the startup.
pub(super) const FRONTEND_TYPES: &[u8] = b"BCDEFHPQSXcdfp";
/// Message types a server may send after the startup.
pub(super) const BACKEND_TYPES: &[u8] = b"123ACDEGHIKNRSTVWZcdnstv";
/// A buffer grown past this by one long message is given back once that message is done.
pub(super) const KEEP_CAPACITY: usize = 1 << 20;

/// A message a client sent, as far as the fault proxy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend<'a> {
    /// Asks to switch to TLS; the server answers with one unframed byte.
    SslRequest,
    /// Asks to switch to GSSAPI encryption; the server answers with one unframed byte.
    GssEncRequest,
    /// Cancels a query running on another connection (this connection then closes).
    CancelRequest,
    /// The StartupMessage: typed messages follow.
    Startup,
    /// A simple Query: one or more statements, run and answered in one go.
    Query {
        /// The SQL text (decoded lossily if it is not UTF-8).
        sql: Cow<'a, str>,
    },
    /// Parse: prepares `sql` as statement `name` (`""` is the unnamed statement).
    Parse {
        /// The statement name.
        name: Cow<'a, str>,
        /// The SQL text.
        sql: Cow<'a, str>,
    },
    /// Bind: makes portal `portal` from statement `statement`.
    Bind {
        /// The portal name (`""` is the unnamed portal).
        portal: Cow<'a, str>,
        /// The prepared statement it runs.
        statement: Cow<'a, str>,
    },
    /// Execute: runs a portal. This is the message that makes the server do the work.
    Execute {
        /// The portal name.
        portal: Cow<'a, str>,
        /// The SQL the portal runs, when the follower saw its Bind and Parse.
        sql: Option<&'a str>,
    },
    /// Close: forgets a prepared statement or a portal.
    Close {
        /// Whether a statement or a portal is closed.
        target: CloseTarget,
        /// Its name.
        name: Cow<'a, str>,
    },
    /// Sync: ends an extended-protocol batch; the server answers ReadyForQuery.
    Sync,
    /// Terminate: the client closes the connection.
    Terminate,
    /// Any other message (Describe, Flush, CopyData, password and SASL messages, ...),
    /// by type byte. Its content was not read.
    Other(u8),
}

/// What a Close message closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseTarget {
    /// A prepared statement (`'S'`).
    Statement,
    /// A portal (`'P'`).
    Portal,
}

/// A frontend message and where it is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendEvent<'a> {
    /// Stream offsets of the whole message, header included.
    pub range: Range<u64>,
    /// The message.
    pub message: Frontend<'a>,
}

/// A message the server sent, as far as the fault proxy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend<'a> {
    /// The one unframed byte answering an SSLRequest or GSSENCRequest: `N` (refused,
    /// the client goes on in plain text), `S` or `G` (accepted: encrypted from here on).
    EncryptionAnswer(u8),
    /// CommandComplete: one statement finished.
    CommandComplete {
        /// Its tag: `COMMIT`, `ROLLBACK`, `INSERT 0 1`, `SELECT 3`, ...
        tag: &'a str,
    },
    /// ReadyForQuery: the server finished a Query or a Sync and waits for the next.
    ReadyForQuery {
        /// The session's transaction state now.
        status: TransactionStatus,
    },
    /// ErrorResponse: the statement (or the rest of the batch) failed.
    ErrorResponse {
        /// The SQLSTATE code (field `C`), such as `23505` or `40001`.
        code: Option<&'a str>,
    },
    /// Any other message, by type byte. Its content was not read.
    Other(u8),
}

/// The transaction status a ReadyForQuery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block; every statement but ROLLBACK is refused.
    Failed,
}

/// A backend message and where it is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendEvent<'a> {
    /// Stream offsets of the whole message, header included.
    pub range: Range<u64>,
    /// The message.
    pub message: Backend<'a>,
}

mod backend;
mod classify;
mod framing;
mod frontend;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use backend::*;
pub use classify::*;
use framing::*;
pub use frontend::*;
