//! The state store's errors: [`StateError`] for opening and saving the database (each
//! names the path), [`QueryError`] for a query the store cannot answer (each says what is
//! allowed).

use std::path::PathBuf;

/// Opening or saving the state database failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "cannot create the state directory {}: {source} (check `storage.path` and its permissions)",
        path.display()
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot open the state database {}: {source} (is the disk full, or the file not a SQLite database?)",
        path.display()
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the state database {} has schema version {found}, this router knows version {known}: \
         run the router that wrote it, or move the file away to start with an empty state",
        path.display()
    )]
    Schema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot save state to {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("the state writer for {} has stopped; later changes are not saved", path.display())]
    WriterGone { path: PathBuf },
    #[error("the state writer for {} did not confirm a flush within {secs} s", path.display())]
    FlushTimeout { path: PathBuf, secs: u64 },
}

/// A state query the store cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "unknown state resource `{0}`: use one of {resources}",
        resources = super::RESOURCES.join(", ")
    )]
    UnknownResource(String),
    #[error(
        "`{name}` is not a parameter of `{resource}`: {}",
        allowed_text(allowed)
    )]
    UnknownParameter {
        resource: String,
        name: String,
        allowed: &'static [&'static str],
    },
    #[error("`{name}` is given more than once: give it once")]
    Repeated { name: String },
    #[error("{name}={value:?} is not valid: expected {expected}")]
    BadValue {
        name: String,
        value: String,
        expected: String,
    },
}

fn allowed_text(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        "it takes no parameters".to_owned()
    } else {
        format!("use {}", allowed.join(", "))
    }
}

impl QueryError {
    /// A bad value, cut to a readable length.
    pub(super) fn bad(name: &str, value: &str, expected: impl Into<String>) -> QueryError {
        let value = match value.char_indices().nth(60) {
            Some((cut, _)) => format!("{}…", &value[..cut]),
            None => value.to_owned(),
        };
        QueryError::BadValue {
            name: name.to_owned(),
            value,
            expected: expected.into(),
        }
    }
}
