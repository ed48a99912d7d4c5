//! A run's reproduce command as words: the command in `meta.json` spells out every choice
//! ([`super::RunSpec::command`]), split back as a POSIX shell would, so the CLI's parser
//! can turn it into the same spec again (shrinking and `bench reproduce` start there).

use std::fmt;

use super::shell_quote;

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
}
