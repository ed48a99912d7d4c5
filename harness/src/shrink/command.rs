//! A run's reproduce command as words, and the edits shrinking makes to it. The command
//! in `meta.json` spells out every choice (`cli::run::reproduce_command`), so a smaller
//! configuration is the same words with a few values replaced: nothing of the original
//! run is lost on the way, and what is printed at the end runs as it is.

use std::fmt;

use crate::cli::run::shell_quote;

/// Why a command could not be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A quote was opened and never closed.
    #[error("unterminated quote in the reproduce command: {0}")]
    Unterminated(String),
    /// Not an `overbook run` command.
    #[error("the reproduce command is not an `overbook run` command: {0}")]
    NotARun(String),
}

/// An `overbook run` command line, as words (`overbook`, `run`, then options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommand(Vec<String>);

impl RunCommand {
    /// Splits `line` as a POSIX shell would (single and double quotes, backslashes;
    /// no expansions: the runner never writes any).
    pub fn parse(line: &str) -> Result<RunCommand, CommandError> {
        let words = words(line)?;
        if words.len() < 2 || words[1] != "run" {
            return Err(CommandError::NotARun(line.to_string()));
        }
        Ok(RunCommand(words))
    }

    /// A command from its words (a run's `meta.json` `argv`), checked to be `overbook
    /// run`.
    pub fn from_words(words: Vec<String>) -> Result<RunCommand, CommandError> {
        if words.len() < 2 || words[0] != "overbook" || words[1] != "run" {
            return Err(CommandError::NotARun(words.join(" ")));
        }
        Ok(RunCommand(words))
    }

    /// The words, `overbook` first.
    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// The options (everything after `overbook run`).
    pub fn options(&self) -> &[String] {
        &self.0[2..]
    }

    /// The value of `flag`'s last occurrence.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.0
            .windows(2)
            .rev()
            .find(|w| w[0] == flag)
            .map(|w| w[1].as_str())
    }

    /// Sets `flag` to `value`: replaces every occurrence by one, at the first's place
    /// (or at the end).
    pub fn set(&mut self, flag: &str, value: &str) {
        let at = self.0.iter().position(|w| w == flag);
        self.remove(flag);
        let pair = [flag.to_string(), value.to_string()];
        match at {
            Some(i) if i <= self.0.len() => {
                self.0.splice(i..i, pair);
            }
            _ => self.0.extend(pair),
        }
    }

    /// Sets a repeatable flag to exactly `values`.
    pub fn set_all(&mut self, flag: &str, values: &[String]) {
        let at = self
            .0
            .iter()
            .position(|w| w == flag)
            .unwrap_or(self.0.len());
        self.remove(flag);
        let pairs: Vec<String> = values
            .iter()
            .flat_map(|v| [flag.to_string(), v.clone()])
            .collect();
        self.0
            .splice(at.min(self.0.len())..at.min(self.0.len()), pairs);
    }

    /// Removes every `flag VALUE` pair.
    pub fn remove(&mut self, flag: &str) {
        let mut out = Vec::with_capacity(self.0.len());
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i] == flag && i + 1 < self.0.len() {
                i += 2;
            } else {
                out.push(self.0[i].clone());
                i += 1;
            }
        }
        self.0 = out;
    }
}

/// The values of a parsed `overbook run` that execute something or reach beyond the
/// servers overbook starts, as (flag, value): the service command, its schema file and
/// directory, the final-read query, external URLs and images. When the command came from
/// a run directory (someone else's), these are shown and need the user's trust before
/// anything replays them (`--trust-run`).
pub fn foreign_inputs(args: &crate::cli::RunArgs) -> Vec<(&'static str, String)> {
    let s = &args.service;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    [
        ("--service", s.service.clone()),
        ("--schema", path(&s.schema)),
        ("--service-dir", path(&s.service_dir)),
        ("--read-sql", s.read_sql.clone()),
        ("--redis-url", args.redis_url.clone()),
        ("--postgres-url", args.postgres_url.clone()),
        ("--redis-image", args.redis_image.clone()),
        ("--postgres-image", args.postgres_image.clone()),
    ]
    .into_iter()
    .filter_map(|(flag, v)| v.map(|v| (flag, v)))
    .collect()
}

impl fmt::Display for RunCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.0.iter().map(|w| shell_quote(w)).collect();
        f.write_str(&quoted.join(" "))
    }
}

/// Splits a command line into words as `sh` would, quotes removed.
fn words(line: &str) -> Result<Vec<String>, CommandError> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => word.push(x),
                        None => return Err(CommandError::Unterminated(line.to_string())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => word.push(x),
                            Some(x) => {
                                word.push('\\');
                                word.push(x);
                            }
                            None => return Err(CommandError::Unterminated(line.to_string())),
                        },
                        Some(x) => word.push(x),
                        None => return Err(CommandError::Unterminated(line.to_string())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    word.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_round_trip_through_shell_quote() {
        let line = r#"overbook run --service 'BOOKING_MODE=buggy exec x'\''y' --fault a --fault b --rooms 5 --read-sql "select \"x\"""#;
        let c = RunCommand::parse(line).unwrap();
        assert_eq!(c.get("--service"), Some("BOOKING_MODE=buggy exec x'y"));
        assert_eq!(c.get("--read-sql"), Some("select \"x\""));
        let again = RunCommand::parse(&c.to_string()).unwrap();
        assert_eq!(again, c);
        assert!(matches!(
            RunCommand::parse("overbook run --service 'x"),
            Err(CommandError::Unterminated(_))
        ));
        assert!(matches!(
            RunCommand::parse("overbook check x"),
            Err(CommandError::NotARun(_))
        ));
    }

    #[test]
    fn flags_are_replaced_in_place_and_repeatable_ones_set_whole() {
        let mut c =
            RunCommand::parse("overbook run --rooms 5 --fault a --seed 3 --fault b").unwrap();
        c.set("--rooms", "1");
        c.set("--time-limit", "2000ms");
        c.set_all("--fault", &["b".to_string()]);
        assert_eq!(
            c.to_string(),
            "overbook run --rooms 1 --fault b --seed 3 --time-limit 2000ms"
        );
    }
}
