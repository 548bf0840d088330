//! Why the outbox cannot be used ([`OutboxError`], each naming the file and what to
//! do), and why a batch was refused for lack of room ([`Full`]).

use std::path::PathBuf;

/// Why the outbox cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "cannot create the storage directory {}: {source} (check `storage.path` and its permissions)",
        path.display()
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another router is using {}: stop it, or give this one its own `storage.path`",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error(
        "cannot open the outbox {}: {source} (is the disk full, or the file not a SQLite database?)",
        path.display()
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the outbox {} has schema version {found}, this router knows version {known}: run the \
         router that wrote it until it has delivered everything, then move the file away",
        path.display()
    )]
    Schema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "the outbox {} is damaged ({found}): stop here, copy the storage directory aside, then \
         put back a backup of outbox.db and outbox.db-wal, or recover what SQLite can read \
         (`sqlite3 outbox.db .recover | sqlite3 recovered.db`, then move recovered.db in its \
         place)",
        path.display()
    )]
    Damaged { path: PathBuf, found: String },
    #[error("cannot write to the outbox {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("cannot read the outbox {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the outbox {} has lost committed messages: they were numbered up to {recorded}, the \
         database now ends at {found}. Its write-ahead log (outbox.db-wal) was deleted or \
         damaged, or the file was replaced by an older copy. Put back the files from the \
         same moment (outbox.db and outbox.db-wal together), or start with \
         --accept-data-loss to go on with what is there",
        path.display()
    )]
    LostCommits {
        path: PathBuf,
        recorded: i64,
        found: i64,
    },
    #[error(
        "cannot use {}, which the outbox keeps beside its database: {source} (check the \
         storage directory's permissions and free space)",
        path.display()
    )]
    Beside {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the outbox writer for {} has stopped", path.display())]
    WriterGone { path: PathBuf },
}

impl OutboxError {
    /// The outbox could not be opened or read: [`OutboxError::Damaged`] when SQLite found
    /// the file corrupt (so the error says what to do), else [`OutboxError::Open`].
    pub(super) fn from_sqlite(path: PathBuf, source: rusqlite::Error) -> OutboxError {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                OutboxError::Damaged {
                    path,
                    found: source.to_string(),
                }
            }
            _ => OutboxError::Open { path, source },
        }
    }
}

/// Why a batch was refused before anything was written: try again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    #[error("{waiting} messages already wait for sink `{sink}` (its max_queue is {max})")]
    Sink {
        sink: String,
        waiting: u64,
        max: u64,
    },
    #[error("the outbox holds {waiting} waiting messages (storage.max_messages is {max})")]
    Messages { waiting: u64, max: u64 },
    #[error("the outbox holds {waiting} bytes of waiting messages (storage.max_bytes is {max})")]
    Bytes { waiting: u64, max: u64 },
}
