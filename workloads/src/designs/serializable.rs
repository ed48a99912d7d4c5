//! `serializable` (safe): check-then-insert at SERIALIZABLE, retrying 40001 a bounded
//! number of times.
//!
//! The race it prevents:
//! - t=0   A and B both `SELECT ... overlapping` room 101: nothing (SIRead locks taken).
//! - t=1   A inserts, B inserts: each write conflicts with what the other read.
//! - t=2   A commits -> confirmed. B's insert or commit gets 40001 serialization_failure;
//!   B retries, its check now sees A's booking -> "room taken".
//!
//! Safe only because every writer of `bookings` in this design (book and cancel) runs at
//! SERIALIZABLE; one READ COMMITTED writer would void the guarantee.

use tokio_postgres::IsolationLevel;

use crate::design::Design;

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

/// The `serializable` design (see the module docs).
pub(crate) struct Serializable;

impl Design for Serializable {
    fn name(&self) -> &'static str {
        "serializable"
    }

    fn description(&self) -> &'static str {
        "safe: SERIALIZABLE check-then-insert, 40001 retried a bounded number of times"
    }

    fn isolation(&self) -> IsolationLevel {
        IsolationLevel::Serializable
    }
}

impl DesignSteps for Serializable {
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
