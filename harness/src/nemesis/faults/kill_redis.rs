//! `kill-redis`: the lock-service node is killed and restarted: without AOF it forgets every lease.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::KillRedis, Verb::Kill);
