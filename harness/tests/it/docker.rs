//! The docker backend against a real engine and the offline images
//! (`docker/build-offline-images.sh`, built here when missing and possible; otherwise every
//! test prints why and skips). Tests take turns (one lock): each ends by checking that
//! nothing labelled with this process's pid is left, which a neighbour's live containers
//! would spoil, and two container clusters at once would only slow both on 2 cores.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use checkers::{Results, Validity};
use harness::nemesis::Fault;
use harness::nodes::docker::{self, Images};
use harness::nodes::{Backend, Cluster, NodeError, NodeOptions};
use harness::run::RunConfig;
use workloads::DesignName;

use crate::support::TempDir;
use crate::verdict::{checker, describe, ok_books};

static SERIAL: tokio::sync::Mutex<Option<Result<Images, String>>> =
    tokio::sync::Mutex::const_new(None);

/// The offline images, built on first use when missing; `Err` says why tests must skip.
fn offline_images() -> Result<Images, String> {
    let images = Images::offline();
    match docker::check_ready(&images) {
        Ok(()) => return Ok(images),
        Err(NodeError::Docker { what, .. }) if what.starts_with("connect") => {
            return Err(format!("no docker engine answers ({what})"))
        }
        Err(_) => {}
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker/build-offline-images.sh");
    eprintln!("building the offline images with {}", script.display());
    let began = Instant::now();
    let out = Command::new(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("built the offline images in {:.0?}", began.elapsed());
    docker::check_ready(&images).map_err(|e| e.to_string())?;
    Ok(images)
}

/// Takes the turn and returns the images, or prints why and returns `None` (skip).
pub(crate) async fn turn() -> Option<(
    tokio::sync::MutexGuard<'static, Option<Result<Images, String>>>,
    Images,
)> {
    let mut guard = SERIAL.lock().await;
    if guard.is_none() {
        *guard = Some(
            tokio::task::spawn_blocking(offline_images)
                .await
                .unwrap_or_else(|e| Err(e.to_string())),
        );
    }
    match guard.as_ref() {
        Some(Ok(images)) => {
            let images = images.clone();
            Some((guard, images))
        }
        Some(Err(why)) => {
            eprintln!("SKIPPED: docker backend tests need the offline images: {why}");
            None
        }
        None => None,
    }
}

/// Everything labelled with this process's pid: must be empty once a test is done.
pub(crate) async fn ours_left() -> Vec<String> {
    let engine = docker::connect().await.unwrap();
    docker::list_ours(&engine)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.pid == Some(std::process::id() as i32))
        .map(|l| format!("{} {}", l.what, l.name))
        .collect()
}

async fn redis_ping(url: &str, timeout: Duration) -> Result<String, String> {
    let attempt = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| "timeout".to_string())?
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_container_stops_answering_and_comes_back() {
    let Some((_turn, images)) = turn().await else {
        return;
    };
    let logs = TempDir::new("pause");
    let cluster = Cluster::start(&Backend::Docker { images }, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let name = cluster.redis.container().unwrap().to_string();
    assert!(name.starts_with("overbook-") && name.ends_with("-redis"));
    let url = cluster.redis.url();
    assert_eq!(
        redis_ping(&url, Duration::from_secs(2)).await.unwrap(),
        "PONG"
    );

    cluster.redis.pause().await.unwrap();
    assert_eq!(
        redis_ping(&url, Duration::from_millis(400)).await,
        Err("timeout".to_string()),
        "a frozen redis container must not answer"
    );
    // Past the proxy too: the container is frozen, not just the proxy's link.
    assert_eq!(
        redis_ping(&cluster.redis.direct_url(), Duration::from_millis(300)).await,
        Err("timeout".to_string())
    );

    cluster.redis.resume().await.unwrap();
    assert_eq!(
        redis_ping(&url, Duration::from_secs(2)).await.unwrap(),
        "PONG"
    );
    cluster.shutdown().await.unwrap();
    drop(cluster);
    assert_eq!(ours_left().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_postgres_container_keeps_committed_rows() {
    let Some((_turn, images)) = turn().await else {
        return;
    };
    let logs = TempDir::new("kill");
    let cluster = Cluster::start(&Backend::Docker { images }, &NodeOptions::new(&logs.0))
        .await
        .unwrap();
    let db = pg(&cluster.postgres.url()).await;
    db.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);",
    )
    .await
    .unwrap();

    cluster.postgres.kill().await.unwrap();
    assert!(
        db.simple_query("SELECT 1").await.is_err(),
        "the old connection died with the container"
    );
    assert!(matches!(
        cluster.postgres.pause().await,
        Err(NodeError::NotRunning { .. })
    ));

    cluster.postgres.restart().await.unwrap();
    let db = pg(&cluster.postgres.url()).await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100, "committed rows survive docker kill + start");

    let log_path = cluster.postgres.log_path().unwrap().to_path_buf();
    cluster.shutdown().await.unwrap();
    drop(cluster);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("database system was interrupted"),
        "the restart ran crash recovery:\n{log}"
    );
    assert_eq!(ours_left().await, Vec::<String>::new());
}

fn config(
    design: DesignName,
    faults: &[Fault],
    seed: u64,
    images: Images,
    store: &TempDir,
) -> RunConfig {
    RunConfig {
        concurrency: 8,
        backend: Backend::Docker { images },
        store: store.0.clone(),
        command: "cargo test --test docker".into(),
        ..RunConfig::quick(design, faults.to_vec(), seed)
    }
}

async fn run_checked(cfg: RunConfig) -> Results {
    crate::verdict::run_recorded(&cfg).await.0.results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_only_is_caught_under_slow_writes_in_containers() {
    let Some((_turn, images)) = turn().await else {
        return;
    };
    let store = TempDir::new("lock-only");
    let mut cfg = config(
        DesignName::LockOnly,
        &[Fault::SlowWrites],
        1,
        images,
        &store,
    );
    // Aimed: every write during the window is held for four leases, so a writer's
    // transaction is still open long after the next holder took the lock and passed its
    // check (reads go at full speed).
    cfg.db_latency = Duration::from_millis(800);
    cfg.lock_ttl = Duration::from_millis(200);
    cfg.fault_for = Duration::from_secs(4);
    cfg.time_limit = Duration::from_secs(7);
    // Many writers in flight on a hotel that is not already full when the window opens
    // (unthrottled, healthy clients fill it in well under a second): two of them must
    // then pass their check on overlapping nights before either commits.
    cfg.concurrency = 16;
    cfg.rooms = 2;
    cfg.rate = Some(30.0);
    let r = run_checked(cfg).await;
    // The margin (how many anomalies, not just whether) shows with --nocapture.
    eprintln!("{}", describe(&r));
    assert_eq!(r.validity, Validity::Invalid, "{}", describe(&r));
    assert_eq!(
        checker(&r, "no-double-booking").validity,
        Validity::Invalid,
        "{}",
        describe(&r)
    );
    assert_eq!(
        checker(&r, "lock-exclusion").validity,
        Validity::Invalid,
        "{}",
        describe(&r)
    );
    assert_eq!(ours_left().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn db_exclusion_holds_under_container_faults() {
    let Some((_turn, images)) = turn().await else {
        return;
    };
    let store = TempDir::new("db-exclusion");
    // The engine's own faults (freezer pause, kill + start) beside the proxy's latency.
    let faults = [
        Fault::DbLatency,
        Fault::PauseRedis,
        Fault::KillRedis,
        Fault::PauseDb,
    ];
    let mut cfg = config(DesignName::DbExclusion, &faults, 6, images, &store);
    cfg.time_limit = Duration::from_secs(8);
    cfg.fault_for = Duration::from_millis(1200);
    cfg.heal_for = Duration::from_millis(400);
    let r = run_checked(cfg).await;
    assert_eq!(r.validity, Validity::Valid, "{}", describe(&r));
    let ok_books = ok_books(&r);
    assert!(
        ok_books > 0,
        "no booking succeeded, the run proves nothing:\n{}",
        describe(&r)
    );
    assert!(
        !r.stats.faults.is_empty(),
        "no fault window ran:\n{}",
        describe(&r)
    );
    assert_eq!(ours_left().await, Vec::<String>::new());
}

/// An `overbook run --backend docker` child process, SIGKILLed on drop (even when an
/// assertion fails first).
struct RunChild {
    child: std::process::Child,
    store: TempDir,
}

impl RunChild {
    /// `overbook run` on the docker backend, with `more` arguments.
    fn spawn(images: &Images, name: &str, more: &[&str]) -> RunChild {
        let store = TempDir::new(&format!("docker-{name}"));
        let child = Command::new(env!("CARGO_BIN_EXE_overbook"))
            .args(["run", "--backend", "docker", "--design", "db-exclusion"])
            .args(["--time-limit", "60s", "--redis-image", &images.redis])
            .args(["--postgres-image", &images.postgres])
            .args(more)
            .arg("--store")
            .arg(&store.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        RunChild { child, store }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Containers and networks labelled with the child's pid.
    async fn ours(&self) -> Vec<String> {
        let engine = docker::connect().await.unwrap();
        docker::list_ours(&engine)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.pid == Some(self.pid()))
            .map(|l| format!("{} {}", l.what, l.name))
            .collect()
    }

    /// Waits until `containers` containers and the network exist.
    async fn wait_up(&self, containers: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ours().await.len() < containers + 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let up = self.ours().await;
        assert_eq!(
            up.len(),
            containers + 1,
            "{containers} containers and a network: {up:?}"
        );
        up
    }

    /// The run's `run.log` (the store holds this one run).
    fn run_log(&self) -> String {
        let path = find_file(&self.store.0, "run.log")
            .unwrap_or_else(|| panic!("no run.log under {}", self.store.0.display()));
        std::fs::read_to_string(path).unwrap()
    }
}

impl Drop for RunChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ctrl-C in the middle of a run: the signal thread removes the run's containers and
/// network before the harness exits; a Sentinel topology's too (primary, replica, three
/// sentinels, Postgres).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_removes_the_runs_containers() {
    let Some((_turn, images)) = turn().await else {
        return;
    };
    let mut run = RunChild::spawn(&images, "ctrl-c", &["--lock-service", "sentinel"]);
    run.wait_up(6).await;
    // SAFETY: kill(2) on our own child's pid, which `run` has not reaped yet.
    assert_eq!(unsafe { libc::kill(run.pid(), libc::SIGINT) }, 0);
    // A hang guard, not a speed claim: after the first Ctrl-C the run still takes its
    // final read, checks, writes (and syncs) its files and stops six containers; with
    // the whole suite beside it that once took longer than 30 s (alone: about 4 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the run ignored SIGINT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{status:?}");
    assert_eq!(run.ours().await, Vec::<String>::new());
    // The engine client's debug lines carry each container's request body, passwords
    // included: none of them may reach the run's log, which is kept and shared.
    let log = run.run_log();
    assert!(log.contains("run starting"), "{log}");
    for secret in ["requirepass", "POSTGRES_PASSWORD", "OVERBOOK_SENTINEL_CONF"] {
        assert!(!log.contains(secret), "run.log holds {secret}:\n{log}");
    }
}

/// A `kill -9`ed harness cannot clean up; `overbook clean` must then remove its
/// containers and network, and keep those of a live run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_removes_what_a_killed_run_left() {
    let Some((_turn, images)) = turn().await else {
        return;
    };
    let mut run = RunChild::spawn(&images, "clean", &[]);
    let before = run.wait_up(2).await;
    let clean = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_overbook"))
            .arg("clean")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The run is live: clean keeps its containers.
    let kept = clean(&[]);
    assert_eq!(
        run.ours().await,
        before,
        "clean removed a live run's containers:\n{kept}"
    );

    // SIGKILL: no Drop, no signal handler, nothing cleaned.
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    assert_eq!(run.ours().await, before, "a killed harness cannot clean up");
    let cleaned = clean(&[]);
    assert_eq!(run.ours().await, Vec::<String>::new(), "{cleaned}");
    assert!(cleaned.contains("remove"), "{cleaned}");
    assert_eq!(ours_left().await, Vec::<String>::new());
}

/// Issue 23.4: `overbook clean` judged a container by its bare `overbook.pid` label, so
/// a run in another pid namespace (a container or CI runner sharing the docker socket),
/// whose pid is dead or someone else's here, lost its containers mid-run. Containers
/// labelled from another pid space, and an older overbook's bare pid label, are now
/// kept: their run may still be going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_keeps_containers_of_runs_it_cannot_see() {
    let Some((_turn, images)) = turn().await else {
        return;
    };
    let tag = format!("{}-{:04x}", std::process::id(), rand::random::<u16>());
    // pid 1 of another boot's namespace; a bare pid that is dead here.
    let marks: [(&str, &[&str]); 2] = [
        (
            "elsewhere",
            &[
                "overbook.pid=1",
                "overbook.start=5",
                "overbook.pidspace=another-boot/4026532999",
            ],
        ),
        ("bare", &["overbook.pid=2147483646"]),
    ];
    let mut names = Vec::new();
    for (what, labels) in marks {
        let name = format!("overbook-nstest-{what}-{tag}");
        let mut cmd = Command::new("docker");
        cmd.args(["create", "--name", &name, "--label", "overbook=1"])
            .args(["--label", &format!("overbook.run=nstest-{tag}")]);
        for l in labels {
            cmd.args(["--label", l]);
        }
        let out = cmd.arg(&images.redis).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        names.push(name);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["clean"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let engine = docker::connect().await.unwrap();
    let listed: Vec<String> = docker::list_ours(&engine)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    // Removed by name, never by `clean --force`: other runs on this machine are live.
    let rm = Command::new("docker")
        .args(["rm", "-f"])
        .args(&names)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(rm.status.success(), "{rm:?}");
    for name in &names {
        assert!(listed.contains(name), "clean removed {name}:\n{text}");
        assert!(
            text.contains(&format!("keep    container {name}")) && text.contains("run unknown"),
            "{text}"
        );
    }
}

/// Issue 27.1: a first run on a machine without redis-server (PATH holds none) but with a
/// docker engine just works: `overbook run` with no backend flag says in one line that it
/// uses containers, and catches the README's story there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_local_servers_the_story_runs_on_docker() {
    let Some((_turn, _images)) = turn().await else {
        return;
    };
    let store = TempDir::new("fallback");
    let empty_path = store.0.join("bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .args(["run", "--quiet", "--store"])
        .arg(&store.0)
        .env("PATH", &empty_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("uses the docker backend"))
        .collect();
    assert_eq!(said.len(), 1, "one line says so:\n{stderr}");
    assert!(
        said[0].contains("redis-server not installed") && said[0].contains("apt-get install"),
        "{}",
        said[0]
    );
    // The story is caught (exit 1), and it ran in containers, not on a local server.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("INVALID"), "{stdout}");
    assert!(
        stdout.contains("--backend docker"),
        "reproduces on docker: {stdout}"
    );
    // The doctor agrees, and names what the missing binary costs.
    let doctor = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .arg("doctor")
        .env("PATH", &empty_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{doctor:?}");
    assert!(text.contains("redis-server   missing"), "{text}");
    assert!(text.contains("runs fall back to docker"), "{text}");
    assert!(text.contains("`overbook run` uses: docker ("), "{text}");
    let meta = find_file(&store.0, "meta.json").expect("a meta.json");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    assert_eq!(meta["params"]["backend"], "docker", "{meta}");
    let engine = docker::connect().await.unwrap();
    let left: Vec<String> = docker::list_ours(&engine)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.pid == Some(pid))
        .map(|l| l.name)
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// The first file named `name` under `dir`.
fn find_file(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                return Some(path);
            }
        }
    }
    None
}

/// Issue 27.2: the image of overbook itself (Dockerfile, built offline by
/// docker/build-overbook-image.sh from this test's binary) runs the README's story with
/// nothing else installed, and its history gives the same verdict here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overbook_image_runs_the_story() {
    let Some((_turn, _images)) = turn().await else {
        return;
    };
    let tag = format!("overbook/overbook:it-{}", std::process::id());
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker/build-overbook-image.sh");
    let built = Command::new(&script)
        .env("OVERBOOK_BIN", env!("CARGO_BIN_EXE_overbook"))
        .env("TAG", &tag)
        .output()
        .unwrap();
    let image = Removed(
        vec!["rmi", "-f", &tag]
            .into_iter()
            .map(String::from)
            .collect(),
    );
    assert!(built.status.success(), "{built:?}");
    let store = TempDir::new("image");
    let name = format!("overbook-it-image-{}", std::process::id());
    let container = Removed(vec!["rm".into(), "-f".into(), name.clone()]);
    // The README's story as written (`overbook run`), its store on the host.
    let out = Command::new("docker")
        .args(["run", "--rm", "--name", &name, "-v"])
        .arg(format!("{}:/work", store.0.display()))
        .args([&tag, "run", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "caught: {out:?}");
    assert!(stdout.contains("INVALID: lock-only"), "{stdout}");
    let history = find_file(&store.0, "history.jsonl").expect("the run's history");
    let check = Command::new(env!("CARGO_BIN_EXE_overbook"))
        .arg("check")
        .arg(&history)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    drop((container, image));
}

/// A `docker ARGS...` run on drop: removes what a test made even when it fails first.
struct Removed(Vec<String>);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(&self.0).output();
    }
}
