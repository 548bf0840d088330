//! The attempt in flight, per sink: a 32-byte record in `<storage.path>/in-flight/<sink>`,
//! written before the plugin's `deliver` is called and again when it returns (with the
//! message, if it was delivered). A crash of the process (not only of the machine) finds
//! it there at the next start, so the message that was being delivered gets its next
//! attempt number and a crash counted against `retry.max_crashes` (a plugin that crashes
//! on one message cannot crash-loop the router), and the messages delivered before it
//! whose marks the crash cut short are marked delivered, not sent again.
//!
//! A plain file, not the database: the record must be written before every attempt and
//! reach the kernel (a process crash keeps what reached it), which a `pwrite` does in
//! about a microsecond, while a waited SQLite commit per delivery would cost the writer
//! thread a transaction each time. See BENCHMARKS.md.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use rusqlite::{Connection, OptionalExtension};

use super::crash_signals::{self, CrashNote};
use super::in_flight_record::{Record, State};
use super::{Tally, store};

/// The folder of the records, in the storage directory.
pub const DIR: &str = "in-flight";

/// A sink's record, held by its worker (and by shutdown, which marks an abandoned one).
pub struct InFlight {
    file: File,
    path: PathBuf,
    /// What the file says now; only the worker's thread changes it, except `abandon`.
    state: AtomicU8,
    /// What the crash handler writes when the delivering thread crashes; its address is
    /// handed to the handler for the length of each attempt, so it must not move: an
    /// `InFlight` lives in an `Arc`.
    note: CrashNote,
    /// A failed write is logged once, not on every attempt.
    complained: AtomicBool,
}

impl InFlight {
    /// Opens (creating it) the record of `sink` in storage directory `dir`.
    pub(super) fn open(dir: &Path, sink: &str) -> io::Result<InFlight> {
        let folder = dir.join(DIR);
        std::fs::create_dir_all(&folder)?;
        let path = folder.join(sink);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        crash_signals::install();
        let note = CrashNote::new(&file, sink);
        Ok(InFlight {
            file,
            path,
            state: AtomicU8::new(State::Idle as u8),
            note,
            complained: AtomicBool::new(false),
        })
    }

    /// Records that attempt `attempt` at message `seq` begins, and stays recorded until
    /// the returned guard drops (after `deliver` returned).
    pub fn begin(&self, seq: i64, attempt: u32, isolated: bool) -> Attempt<'_> {
        let record = Record {
            state: State::Delivering,
            signal: 0,
            isolated,
            seq,
            attempt,
            delivered: self.note.record().delivered,
        };
        self.note.prepare(&record);
        self.write(&record);
        self.state.store(State::Delivering as u8, Ordering::Release);
        crash_signals::enter(&self.note);
        Attempt {
            in_flight: self,
            delivered: false,
        }
    }

    /// Shutdown leaves the worker inside `deliver`: the next start counts the attempt as
    /// failed, not as a crash.
    pub fn abandon(&self) {
        if self.state.load(Ordering::Acquire) != State::Delivering as u8 {
            return;
        }
        let mut record = self.note.record();
        record.state = State::Abandoned;
        self.write(&record);
    }

    fn write(&self, record: &Record) {
        if let Err(e) = self.file.write_all_at(&record.encode(), 0)
            && !self.complained.swap(true, Ordering::Relaxed)
        {
            tracing::error!(path = %self.path.display(), error = %e, "cannot record the delivery in flight; a crash during it will not be counted against max_crashes");
        }
    }
}

/// An attempt in flight; dropping it records that `deliver` returned (and, after
/// [`Attempt::delivered`], that the message went).
pub struct Attempt<'a> {
    in_flight: &'a InFlight,
    delivered: bool,
}

impl Attempt<'_> {
    /// The plugin delivered the message.
    pub fn delivered(&mut self) {
        self.delivered = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        crash_signals::leave();
        let in_flight = self.in_flight;
        in_flight.state.store(State::Idle as u8, Ordering::Release);
        let mut record = in_flight.note.record();
        record.state = State::Idle;
        if self.delivered {
            record.delivered = record.seq;
            in_flight.note.prepare(&record);
        }
        in_flight.write(&record);
    }
}

/// What the last run left in flight, settled in the outbox before any worker starts.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Lines for the log, one per message touched: what happened to it.
    pub lines: Vec<String>,
    /// Lines for the log, one per sink whose delivered messages were marked so.
    pub delivered: Vec<String>,
}

/// Reads every record under `dir`, updates the messages they name (if still waiting)
/// and clears the records. Attempts that were in flight count as made. A crash signal
/// caught on a delivering thread counts a crash for that message only; a death nothing
/// caught (`kill -9`, an `exit()` in a plugin, a crash on another thread) counts one for
/// every in-process delivery in flight, since any of them may be the cause; an attempt
/// abandoned at shutdown counts as failed.
pub(super) fn recover(dir: &Path, conn: &Connection) -> io::Result<Recovered> {
    let folder = dir.join(DIR);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Recovered::default()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let sink = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path())?;
        if let Some(record) = Record::decode(&bytes)
            && (record.state != State::Idle || record.delivered > 0)
        {
            found.push((sink, record, entry.path()));
        }
    }
    let caught = found.iter().any(|(_, r, _)| r.state == State::Crashed);
    let mut recovered = Recovered::default();
    for (sink, record, path) in found {
        let marked = mark_delivered(conn, &sink, record.delivered).map_err(io::Error::other)?;
        if marked > 0 {
            recovered.delivered.push(format!(
                "sink `{sink}`: {marked} message(s) delivered before the end were marked delivered, not sent again"
            ));
        }
        let outcome = settle(conn, &sink, &record, caught).map_err(io::Error::other)?;
        if let Some(line) = outcome {
            recovered.lines.push(line);
        }
        let idle = Record {
            state: State::Idle,
            ..record
        };
        // (The delivered mark stays: marking again finds nothing left to mark.)
        std::fs::write(&path, idle.encode())?;
    }
    Ok(recovered)
}

/// Marks `sink`'s waiting messages up to `delivered` as delivered: the worker delivers in
/// order, so the plugin took them all; only their marks, which ride in the outbox's next
/// commit, were lost with the process.
fn mark_delivered(conn: &Connection, sink: &str, delivered: i64) -> rusqlite::Result<usize> {
    if delivered <= 0 {
        return Ok(0);
    }
    conn.execute(
        "UPDATE messages SET state = 1, finished = ?3, attempts = max(attempts, 1), error = NULL
         WHERE sink = ?1 AND state = 0 AND seq <= ?2",
        rusqlite::params![sink, delivered, super::now_ms()],
    )
}

/// Counts one record's attempt against its message, if that still waits.
fn settle(
    conn: &Connection,
    sink: &str,
    record: &Record,
    caught: bool,
) -> rusqlite::Result<Option<String>> {
    let row = conn
        .query_row(
            "SELECT id, attempts, failures, crashes FROM messages
             WHERE seq = ?1 AND sink = ?2 AND state = 0",
            rusqlite::params![record.seq, sink],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?.max(0) as u32,
                    row.get::<_, i64>(2)?.max(0) as u32,
                    row.get::<_, i64>(3)?.max(0) as u32,
                ))
            },
        )
        .optional()?;
    let Some((id, attempts, failures, crashes)) = row else {
        return Ok(None); // delivered, or a dead letter, before the end
    };
    let attempt = record.attempt.max(attempts);
    let mut tally = Tally {
        attempts: attempt,
        failures,
        crashes,
    };
    let error = match record.state {
        State::Crashed => {
            tally.failures += 1;
            tally.crashes += 1;
            format!(
                "the plugin crashed with {} during attempt {attempt}",
                crash_signals::name(i32::from(record.signal))
            )
        }
        State::Abandoned => {
            tally.failures += 1;
            format!(
                "the plugin was still inside deliver when the router stopped (attempt {attempt})"
            )
        }
        State::Delivering if caught || record.isolated => {
            "the router stopped during this attempt, for a reason that was not this sink's plugin"
                .to_owned()
        }
        State::Delivering => {
            tally.failures += 1;
            tally.crashes += 1;
            format!(
                "the router died during attempt {attempt} without a clean stop (a crash it could not attribute, an exit() in a plugin, or kill -9)"
            )
        }
        State::Idle => return Ok(None),
    };
    store::attempted(conn, record.seq, tally, &error)?;
    Ok(Some(format!(
        "sink `{sink}`, message {id}: {error}; crashes counted: {}",
        tally.crashes
    )))
}

#[cfg(test)]
mod tests {
    use super::super::in_flight_record::LEN;
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let record = Record {
            state: State::Crashed,
            signal: 11,
            isolated: true,
            seq: 1 << 40,
            attempt: 7,
            delivered: (1 << 40) - 1,
        };
        assert_eq!(Record::decode(&record.encode()), Some(record));
        assert_eq!(Record::decode(&[0u8; LEN]), None, "no magic, no record");
        assert_eq!(Record::decode(&record.encode()[..10]), None, "too short");
    }
}
