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

use super::{BookCtx, Db, TxError};

const RESERVE: &str = "UPDATE inventory SET booking = $4
     WHERE room = $1 AND night >= '1970-01-01'::date + $2::int4
       AND night < '1970-01-01'::date + $3::int4 AND booking IS NULL";

pub(crate) async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
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
