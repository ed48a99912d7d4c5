//! `pause-db`: Postgres is stopped (SIGSTOP) for the window: it holds connections and locks but answers nothing.

use workloads::Fault;

use super::server::{ServerFault, Verb};

pub(super) static KIND: ServerFault = ServerFault::new(Fault::PauseDb, Verb::Pause);
