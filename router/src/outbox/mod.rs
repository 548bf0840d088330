//! The outbox: every message the router has accepted, on disk (`<storage.path>/outbox.db`,
//! SQLite in WAL mode) from before the producer hears `202` until it is delivered or
//! dead-lettered, and for a while after (`keep_delivered`, `keep_dead_letters`).
//!
//! - Ingest [`reserve`](Outbox::reserve)s room (per sink `max_queue`, the outbox's
//!   `max_messages` and `max_bytes`: a full outbox refuses, it never drops), then
//!   [`append`](Outbox::append)s the batch: its messages, its dead-on-arrival messages
//!   (render errors, sinks that did not start) and its event ids (dedup) commit together.
//!   One writer thread commits whatever has gathered in one transaction (group commit).
//! - Each sink's worker reads its messages in FIFO order through a [`Feed`] and reports
//!   each as delivered, attempted or dead; those marks are written in the next group
//!   commit. After a crash, whatever was not marked delivered is delivered again, so a
//!   repeat is limited to the marks of the last commit window.
//! - Dead letters stay in the same table with their payload, attempts and last error,
//!   until [`requeue`](Outbox::requeue)d or [`drop_dead`](Outbox::drop_dead)ped.

mod crash_signals;
mod error;
mod feed;
mod in_flight;
mod in_flight_record;
mod message;
mod store;
mod watermark;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags};

use crate::config::Storage;

use alert_router_sqlite::Writer;
pub use crash_signals::name as signal_name;
pub use error::{Full, OutboxError};
pub use feed::Feed;
pub use in_flight::{Attempt, InFlight};
pub use message::{Batch, Count, DeadLetter, NewMessage, Requeue, Selector, Stored, Tally};
use store::{Ack, Op};

/// The database file inside the storage directory.
pub const FILE_NAME: &str = "outbox.db";

/// Held while a router uses a storage directory.

#[derive(Debug, Default)]
struct Waiting {
    total: Count,
    sinks: HashMap<String, Count>,
}

/// Room taken in the outbox for one batch; given back by [`Outbox::release`] if the
/// batch is not written after all.
#[derive(Debug, Default)]
#[must_use]
pub struct Reservation {
    per_sink: Vec<(String, Count)>,
}

/// Wakes a sink's worker: new messages, a reconfiguration, a stop.
#[derive(Debug, Default)]
pub struct Signal {
    raised: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    pub fn raise(&self) {
        *lock(&self.raised) = true;
        self.cv.notify_all();
    }

    /// Waits until raised or `timeout` passes; lowers it again.
    pub fn wait(&self, timeout: Duration) {
        let mut raised = lock(&self.raised);
        if !*raised {
            raised = self
                .cv
                .wait_timeout(raised, timeout)
                .map(|(r, _)| r)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *raised = false;
    }
}

/// Tells a feed's holder to let go soon (cut its waits short).
pub type Interrupt = Arc<dyn Fn() + Send + Sync>;

/// A sink's signal, and whether a worker reads its messages (one at a time may).
#[derive(Default)]
struct SinkSlot {
    signal: Arc<Signal>,
    /// A worker holds the sink's feed, and how to hurry it.
    holder: Option<Interrupt>,
    /// Another worker waits for the feed: the holder should let go.
    wanted: bool,
}

/// How long the integrity check at start may take before the start goes on without it.
const INTEGRITY_BUDGET: Duration = Duration::from_secs(2);

/// The outbox of one storage directory.
pub struct Outbox {
    path: PathBuf,
    storage: Storage,
    writer: Writer<Op>,
    waiting: Mutex<Waiting>,
    slots: Mutex<HashMap<String, SinkSlot>>,
    slot_freed: Condvar,
    /// For listings; workers have their own.
    reader: Mutex<Connection>,
    /// Keeps other routers off this storage directory while this one runs.
    _lock: File,
}

/// What opening the outbox found besides itself.
pub struct Opened {
    pub outbox: Arc<Outbox>,
    /// Event ids seen within the dedup window, with how long ago.
    pub seen: Vec<(String, Duration)>,
    /// Noise control's alerts, held events and groups from the last run.
    pub notify: crate::notify::rows::Stored,
}

impl Outbox {
    /// Opens (creating it if needed) the outbox of `storage.path`, taking the directory's
    /// lock, and starts its writer thread. A database that lost commits since the last
    /// run (its numbering stops short of the high-water mark) is refused.
    pub fn open(storage: &Storage) -> Result<Opened, OutboxError> {
        Outbox::open_checked(storage, false)
    }

    /// Like [`Outbox::open`], but a database that lost commits is used as it is, with a
    /// warning (`run --accept-data-loss`).
    pub fn open_despite_loss(storage: &Storage) -> Result<Opened, OutboxError> {
        Outbox::open_checked(storage, true)
    }

    fn open_checked(storage: &Storage, accept_loss: bool) -> Result<Opened, OutboxError> {
        let dir = &storage.path;
        std::fs::create_dir_all(dir).map_err(|source| OutboxError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let lock = lock_dir(dir)?;
        let path = dir.join(FILE_NAME);
        let conn = store::open(&path, storage.sync).map_err(|e| match e {
            OutboxError::Open { path, source } => OutboxError::from_sqlite(path, source),
            other => other,
        })?;
        let read_error = |source| OutboxError::from_sqlite(path.clone(), source);
        if let Some(found) = store::quick_check(&conn, INTEGRITY_BUDGET).map_err(read_error)? {
            return Err(OutboxError::Damaged {
                path: path.clone(),
                found,
            });
        }
        let highest = watermark::highest(&conn).map_err(read_error)?;
        let recorded = watermark::recorded(dir).map_err(|source| OutboxError::Beside {
            path: dir.join(watermark::FILE),
            source,
        })?;
        if let Some(recorded) = recorded.filter(|&r| r > highest) {
            if !accept_loss {
                return Err(OutboxError::LostCommits {
                    path: path.clone(),
                    recorded,
                    found: highest,
                });
            }
            tracing::warn!(path = %path.display(), recorded, found = highest, "the outbox lost the messages numbered after {highest} (up to {recorded}); going on with what is there, as --accept-data-loss asks");
        }
        let mark =
            watermark::Watermark::open(dir, highest).map_err(|source| OutboxError::Beside {
                path: dir.join(watermark::FILE),
                source,
            })?;
        // Before any worker starts, and before the waiting messages are counted: what
        // was in flight when the last run ended counts, and what was delivered is marked.
        let recovered = in_flight::recover(dir, &conn).map_err(|source| OutboxError::Beside {
            path: dir.join(in_flight::DIR),
            source,
        })?;
        for line in &recovered.lines {
            tracing::error!("the last run ended inside a delivery: {line}");
        }
        for line in &recovered.delivered {
            tracing::info!("{line}");
        }
        let waiting = store::waiting(&conn).map_err(|source| OutboxError::Open {
            path: path.clone(),
            source,
        })?;
        let seen =
            store::seen(&conn, storage.dedup_window).map_err(|source| OutboxError::Open {
                path: path.clone(),
                source,
            })?;
        let notify = store::notify_state(&conn).map_err(|source| OutboxError::Open {
            path: path.clone(),
            source,
        })?;
        let reader = open_reader(&path)?;
        let writer = store::start_writer(conn, path.clone(), storage.clone(), mark)?;
        let mut total = Count::default();
        for c in waiting.values() {
            total.add(c.messages, c.bytes);
        }
        if total.messages > 0 {
            tracing::info!(
                messages = total.messages,
                "the outbox has messages from before; delivering them"
            );
        }
        let outbox = Outbox {
            path,
            storage: storage.clone(),
            writer,
            waiting: Mutex::new(Waiting {
                total,
                sinks: waiting,
            }),
            slots: Mutex::new(HashMap::new()),
            slot_freed: Condvar::new(),
            reader: Mutex::new(reader),
            _lock: lock,
        };
        Ok(Opened {
            outbox: Arc::new(outbox),
            seen,
            notify,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves everything in the write-ahead log into the database file and empties the
    /// log: done at a clean stop, so `outbox.db` alone holds the outbox (a backup that
    /// copies only it loses nothing). Readers still open (a worker left inside a hung
    /// plugin) may keep the log from being emptied: then it says so and the log stays,
    /// which SQLite replays at the next open.
    pub fn checkpoint(&self) -> Result<(), OutboxError> {
        let conn = Connection::open(&self.path).map_err(|source| OutboxError::Open {
            path: self.path.clone(),
            source,
        })?;
        let write_error = |e: rusqlite::Error| OutboxError::Write {
            path: self.path.clone(),
            message: e.to_string(),
        };
        conn.busy_timeout(Duration::from_secs(1))
            .map_err(write_error)?;
        // (busy, log frames, frames checkpointed): busy means readers held it back.
        let (busy, _, _): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(write_error)?;
        if busy != 0 {
            return Err(OutboxError::Write {
                path: self.path.clone(),
                message: "the write-ahead log is still in use; it stays beside the database and is replayed at the next start".to_owned(),
            });
        }
        Ok(())
    }

    /// The record of `sink`'s attempt in flight, for its worker.
    pub fn in_flight(&self, sink: &str) -> Result<Arc<InFlight>, OutboxError> {
        InFlight::open(&self.storage.path, sink)
            .map(Arc::new)
            .map_err(|source| OutboxError::Beside {
                path: self.storage.path.join(in_flight::DIR).join(sink),
                source,
            })
    }

    /// Takes room for `per_sink` (sink → messages, bytes, the sink's `max_queue`), or
    /// says what is full. All or nothing.
    pub fn reserve(&self, per_sink: &[(String, Count, u64)]) -> Result<Reservation, Full> {
        let mut w = lock(&self.waiting);
        let mut all = Count::default();
        for (sink, add, max) in per_sink {
            all.add(add.messages, add.bytes);
            let now = w.sinks.get(sink).copied().unwrap_or_default();
            if add.messages > 0 && now.messages + add.messages > *max {
                return Err(Full::Sink {
                    sink: sink.clone(),
                    waiting: now.messages,
                    max: *max,
                });
            }
        }
        if all.messages > 0 && w.total.messages + all.messages > self.storage.max_messages {
            return Err(Full::Messages {
                waiting: w.total.messages,
                max: self.storage.max_messages,
            });
        }
        if all.bytes > 0 && w.total.bytes + all.bytes > self.storage.max_bytes {
            return Err(Full::Bytes {
                waiting: w.total.bytes,
                max: self.storage.max_bytes,
            });
        }
        w.total.add(all.messages, all.bytes);
        for (sink, add, _) in per_sink {
            w.sinks
                .entry(sink.clone())
                .or_default()
                .add(add.messages, add.bytes);
        }
        Ok(Reservation {
            per_sink: per_sink.iter().map(|(s, c, _)| (s.clone(), *c)).collect(),
        })
    }

    /// Gives back room that will not be used.
    pub fn release(&self, reservation: Reservation) {
        let mut w = lock(&self.waiting);
        for (sink, c) in reservation.per_sink {
            w.total.sub(c.messages, c.bytes);
            if let Some(s) = w.sinks.get_mut(&sink) {
                s.sub(c.messages, c.bytes);
            }
        }
    }

    /// Writes `batch` and waits until it is committed. Blocking.
    pub fn append_blocking(&self, batch: Batch) -> Result<(), OutboxError> {
        let sinks = waking(&batch);
        self.ask(|ack| Op::Append(Box::new(batch), Ack::Blocking(ack)))?;
        self.wake(&sinks);
        Ok(())
    }

    /// Writes `batch` and waits until it is committed.
    pub async fn append(&self, batch: Batch) -> Result<(), OutboxError> {
        let sinks = waking(&batch);
        let (ack, answer) = tokio::sync::oneshot::channel();
        self.writer
            .send(Op::Append(Box::new(batch), Ack::Async(ack)))
            .map_err(|_| self.gone())?;
        answer
            .await
            .map_err(|_| self.gone())?
            .map_err(|message| self.write_error(message))?;
        self.wake(&sinks);
        Ok(())
    }

    /// Sends the writer an op that answers, and waits for the answer.
    fn ask<T>(
        &self,
        op: impl FnOnce(SyncSender<Result<T, String>>) -> Op,
    ) -> Result<T, OutboxError> {
        let (tx, answer) = std::sync::mpsc::sync_channel(1);
        self.writer.send(op(tx)).map_err(|_| self.gone())?;
        answer
            .recv()
            .map_err(|_| self.gone())?
            .map_err(|message| self.write_error(message))
    }

    fn write_error(&self, message: String) -> OutboxError {
        OutboxError::Write {
            path: self.path.clone(),
            message,
        }
    }

    /// Wakes the workers of `sinks`: they have new messages.
    fn wake<'a>(&self, sinks: impl IntoIterator<Item = &'a String>) {
        let slots = lock(&self.slots);
        for sink in sinks {
            if let Some(slot) = slots.get(sink) {
                slot.signal.raise();
            }
        }
    }

    fn gone(&self) -> OutboxError {
        OutboxError::WriterGone {
            path: self.path.clone(),
        }
    }

    /// Waits until every mark sent so far is committed.
    pub fn flush(&self) -> Result<(), OutboxError> {
        self.ask(|ack| Op::Flush(Ack::Blocking(ack)))
    }

    /// Opens the feed of `sink`'s messages for its worker. Waits while another worker
    /// (one of a sink being removed) still holds it, interrupting that one so it lets
    /// go after its current attempt; gives up when `give_up` says so. `interrupt` is how
    /// a later worker will hurry this one.
    pub fn feed(
        self: &Arc<Self>,
        sink: &str,
        give_up: &dyn Fn() -> bool,
        interrupt: Interrupt,
    ) -> Result<Option<Feed>, OutboxError> {
        let mut slots = lock(&self.slots);
        loop {
            let slot = slots.entry(sink.to_owned()).or_default();
            let Some(holder) = slot.holder.clone() else {
                slot.holder = Some(interrupt);
                slot.wanted = false;
                let signal = slot.signal.clone();
                drop(slots);
                return Feed::open(self.clone(), sink, signal).map(Some);
            };
            if give_up() {
                return Ok(None);
            }
            slot.wanted = true;
            slot.signal.raise();
            drop(slots);
            holder();
            slots = lock(&self.slots);
            if slots.get(sink).is_some_and(|s| s.holder.is_none()) {
                continue; // let go while we were not looking
            }
            slots = self
                .slot_freed
                .wait_timeout(slots, Duration::from_millis(100))
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// The signal that wakes `sink`'s worker.
    pub fn signal(&self, sink: &str) -> Arc<Signal> {
        lock(&self.slots)
            .entry(sink.to_owned())
            .or_default()
            .signal
            .clone()
    }

    /// Another worker waits for `sink`'s feed.
    fn feed_wanted(&self, sink: &str) -> bool {
        lock(&self.slots).get(sink).is_some_and(|s| s.wanted)
    }

    fn feed_closed(&self, sink: &str) {
        if let Some(slot) = lock(&self.slots).get_mut(sink) {
            slot.holder = None;
        }
        self.slot_freed.notify_all();
    }

    /// A message is finished with (delivered or dead): it no longer takes room.
    fn finished(&self, sink: &str, bytes: u64) {
        let mut w = lock(&self.waiting);
        w.total.sub(1, bytes);
        if let Some(s) = w.sinks.get_mut(sink) {
            s.sub(1, bytes);
        }
    }

    fn mark(&self, op: Op) {
        if self.writer.send(op).is_err() {
            tracing::error!(path = %self.path.display(), "the outbox writer has stopped; a delivery mark was not saved");
        }
    }

    /// Messages waiting for `sink`.
    pub fn waiting(&self, sink: &str) -> Count {
        lock(&self.waiting)
            .sinks
            .get(sink)
            .copied()
            .unwrap_or_default()
    }

    /// Messages waiting, all sinks together, and per sink.
    pub fn waiting_all(&self) -> (Count, Vec<(String, Count)>) {
        let w = lock(&self.waiting);
        let mut per: Vec<(String, Count)> = w
            .sinks
            .iter()
            .filter(|(_, c)| c.messages > 0)
            .map(|(s, c)| (s.clone(), *c))
            .collect();
        per.sort();
        (w.total, per)
    }

    /// Dead letters per sink.
    pub fn dead_counts(&self) -> Result<HashMap<String, u64>, OutboxError> {
        let conn = lock(&self.reader);
        store::dead_counts(&conn).map_err(|source| self.read_error(source))
    }

    /// Dead letters, newest first: those `selector` picks, at most `limit`.
    pub fn dead_letters(
        &self,
        selector: &Selector,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        let conn = lock(&self.reader);
        store::dead_letters(&conn, selector, limit).map_err(|source| self.read_error(source))
    }

    /// The last `limit` messages delivered to `sink`, oldest first: those retention
    /// (`storage.keep_delivered`) still keeps.
    pub fn delivered(&self, sink: &str, limit: usize) -> Result<Vec<Stored>, OutboxError> {
        let conn = lock(&self.reader);
        store::delivered(&conn, sink, limit).map_err(|source| self.read_error(source))
    }

    fn read_error(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Read {
            path: self.path.clone(),
            source,
        }
    }

    /// Puts dead letters back at the end of their sinks' queues (each as a new message
    /// with no attempts), then wakes the workers. Returns how many went back.
    pub fn requeue(&self, letters: Vec<Requeue>) -> Result<usize, OutboxError> {
        let (ack, answer) = std::sync::mpsc::sync_channel(1);
        self.writer
            .send(Op::Requeue(letters, ack))
            .map_err(|_| self.gone())?;
        let back =
            answer
                .recv()
                .map_err(|_| self.gone())?
                .map_err(|message| OutboxError::Write {
                    path: self.path.clone(),
                    message,
                })?;
        let mut n = 0;
        {
            let mut w = lock(&self.waiting);
            for (sink, bytes) in &back {
                w.total.add(1, *bytes);
                w.sinks.entry(sink.clone()).or_default().add(1, *bytes);
                n += 1;
            }
        }
        let slots = lock(&self.slots);
        for (sink, _) in &back {
            if let Some(slot) = slots.get(sink) {
                slot.signal.raise();
            }
        }
        Ok(n)
    }

    /// Deletes the dead letters `selector` picks. Returns how many.
    pub fn drop_dead(&self, selector: Selector) -> Result<usize, OutboxError> {
        self.ask(|answer| Op::Drop(selector, answer))
    }
}

/// The sinks a batch gives work to.
fn waking(batch: &Batch) -> Vec<String> {
    let mut sinks: Vec<String> = batch
        .messages
        .iter()
        .filter(|m| m.error.is_none())
        .map(|m| m.sink.clone())
        .collect();
    sinks.sort();
    sinks.dedup();
    sinks
}

fn lock_dir(dir: &Path) -> Result<File, OutboxError> {
    // The lock is on the directory itself, not on a file in it: a lock file can be
    // deleted (and a second router would then lock a new one), a directory holding the
    // outbox cannot be. flock(2), held for the life of the process and released by the
    // kernel however the process ends.
    let file = File::open(dir).map_err(|source| OutboxError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OutboxError::Locked {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(OutboxError::CreateDir {
            path: dir.to_owned(),
            source,
        }),
    }
}

fn open_reader(path: &Path) -> Result<Connection, OutboxError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| OutboxError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|source| OutboxError::Open {
            path: path.to_owned(),
            source,
        })?;
    Ok(conn)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Poisoning only means another thread panicked while holding the lock; the counts stay
/// usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
