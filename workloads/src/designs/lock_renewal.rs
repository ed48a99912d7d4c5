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

use super::{BookCtx, Db, TxError};

pub(crate) async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    // As in lock-only: a pause here (the heartbeat stopped with us) outlasts the lease.
    ctx.pause_point().await;
    db.insert_booking(ctx.req).await
}
