//! A [`RunSpec`] as the shell command that reproduces the run (its words are
//! [`RunSpec::words`]), and what in it is someone else's input.

use super::RunSpec;

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

impl RunSpec {
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
