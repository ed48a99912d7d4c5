//! The booking designs, one file each, and what they share: the transaction handle with
//! its statement cache, the per-op context, and the common SQL.
//!
//! A design's `book` runs inside a transaction the client opened (at the design's
//! isolation level) and returns the new booking's id or why it refused; the client
//! commits, retries 40001/40P01, handles idempotency keys, leases and outcomes.

use std::collections::BTreeMap;

use checkers::Trace;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement, Transaction};

use crate::lease::StopTheWorld;
use crate::request::BookRequest;
use crate::{ClientPause, RunClock};

pub(crate) mod atomic_reserve;
pub(crate) mod check_then_insert;
pub(crate) mod confirm_before_commit;
pub(crate) mod db_exclusion;
pub(crate) mod db_unique;
pub(crate) mod lock_fencing;
pub(crate) mod lock_only;
pub(crate) mod lock_renewal;
pub(crate) mod row_lock;
pub(crate) mod serializable;

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

/// Runs `design`'s booking steps in the open transaction.
pub(crate) async fn book(
    design: crate::DesignName,
    db: &mut Db<'_>,
    ctx: &mut BookCtx<'_>,
) -> Result<i64, TxError> {
    use crate::DesignName as D;
    match design {
        D::LockOnly => lock_only::book(db, ctx).await,
        D::CheckThenInsert => check_then_insert::book(db, ctx).await,
        D::LockRenewal => lock_renewal::book(db, ctx).await,
        D::LockFencing => lock_fencing::book(db, ctx).await,
        D::DbUnique => db_unique::book(db, ctx).await,
        D::DbExclusion => db_exclusion::book(db, ctx).await,
        D::AtomicReserve => atomic_reserve::book(db, ctx).await,
        D::RowLock => row_lock::book(db, ctx).await,
        D::Serializable => serializable::book(db, ctx).await,
        D::ConfirmBeforeCommit => confirm_before_commit::book(db, ctx).await,
    }
}

impl Db<'_> {
    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.tx.commit().await
    }
}
