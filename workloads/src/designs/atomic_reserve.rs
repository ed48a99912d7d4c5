//! `atomic-reserve` (safe): inventory rows per room-night exist from setup; one
//! conditional `UPDATE ... WHERE booking IS NULL` claims every night of the stay or the
//! transaction rolls back.
//!
//! The race it prevents:
//! - t=0   A: `UPDATE inventory SET booking=7 WHERE room=101 AND night in [12-01,12-04)
//!   AND booking IS NULL` -> 3 rows (locked until A commits).
//! - t=1   B: the same UPDATE for [12-03,12-05) blocks on A's row of 12-03.
//! - t=2   A commits -> confirmed. B's UPDATE re-checks `booking IS NULL` on the new row
//!   version (READ COMMITTED): 12-03 no longer matches -> 1 row of 2 -> rollback,
//!   "room taken".
//!
//! No error is raised: the design must compare the row count with the number of nights.

use crate::design::{Design, Schema};

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

const RESERVE: &str = "UPDATE inventory SET booking = $4
     WHERE room = $1 AND night >= '1970-01-01'::date + $2::int4
       AND night < '1970-01-01'::date + $3::int4 AND booking IS NULL";

/// The `atomic-reserve` design (see the module docs).
pub(crate) struct AtomicReserve;

impl Design for AtomicReserve {
    fn name(&self) -> &'static str {
        "atomic-reserve"
    }

    fn description(&self) -> &'static str {
        "safe: one conditional UPDATE claims every inventory night or none"
    }

    fn schema(&self) -> Schema {
        super::INVENTORY
    }
}

impl DesignSteps for AtomicReserve {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    let req = ctx.req;
    let id = db.insert_booking(req).await?;
    let claimed = db
        .execute(RESERVE, &[&req.room_param(), &req.from.0, &req.to.0, &id])
        .await?;
    if claimed != req.nights() {
        return Err(TxError::Rejected("room taken"));
    }
    Ok(id)
}
