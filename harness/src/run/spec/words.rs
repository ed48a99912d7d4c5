//! A [`RunSpec`] as `overbook run` options, and as the shell command that reproduces the
//! run: the other half of the round trip whose first half is the CLI's parser.

use std::time::Duration;

use super::{BackendKind, RunSpec};

/// The variable a reproduce command reads the external Redis URL from (never written out:
/// it holds a password).
pub const EXTERNAL_REDIS_VAR: &str = "OVERBOOK_REDIS_URL";
/// The variable a reproduce command reads the external Postgres URL from.
pub const EXTERNAL_POSTGRES_VAR: &str = "OVERBOOK_POSTGRES_URL";

/// `s` as one shell word: as it is when it is plain, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl RunSpec {
    /// The `overbook run` options that give this spec back when parsed (everything but
    /// `--store`, `--quiet` and `--expect`, which say where and how a run reports, not
    /// what it runs). A value left out (`None`) stays out, so the child fits it itself.
    pub fn words(&self) -> Vec<String> {
        let mut w = Words(Vec::new());
        if self.service.is_none() {
            w.pair("--design", self.design.as_str());
        }
        for f in &self.faults {
            w.pair("--fault", f.name());
        }
        w.pair("--time-limit", ms(self.time_limit));
        w.pair("--concurrency", self.concurrency);
        w.opt("--rooms", self.rooms);
        w.opt("--window-days", self.window_days);
        w.opt("--seed", self.seed);
        w.opt("--lock-ttl", self.lock_ttl.map(ms));
        w.pair("--db-latency", ms(self.db_latency));
        w.pair("--redis-latency", ms(self.redis_latency));
        w.opt("--client-pause", self.client_pause.map(ms));
        w.opt("--fault-for", self.fault_for.map(ms));
        w.opt("--heal-for", self.heal_for.map(ms));
        w.opt("--op-timeout", self.op_timeout.map(ms));
        w.pair("--cancel-ratio", self.cancel_ratio);
        w.opt("--slow-sql", self.slow_sql.as_ref().map(|re| re.as_str()));
        for (on, flag) in [
            (self.retry, "--retry"),
            (self.idempotency, "--idempotency"),
            (self.redis_aof, "--redis-aof"),
            (self.strict_lock, "--strict-lock"),
            (self.keep, "--keep"),
            (self.share, "--share"),
        ] {
            if on {
                w.0.push(flag.to_string());
            }
        }
        w.opt("--rate", self.rate);
        if self.lock_service != workloads::LockService::Single {
            w.pair("--lock-service", self.lock_service);
        }
        w.opt("--fault-node", self.fault_node);
        if self.margin_warn != checkers::WarnFraction::DEFAULT {
            w.pair("--margin-warn", self.margin_warn);
        }
        // Every backend but the default is named: a reproduce command says `local` (what
        // the run used), since on another machine `auto` may choose docker.
        if self.backend != BackendKind::Auto {
            w.pair("--backend", self.backend.name());
        }
        w.opt("--redis-url", self.redis_url.as_deref());
        w.opt("--postgres-url", self.postgres_url.as_deref());
        if let Some(s) = &self.service {
            w.pair("--service", &s.command);
            if s.replicas != 1 {
                w.pair("--replicas", s.replicas);
            }
            w.opt("--schema", s.schema.as_ref().map(|f| f.display()));
            w.opt("--read-sql", s.read_sql.as_deref());
            w.opt("--guard", self.guard);
            w.opt("--service-dir", s.dir.as_ref().map(|d| d.display()));
            w.pair("--service-ready-timeout", ms(s.ready_timeout));
        }
        w.opt("--redis-image", self.redis_image.as_deref());
        w.opt("--postgres-image", self.postgres_image.as_deref());
        w.0
    }

    /// The shell command that runs this spec: `overbook run` and [`RunSpec::words`],
    /// quoted. External servers' URLs carry their passwords, which a reproduce command
    /// (printed, kept in meta.json and reports) must not: it names the variables to
    /// supply instead.
    pub fn command(&self) -> String {
        let mut out = String::from("overbook run");
        let mut prev = String::new();
        for word in self.words() {
            out.push(' ');
            match prev.as_str() {
                "--redis-url" => out.push_str(&format!("\"${EXTERNAL_REDIS_VAR}\"")),
                "--postgres-url" => out.push_str(&format!("\"${EXTERNAL_POSTGRES_VAR}\"")),
                _ => out.push_str(&shell_quote(&word)),
            }
            prev = word;
        }
        out
    }

    /// The values that execute something or reach beyond the servers overbook starts, as
    /// (flag, value): the service command, its schema file and directory, the final-read
    /// query, external URLs and images. When a spec came from a run directory (someone
    /// else's), these are shown and need the user's trust before anything replays them.
    pub fn foreign_inputs(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let s = self.service.as_ref();
        [
            ("--service", s.map(|s| s.command.clone())),
            ("--schema", s.and_then(|s| path(&s.schema))),
            ("--service-dir", s.and_then(|s| path(&s.dir))),
            ("--read-sql", s.and_then(|s| s.read_sql.clone())),
            ("--redis-url", self.redis_url.clone()),
            ("--postgres-url", self.postgres_url.clone()),
            ("--redis-image", self.redis_image.clone()),
            ("--postgres-image", self.postgres_image.clone()),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.map(|v| (flag, v)))
        .collect()
    }
}

/// Options being spelled out.
struct Words(Vec<String>);

impl Words {
    fn pair(&mut self, flag: &str, value: impl ToString) {
        self.0.push(flag.to_string());
        self.0.push(value.to_string());
    }

    fn opt(&mut self, flag: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.pair(flag, v);
        }
    }
}
