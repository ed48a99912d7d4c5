//! `lock-deadline` (unsafe): lock-only plus a check of the lease's remaining time just
//! before COMMIT: when less than a fifth of the lease is left, it rolls back ("lease
//! nearly expired") instead of committing. A common half-fix: it stops the slow *write*
//! of the story, not the pause that falls after the check.
//!
//! What it fixes, with a 500 ms lease and a 600 ms write:
//! - t=0    A takes the lease, checks room 101: free, inserts (slowly).
//! - t=600  A checks the deadline: the lease ran out 100 ms ago -> rollback, "fail".
//!   B, who took the expired lease at t=510, books the room alone.
//!
//! The race it still allows, a stop-the-world pause between the deadline check and
//! COMMIT (a GC pause, or a COMMIT that is itself slow on the wire):
//! - t=0     A takes the lease, checks: free, inserts. t=50: 450 ms left, enough: go.
//! - t=50    A's process stops before its COMMIT reaches the server.
//! - t=500   A's lease expires. B takes it, checks: free (A has not committed), inserts,
//!   commits: confirmed.
//! - t=1050  A resumes and commits: confirmed. Two confirmations for the same nights.
//!
//! A check of time is only as good as the time between the check and the act, and
//! nothing bounds that: the lease can expire at any instant after any check. Caught by
//! `client-pause` (aimed at this design's pause point, right after the deadline check)
//! and by anything that slows the COMMIT itself; only a database invariant or a fencing
//! token checked by the database closes the gap.

use crate::design::{Design, LockUse, PausePoint};
use crate::fault::Fault;

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

/// The `lock-deadline` design (see the module docs).
pub(crate) struct LockDeadline;

impl Design for LockDeadline {
    fn name(&self) -> &'static str {
        "lock-deadline"
    }

    fn description(&self) -> &'static str {
        "unsafe: lock-only that aborts before COMMIT when under a fifth of the lease is left"
    }

    fn lock(&self) -> LockUse {
        LockUse::Lease
    }

    fn pause_point(&self) -> PausePoint {
        PausePoint::BeforeCommit
    }

    fn caught_by(&self) -> &'static [Fault] {
        // The pause falls after the deadline check: the lease expires before COMMIT.
        &[Fault::ClientPause]
    }

    fn survives(&self) -> &'static [Fault] {
        &[Fault::None]
    }
}

impl DesignSteps for LockDeadline {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

/// Below this share of the lease left, the booking is abandoned before COMMIT.
const MIN_LEFT_FRACTION: u64 = 5;

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    let id = db.insert_booking(ctx.req).await?;
    let (Some(acquired), Some(ttl_ms)) = (ctx.trace.lock_acquired, ctx.trace.lock_ttl_ms) else {
        return Err(TxError::Rejected("no lease to check"));
    };
    let ttl_ns = ttl_ms.saturating_mul(1_000_000);
    let expires = acquired.saturating_add(ttl_ns);
    let left = expires.saturating_sub(ctx.clock.now());
    if left < ttl_ns / MIN_LEFT_FRACTION {
        return Err(TxError::Rejected("lease nearly expired"));
    }
    // The gap no check can close: a pause here outlasts whatever the check saw.
    ctx.pause_point().await;
    Ok(id)
}
