//! Process control: signalling a server's whole process tree and waiting until the
//! signal took effect. Pure system calls, no registry (that is the [`super::reaper`]).
//!
//! "The whole server": each server is started as the leader of its own process group,
//! but Postgres backends call `setsid()` and leave it, so a signal meant for the whole
//! server goes to the leader's group and to each of the leader's children
//! ([`signal_server`]).

use std::time::{Duration, Instant};

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

/// How the (child) process `pid` ended, without reaping it: `None` while it runs;
/// `Some(None)` when it is gone but its status cannot be read (not our child any more:
/// already reaped); `Some(Some(info))` with its exit status otherwise.
pub(crate) fn peek_exit(pid: i32) -> Option<Option<libc::siginfo_t>> {
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
        if rc != 0 {
            // ECHILD: not our child any more (already reaped), i.e. gone.
            Some(None)
        } else if info.si_pid() == 0 {
            None
        } else {
            Some(Some(info))
        }
    }
}

/// Whether the (child) process `pid` has exited, without reaping it.
pub(crate) fn has_exited(pid: i32) -> bool {
    peek_exit(pid).is_some()
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
