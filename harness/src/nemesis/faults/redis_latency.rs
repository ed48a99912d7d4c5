//! `redis-latency`: every round trip to the lock-service node the fault hits is delayed by --redis-latency.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::RedisLatency, Verb::Latency);
