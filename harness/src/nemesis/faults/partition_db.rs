//! `partition-db`: the clients cannot reach Postgres: its proxy holds every byte and connection attempt.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::PartitionDb, Verb::Partition);
