//! A sink's view of the outbox: its waiting messages in FIFO order, read a page at a
//! time through the worker's own read connection (memory stays flat however many wait),
//! and the marks the worker sets on each. One feed per sink at a time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::store::Op;
use super::{Outbox, OutboxError, Signal, Stored, Tally, now_ms, open_reader};

/// Messages read from the database at a time.
const PAGE: i64 = 256;

/// A sink's waiting messages, for its worker.
pub struct Feed {
    outbox: Arc<Outbox>,
    sink: String,
    conn: Connection,
    /// The last seq read: later pages start after it, so a message delivered but not yet
    /// marked in the database is not read again.
    cursor: i64,
    page: VecDeque<Stored>,
    signal: Arc<Signal>,
}

impl Feed {
    pub(super) fn open(
        outbox: Arc<Outbox>,
        sink: &str,
        signal: Arc<Signal>,
    ) -> Result<Feed, OutboxError> {
        let conn = open_reader(outbox.path())?;
        Ok(Feed {
            outbox,
            sink: sink.to_owned(),
            conn,
            cursor: 0,
            page: VecDeque::new(),
            signal,
        })
    }

    /// The oldest waiting message, waiting up to `wait` for one to arrive (or for the
    /// signal). It stays the head until marked delivered or dead.
    pub fn head(&mut self, wait: Duration) -> Option<Stored> {
        if self.page.is_empty() {
            self.read_page();
            if self.page.is_empty() {
                self.signal.wait(wait);
                self.read_page();
            }
        }
        self.page.front().cloned()
    }

    /// Whether any message waits (read from the database if none is in hand).
    pub fn is_empty(&mut self) -> bool {
        if self.page.is_empty() {
            self.read_page();
        }
        self.page.is_empty()
    }

    fn read_page(&mut self) {
        match self.read() {
            Ok(page) => {
                if let Some(last) = page.back() {
                    self.cursor = last.seq;
                }
                self.page = page;
            }
            Err(e) => {
                tracing::error!(sink = %self.sink, path = %self.outbox.path().display(), error = %e, "cannot read the outbox; will try again");
            }
        }
    }

    fn read(&self) -> rusqlite::Result<VecDeque<Stored>> {
        // `state = 0` (WAITING) is written out, not bound: with a parameter there, SQLite
        // cannot know at prepare time whether the partial index applies, and parses and
        // plans the statement again on every read.
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, id, event_id, event_type, coalesce(payload, 'null'), event, created,
                    attempts, failures, crashes, error
             FROM messages WHERE sink = ?1 AND state = 0 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![self.sink, self.cursor, PAGE], Stored::from_row)?;
        rows.collect()
    }

    /// The head was delivered after `attempts` attempts in all.
    pub fn delivered(&mut self, attempts: u32) {
        if let Some(m) = self.page.pop_front() {
            self.outbox.finished(&self.sink, m.bytes());
            self.outbox.mark(Op::Delivered {
                seq: m.seq,
                attempts,
                at: now_ms(),
            });
        }
    }

    /// An attempt at the head failed and it will be tried again.
    pub fn attempted(&mut self, tally: Tally, error: &str) {
        if let Some(m) = self.page.front() {
            self.outbox.mark(Op::Attempted {
                seq: m.seq,
                tally,
                error: error.to_owned(),
            });
        }
    }

    /// The head will not be delivered: it becomes a dead letter. Returns once the letter
    /// is committed, so it is listed as soon as it is counted (dead letters are rare).
    pub fn dead(&mut self, tally: Tally, error: String) {
        if let Some(m) = self.page.pop_front() {
            self.outbox.finished(&self.sink, m.bytes());
            self.outbox.mark(Op::Dead {
                seq: m.seq,
                tally,
                error,
                at: now_ms(),
            });
            if let Err(e) = self.outbox.flush() {
                tracing::error!(sink = %self.sink, error = %e, "a dead letter was not saved; the message will be tried again");
            }
        }
    }

    /// Another worker for the same sink (it was removed and added back) waits for this
    /// feed: the holder should stop.
    pub fn wanted(&self) -> bool {
        self.outbox.feed_wanted(&self.sink)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // The next holder reads from the database: the marks set here must be there.
        if let Err(e) = self.outbox.flush() {
            tracing::error!(sink = %self.sink, error = %e, "delivery marks not saved; some messages may be delivered again");
        }
        self.outbox.feed_closed(&self.sink);
    }
}
