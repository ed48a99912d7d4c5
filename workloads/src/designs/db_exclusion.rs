//! `db-exclusion` (safe): the bookings table itself carries
//! `EXCLUDE USING gist (room WITH =, daterange(check_in, check_out) WITH &&)`.
//!
//! The race it prevents:
//! - t=0   A inserts room 101 [12-01, 12-04).  B inserts room 101 [12-03, 12-05).
//! - t=1   B's insert finds A's uncommitted conflicting row and waits for A.
//! - t=2   A commits -> confirmed. B gets 23P01 exclusion_violation -> "fail".
//!
//! No check query at all: the constraint is the check, evaluated atomically with the
//! insert. Two simultaneous inserts can also end in 40P01, which is retried.

use super::{BookCtx, Db, TxError};

pub(crate) async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    db.insert_booking(ctx.req).await
}
