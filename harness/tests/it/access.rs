//! Nothing overbook starts is open to other local users, and no planted link is followed
//! (issue 13).

use crate::support::*;
use harness::nodes::{Backend, Cluster, NodeOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

// ---- 10, 11. nothing overbook starts is open to other local users --------------------

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `program args` as the user `nobody`, as a hostile local user would.
fn as_nobody(program: &str, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "nobody", "--", program])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .expect("runuser runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_local_user_cannot_log_in_to_the_servers() {
    if !is_root() || which("psql").is_none() || which("redis-cli").is_none() {
        eprintln!("skipped: needs root (to become nobody), psql and redis-cli");
        return;
    }
    let logs = TempDir::new("attack-logs");
    let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let pg_port = cluster.postgres.direct_addr().port().to_string();
    let pg_dir = cluster.postgres.temp_dir().unwrap().to_path_buf();
    let redis_port = cluster.redis.direct_addr().port().to_string();
    let redis_sock = cluster.redis.temp_dir().unwrap().join("redis.sock");

    // Postgres over TCP: a password is required (and nobody has it).
    let out = as_nobody(
        "psql",
        &[
            "-w",
            "-h",
            "127.0.0.1",
            "-p",
            &pg_port,
            "-U",
            "postgres",
            "-c",
            "SELECT 1",
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("password"),
        "refused for want of a password: {}",
        show(&out)
    );
    // Postgres over its unix socket: the socket's directory is closed to others.
    let out = as_nobody(
        "psql",
        &[
            "-w",
            "-h",
            pg_dir.to_str().unwrap(),
            "-p",
            &pg_port,
            "-U",
            "postgres",
            "-c",
            "SELECT 1",
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    // Redis over TCP: every command is refused without the password.
    let out = as_nobody(
        "redis-cli",
        &["-h", "127.0.0.1", "-p", &redis_port, "SET", "room:101", "x"],
    );
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("NOAUTH"), "{}", show(&out));
    // Redis over its unix socket: not even reachable.
    let out = as_nobody("redis-cli", &["-s", redis_sock.to_str().unwrap(), "PING"]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!said.contains("PONG"), "{}", show(&out));
    // The temp dirs themselves: private.
    for dir in [&pg_dir, &cluster.redis.temp_dir().unwrap().to_path_buf()] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    // Our own clients still get in: the password travels in the URLs.
    let db = pg(&cluster.postgres.url()).await;
    db.query_one("SELECT 1", &[]).await.unwrap();
    cluster.shutdown().await.unwrap();
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_at_the_old_temp_dir_name_is_never_followed() {
    if !is_root() {
        eprintln!("skipped: needs root (the attack hands a root directory to postgres)");
        return;
    }
    // The attack: predict the next temp dir's name and plant a link to a root-owned
    // directory there; the old code chowned its target to postgres and initdb'd in it.
    let victim = TempDir::new("victim");
    std::fs::set_permissions(&victim.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let pid = std::process::id();
    let mut planted = Vec::new();
    for n in 0..64 {
        for kind in ["db", "redis"] {
            let link = std::env::temp_dir().join(format!("overbook-{pid}-{n}-{kind}"));
            if std::os::unix::fs::symlink(&victim.0, &link).is_ok() {
                planted.push(link);
            }
        }
    }
    let logs = TempDir::new("plant-logs");
    let cluster = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0)).await;
    for link in &planted {
        let _ = std::fs::remove_file(link);
    }
    let cluster = cluster.unwrap();
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&victim.0).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o700), "untouched");
    assert!(std::fs::read_dir(&victim.0).unwrap().next().is_none());
    for node in cluster.nodes() {
        let dir = node.temp_dir().unwrap();
        let link = std::fs::symlink_metadata(dir).unwrap();
        assert!(link.is_dir(), "{} is a real directory", dir.display());
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("overbook-db-") || name.starts_with("overbook-redis-"),
            "{name}"
        );
        assert!(dir.join(harness::nodes::tempdir::MARKER).is_file());
    }
    cluster.shutdown().await.unwrap();
}
