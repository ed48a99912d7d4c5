//! `check-then-insert` (unsafe): no lock, no constraint, READ COMMITTED.
//!
//! The race it allows:
//! - t=0  A: `SELECT ... overlapping` -> nothing.   B: `SELECT ... overlapping` -> nothing.
//! - t=1  A: `INSERT`, COMMIT -> confirmed.         B: `INSERT`, COMMIT -> confirmed.
//!
//! Each transaction's SELECT sees only rows committed before it ran, and the other's
//! insert does not exist yet, so both pass the check. No fault is needed, only two users
//! on the same room at once; a slow database widens the window. Caught by
//! `no-double-booking` and `db-state`.

use super::{BookCtx, Db, TxError};

pub(crate) async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    db.insert_booking(ctx.req).await
}
