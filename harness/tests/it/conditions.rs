//! Runs that did not test what they claim are not VALID: a fault that cannot fit or never fired,
//! no booking completed, clients that could not connect (issue 13).

use crate::support::*;
use checkers::Validity;
use harness::nemesis::Fault;
use harness::nodes::{Backend, Cluster, NodeOptions};
use harness::run::{run, RunConfig};
use std::time::Duration;
use workloads::DesignName;

// ---- 1. faults that cannot or did not fire -------------------------------------------

#[test]
fn a_fault_schedule_that_cannot_fit_is_refused_before_anything_starts() {
    let store = TempDir::new("nofit");
    // The example: 20 s of health then 40 s windows do not fit in 8 s. The fault
    // is named: the default is now slow-writes, the run used db-latency.
    let out = overbook(&[
        "run",
        "--fault",
        "db-latency",
        "--lock-ttl",
        "5s",
        "--db-latency",
        "6s",
        "--time-limit",
        "8s",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("no window of db-latency fits in --time-limit 8000ms"),
        "{}",
        show(&out)
    );
    assert!(
        std::fs::read_dir(&store.0).unwrap().next().is_none(),
        "nothing was started or written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_requested_fault_that_never_fired_makes_the_run_unknown() {
    // pause-db asked of servers overbook does not own: the nemesis refuses it before
    // its first window, so it never fires, while clients run normally. (The CLI refuses
    // this combination up front; the library run is how a fault fails to fire.)
    let logs = TempDir::new("unfired-logs");
    let owned = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let store = TempDir::new("unfired");
    let cfg = RunConfig {
        store: store.0.clone(),
        backend: Backend::External {
            redis_url: owned.redis.direct_url(),
            postgres_url: owned.postgres.direct_url(),
        },
        ..RunConfig::quick(DesignName::DbUnique, vec![Fault::PauseDb], 1)
    };
    let out = run(&cfg).await.unwrap();
    crate::verdict::assert_check_agrees(&out.dir.path);
    owned.shutdown().await.unwrap();
    let unstruck: Vec<&str> = out
        .conditions
        .unstruck()
        .map(|f| f.fault.as_str())
        .collect();
    assert_eq!(unstruck, ["pause-db"]);
    assert_eq!(out.results.validity, Validity::Unknown);
    let check = conditions(&out.results);
    assert_eq!(check.validity, Validity::Unknown);
    assert!(
        check
            .summary
            .contains("pause-db: requested but no window opened"),
        "{}",
        check.summary
    );
    // The same in results.json, for CI tooling.
    assert_eq!(read_results(&out.dir.path).validity, Validity::Unknown);
}

#[test]
fn a_canary_run_without_faults_says_no_fault_ran() {
    let store = TempDir::new("nofault");
    let out = overbook(&[
        "run",
        "--design",
        "db-unique",
        "--fault",
        "none",
        "--expect",
        "invalid",
        // Long enough for 4 users to confirm the 2 bookings a verdict needs even on a
        // loaded machine; the assertion is on the words, not on any timing.
        "--concurrency",
        "4",
        "--time-limit",
        "5s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains("the canary did not sing")
            && stdout(&out).contains("no fault ran (--fault none)"),
        "{}",
        show(&out)
    );
}

// ---- 2. nothing completed ------------------------------------------------------------

#[test]
fn a_run_that_completed_no_booking_is_not_valid() {
    let store = TempDir::new("noop");
    let out = overbook(&[
        "run",
        "--fault",
        "none",
        "--op-timeout",
        "0ms",
        "--time-limit",
        "1s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stdout(&out).contains("UNKNOWN"), "{}", show(&out));
    assert!(
        stderr(&out).contains("only 0 bookings confirmed"),
        "{}",
        show(&out)
    );
    let results = read_results(&run_dir(&store.0, "lock-only-none"));
    assert_eq!(results.validity, Validity::Unknown);
}

// ---- 3. clients that could not connect -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_could_not_connect_are_counted_and_mostly_failing_is_unknown() {
    // A server with 8 connections (3 of them reserved) for 32 users: most of them meet
    // "too many clients" on every attempt, for the whole run. (With 16 users the
    // fraction sat at the border of "most": whether 8 or 9 got in depended on how many
    // connections the harness itself held at that moment.)
    let logs = TempDir::new("tooMany-logs");
    let owned = Cluster::start(
        &Backend::Local,
        &NodeOptions {
            max_connections: 8,
            ..NodeOptions::new(&logs.0)
        },
    )
    .await
    .unwrap();
    let store = TempDir::new("tooMany");
    let mut cfg = RunConfig {
        store: store.0.clone(),
        backend: Backend::External {
            redis_url: owned.redis.direct_url(),
            postgres_url: owned.postgres.direct_url(),
        },
        ..RunConfig::quick(DesignName::DbUnique, vec![Fault::None], 3)
    };
    cfg.concurrency = 32;
    cfg.time_limit = Duration::from_secs(3);
    let out = run(&cfg).await.unwrap();
    crate::verdict::assert_check_agrees(&out.dir.path);
    owned.shutdown().await.unwrap();
    let c = &out.conditions;
    assert!(c.never_connected.is_some_and(|n| n * 2 >= 32), "{c:?}");
    assert!(c.open_failures > c.sessions, "{c:?}");
    assert!(
        c.first_open_error
            .as_deref()
            .is_some_and(|e| e.contains("too many clients")),
        "{c:?}"
    );
    assert_eq!(out.results.validity, Validity::Unknown);
    let check = conditions(&out.results);
    assert!(
        check.summary.contains("most clients could not connect"),
        "{}",
        check.summary
    );
}
