//! Lock services beyond one Redis (docs/locks.md), whole runs against real topologies:
//! one Redis, Sentinel (a primary, a replica, three sentinels) and Redlock (five nodes).
//!
//! Each race is made to happen, never waited for: `clock-jump-redis` strikes while a
//! lease holder's INSERT is held in the proxy (half a lease, which alone breaks
//! nothing), `failover-redis` cuts replication before any grant it strikes after, and on
//! Redlock the jumped node's two neighbours are partitioned for the struck holder's
//! acquisition, so its majority is exactly the jumped node and the two before it.
//! `client-pause` stops the holder longer than its whole lease. Every test also checks
//! that no server of its run is left running.

use crate::verdict::{checker, describe, ok_books};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::store;
use checkers::{History, OpType, Results, Validity};
use harness::nemesis::Fault;
use harness::run::RunConfig;
use workloads::{DesignName, LockService};

/// A quick run on `lock` whose fault window covers most of it; lock-exclusion decides
/// (the lease overlap is what the fault makes, a double booking may follow or not).
fn config(design: DesignName, fault: Fault, lock: LockService, seed: u64) -> RunConfig {
    RunConfig {
        store: store("locks"),
        command: "cargo test".into(),
        fault_for: Duration::from_millis(3500),
        heal_for: Duration::from_millis(500),
        strict_lock: true,
        lock_service: lock,
        ..RunConfig::quick(design, vec![fault], seed)
    }
}

/// Redlock with a 1 s lease: each node gets a fifth of it to answer (a loaded machine
/// must not turn healthy nodes into down ones), and the validity left is still most of
/// the lease.
fn redlock_config(design: DesignName, fault: Fault, seed: u64) -> RunConfig {
    RunConfig {
        lock_ttl: Duration::from_secs(1),
        client_pause: Duration::from_millis(2500),
        ..config(design, fault, LockService::Redlock, seed)
    }
}

/// Sentinel needs a lease longer than a failover (the sentinels wait a second before
/// calling the primary down, then agree and promote, about a second more): a 12 s lease,
/// whose holder's INSERT is held 6 s, leaves the promoted replica's users seconds to
/// take the lease while the first holder still works, however loaded the machine.
///
/// One room and a calendar that never fills. With three rooms a lease held across the
/// kill could be on a cold room: once the replica was promoted, the first users to
/// reach it took the other rooms' leases, the rest queued behind those holders' held
/// INSERTs (a waiter waits up to two 12 s leases), and nobody asked for the cold room
/// before its holder was done: failed over, nothing overlapped (seen locally and in
/// containers). With one room every user waits for the struck lease, so the first to
/// reach the promoted replica takes it while its first holder's INSERT is still held.
fn failover_config(design: DesignName, seed: u64) -> RunConfig {
    RunConfig {
        rooms: 1,
        window_days: 3650,
        lock_ttl: Duration::from_secs(12),
        time_limit: Duration::from_secs(12),
        fault_for: Duration::from_secs(10),
        op_timeout: Duration::from_secs(30),
        ..config(design, Fault::FailoverRedis, LockService::Sentinel, seed)
    }
}

/// Runs `cfg`, checks that nothing of it is left running, and returns its verdict and
/// history.
async fn run_checked(cfg: RunConfig) -> (Results, History) {
    let (out, history) = crate::verdict::run_recorded(&cfg).await;
    assert_nothing_left_running(&out.dir.path);
    (out.results, history)
}

/// Every server a run starts writes its output to a log in the run's dir: no process may
/// still hold one open (a redis-server, a sentinel or a postgres left behind).
fn assert_nothing_left_running(run_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_writing_into(run_dir);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left running after the run: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn processes_writing_into(dir: &Path) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(out) = std::fs::read_link(format!("/proc/{pid}/fd/1")) else {
            continue;
        };
        if out.starts_with(dir) {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            found.push((pid, cmd));
        }
    }
    found
}

/// The `fire-<fault>` events of a history, as their details.
pub(crate) fn firings(h: &History, fault: Fault) -> Vec<serde_json::Value> {
    let f = format!("fire-{fault}");
    h.ops()
        .iter()
        .filter(|o| o.is_nemesis() && o.f.as_str() == f && o.kind == OpType::Info)
        .filter_map(|o| o.value.detail.clone())
        .collect()
}

/// The strike a fault logged after a held INSERT: its firing detail.
pub(crate) fn strike(h: &History, fault: Fault, action: &str) -> serde_json::Value {
    let fired = firings(h, fault);
    fired
        .iter()
        .find(|d| d["action"] == action)
        .cloned()
        .unwrap_or_else(|| panic!("no {action} firing: {fired:?}"))
}

fn assert_caught(r: &Results) {
    assert_eq!(
        checker(r, "lock-exclusion").validity,
        Validity::Invalid,
        "{}",
        describe(r)
    );
    assert_eq!(r.validity, Validity::Invalid, "{}", describe(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_lock_only_is_caught_by_clock_jump_redis() {
    // One room and a calendar that never fills, as on Redlock: a contender is always
    // there when the jump frees the lease.
    let cfg = RunConfig {
        rooms: 1,
        window_days: 3650,
        ..config(
            DesignName::LockOnly,
            Fault::ClockJumpRedis,
            LockService::Single,
            21,
        )
    };
    let (r, h) = run_checked(cfg).await;
    let jumped = strike(&h, Fault::ClockJumpRedis, "jumped");
    assert_eq!(jumped["target"].as_str().map(|t| &t[..6]), Some("node 0"));
    // The struck holder's lease was among the keys the jump expired.
    assert!(
        !jumped["command"]
            .as_str()
            .unwrap_or("")
            .contains(": 0 keys expired"),
        "{jumped}"
    );
    assert_caught(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_lock_only_is_caught_by_failover_redis() {
    let (r, h) = run_checked(failover_config(DesignName::LockOnly, 22)).await;
    let killed = strike(&h, Fault::FailoverRedis, "killed");
    assert_eq!(killed["kind"], "failover", "{killed}");
    assert_caught(&r);
}

/// docs/locks.md's one-liner, with no other flag than a shorter run: the failover's own
/// defaults (a 12 s lease, one window holding the struck work and the failover, one room)
/// make the lock fail every time, and lock-only trusts its lock. A lease the failover
/// cannot strike is refused before anything starts, with one that works.
#[test]
fn sentinel_one_liner_catches_lock_only_under_failover_by_default() {
    use crate::support::{overbook, show};
    let store = store("locks").join("one-liner");
    let store_s = store.to_str().unwrap();
    let line = [
        "run",
        "--lock-service",
        "sentinel",
        "--fault",
        "failover-redis",
        "--design",
        "lock-only",
    ];
    let out = overbook(
        &[
            &line[..],
            &["--time-limit", "12s", "--quiet", "--store", store_s],
        ]
        .concat(),
    );
    let dir = std::fs::read_link(store.join("latest"))
        .map(|l| store.join(l))
        .unwrap_or_else(|e| panic!("no run dir ({e})\n{}", show(&out)));
    let r: Results =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let file = std::fs::File::open(dir.join("history.jsonl")).unwrap();
    let h = checkers::read_history(std::io::BufReader::new(file)).unwrap();
    assert_nothing_left_running(&dir);
    let killed = strike(&h, Fault::FailoverRedis, "killed");
    assert_eq!(killed["kind"], "failover", "{killed}");
    assert_caught(&r);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    let out = overbook(&[&line[..], &["--lock-ttl", "500ms", "--store", store_s]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--lock-ttl 500ms is too short for failover-redis")
            && err.contains("--lock-ttl 12000ms"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redlock_lock_only_is_caught_by_client_pause() {
    // 2.5 s of pause against a 1 s lease: the holder wakes past its validity on every
    // node, and the next user has long built its own majority.
    let cfg = redlock_config(DesignName::LockOnly, Fault::ClientPause, 23);
    let (r, _) = run_checked(cfg).await;
    assert_caught(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redlock_lock_only_is_caught_by_clock_jump_redis_on_a_majority_member() {
    // One room, so every user contends for the struck lease the moment the jump frees
    // it on node 2 (with three rooms nobody might ask for that room while the holder's
    // INSERT is held: seen once in a full suite); a long calendar so it never fills.
    let cfg = RunConfig {
        fault_node: Some(2),
        rooms: 1,
        window_days: 3650,
        ..redlock_config(DesignName::LockOnly, Fault::ClockJumpRedis, 24)
    };
    let (r, h) = run_checked(cfg).await;
    let jumped = strike(&h, Fault::ClockJumpRedis, "jumped");
    assert_eq!(jumped["target"].as_str().map(|t| &t[..6]), Some("node 2"));
    let start = h
        .ops()
        .iter()
        .find(|o| o.f.as_str() == "start-clock-jump-redis")
        .and_then(|o| o.value.detail.clone())
        .expect("the window's start names its node");
    assert_eq!(
        (start["lock_service"].as_str(), start["node"].as_u64()),
        (Some("redlock"), Some(2))
    );
    assert_caught(&r);
}

/// A minority node down costs Redlock nothing: bookings go on, and nothing is broken.
/// A 3 s lease: no critical section outlives it however loaded the machine, so any
/// overlap would be Redlock's.
///
/// The window is long and starts late. While node 4 is paused each new session waits a
/// second for it, and each acquisition and release waits its node timeout (600 ms), so
/// the first grant comes over a second after the clients start and then about two a
/// second (against dozens a second with the node killed: it refuses at once). One run
/// at load 13 had its only grant 10 ms before the heal: its windows then still counted
/// from before setup (1.8 s of it), which they no longer do. A healthy 1.5 s first lets
/// the sessions open on five live nodes, and a window of at least 4.5 s leaves seconds
/// of working clients under the fault.
async fn redlock_survives_on_a_minority(fault: Fault, seed: u64) {
    let cfg = RunConfig {
        fault_node: Some(4),
        lock_ttl: Duration::from_secs(3),
        heal_for: Duration::from_millis(1500),
        fault_for: Duration::from_secs(6),
        time_limit: Duration::from_secs(9),
        ..redlock_config(DesignName::LockOnly, fault, seed)
    };
    let (r, h) = run_checked(cfg).await;
    assert_eq!(r.validity, Validity::Valid, "{}", describe(&r));
    // Leases were granted while node 4 was down, not only before and after: the lock
    // service kept working (whether the room was then free is the hotel's business).
    let (start, stop) = window(&h, fault);
    let granted = h
        .ops()
        .iter()
        .filter(|o| o.f == checkers::F::Book && o.kind != OpType::Invoke)
        .filter_map(|o| o.value.trace.as_ref()?.lock_acquired)
        .filter(|&t| t > start && t < stop)
        .count();
    assert!(
        granted > 0,
        "no lease granted during {fault}: {}",
        describe(&r)
    );
}

/// The run-clock times of the fault's first window (its start and stop events).
fn window(h: &History, fault: Fault) -> (u64, u64) {
    let at = |name: String| {
        h.ops()
            .iter()
            .find(|o| o.f.as_str() == name && o.kind == OpType::Info)
            .map(|o| o.time)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    (at(format!("start-{fault}")), at(format!("stop-{fault}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redlock_keeps_working_with_a_minority_node_paused() {
    redlock_survives_on_a_minority(Fault::PauseRedis, 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redlock_keeps_working_with_a_minority_node_killed() {
    redlock_survives_on_a_minority(Fault::KillRedis, 26).await;
}

/// The lesson: whatever the lock service does, a database that holds the invariant
/// keeps it. db-unique (a lease over a unique index) under each service's own fault
/// stays valid. (db-exclusion takes no lease: a lock fault cannot strike it, and such a
/// run is refused, or unknown, rather than counted as held.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_guard_stays_valid_on_every_lock_service_under_its_faults() {
    let runs = [
        config(
            DesignName::DbUnique,
            Fault::ClockJumpRedis,
            LockService::Single,
            27,
        ),
        RunConfig {
            fault_node: Some(2),
            ..redlock_config(DesignName::DbUnique, Fault::ClockJumpRedis, 28)
        },
        failover_config(DesignName::DbUnique, 29),
    ];
    for cfg in runs {
        let lock = cfg.lock_service;
        // The lease's failures are the lesson here, not a verdict: the database decides.
        let cfg = RunConfig {
            strict_lock: false,
            ..cfg
        };
        let (r, h) = run_checked(cfg).await;
        assert_eq!(r.validity, Validity::Valid, "{lock}: {}", describe(&r));
        assert!(
            matches!(
                r.headline,
                checkers::Headline::AllHeld | checkers::Headline::LockFailedDatabaseHeld
            ),
            "{lock}: {:?}",
            r.headline
        );
        assert!(ok_books(&r) > 0, "{lock}: {}", describe(&r));
        assert!(
            !firings(&h, h_fault(&h)).is_empty(),
            "{lock}: nothing fired"
        );
    }
}

/// The fault of a single-fault history.
fn h_fault(h: &History) -> Fault {
    h.ops()
        .iter()
        .find_map(|o| o.f.as_str().strip_prefix("start-"))
        .and_then(|name| name.parse().ok())
        .expect("a fault window")
}

/// The topologies in containers (the docker backend, offline images; skipped with the
/// reason when there is no engine): each node its own container at a fixed address on
/// the run's network, Sentinel naming those addresses, process faults through the engine
/// (`docker kill`, the freezer), the rest through each node's proxy as locally. The
/// scenarios are the local ones, aimed the same way.
mod in_containers {
    use super::*;
    use crate::docker::{ours_left, turn};
    use harness::nodes::Backend;

    fn in_docker(images: harness::nodes::docker::Images, cfg: RunConfig) -> RunConfig {
        RunConfig {
            backend: Backend::Docker { images },
            ..cfg
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sentinel_lock_only_is_caught_by_failover_redis() {
        let Some((_turn, images)) = turn().await else {
            return;
        };
        let cfg = in_docker(images, failover_config(DesignName::LockOnly, 22));
        let (r, h) = run_checked(cfg).await;
        let killed = strike(&h, Fault::FailoverRedis, "killed");
        assert_eq!(killed["kind"], "failover", "{killed}");
        assert_caught(&r);
        assert_eq!(ours_left().await, Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redlock_lock_only_is_caught_by_clock_jump_redis_on_a_majority_member() {
        let Some((_turn, images)) = turn().await else {
            return;
        };
        let cfg = RunConfig {
            fault_node: Some(2),
            rooms: 1,
            window_days: 3650,
            ..redlock_config(DesignName::LockOnly, Fault::ClockJumpRedis, 24)
        };
        let (r, h) = run_checked(in_docker(images, cfg)).await;
        let jumped = strike(&h, Fault::ClockJumpRedis, "jumped");
        assert_eq!(jumped["target"].as_str().map(|t| &t[..6]), Some("node 2"));
        assert_caught(&r);
        assert_eq!(ours_left().await, Vec::<String>::new());
    }

    /// A frozen container is a minority node down: db-exclusion stays valid and
    /// bookings go on (the freezer, not a signal, stops node 4).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn db_exclusion_stays_valid_on_redlock_with_a_minority_container_paused() {
        let Some((_turn, images)) = turn().await else {
            return;
        };
        let cfg = RunConfig {
            fault_node: Some(4),
            lock_ttl: Duration::from_secs(3),
            ..redlock_config(DesignName::DbExclusion, Fault::PauseRedis, 25)
        };
        let (r, h) = run_checked(in_docker(images, cfg)).await;
        assert_eq!(r.validity, Validity::Valid, "{}", describe(&r));
        assert!(ok_books(&r) > 0, "{}", describe(&r));
        let start = h
            .ops()
            .iter()
            .find(|o| o.f.as_str() == "start-pause-redis")
            .and_then(|o| o.value.detail.clone())
            .expect("the window's start names its node");
        assert_eq!(
            (start["lock_service"].as_str(), start["node"].as_u64()),
            (Some("redlock"), Some(4)),
            "{start}"
        );
        // Valid includes run-conditions: the pause was applied ("fired"), or no verdict.
        assert_eq!(
            checker(&r, "run-conditions").validity,
            Validity::Valid,
            "{}",
            describe(&r)
        );
        assert_eq!(ours_left().await, Vec::<String>::new());
    }
}
