//! Reading what producers post: one JSON object, a JSON array, or NDJSON, into validated
//! [`Event`]s. A batch is taken whole or not at all, so the first bad entry refuses it
//! with its index (array) or line (NDJSON) and the field. Also remembers recent event ids,
//! so a producer that retries a timed-out request is not delivered twice.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use crate::event::{Event, EventError};

/// Where in a batch the bad entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The body is one object.
    Whole,
    /// 0-based index in a JSON array.
    Index(usize),
    /// 1-based line of an NDJSON body.
    Line(usize),
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub position: Position,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Whole => {}
            Position::Index(i) => write!(f, "event {i}: ")?,
            Position::Line(l) => write!(f, "line {l}: ")?,
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if self.position != Position::Whole {
            write!(f, " (nothing in this batch was accepted)")?;
        }
        Ok(())
    }
}

/// Parses and validates a request body. `now` stands in for missing times.
pub fn parse_body(body: &[u8], now: OffsetDateTime) -> Result<Vec<Event>, BatchError> {
    let text = std::str::from_utf8(body).map_err(|e| BatchError {
        position: Position::Whole,
        field: None,
        message: format!("the body is not UTF-8 (byte {})", e.valid_up_to()),
    })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(BatchError {
            position: Position::Whole,
            field: None,
            message: "the body is empty: post a JSON object, a JSON array of objects, or NDJSON"
                .into(),
        });
    }
    if trimmed.starts_with('[') {
        let values: Vec<Value> =
            serde_json::from_str(text).map_err(|e| json_error(Position::Whole, &e))?;
        if values.is_empty() {
            return Err(BatchError {
                position: Position::Whole,
                field: None,
                message: "the array is empty".into(),
            });
        }
        return values
            .into_iter()
            .enumerate()
            .map(|(i, v)| Event::from_json(v, now).map_err(|e| event_error(Position::Index(i), e)))
            .collect();
    }
    // One object, or NDJSON: one object per line. A single pretty-printed object spans
    // lines, so try the whole body as one value first.
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    if let (Some(Ok(first)), None) = (stream.next(), stream.next()) {
        return Event::from_json(first, now)
            .map(|e| vec![e])
            .map_err(|e| event_error(Position::Whole, e));
    }
    let single_line = text.lines().filter(|l| !l.trim().is_empty()).count() == 1;
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let position = if single_line {
            Position::Whole
        } else {
            Position::Line(i + 1)
        };
        let value: Value = serde_json::from_str(line).map_err(|e| json_error(position, &e))?;
        events.push(Event::from_json(value, now).map_err(|e| event_error(position, e))?);
    }
    Ok(events)
}

fn json_error(position: Position, e: &serde_json::Error) -> BatchError {
    let place = match position {
        Position::Line(_) => format!("column {}", e.column()),
        _ => format!("line {} column {}", e.line(), e.column()),
    };
    BatchError {
        position,
        field: None,
        message: format!("malformed JSON at {place}: {e}"),
    }
}

fn event_error(position: Position, e: EventError) -> BatchError {
    BatchError {
        position,
        field: e.field,
        message: e.message,
    }
}

/// Event ids seen within a window. A repeated id is accepted (the producer gets its
/// answer) but not delivered again. An id is *storing* from when its batch is routed
/// until the batch is committed ([`Dedup::stored`]) or refused ([`Dedup::forget`]).
#[derive(Debug)]
pub struct Dedup {
    window: Duration,
    state: Mutex<DedupState>,
}

#[derive(Debug, Default)]
struct DedupState {
    /// When each id was first offered, and whether its batch is committed.
    seen: HashMap<String, (Instant, bool)>,
    order: VecDeque<(Instant, String)>,
}

/// What an offered id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time within the window: now storing.
    New,
    /// Already stored: a repeat, not to be delivered again.
    Repeat,
    /// Another batch with this id is being written now. Whether it will be stored is not
    /// known yet, so the caller can neither take it as new nor drop it as a repeat.
    Storing,
}

impl Dedup {
    pub fn new(window: Duration) -> Self {
        Dedup {
            window,
            state: Mutex::new(DedupState::default()),
        }
    }

    /// Offers `id`: new ones are marked storing.
    pub fn offer(&self, id: &str) -> Seen {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((t, _)) = s.order.front() {
            if now.duration_since(*t) < self.window {
                break;
            }
            if let Some((t, old)) = s.order.pop_front()
                && s.seen.get(&old).map(|e| e.0) == Some(t)
            {
                s.seen.remove(&old);
            }
        }
        match s.seen.get(id) {
            Some((_, true)) => return Seen::Repeat,
            Some((_, false)) => return Seen::Storing,
            None => {}
        }
        s.seen.insert(id.to_owned(), (now, false));
        s.order.push_back((now, id.to_owned()));
        Seen::New
    }

    /// The batch holding `ids` is committed: from now on they are repeats.
    pub fn stored(&self, ids: &[String]) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if let Some(entry) = s.seen.get_mut(id) {
                entry.1 = true;
            }
        }
    }

    /// Remembers `id` as stored `age` ago (read back from the outbox at start).
    pub fn remember(&self, id: String, age: Duration) {
        let Some(at) = Instant::now().checked_sub(age) else {
            return;
        };
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.seen.insert(id.clone(), (at, true));
        s.order.push_back((at, id));
    }

    /// Forgets `id`, so a batch that was refused after all (503) can be posted again.
    pub fn forget(&self, id: &str) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Vec<Event>, BatchError> {
        parse_body(body.as_bytes(), OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn object_array_and_ndjson() {
        assert_eq!(parse(r#"{"type": "a"}"#).unwrap().len(), 1);
        assert_eq!(parse("{\n  \"type\": \"a\"\n}\n").unwrap().len(), 1);
        assert_eq!(parse(r#"[{"type": "a"}, {"type": "b"}]"#).unwrap().len(), 2);
        let events = parse("{\"type\": \"a\"}\n\n{\"type\": \"b\"}\n{\"type\": \"c\"}\n").unwrap();
        assert_eq!(
            events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn errors_name_index_line_and_field() {
        let err = parse(r#"[{"type": "a"}, {"severity": "info"}]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event 1: field `type`: missing: every event needs a `type`, such as \"trade_opened\" or \"disk_full\" (nothing in this batch was accepted)"
        );
        let err = parse("{\"type\": \"a\"}\n{\"type\": \"b\"\n{\"type\": \"c\"}\n").unwrap_err();
        assert_eq!(err.position, Position::Line(2));
        assert!(
            err.to_string().starts_with("line 2: malformed JSON"),
            "{err}"
        );
        let err =
            parse("{\"type\": \"a\"}\n{\"type\": \"trade_opened\", \"symbol\": 1}\n").unwrap_err();
        assert_eq!(
            (err.position, err.field.as_deref()),
            (Position::Line(2), Some("symbol"))
        );
        let err = parse("{\"type\": ").unwrap_err();
        assert!(
            err.to_string().starts_with("malformed JSON at line 1"),
            "{err}"
        );
        assert!(parse("  ").is_err() && parse("[]").is_err());
    }

    #[test]
    fn dedup_within_the_window() {
        let d = Dedup::new(Duration::from_secs(60));
        assert_eq!(d.offer("a"), Seen::New);
        assert_eq!(d.offer("a"), Seen::Storing, "not committed yet");
        d.stored(&["a".to_owned()]);
        assert_eq!(d.offer("a"), Seen::Repeat);
        assert_eq!(d.offer("b"), Seen::New);
        d.forget("b");
        assert_eq!(
            d.offer("b"),
            Seen::New,
            "a refused batch's ids can come again"
        );
        d.remember("c".into(), Duration::from_secs(1));
        assert_eq!(d.offer("c"), Seen::Repeat, "read back from the outbox");
        let short = Dedup::new(Duration::ZERO);
        assert_eq!((short.offer("x"), short.offer("x")), (Seen::New, Seen::New));
    }
}
