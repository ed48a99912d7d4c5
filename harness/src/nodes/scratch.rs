//! What overbook creates inside a Postgres server for one run: a uniquely named schema
//! (the built-in designs' tables) or database (a service's), never anything else.
//!
//! overbook must never touch an object it did not create: on `--backend external` the
//! database is the user's, and a fixed table name such as `inventory` may be theirs. So
//! each run gets `overbook_<random>`: created (a name that already exists is refused,
//! never reused), marked with a comment naming the run, reached through `search_path`
//! (schema) or the connection's dbname (database), and dropped at the end unless
//! `--keep`. It is registered with the reaper so Ctrl-C and a panic drop it too.

use std::sync::Mutex;
use std::time::Duration;

use super::NodeError;

/// The prefix of every scratch object's name.
pub const PREFIX: &str = "overbook_";

/// What kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchKind {
    /// A schema in the connection's database (the built-in designs).
    Schema,
    /// A database of its own (a service under test).
    Database,
}

impl ScratchKind {
    fn sql_noun(self) -> &'static str {
        match self {
            ScratchKind::Schema => "SCHEMA",
            ScratchKind::Database => "DATABASE",
        }
    }
}

/// One scratch object of this run.
#[derive(Debug)]
pub struct Scratch {
    kind: ScratchKind,
    name: String,
    /// How to reach the server to drop it (never through a fault proxy).
    admin_url: String,
    keep: bool,
    dropped: std::sync::atomic::AtomicBool,
}

/// Scratch objects created and not yet dropped: what the reaper drops on exit.
static LIVE: Mutex<Vec<(ScratchKind, String, String)>> = Mutex::new(Vec::new());

impl Scratch {
    /// Creates a fresh `overbook_<random>` of `kind` through `admin_url` (a
    /// tokio-postgres config straight to the server). `outlives_run`: the server is not
    /// ours (external), so an interrupted run must still drop the object on its way out;
    /// a server overbook started goes away whole.
    pub async fn create(
        kind: ScratchKind,
        admin_url: &str,
        keep: bool,
        outlives_run: bool,
    ) -> Result<Scratch, NodeError> {
        let name = format!("{PREFIX}{:016x}", rand::random::<u64>());
        let client = connect(admin_url).await?;
        let noun = kind.sql_noun();
        // A plain CREATE: if the name exists it is not ours (ours are random and fresh),
        // and the error stops the run before anything is written.
        client
            .batch_execute(&format!("CREATE {noun} {name}"))
            .await
            .map_err(|e| sql_error(format!("create {} {name}", noun.to_lowercase()), &e))?;
        if outlives_run && !keep {
            LIVE.lock().unwrap_or_else(|p| p.into_inner()).push((
                kind,
                name.clone(),
                admin_url.to_string(),
            ));
            super::reaper::on_exit(drop_registered);
        }
        let owner = super::tempdir::Owner::me();
        let comment = format!(
            "COMMENT ON {noun} {name} IS 'created by overbook (pid {}, start {}); dropped at the end of its run'",
            owner.pid, owner.start
        );
        client
            .batch_execute(&comment)
            .await
            .map_err(|e| sql_error(format!("mark {name}"), &e))?;
        Ok(Scratch {
            kind,
            name,
            admin_url: admin_url.to_string(),
            keep,
            dropped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kind.
    pub fn kind(&self) -> ScratchKind {
        self.kind
    }

    /// Empties it: dropped with everything in it (all of it ours) and created again under
    /// the same name, for a benchmark that runs several rounds on one set of servers.
    pub async fn recreate(&self) -> Result<(), NodeError> {
        let noun = self.kind.sql_noun();
        drop_object(self.kind, &self.name, &self.admin_url).await?;
        connect(&self.admin_url)
            .await?
            .batch_execute(&format!("CREATE {noun} {}", self.name))
            .await
            .map_err(|e| sql_error(format!("create {}", self.name), &e))
    }

    /// Drops it (with everything in it: all of it is ours), unless kept. Idempotent.
    pub async fn drop_now(&self) -> Result<(), NodeError> {
        forget(&self.name);
        if self.keep || self.dropped.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        drop_object(self.kind, &self.name, &self.admin_url).await
    }
}

fn forget(name: &str) {
    LIVE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(_, n, _)| n != name);
}

async fn drop_object(kind: ScratchKind, name: &str, admin_url: &str) -> Result<(), NodeError> {
    let client = connect(admin_url).await?;
    let sql = match kind {
        ScratchKind::Schema => format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
        ScratchKind::Database => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    };
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| sql_error(format!("drop {name}"), &e))
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, NodeError> {
    let (client, conn) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .map_err(|_| NodeError::Sql {
        what: "connect".into(),
        reason: "timed out after 10s".into(),
    })?
    .map_err(|e| sql_error("connect".to_string(), &e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn sql_error(what: String, e: &tokio_postgres::Error) -> NodeError {
    let reason = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    NodeError::Sql { what, reason }
}

/// Drops every scratch object still registered (Ctrl-C, SIGTERM, a panic of the main
/// thread), each on a fresh runtime: callable from the signal thread.
fn drop_registered() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|p| p.into_inner()));
    if live.is_empty() {
        return;
    }
    let worker = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            for (kind, name, url) in live {
                let _ =
                    tokio::time::timeout(Duration::from_secs(3), drop_object(kind, &name, &url))
                        .await;
            }
        });
    });
    let _ = worker.join();
}
