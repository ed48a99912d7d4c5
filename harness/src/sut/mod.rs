//! The system under test, behind one seam (Jepsen's client).
//!
//! A [`System`] is set up once per run, opens one [`Session`] per simulated user, and
//! gives the final read. A session invokes one request at a time and always gets back an
//! [`Outcome`]: `ok` (it happened), `fail` (it definitely did not) or `info` (unknown),
//! with the trace of what the system saw, never an error. The runner owns timeouts,
//! process ids and the history; a system owns only how to talk to the thing under test.
//!
//! Implementations: [`builtin`] (the ten booking designs, clients of Redis and Postgres
//! in this process) and [`service`] (the user's own HTTP service, in N replicas, started
//! and stopped by overbook). Adding a system under test is one module here implementing
//! both traits, and one arm in [`build`].

pub mod builtin;
pub mod service;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use checkers::BookingRow;
use workloads::{Outcome, Request};

use crate::nodes::Cluster;
use workloads::DesignName;

/// A boxed future borrowing its receiver: the seam is used as `dyn`, so its async methods
/// return these (one allocation per op, nothing next to a network round trip).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a system could not be set up, opened or read. Never the outcome of an op.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SutError {
    /// Setting up the system (schema, service start) failed: the run cannot go on.
    #[error("setting up {system}: {reason}")]
    Setup {
        /// The system's name.
        system: String,
        /// What went wrong.
        reason: String,
    },
    /// A session could not be opened (connection refused, timed out). Not an op: the
    /// runner counts it and tries again.
    #[error("opening a session: {0}")]
    Open(String),
    /// The final read failed.
    #[error("final read: {0}")]
    Read(String),
}

/// The system under test, shared by every simulated user of a run.
pub trait System: Send + Sync {
    /// What the reports call it: a design name, or a service's command.
    fn name(&self) -> String;

    /// Prepares the system before any session opens (a design's schema, straight to the
    /// server; faults are for the test, not its set-up).
    fn setup(&self) -> BoxFuture<'_, Result<(), SutError>>;

    /// Opens a session for one simulated user.
    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Session>, SutError>>;

    /// What the history records for a booking's invocation: the room and stay as the
    /// system names them (a mapped service's room types and slots; for a design, the
    /// request as generated).
    fn book_value(&self, b: &workloads::BookRequest) -> checkers::OpValue {
        b.invoke_value()
    }

    /// The final read: every booking the system holds now.
    fn read_all(&self) -> BoxFuture<'_, Result<Vec<BookingRow>, SutError>>;

    /// Stops what [`System::setup`] started, after the final read (a service's
    /// processes, its database). Nothing to do for a system living in this process.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// The processes of the system under test when overbook started them (service
    /// mode): what `pause-service` and `kill-service` act on.
    fn replicas(&self) -> Option<Arc<service::Replicas>> {
        None
    }

    /// Records what the system tells its guests into the run's history from now on (a
    /// service's notification sink; nothing for a built-in design, whose confirmation is
    /// an instant in its trace).
    fn record_notifications(&self, _recorder: Arc<crate::store::recorder::Recorder>) {}

    /// What the run summary and the report should say about the system beyond its name,
    /// by label (a service: its command, replicas, the tail of each log).
    fn notes(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// One simulated user's connection to the system: one request at a time.
pub trait Session: Send {
    /// Performs `request`. Never fails: the outcome says ok, fail or info.
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome>;
}

/// What a run tests: a built-in design, or a service (which replaces the design).
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// One of the built-in designs, run in this process.
    Design(DesignName),
    /// The user's own service (`--service`).
    Service(&'a service::ServiceSpec),
}

/// What a system needs of the run besides its subject: each op's deadline, and whether
/// its data stays after the run (`--keep`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Every op's deadline.
    pub op_timeout: std::time::Duration,
    /// Keep what the system wrote (a service's database) after the run.
    pub keep: bool,
}

/// The system `subject` names, wired to the run's servers (`design_cfg` carries the
/// lease, clock and hotel); `run_dir` takes what it writes (a service's logs).
pub fn build(
    subject: Subject<'_>,
    limits: Limits,
    cluster: &Arc<Cluster>,
    design_cfg: workloads::Config,
    run_dir: &Path,
) -> Result<Arc<dyn System>, SutError> {
    match subject {
        Subject::Service(spec) => Ok(Arc::new(service::ServiceSystem::new(
            spec,
            cluster,
            run_dir,
            design_cfg.clock,
            design_cfg.lock_ttl,
            limits.op_timeout,
            limits.keep,
        )?)),
        Subject::Design(design) => Ok(Arc::new(builtin::BuiltinSystem::new(
            design,
            design_cfg,
            cluster,
            limits.op_timeout,
        ))),
    }
}
