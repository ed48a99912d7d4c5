//! The service's processes: N replicas of the user's command, each on its own loopback
//! port, each the leader of its own process group, each registered with the
//! [`reaper`](crate::nodes::reaper) so none outlives the run.
//!
//! Each replica is a small `sh` that runs `CMD` (through a second `sh -c`, so `CMD` is
//! any shell text) as its child and waits for it. The outer shell is there for one case:
//! a `kill -9` of overbook. `PR_SET_PDEATHSIG` delivers a signal to the child of a dead
//! parent only, not to the grandchildren a command like `cd x && ./server` leaves; the
//! outer shell gets SIGUSR1 when overbook dies and answers it with SIGKILL to its whole
//! group. It also forwards the polite SIGTERM of a normal stop to the command. Pause and
//! kill go to the whole group, which is what a frozen or crashed machine looks like.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::nodes::{log_tail, process, reaper};

use super::http;
use super::ServiceError;

/// The outer shell (see the module doc). `$1` is the user's command. The TERM trap is
/// set after the child starts: a child inherits caught signals as default, but the trap
/// must name the child's pid.
const SUPERVISOR: &str = r#"trap 'kill -KILL 0' USR1
sh -c "$1" &
child=$!
trap 'kill -TERM $child 2>/dev/null' TERM
while :; do
  wait $child
  status=$?
  kill -0 $child 2>/dev/null || exit $status
done"#;

/// How often `/health` is asked while a replica starts.
const HEALTH_POLL: Duration = Duration::from_millis(50);

/// One replica.
#[derive(Debug)]
struct Replica {
    addr: SocketAddr,
    log: PathBuf,
    /// The supervisor's pid (= the group's id) while it runs.
    pid: Mutex<Option<i32>>,
}

/// The replicas of one run's service, started with the same command and environment.
#[derive(Debug)]
pub struct Replicas {
    command: String,
    dir: PathBuf,
    /// The contract's variables but `OVERBOOK_LISTEN`, which is per replica.
    env: Vec<(String, String)>,
    ready_timeout: Duration,
    replicas: Vec<Replica>,
}

impl Replicas {
    /// Plans `logs.len()` replicas (one log each) on free loopback ports; nothing starts.
    pub(crate) fn new(
        command: &str,
        dir: &Path,
        env: Vec<(String, String)>,
        ready_timeout: Duration,
        logs: Vec<PathBuf>,
    ) -> Result<Replicas, ServiceError> {
        // Hold every port until all are chosen, so two replicas never get the same one.
        let listeners = logs
            .iter()
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServiceError::Io(format!("finding a free port: {e}")))?;
        let mut replicas = Vec::new();
        for (l, log) in listeners.iter().zip(logs) {
            let addr = l
                .local_addr()
                .map_err(|e| ServiceError::Io(format!("finding a free port: {e}")))?;
            replicas.push(Replica {
                addr,
                log,
                pid: Mutex::new(None),
            });
        }
        Ok(Replicas {
            command: command.to_string(),
            dir: dir.to_path_buf(),
            env,
            ready_timeout,
            replicas,
        })
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether there are none (never, once planned).
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// The address replica `i` listens on.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.replicas[i].addr
    }

    /// Replica `i`'s log file.
    pub fn log(&self, i: usize) -> &Path {
        &self.replicas[i].log
    }

    /// The last lines of replica `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        log_tail(&self.replicas[i].log)
    }

    /// The pid (= process group) of replica `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<i32> {
        *self.replicas[i]
            .pid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Starts every replica and waits until each answers `/health`.
    pub(crate) async fn start_all(&self) -> Result<(), ServiceError> {
        for i in 0..self.len() {
            self.spawn(i)?;
        }
        let waits = (0..self.len()).map(|i| self.wait_ready(i));
        for r in futures_util::future::join_all(waits).await {
            r?;
        }
        Ok(())
    }

    /// Starts replica `i` (its supervisor and command) without waiting for it.
    pub(crate) fn spawn(&self, i: usize) -> Result<(), ServiceError> {
        let r = &self.replicas[i];
        let log = crate::store::create_file(&r.log, true)
            .map_err(|e| ServiceError::Io(format!("opening {}: {e}", r.log.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ServiceError::Io(format!("opening {}: {e}", r.log.display())))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("overbook-service")
            .arg(&self.command)
            .current_dir(&self.dir)
            .env("OVERBOOK_LISTEN", r.addr.to_string())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let parent = std::process::id() as i32;
        // SAFETY: the closure only makes async-signal-safe syscalls (prctl, getppid)
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // If overbook dies, the supervisor hears it and kills its group.
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGUSR1 as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                // Died already, between fork and prctl: nobody would send it.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("overbook exited"));
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| ServiceError::Io(format!("starting sh for the service: {e}")))?;
        let pid = child.id() as i32;
        // The registry owns the process from here: whoever unregisters it stops and reaps it.
        reaper::register_server(pid, libc::SIGTERM);
        *r.pid.lock().unwrap_or_else(|p| p.into_inner()) = Some(pid);
        // `child` is dropped without waiting: the pid is reaped by whoever stops it.
        drop(child);
        tracing::info!(replica = i, pid, addr = %r.addr, "service replica started");
        Ok(())
    }

    /// Waits until replica `i` answers `GET /health` with 200, it exits, or the ready
    /// timeout passes.
    pub(crate) async fn wait_ready(&self, i: usize) -> Result<(), ServiceError> {
        let r = &self.replicas[i];
        let started = Instant::now();
        loop {
            let Some(pid) = self.pid(i) else {
                return Err(self.not_ready(i, "it was stopped".into()));
            };
            if let Some(status) = exit_status(pid) {
                self.forget(i);
                return Err(ServiceError::Exited {
                    replica: i,
                    status,
                    log: r.log.clone(),
                    log_tail: self.log_tail(i),
                });
            }
            let last = match http::probe(r.addr, "/health", Duration::from_secs(1)).await {
                Ok(200) => return Ok(()),
                Ok(status) => format!("GET /health answered {status}"),
                Err(e) => e,
            };
            if started.elapsed() >= self.ready_timeout {
                return Err(self.not_ready(i, last));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }

    fn not_ready(&self, i: usize, reason: String) -> ServiceError {
        ServiceError::NotReady {
            replica: i,
            reason: format!(
                "at {} within {:?} ({reason})",
                self.replicas[i].addr, self.ready_timeout
            ),
            log: self.replicas[i].log.clone(),
            log_tail: self.log_tail(i),
        }
    }

    /// SIGSTOP to replica `i`'s whole group; returns once every process of it stopped.
    pub(crate) fn pause(&self, i: usize) -> Result<(), ServiceError> {
        let pid = self.pid(i).ok_or(ServiceError::NotRunning { replica: i })?;
        process::signal_server(pid, libc::SIGSTOP);
        Ok(())
    }

    /// SIGCONT to replica `i`'s group (nothing when it is not running).
    pub(crate) fn resume(&self, i: usize) {
        if let Some(pid) = self.pid(i) {
            process::signal_server(pid, libc::SIGCONT);
        }
    }

    /// SIGKILL to replica `i`'s whole group, then reaps it.
    pub(crate) fn kill(&self, i: usize) -> Result<(), ServiceError> {
        let pid = self.replicas[i]
            .pid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or(ServiceError::NotRunning { replica: i })?;
        if reaper::unregister_server(pid) {
            process::kill_group(pid);
        }
        Ok(())
    }

    /// Starts a killed replica again with the same command and environment and waits
    /// until it answers `/health`.
    pub(crate) async fn restart(&self, i: usize) -> Result<(), ServiceError> {
        if self.pid(i).is_some() {
            self.kill(i)?;
        }
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// Stops every replica: SIGTERM, up to 5 s, SIGKILL to the group; in parallel, so N
    /// replicas take as long as the slowest. Idempotent.
    pub(crate) fn stop_all(&self) {
        let pids: Vec<i32> = (0..self.len())
            .filter_map(|i| {
                self.replicas[i]
                    .pid
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
            })
            .filter(|&pid| reaper::unregister_server(pid))
            .collect();
        std::thread::scope(|s| {
            for pid in pids {
                s.spawn(move || process::stop_group(pid, libc::SIGTERM, reaper::STOP_GRACE));
            }
        });
    }

    /// Forgets replica `i` after it exited on its own: kills what is left of its group
    /// and reaps it.
    fn forget(&self, i: usize) {
        if let Some(pid) = self.replicas[i]
            .pid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            if reaper::unregister_server(pid) {
                process::kill_group(pid);
            }
        }
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// How child `pid` exited, if it did (without reaping it).
fn exit_status(pid: i32) -> Option<String> {
    let Some(info) = process::peek_exit(pid)? else {
        return Some("exited".into());
    };
    // SAFETY: `info` was filled by waitid for an exited child, whose status field is set.
    let status = unsafe { info.si_status() };
    Some(match info.si_code {
        libc::CLD_EXITED if status == 127 => {
            "exit code 127: the shell could not find the command".into()
        }
        libc::CLD_EXITED => format!("exit code {status}"),
        _ => format!("killed by signal {status}"),
    })
}
