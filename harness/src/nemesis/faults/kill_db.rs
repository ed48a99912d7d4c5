//! `kill-db`: Postgres is killed (SIGKILL), and restarted and waited for at the window's end.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::KillDb, Verb::Kill);
