//! `alert-router export`: the events the outbox keeps, as NDJSON, oldest first, each
//! once: the recording `replay` plays through another configuration.
//!
//! It reads `outbox.db` itself, read-only, also while a router runs on it: SQLite in WAL
//! mode lets a reader beside the writer, and a read sees one committed state. Asking
//! the running router instead would need an API for it, and would not work when none
//! runs (a demo's storage, a stopped router).
//!
//! What the outbox keeps is the messages for sinks, one per event and sink, for
//! `storage.keep_delivered` after delivery (dead letters longer): an event is exported
//! when some sink got a message of its own for it. Not kept, so not exported: an event
//! no route sends anywhere, one every route held back (silenced, throttled, muted), and
//! one that only went into a group's notification.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::Config;

/// `export`: which events, and where to.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  alert-router export --since 24h --output day.ndjson
  alert-router export --since 2026-12-04T00:00:00Z --until 2026-12-05T00:00:00Z
  alert-router export --storage demo-data > demo.ndjson

Only what the outbox keeps can be exported: events that some sink got a message of their
own for, delivered within storage.keep_delivered (1h by default: raise it to keep a day)
or still waiting or dead-lettered. Events routed nowhere, held back on every route, or
only folded into a group's notification are not in it.")]
pub struct Export {
    /// Events from this time on (by their `time`): RFC 3339, or a duration back from now
    /// such as 24h or 90m. Default: the oldest the outbox keeps.
    #[arg(long, value_name = "TIME|DURATION", value_parser = parse_when)]
    since: Option<When>,
    /// Events before this time: RFC 3339, or a duration back from now. Default: all.
    #[arg(long, value_name = "TIME|DURATION", value_parser = parse_when)]
    until: Option<When>,
    /// Write the events to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Keep the alerts the router made itself (alert rules' alerts, `source:
    /// alert-rules`; alerts resolved by `resolve_timeout`): a replay makes them again,
    /// so they are left out by default.
    #[arg(long)]
    with_derived: bool,
    /// Read the outbox in DIR (a `demo --storage DIR`) instead of the config's
    /// `storage.path`; the config is then not read.
    #[arg(long, value_name = "DIR")]
    storage: Option<PathBuf>,
}

/// An instant, or how long before now.
#[derive(Debug, Clone, Copy)]
pub enum When {
    At(OffsetDateTime),
    Ago(Duration),
}

impl When {
    fn at(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            When::At(t) => t,
            When::Ago(d) => now - d,
        }
    }
}

fn parse_when(s: &str) -> Result<When, String> {
    if let Ok(t) = OffsetDateTime::parse(s.trim(), &Rfc3339) {
        return Ok(When::At(t));
    }
    crate::config::parse_duration(s.trim())
        .map(When::Ago)
        .map_err(|_| {
            format!(
                "{s:?} is neither an RFC 3339 time (2026-12-04T00:00:00Z) nor a duration back from now (24h, 90m)"
            )
        })
}

/// One exported event.
struct Found {
    time: OffsetDateTime,
    seq: i64,
    text: String,
}

/// What the outbox held, besides the events exported.
#[derive(Debug, Default, PartialEq, Eq)]
struct Left {
    derived: usize,
    out_of_range: usize,
    /// Messages whose event has no readable `time` (not written by this router).
    unreadable: Vec<i64>,
}

pub fn run(config_path: &Path, args: Export) -> Result<ExitCode> {
    let dir = match &args.storage {
        Some(dir) => dir.clone(),
        None => {
            Config::load(config_path)
                .map_err(|d| {
                    anyhow::anyhow!(
                        "{d}\n{} problem(s) in the config (or give --storage DIR to read an outbox without it)",
                        d.0.len()
                    )
                })?
                .storage
                .path
        }
    };
    let now = crate::clock::now();
    let since = args.since.map(|w| w.at(now));
    let until = args.until.map(|w| w.at(now));
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        bail!(
            "--since {} is not before --until {}: nothing would be exported",
            crate::event::format_time(s),
            crate::event::format_time(u)
        );
    }
    let conn = open_read_only(&dir)?;
    let (events, left) = read(&conn, since, until, args.with_derived)
        .with_context(|| format!("reading {}", dir.join(crate::outbox::FILE_NAME).display()))?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for e in &events {
        writeln!(out, "{}", e.text)?;
    }
    out.flush()?;
    drop(out);
    // On stderr: stdout is the NDJSON.
    let span = match (events.first(), events.last()) {
        (Some(a), Some(b)) => format!(
            ", {} to {}",
            crate::event::format_time(a.time),
            crate::event::format_time(b.time)
        ),
        _ => String::new(),
    };
    eprintln!(
        "exported {} event(s){span}{}",
        events.len(),
        args.output
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    if left.derived > 0 {
        eprintln!(
            "left out {} alert(s) the router made itself (a replay makes them again; --with-derived keeps them)",
            left.derived
        );
    }
    if !left.unreadable.is_empty() {
        eprintln!(
            "left out {} message(s) whose event has no readable time (outbox #{})",
            left.unreadable.len(),
            left.unreadable
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", #")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The outbox of storage directory `dir`, opened read-only: nothing is written, and a
/// router running on it goes on undisturbed.
fn open_read_only(dir: &Path) -> Result<Connection> {
    let path = dir.join(crate::outbox::FILE_NAME);
    if !path.exists() {
        bail!(
            "no outbox at {}: the router has not run with this storage yet, or it is elsewhere (storage.path in the config, or --storage DIR)",
            path.display()
        );
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {} to read it", path.display()))?;
    // The writer's commits are short; wait for one rather than fail beside it.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The events of the outbox within [since, until), oldest first (by `time`, then by
/// when they were stored), each once.
fn read(
    conn: &Connection,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    with_derived: bool,
) -> Result<(Vec<Found>, Left)> {
    // One read transaction: every row from the same committed state, however long
    // the read takes beside a running writer.
    let tx = conn.unchecked_transaction()?;
    // A group's notification (`group:` ids) carries only its newest event, which is
    // not the group: its events are not exported through it.
    let mut stmt = tx.prepare(
        "SELECT seq, event_id, event FROM messages
         WHERE event_id NOT LIKE 'group:%' ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut found = Vec::new();
    let mut left = Left::default();
    while let Some(row) = rows.next()? {
        let (seq, event_id): (i64, String) = (row.get(0)?, row.get(1)?);
        // Its first message has the event as routed: later routes may have `set` more.
        if !seen.insert(event_id) {
            continue;
        }
        let text: String = row.get(2)?;
        let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let Some(time) = event
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        else {
            left.unreadable.push(seq);
            continue;
        };
        if since.is_some_and(|s| time < s) || until.is_some_and(|u| time >= u) {
            left.out_of_range += 1;
            continue;
        }
        if !with_derived && is_derived(&event) {
            left.derived += 1;
            continue;
        }
        found.push(Found { time, seq, text });
    }
    found.sort_by_key(|f| (f.time, f.seq));
    Ok((found, left))
}

/// An alert the router made itself: an alert rule's, or one resolved by its
/// `resolve_timeout` (ids `timeout:...`).
fn is_derived(event: &Value) -> bool {
    let str_of = |k: &str| event.get(k).and_then(Value::as_str);
    str_of("source") == Some(crate::derive::eval::SOURCE)
        || (str_of("resolved_by") == Some("timeout")
            && str_of("id").is_some_and(|id| id.starts_with("timeout:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(rows: &[(&str, &str)]) -> Connection {
        let conn = Connection::open_in_memory().expect("memory");
        conn.execute_batch(
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY, event_id TEXT, event TEXT)",
        )
        .expect("table");
        for (id, event) in rows {
            conn.execute(
                "INSERT INTO messages (event_id, event) VALUES (?1, ?2)",
                [id, event],
            )
            .expect("row");
        }
        conn
    }

    fn t(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).expect("a time")
    }

    #[test]
    fn each_event_once_oldest_first_within_the_range_without_derived_alerts() {
        let conn = outbox(&[
            (
                "b",
                r#"{"id":"b","type":"x","time":"2026-12-04T10:05:00Z"}"#,
            ),
            // The same event for a second sink, after a route's `set`.
            (
                "b",
                r#"{"id":"b","type":"x","time":"2026-12-04T10:05:00Z","severity":"error"}"#,
            ),
            (
                "a",
                r#"{"id":"a","type":"x","time":"2026-12-04T10:00:00Z"}"#,
            ),
            (
                "rule:r:1:0:firing",
                r#"{"id":"rule:r:1:0:firing","type":"alert","source":"alert-rules","time":"2026-12-04T10:06:00Z"}"#,
            ),
            (
                "timeout:f:1",
                r#"{"id":"timeout:f:1","type":"disk","resolved_by":"timeout","status":"resolved","time":"2026-12-04T10:07:00Z"}"#,
            ),
            (
                "group:r:k:1",
                r#"{"id":"c","type":"x","time":"2026-12-04T10:01:00Z"}"#,
            ),
            (
                "late",
                r#"{"id":"late","type":"x","time":"2026-12-04T12:00:00Z"}"#,
            ),
            ("bad", r#"{"id":"bad","type":"x"}"#),
        ]);
        let (found, left) =
            read(&conn, None, Some(t("2026-12-04T11:00:00Z")), false).expect("read");
        let texts: Vec<&str> = found.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                r#"{"id":"a","type":"x","time":"2026-12-04T10:00:00Z"}"#,
                r#"{"id":"b","type":"x","time":"2026-12-04T10:05:00Z"}"#,
            ]
        );
        assert_eq!(
            left,
            Left {
                derived: 2,
                out_of_range: 1,
                unreadable: vec![8]
            }
        );
        let (found, _) = read(&conn, Some(t("2026-12-04T10:05:00Z")), None, true).expect("read");
        let ids: Vec<String> = found
            .iter()
            .map(|f| serde_json::from_str::<Value>(&f.text).expect("json")["id"].to_string())
            .collect();
        assert_eq!(
            ids,
            [
                "\"b\"",
                "\"rule:r:1:0:firing\"",
                "\"timeout:f:1\"",
                "\"late\""
            ]
        );
    }

    #[test]
    fn times_are_rfc3339_or_a_duration_back_from_now() {
        let now = t("2026-12-04T12:00:00Z");
        let at = parse_when("2026-12-04T10:00:00+01:00").expect("a time");
        assert_eq!(at.at(now), t("2026-12-04T09:00:00Z"));
        assert_eq!(
            parse_when("24h").expect("a duration").at(now),
            t("2026-12-03T12:00:00Z")
        );
        let e = parse_when("yesterday").expect_err("neither");
        assert!(e.contains("RFC 3339") && e.contains("24h"), "{e}");
    }
}
