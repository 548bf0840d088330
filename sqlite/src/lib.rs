//! The router's SQLite databases (the outbox and the trading state), kept one way:
//! [`open`]ed with WAL, a busy timeout, the `synchronous` level asked for, the WAL cut
//! back after checkpoints, the schema created, and a schema version another router wrote
//! refused, not guessed at; and written by one [`Writer`] thread in group commits.

mod writer;

pub use writer::{Commit, Options, Stopped, Writer};

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Why a database could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Sqlite(rusqlite::Error),
    /// The file holds a schema this code does not know.
    Schema {
        found: i64,
        known: i64,
    },
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Sqlite(e)
    }
}

/// Opens (creating it if needed) the database at `path` with `schema` (idempotent SQL)
/// at `version`, `synchronous` being `FULL` or `NORMAL`. `upgrades[i]` takes a database
/// written at version `i + 1` to `i + 2`, so `version` is `upgrades.len() + 1`; a database
/// at an older version is upgraded in one transaction before `schema` runs.
pub fn open(
    path: &Path,
    synchronous: &str,
    schema: &str,
    version: i64,
    upgrades: &[&str],
) -> Result<Connection, OpenError> {
    let mut conn = Connection::open(path)?;
    // Another process holding a write lock makes us wait a little, not fail at once.
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "the database is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", synchronous)?;
    // After a checkpoint the WAL file is cut back, so a burst does not leave it large.
    conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found < 0 || found > version {
        return Err(OpenError::Schema {
            found,
            known: version,
        });
    }
    let tx = conn.transaction()?;
    if found > 0 {
        for (from, upgrade) in upgrades.iter().enumerate() {
            if found <= from as i64 + 1 {
                tx.execute_batch(upgrade)?;
            }
        }
    }
    tx.execute_batch(schema)?;
    tx.pragma_update(None, "user_version", version)?;
    tx.commit()?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_schema_is_upgraded_and_a_newer_one_refused() {
        let dir = std::env::temp_dir().join(format!("alert-router-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        let path = dir.join("x.db");
        let _ = std::fs::remove_file(&path);
        let v1 = "CREATE TABLE IF NOT EXISTS t (a INTEGER);";
        let conn = open(&path, "FULL", v1, 1, &[]).expect("a new database opens");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        conn.execute("INSERT INTO t (a) VALUES (7)", [])
            .expect("a row");
        drop(conn);
        assert!(
            open(&path, "NORMAL", v1, 1, &[]).is_ok(),
            "the same version opens again"
        );
        // Version 2 adds a column (and an index on it, which only works after the upgrade).
        let v2 = "CREATE TABLE IF NOT EXISTS t (a INTEGER, b INTEGER NOT NULL DEFAULT 0);
                  CREATE INDEX IF NOT EXISTS tb ON t (b);";
        let upgrades = ["ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 0;"];
        let conn = open(&path, "NORMAL", v2, 2, &upgrades).expect("version 1 is upgraded");
        let row: (i64, i64) = conn
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("the old row, with the new column");
        assert_eq!(row, (7, 0));
        drop(conn);
        assert!(
            open(&path, "NORMAL", v2, 2, &upgrades).is_ok(),
            "an upgraded database opens again without upgrading twice"
        );
        match open(&path, "NORMAL", v1, 1, &[]) {
            Err(OpenError::Schema { found, known }) => assert_eq!((found, known), (2, 1)),
            other => panic!("expected a schema refusal, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
