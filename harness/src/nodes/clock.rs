//! `clock-jump-redis`: what a forward jump of one Redis node's clock does to its leases,
//! produced on the server itself.
//!
//! Redis expires a key when its clock passes the key's deadline, so a clock that jumps
//! forward by J makes every key with less than J left expire at once, and takes J off
//! every other key's remaining time. Moving the real clock of one server process was
//! tried and is not possible here: libfaketime (Debian 0.9.10) cannot be preloaded into
//! Debian's redis-server 7 (it reports a recursive `clock_gettime` at start and the
//! server never accepts a connection, whatever its options). So the effect is produced
//! directly, by one script that Redis runs atomically (nothing else runs meanwhile, as
//! nothing would run during a jump): every key's remaining TTL is cut by J, and the keys
//! it would expire are deleted. The keyspace of a run is a few keys per room, so
//! scanning all of it inside the script is cheap.

use std::time::Duration;

use redis::Script;

use super::NodeError;

/// Cuts every key's TTL by `ARGV[1]` ms, deleting those it expires; keys without a TTL
/// (the fencing counters) are left alone, as a clock jump leaves them.
const JUMP: &str = r"
local jump = tonumber(ARGV[1])
local cursor = '0'
local expired, shortened = 0, 0
repeat
  local page = redis.call('SCAN', cursor, 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local left = redis.call('PTTL', key)
    if left > 0 then
      if left <= jump then
        redis.call('DEL', key)
        expired = expired + 1
      else
        redis.call('PEXPIRE', key, left - jump)
        shortened = shortened + 1
      end
    end
  end
until cursor == '0'
return {expired, shortened}";

/// What one jump did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jumped {
    /// Keys the jump expired (leases gone).
    pub expired: u64,
    /// Keys left with less time.
    pub shortened: u64,
}

/// Jumps the expiry clock of the Redis at `url` (straight to the server, past its
/// proxy) forward by `by`.
pub async fn jump(url: &str, by: Duration) -> Result<Jumped, NodeError> {
    let err = |e: redis::RedisError| NodeError::Redis {
        what: "clock jump".into(),
        reason: e.to_string(),
    };
    let (expired, shortened): (u64, u64) =
        super::topology::exchange(url, JUMP_TIMEOUT, |mut conn| async move {
            Script::new(JUMP)
                .arg(by.as_millis().max(1) as u64)
                .invoke_async(&mut conn)
                .await
        })
        .await
        .ok_or_else(|| NodeError::Redis {
            what: "clock jump".into(),
            reason: format!("no answer in {JUMP_TIMEOUT:?}"),
        })?
        .map_err(err)?;
    Ok(Jumped { expired, shortened })
}

/// The longest a jump may take: the nemesis waits for it.
const JUMP_TIMEOUT: Duration = Duration::from_secs(5);
