//! Never leave a server behind: a process-wide registry of the servers and temp dirs the
//! harness started, emptied on normal exit (by `Drop`), on Ctrl-C / SIGTERM (by a signal
//! thread) and on a panic of the main thread (by a panic hook).
//!
//! Being in the registry is the right to stop a server: whoever removes a pid from it
//! signals and reaps that process, so the signal thread and a `Drop` never both act on
//! a pid that may already have been reused.
//!
//! A SIGSTOPped server ignores SIGTERM until it is continued, so every stop sends SIGCONT
//! to all its processes first and falls back to SIGKILL.
//!
//! "All its processes": each server is started as the leader of its own process group,
//! but Postgres backends call `setsid()` and leave it, so a signal meant for the whole
//! server goes to the leader's group and to each of the leader's children
//! ([`signal_server`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// How long a server gets to shut down politely before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Registry {
    /// Group-leader pid (= pgid) -> the signal that asks it to shut down cleanly.
    servers: BTreeMap<i32, i32>,
    dirs: BTreeSet<PathBuf>,
}

// A std Mutex: nothing awaits while it is held, and the signal thread is not async.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    servers: BTreeMap::new(),
    dirs: BTreeSet::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records a server process (leader of its own process group) to stop on exit;
/// `polite` is the signal that shuts it down cleanly (SIGTERM for Redis, SIGINT for Postgres).
pub fn register_server(pid: i32, polite: i32) {
    registry().servers.insert(pid, polite);
}

/// Takes a server out of the registry; true when the caller now owns stopping it.
pub fn unregister_server(pid: i32) -> bool {
    registry().servers.remove(&pid).is_some()
}

/// Whether a server pid is still registered (started, not yet stopped).
pub fn is_registered(pid: i32) -> bool {
    registry().servers.contains_key(&pid)
}

/// The pids of every registered server.
pub fn registered_servers() -> Vec<i32> {
    registry().servers.keys().copied().collect()
}

/// Records a temp dir to delete on exit.
pub fn register_dir(dir: &Path) {
    registry().dirs.insert(dir.to_path_buf());
}

/// Forgets a temp dir (it was deleted, or must be kept).
pub fn unregister_dir(dir: &Path) {
    registry().dirs.remove(dir);
}

/// Stops every registered server and deletes every registered temp dir.
pub fn stop_all() {
    // Containers (docker backend) are not in the pid registry: the engine owns them.
    crate::node::docker::remove_registered();
    let (servers, dirs) = {
        let mut reg = registry();
        (
            std::mem::take(&mut reg.servers),
            std::mem::take(&mut reg.dirs),
        )
    };
    for (&pid, _) in servers.iter() {
        // Resume all first, so none waits on a stopped peer while we stop the others.
        signal_server(pid, libc::SIGCONT);
    }
    for (pid, polite) in servers {
        stop_group(pid, polite, STOP_GRACE);
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Sends `sig` to every process of the group led by `pgid`; false if none is left.
pub fn signal_group(pgid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

/// The live direct children of `pid` (for Postgres: its backends and auxiliary processes).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let child = e.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parens.
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?;
            let ppid = fields.next()?.parse::<i32>().ok()?;
            (ppid == pid && state != "Z").then_some(child)
        })
        .collect()
}

/// Sends `sig` to every process of the server led by `pid`: its process group and each of
/// its children (which may have left the group). False if the leader is gone.
pub fn signal_server(pid: i32, sig: i32) -> bool {
    if sig == libc::SIGCONT {
        for child in children(pid) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(child, sig) };
        }
        return signal_group(pid, sig);
    }
    // Freeze the leader first: a stopped postmaster cannot fork a backend we would miss,
    // and its children are still its children (not yet reparented) while we list them.
    let alive = signal_group(pid, libc::SIGSTOP);
    let mut targets = children(pid);
    for &child in &targets {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(child, sig) };
    }
    if sig != libc::SIGSTOP {
        signal_group(pid, sig);
    } else {
        targets.push(pid);
    }
    // Signals are delivered asynchronously: a running backend stops or dies a moment
    // later. Callers (a fault window starting) rely on the server being frozen or gone
    // when this returns.
    settle(&targets, sig);
    alive
}

/// A process's state letter from /proc (`?` when it no longer exists).
fn state(pid: i32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let (_, rest) = s.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        .unwrap_or('?')
}

/// Waits (up to a second) until every pid has stopped (SIGSTOP) or died (otherwise).
fn settle(pids: &[i32], sig: i32) {
    if sig != libc::SIGSTOP && sig != libc::SIGKILL {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let done = |pid: i32| match state(pid) {
        'Z' | 'X' | '?' => true,
        'T' | 't' => sig == libc::SIGSTOP,
        _ => false,
    };
    while !pids.iter().all(|&p| done(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether the (child) process `pid` has exited, without reaping it.
pub(crate) fn has_exited(pid: i32) -> bool {
    // SAFETY: waitid fills the zeroed siginfo we own; WNOWAIT leaves the zombie in place
    // so the group can still be signalled by its pgid before the pid is released.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // ECHILD: not our child any more (already reaped), i.e. gone.
        rc != 0 || info.si_pid() != 0
    }
}

/// Reaps the exited child `pid`.
fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: plain waitpid on our own child.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
    }
}

/// Stops a server group for good: SIGCONT, the polite signal to the leader, up to `grace`
/// for it to exit, then SIGKILL to the whole group, then reaps the leader.
pub fn stop_group(pid: i32, polite: i32, grace: Duration) {
    signal_server(pid, libc::SIGCONT);
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, polite);
    }
    let deadline = Instant::now() + grace;
    while !has_exited(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_group(pid);
}

/// SIGKILLs every process of the server (postmaster and backends alike) and reaps the
/// leader.
pub fn kill_group(pid: i32) {
    signal_server(pid, libc::SIGKILL);
    reap(pid);
}

static INSTALL: Once = Once::new();
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    let byte = sig as u8;
    // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
    unsafe {
        libc::write(fd, (&byte as *const u8).cast(), 1);
    }
}

/// Installs, once per process, the SIGINT/SIGTERM handler (a thread that stops every
/// registered server, deletes registered temp dirs and exits with 128 + signal) and a panic
/// hook that does the same cleanup when the main thread panics. Only the binary calls this:
/// a test binary runs many tests in one process and must not kill its neighbours' servers.
pub fn install() -> io::Result<()> {
    let mut result = Ok(());
    INSTALL.call_once(|| result = install_once());
    result
}

fn install_once() -> io::Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    PIPE_WRITE.store(fds[1], Ordering::Relaxed);
    let read_fd = fds[0];
    std::thread::Builder::new()
        .name("overbook-signals".into())
        .spawn(move || {
            let mut byte = 0u8;
            loop {
                // SAFETY: reading one byte into a local.
                let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
                if n == 1 {
                    break;
                }
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            eprintln!("overbook: interrupted, stopping servers");
            stop_all();
            std::process::exit(128 + i32::from(byte));
        })?;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only calls write(2); the struct is zeroed then set.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        // Worker threads' panics are caught by tokio and may be survivable; a panic of the
        // main thread ends the run, and unwinding may not reach every Drop (abort, statics).
        if std::thread::current().name() == Some("main") {
            stop_all();
        }
    }));
    Ok(())
}
