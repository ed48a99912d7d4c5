//! Run directories are untrusted input and secrets stay secret (issue 23): each test
//! names the item it pins, against real servers (`overbook up`) or the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_overbook");

/// A fresh scratch directory for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("overbook-sec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(files(&p));
        } else if !t.is_symlink() {
            out.push(p);
        }
    }
    out
}

/// The password in a conninfo string (`password=...`, unquoted as overbook writes it).
fn conninfo_password(conninfo: &str) -> String {
    conninfo
        .split_whitespace()
        .find_map(|w| w.strip_prefix("password="))
        .expect("the direct address carries a password")
        .trim_matches('\'')
        .to_string()
}

/// Issue 23.2: `connect_direct`'s error carried the direct address with `password=...`
/// into run.log, the history (a failed read's `error`) and stderr; with `--backend
/// external` it is the user's real password. The final read of a design whose Postgres
/// is gone fails, and its error names the server but not the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_names_the_server_but_never_its_password() {
    use harness::nodes::{Backend, Cluster, NodeOptions};
    use harness::sut::System;
    let logs = Scratch::new("redact");
    let cluster = std::sync::Arc::new(
        Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
            .await
            .unwrap(),
    );
    let password = conninfo_password(&cluster.postgres.direct_url());
    assert!(password.len() >= 8, "a password worth looking for");
    let cfg = workloads::Config::new(workloads::RunClock::start(), workloads::ClientPause::new());
    let system = harness::sut::builtin::BuiltinSystem::new(
        workloads::DesignName::DbUnique,
        cfg,
        &cluster,
        std::time::Duration::from_secs(2),
    );
    cluster.postgres.kill().await.unwrap();
    let err = system
        .read_all()
        .await
        .expect_err("no server, no read")
        .to_string();
    assert!(
        err.contains("connecting to postgres at host=127.0.0.1"),
        "{err}"
    );
    assert!(
        !err.contains(&password),
        "the error leaks the password: {err}"
    );
    assert!(err.contains("password=***"), "{err}");
}

/// Issue 23.2: run directories and their files were world-readable (0755/0644), and
/// they hold the run's logs and errors.
#[test]
fn a_run_directory_is_private_unless_shared() {
    let store = Scratch::new("private");
    let run = |share: bool| {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--design", "db-unique", "--fault", "none"])
            .args(["--time-limit", "1s", "--concurrency", "2", "-q", "--store"])
            .arg(store.0.join(if share { "shared" } else { "private" }));
        if share {
            cmd.arg("--share");
        }
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(false);
    run(true);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for (sub, dir_mode, file_mode) in [("private", 0o700, 0o600), ("shared", 0o755, 0o644)] {
        let written = files(&store.0.join(sub));
        assert!(written.iter().any(|f| f.ends_with("history.jsonl")));
        for f in written {
            // The index sits at the store's root, the run's files in its directory.
            assert_eq!(mode(&f), file_mode, "{}", f.display());
            assert_eq!(mode(f.parent().unwrap()), dir_mode, "{}", f.display());
        }
    }
}

/// A run directory as a fork's CI artifact could carry it: a failing run whose command
/// is `command` (results from a real invalid history, so shrink accepts it).
fn planted_run(root: &Path, command: &str) -> PathBuf {
    let dir = root.join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkers/testdata/invalid");
    let history = std::fs::read_dir(corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let h = harness::store::load_history(&history).unwrap();
    let results = checkers::check_all(&h, &checkers::CheckOptions::default());
    assert_eq!(results.validity, checkers::Validity::Invalid);
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec(&results).unwrap(),
    )
    .unwrap();
    let meta = reports::RunMeta {
        command: command.to_string(),
        ..Default::default()
    };
    std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
    dir
}

/// Issue 23.1: `overbook shrink RUN_DIR` ran the shell command in a copied run's
/// meta.json (`--service 'id > FILE; exit 1'`) as the current user, with no prompt.
/// Now it shows it and refuses without --trust-run (stdin is not a terminal here).
#[test]
fn shrink_refuses_a_run_directorys_service_without_trust() {
    let scratch = Scratch::new("shrink-trust");
    let marker = scratch.0.join("pwned");
    let command = format!(
        "overbook run --service 'id > {}; exit 1' --fault none --time-limit 1s",
        marker.display()
    );
    let dir = planted_run(&scratch.0, &command);
    let out = Command::new(BIN)
        .args(["shrink", "--budget", "20s", "--tries", "1"])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!marker.exists(), "the run directory's command ran");
    assert!(stderr.contains("--trust-run"), "{stderr}");
    assert!(
        stderr.contains("--service id > "),
        "the command is shown: {stderr}"
    );
    assert!(!dir.join("shrink").exists(), "nothing started: {stderr}");
}

/// Whether `text` holds a raw terminal control or bidi override (what for_terminal
/// escapes): ESC, BEL, CSI, U+202E and friends.
fn has_raw_escape(text: &str) -> bool {
    text.chars()
        .any(|c| c != '\n' && checkers::text::is_escaped(c))
}

/// Issue 23.6: a service's log tail on a start-up failure was printed raw (a service set
/// the terminal title and cleared the screen), as were merged matrices' cells.
#[test]
fn foreign_text_reaches_the_terminal_escaped() {
    let scratch = Scratch::new("escapes");
    // A service that writes escapes and a bidi override to its log and dies at start.
    let out = Command::new(BIN)
        .args(["run", "--service"])
        .arg(r"printf '\033]0;PWNED\007\033[2J\342\200\256 boom\n'; exit 1")
        .args(["--fault", "none", "--time-limit", "1s", "-q", "--store"])
        .arg(scratch.0.join("store"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(r"\x1b]0;PWNED\x07"),
        "the tail is shown: {stderr}"
    );
    assert!(!has_raw_escape(&stderr), "{stderr:?}");
    assert!(!has_raw_escape(&stdout), "{stdout:?}");

    // matrix merge's "did not meet" list and its reproduce lines: a shard's cell
    // rewritten with escapes in every string a merge prints.
    let dir = crate::shards::shard_dir(&scratch.0.join("store"), "a", "1/2", 1000);
    let path = dir.join("matrix.json");
    let mut matrix: reports::matrix::Matrix =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let cell = &mut matrix.cells[0];
    cell.design = "db-unique\u{1b}[2J".into();
    cell.fault = "none\u{202e}".into();
    cell.verdict = Some(checkers::Validity::Invalid);
    cell.met = false;
    cell.reproduce = "overbook run \u{1b}]0;PWNED\u{7}".into();
    std::fs::write(&path, serde_json::to_vec(&matrix).unwrap()).unwrap();
    let out = Command::new(BIN)
        .args(["matrix", "merge", "--allow-partial", "--store"])
        .arg(scratch.0.join("store"))
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("did not meet"), "{stdout}{stderr}");
    assert!(stdout.contains(r"\x1b]0;PWNED"), "{stdout}");
    assert!(!has_raw_escape(&stdout), "{stdout:?}");
    assert!(!has_raw_escape(&stderr), "{stderr:?}");
}

/// Every key of the Redis at `url`, with its value, sorted.
async fn redis_keys(url: &str) -> Vec<(String, String)> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let v: String = redis::cmd("GET")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.push((k, v));
    }
    out
}

/// Issue 23.12: on `--backend external` the lock keys were the bare `lock:room:N` and
/// `fence:room:N`: two runs against one Redis shared locks and fencing counters, and a
/// run took (and raised) keys of the same name that were someone else's. Each run now
/// prefixes its keys with its own `overbook_<id>:` and deletes only those at the end: a
/// fenced run against a Redis holding a user's `lock:room:101` and `fence:room:101`
/// books rooms and leaves both keys exactly as they were, and nothing of its own behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_an_external_redis_use_their_own_keys_only() {
    use harness::nodes::{Backend, Cluster, NodeOptions};
    use harness::run::{run, RunConfig};
    let logs = Scratch::new("keys");
    let owned = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let redis_url = owned.redis.direct_url();
    {
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for (k, v) in [("lock:room:101", "theirs"), ("fence:room:101", "7")] {
            let () = redis::cmd("SET")
                .arg(k)
                .arg(v)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
    let users = redis_keys(&redis_url).await;
    let backend = Backend::External {
        redis_url: redis_url.clone(),
        postgres_url: owned.postgres.direct_url(),
    };

    // Two runs' clusters on one server: distinct prefixes, both overbook's.
    let a = Cluster::start(&backend, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let b = Cluster::start(&backend, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    for c in [&a, &b] {
        assert!(
            c.lock_prefix().starts_with("overbook_"),
            "{}",
            c.lock_prefix()
        );
        assert!(c.lock_prefix().ends_with(':'));
    }
    assert_ne!(a.lock_prefix(), b.lock_prefix());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    // Servers the run owns hold nobody else's keys: no prefix there.
    assert_eq!(owned.lock_prefix(), "");

    let store = Scratch::new("keys-store");
    let cfg = RunConfig {
        store: store.0.clone(),
        command: "cargo test".into(),
        backend,
        rooms: 1,
        ..RunConfig::quick(workloads::DesignName::LockFencing, Vec::new(), 12)
    };
    let out = run(&cfg).await.unwrap();
    let books = crate::verdict::ok_books(&out.results);
    assert!(books > 0, "{}", crate::verdict::describe(&out.results));
    // Room 101 was booked through the run's own lock and counter: the user's lock (which
    // would have made every acquire busy) and counter (which a fenced grant INCRs) are
    // untouched, and the run's keys are gone.
    assert_eq!(redis_keys(&redis_url).await, users);
    owned.shutdown().await.unwrap();
}

/// The `overbook_*` databases on the server `url` reaches, with their comments.
async fn overbook_databases(url: &str) -> Vec<(String, Option<String>)> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query(
            r"SELECT datname::text, shobj_description(oid, 'pg_database')
              FROM pg_database WHERE datname LIKE 'overbook\_%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Runs each statement on its own (CREATE DATABASE refuses a transaction block).
async fn sql(url: &str, statements: &[&str]) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    for s in statements {
        client.batch_execute(s).await.unwrap();
    }
}

/// Ctrl-C to a running `overbook run` (its stderr piped), and once it says it stops in
/// order, Ctrl-C again: its exit status and everything it wrote to stderr.
pub(crate) fn interrupt_twice(
    child: &mut std::process::Child,
) -> (std::process::ExitStatus, String) {
    use std::io::{BufRead, BufReader};
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    for line in err.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("interrupt again to abort at once") {
            break;
        }
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    for line in err {
        said.push_str(&line.unwrap());
        said.push('\n');
    }
    (child.wait().unwrap(), said)
}

/// Issue 23.8: a service's database was created and dropped by hand, outside the
/// reaper: a second Ctrl-C (abort at once) left it on the user's server. It is now a
/// marked scratch database, registered like the built-in schema. A service that never
/// answers the final read keeps the first Ctrl-C's orderly stop waiting (op timeout one
/// hour); the second aborts, and the database is gone all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_service_run_drops_its_database_on_an_external_server() {
    use harness::nodes::{Backend, Cluster, NodeOptions};
    use std::process::Stdio;
    let logs = Scratch::new("svc-db");
    let servers = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let pg_url = servers.postgres.direct_url();
    let before = overbook_databases(&pg_url).await;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/service_fixture.py");
    let cmd = format!(
        "FIXTURE_MODE=hang exec /usr/bin/python3 {}",
        fixture.display()
    );
    let store = Scratch::new("svc-db-store");
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--fault",
            "none",
            "--time-limit",
            "10m",
            "--op-timeout",
            "60m",
        ])
        .args(["--service", &cmd, "--backend", "external"])
        .args(["--redis-url", &servers.redis.direct_url()])
        .args(["--postgres-url", &pg_url, "--store"])
        .arg(&store.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mark = format!("pid {},", child.id());
    // Set up: its marked database exists (created before the service starts).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let dbs = overbook_databases(&pg_url).await;
        if dbs
            .iter()
            .any(|(_, c)| c.as_deref().is_some_and(|c| c.contains(&mark)))
        {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(std::time::Instant::now() < deadline, "no database: {dbs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, said) = interrupt_twice(&mut child);
    assert_eq!(status.code(), Some(130), "{said}");
    assert_eq!(overbook_databases(&pg_url).await, before, "{said}");
    servers.shutdown().await.unwrap();
}

/// Issue 23.8: `overbook clean` had no way to find what killed runs left on an external
/// Postgres. `--postgres-url` lists the `overbook_*` databases there and drops only
/// those overbook marked for a run that is gone: a live run's, one marked in another
/// pid namespace, and an unmarked one (a user's, whatever its name) stay, and
/// `--dry-run` drops nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_drops_a_dead_runs_databases_and_nothing_else() {
    use harness::nodes::scratch::{Scratch as PgScratch, ScratchKind};
    use harness::nodes::tempdir::pid_space;
    use harness::nodes::{Backend, Cluster, NodeOptions};
    let logs = Scratch::new("clean-pg");
    let servers = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let url = servers.postgres.direct_url();
    // A live run's: this test process's own, marked at creation.
    let live = PgScratch::create(ScratchKind::Database, &url, true, false)
        .await
        .unwrap();
    let here = pid_space();
    let marked = |name: &str, space: &str| {
        [
            format!("CREATE DATABASE {name}"),
            format!(
                "COMMENT ON DATABASE {name} IS \
                 'created by overbook (pid 1, start 1, space {space}); dropped at the end of its run'"
            ),
        ]
    };
    // pid 1 started at tick 1 in this pid space: not the pid 1 that runs here.
    let dead = "overbook_00000000000000d1";
    sql(&url, &marked(dead, &here).each_ref().map(String::as_str)).await;
    let foreign = "overbook_00000000000000f0";
    sql(
        &url,
        &marked(foreign, "another-boot/4026531836")
            .each_ref()
            .map(String::as_str),
    )
    .await;
    let users = "overbook_00000000000000a0";
    sql(&url, &[&format!("CREATE DATABASE {users}")]).await;
    let all = overbook_databases(&url).await;
    assert_eq!(all.len(), 4, "{all:?}");

    let clean = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["clean", "--postgres-url", &url])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        text
    };
    let text = clean(&["--dry-run"]);
    assert!(
        text.contains(&format!("would remove database {dead}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("keep    database {}", live.name())),
        "{text}"
    );
    assert!(
        text.contains(&format!("keep    database {foreign} (run unknown")),
        "{text}"
    );
    assert!(
        text.contains(&format!("keep    database {users} (no overbook mark")),
        "{text}"
    );
    assert!(!text.contains(&conninfo_password(&url)), "{text}");
    assert_eq!(
        overbook_databases(&url).await,
        all,
        "a dry run drops nothing"
    );

    clean(&[]);
    let left: Vec<String> = overbook_databases(&url)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut want = vec![
        live.name().to_string(),
        foreign.to_string(),
        users.to_string(),
    ];
    want.sort();
    assert_eq!(left, want);
    for name in [live.name(), foreign, users] {
        sql(&url, &[&format!("DROP DATABASE {name}")]).await;
    }
    servers.shutdown().await.unwrap();
}
