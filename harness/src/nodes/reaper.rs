//! The reaper: never leave a server behind. A process-wide registry of the servers and
//! temp dirs the harness started, emptied on normal exit (by `Drop`), on Ctrl-C / SIGTERM
//! (by a signal thread) and on a panic of the main thread (by a panic hook). Owners of
//! other things (containers) add an exit hook with [`on_exit`].
//!
//! Being in the registry is the right to stop a server: whoever removes a pid from it
//! signals and reaps that process, so the signal thread and a `Drop` never both act on
//! a pid that may already have been reused.
//!
//! A SIGSTOPped server ignores SIGTERM until it is continued, so every stop sends SIGCONT
//! to all its processes first and falls back to SIGKILL.
//!
//! The signalling itself is in [`super::process`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use super::process::{signal_server, stop_group};

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

/// Registers `hook` to run (once per registration) when [`stop_all`] runs: for what is not
/// a pid, e.g. containers the engine owns. Cheap to call repeatedly with the same hook.
pub fn on_exit(hook: fn()) {
    let mut hooks = EXIT_HOOKS.lock().unwrap_or_else(|p| p.into_inner());
    if !hooks.iter().any(|h| std::ptr::fn_addr_eq(*h, hook)) {
        hooks.push(hook);
    }
}

// A std Mutex, for the same reason as the registry.
static EXIT_HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

/// Stops every registered server and deletes every registered temp dir.
pub fn stop_all() {
    let hooks = EXIT_HOOKS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for hook in hooks {
        hook();
    }
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

/// Whether the first SIGINT/SIGTERM goes to a run loop instead of ending the process.
static ROUTED: AtomicBool = AtomicBool::new(false);
static INTERRUPT: OnceLock<tokio::sync::watch::Sender<bool>> = OnceLock::new();

fn interrupt() -> &'static tokio::sync::watch::Sender<bool> {
    INTERRUPT.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Hands the first SIGINT/SIGTERM to whoever watches [`interrupted`] (the run loop, which
/// then stops its clients, heals, checks and writes what it recorded) instead of stopping
/// everything at once; a second signal still stops every server and exits at once.
pub fn route_first_signal() {
    ROUTED.store(true, Ordering::SeqCst);
}

/// Turns true on the first signal once [`route_first_signal`] was called.
pub fn interrupted() -> tokio::sync::watch::Receiver<bool> {
    interrupt().subscribe()
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
            let mut handed_over = false;
            loop {
                // SAFETY: reading one byte into a local.
                let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
                if n == 1 && !handed_over && ROUTED.load(Ordering::SeqCst) {
                    handed_over = true;
                    eprintln!(
                        "overbook: interrupted: stopping clients, healing, checking what was \
                         recorded (interrupt again to abort at once)"
                    );
                    interrupt().send_replace(true);
                    continue;
                }
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
