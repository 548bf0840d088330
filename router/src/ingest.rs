//! Reading what producers post: one JSON object, a JSON array, or NDJSON, into validated
//! [`Event`]s. A batch is taken whole or not at all, so the first bad entry refuses it
//! with its index (array) or line (NDJSON) and the field. Also remembers recent event ids,
//! so a producer that retries a timed-out request is not delivered twice.

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
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

/// How deep objects and arrays nest in an event, the event object being the first level
/// (an array body's own brackets do not count).
pub const MAX_DEPTH: usize = 32;

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
        let values = match parse_checked(text, 0) {
            Ok(Value::Array(values)) => values,
            // Cannot be: the text starts with `[`. Validated as one event all the same.
            Ok(other) => vec![other],
            Err(Refused::Json(e)) => return Err(json_error(Position::Whole, &e)),
            Err(Refused::Problem(p)) => return Err(p.into_error(None)),
        };
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
    let whole = match parse_checked(text, 1) {
        Ok(value) => {
            return Event::from_json(value, now)
                .map(|e| vec![e])
                .map_err(|e| event_error(Position::Whole, e));
        }
        Err(Refused::Problem(p)) => Some(p),
        Err(Refused::Json(_)) => None,
    };
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
        let value = match parse_checked(line, 1) {
            Ok(value) => value,
            Err(Refused::Problem(p)) => return Err(p.into_error(Some(position))),
            Err(Refused::Json(e)) => {
                return Err(match whole {
                    // The whole body parsed as far as a duplicate key or deep nesting, yet
                    // a line of it is not JSON: the body is one object over several lines.
                    Some(p) => p.into_error(Some(Position::Whole)),
                    None => json_error(position, &e),
                });
            }
        };
        events.push(Event::from_json(value, now).map_err(|e| event_error(position, e))?);
    }
    Ok(events)
}

/// Why [`parse_checked`] refused a text.
enum Refused {
    /// Not JSON (or not one value).
    Json(serde_json::Error),
    /// JSON, but a duplicate key or nesting past [`MAX_DEPTH`].
    Problem(Problem),
}

/// A duplicate key or too deep nesting, and where.
#[derive(Debug)]
struct Problem {
    /// From the value refused out to the body's root: filled in as the parse unwinds, so
    /// a good parse pays nothing for it.
    path: Vec<Step>,
    message: String,
}

#[derive(Debug)]
enum Step {
    Key(String),
    Index(usize),
}

impl Problem {
    /// The refusal of the event at `position`; `None` for an array body, whose path
    /// starts with the event's index.
    fn into_error(mut self, position: Option<Position>) -> BatchError {
        self.path.reverse();
        let mut steps = self.path.into_iter().peekable();
        let position = match (position, steps.peek()) {
            (Some(position), _) => position,
            (None, Some(&Step::Index(i))) => {
                steps.next();
                Position::Index(i)
            }
            (None, _) => Position::Whole,
        };
        let mut field = String::new();
        for step in steps {
            match step {
                Step::Key(k) if field.is_empty() => field = k,
                Step::Key(k) => {
                    field.push('.');
                    field.push_str(&k);
                }
                Step::Index(i) => {
                    let _ = write!(field, "[{i}]");
                }
            }
        }
        BatchError {
            position,
            field: (!field.is_empty()).then_some(field),
            message: self.message,
        }
    }
}

/// `text` as one JSON value, refusing duplicate keys (serde_json keeps the last one
/// silently, so what a producer sent would be lost unseen) and nesting past
/// [`MAX_DEPTH`]. `depth` is the level of the root value.
fn parse_checked(text: &str, depth: usize) -> Result<Value, Refused> {
    let mut problem = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Checked {
        depth,
        problem: &mut problem,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    parsed.map_err(|e| match problem {
        Some(p) => Refused::Problem(p),
        None => Refused::Json(e),
    })
}

/// Builds a [`Value`] as serde_json's own `Deserialize` does, checking as it goes.
struct Checked<'a> {
    /// The level of the value being read.
    depth: usize,
    /// Set when refusing, before the error is returned.
    problem: &'a mut Option<Problem>,
}

impl Checked<'_> {
    fn refuse<E: de::Error>(self, at: Option<Step>, message: String) -> E {
        *self.problem = Some(Problem {
            path: at.into_iter().collect(),
            message,
        });
        E::custom("refused")
    }

    fn too_deep<E: de::Error>(self) -> E {
        self.refuse(
            None,
            format!(
                "objects and arrays nest deeper than {MAX_DEPTH} levels (the event itself is the first): an event nests at most {MAX_DEPTH} levels; flatten the data"
            ),
        )
    }

    fn child(&mut self) -> Checked<'_> {
        Checked {
            depth: self.depth + 1,
            problem: &mut *self.problem,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            match seq.next_element_seed(self.child()) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    if let Some(p) = self.problem.as_mut() {
                        p.path.push(Step::Index(items.len()));
                    }
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match map.next_value_seed(self.child()) {
                Ok(value) => value,
                Err(e) => {
                    if let Some(p) = self.problem.as_mut() {
                        p.path.push(Step::Key(key));
                    }
                    return Err(e);
                }
            };
            match out.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(slot) => {
                    let key = slot.key().clone();
                    let message = format!(
                        "duplicate key: `{key}` appears more than once in the same object; send each key once"
                    );
                    return Err(self.refuse(Some(Step::Key(key)), message));
                }
            }
        }
        Ok(Value::Object(out))
    }
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

/// Event ids seen within a window, counted from when each was last seen (to a tenth of
/// the window). A repeated id is accepted (the producer gets its answer) but not
/// delivered again. An id is *storing* from when its batch is routed
/// until the batch is committed ([`Dedup::stored`]) or refused ([`Dedup::forget`]).
#[derive(Debug)]
pub struct Dedup {
    window: Duration,
    state: Mutex<DedupState>,
}

#[derive(Debug, Default)]
struct DedupState {
    /// When each id was first offered (Unix ms on the router's clock), and whether its
    /// batch is committed.
    seen: HashMap<String, (i64, bool)>,
    order: VecDeque<(i64, String)>,
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

    /// Offers `id` at `now_ms` (Unix ms on the router's clock, so a simulated day in
    /// `test` and `replay` forgets ids as the window passes in it): new ones are marked
    /// storing.
    pub fn offer(&self, id: &str, now_ms: i64) -> Seen {
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((t, _)) = s.order.front() {
            if now_ms.saturating_sub(*t) < window_ms {
                break;
            }
            if let Some((t, old)) = s.order.pop_front()
                && s.seen.get(&old).map(|e| e.0) == Some(t)
            {
                s.seen.remove(&old);
            }
        }
        match s.seen.get_mut(id) {
            Some((seen_ms, true)) => {
                // Remembered for a window from when it was last seen: a producer that
                // sends one alert again every minute (Prometheus) keeps it a repeat for
                // as long as it does, not only for the window after its first time. In
                // steps of a tenth of the window, so an id sent again and again adds at
                // most ten entries to `order`.
                if now_ms.saturating_sub(*seen_ms) >= (window_ms / 10).max(1) {
                    *seen_ms = now_ms;
                    s.order.push_back((now_ms, id.to_owned()));
                }
                return Seen::Repeat;
            }
            Some((_, false)) => return Seen::Storing,
            None => {}
        }
        s.seen.insert(id.to_owned(), (now_ms, false));
        s.order.push_back((now_ms, id.to_owned()));
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

    /// Remembers `id` as stored `age` before `now_ms` (read back from the outbox at
    /// start).
    pub fn remember(&self, id: String, age: Duration, now_ms: i64) {
        let at = now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
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

    /// The error of a refused `body`: where, which field, what.
    fn refusal(body: &str) -> (Position, Option<String>, String) {
        let err = parse(body).unwrap_err();
        let text = err.to_string();
        (err.position, err.field, text)
    }

    #[test]
    fn duplicate_keys_are_refused_naming_the_key_and_the_place() {
        let cases = [
            (r#"{"type": "a", "type": "b"}"#, Position::Whole, "type"),
            (
                "{\n \"type\": \"a\",\n \"id\": 1,\n \"id\": 2\n}\n",
                Position::Whole,
                "id",
            ),
            (
                "{\"type\": \"a\"}\n{\"type\": \"a\", \"x\": 1, \"x\": 1}\n",
                Position::Line(2),
                "x",
            ),
            (
                "{\"type\": \"a\", \"severity\": \"info\", \"severity\": \"error\"}\n{\"type\": \"a\"}\n",
                Position::Line(1),
                "severity",
            ),
            (
                r#"[{"type": "a"}, {"type": "a", "labels": {"env": "a", "env": "b"}}]"#,
                Position::Index(1),
                "labels.env",
            ),
            (
                r#"{"type": "a", "x": [1, {"y": {"k": 1, "k": 2}}]}"#,
                Position::Whole,
                "x[1].y.k",
            ),
        ];
        for (body, position, field) in cases {
            let (at, got, text) = refusal(body);
            assert_eq!(
                (at, got.as_deref()),
                (position, Some(field)),
                "{body}: {text}"
            );
            assert!(text.contains("duplicate key"), "{text}");
        }
        // The same key in different objects is fine, and values parse as serde_json's.
        let body = r#"{"type": "a", "x": {"type": 1, "n": [18446744073709551615, -3, 2.5, 1e300, null, true, "s"]}, "labels": {"type": "t"}}"#;
        let events = parse(body).unwrap();
        let plain: Value = serde_json::from_str(
            r#"{"type": 1, "n": [18446744073709551615, -3, 2.5, 1e300, null, true, "s"]}"#,
        )
        .unwrap_or(Value::Null);
        assert_eq!(events[0].data["x"], plain);
    }

    #[test]
    fn nesting_past_32_levels_is_refused_naming_the_place() {
        let nested = |levels: usize| {
            let mut body = String::from(r#"{"type": "a", "n": "#);
            body.push_str(&"[".repeat(levels));
            body.push_str(&"]".repeat(levels));
            body.push('}');
            body
        };
        assert!(parse(&nested(31)).is_ok(), "the event and 31 levels in it");
        let (at, field, text) = refusal(&nested(32));
        assert_eq!(
            (at, field.as_deref()),
            (Position::Whole, Some(&*format!("n{}", "[0]".repeat(31))))
        );
        assert!(text.contains("32 levels"), "{text}");
        // An array body's own brackets do not count.
        let (at, _, _) = refusal(&format!("[{{\"type\": \"a\"}}, {}]", nested(40)));
        assert_eq!(at, Position::Index(1));
        assert!(parse(&format!("[{}]", nested(31))).is_ok());
    }

    #[test]
    fn dedup_within_the_window() {
        let d = Dedup::new(Duration::from_secs(60));
        let t = 1_000_000;
        assert_eq!(d.offer("a", t), Seen::New);
        assert_eq!(d.offer("a", t), Seen::Storing, "not committed yet");
        d.stored(&["a".to_owned()]);
        assert_eq!(d.offer("a", t + 59_999), Seen::Repeat);
        assert_eq!(d.offer("b", t), Seen::New);
        d.forget("b");
        assert_eq!(
            d.offer("b", t),
            Seen::New,
            "a refused batch's ids can come again"
        );
        d.remember("c".into(), Duration::from_secs(1), t);
        assert_eq!(d.offer("c", t), Seen::Repeat, "read back from the outbox");
        // The window counts from when an id was last seen, on the clock it is given (a
        // simulated day's), not in real time.
        assert_eq!(d.offer("a", t + 100_000), Seen::Repeat, "seen at 59.999 s");
        assert_eq!(
            d.offer("a", t + 105_000),
            Seen::Repeat,
            "within a tenth: not moved"
        );
        assert_eq!(
            d.offer("a", t + 160_000),
            Seen::New,
            "a minute after 100 s: new"
        );
        let short = Dedup::new(Duration::ZERO);
        assert_eq!(
            (short.offer("x", t), short.offer("x", t)),
            (Seen::New, Seen::New)
        );
    }
}
