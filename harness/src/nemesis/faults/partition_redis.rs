//! `partition-redis`: the clients cannot reach the lock-service node the fault hits.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::PartitionRedis, Verb::Partition);
