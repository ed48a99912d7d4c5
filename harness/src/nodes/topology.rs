//! Lock-service topologies: the Redis nodes (and sentinels) a run's leases come from,
//! each behind its own fault proxy, all started at once.
//!
//! - `single`: one Redis, as before.
//! - `redlock`: five independent Redis nodes sharing the run's password; nothing links
//!   them, as the algorithm requires.
//! - `sentinel`: a primary, one replica (`replicaof` the primary, `masterauth` the
//!   password) and three sentinels (`redis-server --sentinel`, `requirepass` too), quorum
//!   two, a short `down-after-milliseconds` so a failover completes within a few leases.
//!
//! Sentinel and the replica reach the nodes directly, never through a fault proxy: what a
//! fault on a node's proxy models is the clients' network, and Sentinel answers with the
//! nodes' own addresses, which the clients map back to the proxies
//! ([`workloads::SentinelEndpoints::routes`]), so faults keep applying after a failover.
//!
//! Both backends that start servers start topologies: locally every node is a process on
//! a loopback port chosen in advance; on docker every node is a container at a fixed
//! address on the run's network (`.2`, then `.4` on; sentinels `.20` on), and the configs
//! name those addresses, which Sentinel then answers with and clients route as locally.
//!
//! Ready means ready for what clients need, not a settled cluster: every sentinel names
//! the primary and the replica's link is up. The sentinels are told of each other and of
//! the replica in their config files (`known-sentinel`, `known-replica`, their own
//! `myid`), instead of discovering each other over two-second hello rounds, so they can
//! agree on a failover from the start.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use workloads::{redlock, LockEndpoints, LockService, SentinelEndpoints};

use super::config::NodeSpec;
use super::docker::DockerRun;
use super::{Backend, NodeError, NodeOptions, ServerHandle, ServerKind};

/// The name Sentinel monitors the primary by.
pub const MASTER_NAME: &str = "overbook";

/// How long the sentinels wait before calling an unanswering primary down. Short, so a
/// failover fits in a test; long enough that a loaded machine does not fail over by
/// itself (a false failover would be a fault nobody injected).
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// How long a topology may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The lock service's nodes beyond the first, and the sentinels.
#[derive(Debug)]
pub struct Topology {
    service: LockService,
    /// Data nodes 1.. (node 0 is the cluster's `redis`).
    pub(crate) more: Vec<ServerHandle>,
    /// The sentinels (`sentinel` only).
    pub(crate) sentinels: Vec<ServerHandle>,
    /// From the first spawn to ready.
    ready_in: Duration,
}

impl Topology {
    /// Which lock service this is.
    pub fn service(&self) -> LockService {
        self.service
    }

    /// The sentinels, each behind its proxy (empty unless `sentinel`).
    pub fn sentinels(&self) -> &[ServerHandle] {
        &self.sentinels
    }

    /// How long the whole topology took from the first spawn to ready.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// How clients reach it: `nodes` are the data nodes, node 0 first.
    pub(crate) fn endpoints(&self, nodes: &[&ServerHandle]) -> LockEndpoints {
        match self.service {
            LockService::Single => LockEndpoints::Single(nodes[0].url()),
            LockService::Redlock => LockEndpoints::Redlock(nodes.iter().map(|n| n.url()).collect()),
            LockService::Sentinel => LockEndpoints::Sentinel(SentinelEndpoints {
                sentinels: self.sentinels.iter().map(|s| s.url()).collect(),
                master_name: MASTER_NAME.to_string(),
                routes: nodes
                    .iter()
                    .map(|n| (n.direct_addr().to_string(), n.url()))
                    .collect(),
            }),
        }
    }

    /// The index of the data node the sentinels name as primary now (`sentinel` only;
    /// `None` when none answers or the answer is not one of `nodes`).
    pub(crate) async fn primary(&self, nodes: &[&ServerHandle]) -> Option<usize> {
        for s in &self.sentinels {
            if let Ok(Some(addr)) = ask_primary(&s.direct_url()).await {
                return nodes.iter().position(|n| n.direct_addr() == addr);
            }
        }
        None
    }
}

/// Starts the lock service `opts.lock_service` names: node 0 and the rest.
pub(crate) async fn start(
    backend: &Backend,
    opts: &NodeOptions,
    run: Option<&Arc<DockerRun>>,
) -> Result<(ServerHandle, Topology), NodeError> {
    let started = Instant::now();
    let service = opts.lock_service;
    let password = super::random_password();
    let (nodes, sentinels) = match service {
        LockService::Single => (
            vec![ServerHandle::start(ServerKind::Redis, backend, opts, run).await?],
            Vec::new(),
        ),
        LockService::Redlock => {
            // Locally each node finds its own free port; on a docker network each needs an
            // address of its own (they would all take node 0's otherwise).
            let specs: Vec<NodeSpec> = (0..redlock::NODES)
                .map(|i| NodeSpec {
                    name: node_name(i),
                    password: Some(password.clone()),
                    addr: run.map(|r| r.lock_node_addr(i)),
                    ..NodeSpec::default()
                })
                .collect();
            (start_all(&specs, backend, opts, run).await?, Vec::new())
        }
        LockService::Sentinel => start_sentinel(&password, backend, opts, run).await?,
    };
    let mut nodes = nodes.into_iter();
    let first = nodes.next().ok_or_else(|| NodeError::Docker {
        what: "start the lock service".into(),
        reason: "no node".into(),
    })?;
    let topology = Topology {
        service,
        more: nodes.collect(),
        sentinels,
        ready_in: started.elapsed(),
    };
    Ok((first, topology))
}

/// Node 0 keeps the single server's name (`redis.log`); the others are numbered.
fn node_name(i: usize) -> String {
    match i {
        0 => "redis".to_string(),
        i => format!("redis-{i}"),
    }
}

/// Starts every node of `specs` at once; all or nothing (a node that started is stopped
/// when the others fail, by its drop).
async fn start_all(
    specs: &[NodeSpec],
    backend: &Backend,
    opts: &NodeOptions,
    run: Option<&Arc<DockerRun>>,
) -> Result<Vec<ServerHandle>, NodeError> {
    join_all(
        specs
            .iter()
            .map(|s| ServerHandle::start_as(ServerKind::Redis, backend, opts, run, s)),
    )
    .await
    .into_iter()
    .collect()
}

/// `n` distinct free loopback ports (held together while chosen, so never the same twice).
fn free_ports(n: usize) -> Result<Vec<u16>, NodeError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NodeError::io("find free ports", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| NodeError::io("find free ports", e))
}

/// Where Sentinel's data nodes (primary, replica) and three sentinels will listen, fixed
/// before any starts since each config names the others: free loopback ports locally,
/// the nodes' fixed addresses on a docker run's network.
fn sentinel_addresses(
    run: Option<&Arc<DockerRun>>,
) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>), NodeError> {
    Ok(match run {
        Some(run) => (
            (0..2).map(|i| run.lock_node_addr(i)).collect(),
            (0..3).map(|i| run.sentinel_addr(i)).collect(),
        ),
        None => {
            let loopback = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let ports = free_ports(5)?;
            (
                ports[..2].iter().copied().map(loopback).collect(),
                ports[2..].iter().copied().map(loopback).collect(),
            )
        }
    })
}

async fn start_sentinel(
    password: &str,
    backend: &Backend,
    opts: &NodeOptions,
    run: Option<&Arc<DockerRun>>,
) -> Result<(Vec<ServerHandle>, Vec<ServerHandle>), NodeError> {
    let (addrs, sentinel_addrs) = sentinel_addresses(run)?;
    let (primary, replica) = (addrs[0], addrs[1]);
    let auth = format!("masterauth {password}");
    // A primary waits 5 s by default for more replicas before a diskless full sync;
    // there is only one, so the sync (and readiness) starts at once.
    let no_sync_delay = "repl-diskless-sync-delay 0".to_string();
    let data = [
        NodeSpec {
            name: node_name(0),
            password: Some(password.to_string()),
            conf: vec![auth.clone(), no_sync_delay.clone()],
            addr: Some(primary),
            sentinel: false,
        },
        NodeSpec {
            name: node_name(1),
            password: Some(password.to_string()),
            conf: vec![
                auth,
                no_sync_delay,
                format!("replicaof {} {}", primary.ip(), primary.port()),
            ],
            addr: Some(replica),
            sentinel: false,
        },
    ];
    let ids: Vec<String> = (0..3)
        .map(|_| super::random_password() + "00000000")
        .collect();
    let specs: Vec<NodeSpec> = (0..3)
        .map(|i| {
            let mut conf = vec![
                format!("sentinel myid {}", ids[i]),
                format!(
                    "sentinel monitor {MASTER_NAME} {} {} 2",
                    primary.ip(),
                    primary.port()
                ),
                format!("sentinel auth-pass {MASTER_NAME} {password}"),
                format!("sentinel sentinel-pass {password}"),
                format!(
                    "sentinel down-after-milliseconds {MASTER_NAME} {}",
                    DOWN_AFTER.as_millis()
                ),
                format!("sentinel failover-timeout {MASTER_NAME} 3000"),
                format!("sentinel parallel-syncs {MASTER_NAME} 1"),
                format!(
                    "sentinel known-replica {MASTER_NAME} {} {}",
                    replica.ip(),
                    replica.port()
                ),
            ];
            for j in (0..3).filter(|&j| j != i) {
                let at = sentinel_addrs[j];
                conf.push(format!(
                    "sentinel known-sentinel {MASTER_NAME} {} {} {}",
                    at.ip(),
                    at.port(),
                    ids[j]
                ));
            }
            NodeSpec {
                name: format!("sentinel-{i}"),
                password: Some(password.to_string()),
                conf,
                addr: Some(sentinel_addrs[i]),
                sentinel: true,
            }
        })
        .collect();
    // The data nodes and the sentinels all at once: a sentinel that finds the primary
    // not up yet simply retries.
    let (nodes, sentinels) = tokio::join!(
        start_all(&data, backend, opts, run),
        start_all(&specs, backend, opts, run)
    );
    let (nodes, sentinels) = (nodes?, sentinels?);
    wait_sentinel_ready(&nodes, &sentinels).await?;
    Ok((nodes, sentinels))
}

/// A connection config for overbook's own commands to its servers: no response timeout
/// of the client library's (half a second by default, too short on a loaded machine),
/// since every caller bounds the whole exchange itself.
pub(crate) fn no_response_timeout() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(5)))
}

/// One exchange of overbook's own with the Redis (or sentinel) at `url`, straight to it:
/// a fresh connection, then `talk`, all of it bounded by `within`. `None` when it did
/// not finish in time; each caller says what that means for it.
pub(crate) async fn exchange<T, Fut>(
    url: &str,
    within: Duration,
    talk: impl FnOnce(redis::aio::MultiplexedConnection) -> Fut,
) -> Option<Result<T, redis::RedisError>>
where
    Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
{
    let run = async {
        let client = redis::Client::open(url)?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&no_response_timeout())
            .await?;
        talk(conn).await
    };
    tokio::time::timeout(within, run).await.ok()
}

/// What a sentinel names as the primary, straight from it.
async fn ask_primary(url: &str) -> Result<Option<SocketAddr>, redis::RedisError> {
    let answer = exchange(url, Duration::from_secs(1), |mut conn| async move {
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME)
            .query_async::<Option<(String, u16)>>(&mut conn)
            .await
    })
    .await
    .ok_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::Io, "sentinel did not answer in time"))
    })??;
    Ok(answer.and_then(|(host, port)| format!("{host}:{port}").parse().ok()))
}

/// Whether the replica's link to its primary is up, straight from it.
async fn replica_linked(url: &str) -> bool {
    let info = exchange(url, Duration::from_secs(1), |mut conn| async move {
        redis::cmd("INFO")
            .arg("replication")
            .query_async::<String>(&mut conn)
            .await
    })
    .await;
    matches!(info, Some(Ok(info)) if info.contains("master_link_status:up"))
}

/// Cuts the replication of the replica at `url` (straight to it): its `masterauth` is
/// set to a wrong password and its link to the primary closed, so it reconnects and is
/// refused. Sentinel does not repair `masterauth`, and still sees both nodes up, so
/// nothing fails over until the primary really dies. Undone by [`restore_replication`].
pub(crate) async fn cut_replication(url: &str) -> Result<(), NodeError> {
    let wrong = format!("cut-by-overbook-{}", super::random_password());
    replica_command(url, &["CONFIG", "SET", "masterauth", &wrong]).await?;
    replica_command(url, &["CLIENT", "KILL", "TYPE", "master"]).await
}

/// Cuts the replica's replication at a moment the primary holds no lease, so that every
/// lease granted from then on exists on the primary only, and the replica holds no copy
/// of any room's lease (a lease granted before the cut and released after it would stay
/// on the replica until it expired). Each try freezes the primary's writes for a moment
/// (`CLIENT PAUSE WRITE`), so the check and the cut see the same keyspace; after
/// `within` without such a moment it cuts anyway. Returns whether the keyspace was empty.
pub(crate) async fn cut_replication_between_leases(
    primary_url: &str,
    replica_url: &str,
    within: Duration,
) -> Result<bool, NodeError> {
    let deadline = Instant::now() + within;
    loop {
        replica_command(primary_url, &["CLIENT", "PAUSE", "2000", "WRITE"]).await?;
        // A read that fails (a loaded machine) counts as "not empty": try again.
        let empty = leases(primary_url).await.is_ok_and(|l| l.is_empty());
        let last_try = Instant::now() >= deadline;
        let cut = if empty || last_try {
            cut_replication(replica_url).await.map(|()| empty)
        } else {
            Ok(false)
        };
        replica_command(primary_url, &["CLIENT", "UNPAUSE"]).await?;
        match cut {
            Ok(true) => return Ok(true),
            Ok(false) if last_try => return Ok(false),
            Ok(false) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => return Err(e),
        }
    }
}

/// Gives the replica at `url` its `masterauth` back: it links again by itself.
pub(crate) async fn restore_replication(url: &str, password: &str) -> Result<(), NodeError> {
    replica_command(url, &["CONFIG", "SET", "masterauth", password]).await
}

async fn replica_command(url: &str, args: &[&str]) -> Result<(), NodeError> {
    let err = |e: redis::RedisError| NodeError::Redis {
        what: args[..2].join(" "),
        reason: e.to_string(),
    };
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    exchange(url, Duration::from_secs(5), |mut conn| async move {
        cmd.query_async::<redis::Value>(&mut conn).await
    })
    .await
    .ok_or_else(|| NodeError::Redis {
        what: args[..2].join(" "),
        reason: "no answer in 5 s".into(),
    })?
    .map_err(err)?;
    Ok(())
}

/// The leases a node holds now (`lock:*` keys and their values), straight from it.
pub(crate) async fn leases(url: &str) -> Result<Vec<(String, String)>, NodeError> {
    let err = |e: redis::RedisError| NodeError::Redis {
        what: "read the leases".into(),
        reason: e.to_string(),
    };
    let read = |mut conn: redis::aio::MultiplexedConnection| async move {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("lock:*")
            .query_async(&mut conn)
            .await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    };
    exchange(url, Duration::from_secs(5), read)
        .await
        .ok_or_else(|| NodeError::Redis {
            what: "read the leases".into(),
            reason: "no answer in 5 s".into(),
        })?
        .map_err(err)
}

/// Polls until every sentinel names the primary, is connected to it, and the replica is
/// linked to it.
///
/// Naming is not enough: a sentinel names the primary of its config file before it has
/// ever reached it, and one whose links are still not up a second after its start
/// (containers come up in their own order) calls the primary down, agrees with another
/// and fails over before the run has begun. Seen in containers: the fault then struck
/// the promoted replica, and every lease sat on the old primary.
async fn wait_sentinel_ready(
    nodes: &[ServerHandle],
    sentinels: &[ServerHandle],
) -> Result<(), NodeError> {
    let started = Instant::now();
    let primary = nodes[0].direct_addr();
    loop {
        let named = join_all(sentinels.iter().map(ask_primary_url)).await;
        let all_named = named.iter().all(|a| *a == Some(primary));
        if all_named
            && join_all(sentinels.iter().map(sees_primary_up))
                .await
                .into_iter()
                .all(|up| up)
            && replica_linked(&nodes[1].direct_url()).await
        {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(NodeError::NotReady {
                kind: ServerKind::Redis,
                addr: primary,
                waited: started.elapsed(),
                reason: format!(
                    "sentinels name {named:?} as primary (want {primary}), or the replica is \
                     not linked"
                ),
                log_tail: sentinels
                    .first()
                    .and_then(|s| s.log_path())
                    .map(super::log_tail)
                    .unwrap_or_default(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the sentinel `s` is connected to the primary and finds it up, with its
/// replica and both other sentinels known (`SENTINEL MASTER`).
async fn sees_primary_up(s: &ServerHandle) -> bool {
    let fields = exchange(
        &s.direct_url(),
        Duration::from_secs(1),
        |mut conn| async move {
            redis::cmd("SENTINEL")
                .arg("MASTER")
                .arg(MASTER_NAME)
                .query_async::<Vec<String>>(&mut conn)
                .await
        },
    )
    .await;
    matches!(fields, Some(Ok(fields)) if primary_up(&fields))
}

/// Reads `SENTINEL MASTER`'s field/value list: flags exactly `master` (not
/// `disconnected`, `s_down`, `o_down`, nor mid-failover), one replica, two other
/// sentinels.
fn primary_up(fields: &[String]) -> bool {
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|kv| kv.len() == 2 && kv[0] == name)
            .map(|kv| kv[1].as_str())
    };
    field("flags") == Some("master")
        && field("num-slaves") == Some("1")
        && field("num-other-sentinels") == Some("2")
}

async fn ask_primary_url(s: &ServerHandle) -> Option<SocketAddr> {
    ask_primary(&s.direct_url()).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(5).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 5);
    }

    #[test]
    fn a_primary_is_up_for_a_sentinel_only_once_connected_and_complete() {
        let reply = |flags: &str, slaves: &str, others: &str| -> Vec<String> {
            [
                "name",
                MASTER_NAME,
                "flags",
                flags,
                "num-slaves",
                slaves,
                "num-other-sentinels",
                others,
            ]
            .map(String::from)
            .to_vec()
        };
        assert!(primary_up(&reply("master", "1", "2")));
        assert!(!primary_up(&reply("master,disconnected", "1", "2")));
        assert!(!primary_up(&reply("master,s_down", "1", "2")));
        assert!(!primary_up(&reply("master", "0", "2")));
        assert!(!primary_up(&reply("master", "1", "1")));
        assert!(!primary_up(&[]));
    }

    #[test]
    fn node_zero_keeps_the_single_servers_name() {
        assert_eq!(node_name(0), "redis");
        assert_eq!(node_name(4), "redis-4");
    }
}
