//! Service mode: the system under test is the user's own booking service, an HTTP
//! server in any language that speaks the contract of `docs/service.md`, started by
//! overbook against the run's Redis and Postgres (through their fault proxies) and
//! driven like any other [`System`].
//!
//! - [`replica`]: the service's processes: start, `/health`, pause, kill, restart, stop.
//! - `http`: one keep-alive connection per simulated user, and the contract's table
//!   from an answer to ok / fail / info.
//! - `trace`: the service's ids and trace in the history's terms.
//! - `database`: the run's own database, `--schema`, `--read-sql`.
//! - `notify`: the notification sink behind `OVERBOOK_NOTIFY_URL`, where the service
//!   tells overbook what it told its guests.
//!
//! Set-up order: create the run's database, apply `--schema` (straight to the server),
//! start every replica and wait for `/health`, check `--read-sql` against the schema the
//! service made. Any failure stops what was started and drops the database, so a run that
//! cannot start leaves nothing behind. At the end (after the runner healed every fault
//! and took the final read) [`System::shutdown`] stops the replicas and drops the database.

pub mod api;
mod database;
mod http;
mod notify;
pub mod replica;
mod trace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::{BookingRow, Bound, OpType, OpValue, Room};
use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use workloads::{LockService, Outcome, Request, RunClock};

pub(crate) use notify::NotifyHold;
pub(crate) use notify::NOTIFY_GRACE;
pub use replica::Replicas;
pub use trace::HANDLE_BASE;

use super::{BoxFuture, Session, SutError, System};
use crate::nodes::scratch::{self, Scratch, ScratchKind};
use crate::nodes::Cluster;
use crate::store::recorder::Recorder;
use http::{Answer, Connection, Meaning};
use notify::NotifySink;
use trace::{IdTable, TraceClock};

/// The replica `pause-service` and `kill-service` act on: always the first, so a run is
/// reproducible from its seed (the nemesis logs it in the fault's detail).
pub const FAULTED_REPLICA: usize = 0;

/// What `--service` and its companion flags ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The command, run by `sh -c`.
    pub command: String,
    /// SQL applied to the run's database before the service starts (`--schema`).
    pub schema: Option<PathBuf>,
    /// The final read straight from Postgres instead of `GET /bookings` (`--read-sql`).
    pub read_sql: Option<String>,
    /// The command's working directory (`--service-dir`; default: the current one).
    pub dir: Option<PathBuf>,
    /// How long a replica may take to answer `GET /health` with 200.
    pub ready_timeout: Duration,
    /// How many replicas, each on its own port, the users spread across them.
    pub replicas: usize,
    /// `--api FILE`: the service speaks its own API, described by this mapping.
    pub api: Option<ApiSpec>,
    /// `--notify-grace`: how long after the run's final heal a committed booking's
    /// guest may still be told "confirmed" (and the most the sink waits for it).
    pub notify_grace: Duration,
}

/// A mapping file and what it says, read and validated before anything starts.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    /// The file, as given (the reproduce command passes it again).
    pub path: PathBuf,
    /// Its validated contents.
    pub mapping: Arc<api::ApiMapping>,
}

impl ApiSpec {
    /// Reads and validates `path`; the error names the file, key and line.
    pub fn load(path: &Path) -> Result<ApiSpec, String> {
        let mapping =
            api::ApiMapping::load(path).map_err(|e| format!("--api {}: {e}", path.display()))?;
        Ok(ApiSpec {
            path: path.to_path_buf(),
            mapping: Arc::new(mapping),
        })
    }
}

impl PartialEq for ApiSpec {
    fn eq(&self, other: &ApiSpec) -> bool {
        self.path == other.path
    }
}

impl Eq for ApiSpec {}

impl ServiceSpec {
    /// One replica of `command`, the contract's 30 s ready timeout, no schema, reads over HTTP.
    pub fn new(command: impl Into<String>) -> ServiceSpec {
        ServiceSpec {
            command: command.into(),
            schema: None,
            read_sql: None,
            dir: None,
            ready_timeout: Duration::from_secs(30),
            replicas: 1,
            api: None,
            notify_grace: NOTIFY_GRACE,
        }
    }

    /// The log file of replica `i` in the run directory: `service.log` when there is one
    /// replica (the contract's name), `service-<i>.log` for each of several.
    pub fn log_name(&self, i: usize) -> String {
        if self.replicas == 1 {
            "service.log".to_string()
        } else {
            format!("service-{i}.log")
        }
    }
}

/// Why the service could not be started or controlled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A file, socket or process operation failed.
    #[error("{0}")]
    Io(String),
    /// A replica exited on its own while starting.
    #[error("replica {replica} exited during startup ({status}); last lines of {}:\n{log_tail}", log.display())]
    Exited {
        /// Which replica.
        replica: usize,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },
    /// A replica never answered `GET /health` with 200.
    #[error("replica {replica} did not answer GET /health with 200 {reason}; last lines of {}:\n{log_tail}", log.display())]
    NotReady {
        /// Which replica.
        replica: usize,
        /// Where it was asked, for how long, and the last probe's outcome.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },
    /// A fault was asked of a replica that is not running.
    #[error("service replica {replica} is not running")]
    NotRunning {
        /// Which replica.
        replica: usize,
    },
}

/// What every session of the run shares.
#[derive(Debug)]
struct Shared {
    ids: Arc<IdTable>,
    /// The mapping, when the service speaks its own API (`--api`).
    api: Option<Arc<api::ApiMapping>>,
    clock: TraceClock,
    /// Answers outside the contract, for the summary.
    malformed: AtomicU64,
}

/// The user's service as the system under test.
pub struct ServiceSystem {
    spec: ServiceSpec,
    cluster: Arc<Cluster>,
    /// Keep the run's database after the run (`--keep`).
    keep: bool,
    /// The bound of every connect and of the final read.
    op_timeout: Duration,
    dbname: String,
    replicas: Arc<Replicas>,
    next_replica: AtomicUsize,
    shared: Arc<Shared>,
    /// The database once created (marked, and registered with the reaper on a server
    /// that outlives the run, as the built-in schema is); taken by shutdown, so only what
    /// was created is dropped, once.
    created: Mutex<Option<Scratch>>,
    /// Where the service tells what it told its guests (`OVERBOOK_NOTIFY_URL`).
    sink: NotifySink,
    /// A final read that ran into the op timeout: later attempts fail at once rather
    /// than each waiting as long again, so a hung service still ends the run on time.
    read_hung: Mutex<Option<String>>,
}

/// What a service needs to reach every node of the lock service, beside `REDIS_URL`
/// (node 0): under Sentinel one sentinel through its proxy and the monitored name
/// (`REDIS_SENTINEL_URL`, `REDIS_MASTER_NAME`), under Redlock all five nodes, each
/// through its own proxy (`REDIS_URLS`, comma-separated, node order). A service handed
/// only node 0 could not run the topology at all, and a fault on another node would
/// strike nothing of it.
fn lock_service_env(cluster: &Cluster) -> Vec<(String, String)> {
    match cluster.topology.service() {
        LockService::Single => vec![],
        LockService::Sentinel => cluster
            .topology
            .sentinels()
            .first()
            .map(|s| {
                vec![
                    ("REDIS_SENTINEL_URL".to_string(), s.service_url(None)),
                    (
                        "REDIS_MASTER_NAME".to_string(),
                        crate::nodes::topology::MASTER_NAME.to_string(),
                    ),
                ]
            })
            .unwrap_or_default(),
        LockService::Redlock => vec![(
            "REDIS_URLS".to_string(),
            cluster
                .lock_nodes()
                .iter()
                .map(|n| n.service_url(None))
                .collect::<Vec<_>>()
                .join(","),
        )],
    }
}

impl ServiceSystem {
    /// Plans the service for one run; nothing starts until [`System::setup`].
    pub fn new(
        spec: &ServiceSpec,
        cluster: &Arc<Cluster>,
        run_dir: &Path,
        clock: RunClock,
        lock_ttl: Duration,
        op_timeout: Duration,
        keep: bool,
    ) -> Result<ServiceSystem, SutError> {
        let dbname = scratch::fresh_name();
        let ids = Arc::new(IdTable::default());
        let notify_map = spec.api.as_ref().and_then(|a| a.mapping.notify.clone());
        let sink = NotifySink::bind(ids.clone(), notify_map)
            .map_err(|e| setup_error(format!("notification sink: {e}")))?;
        let mut env = vec![
            ("OVERBOOK_NOTIFY_URL".to_string(), sink.url()),
            (
                "DATABASE_URL".to_string(),
                cluster.postgres.service_url(Some(&dbname)),
            ),
            ("REDIS_URL".to_string(), cluster.redis.service_url(None)),
            (
                "OVERBOOK_LOCK_TTL_MS".to_string(),
                lock_ttl.as_millis().to_string(),
            ),
        ];
        env.extend(lock_service_env(cluster));
        let dir = match &spec.dir {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(|e| setup_error(e.to_string()))?,
        };
        if !dir.is_dir() {
            return Err(setup_error(format!(
                "--service-dir {} is not a directory",
                dir.display()
            )));
        }
        let logs = (0..spec.replicas)
            .map(|i| run_dir.join(spec.log_name(i)))
            .collect();
        let mut replicas = Replicas::new(&spec.command, &dir, env, spec.ready_timeout, logs)
            .map_err(|e| setup_error(e.to_string()))?;
        if let Some(api) = &spec.api {
            replicas = replicas.with_health(api.mapping.health_probe());
        }
        Ok(ServiceSystem {
            spec: spec.clone(),
            cluster: cluster.clone(),
            keep,
            op_timeout,
            dbname,
            replicas: Arc::new(replicas.with_notify(sink.hold())),
            next_replica: AtomicUsize::new(0),
            sink,
            shared: Arc::new(Shared {
                ids,
                api: spec.api.as_ref().map(|a| a.mapping.clone()),
                clock: TraceClock::new(clock),
                malformed: AtomicU64::new(0),
            }),
            created: Mutex::new(None),
            read_hung: Mutex::new(None),
        })
    }

    /// The name of the run's database.
    pub fn database(&self) -> &str {
        &self.dbname
    }

    async fn run_db(&self) -> Result<tokio_postgres::Client, String> {
        database::connect(
            &self.cluster.postgres.direct_url_for(&self.dbname),
            self.op_timeout,
        )
        .await
    }

    async fn setup_steps(&self) -> Result<(), String> {
        let db = Scratch::create_named(
            ScratchKind::Database,
            &self.dbname,
            &self.cluster.postgres.direct_url(),
            self.keep,
            self.cluster.servers_outlive_run(),
        )
        .await
        .map_err(|e| format!("the run's database: {e}"))?;
        *self.created.lock().unwrap_or_else(|p| p.into_inner()) = Some(db);
        if let Some(file) = &self.spec.schema {
            let sql = std::fs::read_to_string(file)
                .map_err(|e| format!("--schema {}: {e}", file.display()))?;
            let db = self.run_db().await?;
            database::apply_schema(&db, &file.display().to_string(), &sql).await?;
        }
        self.sink
            .start()
            .map_err(|e| format!("notification sink: {e}"))?;
        self.replicas.start_all().await.map_err(|e| e.to_string())?;
        if let Some(sql) = &self.spec.read_sql {
            let db = self.run_db().await?;
            database::check_read_sql(&db, sql).await?;
        }
        Ok(())
    }

    async fn drop_database(&self) {
        let created = self
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // Kept with --keep: drop_now leaves it (and it was never registered).
        if let Some(db) = created {
            if let Err(e) = db.drop_now().await {
                tracing::warn!("dropping the run's database {}: {e}", self.dbname);
            }
        }
    }

    async fn read_over_http(&self) -> Result<Vec<BookingRow>, String> {
        let mut errors = Vec::new();
        for i in 0..self.replicas.len() {
            let addr = self.replicas.addr(i);
            let (method, path, headers, _) = match &self.shared.api {
                Some(api) => api.read_request(),
                None => (Method::GET, "/bookings".to_string(), Vec::new(), None),
            };
            let answer = tokio::time::timeout(self.op_timeout, async {
                let mut c = Connection::open(addr).await?;
                Ok::<Answer, String>(
                    c.send_with(method, &path, &headers, None, http::MAX_READ_ANSWER)
                        .await,
                )
            })
            .await;
            let answer = match answer {
                Err(_) => {
                    let e = format!(
                        "GET /bookings on replica {i} did not answer within the op timeout ({:?})",
                        self.op_timeout
                    );
                    *self.read_hung.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                    return Err(e);
                }
                Ok(Err(e)) => {
                    errors.push(format!("replica {i}: {e}"));
                    continue;
                }
                Ok(Ok(a)) => a,
            };
            return match (answer, &self.shared.api) {
                (Answer::Http(200..=299, body), Some(api)) => api::outcome::read_rows(api, &body)
                    .map_err(|e| format!("{path}: the service's answer: {e}")),
                (Answer::Http(status, body), Some(_)) => Err(format!(
                    "{path} answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                )),
                (Answer::Broken(e), Some(_)) => Err(format!("{path}: {e}")),
                (Answer::Http(200, body), None) => parse_bookings(&body, &self.shared.ids)
                    .map_err(|e| format!("GET /bookings: malformed answer: {e}")),
                (Answer::Http(status, body), None) => Err(format!(
                    "GET /bookings answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                )),
                (Answer::Broken(e), None) => Err(format!("GET /bookings: {e}")),
            };
        }
        Err(format!(
            "GET /bookings: no replica answered ({})",
            errors.join("; ")
        ))
    }
}

fn setup_error(reason: String) -> SutError {
    SutError::Setup {
        system: "the service".into(),
        reason,
    }
}

/// The body of `GET /bookings` as booking rows.
fn parse_bookings(body: &[u8], ids: &IdTable) -> Result<Vec<BookingRow>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .as_array()
        .ok_or_else(|| format!("not a JSON array: {}", short(&v)))?;
    list.iter()
        .enumerate()
        .map(|(i, row)| {
            let field = |k: &str| {
                row.get(k)
                    .ok_or_else(|| format!("booking {i} has no {k:?}: {}", short(row)))
            };
            let room = Room::deserialize(field("room")?).map_err(|_| {
                format!("booking {i}: room is not a non-negative integer nor a name")
            })?;
            let date = |k: &str| {
                field(k)?
                    .as_str()
                    .ok_or_else(|| format!("booking {i}: {k:?} is not a string"))
                    .and_then(|s| Bound::parse(s).map_err(|e| format!("booking {i}: {e}")))
            };
            let request = field("request")?
                .as_str()
                .ok_or_else(|| format!("booking {i}: request is not a string"))?
                .to_string();
            let booking = match row.get("id") {
                Some(id @ (Value::Number(_) | Value::String(_))) => Some(ids.number(id).0),
                _ => None,
            };
            Ok(BookingRow {
                room,
                from: date("from")?,
                to: date("to")?,
                request,
                booking,
            })
        })
        .collect()
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

impl System for ServiceSystem {
    fn name(&self) -> String {
        format!("service: {}", self.spec.command)
    }

    fn setup(&self) -> BoxFuture<'_, Result<(), SutError>> {
        Box::pin(async move {
            match self.setup_steps().await {
                Ok(()) => Ok(()),
                Err(reason) => {
                    // Nothing of a run that cannot start may stay behind.
                    let replicas = self.replicas.clone();
                    let _ = tokio::task::spawn_blocking(move || replicas.stop_all()).await;
                    self.sink.stop();
                    self.drop_database().await;
                    Err(setup_error(reason))
                }
            }
        })
    }

    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Session>, SutError>> {
        Box::pin(async move {
            let user = self.next_replica.fetch_add(1, Ordering::Relaxed);
            let i = user % self.replicas.len();
            let conn = Connection::open(self.replicas.addr(i))
                .await
                .map_err(SutError::Open)?;
            Ok(Box::new(ServiceSession {
                replicas: self.replicas.clone(),
                replica: i,
                user: user as u64,
                conn: Some(conn),
                shared: self.shared.clone(),
            }) as Box<dyn Session>)
        })
    }

    fn book_value(&self, b: &workloads::BookRequest) -> OpValue {
        match &self.shared.api {
            Some(api) => api.book_value(b),
            None => b.invoke_value(),
        }
    }

    fn read_all(&self) -> BoxFuture<'_, Result<Vec<BookingRow>, SutError>> {
        Box::pin(async move {
            if let Some(e) = self
                .read_hung
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                return Err(SutError::Read(e));
            }
            let rows = match &self.spec.read_sql {
                Some(sql) => {
                    let db = self.run_db().await.map_err(SutError::Read)?;
                    database::read(&db, sql).await.map_err(SutError::Read)?
                }
                None => self.read_over_http().await.map_err(SutError::Read)?,
            };
            // What the guests are owed: the sink waits for it before the service stops.
            self.sink.owe(&rows);
            Ok(rows)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.sink.settle(self.spec.notify_grace).await;
            let replicas = self.replicas.clone();
            let _ = tokio::task::spawn_blocking(move || replicas.stop_all()).await;
            self.sink.stop();
            self.drop_database().await;
        })
    }

    fn replicas(&self) -> Option<Arc<Replicas>> {
        Some(self.replicas.clone())
    }

    fn record_notifications(&self, recorder: Arc<Recorder>) {
        self.sink.record_into(recorder);
    }

    fn notes(&self) -> BTreeMap<String, String> {
        let mut notes = BTreeMap::new();
        notes.insert("service".into(), self.spec.command.clone());
        notes.insert("service replicas".into(), self.replicas.len().to_string());
        notes.insert("service database".into(), self.dbname.clone());
        notes.insert(
            "malformed answers".into(),
            self.shared.malformed.load(Ordering::Relaxed).to_string(),
        );
        // Only for a service that tells its guests: one that sends none reads as before.
        if self.sink.received() > 0 {
            notes.insert(
                "notifications".into(),
                format!(
                    "{} received, {} rejected as bad input",
                    self.sink.received(),
                    self.sink.rejected()
                ),
            );
        }
        for i in 0..self.replicas.len() {
            notes.insert(
                format!("service log tail {}", self.spec.log_name(i)),
                self.replicas.log_tail(i),
            );
        }
        notes
    }
}

/// One simulated user: one keep-alive connection to one replica.
struct ServiceSession {
    /// Read for the replica's address at each reconnect: a restart may move its port.
    replicas: Arc<Replicas>,
    replica: usize,
    /// The session's number, for a mapping's `{user}`.
    user: u64,
    /// `None` after the peer closed it; reopened before the next request.
    conn: Option<Connection>,
    shared: Arc<Shared>,
}

impl ServiceSession {
    /// The connection, reopened if the service closed it since the last answer. A
    /// connect that fails sent nothing, so the caller records the op as `fail`.
    async fn connection(&mut self) -> Result<&mut Connection, String> {
        let usable = match &mut self.conn {
            Some(c) => c.is_usable().await,
            None => false,
        };
        if !usable {
            self.conn = None;
            self.conn = Some(Connection::open(self.replicas.addr(self.replica)).await?);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, String> {
        let conn = self.connection().await?;
        let answer = conn
            .send_with(method, path, headers, body, http::MAX_OP_ANSWER)
            .await;
        if matches!(answer, Answer::Broken(_)) {
            self.conn = None;
        }
        Ok(answer)
    }

    fn outcome(&self, meaning: Meaning, mut value: OpValue) -> Outcome {
        let (kind, error) = match meaning {
            Meaning::Ok { id, trace } => {
                let mut detail = serde_json::Map::new();
                if let Some(id) = id {
                    let (n, is_handle) = self.shared.ids.number(&id);
                    value.booking = Some(n);
                    if is_handle {
                        detail.insert("service_id".into(), id);
                    }
                }
                if let Some(t) = trace {
                    let (converted, problem) = self.shared.clock.convert(&t);
                    value.trace = converted;
                    if let Some(p) = problem {
                        detail.insert("trace_error".into(), json!(p));
                    }
                }
                if !detail.is_empty() {
                    value.detail = Some(Value::Object(detail));
                }
                (OpType::Ok, None)
            }
            Meaning::Fail(e) => (OpType::Fail, Some(e)),
            Meaning::Info(e) => (OpType::Info, Some(e)),
            Meaning::Malformed(e) => {
                let n = self.shared.malformed.fetch_add(1, Ordering::Relaxed);
                if n < 5 {
                    tracing::warn!(
                        "malformed answer from {}: {e}",
                        self.replicas.addr(self.replica)
                    );
                }
                (OpType::Info, Some(format!("malformed answer: {e}")))
            }
        };
        Outcome { kind, value, error }
    }
}

impl Session for ServiceSession {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let (value, sent) = match &self.shared.api {
                Some(api) => {
                    let api = api.clone();
                    let value = match request {
                        Request::Book(b) => api.book_value(b),
                        other => other.invoke_value(),
                    };
                    (
                        value,
                        api.http_request(request, self.user, &self.shared.ids),
                    )
                }
                None => (
                    request.invoke_value(),
                    contract_request(request, &self.shared.ids),
                ),
            };
            let (method, path, headers, body) = sent;
            let answer = match self.send(method, &path, &headers, body).await {
                Ok(a) => a,
                Err(e) => {
                    // Nothing reached the service: definitely not applied.
                    return Outcome {
                        kind: OpType::Fail,
                        value,
                        error: Some(format!("not sent: {e}")),
                    };
                }
            };
            let meaning = match (&self.shared.api, request) {
                (Some(api), _) => api.meaning(request, &answer),
                (None, Request::Book(_)) => http::book_meaning(&answer),
                (None, Request::Cancel { .. }) => http::cancel_meaning(&answer),
            };
            self.outcome(meaning, value)
        })
    }
}

/// The request of docs/service.md for `request`: method, path, headers, body.
fn contract_request(request: &Request, ids: &IdTable) -> api::HttpRequest {
    match request {
        Request::Book(b) => {
            let body = json!({
                "room": b.room,
                "from": b.from.to_string(),
                "to": b.to.to_string(),
                "request": b.request,
            });
            (
                Method::POST,
                "/bookings".to_string(),
                Vec::new(),
                Some(body.to_string().into_bytes()),
            )
        }
        Request::Cancel { booking, .. } => (
            Method::DELETE,
            http::cancel_path(&ids.id(*booking)),
            Vec::new(),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_reads_take_numbers_and_strings_and_refuse_garbage() {
        let ids = IdTable::default();
        let rows = parse_bookings(
            br#"[{"id": 3, "room": 1, "from": "2026-12-01", "to": "2026-12-03", "request": "r-1"},
                 {"id": "x", "room": 2, "from": "2026-12-02", "to": "2026-12-04", "request": "r-2"}]"#,
            &ids,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].booking, Some(3));
        assert_eq!(rows[1].booking, Some(HANDLE_BASE));
        assert_eq!(rows[1].from.to_string(), "2026-12-02");
        for bad in [
            "{}",
            "nope",
            r#"[{"room": 1}]"#,
            r#"[{"room": -1, "from": "2026-12-01", "to": "2026-12-02", "request": "r"}]"#,
            r#"[{"room": 1, "from": "12/01", "to": "2026-12-02", "request": "r"}]"#,
        ] {
            assert!(parse_bookings(bad.as_bytes(), &ids).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_replica_logs_to_the_contracts_file_name() {
        let mut spec = ServiceSpec::new("true");
        assert_eq!(spec.log_name(0), "service.log");
        spec.replicas = 2;
        assert_eq!(spec.log_name(1), "service-1.log");
    }
}
