//! Wire-protocol followers: the Postgres and Redis protocols read incrementally off a
//! byte stream, so the fault proxy can aim a fault at one message.
//!
//! - [`pg`]: Postgres frontend (client -> server) and backend (server -> client)
//!   messages, and a classifier that tells a write from a read, a COMMIT from a BEGIN.
//! - [`resp`]: Redis commands and replies (RESP2, RESP3, inline), a classifier for lease
//!   operations (acquire, renew, release), and the pairing of replies with commands.
//!
//! Pure code, no I/O: a follower is fed the chunks of one direction of one connection, in
//! the order they arrived and cut wherever the socket cut them, and reports every complete
//! message as an event with its byte range. Ranges are offsets in the stream since the
//! follower was created (its first byte is offset 0), so the proxy can hold, delay or drop
//! exactly that message however it was chunked.
//!
//! Cost: a message that arrives whole in one chunk is never copied (events borrow from
//! the chunk); only a message cut by a chunk boundary is buffered, and only if its content
//! is needed (a Postgres DataRow or a Redis bulk reply is counted past, not kept). Nothing
//! is allocated per byte. The followers must be created when the connection opens and fed
//! every chunk from then on: neither protocol can be picked up in the middle.
//!
//! The four followers ([`resp::CommandFollower`], [`resp::ReplyFollower`],
//! [`pg::FrontendFollower`], [`pg::BackendFollower`]) share one shape: `feed(chunk,
//! on_event)`, `position()`, `partial_start()`, `is_lost()`; their callers (the fault
//! proxy) use each concretely, so no trait stands between them.
//!
//! A crate of its own, pure (no tokio, no I/O): it builds and tests in seconds, and what
//! it reads is its own captures (`captures/`) and property tests.
//!
//! Why by hand, measured against the registry's crates (a scratch bench, release build,
//! the 2-core development VM): `redis-protocol` 6 frames RESP like these followers on
//! every capture except inline commands (`redis-inline.up`, `redis-resp2-tx.up`: it
//! refuses them), needs the caller to pick the RESP2 or RESP3 decoder (the RESP3 one
//! refuses RESP2's `$-1`), buffers and re-reads each incomplete frame, and keeps every
//! bulk (a 4 MiB reply: 1.8 GB/s against a count past it); on the redis-rs capture
//! repeated it ran at 120-150 MB/s for commands and 420 MB/s for replies, against
//! 210-315 and 660 MB/s here. `pgwire` 0.42 (no default features, 25 crates) frames all
//! four Postgres captures exactly, whole and cut to 1 or 7 bytes, but needs a
//! `BytesMut` copy of the stream and the caller to keep its SSL and startup state, parses
//! every DataRow, declares Rust 1.89 (the workspace says 1.88), and ran at 140 MB/s
//! against 350-490 MB/s here on the tokio-postgres answers. Neither classifies (a lease
//! operation, a statement's kind), pairs replies with commands, resolves an Execute to
//! its prepared SQL, or reports a message's stream offsets, which is most of this crate;
//! the framing they could carry is the smallest part, and slower. So all of it stays.
//!
//! When a follower meets bytes it cannot follow (garbage, a protocol it does not speak, an
//! encrypted session) it returns a [`WireError`] and is lost for good; every later call
//! returns [`WireError::Lost`]. The proxy then relays that connection plainly.

pub mod pg;
pub mod resp;

/// Why a follower stopped following its stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes at `at` are not a valid message of the protocol.
    #[error("malformed message at byte {at}: {reason}")]
    Malformed {
        /// Stream offset of the message (or byte) that is wrong.
        at: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The session switched to TLS or GSSAPI encryption at `at`: nothing after it can be
    /// read.
    #[error("the stream is encrypted from byte {at} on")]
    Encrypted {
        /// Stream offset of the first encrypted byte.
        at: u64,
    },
    /// A message starting at `at` has a part longer than the follower buffers (an inline
    /// Redis command or a reply line without its line end, for instance).
    #[error("the message at byte {at} is longer than the {limit} bytes a follower buffers")]
    TooLong {
        /// Stream offset of the message.
        at: u64,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The follower had already failed on an earlier chunk.
    #[error("the follower lost the stream earlier")]
    Lost,
}

/// Reads a big-endian i32 from the first four bytes.
pub(crate) fn be_i32(bytes: &[u8]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a relay written for any follower does: count messages and find where the
    /// unfinished one starts.
    macro_rules! messages_and_pending {
        ($follower:expr, $chunks:expr) => {{
            let mut n = 0;
            for chunk in $chunks {
                $follower.feed(chunk, |_| n += 1).unwrap();
            }
            (n, $follower.partial_start())
        }};
    }

    #[test]
    fn one_relay_serves_every_follower() {
        let mut commands = resp::CommandFollower::new();
        let chunks: [&[u8]; 2] = [b"PING\r\nSET a", b" b\r\n*1\r\n$4\r\nPI"];
        assert_eq!(messages_and_pending!(commands, chunks), (2, Some(15)));
        assert_eq!(commands.position(), 25);
        let mut replies = resp::ReplyFollower::new();
        let chunks: [&[u8]; 1] = [b"+OK\r\n:1\r\n"];
        assert_eq!(messages_and_pending!(replies, chunks), (2, None));
        let mut backend = pg::BackendFollower::new();
        let chunks: [&[u8]; 2] = [b"N", b"R\0\0\0\x08\0\0"];
        assert_eq!(messages_and_pending!(backend, chunks), (1, Some(1)));
        let mut frontend = pg::FrontendFollower::new();
        let chunks: [&[u8]; 1] = [b"\0\0\0\x08"];
        assert_eq!(messages_and_pending!(frontend, chunks), (0, Some(0)));
        assert!(!frontend.is_lost());
    }
}
