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

use checkers::Guard;

use crate::design::Design;
use crate::fault::Fault;

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

/// The `check-then-insert` design (see the module docs).
pub(crate) struct CheckThenInsert;

impl Design for CheckThenInsert {
    fn name(&self) -> &'static str {
        "check-then-insert"
    }

    fn description(&self) -> &'static str {
        "unsafe: READ COMMITTED check-then-insert with no lock and no constraint"
    }

    /// No lock, no constraint: nothing but the check's timing.
    fn guard(&self) -> Guard {
        Guard::Nothing
    }

    fn caught_by(&self) -> &'static [Fault] {
        // Nothing guards the check: concurrent users double-book with or without faults.
        Fault::EVERY
    }
}

impl DesignSteps for CheckThenInsert {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    db.insert_booking(ctx.req).await
}
