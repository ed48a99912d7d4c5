//! Why a history cannot be used: the one error of reading a history, whether a line
//! breaks the format (the reader) or the history breaks its rules (the validator in
//! [`crate::pairing`]). Its own module so that both use it and neither imports the other.

use std::io;

/// Why a history cannot be used. Every variant names the 1-based line it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The input could not be read at all.
    #[error("line {line}: cannot read: {source}")]
    Io {
        /// The line being read when it failed.
        line: u64,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The line is not a JSON object.
    #[error("line {line}: malformed JSON: {message}")]
    Json {
        /// The offending line.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The line is JSON but one field breaks the format or the history rules.
    #[error("line {line}: field `{field}`: {message}")]
    Field {
        /// The offending line.
        line: u64,
        /// The field, dotted for nested ones (`value.room`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ReadError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> u64 {
        match self {
            ReadError::Io { line, .. }
            | ReadError::Json { line, .. }
            | ReadError::Field { line, .. } => *line,
        }
    }

    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            ReadError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}
