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
//!
//! Ports are picked by bind-then-release: the command binds its port itself, so another
//! process may take it first (at start-up or while a killed replica is down). Every start
//! therefore checks the port is still free and, when it is not or the command dies
//! saying "address in use", picks a fresh port and starts again, up to [`PORT_TRIES`]
//! times, each logged.

use std::io;
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

/// How many ports one start of a replica tries before it gives up.
pub const PORT_TRIES: usize = 5;

/// Where a replica's next port comes from: a free loopback port, or in tests one that is
/// taken on purpose.
pub(crate) struct PortSource(Box<dyn Fn() -> io::Result<SocketAddr> + Send + Sync>);

impl PortSource {
    /// Free loopback ports, as the kernel hands them out for `:0`.
    pub(crate) fn loopback() -> PortSource {
        PortSource(Box::new(|| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
        }))
    }

    /// A port none of `taken` has (released ports may come back at once).
    fn pick_other_than(&self, taken: &[SocketAddr]) -> Result<SocketAddr, ServiceError> {
        for _ in 0..PORT_TRIES {
            let addr =
                (self.0)().map_err(|e| ServiceError::Io(format!("finding a free port: {e}")))?;
            if !taken.contains(&addr) {
                return Ok(addr);
            }
        }
        Err(ServiceError::Io(format!(
            "finding a free port: {PORT_TRIES} picks in a row were already some replica's"
        )))
    }
}

impl std::fmt::Debug for PortSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortSource")
    }
}

/// Whether `addr` can be bound right now (nobody else listens there).
fn port_free(addr: SocketAddr) -> bool {
    !matches!(TcpListener::bind(addr), Err(e) if e.kind() == io::ErrorKind::AddrInUse)
}

/// Whether a replica that exited did so because its port was taken, judged by the words
/// every common runtime prints for `EADDRINUSE`.
fn said_addr_in_use(log_tail: &str) -> bool {
    let t = log_tail.to_ascii_lowercase();
    t.contains("address already in use") || t.contains("eaddrinuse") || t.contains("address in use")
}

impl Replica {
    fn addr(&self) -> SocketAddr {
        *self.addr.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One replica.
#[derive(Debug)]
struct Replica {
    /// Where it listens; changes only when a start finds its port taken.
    addr: Mutex<SocketAddr>,
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
    ports: PortSource,
    /// The notification sink's answers, for `slow-notify`.
    notify: super::notify::NotifyHold,
    health: HealthProbe,
}

/// How readiness is asked: `GET /health` answered 200 (docs/service.md), or a
/// mapping's `[service] health` call with its headers, answered 2xx (docs/api.md).
#[derive(Debug, Clone)]
pub(crate) struct HealthProbe {
    pub(crate) method: hyper::Method,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    /// Any 2xx is ready (else only 200).
    pub(crate) any_2xx: bool,
}

impl Default for HealthProbe {
    fn default() -> HealthProbe {
        HealthProbe {
            method: hyper::Method::GET,
            path: "/health".into(),
            headers: Vec::new(),
            any_2xx: false,
        }
    }
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
        Replicas::with_ports(
            command,
            dir,
            env,
            ready_timeout,
            logs,
            PortSource::loopback(),
        )
    }

    /// [`Replicas::new`] with the first ports given and later ones taken from `ports`.
    pub(crate) fn with_ports(
        command: &str,
        dir: &Path,
        env: Vec<(String, String)>,
        ready_timeout: Duration,
        logs: Vec<PathBuf>,
        ports: PortSource,
    ) -> Result<Replicas, ServiceError> {
        let mut replicas: Vec<Replica> = Vec::new();
        for log in logs {
            let taken: Vec<SocketAddr> = replicas.iter().map(Replica::addr).collect();
            let addr = ports.pick_other_than(&taken)?;
            replicas.push(Replica {
                addr: Mutex::new(addr),
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
            ports,
            notify: super::notify::NotifyHold::default(),
            health: HealthProbe::default(),
        })
    }

    /// These replicas, reporting to the sink whose answers `notify` holds.
    pub(crate) fn with_notify(mut self, notify: super::notify::NotifyHold) -> Replicas {
        self.notify = notify;
        self
    }

    /// The notification sink's answers, held by `slow-notify`.
    pub(crate) fn notify(&self) -> &super::notify::NotifyHold {
        &self.notify
    }

    /// These replicas, ready when `health` says so.
    pub(crate) fn with_health(mut self, health: HealthProbe) -> Replicas {
        self.health = health;
        self
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
        self.replicas[i].addr()
    }

    /// Gives replica `i` a fresh port, saying why.
    fn move_port(&self, i: usize, why: &str) -> Result<(), ServiceError> {
        let old = self.addr(i);
        let taken: Vec<SocketAddr> = self.replicas.iter().map(Replica::addr).collect();
        let new = self.ports.pick_other_than(&taken)?;
        tracing::warn!(replica = i, %old, %new, "service port {old} {why}: trying {new}");
        *self.replicas[i]
            .addr
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
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
        let starts = (0..self.len()).map(|i| self.start(i));
        for r in futures_util::future::join_all(starts).await {
            r?;
        }
        Ok(())
    }

    /// Starts replica `i` and waits until it answers `/health`; on a port found taken
    /// (before the start, or as the reason the command exited) it moves to a fresh port
    /// and starts again, at most [`PORT_TRIES`] ports in all.
    async fn start(&self, i: usize) -> Result<(), ServiceError> {
        let mut tries = 1;
        loop {
            let addr = self.addr(i);
            if !port_free(addr) {
                if tries == PORT_TRIES {
                    return Err(ServiceError::Io(format!(
                        "replica {i}: {PORT_TRIES} ports in a row were taken by another process (last {addr})"
                    )));
                }
                tries += 1;
                self.move_port(i, "is taken by another process")?;
                continue;
            }
            self.spawn(i)?;
            match self.wait_ready(i).await {
                Err(ServiceError::Exited { log_tail, .. })
                    if tries < PORT_TRIES && said_addr_in_use(&log_tail) =>
                {
                    tries += 1;
                    self.move_port(i, "was taken before the service bound it")?;
                }
                r => return r,
            }
        }
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
            .env("OVERBOOK_LISTEN", self.addr(i).to_string())
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
        tracing::info!(replica = i, pid, addr = %self.addr(i), "service replica started");
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
            let h = &self.health;
            let probe = http::probe_with(
                self.addr(i),
                h.method.clone(),
                &h.path,
                &h.headers,
                Duration::from_secs(1),
            );
            let last = match probe.await {
                Ok(200) => return Ok(()),
                Ok(s) if h.any_2xx && (200..300).contains(&s) => return Ok(()),
                Ok(status) => format!("{} {} answered {status}", h.method, h.path),
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
                self.addr(i),
                self.ready_timeout
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
    /// until it answers `/health` (on a fresh port if its own was taken meanwhile).
    pub(crate) async fn restart(&self, i: usize) -> Result<(), ServiceError> {
        if self.pid(i).is_some() {
            self.kill(i)?;
        }
        self.start(i).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A service answering `GET /health` with 200 on `$OVERBOOK_LISTEN`; before it, the
    /// shell text in `first` runs.
    fn health_server(first: &str) -> String {
        format!(
            "{first}\nexec python3 -c '
import http.server, os
host, port = os.environ[\"OVERBOOK_LISTEN\"].rsplit(\":\", 1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == \"/health\" else 404)
        self.send_header(\"Content-Length\", \"0\")
        self.end_headers()
http.server.HTTPServer((host, int(port)), H).serve_forever()
'"
        )
    }

    /// One replica of `command` in a fresh temp dir, its ports from `ports`.
    fn replicas(command: &str, ports: PortSource) -> (Replicas, PathBuf) {
        let dir = crate::nodes::tempdir::create("replica-test").unwrap();
        let r = Replicas::with_ports(
            command,
            &dir,
            Vec::new(),
            Duration::from_secs(30),
            vec![dir.join("service-0.log")],
            ports,
        )
        .unwrap();
        (r, dir)
    }

    #[tokio::test]
    async fn a_port_taken_before_the_start_is_replaced_by_a_fresh_one() {
        let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = squatter.local_addr().unwrap();
        let handed = AtomicBool::new(false);
        let ports = PortSource(Box::new(move || {
            if handed.swap(true, Ordering::SeqCst) {
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
            } else {
                Ok(taken)
            }
        }));
        let (r, dir) = replicas(&health_server(""), ports);
        assert_eq!(r.addr(0), taken, "the first pick is the occupied port");
        r.start_all().await.unwrap();
        assert_ne!(r.addr(0), taken);
        assert_eq!(
            http::probe(r.addr(0), "/health", Duration::from_secs(5)).await,
            Ok(200)
        );
        r.stop_all();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_service_that_dies_of_address_in_use_is_started_again_on_a_fresh_port() {
        // The first start fails as a service does whose port was taken between the pick
        // and its bind; the second serves.
        let first = "if [ ! -e tried ]; then touch tried; \
                     echo 'OSError: [Errno 98] Address already in use' >&2; exit 1; fi";
        let (r, dir) = replicas(&health_server(first), PortSource::loopback());
        let before = r.addr(0);
        r.start_all().await.unwrap();
        assert!(dir.join("tried").exists(), "the first start ran and failed");
        assert_ne!(r.addr(0), before);
        r.stop_all();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_restart_after_kill_moves_off_a_port_taken_while_it_was_down() {
        let (r, dir) = replicas(&health_server(""), PortSource::loopback());
        r.start_all().await.unwrap();
        let before = r.addr(0);
        r.kill(0).unwrap();
        // Another process takes the port in the kill-service window.
        let squatter = TcpListener::bind(before).unwrap();
        r.restart(0).await.unwrap();
        assert_ne!(r.addr(0), before);
        assert_eq!(
            http::probe(r.addr(0), "/health", Duration::from_secs(5)).await,
            Ok(200)
        );
        drop(squatter);
        r.stop_all();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn address_in_use_is_recognised_in_the_common_wordings() {
        assert!(said_addr_in_use(
            "OSError: [Errno 98] Address already in use"
        ));
        assert!(said_addr_in_use(
            "listen tcp 127.0.0.1:5: bind: address already in use"
        ));
        assert!(said_addr_in_use(
            "Error: listen EADDRINUSE: address already in use"
        ));
        assert!(!said_addr_in_use("connection refused"));
    }

    #[test]
    fn a_start_gives_up_after_port_tries_taken_ports() {
        let squatters: Vec<TcpListener> = (0..PORT_TRIES + 1)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        let taken: Vec<SocketAddr> = squatters.iter().map(|l| l.local_addr().unwrap()).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let always_taken = PortSource(Box::new(move || {
            Ok(taken[next.fetch_add(1, Ordering::SeqCst) % taken.len()])
        }));
        let (r, dir) = replicas("true", always_taken);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt.block_on(r.start_all()).unwrap_err().to_string();
        assert!(e.contains("ports in a row were taken"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
