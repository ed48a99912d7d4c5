//! Trustworthy verdicts (issue 13), each defect pinned by a test against the real binary
//! or real servers: no vacuous VALID, no data loss, no open door, no leftovers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use checkers::{Results, Validity};
use harness::nemesis::Fault;
use harness::nodes::{Backend, Cluster, NodeOptions};
use harness::run::{run, RunConfig};
use workloads::DesignName;

use crate::fixture;

/// A temporary directory removed on drop, even when an assertion fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("verdicts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn overbook(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("overbook runs");
    crate::verdict::assert_printed_runs_agree(&String::from_utf8_lossy(&out.stdout));
    out
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one run directory under `store/<test>/`.
fn run_dir(store: &Path, test: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(store.join(test))
        .unwrap_or_else(|e| panic!("no {test} in {}: {e}", store.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn read_results(dir: &Path) -> Results {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

fn conditions(r: &Results) -> &checkers::CheckResult {
    r.checks
        .iter()
        .find(|c| c.checker == "run-conditions")
        .expect("a run-conditions check")
}

// ---- 1. faults that cannot or did not fire -------------------------------------------

#[test]
fn a_fault_schedule_that_cannot_fit_is_refused_before_anything_starts() {
    let store = TempDir::new("nofit");
    // The example: 20 s of health then 40 s windows do not fit in 8 s. The fault
    // is named: the default is now slow-writes, the run used db-latency.
    let out = overbook(&[
        "run",
        "--fault",
        "db-latency",
        "--lock-ttl",
        "5s",
        "--db-latency",
        "6s",
        "--time-limit",
        "8s",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("no window of db-latency fits in --time-limit 8000ms"),
        "{}",
        show(&out)
    );
    assert!(
        std::fs::read_dir(&store.0).unwrap().next().is_none(),
        "nothing was started or written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_requested_fault_that_never_fired_makes_the_run_unknown() {
    // pause-db asked of servers overbook does not own: the nemesis refuses it before
    // its first window, so it never fires, while clients run normally. (The CLI refuses
    // this combination up front; the library run is how a fault fails to fire.)
    let logs = TempDir::new("unfired-logs");
    let owned = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let store = TempDir::new("unfired");
    let cfg = RunConfig {
        store: store.0.clone(),
        backend: Backend::External {
            redis_url: owned.redis.direct_url(),
            postgres_url: owned.postgres.direct_url(),
        },
        ..RunConfig::quick(DesignName::DbUnique, vec![Fault::PauseDb], 1)
    };
    let out = run(&cfg).await.unwrap();
    crate::verdict::assert_check_agrees(&out.dir.path);
    owned.shutdown().await.unwrap();
    let unstruck: Vec<&str> = out
        .conditions
        .unstruck()
        .map(|f| f.fault.as_str())
        .collect();
    assert_eq!(unstruck, ["pause-db"]);
    assert_eq!(out.results.validity, Validity::Unknown);
    let check = conditions(&out.results);
    assert_eq!(check.validity, Validity::Unknown);
    assert!(
        check
            .summary
            .contains("pause-db: requested but no window opened"),
        "{}",
        check.summary
    );
    // The same in results.json, for CI tooling.
    assert_eq!(read_results(&out.dir.path).validity, Validity::Unknown);
}

#[test]
fn a_canary_run_without_faults_says_no_fault_ran() {
    let store = TempDir::new("nofault");
    let out = overbook(&[
        "run",
        "--design",
        "db-unique",
        "--fault",
        "none",
        "--expect",
        "invalid",
        // Long enough for 4 users to confirm the 2 bookings a verdict needs even on a
        // loaded machine; the assertion is on the words, not on any timing.
        "--concurrency",
        "4",
        "--time-limit",
        "5s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains("the canary did not sing")
            && stdout(&out).contains("no fault ran (--fault none)"),
        "{}",
        show(&out)
    );
}

// ---- 2. nothing completed ------------------------------------------------------------

#[test]
fn a_run_that_completed_no_booking_is_not_valid() {
    let store = TempDir::new("noop");
    let out = overbook(&[
        "run",
        "--fault",
        "none",
        "--op-timeout",
        "0ms",
        "--time-limit",
        "1s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stdout(&out).contains("UNKNOWN"), "{}", show(&out));
    assert!(
        stderr(&out).contains("only 0 bookings confirmed"),
        "{}",
        show(&out)
    );
    let results = read_results(&run_dir(&store.0, "lock-only-none"));
    assert_eq!(results.validity, Validity::Unknown);
}

// ---- 3. clients that could not connect -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_could_not_connect_are_counted_and_mostly_failing_is_unknown() {
    // A server with 8 connections (3 of them reserved) for 32 users: most of them meet
    // "too many clients" on every attempt, for the whole run. (With 16 users the
    // fraction sat at the border of "most": whether 8 or 9 got in depended on how many
    // connections the harness itself held at that moment.)
    let logs = TempDir::new("tooMany-logs");
    let owned = Cluster::start(
        &Backend::Local,
        &NodeOptions {
            max_connections: 8,
            ..NodeOptions::new(&logs.0)
        },
    )
    .await
    .unwrap();
    let store = TempDir::new("tooMany");
    let mut cfg = RunConfig {
        store: store.0.clone(),
        backend: Backend::External {
            redis_url: owned.redis.direct_url(),
            postgres_url: owned.postgres.direct_url(),
        },
        ..RunConfig::quick(DesignName::DbUnique, vec![Fault::None], 3)
    };
    cfg.concurrency = 32;
    cfg.time_limit = Duration::from_secs(3);
    let out = run(&cfg).await.unwrap();
    crate::verdict::assert_check_agrees(&out.dir.path);
    owned.shutdown().await.unwrap();
    let c = &out.conditions;
    assert!(c.never_connected.is_some_and(|n| n * 2 >= 32), "{c:?}");
    assert!(c.open_failures > c.sessions, "{c:?}");
    assert!(
        c.first_open_error
            .as_deref()
            .is_some_and(|e| e.contains("too many clients")),
        "{c:?}"
    );
    assert_eq!(out.results.validity, Validity::Unknown);
    let check = conditions(&out.results);
    assert!(
        check.summary.contains("most clients could not connect"),
        "{}",
        check.summary
    );
}

// ---- 4. numeric ranges ---------------------------------------------------------------

#[test]
fn out_of_range_numbers_are_refused_up_front_with_the_allowed_range() {
    let store = TempDir::new("ranges");
    for (flag, value, says) in [
        ("--concurrency", "100000000", "allowed 1 to 1000"),
        ("--concurrency", "0", "allowed 1 to 1000"),
        ("--rooms", "18446744073709551615", "allowed 1 to 100000"),
        ("--window-days", "100000000", "to 3650"),
        ("--time-limit", "0s", "allowed 1ms to"),
        ("--lock-ttl", "0ms", "allowed 1ms to"),
        ("--db-latency", "61m", "allowed 0ms to 3600000ms"),
        ("--cancel-ratio", "1.5", "allowed 0 to 1"),
        ("--cancel-ratio", "NaN", "allowed 0 to 1"),
        ("--rate", "0", "allowed more than 0"),
        ("--fault-for", "0s", "allowed 1ms to"),
    ] {
        let out = overbook(&["run", flag, value, "--store", store.str()]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", show(&out));
        assert!(
            stderr(&out).contains(flag) && stderr(&out).contains(says),
            "{flag} {value}: {}",
            show(&out)
        );
    }
    assert!(std::fs::read_dir(&store.0).unwrap().next().is_none());
}

// ---- 5. matrix -----------------------------------------------------------------------

#[test]
fn matrix_arguments_are_checked_before_the_first_cell() {
    let store = TempDir::new("matrix-args");
    for (args, says) in [
        (
            vec!["--time-limit", "0s"],
            "--time-limit 0ms is out of range",
        ),
        (
            vec!["--", "--concurrency", "0"],
            "--concurrency 0 is out of range",
        ),
        (vec!["--", "--bogus-flag"], "--bogus-flag"),
        (
            vec![
                "--designs",
                "lock-only",
                "--faults",
                "none",
                "--shard",
                "2/4",
            ],
            "holds no cell",
        ),
        (
            vec![
                "--designs",
                "lock-only",
                "--faults",
                "pause-db",
                "--time-limit",
                "1s",
            ],
            "no window of pause-db fits",
        ),
    ] {
        let mut argv = vec!["matrix", "--store", store.str()];
        // Options before `--`, the rest after.
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        argv.splice(1..1, args[..split].iter().copied());
        argv.extend(&args[split..]);
        let out = overbook(&argv);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {}", show(&out));
        assert!(stderr(&out).contains(says), "{argv:?}: {}", show(&out));
        assert!(
            !store.path("matrix").exists(),
            "{argv:?}: nothing ran, nothing was written"
        );
    }
}

/// A matrix shard directory as `overbook matrix` writes it: plan.json and matrix.json.
pub(crate) fn shard_dir(store: &Path, name: &str, shard: &str, time_limit_ms: u64) -> PathBuf {
    let dir = store.join("matrix").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let plan = harness::matrix::PlanFile {
        designs: vec!["db-unique".into()],
        faults: vec!["none".into(), "db-latency".into()],
        seeds: 1,
        seed: 1,
        time_limit_ms,
        expect: vec![],
        run_args: vec![],
        shard: shard.into(),
        cells: 1,
    };
    std::fs::write(dir.join("plan.json"), serde_json::to_vec(&plan).unwrap()).unwrap();
    let index: usize = shard[..1].parse().unwrap();
    let matrix = reports::matrix::Matrix {
        started_at: name.into(),
        shards: vec![shard.into()],
        designs: plan.designs.clone(),
        faults: vec![plan.faults[index - 1].clone()],
        cells: vec![reports::matrix::MatrixCell {
            ordinal: index - 1,
            design: "db-unique".into(),
            fault: plan.faults[index - 1].clone(),
            seed: 1,
            expected: "valid".into(),
            verdict: Some(Validity::Valid),
            met: true,
            summary: "no anomalies; valid".into(),
            reproduce: "overbook run".into(),
            report: String::new(),
            wall_ms: 1,
            overhead_ms: 0,
            measures: Default::default(),
        }],
    };
    std::fs::write(
        dir.join("matrix.json"),
        serde_json::to_vec(&matrix).unwrap(),
    )
    .unwrap();
    dir
}

fn merged_dirs(store: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(store.join("matrix"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-merged"))
        .collect()
}

#[test]
fn matrix_merge_refuses_other_matrices_and_missing_shards_unless_partial() {
    let store = TempDir::new("merge");
    let one = shard_dir(&store.0, "a", "1/2", 10_000);
    let two = shard_dir(&store.0, "b", "2/2", 10_000);
    let other = shard_dir(&store.0, "c", "2/2", 20_000);
    let merge = |dirs: &[&Path], extra: &[&str]| {
        let mut argv = vec!["matrix", "merge", "--store", store.str()];
        argv.extend(extra);
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        argv.extend(dirs.iter().map(String::as_str));
        overbook(&argv)
    };

    let out = merge(&[&one, &other], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("are shards of different matrices"),
        "{}",
        show(&out)
    );
    assert!(merged_dirs(&store.0).is_empty(), "no empty merged dir left");

    let out = merge(&[&one], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("missing shards 2/2 of 2"),
        "{}",
        show(&out)
    );
    assert!(merged_dirs(&store.0).is_empty(), "no empty merged dir left");

    let out = merge(&[&one], &["--allow-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let out = merge(&[&one, &two], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("merged 2 shards: 2 cells"),
        "{}",
        show(&out)
    );
}

// ---- 7. external databases keep what is theirs ---------------------------------------

async fn schemas(c: &tokio_postgres::Client) -> Vec<String> {
    let rows = c
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'overbook\\_%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_run_leaves_the_users_own_tables_and_views_alone() {
    let logs = TempDir::new("external-logs");
    let owned = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    // The user's database: their own `inventory` and a view on it, in `public`.
    let user = pg(&owned.postgres.direct_url()).await;
    user.batch_execute(
        "CREATE TABLE public.inventory (sku text PRIMARY KEY, count int);
         INSERT INTO public.inventory VALUES ('towel', 12);
         CREATE VIEW public.stock AS SELECT sku, count FROM public.inventory;",
    )
    .await
    .unwrap();
    let before = schemas(&user).await;

    // atomic-reserve uses a table named `inventory` itself.
    let store = TempDir::new("external");
    let cfg = RunConfig {
        store: store.0.clone(),
        backend: Backend::External {
            redis_url: owned.redis.direct_url(),
            postgres_url: owned.postgres.direct_url(),
        },
        ..RunConfig::quick(DesignName::AtomicReserve, vec![Fault::DbLatency], 4)
    };
    let out = run(&cfg).await.unwrap();
    crate::verdict::assert_check_agrees(&out.dir.path);
    assert_eq!(out.results.validity, Validity::Valid, "{:?}", out.results);

    let towels: i32 = user
        .query_one("SELECT count FROM public.stock WHERE sku = 'towel'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(towels, 12, "the user's table and view survive");
    assert_eq!(
        schemas(&user).await,
        before,
        "the run's own schema is gone, no other was touched"
    );
    owned.shutdown().await.unwrap();
}

// ---- 8. check never overwrites its input ---------------------------------------------

#[test]
fn check_refuses_to_write_its_report_over_the_history() {
    let dir = TempDir::new("check-self");
    let history = dir.path("h.jsonl");
    let mut lines = String::new();
    for op in fixture::seed_race(false).history().ops() {
        lines.push_str(&serde_json::to_string(op).unwrap());
        lines.push('\n');
    }
    std::fs::write(&history, &lines).unwrap();
    std::os::unix::fs::symlink(&history, dir.path("link.jsonl")).unwrap();
    std::fs::hard_link(&history, dir.path("hard.jsonl")).unwrap();
    std::fs::create_dir(dir.path("sub")).unwrap();
    for report in [
        history.display().to_string(),
        format!("{}/sub/../h.jsonl", dir.str()),
        dir.path("link.jsonl").display().to_string(),
        dir.path("hard.jsonl").display().to_string(),
    ] {
        let out = overbook(&["check", history.to_str().unwrap(), "--report", &report]);
        assert_eq!(out.status.code(), Some(2), "{report}: {}", show(&out));
        assert!(
            stderr(&out).contains("refusing to overwrite"),
            "{}",
            show(&out)
        );
        assert_eq!(std::fs::read_to_string(&history).unwrap(), lines);
    }
    // Relative to the working directory, too.
    let out = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["check", "h.jsonl", "--report", "./h.jsonl"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(std::fs::read_to_string(&history).unwrap(), lines);
}

// ---- 9. the store's bookkeeping never costs a verdict --------------------------------

#[test]
fn a_store_whose_latest_and_index_are_directories_still_gets_the_verdict() {
    let store = TempDir::new("store-dirs");
    std::fs::create_dir_all(store.path("latest/x")).unwrap();
    std::fs::create_dir_all(store.path("index.html/x")).unwrap();
    let out = overbook(&[
        "run",
        "--design",
        "db-unique",
        "--fault",
        "none",
        "--concurrency",
        "4",
        "--time-limit",
        "5s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("VALID: db-unique"), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains(&store.path("latest").display().to_string()),
        "{}",
        show(&out)
    );
    assert!(
        err.contains(&store.path("index.html").display().to_string()),
        "{}",
        show(&out)
    );
    let stray: Vec<_> = std::fs::read_dir(&store.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}

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

// ---- 13. clean finds a killed run's leftovers, and only those ------------------------

/// Starts `overbook up` and waits for its `postgres data:` and `redis data:` lines.
fn start_up(logs: &Path, extra: &[&str]) -> (Child, Vec<PathBuf>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["up", "--dir", logs.to_str().unwrap()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut dirs = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(dir) = line.split(" data: ").nth(1) {
            dirs.push(PathBuf::from(dir));
        }
        if line.starts_with("Ctrl-C stops everything") {
            break;
        }
    }
    assert_eq!(dirs.len(), 2, "both servers' data dirs printed");
    (child, dirs)
}

fn processes_in(dir: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(dir))
        })
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .collect()
}

#[test]
fn clean_removes_a_killed_runs_dirs_and_stopped_servers_but_not_a_live_runs() {
    let logs = TempDir::new("clean-logs");
    // A run killed with -9 while Postgres is paused: its backends stay SIGSTOPped.
    let (mut dead, dead_dirs) = start_up(&logs.path("dead"), &["--fault", "pause-db"]);
    let db_dir = dead_dirs
        .iter()
        .find(|d| d.to_string_lossy().contains("overbook-db-"))
        .unwrap()
        .clone();
    dead.kill().unwrap();
    dead.wait().unwrap();
    // And a live one.
    let (mut live, live_dirs) = start_up(&logs.path("live"), &[]);
    // Its URLs, passwords included, are on disk for its owner only.
    let servers = logs.path("live/servers.txt");
    let mode = std::fs::metadata(&servers).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&servers).unwrap();
    assert!(
        text.contains("password=") && text.contains("redis://:"),
        "{text}"
    );

    let out = overbook(&["clean", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for dir in &dead_dirs {
        assert!(
            stdout(&out).contains(&format!("would remove dir {}", dir.display())),
            "{}",
            show(&out)
        );
        assert!(dir.exists(), "--dry-run removes nothing");
    }
    let stopped = processes_in(&db_dir);

    let out = overbook(&["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for dir in &dead_dirs {
        assert!(!dir.exists(), "{} removed: {}", dir.display(), show(&out));
    }
    assert!(
        processes_in(&db_dir).is_empty(),
        "the stopped servers {stopped:?} are gone"
    );
    for dir in &live_dirs {
        assert!(dir.exists(), "a live run's {} is kept", dir.display());
        assert!(
            stdout(&out).contains(&format!("keep    dir {}", dir.display())),
            "{}",
            show(&out)
        );
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(live.id() as i32, libc::SIGTERM) };
    live.wait().unwrap();
    for dir in &live_dirs {
        assert!(!dir.exists(), "the live run cleans up after itself");
    }
}

// ---- 14. Ctrl-C keeps what was recorded ----------------------------------------------

/// Waits (with no deadline: the run is long) until the run's history holds `oks` ok
/// completions; a run that exits first fails the test with its output instead.
fn wait_for_oks(child: &mut Child, store: &Path, test: &str, oks: usize) -> PathBuf {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("the run ended before any booking ({status}): {err}");
        }
        let found = std::fs::read_dir(store.join(test))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path().join("history.jsonl"));
        if let Some(h) = found {
            let text = std::fs::read_to_string(&h).unwrap_or_default();
            if text.matches("\"type\":\"ok\"").count() >= oks {
                return h;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_first_ctrl_c_writes_an_interrupted_report_and_exits_130() {
    let store = TempDir::new("ctrl-c");
    let mut child = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args([
            "run",
            "--design",
            "db-unique",
            "--fault",
            "none",
            "--time-limit",
            "10m",
            "--quiet",
            "--store",
            store.str(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let history = wait_for_oks(&mut child, &store.0, "db-unique-none", 10);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    let dir = history.parent().unwrap();
    assert!(
        stdout(&out).contains(&format!("run dir:   {}", dir.display())),
        "{}",
        show(&out)
    );
    assert!(stdout(&out).contains("interrupted"), "{}", show(&out));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["interrupted"], true);
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("Interrupted"));
    let results = read_results(dir);
    assert_eq!(results.validity, Validity::Valid, "{results:?}");
    // The final read was taken: the history ends with it.
    assert!(std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"f\":\"read\"") && l.contains("\"type\":\"ok\"")));
}

// ---- 15. progress in CI logs ---------------------------------------------------------

#[test]
fn without_a_terminal_progress_comes_as_lines() {
    let store = TempDir::new("progress");
    let out = overbook(&[
        "run",
        "--design",
        "db-unique",
        "--fault",
        "none",
        "--time-limit",
        "6s",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let lines: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("overbook: ") && l.contains(" ops ") && l.contains(" ok "))
        .map(String::from)
        .collect();
    assert!(!lines.is_empty(), "{}", show(&out));
    assert!(lines.iter().all(|l| l.ends_with("| healthy")), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_aborts_without_waiting_for_the_servers() {
    // Servers of the test's own, run as external ones: the test can freeze Postgres so
    // that the interrupted run's final read waits (up to its one-hour op timeout); only
    // the second Ctrl-C can end the run then.
    let logs = TempDir::new("ctrl-c-twice-logs");
    let servers = Cluster::start(&Backend::Local, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let store = TempDir::new("ctrl-c-twice");
    let (redis_url, pg_url) = (servers.redis.direct_url(), servers.postgres.direct_url());
    let mut child = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["run", "--design", "db-unique", "--fault", "none"])
        .args(["--time-limit", "10m", "--op-timeout", "60m", "--quiet"])
        .args(["--backend", "external", "--redis-url", &redis_url])
        .args(["--postgres-url", &pg_url, "--store", store.str()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let history = wait_for_oks(&mut child, &store.0, "db-unique-none", 1);
    servers.postgres.pause().await.unwrap();
    let (status, said) = crate::security::interrupt_twice(&mut child);
    servers.postgres.resume().await.unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("interrupted, stopping servers"), "{said}");
    let dir = history.parent().unwrap();
    assert!(
        !dir.join("results.json").exists(),
        "aborted: no verdict was made up"
    );
    // What was recorded up to then is on disk.
    assert!(std::fs::read_to_string(&history)
        .unwrap()
        .contains("\"type\":\"ok\""));
    servers.shutdown().await.unwrap();
}

/// Issue 22: `overbook check --store DIR` re-checks every stored run with this version
/// and lists the runs whose verdict changed (upgrade safety): none for a run just made,
/// and a run whose stored verdict no longer matches its history is named (exit 1).
#[test]
fn check_store_lists_runs_whose_verdict_changed() {
    let store = TempDir::new("recheck");
    let out = overbook(&[
        "run",
        "--design",
        "db-exclusion",
        "--fault",
        "none",
        "--concurrency",
        "4",
        "--time-limit",
        "3s",
        "--quiet",
        "--store",
        store.str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let again = overbook(&["check", "--store", store.str()]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert!(
        stdout(&again).contains("1 runs re-checked under") && stdout(&again).contains("0 changed"),
        "{}",
        show(&again)
    );
    // A stored verdict the history does not support: as if written by another version.
    let dir = std::fs::read_link(store.path("latest"))
        .map(|l| store.0.join(l))
        .unwrap();
    let results = dir.join("results.json");
    let text = std::fs::read_to_string(&results).unwrap();
    std::fs::write(
        &results,
        text.replacen("\"validity\": \"valid\"", "\"validity\": \"invalid\"", 1),
    )
    .unwrap();
    let changed = overbook(&["check", "--store", store.str()]);
    assert_eq!(changed.status.code(), Some(1), "{}", show(&changed));
    assert!(
        stdout(&changed).contains("changed  ")
            && stdout(&changed).contains("invalid (all-held) -> valid (all-held)"),
        "{}",
        show(&changed)
    );
}
