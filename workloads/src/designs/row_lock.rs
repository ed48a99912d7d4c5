//! `row-lock` (safe): `SELECT ... FOR UPDATE` on the stay's inventory rows (READ
//! COMMITTED), then check them and write.
//!
//! The race it prevents:
//! - t=0   A locks the inventory rows of room 101 [12-01,12-04): all free.
//! - t=1   B's `FOR UPDATE` of [12-03,12-05) blocks on A's lock of 12-03.
//! - t=2   A marks them booked and commits -> confirmed. B's lock is granted and the row
//!   re-read at its newest version: 12-03 is booked -> "room taken".
//!
//! It works because the rows exist before anyone books (locking the bookings rows that
//! would conflict does not: rows not yet inserted cannot be locked), and because READ
//! COMMITTED re-reads after the wait (REPEATABLE READ would check its old snapshot).

use crate::design::{Design, Schema};

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

const LOCK_NIGHTS: &str = "SELECT booking FROM inventory
     WHERE room = $1 AND night >= '1970-01-01'::date + $2::int4
       AND night < '1970-01-01'::date + $3::int4
     ORDER BY night FOR UPDATE";

const ASSIGN_NIGHTS: &str = "UPDATE inventory SET booking = $4
     WHERE room = $1 AND night >= '1970-01-01'::date + $2::int4
       AND night < '1970-01-01'::date + $3::int4";

/// The `row-lock` design (see the module docs).
pub(crate) struct RowLock;

impl Design for RowLock {
    fn name(&self) -> &'static str {
        "row-lock"
    }

    fn description(&self) -> &'static str {
        "safe: SELECT ... FOR UPDATE on the inventory rows, then check and write"
    }

    fn schema(&self) -> Schema {
        super::INVENTORY
    }
}

impl DesignSteps for RowLock {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    let req = ctx.req;
    let nights = db
        .query(LOCK_NIGHTS, &[&req.room_param(), &req.from.0, &req.to.0])
        .await?;
    if nights.len() as u64 != req.nights() {
        return Err(TxError::Rejected("outside the inventory window"));
    }
    for night in &nights {
        if night.try_get::<_, Option<i64>>(0)?.is_some() {
            return Err(TxError::Rejected("room taken"));
        }
    }
    let id = db.insert_booking(req).await?;
    db.execute(
        ASSIGN_NIGHTS,
        &[&req.room_param(), &req.from.0, &req.to.0, &id],
    )
    .await?;
    Ok(id)
}
