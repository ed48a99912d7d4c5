//! The booking designs, one file each, their registry, and what they share: the
//! transaction handle with its statement cache, the per-op context, and the common SQL.
//!
//! A design's `book` runs inside a transaction the client opened (at the design's
//! isolation level) and returns the new booking's id or why it refused; the client
//! commits, retries 40001/40P01, handles idempotency keys, leases and outcomes.
//!
//! Adding a design: a file here with a unit struct implementing [`Design`] (what it
//! declares) and [`DesignSteps`] (its transaction), then one `mod` line and one entry in
//! [`REGISTRY`] below (a `DesignName` constant is optional).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use checkers::Trace;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement, Transaction};

use crate::design::{Design, DesignName, Schema};
use crate::lease::StopTheWorld;
use crate::request::BookRequest;
use crate::{ClientPause, RunClock};

pub(crate) mod atomic_reserve;
pub(crate) mod check_then_insert;
pub(crate) mod confirm_before_commit;
pub(crate) mod db_exclusion;
pub(crate) mod db_unique;
pub(crate) mod lock_deadline;
pub(crate) mod lock_fencing;
pub(crate) mod lock_only;
pub(crate) mod lock_renewal;
pub(crate) mod row_lock;
pub(crate) mod serializable;

/// Every design, in the story's order: unsafe ones first.
pub(crate) const REGISTRY: &[DesignName] = &[
    DesignName::LockOnly,
    DesignName::CheckThenInsert,
    DesignName::LockRenewal,
    DesignName::LockDeadline,
    DesignName::LockFencing,
    DesignName::DbUnique,
    DesignName::DbExclusion,
    DesignName::AtomicReserve,
    DesignName::RowLock,
    DesignName::Serializable,
    DesignName::ConfirmBeforeCommit,
];

#[allow(non_upper_case_globals)]
impl DesignName {
    /// `lock-only`: the story's design.
    pub const LockOnly: DesignName = DesignName(&lock_only::LockOnly);
    /// `check-then-insert`: no lock, no constraint.
    pub const CheckThenInsert: DesignName = DesignName(&check_then_insert::CheckThenInsert);
    /// `lock-renewal`: lock-only plus a heartbeat.
    pub const LockRenewal: DesignName = DesignName(&lock_renewal::LockRenewal);
    /// `lock-deadline`: lock-only that checks the lease's time left before COMMIT.
    pub const LockDeadline: DesignName = DesignName(&lock_deadline::LockDeadline);
    /// `lock-fencing`: lease plus fencing token.
    pub const LockFencing: DesignName = DesignName(&lock_fencing::LockFencing);
    /// `db-unique`: one row per room-night under a unique index.
    pub const DbUnique: DesignName = DesignName(&db_unique::DbUnique);
    /// `db-exclusion`: an exclusion constraint on the stays.
    pub const DbExclusion: DesignName = DesignName(&db_exclusion::DbExclusion);
    /// `atomic-reserve`: one conditional UPDATE of inventory rows.
    pub const AtomicReserve: DesignName = DesignName(&atomic_reserve::AtomicReserve);
    /// `row-lock`: `SELECT ... FOR UPDATE` on inventory rows.
    pub const RowLock: DesignName = DesignName(&row_lock::RowLock);
    /// `serializable`: SERIALIZABLE check-then-insert.
    pub const Serializable: DesignName = DesignName(&serializable::Serializable);
    /// `confirm-before-commit`: confirms before COMMIT.
    pub const ConfirmBeforeCommit: DesignName =
        DesignName(&confirm_before_commit::ConfirmBeforeCommit);
}

/// Inventory rows, one per room-night of the booking window, each naming the booking
/// that holds it; the setup fills them ([`Schema::inventory`]).
pub(crate) const INVENTORY: Schema = Schema {
    sql: "CREATE TABLE inventory (
              room bigint NOT NULL,
              night date NOT NULL,
              booking bigint REFERENCES bookings (id) ON DELETE SET NULL,
              PRIMARY KEY (room, night))",
    inventory: true,
};

/// The future a design's booking step returns.
pub(crate) type BookFuture<'a> = Pin<Box<dyn Future<Output = Result<i64, TxError>> + Send + 'a>>;

/// A design's booking transaction, crate-private because its arguments are: the client
/// opens the transaction, calls [`DesignSteps::book`], then commits or rolls back.
pub(crate) trait DesignSteps: Design {
    /// The design's steps inside the open transaction: the new booking's id, or why not.
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a>;
}

/// Is any booking of the room overlapping `[$2, $3)`? Half-open ranges: a stay ending on
/// the day another starts does not overlap it.
pub(crate) const CHECK_OVERLAP: &str = "SELECT 1 FROM bookings
     WHERE room = $1 AND check_in < '1970-01-01'::date + $3::int4
       AND '1970-01-01'::date + $2::int4 < check_out
     LIMIT 1";

pub(crate) const INSERT_BOOKING: &str = "INSERT INTO bookings (room, check_in, check_out, request)
     VALUES ($1, '1970-01-01'::date + $2::int4, '1970-01-01'::date + $3::int4, $4)
     RETURNING id";

/// Prepared statements of one connection, by SQL text: one round trip per statement
/// instead of two (parse, then execute), which matters when every round trip carries
/// the injected latency.
#[derive(Debug, Default)]
pub(crate) struct StatementCache(BTreeMap<&'static str, Statement>);

/// Why a design's transaction did not produce a booking.
#[derive(Debug)]
pub(crate) enum TxError {
    /// The design itself refused, definitely (e.g. "room taken"); roll back, `fail`.
    Rejected(&'static str),
    /// Our fencing token is lower than one the database already accepted.
    StaleToken,
    /// Postgres failed the statement (constraint, serialization, connection...).
    Pg(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> TxError {
        TxError::Pg(e)
    }
}

/// An open transaction plus the connection's statement cache.
pub(crate) struct Db<'a> {
    pub(crate) tx: Transaction<'a>,
    stmts: &'a mut StatementCache,
}

impl<'a> Db<'a> {
    pub(crate) fn new(tx: Transaction<'a>, stmts: &'a mut StatementCache) -> Db<'a> {
        Db { tx, stmts }
    }

    async fn statement(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(st) = self.stmts.0.get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare(sql).await?;
        self.stmts.0.insert(sql, st.clone());
        Ok(st)
    }

    pub(crate) async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let st = self.statement(sql).await?;
        self.tx.query(&st, params).await
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let st = self.statement(sql).await?;
        self.tx.execute(&st, params).await
    }

    /// Whether the room already has a booking overlapping the requested stay.
    pub(crate) async fn overlaps(&mut self, req: &BookRequest) -> Result<bool, TxError> {
        let rows = self
            .query(CHECK_OVERLAP, &[&req.room_param(), &req.from.0, &req.to.0])
            .await?;
        Ok(!rows.is_empty())
    }

    /// Inserts the booking row and returns its id.
    pub(crate) async fn insert_booking(&mut self, req: &BookRequest) -> Result<i64, TxError> {
        let rows = self
            .query(
                INSERT_BOOKING,
                &[&req.room_param(), &req.from.0, &req.to.0, &req.request],
            )
            .await?;
        let row = rows
            .first()
            .ok_or(TxError::Rejected("insert returned no id"))?;
        Ok(row.try_get(0)?)
    }
}

/// What a design's `book` gets besides the transaction.
pub(crate) struct BookCtx<'a> {
    pub(crate) req: &'a BookRequest,
    pub(crate) trace: &'a mut Trace,
    pub(crate) clock: RunClock,
    /// The client-pause point for designs that pause between check and insert.
    pub(crate) pause: Option<(&'a ClientPause, &'a StopTheWorld)>,
    /// How long the client sat in a client-pause, if it did.
    pub(crate) paused_ms: Option<u64>,
    /// The fencing token the lease came with.
    pub(crate) token: Option<u64>,
    /// Set by designs that tell the user before COMMIT.
    pub(crate) confirmed_early: bool,
}

impl BookCtx<'_> {
    /// The client-pause point between the availability check and the insert.
    pub(crate) async fn pause_point(&mut self) {
        if let Some((pause, world)) = self.pause {
            if let Some(d) = world.pause_point(pause).await {
                self.paused_ms = Some(d.as_millis() as u64);
            }
        }
    }
}

impl Db<'_> {
    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.tx.commit().await
    }
}
