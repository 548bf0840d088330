//! The outbox database: its schema, the reads done at start and for listings, and what
//! its writer thread writes. Every write goes through that one thread
//! ([`alert_router_sqlite::Writer`]), which commits whatever has gathered since its last
//! commit in one transaction (group commit): under load many requests share one commit,
//! and its fsync.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use super::watermark::{self, Watermark};
use super::{Batch, Count, DeadLetter, OutboxError, Requeue, Selector, Tally, now_ms};
use crate::config::{Storage, SyncMode};
use crate::derive::eval::SeriesRow;
use crate::event::format_time;
use crate::notify::rows::{AlertRow, Changes, GroupRow, HeldRow, Stored};
use alert_router_sqlite::{self as sqlite, Writer};

/// The schema this code writes; a database of a newer one is refused, not guessed at, and
/// one of an older one is upgraded by [`UPGRADES`].
const SCHEMA_VERSION: i64 = 3;

/// From version 1: a message's attempts that ended in a crash. From version 2: noise
/// control's tables (created by [`SCHEMA`]; the version tells an older router that this
/// database holds state it would not see).
const UPGRADES: [&str; 2] = [
    "ALTER TABLE messages ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;",
    NOTIFY_SCHEMA,
];

/// Alerts, events held for a group or a time window, groups' timers (`notify/rows.rs`),
/// and alert rules' series (`derive/eval.rs`).
const NOTIFY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    starts INTEGER NOT NULL,
    ends INTEGER,
    updated INTEGER NOT NULL,
    count INTEGER NOT NULL,
    resolve_timeout INTEGER NOT NULL,
    route TEXT NOT NULL,
    event TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held (
    id INTEGER PRIMARY KEY,
    route TEXT NOT NULL,
    group_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    event TEXT NOT NULL,
    at INTEGER NOT NULL,
    notified INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS series (
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    definition TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (rule, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_runs (
    name TEXT PRIMARY KEY,
    last INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
    route TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (route, group_key)
) WITHOUT ROWID;
";

/// `state`: waiting for delivery, delivered, dead.
const WAITING: i64 = 0;
const DELIVERED: i64 = 1;
const DEAD: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    route TEXT NOT NULL,
    template TEXT NOT NULL,
    payload TEXT,
    event TEXT NOT NULL,
    created INTEGER NOT NULL,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    finished INTEGER
);
CREATE INDEX IF NOT EXISTS waiting ON messages (sink, seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS delivered ON messages (finished) WHERE state = 1;
CREATE INDEX IF NOT EXISTS dead ON messages (sink, seq) WHERE state = 2;
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
";

/// Everything [`open`] creates.
fn schema() -> String {
    format!("{SCHEMA}{NOTIFY_SCHEMA}")
}

/// Operations gathered in one commit at most; more wait for the next.
const MAX_OPS: usize = 4096;

/// How often delivered messages, old dead letters and old event ids are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Rows deleted per prune statement, so pruning never holds the writer for long.
const PRUNE_CHUNK: i64 = 20_000;

/// How one commit's result reaches whoever waits for it.
pub(super) enum Ack {
    Blocking(SyncSender<Result<(), String>>),
    Async(tokio::sync::oneshot::Sender<Result<(), String>>),
}

impl Ack {
    fn send(self, result: Result<(), String>) {
        match self {
            Ack::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Ack::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// One write for the writer thread.
pub(super) enum Op {
    Append(Box<Batch>, Ack),
    Delivered {
        seq: i64,
        attempts: u32,
        at: i64,
    },
    Attempted {
        seq: i64,
        tally: Tally,
        error: String,
    },
    Dead {
        seq: i64,
        tally: Tally,
        error: String,
        at: i64,
    },
    /// Answers with the (sink, bytes) of each letter put back.
    Requeue(Vec<Requeue>, SyncSender<Result<Vec<(String, u64)>, String>>),
    Drop(Selector, SyncSender<Result<usize, String>>),
    Flush(Ack),
}

/// Opens the database read-write, in WAL mode, with the schema in place.
pub(super) fn open(path: &Path, sync: SyncMode) -> Result<Connection, OutboxError> {
    sqlite::open(path, sync.pragma(), &schema(), SCHEMA_VERSION, &UPGRADES).map_err(|e| match e {
        sqlite::OpenError::Sqlite(source) => OutboxError::Open {
            path: path.to_owned(),
            source,
        },
        sqlite::OpenError::Schema { found, known } => OutboxError::Schema {
            path: path.to_owned(),
            found,
            known,
        },
    })
}

/// What SQLite's `quick_check` found wrong with the database, if anything; `Ok(None)`
/// too when it did not finish within `budget` (a very large outbox: the start is not
/// held up for it, and says so).
pub(super) fn quick_check(conn: &Connection, budget: Duration) -> rusqlite::Result<Option<String>> {
    let interrupt = conn.get_interrupt_handle();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(budget) {
            interrupt.interrupt();
        }
    });
    let found: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(0))?.collect());
    drop(done);
    let _ = timer.join();
    match found {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(None),
        Ok(lines) => Ok(Some(lines.join("; "))),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                "the outbox's integrity check did not finish in time; starting without it"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Messages and bytes waiting, per sink.
pub(super) fn waiting(conn: &Connection) -> rusqlite::Result<HashMap<String, Count>> {
    let mut stmt = conn.prepare(
        "SELECT sink, count(*), coalesce(sum(length(payload) + length(event)), 0)
         FROM messages WHERE state = 0 GROUP BY sink",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            Count {
                messages: row.get::<_, i64>(1)?.max(0) as u64,
                bytes: row.get::<_, i64>(2)?.max(0) as u64,
            },
        ))
    })?;
    rows.collect()
}

/// Event ids seen within `window`, with their age.
pub(super) fn seen(
    conn: &Connection,
    window: Duration,
) -> rusqlite::Result<Vec<(String, Duration)>> {
    let now = now_ms();
    let since = now - window.as_millis() as i64;
    let mut stmt = conn.prepare("SELECT id, at FROM seen WHERE at >= ?1 ORDER BY at")?;
    let rows = stmt.query_map([since], |row| {
        let at: i64 = row.get(1)?;
        Ok((
            row.get::<_, String>(0)?,
            Duration::from_millis((now - at).max(0) as u64),
        ))
    })?;
    rows.collect()
}

pub(super) fn dead_counts(conn: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    let mut stmt =
        conn.prepare_cached("SELECT sink, count(*) FROM messages WHERE state = 2 GROUP BY sink")?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?.max(0) as u64,
        ))
    })?;
    rows.collect()
}

/// The last `limit` messages delivered to `sink` that retention still keeps, oldest first.
pub(super) fn delivered(
    conn: &Connection,
    sink: &str,
    limit: usize,
) -> rusqlite::Result<Vec<super::Stored>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, event_id, event_type, coalesce(payload, 'null'), event, created,
                attempts, failures, crashes, error
         FROM messages WHERE sink = ?1 AND state = 1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![sink, limit], super::Stored::from_row)?;
    let mut newest_first = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    newest_first.reverse();
    Ok(newest_first)
}

pub(super) fn dead_letters(
    conn: &Connection,
    selector: &Selector,
    limit: usize,
) -> rusqlite::Result<Vec<DeadLetter>> {
    let (condition, values) = selector.condition();
    let limit = limit.min(i64::MAX as usize);
    let sql = format!(
        "SELECT seq, sink, id, event_id, event_type, route, template, attempts,
                coalesce(error, ''), coalesce(finished, created), payload, event
         FROM messages WHERE state = 2{condition}
         ORDER BY seq DESC LIMIT {limit}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), |row| {
        let finished: i64 = row.get(9)?;
        let payload_text: Option<String> = row.get(10)?;
        let event_text: String = row.get(11)?;
        Ok(DeadLetter {
            seq: row.get(0)?,
            sink: row.get(1)?,
            id: row.get(2)?,
            event_id: row.get(3)?,
            event_type: row.get(4)?,
            route: row.get(5)?,
            template: row.get(6)?,
            attempts: row.get::<_, i64>(7)?.max(0) as u32,
            error: row.get(8)?,
            time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(finished) * 1_000_000)
                .map(format_time)
                .unwrap_or_default(),
            payload: payload_text
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            event: serde_json::from_str(&event_text).unwrap_or(serde_json::Value::Null),
            event_text,
            payload_text,
        })
    })?;
    rows.collect()
}

/// Starts the outbox's writer thread: every write goes through it, in group commits.
pub(super) fn start_writer(
    conn: Connection,
    path: PathBuf,
    storage: Storage,
    watermark: Watermark,
) -> Result<Writer<Op>, OutboxError> {
    let options = sqlite::Options {
        name: "outbox-writer",
        path: path.clone(),
        // Bounded: when the disk falls behind, producers and workers wait for it.
        queue: MAX_OPS * 4,
        max_ops: MAX_OPS,
        // No window: a producer waits for its commit, so each commit takes what has
        // gathered while the last one ran, and no more.
        window: Duration::ZERO,
        tick: Some(PRUNE_EVERY),
    };
    let job = OutboxCommit {
        storage,
        watermark,
        highest: 0,
    };
    Writer::start(conn, job, options).map_err(|e| OutboxError::Write {
        path,
        message: format!("cannot start the writer thread: {e}"),
    })
}

/// What a commit owes its callers once it is done.
enum Reply {
    Ack(Ack, Result<(), String>),
    Requeued(
        SyncSender<Result<Vec<(String, u64)>, String>>,
        Vec<(String, u64)>,
    ),
    Dropped(SyncSender<Result<usize, String>>, usize),
}

impl Reply {
    /// Answers with what the op did, or with `failed` when its commit failed.
    fn send(self, failed: Option<&str>) {
        fn answer<T>(tx: SyncSender<Result<T, String>>, done: T, failed: Option<&str>) {
            let _ = tx.send(failed.map_or(Ok(done), |m| Err(m.to_owned())));
        }
        match self {
            Reply::Ack(ack, result) => ack.send(failed.map_or(result, |m| Err(m.to_owned()))),
            Reply::Requeued(tx, back) => answer(tx, back, failed),
            Reply::Dropped(tx, n) => answer(tx, n, failed),
        }
    }
}

/// The outbox's writes: appends answered once durable, each in its own savepoint;
/// delivery marks riding along; requeues and drops answered with what they did.
struct OutboxCommit {
    storage: Storage,
    /// Raised after every commit, to what the database has numbered so far.
    watermark: Watermark,
    /// The highest message number within the commit being made.
    highest: i64,
}

impl sqlite::Commit for OutboxCommit {
    type Op = Op;
    type Reply = Reply;

    fn write(
        &mut self,
        tx: &mut Transaction<'_>,
        ops: Vec<Op>,
        replies: &mut Vec<Reply>,
    ) -> rusqlite::Result<()> {
        for op in ops {
            apply(tx, op, replies)?;
        }
        self.highest = watermark::highest(tx)?;
        Ok(())
    }

    /// A failed commit fails every append, requeue and drop in it.
    fn done(&mut self, outcome: Result<(), &rusqlite::Error>, replies: Vec<Reply>) {
        if outcome.is_ok() {
            self.watermark.record(self.highest);
        }
        let failed = outcome.err().map(|e| format!("the commit failed: {e}"));
        for reply in replies {
            reply.send(failed.as_deref());
        }
    }

    fn tick(&mut self, conn: &mut Connection) {
        if let Err(e) = prune(conn, &self.storage) {
            tracing::error!(error = %e, "pruning the outbox failed; will try again");
        }
    }
}

/// Applies one op inside the group's transaction. Errors of an op's own are answered
/// to its caller; only a failure of the transaction itself is returned.
fn apply(tx: &mut Transaction<'_>, op: Op, replies: &mut Vec<Reply>) -> rusqlite::Result<()> {
    match op {
        Op::Append(batch, ack) => {
            let sp = tx.savepoint()?;
            match append(&sp, &batch) {
                Ok(()) => {
                    sp.commit()?;
                    replies.push(Reply::Ack(ack, Ok(())));
                }
                Err(e) => {
                    drop(sp); // rolls back this batch only
                    replies.push(Reply::Ack(
                        ack,
                        Err(format!("the batch was not written: {e}")),
                    ));
                }
            }
        }
        Op::Delivered { seq, attempts, at } => {
            tx.prepare_cached(
                "UPDATE messages SET state = ?4, attempts = ?2, finished = ?3, error = NULL
                 WHERE seq = ?1 AND state = 0",
            )?
            .execute(params![seq, attempts, at, DELIVERED])?;
        }
        Op::Attempted { seq, tally, error } => attempted(tx, seq, tally, &error)?,
        Op::Dead {
            seq,
            tally,
            error,
            at,
        } => {
            tx.prepare_cached(
                "UPDATE messages SET state = 2, attempts = ?2, failures = ?3, crashes = ?4,
                 error = ?5, finished = ?6 WHERE seq = ?1 AND state = 0",
            )?
            .execute(params![
                seq,
                tally.attempts,
                tally.failures,
                tally.crashes,
                error,
                at
            ])?;
        }
        Op::Requeue(letters, answer) => {
            let sp = tx.savepoint()?;
            match requeue(&sp, letters) {
                Ok(back) => {
                    sp.commit()?;
                    replies.push(Reply::Requeued(answer, back));
                }
                Err(e) => {
                    drop(sp);
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
        Op::Drop(selector, answer) => {
            let (condition, values) = selector.condition();
            let sql = format!("DELETE FROM messages WHERE state = 2{condition}");
            match tx.execute(&sql, params_from_iter(values)) {
                Ok(n) => replies.push(Reply::Dropped(answer, n)),
                Err(e) => {
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
        Op::Flush(ack) => replies.push(Reply::Ack(ack, Ok(()))),
    }
    Ok(())
}

/// Records how a waiting message's attempts went so far.
pub(super) fn attempted(
    conn: &Connection,
    seq: i64,
    tally: Tally,
    error: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE messages SET attempts = ?2, failures = ?3, crashes = ?4, error = ?5
         WHERE seq = ?1 AND state = 0",
    )?
    .execute(params![
        seq,
        tally.attempts,
        tally.failures,
        tally.crashes,
        error
    ])?;
    Ok(())
}

fn append(tx: &Connection, batch: &Batch) -> rusqlite::Result<()> {
    let now = now_ms();
    let mut insert = tx.prepare_cached(
        "INSERT INTO messages (sink, id, event_id, event_type, route, template, payload, event,
                               created, state, error, finished)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for m in &batch.messages {
        let (state, finished) = match m.error {
            None => (WAITING, None),
            Some(_) => (DEAD, Some(now)),
        };
        insert.execute(params![
            m.sink,
            m.id,
            m.event_id,
            m.event_type,
            m.route,
            m.template,
            m.payload.as_deref(),
            &*m.event,
            now,
            state,
            m.error,
            finished,
        ])?;
    }
    let mut seen = tx.prepare_cached("INSERT OR REPLACE INTO seen (id, at) VALUES (?1, ?2)")?;
    for id in &batch.seen {
        seen.execute(params![id, now])?;
    }
    if !batch.notify.is_empty() {
        write_notify(tx, &batch.notify)?;
    }
    Ok(())
}

/// Noise control's part of a batch.
fn write_notify(tx: &Connection, c: &Changes) -> rusqlite::Result<()> {
    let mut alert = tx.prepare_cached(
        "INSERT INTO alerts (fingerprint, version, status, starts, ends, updated, count,
                             resolve_timeout, route, event)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (fingerprint) DO UPDATE SET version = excluded.version,
             status = excluded.status, starts = excluded.starts, ends = excluded.ends,
             updated = excluded.updated, count = excluded.count,
             resolve_timeout = excluded.resolve_timeout, route = excluded.route,
             event = excluded.event
         WHERE excluded.version > alerts.version",
    )?;
    for a in &c.alerts {
        alert.execute(params![
            a.fingerprint,
            a.version,
            a.status,
            a.starts_ms,
            a.ends_ms,
            a.updated_ms,
            a.count as i64,
            a.resolve_timeout_ms,
            a.route,
            &*a.event
        ])?;
    }
    let mut gone = tx.prepare_cached("DELETE FROM alerts WHERE fingerprint = ?1")?;
    for fp in &c.alerts_gone {
        gone.execute([fp])?;
    }
    let mut held = tx.prepare_cached(
        "INSERT INTO held (id, route, group_key, fingerprint, status, event, at, notified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for h in &c.held {
        held.execute(params![
            h.id,
            h.route,
            h.group_key,
            h.fingerprint,
            h.status,
            &*h.event,
            h.at_ms,
            h.notified
        ])?;
    }
    let mut release = tx.prepare_cached("DELETE FROM held WHERE id = ?1")?;
    for id in &c.released {
        release.execute([id])?;
    }
    let mut notified = tx.prepare_cached("UPDATE held SET notified = 1 WHERE id = ?1")?;
    for id in &c.notified {
        notified.execute([id])?;
    }
    let mut group = tx.prepare_cached(
        "INSERT OR REPLACE INTO groups (route, group_key, state) VALUES (?1, ?2, ?3)",
    )?;
    for g in &c.groups {
        let state = serde_json::to_string(&g.state)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        group.execute(params![g.route, g.group_key, state])?;
    }
    let mut group_gone =
        tx.prepare_cached("DELETE FROM groups WHERE route = ?1 AND group_key = ?2")?;
    for (route, key) in &c.groups_gone {
        group_gone.execute([route, key])?;
    }
    let mut run = tx.prepare_cached(
        "INSERT INTO schedule_runs (name, last) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET last = max(last, excluded.last)",
    )?;
    for (name, last) in &c.schedule_runs {
        run.execute(params![name, last])?;
    }
    let mut series = tx.prepare_cached(
        "INSERT OR REPLACE INTO series (rule, key, definition, state) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut series_gone = tx.prepare_cached("DELETE FROM series WHERE rule = ?1 AND key = ?2")?;
    for row in &c.series {
        match &row.state {
            Some(state) => {
                let state = serde_json::to_string(state)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                series.execute(params![row.rule, row.key, row.definition, state])?;
            }
            None => {
                series_gone.execute([&row.rule, &row.key])?;
            }
        }
    }
    Ok(())
}

/// What noise control left in the database (read once, at start). A group whose state
/// no longer reads is skipped: its held events form a new group.
pub(super) fn notify_state(conn: &Connection) -> rusqlite::Result<Stored> {
    let alerts = conn
        .prepare(
            "SELECT fingerprint, version, status, starts, ends, updated, count, resolve_timeout,
                    route, event FROM alerts",
        )?
        .query_map([], |row| {
            Ok(AlertRow {
                fingerprint: row.get(0)?,
                version: row.get(1)?,
                status: row.get(2)?,
                starts_ms: row.get(3)?,
                ends_ms: row.get(4)?,
                updated_ms: row.get(5)?,
                count: row.get::<_, i64>(6)?.max(0) as u64,
                resolve_timeout_ms: row.get(7)?,
                route: row.get(8)?,
                event: row.get::<_, String>(9)?.into(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let held = conn
        .prepare(
            "SELECT id, route, group_key, fingerprint, status, event, at, notified
             FROM held ORDER BY id",
        )?
        .query_map([], |row| {
            Ok(HeldRow {
                id: row.get(0)?,
                route: row.get(1)?,
                group_key: row.get(2)?,
                fingerprint: row.get(3)?,
                status: row.get(4)?,
                event: row.get::<_, String>(5)?.into(),
                at_ms: row.get(6)?,
                notified: row.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut groups = Vec::new();
    let mut stmt = conn.prepare("SELECT route, group_key, state FROM groups")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (route, group_key, state): (String, String, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?);
        match serde_json::from_str(&state) {
            Ok(state) => groups.push(GroupRow {
                route,
                group_key,
                state,
            }),
            Err(e) => {
                tracing::warn!(%route, %group_key, error = %e, "a stored group's timers do not read; its events form a new group")
            }
        }
    }
    let mut series = Vec::new();
    let mut stmt = conn.prepare("SELECT rule, key, definition, state FROM series")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (rule, key, definition, state): (String, String, String, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        match serde_json::from_str(&state) {
            Ok(state) => series.push(SeriesRow {
                rule,
                key,
                definition,
                state: Some(state),
            }),
            Err(e) => {
                tracing::warn!(%rule, %key, error = %e, "a stored alert rule series does not read; it starts fresh")
            }
        }
    }
    let schedule_runs = conn
        .prepare("SELECT name, last FROM schedule_runs")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(String, i64)>>>()?;
    Ok(Stored {
        alerts,
        held,
        groups,
        series,
        schedule_runs,
    })
}

/// Copies each dead letter back as a new waiting message (at the end of the queue) and
/// deletes the letter. A letter gone meanwhile (dropped, retried) is skipped.
fn requeue(tx: &Connection, letters: Vec<Requeue>) -> rusqlite::Result<Vec<(String, u64)>> {
    let now = now_ms();
    let mut back = Vec::new();
    for letter in letters {
        let row: Option<(String, Option<String>, i64)> = tx
            .prepare_cached(
                "SELECT sink, payload, length(event) FROM messages WHERE seq = ?1 AND state = 2",
            )?
            .query_row([letter.seq], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let Some((sink, old_payload, event_len)) = row else {
            continue;
        };
        let Some(payload) = letter.payload.or(old_payload) else {
            continue; // never rendered, and not rendered now: it stays dead
        };
        tx.prepare_cached(
            "INSERT INTO messages (sink, id, event_id, event_type, route, template, payload,
                                   event, created, state)
             SELECT sink, id, event_id, event_type, route, template, ?2, event, ?3, 0
             FROM messages WHERE seq = ?1",
        )?
        .execute(params![letter.seq, payload, now])?;
        tx.prepare_cached("DELETE FROM messages WHERE seq = ?1")?
            .execute([letter.seq])?;
        back.push((sink, (payload.len() as i64 + event_len).max(0) as u64));
    }
    Ok(back)
}

/// Deletes delivered messages older than `keep_delivered`, dead letters older than
/// `keep_dead_letters` and event ids older than the dedup window, a chunk at a time.
fn prune(conn: &mut Connection, storage: &Storage) -> rusqlite::Result<()> {
    let now = now_ms();
    let before = |keep: Duration| now - keep.as_millis().min(i64::MAX as u128) as i64;
    let statements = [
        (
            "DELETE FROM messages WHERE seq IN
             (SELECT seq FROM messages WHERE state = 1 AND finished < ?1 LIMIT ?2)",
            before(storage.keep_delivered),
        ),
        (
            "DELETE FROM messages WHERE seq IN
             (SELECT seq FROM messages WHERE state = 2 AND finished < ?1 LIMIT ?2)",
            before(storage.keep_dead_letters),
        ),
        (
            "DELETE FROM seen WHERE id IN (SELECT id FROM seen WHERE at < ?1 LIMIT ?2)",
            before(storage.dedup_window),
        ),
    ];
    for (sql, cutoff) in statements {
        // A few chunks per pass: enough to keep up, short enough not to stall appends.
        for _ in 0..5 {
            let n = conn
                .prepare_cached(sql)?
                .execute(params![cutoff, PRUNE_CHUNK])?;
            if (n as i64) < PRUNE_CHUNK {
                break;
            }
        }
    }
    Ok(())
}
