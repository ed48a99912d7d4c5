//! The booking designs against real servers: deterministic races that show which designs
//! double-book and which hold.
//!
//! Each test starts its own Redis + Postgres (behind fault proxies) and forces one race
//! by construction rather than by luck: a client pause longer than the lease, a database
//! link slower than the lease, or several clients whose transactions overlap because
//! every round trip is slowed down. The servers and temp dirs go away on drop, even when
//! an assertion fails.

use std::time::Duration;

use crate::support::LogDir;
use checkers::{BookingRow, Date, OpType};
use harness::nemesis::faults::slow_writes::HeldStatements;
use harness::nodes::aim::Firings;
use harness::nodes::proxy::ProxyFaults;
use harness::nodes::{Backend, Cluster, NodeOptions};
use workloads::{BookRequest, Client, ClientPause, Config, DesignName, Outcome, RunClock};

/// Servers, a direct Postgres session for setup and the final read, and the run config.
/// Field order matters: the cluster is dropped (servers stopped) before the log dir.
struct Env {
    pg: tokio_postgres::Client,
    cluster: Cluster,
    cfg: Config,
    /// Where aimed faults report (not read: these tests look at outcomes).
    firings: Firings,
    _logs: LogDir,
}

impl Env {
    async fn start(name: &str, lock_ttl: Duration) -> Env {
        let logs = LogDir::new(&format!("designs-{name}"));
        let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
            .await
            .expect("start redis + postgres");
        let (pg, conn) =
            tokio_postgres::connect(&cluster.postgres.direct_url(), tokio_postgres::NoTls)
                .await
                .expect("connect to postgres directly");
        tokio::spawn(conn);
        let mut cfg = Config::new(RunClock::start(), ClientPause::new());
        cfg.lock_ttl = lock_ttl;
        cfg.rooms = 5;
        Env {
            pg,
            cluster,
            cfg,
            firings: Firings::new(),
            _logs: logs,
        }
    }

    /// Fresh schema for `design`, and `n` clients connected through the proxies.
    async fn clients(&self, design: DesignName, n: usize) -> Vec<Client> {
        // Setup creates, never drops: empty the run's own schema first.
        self.cluster
            .recreate_schema()
            .await
            .expect("empty the schema");
        workloads::setup(design, &self.pg, &self.cfg)
            .await
            .unwrap_or_else(|e| panic!("setup {design}: {e}"));
        let mut clients = Vec::new();
        for _ in 0..n {
            let c = Client::connect(
                design,
                self.cfg.clone(),
                &self.cluster.postgres.url(),
                &self.cluster.redis.url(),
            )
            .await
            .unwrap_or_else(|e| panic!("connect {design}: {e}"));
            clients.push(c);
        }
        clients
    }

    async fn rows(&self, design: DesignName) -> Vec<BookingRow> {
        workloads::read_all(design, &self.pg)
            .await
            .expect("final read")
    }

    /// Every round trip on the Postgres link takes at least `d` while the guard lives.
    fn slow_db(&self, d: Duration) -> SlowDb<'_> {
        self.cluster
            .postgres
            .proxy()
            .set(ProxyFaults::latency(d, Duration::ZERO));
        SlowDb(&self.cluster)
    }
}

impl Env {
    /// Only the writes (and COMMITs) on the Postgres link are held for `d` while the guard
    /// lives; reads and BEGIN go at full speed (the aimed `slow-writes`).
    fn slow_writes(&self, d: Duration) -> SlowDb<'_> {
        self.cluster
            .postgres
            .proxy()
            .aim(
                HeldStatements {
                    hold: d,
                    jitter: Duration::ZERO,
                    also: None,
                    inserts_only: false,
                },
                &self.firings,
            )
            .expect("the postgres proxy follows its protocol");
        SlowDb(&self.cluster)
    }
}

/// Heals the Postgres link on drop.
#[must_use]
struct SlowDb<'a>(&'a Cluster);

impl Drop for SlowDb<'_> {
    fn drop(&mut self) {
        self.0.postgres.proxy().heal();
    }
}

fn day(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn stay(room: u64, from: &str, to: &str, request: &str) -> BookRequest {
    BookRequest {
        room,
        from: day(from),
        to: day(to),
        request: request.to_string(),
    }
}

/// Books `req` on `client` in its own task, `delay` from now.
fn book_later(
    mut client: Client,
    req: BookRequest,
    delay: Duration,
) -> tokio::task::JoinHandle<(Client, Outcome)> {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let outcome = client.book(&req).await;
        (client, outcome)
    })
}

/// Every client books the same stay (its own request key) at the same moment.
async fn race(clients: Vec<Client>, room: u64) -> Vec<Outcome> {
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            book_later(
                c,
                stay(room, "2026-12-10", "2026-12-13", &format!("r-{i}")),
                Duration::ZERO,
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("booking task").1);
    }
    outcomes
}

fn count(outcomes: &[Outcome], kind: OpType) -> usize {
    outcomes.iter().filter(|o| o.kind == kind).count()
}

fn describe(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(|o| format!("{:?} {:?} {:?}", o.kind, o.error, o.value.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_design_books_refuses_overlaps_and_cancels() {
    let env = Env::start("basic", Duration::from_millis(500)).await;
    for &design in DesignName::all() {
        let mut c = env.clients(design, 1).await.remove(0);
        let first = c.book(&stay(101, "2026-12-01", "2026-12-04", "r-1")).await;
        assert_eq!(first.kind, OpType::Ok, "{design}: {first:?}");
        let id = first.value.booking.expect("ok carries the booking id");
        let trace = first.trace().expect("trace");
        assert!(
            trace.db_begin <= trace.db_commit && trace.db_commit.is_some(),
            "{design}: {trace:?}"
        );
        assert!(trace.confirmed.is_some(), "{design}: {trace:?}");
        assert_eq!(
            trace.lock_key.is_some(),
            design.uses_lock(),
            "{design}: {trace:?}"
        );
        if design.uses_lock() {
            assert_eq!(trace.lock_key.as_deref(), Some("room:101"));
            assert!(
                trace.lock_acquired < trace.lock_released,
                "{design}: {trace:?}"
            );
        }

        let overlap = c.book(&stay(101, "2026-12-03", "2026-12-05", "r-2")).await;
        // Not for confirm-before-commit: sequential, its check sees the first booking too.
        assert_eq!(overlap.kind, OpType::Fail, "{design}: {overlap:?}");
        // Half-open stays: checking in on the first guest's check-out day is fine.
        let adjacent = c.book(&stay(101, "2026-12-04", "2026-12-06", "r-3")).await;
        assert_eq!(adjacent.kind, OpType::Ok, "{design}: {adjacent:?}");
        let other_room = c.book(&stay(102, "2026-12-01", "2026-12-04", "r-4")).await;
        assert_eq!(other_room.kind, OpType::Ok, "{design}: {other_room:?}");

        let cancel = c.cancel(id, "r-1").await;
        assert_eq!(cancel.kind, OpType::Ok, "{design}: {cancel:?}");
        let again = c.cancel(id, "r-1").await;
        assert_eq!(again.kind, OpType::Fail, "{design}: {again:?}");
        assert_eq!(again.error.as_deref(), Some("no such booking"));
        // The cancelled nights are free again, in every design's storage.
        let rebook = c.book(&stay(101, "2026-12-02", "2026-12-04", "r-5")).await;
        assert_eq!(rebook.kind, OpType::Ok, "{design}: {rebook:?}");

        let bad = c.book(&stay(101, "2026-12-04", "2026-12-04", "r-6")).await;
        assert_eq!(
            bad.kind,
            OpType::Fail,
            "{design}: an empty stay must be refused"
        );

        let requests: Vec<_> = env
            .rows(design)
            .await
            .into_iter()
            .map(|r| r.request)
            .collect();
        assert_eq!(requests, ["r-5", "r-3", "r-4"], "{design}");
    }
}

/// The GC-pause story: the first holder stops (pause > lease) between taking the lease
/// and writing; the pause is healed before the second user arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pause_longer_than_the_lease_breaks_only_the_lease_only_designs() {
    let ttl = Duration::from_millis(300);
    let env = Env::start("pause", ttl).await;
    for design in [
        DesignName::LockOnly,
        DesignName::LockRenewal,
        DesignName::LockDeadline,
        DesignName::LockFencing,
        DesignName::DbUnique,
    ] {
        let mut clients = env.clients(design, 2).await;
        let (b, a) = (clients.remove(1), clients.remove(0));
        let entered_before = env.cfg.pause.entered();
        env.cfg.pause.activate(ttl * 3);
        let first = book_later(
            a,
            stay(103, "2026-12-10", "2026-12-13", "r-a"),
            Duration::ZERO,
        );
        // Heal only once A sits in its pause (waiting for the fact, not for a guessed
        // time: a loaded machine may take long to get A there).
        while env.cfg.pause.entered() == entered_before && !first.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        env.cfg.pause.heal();
        let second = book_later(
            b,
            stay(103, "2026-12-11", "2026-12-12", "r-b"),
            Duration::ZERO,
        );
        let (_, a) = first.await.unwrap();
        let (_, b) = second.await.unwrap();
        let paused = a
            .value
            .detail
            .as_ref()
            .and_then(|d| d.get("client_pause_ms"));
        assert!(
            paused.is_some(),
            "{design}: the first client never reached its pause: {a:?}"
        );
        assert!(
            b.value.detail.is_none(),
            "{design}: the second client paused too: {b:?}"
        );
        let rows = env.rows(design).await;
        let (ta, tb) = (a.trace().unwrap(), b.trace().unwrap());
        match design.as_str() {
            // lock-deadline checked its lease before the pause, with most of it left.
            "lock-only" | "lock-renewal" | "lock-deadline" => {
                // Both confirmed, both stored: the double booking.
                assert_eq!(
                    (a.kind, b.kind),
                    (OpType::Ok, OpType::Ok),
                    "{design}: {}",
                    describe(&[a.clone(), b.clone()])
                );
                assert_eq!(rows.len(), 2, "{design}: {rows:?}");
                // Both believed they held room 103 at once: B got the lease while A
                // still had it in hand.
                assert!(
                    tb.lock_acquired < ta.lock_released,
                    "{design}: {ta:?} {tb:?}"
                );
                // B came after A. (Not "after A's lease_expiry()": that is A's own stamp
                // plus the lease, and a loaded machine stamps A's grant late, after Redis
                // started counting, so B may legitimately get the lease before it.)
                assert!(
                    ta.lock_acquired < tb.lock_acquired,
                    "{design}: B got the lease before A: {ta:?} {tb:?}"
                );
                // The heartbeat stopped with the client: none of A's renewals kept the
                // lease once B had it (A may renew before it reaches its pause point).
                assert!(
                    ta.lock_renewed.iter().all(|&r| Some(r) < tb.lock_acquired),
                    "{design}: {ta:?} {tb:?}"
                );
            }
            "lock-fencing" => {
                assert_eq!(b.kind, OpType::Ok, "{design}: {b:?}");
                assert_eq!(a.kind, OpType::Fail, "{design}: {a:?}");
                assert_eq!(a.error.as_deref(), Some("stale token"));
                assert!(ta.token < tb.token, "{design}: {ta:?} {tb:?}");
                assert_eq!(rows.len(), 1, "{design}: {rows:?}");
            }
            _ => {
                assert_eq!(b.kind, OpType::Ok, "{design}: {b:?}");
                assert_eq!(a.kind, OpType::Fail, "{design}: {a:?}");
                assert_eq!(a.error.as_deref(), Some("23505 unique_violation"));
                assert_eq!(rows.len(), 1, "{design}: {rows:?}");
            }
        }
    }
}

/// The seed story: the database write takes longer than the lease. Aimed: A's INSERT
/// and COMMIT are each held for twice the lease, while B's check (a read) runs at full
/// speed as soon as B has the expired lease. The lease is long enough (1 s, renewed
/// every third) for lock-renewal's heartbeat to keep it on a loaded machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_slower_than_the_lease_breaks_lock_only_but_not_renewal() {
    let ttl = Duration::from_secs(1);
    let env = Env::start("slowdb", ttl).await;
    for design in [
        DesignName::LockOnly,
        DesignName::LockRenewal,
        DesignName::LockDeadline,
        DesignName::DbUnique,
    ] {
        let mut clients = env.clients(design, 2).await;
        let (b, a) = (clients.remove(1), clients.remove(0));
        let slow = env.slow_writes(ttl * 2);
        let first = book_later(
            a,
            stay(104, "2026-12-10", "2026-12-13", "r-a"),
            Duration::ZERO,
        );
        let second = book_later(
            b,
            stay(104, "2026-12-12", "2026-12-14", "r-b"),
            Duration::from_millis(30),
        );
        let (_, a) = first.await.unwrap();
        let (_, b) = second.await.unwrap();
        drop(slow);
        let rows = env.rows(design).await;
        let both = describe(&[a.clone(), b.clone()]);
        // A asks first, but on a loaded machine B's request may reach Redis first: the
        // story is about whoever got the lease first ("first") and the next ("next").
        let (first, next) = if a.trace().unwrap().lock_acquired.is_some()
            && (b.trace().unwrap().lock_acquired.is_none()
                || a.trace().unwrap().lock_acquired < b.trace().unwrap().lock_acquired)
        {
            (a, b)
        } else {
            (b, a)
        };
        let tf = first.trace().unwrap();
        match design.as_str() {
            "lock-only" => {
                assert_eq!((first.kind, next.kind), (OpType::Ok, OpType::Ok), "{both}");
                assert_eq!(rows.len(), 2, "{rows:?}");
                let tn = next.trace().unwrap();
                // The next user took the lease (after the first's expired in Redis) before
                // the first committed: both held it, as far as they knew.
                assert!(tn.lock_acquired < tf.db_commit, "{tf:?} {tn:?}");
            }
            "lock-renewal" => {
                // The heartbeat kept the first lease alive through the slow write; the
                // next user gave up.
                assert_eq!(first.kind, OpType::Ok, "{both}");
                assert_eq!(next.kind, OpType::Fail, "{both}");
                assert_eq!(next.error.as_deref(), Some("lock busy"));
                assert!(tf.lock_renewed.len() >= 3, "{tf:?}");
                assert_eq!(rows.len(), 1, "{rows:?}");
            }
            "lock-deadline" => {
                // Each held insert (twice the lease) outlasts the lease: both check the
                // time left before COMMIT and abort. Safe here, and nothing is booked.
                for o in [&first, &next] {
                    assert_eq!(o.kind, OpType::Fail, "{both}");
                    assert_eq!(o.error.as_deref(), Some("lease nearly expired"), "{both}");
                }
                assert!(rows.is_empty(), "{rows:?}");
            }
            _ => {
                // The lease failed the same way as lock-only's, the database did not: one
                // of them booked, the other got 23505 (which one depends on whose held
                // insert reached Postgres first, on a loaded machine either).
                let kinds = [first.kind, next.kind];
                let ok = kinds.iter().filter(|k| **k == OpType::Ok).count();
                let fail = kinds.iter().filter(|k| **k == OpType::Fail).count();
                assert_eq!((ok, fail), (1, 1), "{both}");
                assert_eq!(rows.len(), 1, "{rows:?}");
            }
        }
    }
}

/// Several users race one stay. Aimed: every write and COMMIT is held, so all of them
/// pass their (full-speed) check before any insert lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_users_double_book_only_the_unguarded_designs() {
    let env = Env::start("race", Duration::from_millis(300)).await;
    let designs = [
        DesignName::CheckThenInsert,
        DesignName::ConfirmBeforeCommit,
        DesignName::DbExclusion,
        DesignName::AtomicReserve,
        DesignName::RowLock,
        DesignName::Serializable,
        DesignName::DbUnique,
        DesignName::LockFencing,
    ];
    for design in designs {
        let clients = env.clients(design, 4).await;
        let slow = env.slow_writes(Duration::from_millis(300));
        let outcomes = race(clients, 105).await;
        drop(slow);
        let rows = env.rows(design).await;
        let all = describe(&outcomes);
        match design.as_str() {
            "check-then-insert" => {
                // Every check ran before any insert committed: all confirmed, all stored.
                assert_eq!(count(&outcomes, OpType::Ok), 4, "{all}");
                assert_eq!(rows.len(), 4, "{rows:?}");
            }
            "confirm-before-commit" => {
                // All confirmed; the deferred constraint let one commit: three users hold
                // confirmations for bookings that do not exist.
                assert_eq!(count(&outcomes, OpType::Ok), 4, "{all}");
                assert_eq!(rows.len(), 1, "{rows:?}");
                let lost: Vec<_> = outcomes
                    .iter()
                    .filter(|o| {
                        o.value
                            .detail
                            .as_ref()
                            .is_some_and(|d| d.get("commit_error").is_some())
                    })
                    .collect();
                assert_eq!(lost.len(), 3, "{all}");
                for o in lost {
                    let t = o.trace().unwrap();
                    assert!(t.confirmed.is_some() && t.db_commit.is_none(), "{t:?}");
                }
            }
            _ => {
                assert_eq!(count(&outcomes, OpType::Ok), 1, "{design}: {all}");
                assert_eq!(count(&outcomes, OpType::Fail), 3, "{design}: {all}");
                assert_eq!(rows.len(), 1, "{design}: {rows:?}");
                let winner = outcomes.iter().find(|o| o.kind == OpType::Ok).unwrap();
                assert_eq!(rows[0].booking, winner.value.booking, "{design}");
            }
        }
    }
}

/// Regression: eight users who keep asking for the last free night of a room livelocked
/// db-exclusion: every insert deadlocked with the others, every 40P01 victim came back
/// with a new attempt that joined the next deadlock, and nobody committed for seconds.
/// Each user now retries until the night is taken (its own ok, or 23P01 because another
/// committed); every round must end with exactly one booking. The timeout only turns a
/// livelock into a failure instead of a hung test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_exclusion_makes_progress_when_everyone_wants_the_last_night() {
    let env = Env::start("lastnight", Duration::from_millis(300)).await;
    let design = DesignName::DbExclusion;
    let mut clients = env.clients(design, 8).await;
    // Slow round trips line the inserts up, as a burst of users does.
    let _slow = env.slow_db(Duration::from_millis(20));
    for round in 0..5 {
        let night = day("2026-12-01").add_days(round);
        let tasks: Vec<_> = clients
            .drain(..)
            .enumerate()
            .map(|(i, mut c)| {
                tokio::spawn(async move {
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        let req = BookRequest {
                            room: 101,
                            from: night,
                            to: night.add_days(1),
                            request: format!("r-{round}-{i}-{attempts}"),
                        };
                        let o = c.book(&req).await;
                        let taken = o.error.as_deref() == Some("23P01 exclusion_violation");
                        if o.kind == OpType::Ok || taken {
                            return (c, o);
                        }
                    }
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            let (c, o) = tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("livelock: the night was not taken within 30 s")
                .unwrap();
            clients.push(c);
            outcomes.push(o);
        }
        assert_eq!(
            count(&outcomes, OpType::Ok),
            1,
            "round {round}: {}",
            describe(&outcomes)
        );
    }
    assert_eq!(env.rows(design).await.len(), 5);
}

/// A lost answer and a retry of the same request key, with and without idempotency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_replay_the_original_outcome_only_with_idempotency_keys() {
    let mut env = Env::start("idem", Duration::from_millis(300)).await;
    let design = DesignName::DbExclusion;

    // Without keys: the retry of a booking that exists is told "not booked".
    let mut c = env.clients(design, 1).await.remove(0);
    let first = c.book(&stay(101, "2026-12-01", "2026-12-03", "r-1")).await;
    assert_eq!(first.kind, OpType::Ok, "{first:?}");
    let retry = c.book(&stay(101, "2026-12-01", "2026-12-03", "r-1")).await;
    assert_eq!(retry.kind, OpType::Fail, "{retry:?}");
    assert_eq!(retry.error.as_deref(), Some("23P01 exclusion_violation"));
    let rows = env.rows(design).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].request, "r-1", "the failed retry's booking exists");

    // With keys: the retry gets the original booking back.
    env.cfg.idempotency = true;
    let mut c = env.clients(design, 1).await.remove(0);
    let first = c.book(&stay(101, "2026-12-01", "2026-12-03", "r-1")).await;
    assert_eq!(first.kind, OpType::Ok, "{first:?}");
    let mut fresh = env.clients_without_setup(design).await;
    let retry = fresh
        .book(&stay(101, "2026-12-01", "2026-12-03", "r-1"))
        .await;
    assert_eq!(retry.kind, OpType::Ok, "{retry:?}");
    assert_eq!(retry.value.booking, first.value.booking);
    assert_eq!(
        retry.value.detail.as_ref().and_then(|d| d.get("replayed")),
        Some(&true.into())
    );

    // A refused request is refused again, by replay, even after the room frees up.
    let loser = c.book(&stay(101, "2026-12-02", "2026-12-04", "r-2")).await;
    assert_eq!(loser.kind, OpType::Fail, "{loser:?}");
    let id = first.value.booking.unwrap();
    assert_eq!(c.cancel(id, "r-1").await.kind, OpType::Ok);
    let replayed = c.book(&stay(101, "2026-12-02", "2026-12-04", "r-2")).await;
    assert_eq!(replayed.kind, OpType::Fail, "{replayed:?}");
    assert_eq!(replayed.error, loser.error);

    // The same key for another stay is rejected outright.
    let reused = c.book(&stay(102, "2026-12-02", "2026-12-04", "r-1")).await;
    assert_eq!(reused.kind, OpType::Fail, "{reused:?}");
    assert_eq!(
        reused.error.as_deref(),
        Some("request key reused with different parameters")
    );

    // Two copies of one request in flight at once (a retry racing its original): one
    // booking, both told about it.
    let clients = vec![
        env.clients_without_setup(design).await,
        env.clients_without_setup(design).await,
    ];
    let slow = env.slow_db(Duration::from_millis(60));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            book_later(
                c,
                stay(103, "2026-12-05", "2026-12-07", "r-3"),
                Duration::ZERO,
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().1);
    }
    drop(slow);
    assert_eq!(count(&outcomes, OpType::Ok), 2, "{}", describe(&outcomes));
    assert_eq!(outcomes[0].value.booking, outcomes[1].value.booking);
    let rows = env.rows(design).await;
    let r3: Vec<_> = rows.iter().filter(|r| r.request == "r-3").collect();
    assert_eq!(r3.len(), 1, "{rows:?}");
}

/// Connections cut by a fault: the op that finds its Redis connection dead fails
/// definitely (no booking was written), and the client reconnects by itself for the
/// next op; a Postgres connection found closed is replaced before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_fail_one_op_then_the_client_reconnects() {
    let env = Env::start("reset", Duration::from_millis(300)).await;
    let design = DesignName::LockOnly;
    let mut c = env.clients(design, 1).await.remove(0);
    let first = c.book(&stay(101, "2026-12-01", "2026-12-02", "r-1")).await;
    assert_eq!(first.kind, OpType::Ok, "{first:?}");
    env.cluster.redis.proxy().reset_connections();
    env.cluster.postgres.proxy().reset_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cut = c.book(&stay(101, "2026-12-05", "2026-12-06", "r-2")).await;
    assert_eq!(cut.kind, OpType::Fail, "{cut:?}");
    assert!(
        cut.error.as_deref().is_some_and(|e| e.starts_with("redis")),
        "{cut:?}"
    );
    let after = c.book(&stay(101, "2026-12-07", "2026-12-08", "r-3")).await;
    assert_eq!(after.kind, OpType::Ok, "{after:?}");
    let requests: Vec<_> = env
        .rows(design)
        .await
        .into_iter()
        .map(|r| r.request)
        .collect();
    assert_eq!(requests, ["r-1", "r-3"]);
}

/// Redis without persistence forgets the token counters (restart, failover): tokens
/// start again below the fences Postgres keeps. The first holder per room is rejected as
/// stale and seeds the counter from the database, so the next one books again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_recovers_when_redis_forgets_its_counters() {
    let env = Env::start("fence", Duration::from_millis(300)).await;
    let design = DesignName::LockFencing;
    let mut c = env.clients(design, 1).await.remove(0);
    for (i, from) in ["2026-12-01", "2026-12-03"].iter().enumerate() {
        let to = day(from).add_days(1).to_string();
        let ok = c.book(&stay(101, from, &to, &format!("r-{i}"))).await;
        assert_eq!(ok.kind, OpType::Ok, "{ok:?}");
        assert_eq!(ok.trace().unwrap().token, Some(i as u64 + 1));
    }
    let redis = redis::Client::open(env.cluster.redis.direct_url()).unwrap();
    let mut direct = redis.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("FLUSHALL")
        .query_async(&mut direct)
        .await
        .unwrap();

    let stale = c.book(&stay(101, "2026-12-05", "2026-12-06", "r-2")).await;
    assert_eq!(stale.kind, OpType::Fail, "{stale:?}");
    assert_eq!(stale.error.as_deref(), Some("stale token"));
    assert_eq!(stale.trace().unwrap().token, Some(1));
    let seeded = c.book(&stay(101, "2026-12-05", "2026-12-06", "r-3")).await;
    assert_eq!(seeded.kind, OpType::Ok, "{seeded:?}");
    assert_eq!(seeded.trace().unwrap().token, Some(3));
    assert_eq!(env.rows(design).await.len(), 3);
}

impl Env {
    /// One more client for `design` on the existing schema.
    async fn clients_without_setup(&self, design: DesignName) -> Client {
        Client::connect(
            design,
            self.cfg.clone(),
            &self.cluster.postgres.url(),
            &self.cluster.redis.url(),
        )
        .await
        .expect("connect")
    }
}
