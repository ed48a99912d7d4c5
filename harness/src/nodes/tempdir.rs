//! The local backend's temp dirs (server data, sockets, logs of initdb), and finding the
//! ones a killed run left behind.
//!
//! Each is made by `mkdtemp(3)`: an unpredictable name, created atomically with mode
//! 0700, failing rather than reusing anything that exists, and never following a
//! symlink (`mkdir` does not). A predictable name such as `/tmp/overbook-<pid>-1-db` lets
//! another local user plant a symlink there first and have the harness hand their target
//! to the `postgres` user.
//!
//! Each holds a marker, [`MARKER`], naming the harness that made it (pid and the
//! process's start time, so a reused pid is not mistaken for the owner). `overbook clean`
//! removes only dirs with a marker whose owner is gone, and stops only processes working
//! inside such a dir: never what is not overbook's, never a live run's.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::NodeError;

/// The file in each temp dir naming its owner: `pid <pid>\nstart <ticks>\n`.
pub const MARKER: &str = "overbook-owner";
/// Every temp dir's name starts with this.
pub const PREFIX: &str = "overbook-";

/// The harness process that made a temp dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Its pid.
    pub pid: i32,
    /// Its start time, in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id() as i32;
        Owner {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether that very process still runs (same pid and same start time).
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut pid = None;
        let mut start = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("pid", v)) => pid = v.trim().parse().ok(),
                Some(("start", v)) => start = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Owner {
            pid: pid?,
            start: start?,
        })
    }
}

/// Where a pid names a process: this boot of this machine and this pid namespace, as
/// `<boot id>/<pid namespace inode>`. A pid recorded in another space (a container or CI
/// runner sharing a docker socket or a Postgres server, another machine, an earlier boot)
/// says nothing here: `/proc/<pid>` may be some unrelated process, or none while that
/// run still goes.
pub fn pid_space() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // `pid:[4026531836]` -> `4026531836`
    let ns = ns.trim_start_matches("pid:[").trim_end_matches(']');
    format!("{boot}/{ns}")
}

/// What marks a run's things (containers, databases) carry: the harness's pid and start
/// time, and the pid space those are in ([`pid_space`]); each part may be missing (an
/// older overbook, a hand-edited label).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMark {
    /// The harness's pid.
    pub pid: Option<i32>,
    /// Its start time in clock ticks since boot.
    pub start: Option<u64>,
    /// [`pid_space`] of the harness.
    pub space: Option<String>,
}

/// Whether the run that made something still goes, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Same pid space, and that very process (pid and start time) still runs.
    Alive,
    /// Same pid space, and that process is gone: a leftover.
    Gone,
    /// The mark is incomplete or from another pid space: it may still be running.
    Unknown,
}

impl RunMark {
    /// This process's mark.
    pub fn me() -> RunMark {
        let me = Owner::me();
        RunMark {
            pid: Some(me.pid),
            start: Some(me.start),
            space: Some(pid_space()),
        }
    }

    /// Judges the run against `here` (this process's [`pid_space`]).
    pub fn state(&self, here: &str) -> RunState {
        match (self.pid, self.start, self.space.as_deref()) {
            (Some(pid), Some(start), Some(space)) if space == here => {
                if (Owner { pid, start }).is_alive() {
                    RunState::Alive
                } else {
                    RunState::Gone
                }
            }
            _ => RunState::Unknown,
        }
    }
}

/// What `overbook clean` does with one thing of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Remove it.
    Remove,
    /// Leave it, for this reason.
    Keep(&'static str),
}

/// Decides, from the run's state, what `overbook clean` does: only a gone run's things
/// are removed; a live run's, and those whose run cannot be judged from here, only with
/// `force`.
pub fn decide(state: RunState, force: bool) -> Cleanup {
    match (state, force) {
        (RunState::Gone, _) | (_, true) => Cleanup::Remove,
        (RunState::Alive, false) => Cleanup::Keep("run still going"),
        (RunState::Unknown, false) => Cleanup::Keep(
            "run unknown: marked in another pid namespace or machine, or not fully; --force removes it",
        ),
    }
}

/// A process's start time from `/proc/<pid>/stat` (field 22, after the parenthesised
/// command name, which may itself hold spaces and parentheses).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Creates `$TMPDIR/overbook-<what>-XXXXXX` with mkdtemp (mode 0700) and writes its
/// owner marker in it.
pub(crate) fn create(what: &str) -> Result<PathBuf, NodeError> {
    let template = std::env::temp_dir().join(format!("{PREFIX}{what}-XXXXXX"));
    let c = CString::new(template.into_os_string().into_vec()).map_err(|_| {
        NodeError::io(
            "make a temp dir",
            std::io::Error::other("TMPDIR holds a NUL byte"),
        )
    })?;
    let mut buf = c.into_bytes_with_nul();
    // SAFETY: buf is a NUL-terminated template ending in XXXXXX, which mkdtemp rewrites
    // in place; it lives until we copy it out below.
    let made = unsafe { libc::mkdtemp(buf.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(NodeError::io(
            format!("make a temp dir in {}", std::env::temp_dir().display()),
            std::io::Error::last_os_error(),
        ));
    }
    buf.pop();
    let dir = PathBuf::from(OsString::from_vec(buf));
    let me = Owner::me();
    let marker = dir.join(MARKER);
    std::fs::write(&marker, format!("pid {}\nstart {}\n", me.pid, me.start))
        .map_err(|e| NodeError::io(format!("write {}", marker.display()), e))?;
    Ok(dir)
}

/// A temp dir made by [`create`] and removed when dropped: a command's scratch space
/// (e.g. the outcome files of `run --repeat`), gone even when the command fails.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Makes `$TMPDIR/overbook-<what>-XXXXXX`.
    pub fn new(what: &str) -> Result<Scratch, NodeError> {
        create(what).map(Scratch)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A temp dir of a run that is gone, and the processes still working inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The temp dir.
    pub dir: PathBuf,
    /// Who made it.
    pub owner: Owner,
    /// Whether that harness still runs (then the dir is a live run's, not a leftover).
    pub alive: bool,
    /// Processes whose working directory is inside it: servers of that run (Postgres
    /// backends left stopped by a kill -9 during a pause, for instance).
    pub pids: Vec<i32>,
    /// Its size on disk, in bytes.
    pub bytes: u64,
}

/// Every overbook temp dir in `$TMPDIR` that carries a marker, live runs' included
/// (`alive` tells them apart). Directories without a marker are not overbook's to touch.
pub fn scan() -> Vec<Leftover> {
    let root = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        // A symlink is never ours: mkdtemp makes directories.
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        let Some(owner) = std::fs::read_to_string(dir.join(MARKER))
            .ok()
            .and_then(|t| Owner::parse(&t))
        else {
            continue;
        };
        out.push(Leftover {
            alive: owner.is_alive(),
            pids: processes_in(&dir),
            bytes: size_of(&dir),
            dir,
            owner,
        });
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// The pids whose working directory is `dir` or below it, zombies aside (they hold
/// nothing and only wait for their parent).
fn processes_in(dir: &Path) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .filter(|pid| !is_zombie(*pid))
        .collect();
    pids.sort_unstable();
    pids
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Stops a dead run's processes (SIGCONT first: a stopped process cannot act on
/// anything else, then SIGKILL) and deletes its temp dir. Returns what could not be
/// removed.
pub fn remove(leftover: &Leftover) -> Result<(), std::io::Error> {
    for &pid in &leftover.pids {
        // Re-check right before signalling: only a process still inside the dir.
        if !processes_in(&leftover.dir).contains(&pid) {
            continue;
        }
        // SAFETY: kill(2) with a pid read from /proc just now.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGKILL);
        }
    }
    // A killed process takes a moment to die; one still alive could write into the dir
    // while it is removed. Bounded: a process that cannot die is reported by the caller
    // finding it still listed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !processes_in(&leftover.dir).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::remove_dir_all(&leftover.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_fresh_private_and_marked_with_their_live_owner() {
        use std::os::unix::fs::PermissionsExt;
        let a = create("test").unwrap();
        let b = create("test").unwrap();
        assert_ne!(a, b);
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let found = scan()
            .into_iter()
            .find(|l| l.dir == a)
            .expect("scan finds it");
        assert_eq!(found.owner, Owner::me());
        assert!(found.alive);
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn only_a_gone_run_of_this_pid_space_is_cleaned_without_force() {
        let here = pid_space();
        assert!(here.len() > 2 && here.contains('/'), "{here}");
        let me = RunMark::me();
        assert_eq!(me.state(&here), RunState::Alive);
        let reused = RunMark {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert_eq!(reused.state(&here), RunState::Gone);
        // The same pid in another namespace or machine, or a bare pid label, says nothing.
        let elsewhere = RunMark {
            space: Some("other-boot/4026531836".into()),
            ..reused.clone()
        };
        assert_eq!(elsewhere.state(&here), RunState::Unknown);
        let bare = RunMark {
            pid: me.pid,
            ..RunMark::default()
        };
        assert_eq!(bare.state(&here), RunState::Unknown);

        assert_eq!(decide(RunState::Gone, false), Cleanup::Remove);
        assert!(matches!(decide(RunState::Alive, false), Cleanup::Keep(_)));
        assert!(matches!(decide(RunState::Unknown, false), Cleanup::Keep(_)));
        assert_eq!(decide(RunState::Unknown, true), Cleanup::Remove);
        assert_eq!(decide(RunState::Alive, true), Cleanup::Remove);
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        let me = Owner::me();
        assert!(me.is_alive());
        assert!(!Owner {
            start: me.start + 1,
            ..me
        }
        .is_alive());
        assert_eq!(
            Owner::parse("pid 12\nstart 34\n"),
            Some(Owner { pid: 12, start: 34 })
        );
        assert_eq!(Owner::parse("pid 12\n"), None);
    }
}
