//! `pause-redis`: the lock-service node the fault hits is stopped (SIGSTOP) for the window.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::PauseRedis, Verb::Pause);
