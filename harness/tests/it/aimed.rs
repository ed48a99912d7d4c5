//! Aimed faults against real servers: the proxies follow the Postgres and Redis protocols
//! and act on single messages, so each race happens on purpose.
//!
//! First the proxy alone (what each aim does to which message, observed by real clients),
//! then whole runs: each fault must catch the designs it breaks, in every run, and leave
//! the safe ones valid. A run's assertion never depends on timing luck: every write held
//! outlasts the lease, every COMMIT answer in a window is lost, every lease grant is held
//! past the lease's end, every renewal is dropped.

use crate::verdict::{checker, describe, ok_books};
use std::time::Duration;

use crate::support::{store, LogDir};
use checkers::{History, OpType, Results, Validity};
use harness::nemesis::faults::lost_commit_ack::LostCommitAck;
use harness::nemesis::faults::lost_renewal::LostRenewal;
use harness::nemesis::faults::slow_lock_grant::HeldGrants;
use harness::nemesis::faults::slow_writes::HeldStatements;
use harness::nemesis::Fault;
use harness::nodes::aim::{Firing, Firings};
use harness::nodes::{Backend, Cluster, NodeOptions};
use harness::run::RunConfig;
use workloads::DesignName;

/// Servers for a proxy test. Field order: the cluster goes before its log dir.
struct Env {
    cluster: Cluster,
    _logs: LogDir,
}

impl Env {
    async fn start(name: &str) -> Env {
        let logs = LogDir::new(&format!("aimed-{name}"));
        let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
            .await
            .expect("start redis + postgres");
        Env {
            cluster,
            _logs: logs,
        }
    }

    async fn pg(&self, through_proxy: bool) -> tokio_postgres::Client {
        let url = if through_proxy {
            self.cluster.postgres.url()
        } else {
            self.cluster.postgres.direct_url()
        };
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to postgres");
        tokio::spawn(conn);
        client
    }

    async fn redis(&self, through_proxy: bool) -> redis::aio::MultiplexedConnection {
        let url = if through_proxy {
            self.cluster.redis.url()
        } else {
            self.cluster.redis.direct_url()
        };
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connect to redis")
    }
}

fn drain(firings: &mut Firings) -> Vec<Firing> {
    std::iter::from_fn(|| firings.try_next()).collect()
}

/// A write held for a long time does not hold the reads, BEGIN, or other connections:
/// they finish while the write still waits in the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_writes_holds_only_the_writes() {
    let env = Env::start("writes").await;
    let setup = env.pg(false).await;
    setup
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    let writer = env.pg(true).await;
    let reader = env.pg(true).await;
    // Warm the prepared statement before the aim: a Parse is not a write.
    let insert = writer.prepare("INSERT INTO t VALUES ($1)").await.unwrap();

    let mut firings = Firings::new();
    env.cluster
        .postgres
        .proxy()
        .aim(
            HeldStatements {
                hold: Duration::from_secs(20),
                jitter: Duration::ZERO,
                also: None,
                inserts_only: false,
            },
            &firings,
        )
        .unwrap();
    writer.batch_execute("BEGIN").await.unwrap();
    let held = tokio::spawn(async move { writer.execute(&insert, &[&1i32]).await.map(|_| writer) });
    // Wait (without a clock) until the proxy reports it holds the INSERT.
    let first = firings.next().await.expect("the INSERT fires");
    assert_eq!(
        (first.action, first.command.as_str(), first.kind),
        ("held", "INSERT", "write")
    );
    assert_eq!(first.target.as_deref(), Some("t"));
    assert_eq!(first.server, "postgres");
    assert_eq!(first.held_ms, Some(20_000));

    // Reads and BEGIN on another connection go through while the INSERT is held.
    reader.batch_execute("BEGIN").await.unwrap();
    let n: i64 = reader
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    reader.batch_execute("ROLLBACK").await.unwrap();
    assert!(!held.is_finished(), "the INSERT was not held");
    assert!(
        drain(&mut firings).is_empty(),
        "reads, BEGIN and ROLLBACK must not fire"
    );

    // Lifting the aim does not pull back bytes already held; new writes pass.
    env.cluster.postgres.proxy().heal();
    held.abort();
    let other = env.pg(true).await;
    other
        .execute("INSERT INTO t VALUES (2)", &[])
        .await
        .unwrap();
    assert!(drain(&mut firings).is_empty());
}

/// The answer to a COMMIT is swallowed after the server committed, and the connection
/// cut: the client gets an error it cannot tell from a failed commit, the row is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_commit_ack_commits_then_cuts_the_connection() {
    let env = Env::start("ack").await;
    let direct = env.pg(false).await;
    direct
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    let client = env.pg(true).await;
    let firings = Firings::new();
    env.cluster
        .postgres
        .proxy()
        .aim(LostCommitAck, &firings)
        .unwrap();
    let mut firings = firings;
    // A rolled-back transaction's answers pass.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO t VALUES (0)", &[])
        .await
        .unwrap();
    client.batch_execute("ROLLBACK").await.unwrap();
    assert!(drain(&mut firings).is_empty());

    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    let commit = client.batch_execute("COMMIT").await;
    let err = commit.expect_err("the COMMIT's answer must be lost");
    assert!(client.is_closed(), "the connection must be cut: {err}");
    let rows: Vec<i32> = direct
        .query("SELECT id FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [1], "the COMMIT reached the server and committed");
    let fired = drain(&mut firings);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (fired[0].action, fired[0].command.as_str()),
        ("swallowed", "COMMIT")
    );
}

/// A lease grant is held until the lease went to someone else: the first holder is told
/// "OK" for a lease that is no longer its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_lock_grant_tells_the_first_holder_after_the_lease_moved_on() {
    let env = Env::start("grant").await;
    let mut a = env.redis(true).await;
    let mut b = env.redis(true).await;
    let mut firings = Firings::new();
    env.cluster
        .redis
        .proxy()
        .aim(
            HeldGrants {
                hold: Duration::from_secs(30),
            },
            &firings,
        )
        .unwrap();
    let first = tokio::spawn(async move {
        let r: Option<String> = redis::cmd("SET")
            .arg("lock:room:1")
            .arg("a")
            .arg("NX")
            .arg("PX")
            .arg(200)
            .query_async(&mut a)
            .await
            .unwrap();
        r
    });
    let fired = firings.next().await.expect("the grant fires");
    assert_eq!((fired.action, fired.kind), ("held", "acquire"));
    assert_eq!(fired.target.as_deref(), Some("lock:room:1"));
    // B takes the lease once it expired (its own grant is not held: it releases A's).
    loop {
        let r: Option<String> = redis::cmd("SET")
            .arg("lock:room:1")
            .arg("b")
            .arg("NX")
            .arg("PX")
            .arg(60_000)
            .query_async(&mut b)
            .await
            .unwrap();
        if r.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        first.await.unwrap().as_deref(),
        Some("OK"),
        "A is told it holds the lease"
    );
    let mut direct = env.redis(false).await;
    let holder: String = redis::cmd("GET")
        .arg("lock:room:1")
        .query_async(&mut direct)
        .await
        .unwrap();
    assert_eq!(holder, "b", "while B holds it");
}

/// A renewal (PEXPIRE, SET XX, or a renewal script, also sent as EVALSHA) never reaches
/// Redis: the client hears "not renewed" and the lease keeps its old expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_renewal_keeps_renewals_from_redis() {
    let env = Env::start("renew").await;
    let mut c = env.redis(true).await;
    let mut direct = env.redis(false).await;
    let () = redis::cmd("SET")
        .arg("lock:room:2")
        .arg("me")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut direct)
        .await
        .unwrap();
    let mut firings = Firings::new();
    env.cluster
        .redis
        .proxy()
        .aim(LostRenewal, &firings)
        .unwrap();
    let renewed: i64 = redis::cmd("PEXPIRE")
        .arg("lock:room:2")
        .arg(600_000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(renewed, 0);
    let script = redis::Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then \
         return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0",
    );
    // Twice: first as EVALSHA (NOSCRIPT), then loaded and sent again.
    for _ in 0..2 {
        let renewed: i64 = script
            .key("lock:room:2")
            .arg("me")
            .arg(600_000)
            .invoke_async(&mut c)
            .await
            .unwrap();
        assert_eq!(renewed, 0);
    }
    let ttl: i64 = redis::cmd("PTTL")
        .arg("lock:room:2")
        .query_async(&mut direct)
        .await
        .unwrap();
    assert!(ttl <= 60_000, "the lease was extended: {ttl} ms left");
    // Everything else passes, on the same connection.
    let v: String = redis::cmd("GET")
        .arg("lock:room:2")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, "me");
    let fired = drain(&mut firings);
    assert!(fired.len() >= 2, "{fired:?}");
    assert!(fired.iter().all(|f| f.action == "dropped"
        && f.kind == "renew"
        && f.target.as_deref() == Some("lock:room:2")));
    assert_eq!(fired[0].command, "PEXPIRE");
}

/// A quick run whose fault windows cover most of it.
fn config(design: DesignName, fault: Fault, seed: u64) -> RunConfig {
    RunConfig {
        store: store("aimed"),
        command: "cargo test".into(),
        // Held writes outlast the lease by a wide margin, whatever the machine's load.
        db_latency: Duration::from_millis(700),
        fault_for: Duration::from_millis(2500),
        heal_for: Duration::from_millis(500),
        ..RunConfig::quick(design, vec![fault], seed)
    }
}

async fn run_checked(cfg: RunConfig) -> (Results, History) {
    let (out, history) = crate::verdict::run_recorded(&cfg).await;
    (out.results, history)
}

/// The `fire-<fault>` events of a history, as their details.
fn firings(h: &History, fault: Fault) -> Vec<serde_json::Value> {
    let f = format!("fire-{fault}");
    h.ops()
        .iter()
        .filter(|o| o.is_nemesis() && o.f.as_str() == f)
        .map(|o| {
            assert_eq!(o.kind, OpType::Info, "a firing is a lone info");
            o.value.detail.clone().expect("a firing names what it hit")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_writes_catches_lock_only_and_names_each_write_it_held() {
    let (r, h) = run_checked(config(DesignName::LockOnly, Fault::SlowWrites, 1)).await;
    assert_eq!(r.validity, Validity::Invalid, "{}", describe(&r));
    assert_eq!(
        checker(&r, "no-double-booking").validity,
        Validity::Invalid,
        "{}",
        describe(&r)
    );
    let fired = firings(&h, Fault::SlowWrites);
    assert!(
        fired.iter().any(|d| d["command"] == "INSERT"
            && d["kind"] == "write"
            && d["target"] == "bookings"
            && d["server"] == "postgres"),
        "{fired:?}"
    );
    assert!(fired.iter().any(|d| d["command"] == "COMMIT"), "{fired:?}");
    // Never a read or a BEGIN.
    assert!(
        fired
            .iter()
            .all(|d| d["command"] != "SELECT" && d["command"] != "BEGIN"),
        "{fired:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_writes_leaves_db_exclusion_valid() {
    let (r, h) = run_checked(config(DesignName::DbExclusion, Fault::SlowWrites, 2)).await;
    assert_eq!(r.validity, Validity::Valid, "{}", describe(&r));
    assert!(ok_books(&r) > 0, "{}", describe(&r));
    assert!(!firings(&h, Fault::SlowWrites).is_empty());
}

/// Every COMMIT answered in a window is lost: its booking exists, its user saw `info`,
/// and retried the same request.
fn lost_ack_config(idempotency: bool) -> RunConfig {
    let mut cfg = config(DesignName::DbExclusion, Fault::LostCommitAck, 7);
    cfg.retry = true;
    cfg.idempotency = idempotency;
    cfg.cancel_ratio = 0.0;
    // A hotel that never fills: the generator then never cancels to free nights, so a
    // booking whose answer was lost is still there for the final read.
    cfg.rooms = 300;
    cfg
}

/// The booking transaction that committed without its answer: an `info` book whose
/// request is in the final read.
fn committed_but_unanswered(h: &History) -> Vec<String> {
    let stored: std::collections::BTreeSet<&str> = h
        .final_read()
        .and_then(|i| h.ops()[i].value.bookings.as_ref())
        .into_iter()
        .flat_map(|rows| rows.iter().map(|b| b.request.as_str()))
        .collect();
    h.ops()
        .iter()
        .filter(|o| o.f == checkers::F::Book && o.kind == OpType::Info)
        .filter_map(|o| o.value.request.clone())
        .filter(|r| stored.contains(r.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_commit_ack_with_retries_and_no_keys_is_caught() {
    let (r, h) = run_checked(lost_ack_config(false)).await;
    assert!(!committed_but_unanswered(&h).is_empty(), "{}", describe(&r));
    assert!(!firings(&h, Fault::LostCommitAck).is_empty());
    assert_eq!(r.validity, Validity::Invalid, "{}", describe(&r));
    // The retry was told "not booked" for the booking its first attempt made.
    assert_eq!(
        checker(&r, "failed-is-absent").validity,
        Validity::Invalid,
        "{}",
        describe(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_commit_ack_with_idempotency_keys_stays_valid() {
    let (r, h) = run_checked(lost_ack_config(true)).await;
    assert!(!committed_but_unanswered(&h).is_empty(), "{}", describe(&r));
    assert_eq!(r.validity, Validity::Valid, "{}", describe(&r));
    assert!(ok_books(&r) > 0, "{}", describe(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_lock_grant_catches_lock_only() {
    let (r, h) = run_checked(config(DesignName::LockOnly, Fault::SlowLockGrant, 3)).await;
    let fired = firings(&h, Fault::SlowLockGrant);
    assert!(
        fired
            .iter()
            .any(|d| d["kind"] == "acquire" && d["server"] == "redis"),
        "{fired:?}"
    );
    assert_eq!(r.validity, Validity::Invalid, "{}", describe(&r));
    assert_eq!(
        checker(&r, "lock-exclusion").validity,
        Validity::Invalid,
        "{}",
        describe(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_renewal_catches_lock_renewal() {
    let (r, h) = run_checked(config(DesignName::LockRenewal, Fault::LostRenewal, 4)).await;
    assert_eq!(r.validity, Validity::Invalid, "{}", describe(&r));
    let fired = firings(&h, Fault::LostRenewal);
    assert!(
        fired.iter().any(|d| d["kind"] == "renew"
            && d["server"] == "redis"
            && d["target"]
                .as_str()
                .is_some_and(|k| k.starts_with("lock:room:"))),
        "{fired:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_renewal_leaves_lock_fencing_valid() {
    let (r, _) = run_checked(config(DesignName::LockFencing, Fault::LostRenewal, 5)).await;
    assert_eq!(r.validity, Validity::Valid, "{}", describe(&r));
    assert!(ok_books(&r) > 0, "{}", describe(&r));
}
