//! The Redis lease: acquire with `SET NX PX` (optionally with a fencing token in the same
//! script), renew with compare-and-PEXPIRE, release with compare-and-delete.
//!
//! Every step compares the stored value with our random id, so a client whose lease ran
//! out never renews or deletes the next holder's lease (plain `DEL` would).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Script;
use tokio::task::JoinHandle;

use crate::classify::{classify_redis, is_redis_connection_broken, Failure};
use crate::client::CONNECT_TIMEOUT;
use crate::lock_service::SentinelEndpoints;
use crate::RunClock;

pub(crate) const RELEASE: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0";

const RENEW: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0";

/// Lock and token in one step: the counter only moves when the lock was taken, so
/// tokens follow the order of grants.
const ACQUIRE_FENCED: &str = r"
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('incr', KEYS[2])
end
return 0";

/// Raises the token counter to at least the database's fence, never lowers it: after a
/// Redis restart without persistence the counter starts again at 1, below every fence
/// Postgres holds, and every holder would be rejected as stale until it catches up.
const SEED_COUNTER: &str = r"
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('set', KEYS[1], ARGV[1])
end
return 1";

/// The lease names of one room: the lock, its trace name, and its token counter. The
/// keys start with the run's prefix ([`crate::Config::lock_prefix`]); the trace name is
/// the room's alone, the same on every backend.
#[derive(Debug, Clone)]
pub(crate) struct LeaseKeys {
    pub(crate) lock: String,
    pub(crate) trace_name: String,
    pub(crate) counter: String,
}

impl LeaseKeys {
    pub(crate) fn for_room(prefix: &str, room: u64) -> LeaseKeys {
        LeaseKeys {
            lock: format!("{prefix}lock:room:{room}"),
            trace_name: format!("room:{room}"),
            counter: format!("{prefix}fence:room:{room}"),
        }
    }
}

/// A lease we were granted, with the fencing token when asked for one.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) keys: LeaseKeys,
    pub(crate) value: String,
    pub(crate) token: Option<u64>,
}

/// Why acquiring failed.
#[derive(Debug)]
pub(crate) enum AcquireError {
    /// Someone else held the lease for the whole wait.
    Busy,
    /// Redis failed; the connection may need replacing.
    Redis(redis::RedisError),
    /// Redlock: fewer nodes than a majority answered at all.
    NoMajority {
        /// Nodes that answered.
        reachable: usize,
        /// Nodes in the topology.
        nodes: usize,
    },
}

impl AcquireError {
    pub(crate) fn failure(&self) -> Failure {
        match self {
            AcquireError::Busy => Failure::fail("lock busy"),
            AcquireError::Redis(e) => classify_redis(e),
            // Nothing was granted on a majority, and what was granted was released.
            AcquireError::NoMajority { reachable, nodes } => Failure::fail(format!(
                "no redlock majority: {reachable} of {nodes} nodes answered"
            )),
        }
    }
}

/// Takes the room's lease, retrying with short sleeps for up to `wait`: a waiter
/// outlasts one lease, so a holder that dies (or stalls) lets the next user in.
pub(crate) async fn acquire(
    conn: &mut MultiplexedConnection,
    keys: LeaseKeys,
    ttl: Duration,
    fenced: bool,
    wait: Duration,
) -> Result<Lease, AcquireError> {
    let value = format!("{:032x}", rand::random::<u128>());
    let ttl_ms = ttl.as_millis().max(1) as u64;
    let nap = (ttl / 20).clamp(Duration::from_millis(2), Duration::from_millis(50));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let granted = if fenced {
            let token: u64 = Script::new(ACQUIRE_FENCED)
                .key(&keys.lock)
                .key(&keys.counter)
                .arg(&value)
                .arg(ttl_ms)
                .invoke_async(conn)
                .await
                .map_err(AcquireError::Redis)?;
            (token > 0).then_some(Some(token))
        } else {
            let set: Option<String> = redis::cmd("SET")
                .arg(&keys.lock)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(conn)
                .await
                .map_err(AcquireError::Redis)?;
            set.map(|_| None)
        };
        if let Some(token) = granted {
            return Ok(Lease { keys, value, token });
        }
        if tokio::time::Instant::now() + nap > deadline {
            return Err(AcquireError::Busy);
        }
        tokio::time::sleep(nap).await;
    }
}

/// Deletes the lease if it is still ours. Returns whether it was (false: it had expired,
/// and maybe someone else holds it now).
pub(crate) async fn release(
    conn: &mut MultiplexedConnection,
    lease: &Lease,
) -> Result<bool, redis::RedisError> {
    let deleted: i64 = Script::new(RELEASE)
        .key(&lease.keys.lock)
        .arg(&lease.value)
        .invoke_async(conn)
        .await?;
    Ok(deleted == 1)
}

/// Raises the room's token counter to the database's fence (see [`SEED_COUNTER`]).
pub(crate) async fn seed_counter(
    conn: &mut MultiplexedConnection,
    keys: &LeaseKeys,
    fence: u64,
) -> Result<(), redis::RedisError> {
    let _: i64 = Script::new(SEED_COUNTER)
        .key(&keys.counter)
        .arg(fence)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// A client-wide "stopped the world" flag: set while the client sits in a client-pause,
/// so its heartbeat stops too (a GC pause stops every thread, the renewer included).
#[derive(Debug, Clone, Default)]
pub(crate) struct StopTheWorld(Arc<AtomicBool>);

impl StopTheWorld {
    /// Sits in the client-pause point with the world stopped.
    pub(crate) async fn pause_point(&self, pause: &crate::ClientPause) -> Option<Duration> {
        self.0.store(true, Ordering::SeqCst);
        let paused = pause.point().await;
        self.0.store(false, Ordering::SeqCst);
        paused
    }

    fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The lease-renewal task of `lock-renewal`: every ttl/3 it extends the lease if it is
/// still ours, recording each success. Aborted when dropped, so a dropped op (the
/// runner's timeout) leaves no task behind.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    task: JoinHandle<()>,
    renewed: Arc<Mutex<Vec<u64>>>,
}

impl Heartbeat {
    pub(crate) fn start(
        mut conn: MultiplexedConnection,
        lease: &Lease,
        ttl: Duration,
        clock: RunClock,
        world: StopTheWorld,
    ) -> Heartbeat {
        let renewed = Arc::new(Mutex::new(Vec::new()));
        let log = renewed.clone();
        let key = lease.keys.lock.clone();
        let value = lease.value.clone();
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let every = (ttl / 3).max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let script = Script::new(RENEW);
            loop {
                tokio::time::sleep(every).await;
                if world.is_stopped() {
                    continue;
                }
                let renewed: Result<i64, _> = script
                    .key(&key)
                    .arg(&value)
                    .arg(ttl_ms)
                    .invoke_async(&mut conn)
                    .await;
                match renewed {
                    Ok(1) => {
                        let now = clock.now();
                        if let Ok(mut log) = log.lock() {
                            log.push(now);
                        }
                    }
                    // Lost (expired and maybe taken) or Redis failed: the lease cannot be
                    // won back by renewing. The work goes on regardless, as it does in
                    // the design this models: nothing tells the worker.
                    _ => return,
                }
            }
        });
        Heartbeat { task, renewed }
    }

    /// Stops renewing and returns the instants of the successful renewals.
    pub(crate) fn stop(self) -> Vec<u64> {
        self.task.abort();
        self.renewed.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a Sentinel client tries the primary it was told of before asking again.
const SENTINEL_PRIMARY_CONNECT: Duration = Duration::from_secs(2);

/// One Redis node of the lock service: a client to reconnect with and the current
/// connection, if any. With Sentinel, the node is whichever is primary now: every
/// reconnect asks the sentinels first (so a client follows a failover on its next op).
pub(crate) struct RedisLink {
    client: Option<redis::Client>,
    sentinel: Option<SentinelEndpoints>,
    pub(crate) conn: Option<MultiplexedConnection>,
}

impl RedisLink {
    /// A link to one fixed node.
    pub(crate) fn to_node(url: &str) -> Result<RedisLink, redis::RedisError> {
        Ok(RedisLink {
            client: Some(redis::Client::open(url)?),
            sentinel: None,
            conn: None,
        })
    }

    /// A link to the primary the sentinels name.
    pub(crate) fn to_primary(sentinel: SentinelEndpoints) -> RedisLink {
        RedisLink {
            client: None,
            sentinel: Some(sentinel),
            conn: None,
        }
    }

    /// The live connection, opening one if the last was broken. No response timeout:
    /// the runner's op timeout decides when a stalled op becomes `info`.
    pub(crate) async fn connection(
        &mut self,
    ) -> Result<&mut MultiplexedConnection, redis::RedisError> {
        if self.conn.is_none() {
            if let Some(sentinel) = &self.sentinel {
                // The primary may have changed since the last connection.
                let url = primary_url(sentinel).await?;
                self.client = Some(redis::Client::open(url)?);
            }
            let Some(client) = &self.client else {
                return Err(no_primary("no sentinel answered"));
            };
            // A Sentinel client that cannot reach the primary it was told of asks the
            // sentinels again, soon: a dead primary's address may not answer at all (a
            // crashed host, a stopped container: no reset, the SYN just goes
            // unanswered), and waiting out CONNECT_TIMEOUT there would outlast the
            // failover that replaces it. Long enough for a handshake under
            // `redis-latency` (two round trips).
            let connect_timeout = match self.sentinel {
                Some(_) => SENTINEL_PRIMARY_CONNECT,
                None => CONNECT_TIMEOUT,
            };
            let config = redis::AsyncConnectionConfig::new()
                .set_response_timeout(None)
                .set_connection_timeout(Some(connect_timeout));
            let conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => unreachable!("connection was just set"),
        }
    }

    /// Forgets the connection after an error that broke it (the next op reconnects).
    pub(crate) fn note_error(&mut self, err: &redis::RedisError) {
        if is_redis_connection_broken(err) {
            self.conn = None;
        }
    }
}

fn no_primary(why: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::MasterNameNotFoundBySentinel,
        "sentinel named no usable primary",
        why.to_string(),
    ))
}

/// Asks the sentinels, in order, for the primary, and routes the answer to that node's
/// client URL (its fault proxy).
///
/// By hand rather than through the `redis` crate's sentinel client: that client connects
/// to the address Sentinel reports, which is the node itself, past the fault proxy every
/// client must go through; here the answer is only a key into
/// [`SentinelEndpoints::routes`]. Each sentinel gets a short deadline, so a paused or
/// partitioned one costs a moment, not the op.
async fn primary_url(s: &SentinelEndpoints) -> Result<String, redis::RedisError> {
    const ASK_TIMEOUT: Duration = Duration::from_millis(500);
    let mut last = no_primary("no sentinel configured");
    for url in &s.sentinels {
        let ask = async {
            let client = redis::Client::open(url.as_str())?;
            // Bounded by ASK_TIMEOUT as a whole, not by the library's own timeout.
            let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&s.master_name)
                .query_async::<Option<(String, u16)>>(&mut conn)
                .await
        };
        match tokio::time::timeout(ASK_TIMEOUT, ask).await {
            Ok(Ok(Some((host, port)))) => match s.route(&host, port) {
                Some(url) => return Ok(url.to_string()),
                None => last = no_primary(&format!("{host}:{port} is not a node of the run")),
            },
            Ok(Ok(None)) => last = no_primary("the sentinel does not know the primary"),
            Ok(Err(e)) => last = e,
            Err(_) => last = no_primary("the sentinel did not answer in time"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_keys_carry_the_runs_prefix_and_its_trace_name_does_not() {
        let k = LeaseKeys::for_room("overbook_00ab:", 101);
        assert_eq!(k.lock, "overbook_00ab:lock:room:101");
        assert_eq!(k.counter, "overbook_00ab:fence:room:101");
        assert_eq!(k.trace_name, "room:101");
        // Servers the run owns: the bare names, as the docs and stories show them.
        let k = LeaseKeys::for_room("", 101);
        assert_eq!(
            (k.lock.as_str(), k.counter.as_str()),
            ("lock:room:101", "fence:room:101")
        );
    }
}
