//! `lock-fencing` (safe): the lease comes with a fencing token (one Lua script: `SET NX
//! PX`, and only if that succeeded, `INCR` the room's counter), and the transaction
//! FIRST advances the room's fence in Postgres: `room_fence.token < $token` or roll back.
//!
//! The race it prevents:
//! - t=0     A takes the lease with token 33, then stops (GC pause).
//! - t=500   A's lease expires. B takes the lease with token 34, sets the fence to 34,
//!   checks, inserts, commits.
//! - t=1500  A resumes: `UPDATE room_fence SET token=33 WHERE room=101 AND token < 33`
//!   updates 0 rows -> rollback, "stale token". No double booking.
//!
//! Concurrent holders (both still believing) serialise on the fence row: the second
//! waits for the first's commit, then its check sees the first's booking. The fence must
//! come before the availability check; checking first lets two holders both pass it.
//!
//! Redis restart: without persistence the counter starts again at 1, below the fence
//! Postgres keeps, so every holder would be rejected as stale (lost availability, never
//! lost safety). We seed the counter from the database: a client rejected as stale reads
//! the room's fence and raises the Redis counter to it (never lowers it), so only the
//! first booking per room after a restart fails. `fencing` checks the tokens.

use crate::design::{Design, LockUse};

use super::{BookCtx, BookFuture, Db, DesignSteps, TxError};

/// Advances the fence only upwards; creates the room's fence on first use.
pub(crate) const ADVANCE_FENCE: &str = "INSERT INTO room_fence AS f (room, token) VALUES ($1, $2)
     ON CONFLICT (room) DO UPDATE SET token = EXCLUDED.token WHERE f.token < EXCLUDED.token";

/// The room's current fence, read after a stale-token rejection to seed Redis.
pub(crate) const READ_FENCE: &str = "SELECT token FROM room_fence WHERE room = $1";

/// The `lock-fencing` design (see the module docs).
pub(crate) struct LockFencing;

impl Design for LockFencing {
    fn name(&self) -> &'static str {
        "lock-fencing"
    }

    fn description(&self) -> &'static str {
        "safe: lease plus fencing token; the transaction first advances the room's fence or rolls back"
    }

    fn lock(&self) -> LockUse {
        LockUse::FencedLease
    }
}

impl DesignSteps for LockFencing {
    fn book<'a>(&'a self, db: &'a mut Db<'_>, ctx: &'a mut BookCtx<'_>) -> BookFuture<'a> {
        Box::pin(book(db, ctx))
    }
}

async fn book(db: &mut Db<'_>, ctx: &mut BookCtx<'_>) -> Result<i64, TxError> {
    let token = i64::try_from(ctx.token.ok_or(TxError::Rejected("no fencing token"))?)
        .map_err(|_| TxError::Rejected("fencing token out of range"))?;
    // First: the row lock on the fence serialises writers of this room, and a lower
    // token than one already accepted finds 0 rows to update.
    if db
        .execute(ADVANCE_FENCE, &[&ctx.req.room_param(), &token])
        .await?
        == 0
    {
        return Err(TxError::StaleToken);
    }
    if db.overlaps(ctx.req).await? {
        return Err(TxError::Rejected("room taken"));
    }
    db.insert_booking(ctx.req).await
}
