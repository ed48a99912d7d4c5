//! An example booking service that overbook tests as a black box, written from the
//! service contract alone: `GET /health`, `POST /bookings`, `DELETE /bookings/{id}` and
//! `GET /bookings`, served on `$OVERBOOK_LISTEN`, storing bookings in Postgres
//! (`$DATABASE_URL`) and locking rooms in Redis: one Redis (`$REDIS_URL`), Sentinel
//! (`$REDIS_SENTINEL_URL`, `$REDIS_MASTER_NAME`: ask the sentinel for the primary, ask
//! again when it cannot be reached) or Redlock over every node of `$REDIS_URLS` (a lease
//! is a majority of grants within its validity), whichever overbook gave
//! (`--lock-service`). Stays are half-open: `[12-01, 12-03)` and `[12-03, 12-05)` of one
//! room do not overlap.
//!
//! `BOOKING_MODE` picks the design.
//!
//! `buggy` (the default) is the seed story's lock-only design: take the room's Redis
//! lease, check for an overlapping stay, insert, commit, release. Only the lease keeps
//! two bookings of one night apart, and a lease is a promise for `OVERBOOK_LOCK_TTL_MS`
//! only. When the holder is slower than that (a slow write, a GC pause, or
//! `BOOKING_WORK_MS` of its own work), the next user gets the lease while the first
//! still acts on its check:
//!
//! ```text
//! A  SET lock:room:3 NX PX 500 -> OK   SELECT overlap: none   ...600 ms of work...
//! B        (A's lease expires at 500 ms)   SET lock:room:3 NX -> OK   SELECT: none
//! B                                        INSERT, COMMIT -> 201
//! A                                        INSERT, COMMIT -> 201   room 3 booked twice
//! ```
//!
//! `fixed`: Postgres enforces one stay per room-night with an exclusion constraint, so
//! in the same timeline A's INSERT fails with 23P01 and A answers 409, whatever the lease
//! did. The lease is still taken, as an optimisation (users of one room queue in Redis
//! instead of colliding in Postgres), but nothing depends on it: when Redis is down or
//! the lease stays busy, the booking goes ahead without it.
//!
//! Telling the guest: when `OVERBOOK_NOTIFY_URL` is set, every booking e-mails its guest
//! "confirmed" and every cancel "cancelled", by POSTing `{"kind", "booking", "request"}`
//! there (docs/service.md). `buggy` sends from the request path: "confirmed" as soon as
//! the INSERT returns an id, before COMMIT (a COMMIT that then fails leaves a phantom
//! confirmation in the guest's inbox), again whenever it answers "booked" to a retry of
//! a request that already booked (two e-mails for one booking), and "cancelled" before
//! the cancel's COMMIT. `fixed` writes an outbox row in the booking's (or cancel's) own
//! transaction, so the message is owed exactly when the change commits, and a worker
//! delivers each row after the commit under the row's id as the message id: at least
//! once, one message for the guest.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// Enough for the 16 concurrent users overbook runs by default, with room for a DELETE
/// and the final read, and few enough that two replicas stay under Postgres's default
/// of 100 connections.
const POOL_SIZE: usize = 32;

/// Attempts of one booking transaction when Postgres aborts it as a deadlock (40P01:
/// two simultaneous inserts checking the exclusion constraint) or a serialisation
/// failure (40001). Both mean "try again", not "taken"; after the last one we say 409.
const ATTEMPTS: usize = 3;

/// How often a waiter asks Redis for a busy lease again.
const LEASE_RETRY: Duration = Duration::from_millis(10);

/// A waiter gives up after this many lease lengths: longer than one lease, so a holder
/// that died hands the room over instead of every other user failing "room busy".
const LEASE_WAIT_LEASES: u32 = 2;

/// Serialises the schema DDL of replicas that start at the same moment against one
/// empty database: without it two `CREATE TABLE IF NOT EXISTS` (or two `CREATE
/// EXTENSION IF NOT EXISTS`) can both see nothing and one fails on a duplicate key.
/// The key is "overbook" in ASCII.
const SCHEMA_LOCK: i64 = 0x6f76_6572_626f_6f6b;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bookings (
    id bigserial PRIMARY KEY,
    room bigint NOT NULL,
    check_in date NOT NULL,
    check_out date NOT NULL,
    request text NOT NULL,
    CHECK (check_in < check_out));
CREATE INDEX IF NOT EXISTS bookings_by_room ON bookings (room, check_in);
CREATE INDEX IF NOT EXISTS bookings_by_request ON bookings (request);";

/// The fixed design's guard. Added by name if missing, not through `CREATE TABLE`, so a
/// table created by a buggy replica gets it too (or the start fails loudly, if that
/// table already holds a double booking).
const SCHEMA_FIXED: &str = "
CREATE EXTENSION IF NOT EXISTS btree_gist;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'bookings'::regclass AND conname = 'bookings_no_overlap') THEN
        ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
            EXCLUDE USING gist (room WITH =, daterange(check_in, check_out) WITH &&);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'bookings'::regclass AND conname = 'bookings_request_key') THEN
        ALTER TABLE bookings ADD CONSTRAINT bookings_request_key UNIQUE (request);
    END IF;
END $$;";

const FIND_REQUEST: &str = "
SELECT id, room, to_char(check_in, 'YYYY-MM-DD'), to_char(check_out, 'YYYY-MM-DD')
FROM bookings WHERE request = $1 LIMIT 1";

/// Half-open stays overlap when each starts before the other ends.
const FIND_OVERLAP: &str = "
SELECT id FROM bookings
WHERE room = $1 AND check_in < $3::text::date AND check_out > $2::text::date LIMIT 1";

const INSERT_BUGGY: &str = "
INSERT INTO bookings (room, check_in, check_out, request)
VALUES ($1, $2::text::date, $3::text::date, $4) RETURNING id";

/// A concurrent retry of the same request waits for the first insert to commit, then
/// inserts nothing; the caller then returns the first one's booking.
const INSERT_FIXED: &str = "
INSERT INTO bookings (room, check_in, check_out, request)
VALUES ($1, $2::text::date, $3::text::date, $4)
ON CONFLICT (request) DO NOTHING RETURNING id";

const LIST: &str = "
SELECT id, room, to_char(check_in, 'YYYY-MM-DD'), to_char(check_out, 'YYYY-MM-DD'), request
FROM bookings ORDER BY id";

/// The fixed design's outbox: one row per message owed to a guest, written in the
/// transaction that makes it true.
const SCHEMA_OUTBOX: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    booking bigint NOT NULL,
    request text NOT NULL,
    sent boolean NOT NULL DEFAULT false,
    UNIQUE (kind, booking));";

const OUTBOX_ADD: &str = "
INSERT INTO outbox (kind, booking, request) VALUES ($1, $2, $3)
ON CONFLICT (kind, booking) DO NOTHING";

/// Unsent rows no other worker holds, oldest first: two replicas never send one row at
/// once, and a row whose sender died is claimed again.
const OUTBOX_CLAIM: &str = "
SELECT id, kind, booking, request FROM outbox WHERE NOT sent
ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED";

/// How long the outbox worker waits when nothing is owed (or the sink refused), and
/// how long one delivery may take before it is tried again later.
const OUTBOX_IDLE: Duration = Duration::from_millis(20);
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Deletes the lease only while it is still ours: after it expired, someone else may
/// hold it, and a plain `DEL` would free the room under them.
const RELEASE: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Buggy,
    Fixed,
}

struct Service {
    mode: Mode,
    pool: Pool,
    /// `None` only in fixed mode without Redis: it then books without a lease.
    locks: Option<Locks>,
    ttl: Duration,
    /// `BOOKING_WORK_MS`: the service's own work between the check and the insert.
    work: Duration,
    /// Where guests are told (`OVERBOOK_NOTIFY_URL`); `None`: nobody is told.
    notify: Option<Notify>,
}

/// A valid `POST /bookings` body.
#[derive(Debug, Deserialize)]
struct Stay {
    room: i64,
    from: String,
    to: String,
    request: String,
}

/// What the service saw inside one booking, in nanoseconds since the Unix epoch, so
/// overbook can line it up with its history and show the race.
#[derive(Debug, Default, Serialize)]
struct Trace {
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_acquired: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_ttl_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_released: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    db_begin: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    db_commit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed: Option<u64>,
}

/// How one booking attempt ended.
#[derive(Debug)]
enum Verdict {
    /// Committed (or an earlier attempt of the same request was): 201.
    Booked(i64),
    /// Definitely not booked: 409.
    Taken(String),
    /// Postgres aborted the transaction for a reason worth one more try.
    Retry(String),
    /// Unknown whether it was booked (e.g. the connection broke during COMMIT): 5xx.
    Internal(String),
}

/// The room's Redis lease: the key and the random value that proves it is ours.
#[derive(Clone)]
struct Lease {
    key: String,
    value: String,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The server's message and SQLSTATE, or the chain of causes: tokio-postgres's
/// `Display` says only "db error" or "error connecting to server", which tells a reader
/// of service.log nothing.
fn explain(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("postgres: {} ({})", db.message(), db.code().code());
    }
    let mut text = format!("postgres: {err}");
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn explain_pool(err: &PoolError) -> String {
    match err {
        PoolError::Backend(err) => explain(err),
        other => format!("postgres pool: {other}"),
    }
}

/// The one place a Postgres error becomes an answer. A constraint violation means the
/// room (or the request key) is taken; a deadlock or serialisation failure is worth a
/// retry; anything else, a broken connection during COMMIT included, leaves the outcome
/// unknown, so the user must get a 5xx, never a 409.
fn classify(err: &tokio_postgres::Error) -> Verdict {
    match err.code() {
        Some(c) if *c == SqlState::EXCLUSION_VIOLATION => {
            Verdict::Taken("the room is already booked for some of these nights".into())
        }
        // UNIQUE(request): a concurrent attempt of the same request committed first;
        // the next attempt finds its booking and returns it.
        Some(c)
            if *c == SqlState::UNIQUE_VIOLATION
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            Verdict::Retry(explain(err))
        }
        _ => Verdict::Internal(explain(err)),
    }
}

impl Service {
    async fn book(&self, stay: &Stay, trace: &mut Trace) -> Verdict {
        let lease = match self.take_lease(stay.room, trace).await {
            Ok(lease) => lease,
            Err(verdict) => return verdict,
        };
        let mut verdict = Verdict::Internal("no attempt made".into());
        for _ in 0..ATTEMPTS {
            verdict = match self.transact(stay, trace).await {
                Ok(verdict) => verdict,
                Err(err) => classify(&err),
            };
            if !matches!(verdict, Verdict::Retry(_)) {
                break;
            }
        }
        if let Some(lease) = lease {
            self.release(lease, trace).await;
        }
        match verdict {
            Verdict::Retry(why) => {
                Verdict::Taken(format!("gave up after {ATTEMPTS} attempts: {why}"))
            }
            other => other,
        }
    }

    /// Buggy mode: the lease is the only guard, so no lease, no booking (busy → 409,
    /// Redis failing → 503). Fixed mode: the lease only saves work, so without one the
    /// booking goes ahead and the database decides.
    async fn take_lease(&self, room: i64, trace: &mut Trace) -> Result<Option<Lease>, Verdict> {
        let Some(locks) = &self.locks else {
            return Ok(None);
        };
        match (self.mode, locks.acquire(room, self.ttl).await) {
            (_, Ok(Some((lease, validity)))) => {
                trace.lock_key = Some(format!("room:{room}"));
                trace.lock_acquired = Some(now_ns());
                trace.lock_ttl_ms = Some((validity.as_millis() as u64).max(1));
                Ok(Some(lease))
            }
            (Mode::Buggy, Ok(None)) => Err(Verdict::Taken(format!(
                "room {room} is being booked by someone else"
            ))),
            (Mode::Buggy, Err(err)) => Err(Verdict::Internal(format!("redis: {err}"))),
            (Mode::Fixed, Ok(None) | Err(_)) => Ok(None),
        }
    }

    /// `lock_released` is when we stop believing we hold the lease, taken before the
    /// release is sent: the next holder can get the lease as soon as the delete runs,
    /// before our reply comes back. A failed release only leaves the lease to expire.
    async fn release(&self, lease: Lease, trace: &mut Trace) {
        trace.lock_released = Some(now_ns());
        let Some(locks) = &self.locks else {
            return;
        };
        if let Err(err) = locks.release(&lease).await {
            eprintln!("releasing {}: {err}", lease.key);
        }
    }

    /// One booking transaction. Dropping `tx` without COMMIT rolls it back.
    async fn transact(
        &self,
        stay: &Stay,
        trace: &mut Trace,
    ) -> Result<Verdict, tokio_postgres::Error> {
        let mut client = match self.pool.get().await {
            Ok(client) => client,
            Err(err) => return Ok(Verdict::Internal(explain_pool(&err))),
        };
        trace.db_begin = Some(now_ns());
        let tx = client.transaction().await?;
        // A retry of a request that was already booked gets that booking back instead of
        // a second one. In buggy mode this lookup is as racy as the overlap check below:
        // only the lease keeps two attempts of one request apart.
        if let Some(verdict) = replay(&tx, stay).await? {
            if let (Mode::Buggy, Some(notify), Verdict::Booked(id)) =
                (self.mode, &self.notify, &verdict)
            {
                // The second bug: the request path e-mails whenever it answers "booked",
                // so a retry whose first answer was lost is a second e-mail for one
                // booking. The outbox sends one per booking.
                notify.send("confirmed", *id, &stay.request, None).await;
            }
            return Ok(verdict);
        }
        if self.mode == Mode::Buggy {
            // The check the lease is trusted to keep true until COMMIT. Nothing stops
            // another user from inserting an overlapping stay once the lease expires.
            let stmt = tx.prepare_cached(FIND_OVERLAP).await?;
            if tx
                .query_opt(&stmt, &[&stay.room, &stay.from, &stay.to])
                .await?
                .is_some()
            {
                return Ok(Verdict::Taken(format!(
                    "room {} is already booked for some of these nights",
                    stay.room
                )));
            }
        }
        if !self.work.is_zero() {
            // Pricing, payment pre-authorisation: inside the critical section, holding
            // the lease (and, in fixed mode, an open transaction).
            tokio::time::sleep(self.work).await;
        }
        let insert = match self.mode {
            Mode::Buggy => INSERT_BUGGY,
            Mode::Fixed => INSERT_FIXED,
        };
        let stmt = tx.prepare_cached(insert).await?;
        let inserted = tx
            .query_opt(&stmt, &[&stay.room, &stay.from, &stay.to, &stay.request])
            .await?;
        let verdict = match inserted {
            Some(row) => {
                let id: i64 = row.get(0);
                self.owe(&tx, "confirmed", id, &stay.request).await?;
                Verdict::Booked(id)
            }
            // ON CONFLICT (request) DO NOTHING: the same request committed meanwhile.
            None => match replay(&tx, stay).await? {
                Some(verdict) => verdict,
                None => Verdict::Retry("the request's booking vanished".into()),
            },
        };
        tx.commit().await?;
        trace.db_commit = Some(now_ns());
        Ok(verdict)
    }
}

impl Service {
    /// Tells the guest `kind` about `booking`, inside the transaction that makes it
    /// true: buggy sends it now, before COMMIT (the bug); fixed writes an outbox row
    /// that exists exactly when this transaction commits.
    async fn owe(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        kind: &str,
        booking: i64,
        request: &str,
    ) -> Result<(), tokio_postgres::Error> {
        let Some(notify) = &self.notify else {
            return Ok(());
        };
        match self.mode {
            Mode::Buggy => {
                notify.send(kind, booking, request, None).await;
            }
            Mode::Fixed => {
                let stmt = tx.prepare_cached(OUTBOX_ADD).await?;
                tx.execute(&stmt, &[&kind, &booking, &request]).await?;
            }
        }
        Ok(())
    }

    /// Deletes a booking; true when one was deleted (its nights are free again).
    async fn cancel(&self, id: i64) -> Result<bool, String> {
        let mut client = self.pool.get().await.map_err(|e| explain_pool(&e))?;
        let tx = client.transaction().await.map_err(|e| explain(&e))?;
        let deleted = tx
            .query_opt(
                "DELETE FROM bookings WHERE id = $1 RETURNING request",
                &[&id],
            )
            .await
            .map_err(|e| explain(&e))?;
        if let Some(row) = &deleted {
            let request: String = row.get(0);
            self.owe(&tx, "cancelled", id, &request)
                .await
                .map_err(|e| explain(&e))?;
        }
        tx.commit().await.map_err(|e| explain(&e))?;
        Ok(deleted.is_some())
    }
}

/// Where the guests' messages are POSTed (`OVERBOOK_NOTIFY_URL`): a plain `http://`
/// URL on loopback, so one small HTTP/1.1 request per message is all it takes.
struct Notify {
    /// `host:port`, for the connection and the `Host` header.
    authority: String,
    path: String,
}

impl Notify {
    fn from_env() -> Result<Option<Notify>, String> {
        let Ok(url) = std::env::var("OVERBOOK_NOTIFY_URL") else {
            return Ok(None);
        };
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("OVERBOOK_NOTIFY_URL={url:?}: expected http://HOST:PORT/PATH")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Ok(Some(Notify {
            authority: authority.to_string(),
            path: path.to_string(),
        }))
    }

    /// POSTs one message; true when the sink accepted it (2xx). `id` is the message's
    /// own idempotency key: sent again after a crash, it is still one message.
    async fn send(&self, kind: &str, booking: i64, request: &str, id: Option<String>) -> bool {
        let mut message = json!({ "kind": kind, "booking": booking, "request": request });
        if let Some(id) = id {
            message["id"] = json!(id);
        }
        match tokio::time::timeout(NOTIFY_TIMEOUT, self.post(&message.to_string())).await {
            Ok(Ok(status)) if (200..300).contains(&status) => true,
            Ok(Ok(status)) => {
                eprintln!("notify {kind} {request}: answered {status}");
                false
            }
            Ok(Err(err)) => {
                eprintln!("notify {kind} {request}: {err}");
                false
            }
            Err(_) => {
                eprintln!("notify {kind} {request}: no answer in {NOTIFY_TIMEOUT:?}");
                false
            }
        }
    }

    /// One request on its own connection; the answer's status code.
    async fn post(&self, body: &str) -> std::io::Result<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(&self.authority).await?;
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            self.authority,
            body.len()
        );
        conn.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await?;
        // "HTTP/1.1 200 OK": the code is the second word of the status line.
        let line = answer.split(|&b| b == b'\r').next().unwrap_or_default();
        std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
    }
}

/// Delivers the outbox after the commits that wrote it, forever. A row is marked sent
/// in the transaction that claimed it, so a failure anywhere before that COMMIT leaves
/// it owed and it is sent again later, under the same message id.
async fn outbox_worker(pool: Pool, service: Arc<Service>) {
    loop {
        match deliver_outbox(&pool, &service).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(OUTBOX_IDLE).await,
            Err(why) => {
                eprintln!("outbox: {why}");
                tokio::time::sleep(OUTBOX_IDLE).await;
            }
        }
    }
}

/// One round of the outbox: true when it sent everything it claimed and there may be
/// more owed, false when it was idle or the sink refused (wait before asking again).
async fn deliver_outbox(pool: &Pool, service: &Service) -> Result<bool, String> {
    let Some(notify) = &service.notify else {
        return Ok(false);
    };
    let mut client = pool.get().await.map_err(|e| explain_pool(&e))?;
    let tx = client.transaction().await.map_err(|e| explain(&e))?;
    let rows = tx.query(OUTBOX_CLAIM, &[]).await.map_err(|e| explain(&e))?;
    let mut owed = 0;
    for row in &rows {
        let (row_id, kind, booking, request): (i64, String, i64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if notify
            .send(&kind, booking, &request, Some(format!("outbox-{row_id}")))
            .await
        {
            tx.execute("UPDATE outbox SET sent = true WHERE id = $1", &[&row_id])
                .await
                .map_err(|e| explain(&e))?;
        } else {
            owed += 1;
        }
    }
    tx.commit().await.map_err(|e| explain(&e))?;
    Ok(!rows.is_empty() && owed == 0)
}

/// The answer already given to this request key, if it booked: the same booking for the
/// same stay, "taken" for a different stay under a reused key.
async fn replay(
    tx: &deadpool_postgres::Transaction<'_>,
    stay: &Stay,
) -> Result<Option<Verdict>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(FIND_REQUEST).await?;
    let Some(row) = tx.query_opt(&stmt, &[&stay.request]).await? else {
        return Ok(None);
    };
    let (id, room, from, to): (i64, i64, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if (room, from.as_str(), to.as_str()) == (stay.room, stay.from.as_str(), stay.to.as_str()) {
        Ok(Some(Verdict::Booked(id)))
    } else {
        Ok(Some(Verdict::Taken(format!(
            "request {} already booked room {room} {from}..{to}",
            stay.request
        ))))
    }
}

/// The lock service overbook gave (`--lock-service`), each reached as its own clients
/// reach it.
enum Locks {
    /// One Redis (`REDIS_URL`).
    Single(ConnectionManager),
    /// Sentinel (`REDIS_SENTINEL_URL`, `REDIS_MASTER_NAME`).
    Sentinel(Sentinel),
    /// Redlock over every node of `REDIS_URLS`, in order.
    Redlock(Vec<ConnectionManager>),
}

/// A Sentinel client: the lease is taken on the primary the sentinel names. A primary
/// that fails (killed, failed over, demoted to a read-only replica) is forgotten and the
/// sentinel asked again, until the wait for the lease ends: a failover then hands the
/// waiters to the promoted replica.
struct Sentinel {
    sentinel: ConnectionManager,
    /// The sentinel's address and credentials; every server of the topology shares the
    /// password, so the primary's connection is this with the primary's address.
    info: redis::ConnectionInfo,
    master: String,
    primary: std::sync::Mutex<Option<ConnectionManager>>,
}

impl Sentinel {
    async fn primary(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(p) = self.primary.lock().unwrap().clone() {
            return Ok(p);
        }
        let (host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master)
            .query_async(&mut self.sentinel.clone())
            .await?;
        let info = self
            .info
            .clone()
            .set_addr(redis::ConnectionAddr::Tcp(host, port));
        let p = ConnectionManager::new_lazy_with_config(
            redis::Client::open(info)?,
            manager_config(Duration::from_secs(1)),
        )?;
        *self.primary.lock().unwrap() = Some(p.clone());
        Ok(p)
    }

    /// `f` on the primary; an error forgets it, so the next call asks the sentinel.
    async fn on_primary<T>(
        &self,
        f: impl AsyncFnOnce(ConnectionManager) -> Result<T, redis::RedisError>,
    ) -> Result<T, redis::RedisError> {
        let result = f(self.primary().await?).await;
        if result.is_err() {
            *self.primary.lock().unwrap() = None;
        }
        result
    }
}

/// Connects on first use and reconnects after a broken connection; a reply slower than
/// `timeout` counts as Redis failing.
fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
}

/// `SET key value NX PX ttl`: whether it was granted.
async fn set_nx(
    mut conn: ConnectionManager,
    lease: &Lease,
    ttl: Duration,
) -> Result<bool, redis::RedisError> {
    let granted: Option<String> = redis::cmd("SET")
        .arg(&lease.key)
        .arg(&lease.value)
        .arg("NX")
        .arg("PX")
        .arg((ttl.as_millis() as u64).max(1))
        .query_async(&mut conn)
        .await?;
    Ok(granted.is_some())
}

/// Deletes the lease where it is still ours.
async fn unlock(mut conn: ConnectionManager, lease: &Lease) -> Result<(), redis::RedisError> {
    redis::Script::new(RELEASE)
        .key(&lease.key)
        .arg(&lease.value)
        .invoke_async::<i64>(&mut conn)
        .await
        .map(|_| ())
}

/// Deletes the lease on every node at once, each within `timeout`; a node that cannot
/// be reached expires the key by itself.
async fn unlock_everywhere(nodes: &[ConnectionManager], lease: &Lease, timeout: Duration) {
    let mut asked = tokio::task::JoinSet::new();
    for node in nodes {
        let (node, lease) = (node.clone(), lease.clone());
        asked.spawn(async move { tokio::time::timeout(timeout, unlock(node, &lease)).await });
    }
    while asked.join_next().await.is_some() {}
}

/// How long a Redlock node gets to answer: a fifth of the lease, 5 ms to 1 s (small
/// against the lease, as the specification asks, so a down node costs little).
fn node_timeout(ttl: Duration) -> Duration {
    (ttl / 5).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

impl Locks {
    /// The lock service in the environment overbook gave: Redlock over `REDIS_URLS`,
    /// Sentinel at `REDIS_SENTINEL_URL`, else the one Redis at `REDIS_URL` (`None`: no
    /// Redis at all).
    fn from_env(ttl: Duration) -> Result<Option<Locks>, String> {
        let client =
            |name: &str, url: &str| redis::Client::open(url).map_err(|e| format!("{name}: {e}"));
        let manager = |c: redis::Client, timeout| {
            ConnectionManager::new_lazy_with_config(c, manager_config(timeout))
                .map_err(|e| format!("redis: {e}"))
        };
        if let Ok(urls) = std::env::var("REDIS_URLS") {
            let nodes = urls
                .split(',')
                .filter(|u| !u.is_empty())
                .map(|u| manager(client("REDIS_URLS", u)?, node_timeout(ttl)))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Some(Locks::Redlock(nodes)));
        }
        if let Ok(url) = std::env::var("REDIS_SENTINEL_URL") {
            let c = client("REDIS_SENTINEL_URL", &url)?;
            return Ok(Some(Locks::Sentinel(Sentinel {
                info: c.get_connection_info().clone(),
                sentinel: manager(c, Duration::from_secs(1))?,
                master: std::env::var("REDIS_MASTER_NAME").unwrap_or_else(|_| "mymaster".into()),
                primary: std::sync::Mutex::new(None),
            })));
        }
        match std::env::var("REDIS_URL") {
            Ok(url) => Ok(Some(Locks::Single(manager(
                client("REDIS_URL", &url)?,
                Duration::from_secs(1),
            )?))),
            Err(_) => Ok(None),
        }
    }

    /// The room's lease and its validity, asking every 10 ms until granted or until
    /// [`LEASE_WAIT_LEASES`] leases have passed (`Ok(None)`: busy all along).
    async fn acquire(
        &self,
        room: i64,
        ttl: Duration,
    ) -> Result<Option<(Lease, Duration)>, redis::RedisError> {
        let lease = Lease {
            key: format!("lock:room:{room}"),
            value: format!("{:032x}", rand::random::<u128>()),
        };
        let deadline = tokio::time::Instant::now() + ttl * LEASE_WAIT_LEASES;
        loop {
            let validity = match self {
                Locks::Single(conn) => set_nx(conn.clone(), &lease, ttl).await?.then_some(ttl),
                Locks::Sentinel(s) => {
                    match s.on_primary(async |c| set_nx(c, &lease, ttl).await).await {
                        Ok(granted) => granted.then_some(ttl),
                        // The primary may be a failover away: ask again until the deadline.
                        Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                        Err(_) => None,
                    }
                }
                Locks::Redlock(nodes) => redlock_round(nodes, &lease, ttl, deadline).await?,
            };
            if let Some(v) = validity {
                return Ok(Some((lease, v)));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(LEASE_RETRY).await;
        }
    }

    /// Deletes the lease wherever it is still ours.
    async fn release(&self, lease: &Lease) -> Result<(), redis::RedisError> {
        match self {
            Locks::Single(conn) => unlock(conn.clone(), lease).await,
            Locks::Sentinel(s) => s.on_primary(async |c| unlock(c, lease).await).await,
            Locks::Redlock(nodes) => {
                unlock_everywhere(nodes, lease, Duration::from_secs(1)).await;
                Ok(())
            }
        }
    }
}

/// One Redlock attempt (redis.io, "Distributed Locks with Redis"): `SET NX PX` on every
/// node at once, each within [`node_timeout`]; held iff a majority granted it and the
/// validity `ttl - elapsed - (ttl/100 + 2 ms)` is positive. Otherwise unlocks on every
/// node (a grant whose reply was lost still holds) and returns `Ok(None)`, or the
/// failure once the deadline passed with too few nodes answering. At once, not one
/// after another: behind a node that times out, the users of one room would split the
/// nodes between them round after round, and nobody would hold a majority.
async fn redlock_round(
    nodes: &[ConnectionManager],
    lease: &Lease,
    ttl: Duration,
    deadline: tokio::time::Instant,
) -> Result<Option<Duration>, redis::RedisError> {
    let quorum = nodes.len() / 2 + 1;
    let began = tokio::time::Instant::now();
    let mut asked = tokio::task::JoinSet::new();
    for node in nodes {
        let (node, lease) = (node.clone(), lease.clone());
        asked.spawn(async move {
            tokio::time::timeout(node_timeout(ttl), set_nx(node, &lease, ttl)).await
        });
    }
    let (mut granted, mut failed) = (0, 0);
    while let Some(answer) = asked.join_next().await {
        match answer {
            Ok(Ok(Ok(true))) => granted += 1,
            Ok(Ok(Ok(false))) => {}
            _ => failed += 1,
        }
    }
    let drift = ttl / 100 + Duration::from_millis(2);
    let validity = ttl
        .checked_sub(began.elapsed())
        .and_then(|v| v.checked_sub(drift))
        .filter(|v| !v.is_zero());
    if granted >= quorum {
        if let Some(v) = validity {
            return Ok(Some(v));
        }
    }
    unlock_everywhere(nodes, lease, node_timeout(ttl)).await;
    // Spread the retries, so clients that split the nodes between them do not split
    // them again in lockstep.
    tokio::time::sleep(LEASE_RETRY.mul_f64(rand::random::<f64>())).await;
    if failed > nodes.len() - quorum && tokio::time::Instant::now() >= deadline {
        return Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "too few Redlock nodes answered",
        )));
    }
    Ok(None)
}

/// `YYYY-MM-DD`, a day that exists.
fn is_iso_day(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |digits: &str| -> Option<u32> {
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (Some(y), Some(m), Some(d)) = (number(&s[0..4]), number(&s[5..7]), number(&s[8..10]))
    else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// The body of `POST /bookings`, or why it is a bad request (400).
fn parse_stay(body: &[u8]) -> Result<Stay, String> {
    let stay: Stay = serde_json::from_slice(body).map_err(|e| format!("bad body: {e}"))?;
    if !is_iso_day(&stay.from) || !is_iso_day(&stay.to) {
        return Err("from and to must be days that exist, as YYYY-MM-DD".into());
    }
    // Same-length ISO dates compare as strings the way they compare as days.
    if stay.from >= stay.to {
        return Err("from must be before to (to is the check-out day)".into());
    }
    Ok(stay)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn post_booking(State(service): State<Arc<Service>>, body: Bytes) -> Response {
    let stay = match parse_stay(&body) {
        Ok(stay) => stay,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let mut trace = Trace::default();
    match service.book(&stay, &mut trace).await {
        Verdict::Booked(id) => {
            // Only now, after COMMIT, may the user be told "confirmed".
            trace.confirmed = Some(now_ns());
            let answer = json!({ "id": id, "trace": trace });
            (StatusCode::CREATED, Json(answer)).into_response()
        }
        Verdict::Taken(why) => {
            let answer = json!({ "error": why, "trace": trace });
            (StatusCode::CONFLICT, Json(answer)).into_response()
        }
        Verdict::Retry(why) | Verdict::Internal(why) => {
            eprintln!("POST /bookings {}: {why}", stay.request);
            let answer = json!({ "error": why, "trace": trace });
            (StatusCode::SERVICE_UNAVAILABLE, Json(answer)).into_response()
        }
    }
}

async fn delete_booking(State(service): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    // An id that is not a number names no booking.
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::NOT_FOUND, "no such booking");
    };
    match service.cancel(id).await {
        Ok(false) => error(StatusCode::NOT_FOUND, "no such booking"),
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => {
            eprintln!("DELETE /bookings/{id}: {why}");
            error(StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }
}

async fn list_bookings(State(service): State<Arc<Service>>) -> Response {
    let rows = match service.pool.get().await {
        Ok(client) => client.query(LIST, &[]).await.map_err(|e| explain(&e)),
        Err(e) => Err(explain_pool(&e)),
    };
    match rows {
        Ok(rows) => {
            let bookings: Vec<_> = rows
                .iter()
                .map(|row| {
                    json!({
                        "id": row.get::<_, i64>(0),
                        "room": row.get::<_, i64>(1),
                        "from": row.get::<_, String>(2),
                        "to": row.get::<_, String>(3),
                        "request": row.get::<_, String>(4),
                    })
                })
                .collect();
            Json(bookings).into_response()
        }
        Err(why) => {
            eprintln!("GET /bookings: {why}");
            error(StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }
}

fn env_millis(name: &str, default: u64) -> Result<Duration, String> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{name}={v:?} is not a number of milliseconds")),
        Err(_) => Ok(Duration::from_millis(default)),
    }
}

async fn create_schema(pool: &Pool, mode: Mode, outbox: bool) -> Result<(), String> {
    let mut client = pool.get().await.map_err(|e| explain_pool(&e))?;
    let tx = client.transaction().await.map_err(|e| explain(&e))?;
    // Held until COMMIT (or until a failure rolls back): a replica starting at the same
    // moment waits here, then finds everything created.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(|e| format!("schema lock: {}", explain(&e)))?;
    tx.batch_execute(SCHEMA)
        .await
        .map_err(|e| format!("schema: {}", explain(&e)))?;
    if mode == Mode::Fixed {
        tx.batch_execute(SCHEMA_FIXED)
            .await
            .map_err(|e| format!("schema (fixed): {}", explain(&e)))?;
        if outbox {
            tx.batch_execute(SCHEMA_OUTBOX)
                .await
                .map_err(|e| format!("schema (outbox): {}", explain(&e)))?;
        }
    }
    tx.commit()
        .await
        .map_err(|e| format!("schema: {}", explain(&e)))
}

async fn start() -> Result<(), String> {
    let mode = match std::env::var("BOOKING_MODE").as_deref() {
        Ok("buggy") | Err(_) => Mode::Buggy,
        Ok("fixed") => Mode::Fixed,
        Ok(other) => return Err(format!("BOOKING_MODE={other:?}: expected buggy or fixed")),
    };
    let listen = std::env::var("OVERBOOK_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let database_url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let ttl = env_millis("OVERBOOK_LOCK_TTL_MS", 500)?;
    let work = env_millis("BOOKING_WORK_MS", 0)?;
    if ttl.is_zero() {
        return Err("OVERBOOK_LOCK_TTL_MS must be above zero".into());
    }

    let pg_config = tokio_postgres::Config::from_str(&database_url)
        .map_err(|e| format!("DATABASE_URL: {e}"))?;
    let manager = Manager::from_config(
        pg_config,
        NoTls,
        ManagerConfig {
            // Fast: a connection the fault proxy cut shows as closed and is replaced;
            // one cut silently fails its next query, and that request answers 5xx.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .build()
        .map_err(|e| format!("postgres pool: {e}"))?;
    let notify = Notify::from_env()?;
    create_schema(&pool, mode, notify.is_some()).await?;

    // A lock service failing: buggy mode answers 503, fixed mode books without the lease.
    let locks = Locks::from_env(ttl)?;
    if locks.is_none() && mode == Mode::Buggy {
        return Err("REDIS_URL is not set (buggy mode locks in Redis)".into());
    }

    let service = Arc::new(Service {
        mode,
        pool,
        locks,
        ttl,
        work,
        notify,
    });
    if service.mode == Mode::Fixed && service.notify.is_some() {
        tokio::spawn(outbox_worker(service.pool.clone(), service.clone()));
    }
    let app = Router::new()
        .route("/health", get(health))
        .route("/bookings", get(list_bookings).post(post_booking))
        .route("/bookings/{id}", delete(delete_booking))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?
        .tap_io(|tcp| {
            // Small request, small answer: don't let Nagle hold either back.
            let _ = tcp.set_nodelay(true);
        });
    eprintln!(
        "booking-service-example: {mode:?} mode on {listen}, lease {} ms, work {} ms",
        ttl.as_millis(),
        work.as_millis()
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    tokio::select! {
        served = axum::serve(listener, app) => served.map_err(|e| format!("serving: {e}")),
        // No draining: a booking in flight either committed or rolls back when its
        // connection closes, and its user sees a broken connection ("unknown"), which
        // is the truth.
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[tokio::main]
async fn main() {
    let code = match start().await {
        Ok(()) => 0,
        Err(why) => {
            eprintln!("booking-service-example: {why}");
            1
        }
    };
    // Exit now rather than wait for tasks still blocked on a stalled database.
    std::process::exit(code);
}
