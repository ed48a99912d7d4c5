//! Nodes against real servers: each test starts its own Redis + Postgres on free ports and
//! drops them (servers stopped, temp dirs deleted) even when an assertion fails.

use std::time::Duration;

use crate::support::LogDir;
use harness::nodes::{Backend, Cluster, NodeError, NodeOptions};

async fn redis_ping(url: &str, timeout: Duration) -> Result<String, String> {
    let attempt = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| "timeout".to_string())?
}

fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    !matches!(state(pid), '?' | 'Z' | 'X')
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_does_not_answer_until_resumed() {
    let logs = LogDir::new("pause");
    let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let url = cluster.redis.url();
    assert_eq!(
        redis_ping(&url, Duration::from_secs(2)).await.unwrap(),
        "PONG"
    );

    cluster.redis.pause().await.unwrap();
    let paused = redis_ping(&url, Duration::from_millis(400)).await;
    assert_eq!(
        paused,
        Err("timeout".to_string()),
        "a SIGSTOPped redis must not answer"
    );
    // Past the proxy too: the server itself is frozen, not just the network.
    let direct = redis_ping(&cluster.redis.direct_url(), Duration::from_millis(300)).await;
    assert_eq!(direct, Err("timeout".to_string()));

    cluster.redis.resume().await.unwrap();
    assert_eq!(
        redis_ping(&url, Duration::from_secs(2)).await.unwrap(),
        "PONG"
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_postgres_freezes_open_connections_too() {
    let logs = LogDir::new("pause-db");
    let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let db = pg(&cluster.postgres.url()).await;
    db.simple_query("SELECT 1").await.unwrap();

    cluster.postgres.pause().await.unwrap();
    // The backend serving `db` left the postmaster's process group (setsid); it must be
    // frozen all the same, or a "paused" database would keep answering old connections.
    let postmaster = cluster.postgres.pid().unwrap();
    let backends = harness::nodes::process::children(postmaster);
    assert!(!backends.is_empty());
    for pid in backends.iter().copied().chain([postmaster]) {
        assert_eq!(
            state(pid),
            'T',
            "process {pid} of the paused server still runs"
        );
    }
    let query = db.simple_query("SELECT 1");
    tokio::pin!(query);
    assert!(
        tokio::time::timeout(Duration::from_millis(400), &mut query)
            .await
            .is_err(),
        "a paused postgres must not answer"
    );

    cluster.postgres.resume().await.unwrap();
    // The same query, held while paused, completes once resumed.
    tokio::time::timeout(Duration::from_secs(5), query)
        .await
        .unwrap()
        .unwrap();
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_postgres_restarts_with_its_committed_rows() {
    let logs = LogDir::new("kill");
    let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let db = pg(&cluster.postgres.url()).await;
    db.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);",
    )
    .await
    .unwrap();
    let pid = cluster.postgres.pid().unwrap();
    let backends = harness::nodes::process::children(pid);
    assert!(!backends.is_empty());

    cluster.postgres.kill().await.unwrap();
    assert!(cluster.postgres.pid().is_none());
    // Postmaster and every backend were SIGKILLed together: none lives on.
    assert!(!harness::nodes::process::signal_group(pid, 0));
    for b in backends {
        assert!(!alive(b), "backend {b} survived the kill");
    }
    assert!(
        db.simple_query("SELECT 1").await.is_err(),
        "the old connection died with the server"
    );
    assert!(matches!(
        cluster.postgres.pause().await,
        Err(NodeError::NotRunning { .. })
    ));

    cluster.postgres.restart().await.unwrap();
    let db = pg(&cluster.postgres.url()).await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100, "committed rows survive kill -9");
    let log = std::fs::read_to_string(cluster.postgres.log_path().unwrap()).unwrap();
    assert!(
        log.contains("database system was interrupted"),
        "restart ran crash recovery"
    );

    let temp = cluster.postgres.temp_dir().unwrap().to_path_buf();
    cluster.shutdown().await.unwrap();
    assert!(!temp.exists(), "shutdown deletes the temp dir");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_backend_proxies_but_refuses_process_faults() {
    let logs = LogDir::new("external");
    let owned = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let backend = Backend::External {
        redis_url: owned.redis.direct_url(),
        postgres_url: owned.postgres.direct_url(),
    };
    let external = Cluster::start(&backend, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    assert_ne!(external.redis.url(), owned.redis.url(), "its own proxy");
    assert_eq!(
        redis_ping(&external.redis.url(), Duration::from_secs(2))
            .await
            .unwrap(),
        "PONG"
    );
    let db = pg(&external.postgres.url()).await;
    let one: i32 = db.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    let err = external.postgres.pause().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "pause-db needs a backend that owns the server; --backend external does not"
    );
    assert!(matches!(
        external.redis.kill().await,
        Err(NodeError::Unsupported { .. })
    ));
    assert!(external.postgres.pid().is_none());

    external.shutdown().await.unwrap();
    // The external servers are not ours to stop.
    assert_eq!(
        redis_ping(&owned.redis.direct_url(), Duration::from_secs(2))
            .await
            .unwrap(),
        "PONG"
    );
    owned.shutdown().await.unwrap();
}

#[tokio::test]
async fn external_backend_reports_an_unreachable_server() {
    let logs = LogDir::new("unreachable");
    // A port nothing listens on: bound then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = Backend::External {
        redis_url: format!("redis://127.0.0.1:{port}/"),
        postgres_url: format!("host=127.0.0.1 port={port} user=postgres"),
    };
    let err = Cluster::start(&backend, &NodeOptions::new(&logs.0))
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::NotReady { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nemesis_follows_its_schedule_logs_each_fault_and_heals() {
    use std::sync::Arc;

    use checkers::{OpType, Process};
    use harness::nemesis::Fault;
    use harness::nemesis::{Nemesis, Schedule, Window};
    use harness::store::recorder::Recorder;

    let logs = LogDir::new("nemesis");
    let cluster = Arc::new(
        Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
            .await
            .unwrap(),
    );
    let recorder = Arc::new(
        Recorder::create(&logs.0.join("history.jsonl"), workloads::RunClock::start()).unwrap(),
    );
    let ms = Duration::from_millis;
    let schedule = Schedule {
        windows: vec![
            Window {
                fault: Fault::PauseRedis,
                start: ms(50),
                stop: ms(1000),
            },
            Window {
                fault: Fault::KillDb,
                start: ms(1050),
                stop: ms(1200),
            },
            Window {
                fault: Fault::PartitionRedis,
                start: ms(1250),
                stop: ms(30_000),
            },
        ],
    };
    let nemesis = Nemesis::new(
        schedule,
        harness::run::spec::RunSpec::default()
            .fault_params()
            .unwrap(),
        cluster.clone(),
        workloads::ClientPause::new(),
        recorder.clone(),
    );
    let status = nemesis.status();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(nemesis.run(stop_rx));

    // Poll rather than sleep a fixed time: how long a restart takes depends on the machine.
    let wait_for = |fault: Fault| {
        let status = status.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while status.current() != Some(fault) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{fault} never started"
                );
                tokio::time::sleep(ms(5)).await;
            }
        }
    };
    wait_for(Fault::PauseRedis).await;
    assert!(
        redis_ping(&cluster.redis.url(), ms(100)).await.is_err(),
        "redis is paused"
    );
    wait_for(Fault::PartitionRedis).await;
    // Stopping early heals the partition at once instead of waiting for its planned end.
    stop_tx.send(true).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(status.current(), None);
    assert_eq!(
        redis_ping(&cluster.redis.url(), ms(2000)).await.unwrap(),
        "PONG"
    );
    let db = pg(&cluster.postgres.url()).await;
    db.simple_query("SELECT 1").await.unwrap();

    recorder.finish().unwrap();
    let file = std::fs::File::open(logs.0.join("history.jsonl")).unwrap();
    let ops = checkers::read_history(std::io::BufReader::new(file))
        .unwrap()
        .into_ops();
    let names: Vec<(String, OpType)> = ops.iter().map(|o| (o.f.to_string(), o.kind)).collect();
    let expected: Vec<(String, OpType)> = [
        "start-pause-redis",
        "stop-pause-redis",
        "start-kill-db",
        "stop-kill-db",
        "start-partition-redis",
        "stop-partition-redis",
    ]
    .iter()
    .flat_map(|n| {
        [
            (n.to_string(), OpType::Invoke),
            (n.to_string(), OpType::Info),
        ]
    })
    .collect();
    assert_eq!(names, expected);
    assert!(ops
        .iter()
        .all(|o| o.process == Process::Nemesis && o.error.is_none()));
    let detail = ops[0].value.detail.as_ref().unwrap();
    assert_eq!(detail["signal"], "SIGSTOP");
    assert_eq!(detail["target"], "redis");
    // The partition ended by the stop signal, well before its planned end at 30 s.
    assert!(ops.last().unwrap().time < 25_000_000_000);
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_forgets_its_keys_unless_it_runs_with_aof() {
    async fn set_kill_get(aof: bool) -> Option<String> {
        let logs = LogDir::new(if aof { "aof" } else { "no-aof" });
        let mut opts = NodeOptions::new(&logs.0);
        opts.redis_aof = aof;
        let cluster = Cluster::start(&Backend::Local, &opts).await.unwrap();
        let client = redis::Client::open(cluster.redis.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg("room:101")
            .arg("holder-a")
            .query_async(&mut con)
            .await
            .unwrap();
        cluster.redis.kill().await.unwrap();
        cluster.redis.restart().await.unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let value: Option<String> = redis::cmd("GET")
            .arg("room:101")
            .query_async(&mut con)
            .await
            .unwrap();
        cluster.shutdown().await.unwrap();
        value
    }
    // Without persistence a crash frees every lock: a second holder can take it at once.
    assert_eq!(set_kill_get(false).await, None);
    assert_eq!(set_kill_get(true).await.as_deref(), Some("holder-a"));
}
