//! One logical process of a run: its own Postgres connection and (for designs that
//! lock) its own Redis connection, running one booking op at a time.
//!
//! Every op ends in an [`Outcome`], never an error: failures are classified once, in
//! [`crate::classify`]. Connections broken by a fault are replaced at the start of the
//! next op (after the op that saw the break was classified), never retried inside an op,
//! so a fault always shows in the history.

use std::time::Duration;

use checkers::{OpType, OpValue, Trace};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::classify::{classify_pg, classify_redis, is_retryable_pg};
use crate::classify::{Failure, PgStage};
use crate::config::Config;
use crate::design::{DesignName, LockUse, PausePoint};
use crate::designs::lock_fencing::READ_FENCE;
use crate::designs::{BookCtx, Db, StatementCache, TxError};
use crate::error::WorkloadError;
use crate::lease::{self, AcquireError, Heartbeat, Lease, LeaseKeys, RedisLink, StopTheWorld};
use crate::lock_service::LockEndpoints;
use crate::redlock;
use crate::request::{BookRequest, Outcome};
use crate::schema::non_negative;
use crate::RunClock;

/// The longest a connect (TCP, startup, authentication) may take, Postgres or Redis: a
/// server that accepts and then says nothing must not hang a client (or a test) forever.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new session waits for each Redlock node: a paused node must not hold the
/// session's opening for [`CONNECT_TIMEOUT`] when a majority is there.
const REDLOCK_CONNECT: Duration = Duration::from_secs(1);

/// How many times a transaction that hit 40001 / 40P01 is run in all.
const MAX_ATTEMPTS: u32 = 5;

const CLAIM_REQUEST: &str = "INSERT INTO booking_requests (key, request_hash) VALUES ($1, $2)
     ON CONFLICT (key) DO NOTHING RETURNING 1";
const READ_REQUEST: &str =
    "SELECT request_hash, outcome, booking, error FROM booking_requests WHERE key = $1";
const MARK_REQUEST_OK: &str =
    "UPDATE booking_requests SET outcome = 'ok', booking = $2 WHERE key = $1";
const RECORD_REQUEST_FAIL: &str =
    "INSERT INTO booking_requests (key, request_hash, outcome, error) VALUES ($1, $2, 'fail', $3)
     ON CONFLICT (key) DO NOTHING";
const DELETE_BOOKING: &str = "DELETE FROM bookings WHERE id = $1";

/// How many leases a user waits for the lock before giving up with "lock busy": long
/// enough to outlast one stalled holder, so the next user takes over an expired lease
/// while the holder's write still runs (the story's race). Measured: waiting 6 leases
/// instead of 2 caught lock-only under db-latency in fewer 10 s runs (7 of 15 against
/// 18 of 20), because long waiters pile up on one lease instead of racing new stays.
pub const LOCK_WAIT_LEASES: u32 = 2;

/// A Postgres connection, its driver task and its prepared statements.
struct PgSession {
    client: tokio_postgres::Client,
    task: JoinHandle<()>,
    stmts: StatementCache,
}

impl PgSession {
    /// Starts a transaction at the design's isolation level and stamps `db_begin` once
    /// the server has answered BEGIN (so the trace never shows a transaction open
    /// before Postgres knew of it).
    async fn begin(
        &mut self,
        design: DesignName,
        clock: RunClock,
        trace: &mut Trace,
    ) -> Result<Db<'_>, tokio_postgres::Error> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(design.design().isolation())
            .start()
            .await?;
        trace.db_begin = Some(clock.now());
        Ok(Db::new(tx, &mut self.stmts))
    }

    async fn connect(url: &str, design: DesignName) -> Result<PgSession, WorkloadError> {
        let (client, connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_postgres::connect(url, NoTls))
                .await
                .map_err(|_| WorkloadError::ConnectTimeout {
                    server: "postgres",
                    after: CONNECT_TIMEOUT,
                })??;
        let task = tokio::spawn(async move {
            // The error (if any) reaches the client as a closed connection.
            let _ = connection.await;
        });
        let session_sql = design.design().session_sql();
        if !session_sql.is_empty() {
            // Session settings are tuning (see the design's `session_sql`): a server that
            // refuses one changes timing, not outcomes.
            let _ = client.batch_execute(session_sql).await;
        }
        Ok(PgSession {
            client,
            task,
            stmts: StatementCache::default(),
        })
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a client holds leases: one link (one Redis, or the Sentinel primary) or one per
/// Redlock node.
enum LockLink {
    /// Boxed: one link is much larger than the Vec of Redlock's.
    One(Box<RedisLink>),
    Redlock(Vec<RedisLink>),
}

impl LockLink {
    fn open(lock: &LockEndpoints) -> Result<LockLink, redis::RedisError> {
        Ok(match lock {
            LockEndpoints::Single(url) => LockLink::One(Box::new(RedisLink::to_node(url)?)),
            LockEndpoints::Sentinel(s) => LockLink::One(Box::new(RedisLink::to_primary(s.clone()))),
            LockEndpoints::Redlock(urls) => LockLink::Redlock(
                urls.iter()
                    .map(|u| RedisLink::to_node(u))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// A successful transaction.
struct Booked {
    id: u64,
    /// confirm-before-commit only: the COMMIT failed after the user was told.
    commit_error: Option<String>,
    replayed: bool,
}

/// A transaction that produced no booking.
struct Refusal {
    failure: Failure,
    stale_token: bool,
    replayed: bool,
}

impl From<Failure> for Refusal {
    fn from(failure: Failure) -> Refusal {
        Refusal {
            failure,
            stale_token: false,
            replayed: false,
        }
    }
}

/// One simulated user process running `design` (see the module docs).
pub struct Client {
    design: DesignName,
    cfg: Config,
    pg_url: String,
    pg: Option<PgSession>,
    lock: Option<LockLink>,
    world: StopTheWorld,
}

impl Client {
    /// Connects to Postgres (and Redis, for designs that lock). `pg_url` is a
    /// tokio-postgres config string, `redis_url` a `redis://` URL. The schema must exist
    /// ([`crate::setup`]).
    pub async fn connect(
        design: DesignName,
        cfg: Config,
        pg_url: &str,
        redis_url: &str,
    ) -> Result<Client, WorkloadError> {
        let lock = LockEndpoints::Single(redis_url.to_string());
        Client::connect_to(design, cfg, pg_url, &lock).await
    }

    /// [`Client::connect`] with leases from any lock service.
    pub async fn connect_to(
        design: DesignName,
        cfg: Config,
        pg_url: &str,
        lock: &LockEndpoints,
    ) -> Result<Client, WorkloadError> {
        if design.uses_lock() && cfg.lock_ttl.is_zero() {
            return Err(WorkloadError::InvalidConfig(format!(
                "{design} needs a lease length above zero"
            )));
        }
        if let Some(why) = design.refusal_on(lock.service()) {
            return Err(WorkloadError::InvalidConfig(why));
        }
        let pg = PgSession::connect(pg_url, design).await?;
        let lock = if design.uses_lock() {
            let mut link = LockLink::open(lock)?;
            // Connect up front, so a lock service that is not there fails the session.
            match &mut link {
                LockLink::One(l) if matches!(lock, LockEndpoints::Sentinel(_)) => {
                    // Mid-failover the sentinels may still name a dead primary: the
                    // session opens anyway and its ops ask again.
                    let _ = l.connection().await;
                }
                LockLink::One(l) => {
                    l.connection().await?;
                }
                LockLink::Redlock(links) => {
                    // A minority of nodes may be down (or paused: a connect that hangs),
                    // so each gets a bounded try; at least a majority must answer.
                    let tries = futures_util::future::join_all(
                        links
                            .iter_mut()
                            .map(|l| tokio::time::timeout(REDLOCK_CONNECT, l.connection())),
                    )
                    .await;
                    let up = tries.iter().filter(|t| matches!(t, Ok(Ok(_)))).count();
                    if up < redlock::quorum(tries.len()) {
                        return Err(WorkloadError::InvalidConfig(format!(
                            "only {up} of {} redlock nodes answered",
                            tries.len()
                        )));
                    }
                }
            }
            Some(link)
        } else {
            None
        };
        Ok(Client {
            design,
            cfg,
            pg_url: pg_url.to_string(),
            pg: Some(pg),
            lock,
            world: StopTheWorld::default(),
        })
    }

    /// The design this client runs.
    pub fn design(&self) -> DesignName {
        self.design
    }

    /// Books `req`. Never fails: the outcome says `ok` (confirmed), `fail` (definitely
    /// not booked) or `info` (unknown), with the trace of what happened.
    pub async fn book(&mut self, req: &BookRequest) -> Outcome {
        let mut trace = Trace::default();
        let mut detail = Map::new();
        let result = self.book_inner(req, &mut trace, &mut detail).await;
        let mut value = req.invoke_value();
        value.trace = Some(trace);
        let (kind, error) = match result {
            Ok(booking) => {
                value.booking = Some(booking);
                (OpType::Ok, None)
            }
            Err(f) => (f.kind, Some(f.error)),
        };
        if !detail.is_empty() {
            value.detail = Some(Value::Object(detail));
        }
        Outcome { kind, value, error }
    }

    /// Cancels booking `booking` (made by request `request`): deletes its row, which
    /// frees its nights in every design (per-night and inventory rows follow the booking
    /// by foreign key). `fail` if there is no such booking.
    pub async fn cancel(&mut self, booking: u64, request: &str) -> Outcome {
        let mut trace = Trace::default();
        let result = self.cancel_inner(booking, &mut trace).await;
        let value = OpValue {
            booking: Some(booking),
            request: Some(request.to_string()),
            trace: Some(trace),
            ..OpValue::default()
        };
        match result {
            Ok(()) => Outcome {
                kind: OpType::Ok,
                value,
                error: None,
            },
            Err(f) => Outcome {
                kind: f.kind,
                value,
                error: Some(f.error),
            },
        }
    }

    async fn book_inner(
        &mut self,
        req: &BookRequest,
        trace: &mut Trace,
        detail: &mut Map<String, Value>,
    ) -> Result<u64, Failure> {
        if req.nights() == 0 {
            return Err(Failure::fail(
                "empty stay: check-out must be after check-in",
            ));
        }
        self.ensure_pg().await?;
        let lease = if self.design.uses_lock() {
            Some(self.take_lease(req, trace).await?)
        } else {
            None
        };
        let renewed = self.design.design().lock() == LockUse::RenewedLease;
        let heartbeat = match (&lease, &self.lock) {
            (Some(lease), Some(LockLink::One(link))) if renewed => link.conn.as_ref().map(|conn| {
                Heartbeat::start(
                    conn.clone(),
                    lease,
                    self.cfg.lock_ttl,
                    self.cfg.clock,
                    self.world.clone(),
                )
            }),
            _ => None,
        };
        let mut paused_ms = None;
        if lease.is_some() && self.design.design().pause_point() == PausePoint::AfterLease {
            // Right after taking the lease, before any database work: the window a
            // stop-the-world pause exploits.
            paused_ms = self
                .world
                .pause_point(&self.cfg.pause)
                .await
                .map(|d| d.as_millis() as u64);
        }
        let token = lease.as_ref().and_then(|l| l.token);
        let result = self.transact(req, trace, token, &mut paused_ms).await;
        if let Some(hb) = heartbeat {
            trace.lock_renewed = hb.stop();
        }
        if let Some(lease) = &lease {
            self.give_up_lease(lease, trace).await;
        }
        if let Some(ms) = paused_ms {
            detail.insert("client_pause_ms".into(), ms.into());
        }
        match result {
            Ok(booked) => {
                if booked.replayed {
                    detail.insert("replayed".into(), true.into());
                }
                if let Some(e) = booked.commit_error {
                    detail.insert("commit_error".into(), e.into());
                }
                Ok(booked.id)
            }
            Err(refusal) => {
                if refusal.replayed {
                    detail.insert("replayed".into(), true.into());
                }
                if refusal.stale_token && matches!(self.lock, Some(LockLink::One(_))) {
                    if let Some(lease) = &lease {
                        self.seed_token_counter(req, lease).await;
                    }
                }
                Err(refusal.failure)
            }
        }
    }

    /// Runs the design's transaction, retrying 40001/40P01, with the idempotency key
    /// claimed in the same transaction when enabled.
    async fn transact(
        &mut self,
        req: &BookRequest,
        trace: &mut Trace,
        token: Option<u64>,
        paused_ms: &mut Option<u64>,
    ) -> Result<Booked, Refusal> {
        let design = self.design;
        let idempotency = self.cfg.idempotency;
        let clock = self.cfg.clock;
        let Some(session) = self.pg.as_mut() else {
            return Err(Failure::fail("postgres not connected").into());
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut db = session
                .begin(design, clock, trace)
                .await
                .map_err(|e| Refusal::from(classify_pg(&e, PgStage::BeforeCommit)))?;
            if idempotency {
                match claim_request(&mut db, req).await {
                    Ok(None) => {}
                    Ok(Some(replay)) => return replay,
                    Err(e) if is_retryable_pg(&e) && attempt < MAX_ATTEMPTS => {
                        drop(db);
                        backoff(attempt).await;
                        continue;
                    }
                    Err(e) => return Err(classify_pg(&e, PgStage::BeforeCommit).into()),
                }
            }
            // Designs that pause inside their transaction call the pause point themselves.
            let pause = (design.design().pause_point() != PausePoint::AfterLease)
                .then_some((&self.cfg.pause, &self.world));
            let mut ctx = BookCtx {
                req,
                trace: &mut *trace,
                clock,
                pause,
                paused_ms: None,
                token,
                confirmed_early: false,
            };
            let booked = design.0.book(&mut db, &mut ctx).await;
            let confirmed_early = ctx.confirmed_early;
            if ctx.paused_ms.is_some() {
                *paused_ms = ctx.paused_ms;
            }
            let outcome = match booked {
                Ok(id) if idempotency => db
                    .execute(MARK_REQUEST_OK, &[&req.request, &id])
                    .await
                    .map(|_| id)
                    .map_err(TxError::Pg),
                other => other,
            };
            let id = match outcome {
                Ok(id) => id,
                Err(TxError::Pg(e)) if is_retryable_pg(&e) && attempt < MAX_ATTEMPTS => {
                    drop(db);
                    backoff(attempt).await;
                    continue;
                }
                Err(e) => {
                    drop(db);
                    let refusal = refusal_of(e);
                    if idempotency && is_decided_by_data(&refusal.failure) {
                        self.record_failed_request(req, &refusal.failure.error)
                            .await;
                    }
                    return Err(refusal);
                }
            };
            let id_out = non_negative(id, "booking id")
                .map_err(|e| Refusal::from(Failure::info(e.to_string())))?;
            match db.commit().await {
                Ok(()) => {
                    let now = clock.now();
                    trace.db_commit = Some(now);
                    if !confirmed_early {
                        trace.confirmed = Some(now);
                    }
                    return Ok(Booked {
                        id: id_out,
                        commit_error: None,
                        replayed: false,
                    });
                }
                // The user already holds a confirmation; the failed commit cannot
                // withdraw it. This is the design's flaw, recorded for the report.
                Err(e) if confirmed_early => {
                    return Ok(Booked {
                        id: id_out,
                        commit_error: Some(crate::classify::describe_pg(&e)),
                        replayed: false,
                    })
                }
                Err(e) if is_retryable_pg(&e) && attempt < MAX_ATTEMPTS => {
                    backoff(attempt).await;
                    continue;
                }
                Err(e) => return Err(classify_pg(&e, PgStage::Commit).into()),
            }
        }
    }

    async fn cancel_inner(&mut self, booking: u64, trace: &mut Trace) -> Result<(), Failure> {
        self.ensure_pg().await?;
        let design = self.design;
        let clock = self.cfg.clock;
        let id = i64::try_from(booking).map_err(|_| Failure::fail("no such booking"))?;
        let Some(session) = self.pg.as_mut() else {
            return Err(Failure::fail("postgres not connected"));
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut db = session
                .begin(design, clock, trace)
                .await
                .map_err(|e| classify_pg(&e, PgStage::BeforeCommit))?;
            let deleted = match db.execute(DELETE_BOOKING, &[&id]).await {
                Ok(n) => n,
                Err(e) if is_retryable_pg(&e) && attempt < MAX_ATTEMPTS => {
                    drop(db);
                    backoff(attempt).await;
                    continue;
                }
                Err(e) => return Err(classify_pg(&e, PgStage::BeforeCommit)),
            };
            if deleted == 0 {
                return Err(Failure::fail("no such booking"));
            }
            match db.commit().await {
                Ok(()) => {
                    trace.db_commit = Some(clock.now());
                    return Ok(());
                }
                Err(e) if is_retryable_pg(&e) && attempt < MAX_ATTEMPTS => {
                    backoff(attempt).await;
                }
                Err(e) => return Err(classify_pg(&e, PgStage::Commit)),
            }
        }
    }

    /// A live Postgres connection, reconnecting if a fault closed the last one.
    async fn ensure_pg(&mut self) -> Result<(), Failure> {
        if self.pg.as_ref().is_some_and(|s| !s.client.is_closed()) {
            return Ok(());
        }
        self.pg = None;
        // Nothing was sent yet: whatever went wrong, the op definitely did not happen.
        let session = PgSession::connect(&self.pg_url, self.design)
            .await
            .map_err(|e| match e {
                WorkloadError::Postgres(e) => classify_pg(&e, PgStage::BeforeCommit),
                other => Failure::fail(other.to_string()),
            })?;
        self.pg = Some(session);
        Ok(())
    }

    async fn take_lease(&mut self, req: &BookRequest, trace: &mut Trace) -> Result<Lease, Failure> {
        let ttl = self.cfg.lock_ttl;
        let fenced = self.design.design().lock() == LockUse::FencedLease;
        // A waiter outlasts one whole lease (twice its length), so a stalled holder
        // hands the room over instead of every other user failing "lock busy".
        let wait = ttl * LOCK_WAIT_LEASES;
        let keys = LeaseKeys::for_room(&self.cfg.lock_prefix, req.room);
        let (lease, ttl) = match self.lock.as_mut() {
            None => return Err(Failure::fail("redis not connected")),
            Some(LockLink::One(link)) => {
                let conn = match link.connection().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        link.note_error(&e);
                        return Err(classify_redis(&e));
                    }
                };
                match lease::acquire(conn, keys, ttl, fenced, wait).await {
                    Ok(lease) => (lease, ttl),
                    Err(e) => {
                        if let AcquireError::Redis(re) = &e {
                            link.note_error(re);
                        }
                        return Err(e.failure());
                    }
                }
            }
            Some(LockLink::Redlock(links)) => {
                let grant = redlock::acquire(links, &keys, ttl, wait)
                    .await
                    .map_err(|e| e.failure())?;
                let lease = Lease {
                    keys,
                    value: grant.value,
                    token: None,
                };
                // Held from the majority grant until the validity ends: what the
                // lock-exclusion checker judges.
                (lease, grant.validity)
            }
        };
        trace.lock_key = Some(lease.keys.trace_name.clone());
        trace.lock_acquired = Some(self.cfg.clock.now());
        trace.lock_ttl_ms = Some(ttl.as_millis() as u64);
        let mut lease = lease;
        if fenced && matches!(self.lock, Some(LockLink::Redlock(_))) {
            lease.token = Some(self.token_from_database(req).await?);
        }
        trace.token = lease.token;
        Ok(lease)
    }

    /// `lock-fencing` on Redlock: five independent counters make no monotonic token
    /// (Kleppmann's point), so the token is the room's fence in Postgres plus one. Two
    /// holders that read the same fence race on advancing it: the first to commit moves
    /// it, the second finds its token no longer above the fence and is refused as stale.
    /// The database keeps the order; Redlock only keeps most writers apart.
    async fn token_from_database(&mut self, req: &BookRequest) -> Result<u64, Failure> {
        let Some(session) = self.pg.as_ref() else {
            return Err(Failure::fail("postgres not connected"));
        };
        let row = session
            .client
            .query_opt(READ_FENCE, &[&req.room_param()])
            .await
            .map_err(|e| classify_pg(&e, PgStage::BeforeCommit))?;
        let fence = match row {
            Some(row) => row
                .try_get::<_, i64>(0)
                .map_err(|e| classify_pg(&e, PgStage::BeforeCommit))?,
            None => 0,
        };
        Ok(u64::try_from(fence).unwrap_or(0) + 1)
    }

    /// Releases the lease if still ours. `lock_released` is when the client stopped
    /// believing it held the lock, whether or not the lease was still there to delete:
    /// taken before the release is sent, since the next holder can get the lease as soon
    /// as the delete runs, before our reply comes back.
    async fn give_up_lease(&mut self, lease: &Lease, trace: &mut Trace) {
        trace.lock_released = Some(self.cfg.clock.now());
        match self.lock.as_mut() {
            Some(LockLink::One(link)) => {
                let released = match link.connection().await {
                    Ok(conn) => lease::release(conn, lease).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = released {
                    link.note_error(&e);
                }
            }
            Some(LockLink::Redlock(links)) => {
                redlock::release(links, &lease.keys, &lease.value, self.cfg.lock_ttl).await
            }
            None => {}
        }
    }

    /// After a stale-token rejection: raise the Redis token counter to the fence the
    /// database holds, so that a Redis restart costs one rejected booking per room, not
    /// all of them until the counter catches up by itself.
    async fn seed_token_counter(&mut self, req: &BookRequest, lease: &Lease) {
        let Some(session) = self.pg.as_ref() else {
            return;
        };
        let Ok(Some(row)) = session
            .client
            .query_opt(READ_FENCE, &[&req.room_param()])
            .await
        else {
            return;
        };
        let Ok(fence) = row.try_get::<_, i64>(0) else {
            return;
        };
        let Ok(fence) = u64::try_from(fence) else {
            return;
        };
        if let Some(LockLink::One(link)) = self.lock.as_mut() {
            let seeded = match link.connection().await {
                Ok(conn) => lease::seed_counter(conn, &lease.keys, fence).await,
                Err(e) => Err(e),
            };
            if let Err(e) = seeded {
                link.note_error(&e);
            }
        }
    }

    /// Remembers a request the data refused, so a retry of its key replays the refusal.
    /// Best effort: if it is lost, a retry runs again and is refused again.
    async fn record_failed_request(&mut self, req: &BookRequest, error: &str) {
        if let Some(session) = self.pg.as_ref() {
            let _ = session
                .client
                .execute(
                    RECORD_REQUEST_FAIL,
                    &[&req.request, &req.fingerprint(), &error],
                )
                .await;
        }
    }
}

/// Claims the request key in the booking's transaction. `None`: the key is new, go on.
/// `Some`: the key was seen before; the stored outcome is replayed (or the request is
/// refused when the key came with different parameters). A concurrent first attempt
/// with the same key makes the claim wait until that attempt commits or rolls back.
async fn claim_request(
    db: &mut Db<'_>,
    req: &BookRequest,
) -> Result<Option<Result<Booked, Refusal>>, tokio_postgres::Error> {
    let fingerprint = req.fingerprint();
    if !db
        .query(CLAIM_REQUEST, &[&req.request, &fingerprint])
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    let rows = db.query(READ_REQUEST, &[&req.request]).await?;
    let replay = |failure: Failure| Refusal {
        failure,
        stale_token: false,
        replayed: true,
    };
    let Some(row) = rows.first() else {
        // The claimant rolled back between our claim and our read; unknown, not retried.
        return Ok(Some(Err(replay(Failure::info(
            "request key changed under us",
        )))));
    };
    let hash: String = row.try_get(0)?;
    let outcome: String = row.try_get(1)?;
    let booking: Option<i64> = row.try_get(2)?;
    let error: Option<String> = row.try_get(3)?;
    if hash != fingerprint {
        return Ok(Some(Err(replay(Failure::fail(
            "request key reused with different parameters",
        )))));
    }
    Ok(Some(match (outcome.as_str(), booking) {
        ("ok", Some(id)) => match u64::try_from(id) {
            Ok(id) => Ok(Booked {
                id,
                commit_error: None,
                replayed: true,
            }),
            Err(_) => Err(replay(Failure::info("stored booking id is negative"))),
        },
        ("fail", _) => Err(replay(Failure::fail(
            error.unwrap_or_else(|| "failed".to_string()),
        ))),
        _ => Err(replay(Failure::info(format!(
            "request key in unexpected state {outcome:?}"
        )))),
    }))
}

/// The outcome of a transaction that produced no booking.
fn refusal_of(e: TxError) -> Refusal {
    match e {
        TxError::Rejected(why) => Failure::fail(why).into(),
        TxError::StaleToken => Refusal {
            failure: Failure::fail("stale token"),
            stale_token: true,
            replayed: false,
        },
        TxError::Pg(e) => classify_pg(&e, PgStage::BeforeCommit).into(),
    }
}

/// Whether a refusal came from the data (the room is taken) rather than from a
/// transient condition (a stale token, a serialization failure, a broken connection):
/// only those are replayed to a retry of the same key.
fn is_decided_by_data(f: &Failure) -> bool {
    f.kind == OpType::Fail
        && (f.error == "room taken"
            || f.error.starts_with("23505")
            || f.error.starts_with("23P01")
            || f.error == "outside the inventory window")
}

/// A short, jittered sleep before retrying a transaction that lost a serialization or
/// deadlock race, so the two losers do not collide again in lockstep.
async fn backoff(attempt: u32) {
    let ms = 2 * u64::from(attempt) + rand::random_range(0..5u64);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
