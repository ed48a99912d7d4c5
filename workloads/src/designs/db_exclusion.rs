//! `db-exclusion` (safe): the bookings table itself carries
//! `EXCLUDE USING gist (room WITH =, daterange(check_in, check_out) WITH &&)`.
//!
//! The race it prevents:
//! - t=0   A inserts room 101 [12-01, 12-04).  B inserts room 101 [12-03, 12-05).
//! - t=1   B's insert finds A's uncommitted conflicting row and waits for A.
//! - t=2   A commits -> confirmed. B gets 23P01 exclusion_violation -> "fail".
//!
//! No availability check: the constraint is the check, evaluated with the insert.
//!
//! Writers of one room first queue on `pg_advisory_xact_lock(room)`. Not for safety (the
//! constraint alone keeps the data right) but for progress: an exclusion insert adds its
//! index entry first and checks the constraint after, so simultaneous overlapping
//! inserts wait for each other, a deadlock. Postgres aborts one per deadlock_timeout; the
//! victim retries, its new row joins the remaining waiters, and with eight users on the
//! last free night we saw nobody commit for seconds (a livelock). Queued, the second
//! writer simply finds the first's committed row: 23P01 at once.

use crate::design::{Design, Schema};

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

const QUEUE_ON_ROOM: &str = "SELECT pg_advisory_xact_lock($1)";

/// The `db-exclusion` design (see the module docs).
pub(crate) struct DbExclusion;

impl Design for DbExclusion {
    fn name(&self) -> &'static str {
        "db-exclusion"
    }

    fn description(&self) -> &'static str {
        "safe: EXCLUDE USING gist (room WITH =, daterange WITH &&) on the bookings"
    }

    fn schema(&self) -> Schema {
        Schema {
            sql: "CREATE EXTENSION IF NOT EXISTS btree_gist;
                  ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
                  EXCLUDE USING gist (room WITH =, daterange(check_in, check_out) WITH &&)",
            inventory: false,
        }
    }
}

impl DesignSteps for DbExclusion {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    db.query(QUEUE_ON_ROOM, &[&ctx.req.room_param()]).await?;
    db.insert_booking(ctx.req).await
}
