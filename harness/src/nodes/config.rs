//! One place for how overbook configures the servers it starts, shared by the local and
//! docker backends: a kill-db verdict depends on both running Postgres with the same
//! durability, and a kill-redis verdict on both running Redis with the same persistence.
//! Also how one node of a lock-service topology differs from the plain server
//! ([`NodeSpec`]), which both backends start.

use std::net::SocketAddr;

use super::ServerKind;

/// Redis flags, beyond where it listens and its password: no RDB snapshots; protected
/// mode on (with a password set it lets authenticated clients in, from anywhere the
/// server listens); with `aof`, an append-only file fsynced on every write, so a lease
/// granted before a kill -9 is still held after it (without it, a restarted Redis has
/// forgotten every lease).
pub(crate) fn redis_flags(aof: bool) -> Vec<&'static str> {
    let mut flags = vec!["--save", "", "--protected-mode", "yes"];
    if aof {
        flags.extend(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        flags.extend(["--appendonly", "no"]);
    }
    flags
}

/// A redis.conf for a server overbook starts: `first` lines (where it listens, when
/// the command line cannot say it), then the password, then a topology's own lines
/// (replication, Sentinel): a local server's config file and a sentinel's, which keep
/// the password off the command line.
pub(crate) fn redis_conf(first: &[&str], password: &str, lines: &[String]) -> String {
    let mut conf = String::new();
    for line in first {
        conf.push_str(line);
        conf.push('\n');
    }
    conf.push_str(&format!("requirepass {password}\n"));
    for line in lines {
        conf.push_str(line);
        conf.push('\n');
    }
    conf
}

/// Postgres settings (`-c name=value`), beyond where it listens. Durability on: a kill
/// must not lose a committed booking. Connections: `max_connections`, from the run's
/// needs ([`super::max_connections_for`]).
pub(crate) fn postgres_settings(max_connections: u32) -> Vec<String> {
    let mut settings = vec![format!("max_connections={max_connections}")];
    settings.extend(POSTGRES_SETTINGS.iter().map(|s| s.to_string()));
    settings
}

/// The settings that do not depend on the run.
const POSTGRES_SETTINGS: &[&str] = &[
    "shared_buffers=32MB",
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
    "huge_pages=off",
];

/// How one Redis node of a lock-service topology differs from the plain server, on
/// either backend that starts servers: its name (log, temp dir, container), the
/// topology's shared password, extra config lines (replication, Sentinel), an address
/// chosen in advance (other nodes' configs name it), and whether it runs as a sentinel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeSpec {
    /// File stem of its log (`redis-3` -> `redis-3.log`); the kind's short name if empty.
    pub(crate) name: String,
    /// The password; a fresh random one if `None`.
    pub(crate) password: Option<String>,
    /// Config lines after `requirepass`, as in a redis.conf (`replicaof HOST PORT`).
    pub(crate) conf: Vec<String>,
    /// Where it listens, when other nodes must know it before it starts: a loopback port
    /// (local) or the node's fixed address on the run's network (docker).
    pub(crate) addr: Option<SocketAddr>,
    /// `redis-server --sentinel`.
    pub(crate) sentinel: bool,
}

impl NodeSpec {
    /// The node's file stem (log, temp dir, container): its name, or the kind's short
    /// name for the plain server.
    pub(crate) fn stem(&self, kind: ServerKind) -> &str {
        if self.name.is_empty() {
            kind.short_name()
        } else {
            &self.name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_conf_lists_where_it_listens_then_the_password_then_the_topology() {
        let lines = vec!["replicaof 10.0.0.2 6379".to_string()];
        assert_eq!(
            redis_conf(&["port 6379"], "pw", &lines),
            "port 6379\nrequirepass pw\nreplicaof 10.0.0.2 6379\n"
        );
        assert_eq!(redis_conf(&[], "pw", &[]), "requirepass pw\n");
    }

    #[test]
    fn durability_is_on_and_aof_is_fsynced_always() {
        assert!(POSTGRES_SETTINGS.contains(&"fsync=on"));
        assert_eq!(postgres_settings(42)[0], "max_connections=42");
        assert!(POSTGRES_SETTINGS.contains(&"synchronous_commit=on"));
        let aof = redis_flags(true);
        assert!(aof.windows(2).any(|w| w == ["--appendfsync", "always"]));
        assert!(redis_flags(false)
            .windows(2)
            .any(|w| w == ["--appendonly", "no"]));
    }
}
