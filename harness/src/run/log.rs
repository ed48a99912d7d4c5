//! Logging: warnings to stderr, and everything at debug level to the run's `run.log`
//! once the run directory exists.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

static RUN_LOG: OnceLock<Mutex<Option<File>>> = OnceLock::new();

fn slot() -> &'static Mutex<Option<File>> {
    RUN_LOG.get_or_init(|| Mutex::new(None))
}

/// Installs the global subscriber. `RUST_LOG` overrides the stderr level (default `warn`).
pub fn init() {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(|| Redacting(io::stderr()))
        .with_target(false)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
    // The engine client logs every request body at debug level, and a container's body
    // holds its server's password (a flag, an environment variable): run.log is kept and
    // shared (CI artifacts), so it gets the engine client's info lines only.
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(RunLogWriter)
        .with_filter(EnvFilter::new(
            "debug,tokio_postgres=info,redis=info,bollard=info",
        ));
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

/// Sends the debug log to `path` from now on (the run's `run.log`).
pub fn attach(path: &Path) -> io::Result<()> {
    let file = crate::store::create_file(path, false)?;
    *slot().lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    Ok(())
}

/// Writes to the attached run log, or nowhere before a run directory exists.
struct RunLogWriter;

/// One log line's writer; holds nothing, takes the file lock per write.
struct RunLogLine;

impl Write for RunLogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(f) = slot().lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Redacting(f).write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes log lines with every password redacted ([`checkers::text::redact_credentials`]):
/// a line may quote an address or an error that names one, and both run.log and a CI's
/// stderr are kept and shared. A line is one `write` call, so no address is split.
struct Redacting<W>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(checkers::text::redact_credentials(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogLine;
    fn make_writer(&'a self) -> RunLogLine {
        RunLogLine
    }
}
