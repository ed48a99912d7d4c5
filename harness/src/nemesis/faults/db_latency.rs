//! `db-latency`: every Postgres round trip is delayed at the proxy by --db-latency (plus jitter): a database slow under load.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::DbLatency, Verb::Latency);
