//! The `docker` backend: one container per server of a run (Postgres, and every node and
//! sentinel of the lock service), on a private bridge network of their own, driven
//! through the engine's API (bollard).
//!
//! Everything a run creates carries the labels `overbook=1`, `overbook.run=<run id>`,
//! `overbook.pid=<our pid>`, `overbook.start=<our start time>` and
//! `overbook.pidspace=<boot id/pid namespace>`, so concurrent runs never touch each
//! other's containers and `overbook clean` can tell a killed run's leftovers (that very
//! process gone, judged in the same pid space) from a live run's. A pid alone says
//! nothing across pid namespaces: a run in a container or CI runner sharing the docker
//! socket has pids this process cannot see, so its containers are kept unless `--force`.
//!
//! Each container gets a fixed address on its run's network (`.2` Redis, `.3` Postgres,
//! a topology's other Redis nodes `.4` on and its sentinels `.20` on):
//! `docker kill` + `docker start` keeps the container's writable layer (Postgres's data) and,
//! with a fixed address, the fault proxy's upstream stays valid across the restart. A
//! dynamic address could change on restart and strand the proxy on a dead address.
//!
//! Faults: pause is `docker pause` (the cgroup freezer: every process of the container stops
//! at once, connections stay open, unanswered), kill is `docker kill` (SIGKILL to all of it)
//! and restart `docker start`. Latency and partitions stay in the fault proxy.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::config::NodeSpec;
use super::{tempdir, NodeError, NodeOptions, ServerKind};

/// The image used for Redis when none is given (the official one).
pub const DEFAULT_REDIS_IMAGE: &str = "redis:7";
/// The image used for Postgres when none is given (the official one).
pub const DEFAULT_POSTGRES_IMAGE: &str = "postgres:15";
/// The Redis image `docker/build-offline-images.sh` builds without a registry.
pub const OFFLINE_REDIS_IMAGE: &str = "overbook/redis:7-offline";
/// The Postgres image `docker/build-offline-images.sh` builds without a registry.
pub const OFFLINE_POSTGRES_IMAGE: &str = "overbook/postgres:15-offline";

/// The label every container and network of ours carries.
pub const LABEL: &str = "overbook";
/// The label naming the run a container or network belongs to.
pub const LABEL_RUN: &str = "overbook.run";
/// The label holding the pid of the harness that created it (a dead pid: left behind).
pub const LABEL_PID: &str = "overbook.pid";
/// The label holding that harness's start time (clock ticks since boot), so a reused pid
/// is not taken for it.
pub const LABEL_START: &str = "overbook.start";
/// The label naming the pid space that pid is in ([`tempdir::pid_space`]).
pub const LABEL_SPACE: &str = "overbook.pidspace";

/// How long a container gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const REDIS_PORT: u16 = 6379;
const POSTGRES_PORT: u16 = 5432;

static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

/// Containers and networks this process created and has not removed yet: what Ctrl-C
/// (through [`crate::nodes::reaper::stop_all`]) must remove.
static OURS: Mutex<Owned> = Mutex::new(Owned {
    containers: BTreeSet::new(),
    networks: BTreeSet::new(),
});

#[derive(Debug)]
struct Owned {
    containers: BTreeSet<String>,
    networks: BTreeSet<String>,
}

fn owned() -> std::sync::MutexGuard<'static, Owned> {
    OURS.lock().unwrap_or_else(|p| p.into_inner())
}

fn engine_error(what: impl Into<String>, e: bollard::errors::Error) -> NodeError {
    NodeError::Docker {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// Connects to the engine (`DOCKER_HOST` or the local socket) and settles on an API
/// version both sides speak (an older engine refuses a newer client's requests).
pub async fn connect() -> Result<Docker, NodeError> {
    let docker =
        Docker::connect_with_defaults().map_err(|e| engine_error("connect to docker", e))?;
    let docker = tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
        .await
        .map_err(|_| NodeError::Docker {
            what: "connect to docker".into(),
            reason: "the engine did not answer within 5s".into(),
        })?
        .map_err(|e| engine_error("connect to docker", e))?;
    Ok(docker)
}

/// Whether the engine answers and has `image` locally (nothing is ever pulled).
pub async fn image_present(docker: &Docker, image: &str) -> bool {
    docker.inspect_image(image).await.is_ok()
}

/// The images a docker run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// The Redis image, e.g. `redis:7`.
    pub redis: String,
    /// The Postgres image, e.g. `postgres:15`.
    pub postgres: String,
}

impl Default for Images {
    fn default() -> Images {
        Images {
            redis: DEFAULT_REDIS_IMAGE.into(),
            postgres: DEFAULT_POSTGRES_IMAGE.into(),
        }
    }
}

impl Images {
    /// The images `docker/build-offline-images.sh` builds.
    pub fn offline() -> Images {
        Images {
            redis: OFFLINE_REDIS_IMAGE.into(),
            postgres: OFFLINE_POSTGRES_IMAGE.into(),
        }
    }

    fn for_kind(&self, kind: ServerKind) -> &str {
        match kind {
            ServerKind::Redis => &self.redis,
            ServerKind::Postgres => &self.postgres,
        }
    }
}

/// Picks the images from sync code: the ones given, else the official ones when present
/// locally, else the offline ones when present, else the official names (whose absence
/// [`check_ready`] then explains). Errors when the engine does not answer.
pub fn resolve_images(redis: Option<&str>, postgres: Option<&str>) -> Result<Images, NodeError> {
    let (redis, postgres) = (redis.map(String::from), postgres.map(String::from));
    run_blocking(move || async move {
        let docker = connect().await?;
        let pick = |given: Option<String>, official: &str, offline: &str| {
            let docker = docker.clone();
            let (official, offline) = (official.to_string(), offline.to_string());
            async move {
                match given {
                    Some(image) => image,
                    None if image_present(&docker, &official).await => official,
                    None if image_present(&docker, &offline).await => offline,
                    None => official,
                }
            }
        };
        let redis = pick(redis, DEFAULT_REDIS_IMAGE, OFFLINE_REDIS_IMAGE).await;
        let postgres = pick(postgres, DEFAULT_POSTGRES_IMAGE, OFFLINE_POSTGRES_IMAGE).await;
        Ok(Images { redis, postgres })
    })
}

/// Checks from sync code that the engine answers and has both images: the error says
/// what to start, pull or build.
pub fn check_ready(images: &Images) -> Result<(), NodeError> {
    let images = images.clone();
    run_blocking(move || async move {
        let docker = connect().await?;
        missing_image(&docker, &images).await
    })
}

async fn missing_image(docker: &Docker, images: &Images) -> Result<(), NodeError> {
    for image in [&images.redis, &images.postgres] {
        if !image_present(docker, image).await {
            return Err(NodeError::Docker {
                what: format!("find image {image}"),
                reason: "not present locally and overbook never pulls; `docker pull` it, \
                         or build the offline images with docker/build-offline-images.sh \
                         (then they are picked by default)"
                    .into(),
            });
        }
    }
    Ok(())
}

/// One run's private network; removed when the last of its containers is dropped.
#[derive(Debug)]
pub(crate) struct DockerRun {
    id: String,
    network: String,
    /// The network's /24, e.g. `10.213.7.0`: Redis is `.2`, Postgres `.3`.
    subnet: Ipv4Addr,
    images: Images,
}

impl DockerRun {
    /// Creates the run's network on a free /24 (retrying when another run holds the one
    /// drawn) and checks both images are present.
    pub(crate) async fn create(images: &Images) -> Result<Arc<DockerRun>, NodeError> {
        let docker = connect().await?;
        missing_image(&docker, images).await?;
        let id = format!(
            "{}-{}-{:04x}",
            std::process::id(),
            NEXT_RUN.fetch_add(1, Ordering::Relaxed),
            rand::random::<u16>()
        );
        let network = format!("overbook-{id}");
        let mut last = String::new();
        for _ in 0..16 {
            let subnet = Ipv4Addr::new(10, 213, rand::random::<u8>(), 0);
            let request = NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("{subnet}/24")),
                        gateway: Some(offset(subnet, 1).to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(labels(&id)),
                ..Default::default()
            };
            // Registered before the call: a Ctrl-C during it still finds the name.
            // Ctrl-C must remove what the engine holds for us: the reaper calls back.
            super::reaper::on_exit(remove_registered);
            owned().networks.insert(network.clone());
            match docker.create_network(request).await {
                Ok(_) => {
                    return Ok(Arc::new(DockerRun {
                        id,
                        network,
                        subnet,
                        images: images.clone(),
                    }))
                }
                Err(e) => {
                    owned().networks.remove(&network);
                    last = e.to_string();
                }
            }
        }
        Err(NodeError::Docker {
            what: format!("create network {network}"),
            reason: last,
        })
    }

    fn ip(&self, kind: ServerKind) -> Ipv4Addr {
        match kind {
            ServerKind::Redis => offset(self.subnet, 2),
            ServerKind::Postgres => offset(self.subnet, 3),
        }
    }

    /// Data node `i` of the lock service: node 0 is the plain Redis's `.2`, the others
    /// `.4` on (Postgres keeps `.3`, whatever the topology).
    pub(crate) fn lock_node_addr(&self, i: usize) -> SocketAddr {
        let host = if i == 0 { 2 } else { 3 + i };
        SocketAddr::from((offset(self.subnet, host_byte(host)), REDIS_PORT))
    }

    /// Sentinel `i`: `.20` on. Sentinels listen on Redis's port too (each has its own
    /// address, so nothing clashes, and one probe fits every node).
    pub(crate) fn sentinel_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from((offset(self.subnet, host_byte(20 + i)), REDIS_PORT))
    }
}

/// A host number on a run's /24; topologies have a handful of nodes, far below 254.
fn host_byte(host: usize) -> u8 {
    u8::try_from(host).unwrap_or(u8::MAX).min(254)
}

impl Drop for DockerRun {
    fn drop(&mut self) {
        remove_blocking(Vec::new(), vec![self.network.clone()], Vec::new());
    }
}

fn offset(subnet: Ipv4Addr, host: u8) -> Ipv4Addr {
    let [a, b, c, _] = subnet.octets();
    Ipv4Addr::new(a, b, c, host)
}

fn labels(run: &str) -> HashMap<String, String> {
    let me = tempdir::RunMark::me();
    HashMap::from([
        (LABEL.to_string(), "1".to_string()),
        (LABEL_RUN.to_string(), run.to_string()),
        (LABEL_PID.to_string(), std::process::id().to_string()),
        (
            LABEL_START.to_string(),
            me.start.unwrap_or_default().to_string(),
        ),
        (LABEL_SPACE.to_string(), me.space.unwrap_or_default()),
    ])
}

/// A server container the harness owns.
#[derive(Debug)]
pub(crate) struct DockerServer {
    kind: ServerKind,
    /// Held, not read: the run's network goes when its last container does.
    _network: Arc<DockerRun>,
    docker: Docker,
    name: String,
    addr: SocketAddr,
    log: PathBuf,
    paused: AtomicBool,
    /// Set once removed, so `shutdown` then `Drop` remove once.
    removed: AtomicBool,
    /// How long create + start + first successful probe took.
    ready_in: Duration,
    /// The run's password (Redis `requirepass`, Postgres's `postgres` user).
    password: String,
}

impl DockerServer {
    /// Creates and starts the container on the run's network, then waits until it answers.
    /// `spec` says how a node of a lock-service topology differs (name, address, shared
    /// password, replication or Sentinel config); the default is the plain server.
    pub(crate) async fn start(
        kind: ServerKind,
        run: &Arc<DockerRun>,
        opts: &NodeOptions,
        spec: &NodeSpec,
    ) -> Result<DockerServer, NodeError> {
        let began = Instant::now();
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| NodeError::io(format!("create {}", opts.dir.display()), e))?;
        let docker = connect().await?;
        let node = spec.stem(kind);
        let name = format!("overbook-{}-{node}", run.id);
        let addr = match spec.addr {
            Some(addr) => addr,
            None => SocketAddr::from((
                run.ip(kind),
                match kind {
                    ServerKind::Redis => REDIS_PORT,
                    ServerKind::Postgres => POSTGRES_PORT,
                },
            )),
        };
        let password = spec.password.clone().unwrap_or_else(super::random_password);
        let (cmd, env) = match kind {
            ServerKind::Redis if spec.sentinel => sentinel_command(&password, addr, &spec.conf),
            ServerKind::Redis => {
                // The container listens on a bridge any local user can reach: a
                // password is the door. It and `masterauth` go in a config file written
                // from the environment, as for a sentinel: a `--requirepass` flag was
                // visible in `ps` until redis-server replaced its title.
                let flags = super::config::redis_flags(opts.redis_aof)
                    .into_iter()
                    .map(String::from)
                    .collect();
                data_node_command(&password, addr, &spec.conf, flags)
            }
            ServerKind::Postgres => {
                let mut cmd = vec!["postgres".to_string()];
                for setting in super::config::postgres_settings(opts.max_connections) {
                    cmd.extend(["-c".to_string(), setting]);
                }
                // The official image's way (ours too): initdb with this password and
                // scram-sha-256 for every host. The environment of a container is
                // readable by the engine's users only, not in `ps`.
                (
                    cmd,
                    vec![
                        format!("POSTGRES_PASSWORD={password}"),
                        "POSTGRES_HOST_AUTH_METHOD=scram-sha-256".to_string(),
                    ],
                )
            }
        };
        let body = ContainerCreateBody {
            image: Some(run.images.for_kind(kind).to_string()),
            cmd: Some(cmd),
            env: Some(env),
            labels: Some(labels(&run.id)),
            stop_timeout: Some(5),
            host_config: Some(HostConfig {
                network_mode: Some(run.network.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    run.network.clone(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(addr.ip().to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        owned().containers.insert(name.clone());
        let mut server = DockerServer {
            kind,
            _network: run.clone(),
            docker,
            name: name.clone(),
            addr,
            log: opts.dir.join(format!("{node}.log")),
            paused: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            ready_in: Duration::ZERO,
            password,
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        server
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| engine_error(format!("create container {name}"), e))?;
        server.spawn_async().await?;
        server.wait_ready().await?;
        server.ready_in = began.elapsed();
        Ok(server)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How clients log in: the default user with the run's password.
    pub(crate) fn login(&self) -> super::Login {
        super::Login::owned(self.kind, &self.password)
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// The container's name (`overbook-<run>-redis` or `-db`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// How long the container took from create to its first successful probe.
    pub(crate) fn ready_in(&self) -> Duration {
        self.ready_in
    }

    async fn spawn_async(&self) -> Result<(), NodeError> {
        self.docker
            .start_container(&self.name, None)
            .await
            .map_err(|e| engine_error(format!("start container {}", self.name), e))
    }

    async fn running(&self) -> Result<(bool, String), NodeError> {
        let inspect = self
            .docker
            .inspect_container(&self.name, None)
            .await
            .map_err(|e| engine_error(format!("inspect container {}", self.name), e))?;
        let state = inspect.state.unwrap_or_default();
        let status = format!(
            "{} (exit code {})",
            state.status.map(|s| s.to_string()).unwrap_or_default(),
            state.exit_code.unwrap_or_default()
        );
        Ok((state.running.unwrap_or(false), status))
    }

    /// Polls until the server answers, the deadline passes or the container exits.
    pub(crate) async fn wait_ready(&self) -> Result<(), NodeError> {
        let start = Instant::now();
        let config = super::render(self.kind, &self.login(), self.addr);
        let mut checks = 0u32;
        loop {
            let reason = match super::local::probe(self.kind, self.addr, &config).await {
                Ok(()) => return Ok(()),
                Err(reason) => reason,
            };
            checks += 1;
            // Inspecting costs an engine round trip: only every tenth miss.
            if checks.is_multiple_of(10) {
                let (running, status) = self.running().await?;
                if !running {
                    return Err(NodeError::Exited {
                        kind: self.kind,
                        status,
                        log_tail: self.log_tail().await,
                    });
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(NodeError::NotReady {
                    kind: self.kind,
                    addr: self.addr,
                    waited: start.elapsed(),
                    reason,
                    log_tail: self.log_tail().await,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn log_tail(&self) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("20")
            .build();
        let mut out = String::new();
        let mut logs = self.docker.logs(&self.name, Some(options));
        while let Some(Ok(chunk)) = logs.next().await {
            out.push_str(&chunk.to_string());
        }
        out
    }

    /// `docker pause`: the cgroup freezer stops every process of the container at once.
    pub(crate) async fn pause(&self) -> Result<(), NodeError> {
        if let Err(e) = self.docker.pause_container(&self.name).await {
            // Same answer as the local backend for a killed, not yet restarted server.
            if !self.running().await?.0 {
                return Err(NodeError::NotRunning { kind: self.kind });
            }
            return Err(engine_error(format!("pause {}", self.name), e));
        }
        self.paused.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// `docker unpause`.
    pub(crate) async fn resume(&self) -> Result<(), NodeError> {
        if !self.paused.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        self.docker
            .unpause_container(&self.name)
            .await
            .map_err(|e| engine_error(format!("unpause {}", self.name), e))
    }

    /// `docker kill` (SIGKILL to every process); the container and its data stay.
    pub(crate) async fn kill(&self) -> Result<(), NodeError> {
        // A frozen container cannot be killed until thawed.
        self.resume().await?;
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        self.docker
            .kill_container(&self.name, Some(options))
            .await
            .map_err(|e| engine_error(format!("kill {}", self.name), e))?;
        // The engine answers before the container is reaped; a `start` then would fail
        // with "already running". Wait until it is seen stopped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.running().await?.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Starts the container again (after a kill; a no-op if running) and waits until ready.
    pub(crate) async fn restart(&self) -> Result<(), NodeError> {
        self.resume().await?;
        if !self.running().await?.0 {
            self.spawn_async().await?;
        }
        self.wait_ready().await
    }

    /// Thaws a paused container from sync code (healing).
    pub(crate) fn resume_now(&self) {
        if self.paused.swap(false, Ordering::SeqCst) {
            let name = self.name.clone();
            blocking(move |docker| async move {
                let _ = docker.unpause_container(&name).await;
            });
        }
    }

    /// Starts a killed container from sync code without waiting until ready (healing).
    pub(crate) fn respawn_now(&self) -> Result<(), NodeError> {
        let name = self.name.clone();
        blocking(move |docker| async move {
            let _ = docker.start_container(&name, None).await;
        });
        Ok(())
    }

    /// Saves the container's log to the run dir, then removes it. Idempotent.
    pub(crate) fn shutdown(&self) {
        if self.removed.swap(true, Ordering::SeqCst) {
            return;
        }
        remove_blocking(
            vec![self.name.clone()],
            Vec::new(),
            vec![(self.name.clone(), self.log.clone())],
        );
    }
}

/// A sentinel's command and environment. Sentinel insists on a config file it can
/// rewrite, and the images take none: a shell in the container writes it from the
/// environment (readable by the engine's users only, unlike a command line, which every
/// local user sees in `ps`) into a private file, then becomes the sentinel.
fn sentinel_command(
    password: &str,
    addr: SocketAddr,
    conf: &[String],
) -> (Vec<String>, Vec<String>) {
    let port = format!("port {}", addr.port());
    let listen = [port.as_str(), "bind 0.0.0.0", "protected-mode no"];
    let file = super::config::redis_conf(&listen, password, conf);
    let script = "umask 077 && printf '%s' \"$OVERBOOK_SENTINEL_CONF\" > /tmp/sentinel.conf \
                  && exec redis-server /tmp/sentinel.conf --sentinel";
    (
        vec!["sh".into(), "-c".into(), script.into()],
        vec![format!("OVERBOOK_SENTINEL_CONF={file}")],
    )
}

/// A data node's command and environment: its password and a topology's lines
/// (`replicaof`, `masterauth`) in a private config file written from the environment,
/// the password-free `flags` on the command line after it.
fn data_node_command(
    password: &str,
    addr: SocketAddr,
    conf: &[String],
    flags: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let port = format!("port {}", addr.port());
    let file = super::config::redis_conf(&[port.as_str()], password, conf);
    let script = "umask 077 && printf '%s' \"$OVERBOOK_REDIS_CONF\" > /tmp/redis.conf \
                  && exec redis-server /tmp/redis.conf \"$@\"";
    let mut cmd: Vec<String> = vec!["sh".into(), "-c".into(), script.into(), "redis".into()];
    cmd.extend(flags);
    (cmd, vec![format!("OVERBOOK_REDIS_CONF={file}")])
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `f` with a fresh engine client on a fresh thread and runtime, and waits for it:
/// callable from sync code, from inside an async task (a nested runtime would panic) and
/// from the signal thread alike.
fn blocking<F, Fut>(f: F)
where
    F: FnOnce(Docker) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let worker = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Ok(docker) = connect().await {
                f(docker).await;
            }
        });
    });
    let _ = worker.join();
}

/// Runs an async engine conversation to completion from sync code, on its own thread and
/// runtime (see [`blocking`]), and returns its result.
pub(crate) fn run_blocking<F, Fut, T>(f: F) -> Result<T, NodeError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, NodeError>>,
    T: Send + 'static,
{
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NodeError::io("start a runtime for docker", e))?;
        rt.block_on(f())
    });
    worker.join().unwrap_or_else(|_| {
        Err(NodeError::Docker {
            what: "talk to docker".into(),
            reason: "the engine client panicked".into(),
        })
    })
}

/// Removes containers (force, with anonymous volumes) and then networks, saving the given
/// containers' logs first; forgets them in the Ctrl-C registry.
fn remove_blocking(
    containers: Vec<String>,
    networks: Vec<String>,
    save_logs: Vec<(String, PathBuf)>,
) {
    let (c2, n2) = (containers.clone(), networks.clone());
    blocking(move |docker| async move {
        for (name, path) in save_logs {
            save_log(&docker, &name, &path).await;
        }
        remove_with(&docker, &c2, &n2).await;
    });
    let mut reg = owned();
    for c in &containers {
        reg.containers.remove(c);
    }
    for n in &networks {
        reg.networks.remove(n);
    }
}

async fn remove_with(docker: &Docker, containers: &[String], networks: &[String]) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    for name in containers {
        let _ = docker.remove_container(name, Some(options.clone())).await;
    }
    for name in networks {
        let _ = docker.remove_network(name).await;
    }
}

async fn save_log(docker: &Docker, name: &str, path: &Path) {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(name, Some(options));
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = logs.next().await {
        out.extend_from_slice(&chunk.into_bytes());
    }
    if !out.is_empty() {
        let _ = crate::store::write_file(path, out);
    }
}

/// Removes every container and network this process created and still holds (Ctrl-C,
/// SIGTERM, a panic of the main thread). Called by [`crate::nodes::reaper::stop_all`].
pub fn remove_registered() {
    let (containers, networks) = {
        let mut reg = owned();
        (
            std::mem::take(&mut reg.containers),
            std::mem::take(&mut reg.networks),
        )
    };
    if containers.is_empty() && networks.is_empty() {
        return;
    }
    remove_blocking(
        containers.into_iter().collect(),
        networks.into_iter().collect(),
        Vec::new(),
    );
}

/// One container or network of ours, as `overbook clean` lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leftover {
    /// `container` or `network`.
    pub what: &'static str,
    /// Its name.
    pub name: String,
    /// Its `overbook.run` label.
    pub run: String,
    /// Its `overbook.pid` label, when it parses.
    pub pid: Option<i32>,
    /// Its `overbook.start` label, when it parses (absent on an older overbook's).
    pub start: Option<u64>,
    /// Its `overbook.pidspace` label (absent on an older overbook's).
    pub space: Option<String>,
}

impl Leftover {
    /// The run's mark from its labels.
    pub fn mark(&self) -> tempdir::RunMark {
        tempdir::RunMark {
            pid: self.pid,
            start: self.start,
            space: self.space.clone(),
        }
    }

    /// Whether its run still goes, as seen from the pid space `here`: a label from
    /// another pid space, or a bare pid (an older overbook), is [`RunState::Unknown`].
    ///
    /// [`RunState::Unknown`]: tempdir::RunState::Unknown
    pub fn state(&self, here: &str) -> tempdir::RunState {
        self.mark().state(here)
    }
}

/// Lists every container (running or not) and network labelled as ours.
pub async fn list_ours(docker: &Docker) -> Result<Vec<Leftover>, NodeError> {
    let filters = HashMap::from([("label", vec![LABEL])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| engine_error("list containers", e))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| engine_error("list networks", e))?;
    let mut out = Vec::new();
    let parse = |labels: Option<&HashMap<String, String>>| {
        let run = labels
            .and_then(|l| l.get(LABEL_RUN))
            .cloned()
            .unwrap_or_default();
        let get = |key: &str| labels.and_then(|l| l.get(key));
        let pid = get(LABEL_PID).and_then(|p| p.parse().ok());
        let start = get(LABEL_START).and_then(|p| p.parse().ok());
        let space = get(LABEL_SPACE).filter(|s| !s.is_empty()).cloned();
        (run, pid, start, space)
    };
    for c in containers {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .or(c.id.clone())
            .unwrap_or_default();
        let (run, pid, start, space) = parse(c.labels.as_ref());
        out.push(Leftover {
            what: "container",
            name,
            run,
            pid,
            start,
            space,
        });
    }
    for n in networks {
        let (run, pid, start, space) = parse(n.labels.as_ref());
        out.push(Leftover {
            what: "network",
            name: n.name.clone().or(n.id.clone()).unwrap_or_default(),
            run,
            pid,
            start,
            space,
        });
    }
    out.sort();
    Ok(out)
}

/// Removes the given leftovers: containers first (a network in use cannot go).
pub async fn remove_leftovers(docker: &Docker, items: &[Leftover]) {
    let containers: Vec<String> = items
        .iter()
        .filter(|l| l.what == "container")
        .map(|l| l.name.clone())
        .collect();
    let networks: Vec<String> = items
        .iter()
        .filter(|l| l.what == "network")
        .map(|l| l.name.clone())
        .collect();
    remove_with(docker, &containers, &networks).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_sit_in_the_runs_subnet() {
        let subnet = Ipv4Addr::new(10, 213, 9, 0);
        assert_eq!(offset(subnet, 2), Ipv4Addr::new(10, 213, 9, 2));
        let l = labels("r1");
        assert_eq!(l.get(LABEL_RUN).map(String::as_str), Some("r1"));
        assert_eq!(
            l.get(LABEL_PID).map(String::as_str),
            Some(std::process::id().to_string().as_str())
        );
    }

    #[test]
    fn topology_nodes_get_distinct_addresses_apart_from_postgres() {
        let run = DockerRun {
            id: "r".into(),
            network: "n".into(),
            subnet: Ipv4Addr::new(10, 213, 9, 0),
            images: Images::offline(),
        };
        let mut hosts: Vec<Ipv4Addr> = (0..5).map(|i| *ipv4(&run.lock_node_addr(i))).collect();
        hosts.extend((0..3).map(|i| *ipv4(&run.sentinel_addr(i))));
        hosts.push(run.ip(ServerKind::Postgres));
        assert_eq!(
            hosts[0],
            run.ip(ServerKind::Redis),
            "node 0 is the plain Redis"
        );
        let mut distinct = hosts.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), hosts.len(), "{hosts:?}");
        assert!(hosts.iter().all(|h| h.octets()[..3] == [10, 213, 9]));
    }

    fn ipv4(addr: &SocketAddr) -> &Ipv4Addr {
        match addr {
            SocketAddr::V4(a) => a.ip(),
            SocketAddr::V6(_) => panic!("a run's network is IPv4"),
        }
    }

    /// Issue 23.12: docker/compose.yml's servers require a password from the
    /// environment, and Redis's is not on its command line.
    #[test]
    fn the_compose_file_requires_a_password_kept_off_the_command_line() {
        let compose = include_str!("../../../docker/compose.yml");
        assert!(!compose.contains("--requirepass"), "{compose}");
        assert!(!compose.contains("trust"), "{compose}");
        assert_eq!(
            compose.matches("${OVERBOOK_PASSWORD:?").count(),
            2,
            "both servers require it"
        );
        assert!(compose.contains("POSTGRES_HOST_AUTH_METHOD: scram-sha-256"));
    }

    /// Issue 23.3: a data node's `--requirepass`/`--masterauth` were on its command line,
    /// visible in `ps` during start-up.
    #[test]
    fn a_data_nodes_password_is_in_its_environment_not_its_command() {
        let conf = vec![
            "replicaof 10.213.9.2 6379".to_string(),
            "masterauth s3cret".to_string(),
        ];
        let addr = SocketAddr::from((Ipv4Addr::new(10, 213, 9, 3), REDIS_PORT));
        let flags = crate::nodes::config::redis_flags(false)
            .into_iter()
            .map(String::from)
            .collect();
        let (cmd, env) = data_node_command("s3cret", addr, &conf, flags);
        assert!(cmd.iter().all(|a| !a.contains("s3cret")), "{cmd:?}");
        assert!(cmd.iter().any(|a| a == "--appendonly"), "{cmd:?}");
        let file = env[0].strip_prefix("OVERBOOK_REDIS_CONF=").unwrap();
        assert_eq!(
            file,
            "port 6379\nrequirepass s3cret\nreplicaof 10.213.9.2 6379\nmasterauth s3cret\n"
        );
    }

    #[test]
    fn a_sentinels_password_is_in_its_environment_not_its_command() {
        let conf = vec!["sentinel auth-pass overbook s3cret".to_string()];
        let addr = SocketAddr::from((Ipv4Addr::new(10, 213, 9, 20), REDIS_PORT));
        let (cmd, env) = sentinel_command("s3cret", addr, &conf);
        assert!(cmd.iter().all(|a| !a.contains("s3cret")), "{cmd:?}");
        let file = env[0].strip_prefix("OVERBOOK_SENTINEL_CONF=").unwrap();
        assert!(file.contains("requirepass s3cret\n"), "{file}");
        assert!(
            file.contains("sentinel auth-pass overbook s3cret\n"),
            "{file}"
        );
        assert!(file.starts_with("port 6379\n"), "{file}");
    }

    #[test]
    fn a_leftover_is_judged_by_pid_start_and_pid_space() {
        use tempdir::RunState;
        let here = tempdir::pid_space();
        let l = labels("r1");
        let me = Leftover {
            what: "container",
            name: "x".into(),
            run: "r1".into(),
            pid: l.get(LABEL_PID).and_then(|p| p.parse().ok()),
            start: l.get(LABEL_START).and_then(|p| p.parse().ok()),
            space: l.get(LABEL_SPACE).cloned(),
        };
        assert_eq!(me.state(&here), RunState::Alive);
        let gone = Leftover {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert_eq!(gone.state(&here), RunState::Gone);
        // The bug: a run in another pid namespace whose pid is dead (or absent) here.
        let elsewhere = Leftover {
            pid: Some(i32::MAX),
            space: Some("other-boot/4026532999".into()),
            ..me.clone()
        };
        assert_eq!(elsewhere.state(&here), RunState::Unknown);
        assert!(matches!(
            tempdir::decide(elsewhere.state(&here), false),
            tempdir::Cleanup::Keep(_)
        ));
        // An older overbook's bare pid label.
        let bare = Leftover {
            pid: Some(i32::MAX),
            start: None,
            space: None,
            ..me
        };
        assert_eq!(bare.state(&here), RunState::Unknown);
    }
}
