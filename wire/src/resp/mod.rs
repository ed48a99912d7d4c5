//! The Redis protocol (RESP2, RESP3 and inline commands), followed one message at a time,
//! and what a command does to a lease.
//!
//! [`CommandFollower`] reads what a client sends, [`ReplyFollower`] what the server
//! answers; [`classify`] (or [`Scripts::classify`], which also resolves EVALSHA) tells a
//! lease grant from a renewal or a release, and [`Pairing`] says which command a reply
//! answers, so the proxy can hold exactly the `+OK` that granted a lease.
//!
//! The protocol, briefly: a client sends each command as an array of bulk strings
//! (`*3\r\n$3\r\nSET\r\n...`) or, typed by hand, as one inline line of words. The server
//! answers every command in order, one reply each (a reply may nest); with RESP3 it may
//! also send push messages (`>`) that answer nothing, and attributes (`|`) that annotate
//! the reply after them.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::Range;

use crate::WireError;

/// Redis refuses longer inline commands (`PROTO_INLINE_MAX_SIZE`).
pub(super) const INLINE_LIMIT: usize = 64 * 1024;
/// The longest reply header or simple-string line buffered across chunks.
pub(super) const LINE_LIMIT: usize = 1 << 20;
/// Redis refuses arrays of more elements (`INT_MAX`).
pub(super) const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// How many elements of a top-level array reply keep their coarse value.
pub const ELEMENT_LIMIT: usize = 1024;
/// A buffer grown past this by one long message is given back once that message is done.
pub(super) const KEEP_CAPACITY: usize = 1 << 20;

pub(super) fn malformed(at: u64, reason: &'static str) -> WireError {
    WireError::Malformed { at, reason }
}

mod classify;
mod command;
mod pairing;
#[cfg(test)]
mod proptests;
mod reply;
#[cfg(test)]
mod tests;

pub use classify::*;
pub use command::*;
pub use pairing::*;
pub use reply::*;
