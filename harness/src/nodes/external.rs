//! The `external` backend: servers someone else runs, given by URL. The harness starts
//! nothing and owns no process, so only the proxy faults (latency, partition, reset) apply.

use std::net::{SocketAddr, ToSocketAddrs};

use tokio_postgres::config::Host;

use super::NodeError;

/// What is kept of a Redis URL to rebuild it with another address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisTarget {
    pub(crate) addr: SocketAddr,
    /// `user:password@` or empty.
    pub(crate) userinfo: String,
    /// The database path, e.g. `0`, or empty.
    pub(crate) db: String,
}

/// Parses `redis://[user:password@]host:port[/db]`.
pub(crate) fn parse_redis_url(url: &str) -> Result<RedisTarget, NodeError> {
    let bad = |reason: &str| NodeError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| bad("expected redis://host:port"))?;
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), rest),
    };
    let (hostport, db) = match hostpart.split_once('/') {
        Some((h, d)) => (h, d.to_string()),
        None => (hostpart, String::new()),
    };
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:6379")
    };
    let addr = resolve(&hostport).ok_or_else(|| bad("cannot resolve host"))?;
    Ok(RedisTarget { addr, userinfo, db })
}

/// What is kept of a Postgres connection string to rebuild it with another address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostgresTarget {
    pub(crate) addr: SocketAddr,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) dbname: String,
}

/// Parses a tokio-postgres config, URL (`postgres://...`) or key=value form; it must name
/// one TCP host (a proxy cannot stand in front of a unix socket).
pub(crate) fn parse_postgres_url(url: &str) -> Result<PostgresTarget, NodeError> {
    let bad = |reason: String| NodeError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let config: tokio_postgres::Config = url.parse().map_err(|e| bad(format!("{e}")))?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(_) => {
            return Err(bad(
                "a unix socket host cannot be proxied; give a TCP host".into()
            ))
        }
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let addr =
        resolve(&format!("{host}:{port}")).ok_or_else(|| bad("cannot resolve host".into()))?;
    let user = config.get_user().unwrap_or("postgres").to_string();
    Ok(PostgresTarget {
        addr,
        dbname: config.get_dbname().unwrap_or(&user).to_string(),
        user,
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    })
}

/// The Redis key prefix of one run on an external server: `<run>:`, where `<run>` is
/// the run's scratch schema name (`overbook_<random>`), so keys and schema name the same
/// run.
pub(crate) fn lock_prefix(run: &str) -> String {
    format!("{run}:")
}

/// `prefix` as a `SCAN MATCH` pattern matching exactly the keys that start with it.
fn prefix_pattern(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('*');
    p
}

/// Deletes the keys starting with `prefix` (a run's own, [`lock_prefix`]) from the Redis
/// at `url`, and nothing else: the fencing counters outlive their leases. Returns how
/// many were deleted.
pub(crate) async fn drop_keys(url: &str, prefix: &str) -> Result<u64, NodeError> {
    let err = |reason: String| NodeError::Redis {
        what: format!("delete the run's keys {prefix}*"),
        reason,
    };
    if prefix.is_empty() {
        return Err(err("no prefix: every key would match".into()));
    }
    let pattern = prefix_pattern(prefix);
    let talk = |mut conn: redis::aio::MultiplexedConnection| async move {
        let mut cursor = 0u64;
        let mut deleted = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            // MATCH is a glob; the plain prefix check makes "only ours" not depend on it.
            let ours: Vec<&String> = keys.iter().filter(|k| k.starts_with(prefix)).collect();
            if !ours.is_empty() {
                deleted += redis::cmd("DEL")
                    .arg(&ours)
                    .query_async::<u64>(&mut conn)
                    .await?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    };
    super::topology::exchange(url, std::time::Duration::from_secs(10), talk)
        .await
        .ok_or_else(|| err("no answer in 10 s".into()))?
        .map_err(|e| err(e.to_string()))
}

fn resolve(hostport: &str) -> Option<SocketAddr> {
    let addrs: Vec<SocketAddr> = hostport.to_socket_addrs().ok()?.collect();
    // Prefer IPv4: the proxy and local servers listen on 127.0.0.1.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_keys_are_matched_by_their_literal_prefix() {
        assert_eq!(
            lock_prefix("overbook_00000000000000ab"),
            "overbook_00000000000000ab:"
        );
        assert_eq!(prefix_pattern("overbook_1:"), "overbook_1:*");
        assert_eq!(prefix_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn redis_urls_keep_credentials_and_db() {
        let t = parse_redis_url("redis://:secret@127.0.0.1:7000/2").unwrap();
        assert_eq!(t.addr, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(t.userinfo, ":secret@");
        assert_eq!(t.db, "2");
        let t = parse_redis_url("redis://127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 6379);
        assert!(parse_redis_url("http://x").is_err());
    }

    #[test]
    fn postgres_urls_in_both_forms() {
        let t = parse_postgres_url("postgres://app:pw@127.0.0.1:6000/shop").unwrap();
        assert_eq!(t.addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!((t.user.as_str(), t.dbname.as_str()), ("app", "shop"));
        assert_eq!(t.password.as_deref(), Some("pw"));
        let t = parse_postgres_url("host=127.0.0.1 port=6001 user=postgres").unwrap();
        assert_eq!(t.addr.port(), 6001);
        assert_eq!(t.dbname, "postgres");
        assert!(parse_postgres_url("host=/var/run/postgresql").is_err());
    }
}
