//! The outbox's high-water mark: the highest message number committed, kept in a small
//! file beside the database (`outbox.committed`) and rewritten after each commit that
//! appended. At start, a database whose numbering stops short of it lost commits (a
//! deleted or damaged `-wal` file, a truncated or replaced `outbox.db`, a backup that
//! copied the database without its log): the router says so and refuses to start,
//! instead of delivering less than it accepted without a word.
//!
//! The numbering comes from SQLite's `sqlite_sequence` (the table is AUTOINCREMENT), which
//! never goes back when delivered messages are pruned. The mark is written after the
//! commit, so a crash can only leave it behind the database, never ahead of it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

/// The file, in the storage directory.
pub const FILE: &str = "outbox.committed";

const MAGIC: &[u8; 8] = b"ARMARK01";

/// The highest message number the database has ever given out.
pub(super) fn highest(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'messages'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// The mark as recorded: `None` when there is none yet (a new storage directory, or one
/// from before the mark).
pub(super) fn recorded(dir: &Path) -> io::Result<Option<i64>> {
    match std::fs::read(dir.join(FILE)) {
        Ok(bytes) => Ok(decode(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn decode(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return None;
    }
    Some(i64::from_le_bytes(bytes[8..16].try_into().ok()?))
}

/// The writer's handle on the mark.
pub(super) struct Watermark {
    file: File,
    path: PathBuf,
    last: i64,
    complained: bool,
}

impl Watermark {
    /// Opens (creating it) the mark of storage directory `dir`, now at `highest`.
    pub(super) fn open(dir: &Path, highest: i64) -> io::Result<Watermark> {
        let path = dir.join(FILE);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut mark = Watermark {
            file,
            path,
            last: i64::MIN,
            complained: false,
        };
        mark.record(highest);
        Ok(mark)
    }

    /// Records that the messages up to number `seq` are committed.
    pub(super) fn record(&mut self, seq: i64) {
        if seq <= self.last {
            return;
        }
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8..].copy_from_slice(&seq.to_le_bytes());
        match self.file.write_all_at(&bytes, 0) {
            Ok(()) => self.last = seq,
            Err(e) => {
                if !self.complained {
                    self.complained = true;
                    tracing::error!(path = %self.path.display(), error = %e, "cannot record the outbox's high-water mark; a lost database or log would go unnoticed at the next start");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_reads_back_and_garbage_is_no_mark() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&42i64.to_le_bytes());
        assert_eq!(decode(&bytes), Some(42));
        assert_eq!(decode(&bytes[..12]), None);
        assert_eq!(decode(&[0u8; 16]), None);
    }
}
