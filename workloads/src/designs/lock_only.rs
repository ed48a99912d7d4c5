//! `lock-only` (unsafe): the story's design. A Redis lease guards "check, then insert";
//! the database has no constraint.
//!
//! The race it allows, with a 500 ms lease:
//! - t=0    A: `SET lock:room:101 a NX PX 500` -> OK. A checks room 101: free.
//! - t=0+   A stalls before its insert (GC pause, or the database write is slow).
//! - t=500  A's lease expires in Redis. A does not know.
//! - t=510  B: `SET lock:room:101 b NX PX 500` -> OK. B checks: free (A has not inserted).
//! - t=600  A inserts and commits: confirmed. B inserts and commits: confirmed.
//!
//! Two confirmations for the same nights. The lease bounds how long the lock is held,
//! not how long the work takes; nothing in the database stops the second insert. Caught
//! by `no-double-booking` and `db-state`; `lock-exclusion` shows the overlapping leases.

use crate::design::{Design, LockUse, PausePoint};
use crate::fault::Fault;

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

/// The `lock-only` design (see the module docs).
pub(crate) struct LockOnly;

impl Design for LockOnly {
    fn name(&self) -> &'static str {
        "lock-only"
    }

    fn description(&self) -> &'static str {
        "unsafe: Redis lease (SET NX PX) around check-then-insert; no database constraint"
    }

    fn lock(&self) -> LockUse {
        LockUse::Lease
    }

    fn pause_point(&self) -> PausePoint {
        PausePoint::AfterCheck
    }

    fn caught_by(&self) -> &'static [Fault] {
        // The lease runs out while the holder is between its check and its insert: a
        // slow or stalled database, a stopped client, a write held past the lease
        // (slow-writes, and lost-renewal, which holds writes too), or a grant that
        // arrives after the lease has gone to the next user (slow-lock-grant).
        &[
            Fault::DbLatency,
            Fault::PauseDb,
            Fault::ClientPause,
            Fault::SlowWrites,
            Fault::SlowLockGrant,
            Fault::LostRenewal,
        ]
    }

    fn survives(&self) -> &'static [Fault] {
        // A lease-only design holds when nothing delays the holder; a lost COMMIT answer
        // leaves one booking whose user heard nothing, which is allowed.
        &[Fault::None, Fault::LostCommitAck]
    }
}

impl DesignSteps for LockOnly {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    // The window the lease must outlast: a pause here lets the lease expire between
    // our check and our insert.
    ctx.pause_point().await;
    db.insert_booking(ctx.req).await
}
