//! One client slot: plays successive simulated users (processes) until the time limit.
//! A user whose op ended in `info` is retired (its outcome is unknown, so it may still be
//! acting) and a fresh process id takes its place, as in Jepsen.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::{OpType, OpValue, Process, F};
use workloads::{Generator, Outcome, Request};

use super::Progress;
use crate::store::recorder::Recorder;
use crate::sut::{Session, System};

/// One client slot: plays successive processes until the time limit.
pub(super) struct Worker {
    pub(super) op_timeout: Duration,
    /// Retry a timed-out booking from a fresh process with the same request key.
    pub(super) retry: bool,
    pub(super) system: Arc<dyn System>,
    pub(super) recorder: Arc<Recorder>,
    pub(super) generator: Arc<Mutex<Generator>>,
    pub(super) next_process: Arc<AtomicU64>,
    pub(super) progress: Arc<Progress>,
    pub(super) deadline: tokio::time::Instant,
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) pace: Option<Duration>,
    /// The slot's number (0-based), recorded with each `open` so the history tells which
    /// users never got a session.
    pub(super) user: u64,
}

impl Worker {
    fn is_over(&self) -> bool {
        self.stopping.load(Ordering::SeqCst) || tokio::time::Instant::now() >= self.deadline
    }

    pub(super) async fn run(self) {
        let mut client: Option<(Process, Box<dyn Session>)> = None;
        // A process whose open failed (definitely no session) tries again.
        let mut opening: Option<Process> = None;
        let mut next_at = tokio::time::Instant::now();
        while !self.is_over() {
            let (process, c) = match client.take() {
                Some(pc) => pc,
                None => {
                    let process = opening.take().unwrap_or_else(|| {
                        Process::Client(self.next_process.fetch_add(1, Ordering::SeqCst))
                    });
                    match self.connect(process).await {
                        Some(session) => (process, session),
                        None => {
                            opening = Some(process);
                            continue;
                        }
                    }
                }
            };
            let mut c = c;
            if let Some(pace) = self.pace {
                tokio::time::sleep_until(next_at).await;
                next_at = next_at.max(tokio::time::Instant::now() - pace) + pace;
                if self.is_over() {
                    break;
                }
            }
            let request = self
                .generator
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_request();
            let retired = self.perform(process, &mut c, request).await;
            if !retired {
                client = Some((process, c));
            }
        }
    }

    /// Opens a session for `process`, recorded as an `open` op (`ok`, or `fail` with
    /// the error): nothing is asked of the system's data, so a failed open is definite
    /// and the process tries again until the time limit. The verdict depends on these
    /// (a run whose users mostly could not connect tested nothing), so they are in the
    /// history, where `run-conditions` counts them.
    async fn connect(&self, process: Process) -> Option<Box<dyn Session>> {
        let open = F::from(checkers::checks::conditions::OPEN);
        let value = OpValue {
            detail: Some(serde_json::json!({ "user": self.user })),
            ..OpValue::default()
        };
        self.recorder
            .record(process, OpType::Invoke, open.clone(), value, None);
        let error = match tokio::time::timeout(self.op_timeout, self.system.open()).await {
            Ok(Ok(session)) => {
                self.recorder
                    .record(process, OpType::Ok, open, OpValue::default(), None);
                return Some(session);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("opening a session: timed out after {:?}", self.op_timeout),
        };
        tracing::debug!("connect: {error}");
        if !self.progress.open_failed.swap(true, Ordering::Relaxed) {
            tracing::warn!("a client could not connect: {error}");
        }
        self.recorder
            .record(process, OpType::Fail, open, OpValue::default(), Some(error));
        // Back off: a refused or timed-out connect must not spin.
        tokio::time::sleep(Duration::from_millis(100)).await;
        None
    }

    /// Invokes one request and records its completion. Returns whether the process retired.
    async fn perform(
        &self,
        process: Process,
        session: &mut Box<dyn Session>,
        request: Request,
    ) -> bool {
        let (f, value) = match &request {
            Request::Book(b) => (F::Book, self.system.book_value(b)),
            Request::Cancel { booking, request } => (
                F::Cancel,
                OpValue {
                    booking: Some(*booking),
                    request: Some(request.clone()),
                    ..OpValue::default()
                },
            ),
        };
        self.recorder
            .record(process, OpType::Invoke, f.clone(), value.clone(), None);
        let outcome = match tokio::time::timeout(self.op_timeout, session.invoke(&request)).await {
            Ok(o) => o,
            Err(_) => Outcome {
                kind: OpType::Info,
                value: value.clone(),
                error: Some("timeout".into()),
            },
        };
        let mut done = outcome.value;
        // The completion repeats the invocation's arguments, so each line reads on its own.
        done.room = done.room.or(value.room);
        done.from = done.from.or(value.from);
        done.to = done.to.or(value.to);
        done.request = done.request.or(value.request);
        if f == F::Cancel {
            done.booking = done.booking.or(value.booking);
        }
        let kind = outcome.kind;
        self.recorder
            .record(process, kind, f.clone(), done.clone(), outcome.error);
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        if let Request::Cancel { booking, .. } = &request {
            let happened = match kind {
                OpType::Ok => Some(true),
                OpType::Fail => Some(false),
                OpType::Info | OpType::Invoke => None,
            };
            self.generator
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cancelled(*booking, happened);
        }
        match kind {
            OpType::Ok => {
                self.progress.ok.fetch_add(1, Ordering::Relaxed);
                if let (Request::Book(b), Some(id)) = (&request, done.booking) {
                    self.generator
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .confirmed(id, &b.request);
                }
            }
            OpType::Fail => {
                self.progress.fail.fetch_add(1, Ordering::Relaxed);
            }
            OpType::Info | OpType::Invoke => {
                self.progress.info.fetch_add(1, Ordering::Relaxed);
                if let (true, Request::Book(b)) = (self.retry, &request) {
                    // The user did not hear back, so they try again: same request key, new process.
                    self.generator
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .retry(b.clone());
                }
                return true;
            }
        }
        false
    }
}
