//! `lock-renewal` (unsafe under client pauses, holds under database latency): lock-only
//! plus a heartbeat that extends the lease every ttl/3 while the work runs (Redisson's
//! watchdog).
//!
//! What it fixes, with a 500 ms lease and a 2 s database write:
//! - t=0     A takes the lease, checks: free, starts its slow insert.
//! - t=166, 333, 500, ...  A's heartbeat renews: the lease never runs out while A works.
//! - t=100..2000  B retries `SET NX` and finds it held: "lock busy" (or waits it out).
//!
//! The race it still allows, a stop-the-world pause of A (GC, VM freeze, SIGSTOP):
//! - t=0     A takes the lease, checks: free. A's process stops, heartbeat included.
//! - t=500   the lease expires; no renewal came.
//! - t=510   B takes the lease, checks: free (A has not inserted), inserts.
//! - t=1500  A resumes, inserts and commits: confirmed. Its next heartbeat finds B's
//!   value and stops, but nothing tells A's work.
//!
//! Renewal cannot beat a pause that stops the renewer. Caught by `no-double-booking`.

use crate::design::{Design, LockUse, PausePoint};
use crate::fault::Fault;

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

/// The `lock-renewal` design (see the module docs).
pub(crate) struct LockRenewal;

impl Design for LockRenewal {
    fn name(&self) -> &'static str {
        "lock-renewal"
    }

    fn description(&self) -> &'static str {
        "unsafe under client pauses: lease renewed every ttl/3 by a heartbeat while the work runs"
    }

    fn lock(&self) -> LockUse {
        LockUse::RenewedLease
    }

    fn pause_point(&self) -> PausePoint {
        PausePoint::AfterCheck
    }

    fn caught_by(&self) -> &'static [Fault] {
        // The heartbeat stops with the client in a stop-the-world pause; its renewals are
        // lost while a write is held (lost-renewal); a grant that arrives after the lease
        // went to the next user is renewed by nobody (slow-lock-grant).
        &[Fault::ClientPause, Fault::LostRenewal, Fault::SlowLockGrant]
    }

    fn survives(&self) -> &'static [Fault] {
        // The heartbeat keeps the lease alive through a slow database or slow writes.
        &[
            Fault::None,
            Fault::DbLatency,
            Fault::SlowWrites,
            Fault::LostCommitAck,
        ]
    }
}

impl DesignSteps for LockRenewal {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    // As in lock-only: a pause here (the heartbeat stopped with us) outlasts the lease.
    ctx.pause_point().await;
    db.insert_booking(ctx.req).await
}
