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

/// One direction of one connection, followed message by message.
///
/// Implemented by the four followers so a relay can be written once for any of them.
pub trait Follower {
    /// What a complete message is reported as; it may borrow the chunk or the follower.
    type Event<'a>
    where
        Self: 'a;

    /// Reads the next chunk of the stream, calling `on_event` for every message that
    /// completes in it, in stream order. On an error the events before it were reported
    /// and the follower is lost.
    fn feed<F>(&mut self, chunk: &[u8], on_event: F) -> Result<(), WireError>
    where
        F: for<'a> FnMut(Self::Event<'a>);

    /// How many bytes were fed so far: the stream offset the next chunk starts at.
    fn position(&self) -> u64;

    /// Where the message that began but has not completed yet starts, if one did.
    ///
    /// Bytes before it belong to messages already reported; the proxy may forward them.
    fn partial_start(&self) -> Option<u64>;

    /// Whether the follower failed and can no longer follow this stream.
    fn is_lost(&self) -> bool;
}

/// Reads a big-endian i32 from the first four bytes.
fn be_i32(bytes: &[u8]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a relay written once for any follower does: count messages and find where
    /// the unfinished one starts.
    fn messages_and_pending<F: Follower>(
        follower: &mut F,
        chunks: &[&[u8]],
    ) -> (usize, Option<u64>) {
        let mut n = 0;
        for chunk in chunks {
            follower.feed(chunk, |_| n += 1).unwrap();
        }
        (n, follower.partial_start())
    }

    #[test]
    fn one_relay_serves_every_follower() {
        let mut commands = resp::CommandFollower::new();
        assert_eq!(
            messages_and_pending(&mut commands, &[b"PING\r\nSET a", b" b\r\n*1\r\n$4\r\nPI"]),
            (2, Some(15))
        );
        assert_eq!(commands.position(), 25);
        let mut replies = resp::ReplyFollower::new();
        assert_eq!(
            messages_and_pending(&mut replies, &[b"+OK\r\n:1\r\n"]),
            (2, None)
        );
        let mut backend = pg::BackendFollower::new();
        assert_eq!(
            messages_and_pending(&mut backend, &[b"N", b"R\0\0\0\x08\0\0"]),
            (1, Some(1))
        );
        let mut frontend = pg::FrontendFollower::new();
        assert_eq!(
            messages_and_pending(&mut frontend, &[b"\0\0\0\x08"]),
            (0, Some(0))
        );
        assert!(!frontend.is_lost());
    }
}
