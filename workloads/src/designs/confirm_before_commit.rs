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

use super::{BookCtx, Db, TxError};

pub(crate) async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    let id = db.insert_booking(ctx.req).await?;
    // The user is told now; whatever COMMIT says next cannot be taken back.
    ctx.trace.confirmed = Some(ctx.clock.now());
    ctx.confirmed_early = true;
    Ok(id)
}
