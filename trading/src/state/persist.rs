//! Persistence of the book in SQLite (`<storage.path>/state.db`, WAL, `synchronous=NORMAL`):
//! the schema, loading the book back at start, and what the background writer thread
//! ([`alert_router_sqlite::Writer`]) writes: [`Change`]s in group commits (every
//! [`BATCH_WINDOW`] or [`BATCH_CHANGES`] changes), so the ingest path never waits for a
//! disk write.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::book::{Book, Change, CurveId, MAX_TRADES, Position, PositionKey, ReportedKind, Trade};
use super::equity::{Curve, DailyCloses, MAX_DAYS, MAX_POINTS, Point};
use super::error::StateError;
use alert_router_sqlite as sqlite;

/// The file inside the storage directory.
pub(super) const FILE_NAME: &str = "state.db";

/// How long the writer gathers changes before it commits them.
pub(super) const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// The most changes in one commit.
pub(super) const BATCH_CHANGES: usize = 1_000;

/// Changes waiting for the writer. When it falls this far behind, `apply` waits for it
/// (backpressure) rather than letting memory grow without bound.
const QUEUE: usize = 16_384;

/// How long `flush` waits for the writer to confirm.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// The schema this code writes; a database with another one is refused, not guessed at.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT NOT NULL, side TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (symbol, side));
CREATE TABLE IF NOT EXISTS prices (symbol TEXT PRIMARY KEY, price REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trades (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS equity (curve TEXT NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS equity_by_curve ON equity (curve, time);
CREATE TABLE IF NOT EXISTS daily_close (day INTEGER PRIMARY KEY, time INTEGER NOT NULL, value REAL NOT NULL);
";

// Keys of the `kv` table.
const KV_PORTFOLIO: &str = "portfolio";
const KV_PERFORMANCE: &str = "performance_metrics";
const KV_DAILY_SUMMARY: &str = "daily_summary";
const KV_STATS: &str = "stats";
const KV_POSITIONS_SOURCE: &str = "positions_source";

/// Opens (creating it if needed) `dir/state.db`, loads the book stored in it and starts
/// the writer thread.
pub(super) fn open(dir: &Path) -> Result<(Book, Writer), StateError> {
    std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(FILE_NAME);
    let opened = |source| StateError::Open {
        path: path.clone(),
        source,
    };
    let conn = sqlite::open(&path, "NORMAL", SCHEMA, SCHEMA_VERSION, &[]).map_err(|e| match e {
        sqlite::OpenError::Sqlite(source) => opened(source),
        sqlite::OpenError::Schema { found, known } => StateError::Schema {
            path: path.clone(),
            found,
            known,
        },
    })?;
    let book = load(&conn, &path).map_err(opened)?;
    let writer = Writer::start(conn, path)?;
    Ok((book, writer))
}

/// Reads the whole book back. A row that no longer decodes is skipped with a warning:
/// losing one old trade is better than refusing to start.
fn load(conn: &Connection, path: &Path) -> rusqlite::Result<Book> {
    let mut book = Book::default();
    let kv = |key: &str| -> rusqlite::Result<Option<String>> {
        conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()
    };
    book.portfolio = kv(KV_PORTFOLIO)?.and_then(|s| decode(path, KV_PORTFOLIO, &s));
    book.performance = kv(KV_PERFORMANCE)?.and_then(|s| decode(path, KV_PERFORMANCE, &s));
    book.daily_summary = kv(KV_DAILY_SUMMARY)?.and_then(|s| decode(path, KV_DAILY_SUMMARY, &s));
    book.stats = kv(KV_STATS)?
        .and_then(|s| decode(path, KV_STATS, &s))
        .unwrap_or_default();
    book.positions_source = kv(KV_POSITIONS_SOURCE)?
        .and_then(|s| decode(path, KV_POSITIONS_SOURCE, &s))
        .unwrap_or_default();

    let mut stmt = conn.prepare("SELECT body FROM positions ORDER BY symbol, side")?;
    for body in stmt.query_map([], |row| row.get::<_, String>(0))? {
        if let Some(p) = decode::<Position>(path, "positions", &body?) {
            book.positions.insert((p.symbol.clone(), p.side.clone()), p);
        }
    }

    let mut stmt = conn.prepare("SELECT symbol, price FROM prices")?;
    for row in stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, f64>(1)?))
    })? {
        let (symbol, price) = row?;
        book.prices.insert(symbol, price);
    }

    let mut stmt = conn.prepare("SELECT seq, body FROM trades ORDER BY seq DESC LIMIT ?1")?;
    let limit = i64::try_from(MAX_TRADES).unwrap_or(i64::MAX);
    let mut newest_first = Vec::new();
    let mut max_seq = 0i64;
    for row in stmt.query_map([limit], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })? {
        let (seq, body) = row?;
        max_seq = max_seq.max(seq);
        if let Some(t) = decode::<Trade>(path, "trades", &body) {
            newest_first.push(t);
        }
    }
    book.trades = newest_first.into_iter().rev().collect();
    book.next_seq = u64::try_from(max_seq).unwrap_or(0) + 1;

    for id in [CurveId::Portfolio, CurveId::Pnl] {
        let mut stmt =
            conn.prepare("SELECT time, value FROM equity WHERE curve = ?1 ORDER BY time, rowid")?;
        let points = stmt
            .query_map([id.as_str()], |row| {
                Ok(Point {
                    time: row.get(0)?,
                    value: row.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let curve = Curve::from_points(points, MAX_POINTS);
        match id {
            CurveId::Portfolio => book.equity = curve,
            CurveId::Pnl => book.pnl_curve = curve,
        }
    }

    let mut daily = DailyCloses::default();
    let mut stmt = conn.prepare("SELECT time, value FROM daily_close ORDER BY day")?;
    for row in stmt.query_map([], |row| {
        Ok(Point {
            time: row.get(0)?,
            value: row.get(1)?,
        })
    })? {
        daily.record(row?);
    }
    book.daily = daily;
    Ok(book)
}

fn decode<T: DeserializeOwned>(path: &Path, what: &str, text: &str) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), what, error = %e, "skipping a state row that does not decode");
            None
        }
    }
}

/// What the writer thread is sent.
pub(super) enum Msg {
    Change(Box<Change>),
    /// Answered once everything sent before it is committed, with the first failure
    /// since the last flush.
    Flush(SyncSender<Result<(), String>>),
}

/// The handle of the writer thread. Dropping it commits what is pending and joins the
/// thread.
pub(super) struct Writer {
    thread: sqlite::Writer<Msg>,
    path: PathBuf,
}

impl Writer {
    fn start(conn: Connection, path: PathBuf) -> Result<Writer, StateError> {
        let options = sqlite::Options {
            name: "state-writer",
            path: path.clone(),
            queue: QUEUE,
            max_ops: BATCH_CHANGES,
            // Nobody waits for a change to be saved, so changes to the same key within
            // the window are merged and written once.
            window: BATCH_WINDOW,
            tick: None,
        };
        let job = StateCommit {
            failed: None,
            count: 0,
        };
        let thread = sqlite::Writer::start(conn, job, options).map_err(|e| StateError::Write {
            path: path.clone(),
            message: format!("cannot start the writer thread: {e}"),
        })?;
        Ok(Writer { thread, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands a change to the writer; waits only when [`QUEUE`] changes are already
    /// waiting. A writer that is gone is reported by the next `flush`.
    pub fn send(&self, change: Change) {
        let _ = self.thread.send(Msg::Change(Box::new(change)));
    }

    /// Waits until every change sent so far is committed.
    pub fn flush(&self) -> Result<(), StateError> {
        let gone = || StateError::WriterGone {
            path: self.path.clone(),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        self.thread.send(Msg::Flush(reply)).map_err(|_| gone())?;
        match answer.recv_timeout(FLUSH_TIMEOUT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StateError::Write {
                path: self.path.clone(),
                message,
            }),
            Err(RecvTimeoutError::Timeout) => Err(StateError::FlushTimeout {
                path: self.path.clone(),
                secs: FLUSH_TIMEOUT.as_secs(),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Waits (at most FLUSH_TIMEOUT) so that a failure is logged; the thread's own
        // handle then commits anything sent meanwhile and joins it.
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "state not fully saved at shutdown");
        }
    }
}

/// The state's writes: changes gathered for up to [`BATCH_WINDOW`] or [`BATCH_CHANGES`]
/// and merged (only a key's last value is written) in one transaction. A failed commit
/// is logged, its changes are dropped (memory stays right) and the next flush reports it.
struct StateCommit {
    /// The first failure since the last flush.
    failed: Option<String>,
    /// Changes in the commit under way.
    count: usize,
}

impl sqlite::Commit for StateCommit {
    type Op = Msg;
    type Reply = SyncSender<Result<(), String>>;

    fn write(
        &mut self,
        tx: &mut Transaction<'_>,
        ops: Vec<Msg>,
        replies: &mut Vec<Self::Reply>,
    ) -> rusqlite::Result<()> {
        let mut pending = Pending::default();
        for op in ops {
            match op {
                Msg::Change(change) => pending.add(*change),
                Msg::Flush(reply) => replies.push(reply),
            }
        }
        self.count = pending.count;
        pending.write(tx)
    }

    fn done(&mut self, outcome: Result<(), &rusqlite::Error>, flushes: Vec<Self::Reply>) {
        if let Err(e) = outcome {
            self.failed
                .get_or_insert_with(|| format!("{} changes were not saved: {e}", self.count));
        }
        for reply in flushes {
            let _ = reply.send(self.failed.take().map_or(Ok(()), Err));
        }
    }

    fn urgent(&self, op: &Msg) -> bool {
        matches!(op, Msg::Flush(_))
    }
}

/// What a curve's batch holds: an optional full rewrite, then points to append.
#[derive(Default)]
struct CurveBatch {
    rewrite: Option<Vec<Point>>,
    points: Vec<Point>,
}

/// Changes gathered for one commit, already merged: only the last value of a key is
/// written.
#[derive(Default)]
struct Pending {
    count: usize,
    kv: BTreeMap<&'static str, String>,
    positions_replaced: Option<Vec<Position>>,
    positions: BTreeMap<PositionKey, Option<Position>>,
    prices: HashMap<String, f64>,
    trades: Vec<Trade>,
    portfolio_curve: CurveBatch,
    pnl_curve: CurveBatch,
    daily: BTreeMap<i64, Point>,
}

impl Pending {
    fn add(&mut self, change: Change) {
        self.count += 1;
        match change {
            Change::Portfolio(p) => self.put(KV_PORTFOLIO, &p),
            Change::Reported(ReportedKind::Performance, r) => self.put(KV_PERFORMANCE, &r),
            Change::Reported(ReportedKind::DailySummary, r) => self.put(KV_DAILY_SUMMARY, &r),
            Change::Stats(s) => self.put(KV_STATS, &s),
            Change::PositionsSource(s) => self.put(KV_POSITIONS_SOURCE, &s),
            Change::Position(key, p) => {
                self.positions.insert(key, p);
            }
            Change::PositionsReplaced(list) => {
                self.positions.clear();
                self.positions_replaced = Some(list);
            }
            Change::Price(symbol, price) => {
                self.prices.insert(symbol, price);
            }
            Change::Trade(t) => {
                self.trades.push(t);
                if self.trades.len() > MAX_TRADES {
                    self.trades.remove(0);
                }
            }
            Change::Point(id, point) => self.curve(id).points.push(point),
            Change::Rewrite(id, points) => {
                let c = self.curve(id);
                c.rewrite = Some(points);
                c.points.clear();
            }
            Change::DailyClose(day, point) => {
                self.daily.insert(day, point);
            }
        }
    }

    fn put(&mut self, key: &'static str, value: &impl Serialize) {
        match serde_json::to_string(value) {
            Ok(text) => {
                self.kv.insert(key, text);
            }
            // Our own plain structs always serialize; say so loudly if one ever does not.
            Err(e) => tracing::error!(key, error = %e, "cannot encode state for saving"),
        }
    }

    fn curve(&mut self, id: CurveId) -> &mut CurveBatch {
        match id {
            CurveId::Portfolio => &mut self.portfolio_curve,
            CurveId::Pnl => &mut self.pnl_curve,
        }
    }

    fn write(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?;
            for (key, value) in &self.kv {
                stmt.execute(params![key, value])?;
            }
        }
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO positions (symbol, side, body) VALUES (?1, ?2, ?3)",
            )?;
            if let Some(list) = &self.positions_replaced {
                tx.execute("DELETE FROM positions", [])?;
                for p in list {
                    put.execute(params![p.symbol, p.side, json(p)?])?;
                }
            }
            let mut del =
                tx.prepare_cached("DELETE FROM positions WHERE symbol = ?1 AND side = ?2")?;
            for ((symbol, side), p) in &self.positions {
                match p {
                    Some(p) => put.execute(params![symbol, side, json(p)?])?,
                    None => del.execute(params![symbol, side])?,
                };
            }
        }
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR REPLACE INTO prices (symbol, price) VALUES (?1, ?2)")?;
            for (symbol, price) in &self.prices {
                stmt.execute(params![symbol, price])?;
            }
        }
        if let Some(last) = self.trades.last() {
            let mut stmt =
                tx.prepare_cached("INSERT OR REPLACE INTO trades (seq, body) VALUES (?1, ?2)")?;
            for t in &self.trades {
                stmt.execute(params![seq(t.seq), json(t)?])?;
            }
            let keep_from =
                seq(last.seq).saturating_sub(i64::try_from(MAX_TRADES).unwrap_or(i64::MAX));
            tx.execute("DELETE FROM trades WHERE seq <= ?1", [keep_from])?;
        }
        for (id, batch) in [
            (CurveId::Portfolio, &self.portfolio_curve),
            (CurveId::Pnl, &self.pnl_curve),
        ] {
            if let Some(points) = &batch.rewrite {
                tx.execute("DELETE FROM equity WHERE curve = ?1", [id.as_str()])?;
                insert_points(tx, id, points)?;
            }
            insert_points(tx, id, &batch.points)?;
        }
        if !self.daily.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO daily_close (day, time, value) VALUES (?1, ?2, ?3)",
            )?;
            for (day, p) in &self.daily {
                stmt.execute(params![day, p.time, p.value])?;
            }
            tx.execute(
                "DELETE FROM daily_close WHERE day NOT IN
                     (SELECT day FROM daily_close ORDER BY day DESC LIMIT ?1)",
                [i64::try_from(MAX_DAYS).unwrap_or(i64::MAX)],
            )?;
        }
        Ok(())
    }
}

fn insert_points(tx: &Transaction<'_>, id: CurveId, points: &[Point]) -> rusqlite::Result<()> {
    let mut stmt =
        tx.prepare_cached("INSERT INTO equity (curve, time, value) VALUES (?1, ?2, ?3)")?;
    for p in points {
        stmt.execute(params![id.as_str(), p.time, p.value])?;
    }
    Ok(())
}

fn seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn json(value: &impl Serialize) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_a_newer_router_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("ar-state-schema-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let setup = || -> rusqlite::Result<()> {
            std::fs::create_dir_all(&dir)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let conn = Connection::open(dir.join(FILE_NAME))?;
            conn.pragma_update(None, "user_version", 7)
        };
        if let Err(e) = setup() {
            panic!("setup: {e}");
        }
        let err = match open(&dir) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a schema-7 database was accepted"),
        };
        assert!(err.contains("schema version 7"), "{err}");
        assert!(
            err.contains(&dir.join(FILE_NAME).display().to_string()),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error_naming_it() {
        let file = std::env::temp_dir().join(format!("ar-state-file-{}", std::process::id()));
        if let Err(e) = std::fs::write(&file, b"not a directory") {
            panic!("setup: {e}");
        }
        let dir = file.join("state");
        let err = match open(&dir) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("opened a store under a file"),
        };
        assert!(err.contains(&dir.display().to_string()), "{err}");
        let _ = std::fs::remove_file(&file);
    }
}
