//! `db-unique` (safe): one row per booked room-night under `UNIQUE (room, night)`; the
//! Redis lease is kept, but only saves work.
//!
//! The race it prevents, even when the lease fails (expired during a stall, lost in a
//! Redis restart):
//! - t=0   A inserts its booking and its nights 12-01, 12-02 of room 101.
//! - t=1   B (holding a lease it thinks is exclusive) inserts night 12-02 of room 101:
//!   the unique index makes B wait for A's transaction.
//! - t=2   A commits -> confirmed. B gets 23505 unique_violation -> rolled back, "fail".
//!
//! Nights are inserted in date order in one statement, so two multi-night stays always
//! take their index entries in the same order and cannot deadlock each other; a 40P01
//! anyway is retried. `lock-exclusion` may still show overlapping leases: the lock
//! failed, the database held.

use checkers::Guard;

use crate::design::{Design, LockUse, Schema};

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

const INSERT_NIGHTS: &str = "INSERT INTO booking_nights (room, night, booking)
     SELECT $1, '1970-01-01'::date + d, $4
     FROM generate_series($2::int4, $3::int4 - 1) d
     ORDER BY d";

/// The `db-unique` design (see the module docs).
pub(crate) struct DbUnique;

impl Design for DbUnique {
    fn name(&self) -> &'static str {
        "db-unique"
    }

    fn description(&self) -> &'static str {
        "safe: one row per room-night under UNIQUE(room, night); the lease only saves work"
    }

    fn schema(&self) -> Schema {
        Schema {
            sql: "CREATE TABLE booking_nights (
                     room bigint NOT NULL,
                     night date NOT NULL,
                     booking bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
                     UNIQUE (room, night))",
            inventory: false,
        }
    }

    fn lock(&self) -> LockUse {
        LockUse::Lease
    }

    /// The lease only saves work: the unique index refuses the second night.
    fn guard(&self) -> Guard {
        Guard::Database
    }
}

impl DesignSteps for DbUnique {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    let id = db.insert_booking(ctx.req).await?;
    let req = ctx.req;
    db.execute(
        INSERT_NIGHTS,
        &[&req.room_param(), &req.from.0, &req.to.0, &id],
    )
    .await?;
    Ok(id)
}
