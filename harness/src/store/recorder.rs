//! The history recorder: assigns each event its index and time and appends it to
//! `history.jsonl` as it happens.
//!
//! Lines are written by the checkers' own [`HistoryWriter`] (one writer of the format),
//! and every line is flushed to the OS before `record` returns, so a crash of the
//! harness (even `kill -9`) keeps every event recorded so far: the file is the history,
//! not a dump made at the end.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Mutex;

use checkers::{HistoryWriter, Op, OpType, OpValue, Process, F};
use workloads::RunClock;

/// Why the history could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// Creating or appending to the history file failed.
    #[error("cannot write history {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

struct Inner {
    next_index: u64,
    out: HistoryWriter<BufWriter<File>>,
    failed: Option<String>,
}

/// Appends events to a history file. Nothing is kept in memory: the run checks the
/// file it wrote, as `overbook check` would.
///
/// A std `Mutex`, not a tokio one: nothing awaits while it is held, and taking the time
/// inside the lock is what keeps `time` non-decreasing in index order.
pub struct Recorder {
    clock: RunClock,
    path: String,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// Creates the history file at `path` (a new file, never through a link).
    pub fn create(path: &Path, clock: RunClock) -> Result<Recorder, RecorderError> {
        let io = |source| RecorderError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = crate::store::create_file(path, false).map_err(io)?;
        Ok(Recorder {
            clock,
            path: path.display().to_string(),
            inner: Mutex::new(Inner {
                next_index: 0,
                out: HistoryWriter::new(BufWriter::new(file)),
                failed: None,
            }),
        })
    }

    /// The run's clock, shared with clients so trace instants line up with `time`.
    pub fn clock(&self) -> RunClock {
        self.clock
    }

    /// Records one event now and returns it (with its index and time filled in).
    pub fn record(
        &self,
        process: Process,
        kind: OpType,
        f: F,
        value: OpValue,
        error: Option<String>,
    ) -> Op {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let op = Op {
            index: inner.next_index,
            time: self.clock.now(),
            process,
            kind,
            f,
            value,
            // An error may quote an address it failed on: the history is kept and shared.
            error: error.map(|e| checkers::text::redact_credentials(&e).into_owned()),
        };
        inner.next_index += 1;
        // A write error must not stop the run mid-fault (the nemesis still has to heal);
        // remember it and report it when the run finishes.
        let res = inner.out.append(&op).and_then(|_| inner.out.flush());
        if let Err(e) = res {
            inner.failed.get_or_insert_with(|| e.to_string());
        }
        op
    }

    /// How many events have been recorded.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_index as usize
    }

    /// Whether nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes and reports the first write error of the run, if any.
    pub fn finish(&self) -> Result<(), RecorderError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let flushed = inner.out.flush().err().map(|e| e.to_string());
        match inner.failed.take().or(flushed) {
            None => Ok(()),
            Some(msg) => Err(RecorderError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(msg),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_on_disk_as_soon_as_it_is_recorded() {
        let dir = std::env::temp_dir().join(format!("overbook-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let rec = Recorder::create(&path, RunClock::start()).unwrap();
        rec.record(
            Process::Client(0),
            OpType::Invoke,
            F::Book,
            OpValue::default(),
            None,
        );
        rec.record(
            Process::Nemesis,
            OpType::Info,
            F::from("start-db-latency"),
            OpValue::default(),
            None,
        );
        // Read back without finishing: a crash right now would leave exactly this.
        let text = std::fs::read_to_string(&path).unwrap();
        let ops: Vec<Op> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].index, 1);
        assert!(ops[0].time <= ops[1].time);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
