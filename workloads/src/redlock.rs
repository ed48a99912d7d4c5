//! Redlock, from its published specification (redis.io, "Distributed Locks with Redis",
//! section "The Redlock algorithm"), step by step, over N = 5 independent Redis nodes.
//!
//! 1. Get the current time (a monotonic clock here).
//! 2. Try to take the lock on every node, with the same key and random value, by
//!    `SET key value NX PX ttl`, each with a timeout small against the TTL
//!    ([`node_timeout`]), so a down node costs little. The five requests go in parallel.
//! 3. Elapsed = now - the time of step 1. The lock is acquired iff a majority
//!    ([`quorum`]: 3 of 5) granted it and elapsed < the TTL.
//! 4. Its validity is `ttl - elapsed - drift`, the drift allowance being `ttl * 0.01 + 2
//!    ms` (the specification's figure for clock drift between the nodes).
//! 5. If it was not acquired (no majority, or no validity left), unlock on every node,
//!    those that seemed not to grant it included (a grant whose reply was lost still
//!    holds), then retry after a random delay, so clients that split the nodes between
//!    them do not split them again in lockstep.
//!
//! Release is the compare-and-delete script on every node (the one `single` uses), so a
//! client never deletes a lease that has since gone to someone else.
//!
//! Why implemented here rather than taken from a crate: the Rust Redlock crates people use
//! (`redlock` 2.0, `rslock` 0.x) pin other major versions of the `redis` crate than the
//! 1.x overbook uses and open their own connections; overbook needs its clients' leases
//! to go through each node's fault proxy with per-node timeouts it controls, and the
//! validity of every grant for the lease trace. The algorithm is short; each step above
//! is one line of [`acquire`].
//!
//! What it allows (the Kleppmann-antirez disagreement): a lease's validity is computed
//! by the client from its own clock, and each node expires the key by its own clock. A
//! client paused past its validity (`client-pause`) still believes it holds the lock; a
//! node of the majority whose clock jumps forward (`clock-jump-redis`) drops the key
//! early, and a second client can build a new majority with it. No monotonic token comes
//! out of five independent counters, so `lock-fencing` takes its token from the database.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::Script;

use crate::lease::{AcquireError, LeaseKeys, RedisLink, RELEASE};

/// Nodes in a Redlock topology: the specification's example, tolerating two failures.
pub const NODES: usize = 5;

/// Nodes that must grant the lease: a strict majority.
pub fn quorum(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// The specification's allowance for clock drift between nodes: 1% of the TTL plus 2 ms.
pub fn clock_drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// How long one node gets to answer one request: small against the TTL (the spec's
/// example is 5-50 ms for a 10 s lease), here a fifth of it, between 5 ms and 1 s. More
/// generous than the spec's example, so that a loaded test machine does not turn
/// healthy nodes into "down" ones; it only costs validity when a node is down.
pub fn node_timeout(ttl: Duration) -> Duration {
    (ttl / 5).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// The lease's validity after `elapsed` of acquiring: `ttl - elapsed - drift`, or `None`
/// when nothing is left (step 3 and 4).
pub fn validity(ttl: Duration, elapsed: Duration) -> Option<Duration> {
    ttl.checked_sub(elapsed)?
        .checked_sub(clock_drift(ttl))
        .filter(|v| !v.is_zero())
}

/// A lease held on a majority.
#[derive(Debug)]
pub(crate) struct Grant {
    /// The random value stored on every node that granted it.
    pub(crate) value: String,
    /// How long the holder may act, from the moment [`acquire`] returned.
    pub(crate) validity: Duration,
}

/// What one node answered to one request.
enum Answer {
    Granted,
    Refused,
    Failed,
}

async fn set_nx(
    link: &mut RedisLink,
    key: &str,
    value: &str,
    ttl_ms: u64,
    timeout: Duration,
) -> Answer {
    let attempt = async {
        let conn = link.connection().await?;
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<Option<String>>(conn)
            .await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(Some(_))) => Answer::Granted,
        Ok(Ok(None)) => Answer::Refused,
        Ok(Err(e)) => {
            link.note_error(&e);
            Answer::Failed
        }
        // A node that did not answer in time: its connection may hold a stalled request
        // (a paused server), so the next request opens a fresh one.
        Err(_) => {
            link.conn = None;
            Answer::Failed
        }
    }
}

async fn delete_if_ours(link: &mut RedisLink, key: &str, value: &str, timeout: Duration) {
    let attempt = async {
        let conn = link.connection().await?;
        Script::new(RELEASE)
            .key(key)
            .arg(value)
            .invoke_async::<i64>(conn)
            .await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => link.note_error(&e),
        Err(_) => link.conn = None,
    }
}

/// Takes the room's lease on a majority of `links` (see the module docs), retrying for up
/// to `wait`.
pub(crate) async fn acquire(
    links: &mut [RedisLink],
    keys: &LeaseKeys,
    ttl: Duration,
    wait: Duration,
) -> Result<Grant, AcquireError> {
    let ttl_ms = ttl.as_millis().max(1) as u64;
    let timeout = node_timeout(ttl);
    let need = quorum(links.len());
    let deadline = Instant::now() + wait;
    loop {
        // Step 1 and 2: the time, then SET NX PX on every node at once.
        let value = format!("{:032x}", rand::random::<u128>());
        let started = Instant::now();
        let answers = join_all(
            links
                .iter_mut()
                .map(|l| set_nx(l, &keys.lock, &value, ttl_ms, timeout)),
        )
        .await;
        // Step 3 and 4: a majority, and validity left.
        let elapsed = started.elapsed();
        let granted = answers
            .iter()
            .filter(|a| matches!(a, Answer::Granted))
            .count();
        if granted >= need {
            if let Some(validity) = validity(ttl, elapsed) {
                return Ok(Grant { value, validity });
            }
        }
        // Step 5: not acquired: unlock everywhere, then retry after a random delay.
        release(links, keys, &value, ttl).await;
        let failed = answers
            .iter()
            .filter(|a| matches!(a, Answer::Failed))
            .count();
        let nap = (ttl / 10).clamp(Duration::from_millis(2), Duration::from_millis(50));
        let nap = nap / 2 + rand::random_range(Duration::ZERO..=nap);
        if Instant::now() + nap > deadline {
            return Err(if links.len() - failed < need {
                AcquireError::NoMajority {
                    reachable: links.len() - failed,
                    nodes: links.len(),
                }
            } else {
                AcquireError::Busy
            });
        }
        tokio::time::sleep(nap).await;
    }
}

/// Deletes the lease on every node where it is still ours, in parallel.
pub(crate) async fn release(links: &mut [RedisLink], keys: &LeaseKeys, value: &str, ttl: Duration) {
    let timeout = node_timeout(ttl);
    join_all(
        links
            .iter_mut()
            .map(|l| delete_if_ours(l, &keys.lock, value, timeout)),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_of_five_is_three() {
        assert_eq!(quorum(5), 3);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(1), 1);
    }

    #[test]
    fn validity_is_ttl_minus_elapsed_minus_drift() {
        let ttl = Duration::from_millis(10_000);
        assert_eq!(clock_drift(ttl), Duration::from_millis(102));
        assert_eq!(
            validity(ttl, Duration::from_millis(50)),
            Some(Duration::from_millis(9_848))
        );
        // No validity left: not acquired, whatever the majority.
        assert_eq!(validity(ttl, Duration::from_millis(9_898)), None);
        assert_eq!(validity(ttl, Duration::from_secs(11)), None);
    }

    #[test]
    fn the_node_timeout_is_small_against_the_lease() {
        assert_eq!(
            node_timeout(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
        assert_eq!(
            node_timeout(Duration::from_millis(300)),
            Duration::from_millis(60)
        );
        assert_eq!(
            node_timeout(Duration::from_millis(10)),
            Duration::from_millis(5)
        );
    }
}
