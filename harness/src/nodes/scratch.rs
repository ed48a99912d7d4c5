//! What overbook creates inside a Postgres server for one run: a uniquely named schema
//! (the built-in designs' tables) or database (a service's), never anything else.
//!
//! overbook must never touch an object it did not create: on `--backend external` the
//! database is the user's, and a fixed table name such as `inventory` may be theirs. So
//! each run gets `overbook_<random>`: created (a name that already exists is refused,
//! never reused), marked with a comment naming the run, reached through `search_path`
//! (schema) or the connection's dbname (database), and dropped at the end unless
//! `--keep`. It is registered with the reaper so Ctrl-C and a panic drop it too.
//!
//! The comment is the mark `overbook clean --postgres-url` goes by
//! ([`list_leftovers`]): it names the harness (pid, start time, pid space), so a killed
//! run's objects can be told from a live run's, and an `overbook_*` without it is never
//! touched.

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
        Scratch::create_named(kind, &fresh_name(), admin_url, keep, outlives_run).await
    }

    /// [`Scratch::create`] under a name chosen before (by [`fresh_name`]), for a service
    /// whose environment names its database before it exists.
    pub async fn create_named(
        kind: ScratchKind,
        name: &str,
        admin_url: &str,
        keep: bool,
        outlives_run: bool,
    ) -> Result<Scratch, NodeError> {
        if !is_scratch_name(name) {
            return Err(sql_error_text(
                format!("create {name}"),
                "not a name overbook makes".into(),
            ));
        }
        let name = name.to_string();
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
        let comment = format!(
            "COMMENT ON {noun} {name} IS '{}'",
            mark_comment(&super::tempdir::RunMark::me()).replace('\'', "''")
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

/// A fresh, unpredictable name: `overbook_` and 16 hex digits.
pub fn fresh_name() -> String {
    format!("{PREFIX}{:016x}", rand::random::<u64>())
}

/// Whether `name` is one [`fresh_name`] makes (so it needs no quoting anywhere).
fn is_scratch_name(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

const MARK_START: &str = "created by overbook (";

/// The comment a scratch object is marked with.
fn mark_comment(mark: &super::tempdir::RunMark) -> String {
    format!(
        "{MARK_START}pid {}, start {}, space {}); dropped at the end of its run",
        mark.pid.unwrap_or_default(),
        mark.start.unwrap_or_default(),
        mark.space.as_deref().unwrap_or_default()
    )
}

/// Reads a comment back: `None` when it is not overbook's mark at all; a mark with
/// missing parts for an older overbook's (pid and start, no space).
fn parse_mark(comment: &str) -> Option<super::tempdir::RunMark> {
    let inner = comment.strip_prefix(MARK_START)?;
    let inner = &inner[..inner.find(')')?];
    let mut mark = super::tempdir::RunMark::default();
    for part in inner.split(", ") {
        match part.split_once(' ') {
            Some(("pid", v)) => mark.pid = v.parse().ok(),
            Some(("start", v)) => mark.start = v.parse().ok(),
            Some(("space", v)) if !v.is_empty() => mark.space = Some(v.to_string()),
            _ => {}
        }
    }
    Some(mark)
}

/// An `overbook_*` schema or database found on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Schema (in the URL's database) or database.
    pub kind: ScratchKind,
    /// Its name.
    pub name: String,
    /// overbook's mark from its comment; `None`: not marked by overbook, never touched.
    pub mark: Option<super::tempdir::RunMark>,
}

/// Every `overbook_*` database of the server at `admin_url`, and every `overbook_*`
/// schema of the database it names, with the mark each carries.
pub async fn list_leftovers(admin_url: &str) -> Result<Vec<Leftover>, NodeError> {
    let client = connect(admin_url).await?;
    let queries = [
        (
            ScratchKind::Database,
            r"SELECT datname::text, shobj_description(oid, 'pg_database')
              FROM pg_database WHERE datname LIKE 'overbook\_%' ORDER BY 1",
        ),
        (
            ScratchKind::Schema,
            r"SELECT nspname::text, obj_description(oid, 'pg_namespace')
              FROM pg_namespace WHERE nspname LIKE 'overbook\_%' ORDER BY 1",
        ),
    ];
    let mut out = Vec::new();
    for (kind, sql) in queries {
        let rows = client
            .query(sql, &[])
            .await
            .map_err(|e| sql_error("list overbook_* objects".into(), &e))?;
        for row in rows {
            let name: String = row.get(0);
            let comment: Option<String> = row.get(1);
            let mark = comment
                .as_deref()
                .and_then(parse_mark)
                .filter(|_| is_scratch_name(&name));
            out.push(Leftover { kind, name, mark });
        }
    }
    Ok(out)
}

/// Drops one leftover [`list_leftovers`] found marked (with everything in it).
pub async fn drop_leftover(admin_url: &str, l: &Leftover) -> Result<(), NodeError> {
    if l.mark.is_none() || !is_scratch_name(&l.name) {
        return Err(sql_error_text(
            format!("drop {}", l.name),
            "not marked as overbook's".into(),
        ));
    }
    drop_object(l.kind, &l.name, admin_url).await
}

fn sql_error_text(what: String, reason: String) -> NodeError {
    NodeError::Sql { what, reason }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::tempdir::RunMark;

    #[test]
    fn the_mark_reads_back_and_nothing_else_is_a_mark() {
        let me = RunMark::me();
        assert_eq!(parse_mark(&mark_comment(&me)), Some(me));
        // An older overbook's comment: pid and start, no space (judged unknown).
        assert_eq!(
            parse_mark("created by overbook (pid 12, start 34); dropped at the end of its run"),
            Some(RunMark {
                pid: Some(12),
                start: Some(34),
                space: None
            })
        );
        assert_eq!(parse_mark("the shop's production data"), None);
        assert_eq!(parse_mark(""), None);
        assert!(is_scratch_name(&fresh_name()));
        assert!(!is_scratch_name("overbook_prod"));
        assert!(!is_scratch_name("overbook_0123456789abcdeF"));
    }
}
