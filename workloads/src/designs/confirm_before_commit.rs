//! `confirm-before-commit` (unsafe: durability): checks, inserts, tells the user
//! "confirmed", then commits, trusting a `DEFERRABLE INITIALLY DEFERRED` exclusion
//! constraint to keep the data right.
//!
//! The race it allows:
//! - t=0   A and B both check room 101: free. Both insert (the deferred constraint is not
//!   checked yet). Both send "booking confirmed".
//! - t=1   A commits. B's COMMIT runs the deferred check: 23P01 -> rolled back.
//!
//! The data stays valid (one row), but B holds a confirmation for a booking that does not
//! exist. The same happens when the COMMIT is lost (connection reset, server crash).
//! Caught by `confirmed-is-durable`. The fix: confirm only after COMMIT returns, or write
//! an outbox row in the booking transaction and let a relay send confirmations.

use crate::design::{Design, Schema};
use crate::fault::Fault;

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

/// The `confirm-before-commit` design (see the module docs).
pub(crate) struct ConfirmBeforeCommit;

impl Design for ConfirmBeforeCommit {
    fn name(&self) -> &'static str {
        "confirm-before-commit"
    }

    fn description(&self) -> &'static str {
        "unsafe (durability): confirms before COMMIT; a deferred constraint can still reject the commit"
    }

    fn schema(&self) -> Schema {
        Schema {
            // Deferred: the overlap is only found at COMMIT, after the user was told.
            sql: "CREATE EXTENSION IF NOT EXISTS btree_gist;
                  ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
                  EXCLUDE USING gist (room WITH =, daterange(check_in, check_out) WITH &&)
                  DEFERRABLE INITIALLY DEFERRED",
            inventory: false,
        }
    }

    fn session_sql(&self) -> &'static str {
        // Two COMMITs running the deferred exclusion check on overlapping rows wait for
        // each other: a deadlock by nature. Postgres breaks one per deadlock_timeout (1 s
        // by default), stalling a burst on one room for seconds; 50 ms keeps it a blip.
        // Superuser only: as another user the server's own setting stays, which changes
        // timing, not outcomes (the client ignores the error).
        "SET deadlock_timeout = '50ms'"
    }

    fn caught_by(&self) -> &'static [Fault] {
        // Two users both told 'confirmed' before COMMIT; the deferred constraint rejects
        // one at COMMIT, with or without faults.
        Fault::EVERY
    }
}

impl DesignSteps for ConfirmBeforeCommit {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    let id = db.insert_booking(ctx.req).await?;
    // The user is told now; whatever COMMIT says next cannot be taken back.
    ctx.trace.confirmed = Some(ctx.clock.now());
    ctx.confirmed_early = true;
    Ok(id)
}
