//! The fault proxy in front of a real Redis: each fault is observed by a real client,
//! on connections opened before the fault was switched on.

use std::time::{Duration, Instant};

use crate::support::LogDir;
use harness::nodes::proxy::ProxyFaults;
use harness::nodes::{Backend, Cluster, NodeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn redis_only(name: &str) -> (LogDir, Cluster) {
    let logs = LogDir::new(&format!("proxy-{name}"));
    let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    (logs, cluster)
}

/// A raw RESP connection: one command, one reply line.
struct Conn(TcpStream);

impl Conn {
    /// Connects through the proxy and logs in with the run's password (every server
    /// overbook starts requires it), before any fault is switched on.
    async fn open(cluster: &Cluster) -> Conn {
        let mut conn = Conn::open_sending_auth(cluster).await;
        let ok = conn.lines(1, Duration::from_secs(10)).await.unwrap();
        assert_eq!(ok, ["+OK"]);
        conn
    }

    /// Connects and sends AUTH without waiting for its `+OK` (the proxy may be holding
    /// everything back).
    async fn open_sending_auth(cluster: &Cluster) -> Conn {
        let mut conn = Conn(
            TcpStream::connect(cluster.redis.proxy().addr())
                .await
                .unwrap(),
        );
        let password = cluster.redis.password().expect("a password").to_string();
        conn.send(&format!("AUTH {password}")).await.unwrap();
        conn
    }

    async fn send(&mut self, cmd: &str) -> std::io::Result<()> {
        let parts: Vec<&str> = cmd.split(' ').collect();
        let mut out = format!("*{}\r\n", parts.len());
        for p in parts {
            out.push_str(&format!("${}\r\n{p}\r\n", p.len()));
        }
        self.0.write_all(out.as_bytes()).await
    }

    /// Reads until `n` reply lines have arrived.
    async fn lines(&mut self, n: usize, timeout: Duration) -> Result<Vec<String>, String> {
        let mut text = String::new();
        let read = async {
            let mut buf = [0u8; 4096];
            while text.matches("\r\n").count() < n {
                let k = self.0.read(&mut buf).await.map_err(|e| e.to_string())?;
                if k == 0 {
                    return Err("closed".to_string());
                }
                text.push_str(&String::from_utf8_lossy(&buf[..k]));
            }
            Ok(())
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| "timeout".to_string())??;
        Ok(text.lines().map(str::to_string).collect())
    }

    async fn call(&mut self, cmd: &str, timeout: Duration) -> Result<String, String> {
        self.send(cmd).await.map_err(|e| e.to_string())?;
        Ok(self.lines(1, timeout).await?.remove(0))
    }
}

const LONG: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_every_round_trip_by_at_least_the_setting() {
    let (_dir, cluster) = redis_only("latency").await;
    let mut conn = Conn::open(&cluster).await;
    assert_eq!(conn.call("PING", LONG).await.unwrap(), "+PONG");

    let latency = Duration::from_millis(150);
    cluster
        .redis
        .proxy()
        .set(ProxyFaults::latency(latency, Duration::from_millis(30)));
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(conn.call("PING", LONG).await.unwrap(), "+PONG");
        assert!(
            t.elapsed() >= latency,
            "round trip {:?} < {latency:?}",
            t.elapsed()
        );
    }
    // Latency both ways adds up.
    cluster.redis.proxy().set(ProxyFaults {
        up_latency: latency,
        down_latency: latency,
        ..ProxyFaults::default()
    });
    let t = Instant::now();
    conn.call("PING", LONG).await.unwrap();
    assert!(t.elapsed() >= latency * 2);
    cluster.redis.proxy().heal();
    assert_eq!(conn.call("PING", LONG).await.unwrap(), "+PONG");
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jittered_latency_keeps_byte_order() {
    let (_dir, cluster) = redis_only("order").await;
    let mut conn = Conn::open(&cluster).await;
    cluster.redis.proxy().set(ProxyFaults::latency(
        Duration::from_millis(20),
        Duration::from_millis(20),
    ));
    // Each command is its own chunk, each drawing its own jitter: a reordering relay would
    // corrupt the RESP stream or return the counts out of order.
    for _ in 0..100 {
        conn.send("INCR order").await.unwrap();
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    let replies = conn.lines(100, LONG).await.unwrap();
    let expected: Vec<String> = (1..=100).map(|i| format!(":{i}")).collect();
    assert_eq!(replies, expected);
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_stalls_open_and_new_connections_until_healed() {
    let (_dir, cluster) = redis_only("blackhole").await;
    let mut open = Conn::open(&cluster).await;
    assert_eq!(open.call("PING", LONG).await.unwrap(), "+PONG");

    cluster.redis.proxy().set(ProxyFaults::partition());
    let short = Duration::from_millis(300);
    assert_eq!(open.call("SET k v", short).await, Err("timeout".into()));
    let mut fresh = Conn::open_sending_auth(&cluster).await;
    assert_eq!(fresh.call("PING", short).await, Err("timeout".into()));

    cluster.redis.proxy().heal();
    // The held bytes are delivered after the partition, as TCP would retransmit them.
    assert_eq!(open.lines(1, LONG).await.unwrap(), vec!["+OK".to_string()]);
    assert_eq!(
        fresh.lines(2, LONG).await.unwrap(),
        vec!["+OK".to_string(), "+PONG".to_string()]
    );
    assert_eq!(open.call("GET k", LONG).await.unwrap(), "$1");
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_drops_open_connections_and_new_ones_work() {
    let (_dir, cluster) = redis_only("reset").await;
    let mut a = Conn::open(&cluster).await;
    let mut b = Conn::open(&cluster).await;
    a.call("PING", LONG).await.unwrap();
    b.call("PING", LONG).await.unwrap();
    assert_eq!(cluster.redis.proxy().open_connections(), 2);

    cluster.redis.proxy().reset_connections();
    for conn in [&mut a, &mut b] {
        let res = conn.call("PING", LONG).await;
        assert!(res.is_err(), "a reset connection must not answer: {res:?}");
    }
    let mut c = Conn::open(&cluster).await;
    assert_eq!(c.call("PING", LONG).await.unwrap(), "+PONG");
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limit_slows_a_large_write() {
    let (_dir, cluster) = redis_only("bandwidth").await;
    let mut conn = Conn::open(&cluster).await;
    let value = "x".repeat(300_000);
    cluster.redis.proxy().set(ProxyFaults {
        bandwidth: Some(1_000_000),
        ..ProxyFaults::default()
    });
    let t = Instant::now();
    assert_eq!(
        conn.call(&format!("SET big {value}"), LONG).await.unwrap(),
        "+OK"
    );
    // 300 kB at 1 MB/s: the last byte cannot leave before ~0.3 s.
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "took {:?}",
        t.elapsed()
    );
    cluster.shutdown().await.unwrap();
}
