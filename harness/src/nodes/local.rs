//! The `local` backend: Redis and Postgres spawned from this machine's binaries in a fresh
//! temp dir, on free ports, each in its own process group.
//!
//! Own process group: it keeps a terminal's Ctrl-C (sent to the foreground group) from
//! reaching the servers directly, so the harness decides the order of shutdown. Pause and
//! kill must hit every process of a server at once, which is what a frozen or crashed
//! machine looks like; Postgres backends `setsid()` out of the group, so those faults go
//! through [`process::signal_server`], which also signals the postmaster's children.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::NodeSpec;
use super::{process, reaper, tempdir};
use super::{NodeError, NodeOptions, ServerKind};

/// Postgres refuses to run as root; as root we run it as this user.
const POSTGRES_USER: &str = "postgres";

/// How long a server gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process the harness owns.
#[derive(Debug)]
pub(crate) struct LocalServer {
    kind: ServerKind,
    /// Config lines beyond the password (Redis topologies).
    conf: Vec<String>,
    /// Runs as a sentinel.
    sentinel: bool,
    port: u16,
    /// The temp dir: Redis's working dir, or Postgres's data dir parent and socket dir.
    dir: PathBuf,
    log: PathBuf,
    keep: bool,
    redis_aof: bool,
    max_connections: u32,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    /// The running server's pid (= its pgid); `None` while it is down (killed or stopped).
    pid: Mutex<Option<i32>>,
    /// The random per-run password: Postgres's `postgres` user (scram-sha-256), Redis's
    /// `requirepass`. Without it any local user could log in to a server on loopback.
    password: String,
}

impl LocalServer {
    /// Creates the temp dir, initialises it (Postgres: initdb), starts the server and waits
    /// until it answers.
    pub(crate) async fn start(
        kind: ServerKind,
        opts: &NodeOptions,
        spec: &NodeSpec,
    ) -> Result<LocalServer, NodeError> {
        let (bin, initdb) = match kind {
            ServerKind::Redis => (
                find_binary(
                    "redis-server",
                    &[],
                    "apt-get install redis-server, or --backend docker (overbook doctor)",
                )?,
                None,
            ),
            ServerKind::Postgres => {
                let dirs = postgres_bin_dirs();
                let hint = "apt-get install postgresql (version 15 or later), or --backend docker \
                            (overbook doctor)";
                (
                    find_binary("postgres", &dirs, hint)?,
                    Some(find_binary("initdb", &dirs, hint)?),
                )
            }
        };
        let run_as = match kind {
            // SAFETY: geteuid has no preconditions.
            ServerKind::Postgres if unsafe { libc::geteuid() } == 0 => {
                Some(lookup_user(POSTGRES_USER)?)
            }
            _ => None,
        };
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| NodeError::io(format!("create {}", opts.dir.display()), e))?;
        // mkdtemp: unpredictable, 0700, never an existing path or a symlink's target.
        let name = spec.stem(kind);
        let dir = tempdir::create(name)?;
        if !opts.keep {
            reaper::register_dir(&dir);
        }
        let mut server = LocalServer {
            kind,
            conf: spec.conf.clone(),
            sentinel: spec.sentinel,
            port: 0,
            dir,
            log: opts.dir.join(format!("{name}.log")),
            keep: opts.keep,
            redis_aof: opts.redis_aof,
            max_connections: opts.max_connections,
            bin,
            run_as,
            pid: Mutex::new(None),
            password: spec.password.clone().unwrap_or_else(super::random_password),
        };
        if kind == ServerKind::Redis {
            server.write_redis_config()?;
        }
        if let Some(initdb) = initdb {
            server.initdb(&initdb).await?;
        }
        // The free port is found by binding and releasing it, so another process may take
        // it before the server binds: retry with a fresh port when the server dies early.
        let mut last = None;
        let attempts = if spec.addr.is_some() { 1 } else { 3 };
        for _ in 0..attempts {
            server.port = match spec.addr {
                Some(addr) => addr.port(),
                None => free_port()?,
            };
            server.spawn()?;
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e @ NodeError::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| NodeError::io("start", std::io::Error::other("no attempt"))))
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The server's unix socket, for the proxy's hop (cheaper than loopback TCP); `None`
    /// when the path would be too long for a socket address.
    pub(crate) fn unix_socket(&self) -> Option<PathBuf> {
        let path = match self.kind {
            ServerKind::Redis if self.sentinel => return None,
            ServerKind::Redis => self.dir.join("redis.sock"),
            ServerKind::Postgres => self.dir.join(format!(".s.PGSQL.{}", self.port)),
        };
        // sun_path holds 108 bytes, the terminating NUL included.
        (path.as_os_str().len() < 100).then_some(path)
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    pub(crate) fn temp_dir(&self) -> &Path {
        &self.dir
    }

    /// How clients log in: the superuser / default user with the run's password.
    pub(crate) fn login(&self) -> super::Login {
        super::Login::owned(self.kind, &self.password)
    }

    /// Writes Redis's config file (0600, in the 0700 temp dir): the password goes there,
    /// not on the command line, which every local user can read in /proc.
    fn write_redis_config(&self) -> Result<(), NodeError> {
        let path = self.redis_config();
        let conf = super::config::redis_conf(&[], &self.password, &self.conf);
        write_private(&path, conf.as_bytes())
    }

    fn redis_config(&self) -> PathBuf {
        self.dir.join("redis.conf")
    }

    /// The pid (= pgid) of the running server, if it is up.
    pub(crate) fn pid(&self) -> Option<i32> {
        *self.pid.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn open_log(&self) -> Result<File, NodeError> {
        // Appended to across restarts; never through a link, private as its directory.
        crate::store::create_file(&self.log, true)
            .map_err(|e| NodeError::io(format!("open log {}", self.log.display()), e))
    }

    /// Prepares a command: own process group, output to the node's log, dropped to the
    /// Postgres user when root, and killed if the harness dies without cleaning up.
    fn command(&self, program: &Path) -> Result<Command, NodeError> {
        let log = self.open_log()?;
        let log2 = log.try_clone().map_err(|e| NodeError::io("dup log", e))?;
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .current_dir(&self.dir)
            .process_group(0);
        let run_as = self.run_as;
        // SAFETY: the closure only makes async-signal-safe syscalls (setgroups, setgid,
        // setuid, prctl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if let Some((uid, gid)) = run_as {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // After setuid: changing credentials clears the parent-death signal.
                // Covers a `kill -9` of the harness; the postmaster's own children exit
                // when they notice the postmaster is gone.
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                Ok(())
            });
        }
        Ok(cmd)
    }

    async fn initdb(&self, initdb: &Path) -> Result<(), NodeError> {
        // The password reaches initdb in a file only the server's user can read, removed
        // right after; every pg_hba line (unix socket and loopback) then asks for it.
        let pwfile = self.dir.join("pwfile");
        write_private(&pwfile, self.password.as_bytes())?;
        if let Some((uid, gid)) = self.run_as {
            chown(&self.dir, uid, gid)?;
            chown(&pwfile, uid, gid)?;
        }
        let mut cmd = self.command(initdb)?;
        cmd.arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            // Only initdb's own writes skip fsync; the server runs with fsync on.
            .arg("--no-sync");
        let mut cmd = tokio::process::Command::from(cmd);
        let status = cmd.status().await;
        let _ = std::fs::remove_file(&pwfile);
        let status = status.map_err(|e| NodeError::io(format!("run {}", initdb.display()), e))?;
        if !status.success() {
            return Err(NodeError::Exited {
                kind: self.kind,
                status: format!("initdb {status}"),
                log_tail: log_tail(&self.log),
            });
        }
        Ok(())
    }

    /// Starts the server process (not waiting for readiness). No-op when it is running.
    pub(crate) fn spawn(&self) -> Result<(), NodeError> {
        let mut pid = self.pid.lock().unwrap_or_else(|p| p.into_inner());
        if pid.is_some() {
            return Ok(());
        }
        let mut cmd = self.command(&self.bin)?;
        let port = self.port.to_string();
        match self.kind {
            ServerKind::Redis if self.sentinel => {
                // A sentinel rewrites its config file (what it learns), so the file is
                // its own, in its 0700 dir; no data, so none of the data flags.
                cmd.arg(self.redis_config())
                    .arg("--sentinel")
                    .args(["--port", &port, "--bind", "127.0.0.1"])
                    .args(["--daemonize", "no", "--logfile", ""])
                    .arg("--dir")
                    .arg(&self.dir);
            }
            ServerKind::Redis => {
                // The config file first (redis-server's rule), the flags after it.
                cmd.arg(self.redis_config())
                    .args(["--port", &port, "--bind", "127.0.0.1"])
                    .args(["--daemonize", "no", "--logfile", ""])
                    .args(super::config::redis_flags(self.redis_aof))
                    .arg("--dir")
                    .arg(&self.dir);
                if let Some(sock) = self.unix_socket() {
                    cmd.arg("--unixsocket")
                        .arg(sock)
                        .args(["--unixsocketperm", "700"]);
                }
            }
            ServerKind::Postgres => {
                cmd.arg("-D").arg(self.data_dir()).args(["-p", &port]);
                cmd.arg("-c")
                    .arg(format!("unix_socket_directories={}", self.dir.display()));
                let local = [
                    "listen_addresses=127.0.0.1",
                    "logging_collector=off",
                    // The socket's dir is 0700 already; the socket itself follows suit.
                    "unix_socket_permissions=0700",
                ];
                let settings = super::config::postgres_settings(self.max_connections);
                for setting in settings.iter().map(String::as_str).chain(local) {
                    cmd.arg("-c").arg(setting);
                }
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| NodeError::io(format!("spawn {}", self.bin.display()), e))?;
        let id = child.id() as i32;
        // The std Child is dropped without waiting: the pid is reaped by `cleanup`, which
        // needs to signal the group before releasing the pid.
        drop(child);
        reaper::register_server(id, self.polite_signal());
        *pid = Some(id);
        Ok(())
    }

    fn polite_signal(&self) -> i32 {
        match self.kind {
            ServerKind::Redis => libc::SIGTERM,
            // SIGTERM is "smart" shutdown and waits for clients to leave; SIGINT is "fast".
            ServerKind::Postgres => libc::SIGINT,
        }
    }

    /// Polls until the server answers, the deadline passes or the process dies.
    pub(crate) async fn wait_ready(&self) -> Result<(), NodeError> {
        let start = Instant::now();
        loop {
            let Some(pid) = self.pid() else {
                return Err(NodeError::NotRunning { kind: self.kind });
            };
            if process::has_exited(pid) {
                let status = if reaper::unregister_server(pid) {
                    let status = reap_status(pid);
                    *self.pid.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    status
                } else {
                    "exited".to_string()
                };
                return Err(NodeError::Exited {
                    kind: self.kind,
                    status,
                    log_tail: log_tail(&self.log),
                });
            }
            if probe(
                self.kind,
                self.addr(),
                &super::render(self.kind, &self.login(), self.addr()),
            )
            .await
            .is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(NodeError::NotReady {
                    kind: self.kind,
                    addr: self.addr(),
                    waited: start.elapsed(),
                    reason: "no answer".into(),
                    log_tail: log_tail(&self.log),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGSTOP to every process of the server: it stops answering, connections stay open.
    pub(crate) fn pause(&self) -> Result<(), NodeError> {
        let pid = self
            .pid()
            .ok_or(NodeError::NotRunning { kind: self.kind })?;
        process::signal_server(pid, libc::SIGSTOP);
        Ok(())
    }

    /// SIGCONT to every process of the server.
    pub(crate) fn resume(&self) -> Result<(), NodeError> {
        if let Some(pid) = self.pid() {
            process::signal_server(pid, libc::SIGCONT);
        }
        Ok(())
    }

    /// `kill -9` of every process of the server: no shutdown, nothing beyond what was fsynced.
    pub(crate) fn kill(&self) -> Result<(), NodeError> {
        let mut guard = self.pid.lock().unwrap_or_else(|p| p.into_inner());
        let pid = guard
            .take()
            .ok_or(NodeError::NotRunning { kind: self.kind })?;
        if reaper::unregister_server(pid) {
            process::kill_group(pid);
        }
        Ok(())
    }

    /// Starts the server again on the same port and data, and waits until it is ready
    /// (Postgres replays its WAL first). Stops it first if it is still running.
    pub(crate) async fn restart(&self) -> Result<(), NodeError> {
        self.stop();
        self.spawn()?;
        self.wait_ready().await
    }

    /// Stops the server politely (SIGCONT first, SIGKILL after a grace period).
    pub(crate) fn stop(&self) {
        let pid = self.pid.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(pid) = pid {
            if reaper::unregister_server(pid) {
                // Nothing of the data is kept unless asked: no need to wait for a clean
                // shutdown of a server whose dir is about to be deleted.
                let grace = if self.keep {
                    reaper::STOP_GRACE
                } else {
                    Duration::from_millis(500)
                };
                process::stop_group(pid, self.polite_signal(), grace);
            }
        }
    }

    /// Stops the server and deletes its temp dir (unless kept).
    pub(crate) fn shutdown(&self) {
        self.stop();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
            reaper::unregister_dir(&self.dir);
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn reap_status(pid: i32) -> String {
    let mut status = 0;
    // SAFETY: waitpid on our own exited child.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
    }
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    }
}

/// How long one readiness probe may take. A Postgres login is a SCRAM exchange (4096
/// PBKDF2 rounds on each side): on a loaded machine it can take over a second, and a
/// server that refuses connections still fails at once.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers within [`PROBE_TIMEOUT`]: Redis replies to PING (any reply, an error such as NOAUTH or
/// LOADING included, proves a live server), Postgres completes a real login.
pub(crate) async fn probe(
    kind: ServerKind,
    addr: SocketAddr,
    pg_config: &str,
) -> Result<(), String> {
    let attempt = async {
        match kind {
            ServerKind::Redis => {
                let mut s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| e.to_string())?;
                s.write_all(b"*1\r\n$4\r\nPING\r\n")
                    .await
                    .map_err(|e| e.to_string())?;
                let mut reply = [0u8; 64];
                let n = s.read(&mut reply).await.map_err(|e| e.to_string())?;
                match reply.first() {
                    Some(b'+') => Ok(()),
                    Some(b'-') => {
                        let text = String::from_utf8_lossy(&reply[..n]).trim().to_string();
                        if text.starts_with("-LOADING") {
                            Err(text)
                        } else {
                            Ok(())
                        }
                    }
                    _ => Err("no reply to PING".to_string()),
                }
            }
            ServerKind::Postgres => {
                let (client, conn) = tokio_postgres::connect(pg_config, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let conn = tokio::spawn(conn);
                drop(client);
                let _ = conn.await;
                Ok(())
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// A port free now on loopback (another process may take it before we bind it).
pub(crate) fn free_port() -> Result<u16, NodeError> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| NodeError::io("find a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| NodeError::io("find a free port", e))
}

/// Where redis-server, postgres and initdb are installed, each `None` when missing
/// (`--backend auto`, `overbook doctor`).
pub(crate) fn binary_paths() -> [(&'static str, Option<PathBuf>); 3] {
    let dirs = postgres_bin_dirs();
    [
        ("redis-server", find_binary("redis-server", &[], "").ok()),
        ("postgres", find_binary("postgres", &dirs, "").ok()),
        ("initdb", find_binary("initdb", &dirs, "").ok()),
    ]
}

/// `/usr/lib/postgresql/<version>/bin`, newest version first.
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, d)| d).collect()
}

/// Finds `name` on PATH, then in `extra` dirs.
fn find_binary(name: &str, extra: &[PathBuf], hint: &str) -> Result<PathBuf, NodeError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| NodeError::MissingBinary {
            name: name.to_string(),
            hint: hint.to_string(),
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn lookup_user(name: &str) -> Result<(u32, u32), NodeError> {
    let cname =
        std::ffi::CString::new(name).map_err(|_| NodeError::NoUser { name: name.into() })?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy the two ids
    // out immediately, and only the startup path calls it.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return Err(NodeError::NoUser { name: name.into() });
    }
    // SAFETY: non-null, points to a valid passwd record.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// Creates `path` (it must not exist: never through a planted link) with mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| NodeError::io(format!("write {}", path.display()), e))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), NodeError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| NodeError::io(format!("chown {}", path.display()), e))
}

/// The last lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(2048)));
    // Bytes, decoded lossily: the cut may fall inside a multi-byte character, and a
    // server or service may write any bytes; either must not empty the tail.
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    // Each line escaped for a terminal: the tail is printed, and a server or a service
    // may have written escapes that set the title or clear the screen.
    let lines: Vec<_> = text.lines().map(checkers::text::for_terminal).collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23.7: the 2 KiB cut fell inside a multi-byte character (or the log held one
    /// invalid byte) and `read_to_string` returned nothing: the real error vanished.
    #[test]
    fn a_log_tail_survives_a_cut_character_and_invalid_bytes() {
        let path = std::env::temp_dir().join(format!("overbook-tail-{}.log", std::process::id()));
        // 'é' is two bytes; 2047 of them leave the cut in the middle of one.
        let mut log = "é".repeat(2047).into_bytes();
        log.extend_from_slice(b"\nbad byte \xff here\nFATAL: the real error\n");
        std::fs::write(&path, &log).unwrap();
        let tail = log_tail(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(tail.ends_with("FATAL: the real error"), "{tail:?}");
        assert!(tail.contains("bad byte \u{fffd} here"), "{tail:?}");
    }
}
