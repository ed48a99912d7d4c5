//! No orphans: `overbook up` is started as a real process, its servers are paused, and it
//! is interrupted (or killed); no process of the servers' groups may remain afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_overbook");

/// A running `overbook up`; on drop (a failed assertion included) it and every server it
/// reported are killed and their dirs removed.
struct Up {
    child: Child,
    info: BTreeMap<String, String>,
    logs: PathBuf,
}

impl Up {
    fn start(name: &str, faults: &[&str]) -> Up {
        let logs =
            std::env::temp_dir().join(format!("overbook-cleanup-{name}-{}", std::process::id()));
        let mut cmd = Command::new(BIN);
        cmd.arg("up").arg("--dir").arg(&logs);
        for f in faults {
            cmd.args(["--fault", f]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut up = Up {
            child,
            info: BTreeMap::new(),
            logs,
        };
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("overbook up never became ready");
            if line.starts_with("Ctrl-C") {
                break;
            }
            if let Some((k, v)) = line.split_once(": ") {
                up.info.insert(k.to_string(), v.to_string());
            }
        }
        up
    }

    fn pgid(&self, kind: &str) -> i32 {
        self.info[&format!("{kind} pid")].parse().unwrap()
    }

    fn data(&self, kind: &str) -> PathBuf {
        PathBuf::from(&self.info[&format!("{kind} data")])
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "overbook did not exit in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for kind in ["redis", "postgres"] {
            if let Some(pgid) = self
                .info
                .get(&format!("{kind} pid"))
                .and_then(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2); the group is one this test's child created.
                unsafe {
                    libc::kill(-pgid, libc::SIGCONT);
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
            if let Some(dir) = self.info.get(&format!("{kind} data")) {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

/// Live (non-zombie) processes whose process group is `pgid`, with their state letter.
fn group_members(pgid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let state = fields[0].chars().next().unwrap_or('?');
        if fields[2].parse::<i32>() == Ok(pgid) && state != 'Z' && state != 'X' {
            out.push((pid, state));
        }
    }
    out
}

fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    !matches!(state(pid), '?' | 'Z' | 'X')
}

fn wait_group_gone(pgid: i32, timeout: Duration) -> Vec<(i32, char)> {
    let deadline = Instant::now() + timeout;
    loop {
        let members = group_members(pgid);
        if members.is_empty() || Instant::now() > deadline {
            return members;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_resumes_and_stops_paused_servers_and_removes_their_dirs() {
    let mut up = Up::start("sigint", &["pause-redis", "pause-db"]);
    let (redis, pg) = (up.pgid("redis"), up.pgid("postgres"));
    assert!(up.data("redis").exists() && up.data("postgres").exists());
    // Postgres's backends left the postmaster's group (setsid): track them too.
    let backends = harness::nodes::process::children(pg);
    assert!(!backends.is_empty());
    for b in &backends {
        assert_eq!(state(*b), 'T', "backend {b} not paused");
    }
    for pgid in [redis, pg] {
        let members = group_members(pgid);
        assert!(!members.is_empty());
        assert!(
            members.iter().all(|(_, s)| *s == 'T'),
            "the fault paused every process: {members:?}"
        );
    }

    up.signal(libc::SIGINT);
    let status = up.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "interrupted: 128 + SIGINT");
    for pgid in [redis, pg] {
        assert_eq!(
            wait_group_gone(pgid, Duration::from_secs(5)),
            vec![],
            "group {pgid} left behind"
        );
    }
    for b in backends {
        assert!(!alive(b), "backend {b} left behind");
    }
    assert!(!up.data("redis").exists(), "redis temp dir removed");
    assert!(!up.data("postgres").exists(), "postgres temp dir removed");
}

#[test]
fn sigterm_stops_running_servers_too() {
    let mut up = Up::start("sigterm", &["partition-db"]);
    let (redis, pg) = (up.pgid("redis"), up.pgid("postgres"));
    up.signal(libc::SIGTERM);
    assert_eq!(up.wait(Duration::from_secs(30)).code(), Some(143));
    for pgid in [redis, pg] {
        assert_eq!(wait_group_gone(pgid, Duration::from_secs(5)), vec![]);
    }
    assert!(!up.data("postgres").exists());
}

#[test]
fn kill_9_of_the_harness_takes_its_servers_down() {
    let mut up = Up::start("kill9", &[]);
    let (redis, pg) = (up.pgid("redis"), up.pgid("postgres"));
    let backends = harness::nodes::process::children(pg);
    assert!(!backends.is_empty());
    up.signal(libc::SIGKILL);
    up.wait(Duration::from_secs(10));
    // Nothing of ours runs any more: the parent-death signal kills the servers, and the
    // postmaster's children exit once it is gone. (The temp dirs cannot be removed by a
    // process killed with -9; the guard removes them.)
    for pgid in [redis, pg] {
        assert_eq!(
            wait_group_gone(pgid, Duration::from_secs(10)),
            vec![],
            "orphans of group {pgid}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while backends.iter().any(|b| alive(*b)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for b in backends {
        assert!(!alive(b), "backend {b} outlived its postmaster");
    }
}

#[test]
fn a_missing_server_binary_says_what_to_install_and_exits_2() {
    let empty = std::env::temp_dir().join(format!("overbook-empty-path-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let logs = empty.join("logs");
    let out = Command::new(BIN)
        .args(["up", "--dir"])
        .arg(&logs)
        .env("PATH", &empty)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("redis-server not found: apt-get install redis-server"),
        "{stderr}"
    );
}

#[test]
fn process_faults_are_refused_for_external_servers_before_anything_starts() {
    let out = Command::new(BIN)
        .args([
            "up",
            "--backend",
            "external",
            "--redis-url",
            "redis://127.0.0.1:1/",
        ])
        .args([
            "--postgres-url",
            "host=127.0.0.1 port=1",
            "--fault",
            "kill-redis",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(
            "kill-redis needs a backend that owns the server; --backend external does not"
        ),
        "{stderr}"
    );
}

#[test]
fn another_lock_service_is_refused_for_external_servers_before_anything_starts() {
    // Nothing listens on port 1: a refusal that came after connecting would fail
    // differently, so the message proves the check comes first.
    let out = Command::new(BIN)
        .args(["run", "--backend", "external", "--redis-url"])
        .args([
            "redis://127.0.0.1:1/",
            "--postgres-url",
            "host=127.0.0.1 port=1",
        ])
        .args(["--lock-service", "redlock"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--lock-service redlock starts its own topology")
            && stderr.contains("--backend local or docker"),
        "{stderr}"
    );
}
