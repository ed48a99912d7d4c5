//! Nodes: the real Redis and Postgres servers a run drives, each behind its fault proxy.
//!
//! - `local` (the default): the harness spawns and owns the servers, so every fault works,
//!   process faults (pause, kill) included.
//! - `external`: servers given by URL; nothing is started, only proxy faults apply.
//! - `docker`: one container per server (Postgres, and each node and sentinel of the lock
//!   service) on the run's private network; pause and kill go through the engine
//!   (freezer, SIGKILL), see [`docker`].
//!
//! Clients use [`ServerHandle::url`] (through the proxy); setup and the final read use
//! [`ServerHandle::direct_url`], which no fault touches.

pub mod aim;
pub mod clock;
mod config;
pub mod docker;
mod external;
mod local;
pub mod machine;
pub mod process;
pub mod proxy;
pub mod reaper;
pub mod scratch;
pub mod tempdir;
pub mod topology;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::nodes::proxy::{FaultProxy, Upstream};
use config::NodeSpec;
use docker::{DockerRun, DockerServer};
pub(crate) use local::log_tail;
use local::LocalServer;
pub use topology::Topology;
pub use workloads::LockService;

/// Where the servers come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// Spawn `redis-server` and Postgres from this machine's binaries.
    #[default]
    Local,
    /// Use servers someone else runs.
    External {
        /// `redis://[user:password@]host:port[/db]`.
        redis_url: String,
        /// A tokio-postgres config: `postgres://...` or `host=... port=... user=...`.
        postgres_url: String,
    },
    /// One container per server, from these images (never pulled: they must be local).
    Docker {
        /// The images to run.
        images: docker::Images,
    },
}

impl Backend {
    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::External { .. } => "external",
            Backend::Docker { .. } => "docker",
        }
    }

    /// Whether the harness owns the server processes (so pause and kill are possible).
    pub fn owns_processes(&self) -> bool {
        matches!(self, Backend::Local | Backend::Docker { .. })
    }
}

/// `--backend auto` (the default): the local binaries if installed; else docker if the
/// engine answers and has the images (given or, when `None`, resolved as
/// [`docker::resolve_images`] does); else one error naming every way out
/// ([`machine::neither`], [`machine::no_images`]).
pub fn auto_backend(
    redis_image: Option<&str>,
    postgres_image: Option<&str>,
) -> Result<Backend, NodeError> {
    let local = machine::LocalServers::find();
    if local.complete() {
        return Ok(Backend::Local);
    }
    let images = docker::resolve_images(redis_image, postgres_image)
        .map_err(|e| machine::neither(&local, &e.to_string()))?;
    let probe = machine::Engine::probe(&[&images.redis, &images.postgres]);
    match probe {
        machine::Engine::Absent(why) => Err(machine::neither(&local, &why)),
        machine::Engine::Present { images: found, .. } => {
            let missing: Vec<&str> = found
                .iter()
                .filter(|(_, here)| !here)
                .map(|(name, _)| name.as_str())
                .collect();
            if missing.is_empty() {
                Ok(Backend::Docker { images })
            } else {
                Err(machine::no_images(&local, &missing))
            }
        }
    }
}

/// How to start the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOptions {
    /// Where the servers' logs go (the run's store dir).
    pub dir: PathBuf,
    /// Keep the servers' temp dirs (data) after shutdown, for inspection.
    pub keep: bool,
    /// Run Redis with an fsynced append-only file, so its locks survive a kill.
    pub redis_aof: bool,
    /// Postgres's `max_connections` (servers overbook starts); see [`max_connections_for`].
    pub max_connections: u32,
    /// The lock service's topology: one Redis, Sentinel, or Redlock's five nodes.
    pub lock_service: LockService,
}

impl NodeOptions {
    /// Logs in `dir`, temp data deleted on shutdown, Redis without persistence, room for
    /// the default 16 users and then some.
    pub fn new(dir: impl Into<PathBuf>) -> NodeOptions {
        NodeOptions {
            dir: dir.into(),
            keep: false,
            redis_aof: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            lock_service: LockService::Single,
        }
    }
}

/// Postgres's `max_connections` when no run says otherwise (`overbook up`, tests).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 200;

/// The `max_connections` a run of `users` concurrent users needs: each user holds one
/// connection, but a user retired after a timeout may leave its connection open behind a
/// fault until the server notices, so twice as many, plus setup, the final read and
/// the superuser's reserved slots. Never below [`DEFAULT_MAX_CONNECTIONS`].
pub fn max_connections_for(users: usize) -> u32 {
    let users = u32::try_from(users).unwrap_or(u32::MAX / 4);
    users
        .saturating_mul(2)
        .saturating_add(20)
        .max(DEFAULT_MAX_CONNECTIONS)
}

/// Which server a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerKind {
    /// The lock service.
    Redis,
    /// The bookings database.
    Postgres,
}

impl ServerKind {
    /// The name used in fault names and file names: `redis`, `db`.
    pub fn short_name(self) -> &'static str {
        match self {
            ServerKind::Redis => "redis",
            ServerKind::Postgres => "db",
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerKind::Redis => "redis",
            ServerKind::Postgres => "postgres",
        })
    }
}

/// Why a node could not be started or controlled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A server binary is not installed.
    #[error("{name} not found: {hint}")]
    MissingBinary {
        /// The binary looked for.
        name: String,
        /// What to install.
        hint: String,
    },
    /// Running as root needs an unprivileged user for Postgres.
    #[error("running as root needs a `{name}` user to run Postgres as (useradd {name})")]
    NoUser {
        /// The user looked for.
        name: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server process exited on its own.
    #[error("{kind} exited during startup ({status}); log tail:\n{log_tail}")]
    Exited {
        /// Which server.
        kind: ServerKind,
        /// How it exited.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The server did not answer in time.
    #[error("{kind} at {addr} not ready after {waited:?}: {reason}; log tail:\n{log_tail}")]
    NotReady {
        /// Which server.
        kind: ServerKind,
        /// Where it was probed.
        addr: SocketAddr,
        /// How long we waited.
        waited: Duration,
        /// The last probe error.
        reason: String,
        /// The end of its log (empty for external servers).
        log_tail: String,
    },
    /// A process fault was asked of a node the harness does not own.
    #[error("{action} needs a backend that owns the server; --backend external does not")]
    Unsupported {
        /// The fault, e.g. `pause-db`.
        action: String,
    },
    /// The server is down (killed and not restarted).
    #[error("{kind} is not running")]
    NotRunning {
        /// Which server.
        kind: ServerKind,
    },
    /// The container engine refused or failed a request.
    #[error("docker: {what}: {reason}")]
    Docker {
        /// What was being done.
        what: String,
        /// The engine's answer.
        reason: String,
    },
    /// Neither backend can run here: the message names every way out.
    #[error("{0}")]
    NoServers(String),
    /// The service under test could not be paused, killed or restarted.
    #[error("service: {0}")]
    Service(String),
    /// A fault the run cannot take, and why (the nemesis's requirement check).
    #[error("{0}")]
    Refused(String),
    /// A statement overbook needed (creating or dropping its own schema) failed.
    #[error("postgres: {what}: {reason}")]
    Sql {
        /// What was being done.
        what: String,
        /// The server's answer.
        reason: String,
    },
    /// A Redis command overbook needed (a clock jump, cutting replication) failed.
    #[error("redis: {what}: {reason}")]
    Redis {
        /// What was being done.
        what: String,
        /// The server's answer.
        reason: String,
    },
    /// An external URL could not be used.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl NodeError {
    fn io(what: impl Into<String>, source: std::io::Error) -> NodeError {
        NodeError::Io {
            what: what.into(),
            source,
        }
    }
}

/// How to log in, kept apart from the address so URLs can point at the proxy or the server.
#[derive(Debug, Clone)]
pub(crate) enum Login {
    Redis {
        userinfo: String,
        db: String,
    },
    Postgres {
        user: String,
        password: Option<String>,
        dbname: String,
    },
}

impl Login {
    /// How clients log in to a server overbook started (local or docker): the default
    /// user (Redis) or the `postgres` superuser, with the run's password.
    pub(crate) fn owned(kind: ServerKind, password: &str) -> Login {
        match kind {
            ServerKind::Redis => Login::Redis {
                userinfo: format!(":{password}@"),
                db: String::new(),
            },
            ServerKind::Postgres => Login::Postgres {
                user: "postgres".into(),
                password: Some(password.to_string()),
                dbname: "postgres".into(),
            },
        }
    }
}

#[derive(Debug)]
enum Node {
    Local(LocalServer),
    External,
    Docker(DockerServer),
}

/// One server and the fault proxy in front of it.
#[derive(Debug)]
pub struct ServerHandle {
    kind: ServerKind,
    node: Node,
    upstream: SocketAddr,
    login: Login,
    proxy: FaultProxy,
    /// Postgres: the run's schema, first on every connection's `search_path`.
    search_path: Option<String>,
}

impl ServerHandle {
    async fn start(
        kind: ServerKind,
        backend: &Backend,
        opts: &NodeOptions,
        run: Option<&Arc<DockerRun>>,
    ) -> Result<ServerHandle, NodeError> {
        ServerHandle::start_as(kind, backend, opts, run, &NodeSpec::default()).await
    }

    /// [`ServerHandle::start`] for one node of a lock-service topology.
    async fn start_as(
        kind: ServerKind,
        backend: &Backend,
        opts: &NodeOptions,
        run: Option<&Arc<DockerRun>>,
        spec: &NodeSpec,
    ) -> Result<ServerHandle, NodeError> {
        if *spec != NodeSpec::default() && !backend.owns_processes() {
            return Err(NodeError::Unsupported {
                action: format!(
                    "--lock-service {} on --backend {}",
                    opts.lock_service,
                    backend.name()
                ),
            });
        }
        let (node, upstream, login) = match backend {
            Backend::Docker { .. } => {
                let run = run.ok_or_else(|| NodeError::Docker {
                    what: format!("start {kind}"),
                    reason: "no network for the run (start through Cluster::start)".into(),
                })?;
                let server = DockerServer::start(kind, run, opts, spec).await?;
                let addr = server.addr();
                let login = server.login();
                (Node::Docker(server), addr, login)
            }
            Backend::Local => {
                let server = LocalServer::start(kind, opts, spec).await?;
                let addr = server.addr();
                let login = server.login();
                (Node::Local(server), addr, login)
            }
            Backend::External {
                redis_url,
                postgres_url,
            } => {
                let (addr, login) = match kind {
                    ServerKind::Redis => {
                        let t = external::parse_redis_url(redis_url)?;
                        (
                            t.addr,
                            Login::Redis {
                                userinfo: t.userinfo,
                                db: t.db,
                            },
                        )
                    }
                    ServerKind::Postgres => {
                        let t = external::parse_postgres_url(postgres_url)?;
                        (
                            t.addr,
                            Login::Postgres {
                                user: t.user,
                                password: t.password,
                                dbname: t.dbname,
                            },
                        )
                    }
                };
                let config = render(kind, &login, addr);
                local::probe(kind, addr, &config)
                    .await
                    .map_err(|reason| NodeError::NotReady {
                        kind,
                        addr,
                        waited: local::PROBE_TIMEOUT,
                        reason,
                        log_tail: String::new(),
                    })?;
                (Node::External, addr, login)
            }
        };
        // A local server is reached over its unix socket: the proxy's hop then skips the
        // loopback TCP stack, which is most of what relaying costs. Clients still use TCP.
        let via = match &node {
            Node::Local(s) => s.unix_socket().map(Upstream::Unix),
            Node::External | Node::Docker(_) => None,
        };
        // Each proxy follows its server's protocol, so aimed faults can act on messages.
        let protocol = match kind {
            ServerKind::Postgres => aim::Protocol::Postgres,
            ServerKind::Redis => aim::Protocol::Redis,
        };
        let proxy = FaultProxy::start_following(via.unwrap_or(Upstream::Tcp(upstream)), protocol)
            .await
            .map_err(|e| NodeError::io(format!("start the {kind} proxy"), e))?;
        Ok(ServerHandle {
            kind,
            node,
            upstream,
            login,
            proxy,
            search_path: None,
        })
    }

    /// Which server this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The URL clients use, through the fault proxy: `redis://127.0.0.1:PORT/` or a
    /// tokio-postgres `host=127.0.0.1 port=PORT user=postgres dbname=postgres` string.
    pub fn url(&self) -> String {
        self.with_search_path(render(self.kind, &self.login, self.proxy.addr()))
    }

    /// The URL straight to the server, past every fault (setup, final read).
    pub fn direct_url(&self) -> String {
        self.with_search_path(render(self.kind, &self.login, self.upstream))
    }

    /// The run's password for this server (for tools that take it apart from a URL:
    /// pgbench's `PGPASSWORD`, redis-benchmark's `-a`).
    pub fn password(&self) -> Option<&str> {
        match &self.login {
            Login::Postgres { password, .. } => password.as_deref(),
            Login::Redis { userinfo, .. } => userinfo
                .strip_suffix('@')
                .and_then(|u| u.split_once(':'))
                .map(|(_, p)| p)
                .filter(|p| !p.is_empty()),
        }
    }

    /// The run's schema, when it has one (Postgres).
    pub fn schema(&self) -> Option<&str> {
        self.search_path.as_deref()
    }

    /// Adds the run's schema as the session's only `search_path`: every unqualified name
    /// a design uses then means the run's own table, never one of the user's.
    fn with_search_path(&self, url: String) -> String {
        match &self.search_path {
            Some(schema) => format!(
                "{url} options={}",
                quote(&format!("-c search_path={schema}"))
            ),
            None => url,
        }
    }

    /// The URL a service under test is given (`DATABASE_URL`, `REDIS_URL`), through the
    /// fault proxy, in the URL form every client library reads:
    /// `postgresql://user[:password]@127.0.0.1:PORT/DBNAME` (the database `dbname` when
    /// given, the node's own otherwise) or `redis://[:password@]127.0.0.1:PORT/DB`.
    pub fn service_url(&self, dbname: Option<&str>) -> String {
        render_url(&self.login, self.proxy.addr(), dbname)
    }

    /// [`ServerHandle::direct_url`] for another database of the same server (a run's own
    /// database, created for a service under test).
    pub fn direct_url_for(&self, dbname: &str) -> String {
        match &self.login {
            Login::Postgres { user, password, .. } => render(
                self.kind,
                &Login::Postgres {
                    user: user.clone(),
                    password: password.clone(),
                    dbname: dbname.to_string(),
                },
                self.upstream,
            ),
            Login::Redis { .. } => self.direct_url(),
        }
    }

    /// The server's own address.
    pub fn direct_addr(&self) -> SocketAddr {
        self.upstream
    }

    /// The fault proxy in front of it.
    pub fn proxy(&self) -> &FaultProxy {
        &self.proxy
    }

    /// Whether the harness owns the process (pause, kill and restart work).
    pub fn owns_process(&self) -> bool {
        self.control().is_some()
    }

    /// The container's name (docker backend only).
    pub fn container(&self) -> Option<&str> {
        match &self.node {
            Node::Docker(s) => Some(s.name()),
            _ => None,
        }
    }

    /// How long the container took from create to ready (docker backend only).
    pub fn container_ready_in(&self) -> Option<Duration> {
        match &self.node {
            Node::Docker(s) => Some(s.ready_in()),
            _ => None,
        }
    }

    /// The server's log file (local backend only).
    pub fn log_path(&self) -> Option<&Path> {
        match &self.node {
            Node::Local(s) => Some(s.log_path()),
            Node::Docker(s) => Some(s.log_path()),
            Node::External => None,
        }
    }

    /// The server's temp dir, data included (local backend only).
    pub fn temp_dir(&self) -> Option<&Path> {
        match &self.node {
            Node::Local(s) => Some(s.temp_dir()),
            Node::External | Node::Docker(_) => None,
        }
    }

    /// The server's pid, which is also its process group (local backend, while running).
    pub fn pid(&self) -> Option<i32> {
        match &self.node {
            Node::Local(s) => s.pid(),
            Node::External | Node::Docker(_) => None,
        }
    }

    /// What the harness may do to the server's process: nothing for an external server.
    fn control(&self) -> Option<&dyn ProcessControl> {
        match &self.node {
            Node::Local(s) => Some(s),
            Node::Docker(s) => Some(s),
            Node::External => None,
        }
    }

    fn controlled(&self, action: &str) -> Result<&dyn ProcessControl, NodeError> {
        self.control().ok_or_else(|| NodeError::Unsupported {
            action: format!("{action}-{}", self.kind.short_name()),
        })
    }

    /// SIGSTOP (docker: the cgroup freezer): the server and all its processes freeze;
    /// connections stay open, unanswered.
    pub async fn pause(&self) -> Result<(), NodeError> {
        self.controlled("pause")?.pause().await
    }

    /// SIGCONT (docker: unpause): a paused server carries on where it stopped.
    pub async fn resume(&self) -> Result<(), NodeError> {
        self.controlled("pause")?.resume().await
    }

    /// `kill -9` of the server and all its processes (docker: `docker kill`).
    pub async fn kill(&self) -> Result<(), NodeError> {
        self.controlled("kill")?.kill().await
    }

    /// Starts the server again (after a kill, or stopping it first) and waits until ready.
    pub async fn restart(&self) -> Result<(), NodeError> {
        self.controlled("kill")?.restart().await
    }

    /// Starts a killed server again without waiting until it is ready (healing in `Drop`).
    pub fn respawn_now(&self) -> Result<(), NodeError> {
        self.controlled("kill")?.respawn_now()
    }

    /// Resumes if paused and restarts if killed, so no process fault outlives its window.
    pub(crate) fn resume_now(&self) {
        if let Some(c) = self.control() {
            c.resume_now();
        }
    }

    fn shutdown(&self) {
        self.proxy.heal();
        if let Some(c) = self.control() {
            c.shutdown();
        }
    }
}

/// A boxed future of a process-control step (the backends differ: signals are immediate,
/// the container engine is a request away).
pub(crate) type ControlFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), NodeError>> + Send + 'a>>;

/// What a backend that owns its servers' processes can do to one (Jepsen's `Pause` and
/// `Kill`): the local backend by signals, the docker backend through the engine. An
/// external server implements nothing, so process faults are refused for it up front.
pub(crate) trait ProcessControl: Send + Sync {
    /// Freezes every process of the server.
    fn pause(&self) -> ControlFuture<'_>;
    /// Thaws it.
    fn resume(&self) -> ControlFuture<'_>;
    /// Kills every process of the server, without any shutdown.
    fn kill(&self) -> ControlFuture<'_>;
    /// Starts it again and waits until it answers.
    fn restart(&self) -> ControlFuture<'_>;
    /// Starts a killed server again without waiting (healing from a `Drop`).
    fn respawn_now(&self) -> Result<(), NodeError>;
    /// Thaws it now, without waiting, ignoring errors (healing from a `Drop`).
    fn resume_now(&self);
    /// Stops it for good and removes what it left (unless kept).
    fn shutdown(&self);
}

impl ProcessControl for LocalServer {
    fn pause(&self) -> ControlFuture<'_> {
        Box::pin(std::future::ready(LocalServer::pause(self)))
    }
    fn resume(&self) -> ControlFuture<'_> {
        Box::pin(std::future::ready(LocalServer::resume(self)))
    }
    fn kill(&self) -> ControlFuture<'_> {
        Box::pin(std::future::ready(LocalServer::kill(self)))
    }
    fn restart(&self) -> ControlFuture<'_> {
        Box::pin(LocalServer::restart(self))
    }
    fn respawn_now(&self) -> Result<(), NodeError> {
        self.spawn()
    }
    fn resume_now(&self) {
        let _ = LocalServer::resume(self);
    }
    fn shutdown(&self) {
        LocalServer::shutdown(self)
    }
}

impl ProcessControl for DockerServer {
    fn pause(&self) -> ControlFuture<'_> {
        Box::pin(DockerServer::pause(self))
    }
    fn resume(&self) -> ControlFuture<'_> {
        Box::pin(DockerServer::resume(self))
    }
    fn kill(&self) -> ControlFuture<'_> {
        Box::pin(DockerServer::kill(self))
    }
    fn restart(&self) -> ControlFuture<'_> {
        Box::pin(DockerServer::restart(self))
    }
    fn respawn_now(&self) -> Result<(), NodeError> {
        DockerServer::respawn_now(self)
    }
    fn resume_now(&self) {
        DockerServer::resume_now(self)
    }
    fn shutdown(&self) {
        DockerServer::shutdown(self)
    }
}

/// Renders a URL for `addr` with the node's login.
fn render(kind: ServerKind, login: &Login, addr: SocketAddr) -> String {
    match (kind, login) {
        (ServerKind::Redis, Login::Redis { userinfo, db }) => {
            format!("redis://{userinfo}{addr}/{db}")
        }
        (
            _,
            Login::Postgres {
                user,
                password,
                dbname,
            },
        ) => {
            let mut s = format!(
                "host={} port={} user={} dbname={}",
                addr.ip(),
                addr.port(),
                quote(user),
                quote(dbname)
            );
            if let Some(p) = password {
                s.push_str(&format!(" password={}", quote(p)));
            }
            s
        }
        (_, Login::Redis { userinfo, db }) => format!("redis://{userinfo}{addr}/{db}"),
    }
}

/// Renders the URL form of a login for `addr` (what a service under test reads), with
/// user, password and database percent-encoded.
fn render_url(login: &Login, addr: SocketAddr, dbname_override: Option<&str>) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    match login {
        Login::Redis { userinfo, db } => {
            let db = if db.is_empty() { "0" } else { db.as_str() };
            format!("redis://{userinfo}{addr}/{db}")
        }
        Login::Postgres {
            user,
            password,
            dbname,
        } => {
            let pw = password
                .as_deref()
                .map(|p| format!(":{}", enc(p)))
                .unwrap_or_default();
            let db = dbname_override.unwrap_or(dbname);
            format!("postgresql://{}{pw}@{addr}/{}", enc(user), enc(db))
        }
    }
}

/// A fresh random password (128 bits, hex: safe in URLs, config files and libpq strings).
pub(crate) fn random_password() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Quotes a key=value config value when it needs it (libpq rules: `'...'`, `\` escapes).
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\']) {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The run's servers: the lock service and the bookings database.
#[derive(Debug)]
pub struct Cluster {
    /// The lock service's first node: the only one (`single`), the first primary
    /// (`sentinel`), node 0 (`redlock`).
    pub redis: ServerHandle,
    /// The lock service's other nodes and sentinels.
    pub topology: Topology,
    /// The bookings database.
    pub postgres: ServerHandle,
    /// The run's schema, dropped at shutdown unless kept.
    schema: scratch::Scratch,
    /// Before every Redis key of the run: empty on servers the run owns, the run's own
    /// `overbook_<id>:` on an external Redis ([`Cluster::lock_prefix`]).
    lock_prefix: String,
    keep: bool,
    /// The servers are someone else's (`external`): what the run creates in them must be
    /// dropped even on Ctrl-C, since they do not go away with the run.
    outlive_run: bool,
}

impl Cluster {
    /// Starts (or, for `external`, checks) both servers and their proxies.
    pub async fn start(backend: &Backend, opts: &NodeOptions) -> Result<Cluster, NodeError> {
        // Both containers share one private network, made first; each holds it (Arc) and
        // the last one removed takes it along.
        let run = match backend {
            Backend::Docker { images } => Some(DockerRun::create(images).await?),
            _ => None,
        };
        let (lock, postgres) = tokio::join!(
            topology::start(backend, opts, run.as_ref()),
            ServerHandle::start(ServerKind::Postgres, backend, opts, run.as_ref())
        );
        drop(run);
        let ((redis, topology), mut postgres) = (lock?, postgres?);
        // The designs' tables go in a schema of the run's own, on every backend alike.
        let schema = scratch::Scratch::create(
            scratch::ScratchKind::Schema,
            &postgres.direct_url(),
            opts.keep,
            !backend.owns_processes(),
        )
        .await?;
        postgres.search_path = Some(schema.name().to_string());
        let lock_prefix = if backend.owns_processes() {
            String::new()
        } else {
            external::lock_prefix(schema.name())
        };
        Ok(Cluster {
            redis,
            topology,
            postgres,
            schema,
            lock_prefix,
            keep: opts.keep,
            outlive_run: !backend.owns_processes(),
        })
    }

    /// The node of one kind.
    pub fn node(&self, kind: ServerKind) -> &ServerHandle {
        match kind {
            ServerKind::Redis => &self.redis,
            ServerKind::Postgres => &self.postgres,
        }
    }

    /// Both nodes, Redis first.
    pub fn nodes(&self) -> [&ServerHandle; 2] {
        [&self.redis, &self.postgres]
    }

    /// Data node `i` of the lock service (0 is [`Cluster::redis`]).
    pub fn lock_node(&self, i: usize) -> Option<&ServerHandle> {
        match i {
            0 => Some(&self.redis),
            _ => self.topology.more.get(i - 1),
        }
    }

    /// Every data node of the lock service, node 0 first.
    pub fn lock_nodes(&self) -> Vec<&ServerHandle> {
        std::iter::once(&self.redis)
            .chain(&self.topology.more)
            .collect()
    }

    /// The lock-service node Redis faults hit: `asked` (`--fault-node`), or else the
    /// current primary under Sentinel (asked of the sentinels), node 0 otherwise.
    pub async fn fault_node(&self, asked: Option<usize>) -> usize {
        match (asked, self.topology.service()) {
            (Some(n), _) => n,
            (None, LockService::Sentinel) => {
                self.topology.primary(&self.lock_nodes()).await.unwrap_or(0)
            }
            (None, _) => 0,
        }
    }

    /// What every Redis key of this run starts with: nothing on servers the run owns
    /// (nobody else's keys are there), `overbook_<id>:` on an external Redis, so two runs
    /// against one server never share a lock and only keys with it are ever touched.
    pub fn lock_prefix(&self) -> &str {
        &self.lock_prefix
    }

    /// Whether the servers outlive the run (`external`): then what the run creates in
    /// them is registered with the reaper, dropped on Ctrl-C and panics too.
    pub fn servers_outlive_run(&self) -> bool {
        self.outlive_run
    }

    /// How clients reach the lock service (through the fault proxies).
    pub fn lock_endpoints(&self) -> workloads::LockEndpoints {
        self.topology.endpoints(&self.lock_nodes())
    }

    /// Every server of the run: the lock service's nodes and sentinels, then Postgres.
    fn every_server(&self) -> Vec<&ServerHandle> {
        let mut all = self.lock_nodes();
        all.extend(&self.topology.sentinels);
        all.push(&self.postgres);
        all
    }

    /// Removes every proxy fault and resumes paused servers.
    pub fn heal_all(&self) {
        for n in self.every_server() {
            n.proxy.heal();
            n.resume_now();
        }
    }

    /// Empties the run's schema (dropped and created again), so a benchmark's next round
    /// on the same servers starts from nothing.
    pub async fn recreate_schema(&self) -> Result<(), NodeError> {
        self.schema.recreate().await
    }

    /// Heals, stops the servers and removes their temp dirs (unless kept). Idempotent;
    /// dropping the cluster does the same.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        // Healed first: a paused or partitioned server cannot drop anything.
        self.heal_all();
        let dropped = self.schema.drop_now().await;
        // On an external Redis the run's keys (fencing counters have no TTL) go too,
        // found by the run's prefix alone.
        if !self.lock_prefix.is_empty() && !self.keep {
            if let Err(e) = external::drop_keys(&self.redis.direct_url(), &self.lock_prefix).await {
                tracing::warn!("{e}");
            }
        }
        for n in self.every_server() {
            n.shutdown();
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_quote_what_needs_it() {
        let login = Login::Postgres {
            user: "app".into(),
            password: Some("p w'".into()),
            dbname: "shop".into(),
        };
        let url = render(
            ServerKind::Postgres,
            &login,
            "127.0.0.1:5000".parse().unwrap(),
        );
        assert_eq!(
            url,
            r"host=127.0.0.1 port=5000 user=app dbname=shop password='p w\''"
        );
        let parsed: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"p w'"[..]));
    }

    #[test]
    fn service_urls_are_in_url_form_with_credentials_encoded() {
        let login = Login::Postgres {
            user: "app".into(),
            password: Some("p w@/".into()),
            dbname: "shop".into(),
        };
        let addr = "127.0.0.1:5000".parse().unwrap();
        let url = render_url(&login, addr, Some("overbook_1f"));
        assert_eq!(
            url,
            "postgresql://app:p%20w%40%2F@127.0.0.1:5000/overbook%5F1f"
        );
        let parsed: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"p w@/"[..]));
        assert_eq!(parsed.get_dbname(), Some("overbook_1f"));
        let trust = Login::Postgres {
            user: "postgres".into(),
            password: None,
            dbname: "postgres".into(),
        };
        assert_eq!(
            render_url(&trust, addr, None),
            "postgresql://postgres@127.0.0.1:5000/postgres"
        );
        let redis = Login::Redis {
            userinfo: String::new(),
            db: String::new(),
        };
        assert_eq!(render_url(&redis, addr, None), "redis://127.0.0.1:5000/0");
    }

    #[test]
    fn redis_urls_point_at_the_given_address() {
        let login = Login::Redis {
            userinfo: ":pw@".into(),
            db: "1".into(),
        };
        let url = render(ServerKind::Redis, &login, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(url, "redis://:pw@127.0.0.1:7000/1");
    }
}
