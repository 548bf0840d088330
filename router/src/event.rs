//! Events: what producers post. Owns the reserved keys (`type`, `severity`, `time`, `id`,
//! `source`, `labels`) and the severity order; the fields of a type a registered domain
//! documents (the trading types) are validated against it, and any other type is a
//! custom event and passes through.
//! Takes JSON values, emits [`Event`]s or an [`EventError`] naming the field.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use alert_router_domain::describe_value;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How urgent an event is. Ordered: `debug < info < warning < error < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Severity {
    Debug,
    #[default]
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Debug,
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;

    /// Case-insensitive; `warn` and `crit` are accepted as the short forms producers use.
    /// Space around the name is ignored, and left out of the error, which quotes the name
    /// as written (a rule's `">= eror"` is the name `eror`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        match name.to_ascii_lowercase().as_str() {
            "debug" => Ok(Severity::Debug),
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            "critical" | "crit" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity {name:?}: use one of debug, info, warning, error, critical"
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alert's state, from its `status` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// The producer gave the id (rather than the router making one up): only such an id
    /// can come again in a retried request, so only such ids are remembered for dedup.
    pub id_given: bool,
    /// The `type` key.
    pub kind: String,
    pub severity: Severity,
    pub time: OffsetDateTime,
    pub source: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Every key that is not reserved: `event.<key>` in templates and rules.
    pub data: Map<String, Value>,
}

/// Why an event was refused: the field (when one is to blame) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    pub field: Option<String>,
    pub message: String,
}

impl EventError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        EventError {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for EventError {}

const RESERVED: [&str; 6] = ["type", "severity", "time", "id", "source", "labels"];

// Limits on one event (the README's Events section lists them with the body's); each
// refusal names its limit.

/// `type` in characters: types are metric labels and status keys.
pub const MAX_TYPE_CHARS: usize = 128;
/// `id` in characters (not bytes: 100 `é` are 100 characters).
pub const MAX_ID_CHARS: usize = 128;
/// Keys besides the reserved ones.
pub const MAX_FIELDS: usize = 256;
/// Keys of `labels`.
pub const MAX_LABELS: usize = 64;

/// The instants every sink can write, whatever the offset given: years 1 to 9999 in UTC
/// (RFC 3339 has four-digit years, and the router writes times in UTC), as Unix seconds.
const EARLIEST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
const AFTER_LATEST: i64 = 253_402_300_800; // 10000-01-01T00:00:00Z

impl Event {
    /// Validates one posted JSON value. `now` stands in for a missing `time`; a missing
    /// `id` gets a new time-ordered one.
    pub fn from_json(value: Value, now: OffsetDateTime) -> Result<Event, EventError> {
        let Value::Object(mut map) = value else {
            return Err(EventError {
                field: None,
                message: format!(
                    "an event must be a JSON object, got {}",
                    describe_value(&value)
                ),
            });
        };
        let kind = match map.remove("type") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(EventError::field(
                    "type",
                    format!("expected a string, got {}", describe_value(&other)),
                ));
            }
            None => {
                return Err(EventError::field(
                    "type",
                    "missing: every event needs a `type`, such as \"trade_opened\" or \"disk_full\"",
                ));
            }
        };
        if kind.len() > MAX_TYPE_CHARS && kind.chars().count() > MAX_TYPE_CHARS {
            // Not quoted back: it may be megabytes.
            return Err(EventError::field(
                "type",
                format!(
                    "is {} characters long: a type is at most {MAX_TYPE_CHARS} characters; use a shorter name",
                    kind.chars().count()
                ),
            ));
        }
        if kind.is_empty()
            || !kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            return Err(EventError::field(
                "type",
                format!(
                    "{kind:?} is not a valid type: use lowercase letters, digits, `_`, `.` and `-`"
                ),
            ));
        }
        let severity = match map.remove("severity") {
            None | Some(Value::Null) => default_severity(&kind),
            Some(Value::String(s)) => s
                .parse()
                .map_err(|e: String| EventError::field("severity", e))?,
            Some(other) => {
                return Err(EventError::field(
                    "severity",
                    format!("expected a string, got {}", describe_value(&other)),
                ));
            }
        };
        let time = match map.remove("time") {
            None | Some(Value::Null) => now,
            Some(Value::String(s)) => OffsetDateTime::parse(&s, &Rfc3339)
                .map_err(|e| {
                    EventError::field(
                        "time",
                        format!(
                            "{s:?} is not an RFC 3339 time ({e}), e.g. \"2025-11-03T14:30:00Z\""
                        ),
                    )
                })
                .and_then(|t| check_time(&s, t))?,
            Some(other) => {
                return Err(EventError::field(
                    "time",
                    format!(
                        "expected an RFC 3339 string, got {}",
                        describe_value(&other)
                    ),
                ));
            }
        };
        let (id, id_given) = match map.remove("id") {
            None | Some(Value::Null) => (new_id(), false),
            Some(Value::String(s)) => (check_id(s)?, true),
            Some(Value::Number(n)) => (n.to_string(), true),
            Some(other) => {
                return Err(EventError::field(
                    "id",
                    format!("expected a string, got {}", describe_value(&other)),
                ));
            }
        };
        let source = match map.remove("source") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(EventError::field(
                    "source",
                    format!("expected a string, got {}", describe_value(&other)),
                ));
            }
        };
        let labels = match map.remove("labels") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(labels)) if labels.len() > MAX_LABELS => {
                return Err(EventError::field(
                    "labels",
                    format!(
                        "{} labels: an event has at most {MAX_LABELS}; move the rest into the event's data",
                        labels.len()
                    ),
                ));
            }
            Some(Value::Object(labels)) => labels
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    Value::Number(n) => Ok((k, n.to_string())),
                    Value::Bool(b) => Ok((k, b.to_string())),
                    other => Err(EventError::field(
                        format!("labels.{k}"),
                        format!("label values are strings, got {}", describe_value(&other)),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(EventError::field(
                    "labels",
                    format!(
                        "expected an object of string values, got {}",
                        describe_value(&other)
                    ),
                ));
            }
        };
        if map.len() > MAX_FIELDS {
            return Err(EventError {
                field: None,
                message: format!(
                    "{} fields besides the reserved keys: an event has at most {MAX_FIELDS}; group them into objects or send several events",
                    map.len()
                ),
            });
        }
        // `status` makes the event an alert (notify/alerts.rs): only its two values.
        match map.get("status") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "firing" || s == "resolved" => {}
            Some(other) => {
                return Err(EventError::field(
                    "status",
                    format!(
                        "{}: an alert's status is \"firing\" or \"resolved\" (leave it out for an event that is not an alert)",
                        describe_value(other)
                    ),
                ));
            }
        }
        if let Some(documented) = crate::domains::event_type(&kind) {
            documented
                .check(&mut map)
                .map_err(|e| EventError::field(e.field, e.message))?;
        }
        Ok(Event {
            id,
            id_given,
            kind,
            severity,
            time,
            source,
            labels,
            data: map,
        })
    }

    /// The event as a domain's store reads it.
    /// `firing` or `resolved` for an alert; `None` for any other event.
    pub fn alert_status(&self) -> Option<AlertStatus> {
        match self.data.get("status").and_then(Value::as_str) {
            Some("firing") => Some(AlertStatus::Firing),
            Some("resolved") => Some(AlertStatus::Resolved),
            _ => None,
        }
    }

    pub fn domain_view(&self) -> alert_router_domain::EventRef<'_> {
        alert_router_domain::EventRef {
            id: &self.id,
            kind: &self.kind,
            time: self.time,
            data: &self.data,
        }
    }

    /// The event as templates and rule expressions see it: its data fields next to the
    /// reserved keys, `time` as RFC 3339 and `severity` lowercase.
    pub fn to_json(&self) -> Value {
        let mut map = Map::with_capacity(self.data.len() + RESERVED.len());
        let _ = self.try_for_each_field(|k, field| {
            map.insert(k.to_owned(), field.to_json());
            Ok::<(), std::convert::Infallible>(())
        });
        Value::Object(map)
    }

    /// `to_json().to_string()`, written straight from the event: the hot path stores this
    /// text with every message, and building the map first (cloning every field, hashing
    /// every key) cost more than writing it.
    pub fn to_json_string(&self) -> String {
        // Cannot fail (string keys, JSON values); the fallback only keeps that true.
        serde_json::to_string(&AsJson(self)).unwrap_or_else(|_| self.to_json().to_string())
    }

    /// The top-level key `key` of [`Event::to_json`], borrowed from the event.
    pub fn field(&self, key: &str) -> Option<FieldRef<'_>> {
        if let Some(field) = self.reserved(key) {
            return Some(field);
        }
        // serde_json's map hashes with SipHash; an event has a dozen keys or so, which a
        // scan compares faster than one hash.
        let found = if self.data.len() <= SCAN {
            self.data
                .iter()
                .find(|(k, _)| k.as_str() == key)
                .map(|(_, v)| v)
        } else {
            self.data.get(key)
        };
        found.map(FieldRef::Data)
    }

    /// Calls `f` with every top-level key of [`Event::to_json`] and its value, in that
    /// map's order: the data fields first, then the reserved keys. A reserved key that is
    /// also a data key (a rule's `set` can put `type` or `id` in the data) keeps the data
    /// key's place and takes the reserved value, as inserting it into the map would.
    pub fn try_for_each_field<'a, E>(
        &'a self,
        mut f: impl FnMut(&'a str, FieldRef<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        // Bit i: RESERVED[i] was written among the data keys.
        let mut written = 0u8;
        for (k, v) in &self.data {
            match self.reserved(k) {
                Some(field) => {
                    if let Some(i) = RESERVED.iter().position(|r| r == k) {
                        written |= 1 << i;
                    }
                    f(k, field)?;
                }
                None => f(k, FieldRef::Data(v))?,
            }
        }
        for (i, k) in RESERVED.iter().enumerate() {
            if written & (1 << i) == 0
                && let Some(field) = self.reserved(k)
            {
                f(k, field)?;
            }
        }
        Ok(())
    }

    /// How many top-level keys [`Event::to_json`] has.
    pub fn field_count(&self) -> usize {
        let mut n = 0;
        let _ = self.try_for_each_field(|_, _| {
            n += 1;
            Ok::<(), std::convert::Infallible>(())
        });
        n
    }

    /// The value `to_json` gives the reserved key `key`; `None` for a data key, and for
    /// `source` when the event has none (a data field of that name then stays).
    fn reserved(&self, key: &str) -> Option<FieldRef<'_>> {
        Some(match key {
            "type" => FieldRef::Str(&self.kind),
            "severity" => FieldRef::Str(self.severity.as_str()),
            "time" => FieldRef::Time(self.time),
            "id" => FieldRef::Str(&self.id),
            "source" => FieldRef::Str(self.source.as_deref()?),
            "labels" => FieldRef::Labels(&self.labels),
            _ => return None,
        })
    }
}

/// Below this many data fields a scan finds a key faster than hashing it.
const SCAN: usize = 16;

/// One top-level value of [`Event::to_json`], borrowed from the event.
#[derive(Debug, Clone, Copy)]
pub enum FieldRef<'a> {
    /// A data field.
    Data(&'a Value),
    /// `type`, `severity`, `id` or `source`.
    Str(&'a str),
    /// `time`, written RFC 3339 ([`format_time`]).
    Time(OffsetDateTime),
    /// `labels`, an object of strings.
    Labels(&'a BTreeMap<String, String>),
}

impl FieldRef<'_> {
    /// The value as `to_json` has it.
    pub fn to_json(self) -> Value {
        match self {
            FieldRef::Data(v) => v.clone(),
            FieldRef::Str(s) => Value::String(s.to_owned()),
            FieldRef::Time(t) => Value::String(format_time(t)),
            FieldRef::Labels(labels) => Value::Object(
                labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        }
    }
}

/// Serializes an event as [`Event::to_json`]'s map, entry by entry.
struct AsJson<'a>(&'a Event);

impl serde::Serialize for AsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        self.0.try_for_each_field(|k, field| match field {
            FieldRef::Data(v) => map.serialize_entry(k, v),
            FieldRef::Str(s) => map.serialize_entry(k, s),
            FieldRef::Time(t) => map.serialize_entry(k, &format_time(t)),
            FieldRef::Labels(labels) => map.serialize_entry(k, labels),
        })?;
        map.end()
    }
}

pub use alert_router_domain::format_time;

/// A new, unique, time-ordered event id (UUID v7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A given id, if printable and short enough. It is written into log lines and sent as
/// the webhook's `Idempotency-Key` header: a line break there forges a log line, and no
/// header may hold a control character.
fn check_id(id: String) -> Result<String, EventError> {
    let mut chars = 0;
    for c in id.chars() {
        chars += 1;
        if c.is_control() {
            return Err(EventError::field(
                "id",
                format!(
                    "contains the control character U+{:04X} at character {chars}: ids are printable (no line breaks, tabs or other control characters); send the id without it",
                    u32::from(c)
                ),
            ));
        }
    }
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(EventError::field(
            "id",
            format!(
                "is {chars} characters long: an id is 1 to {MAX_ID_CHARS} characters; send a shorter one (a UUID is 36), or none for the router to make one"
            ),
        ));
    }
    Ok(id)
}

/// `t` (parsed from `text`), if every sink can write it.
fn check_time(text: &str, t: OffsetDateTime) -> Result<OffsetDateTime, EventError> {
    if (EARLIEST..AFTER_LATEST).contains(&t.unix_timestamp()) {
        return Ok(t);
    }
    Err(EventError::field(
        "time",
        format!(
            "{text:?} is outside the years 1 to 9999 in UTC: send a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z (after applying its offset)"
        ),
    ))
}

/// `error` events are errors unless they say otherwise; everything else is info.
fn default_severity(kind: &str) -> Severity {
    if kind == "error" {
        Severity::Error
    } else {
        Severity::Info
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Event, EventError> {
        Event::from_json(v, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn an_optional_field_sent_as_null_is_absent() {
        let event = parse(json!({
            "type": "portfolio_update", "total_value": 1000, "cash": null, "note": null,
            "positions": [{"symbol": "BTC/USDT", "side": "LONG", "quantity": 1,
                           "entry_price": 10, "current_price": 11, "pnl": null}]
        }))
        .expect("null is accepted for an optional field");
        assert!(!event.data.contains_key("cash"), "{:?}", event.data);
        assert_eq!(event.data["positions"][0].get("pnl"), None);
        // A custom key the schema does not know keeps its null.
        assert_eq!(event.data.get("note"), Some(&Value::Null));
        // A required field sent as null is still refused.
        let refused = parse(json!({"type": "portfolio_update", "total_value": null}));
        assert!(refused.is_err());
    }

    #[test]
    fn severity_is_ordered_and_case_insensitive() {
        assert!(Severity::Debug < Severity::Info && Severity::Error < Severity::Critical);
        assert_eq!("WARNING".parse::<Severity>(), Ok(Severity::Warning));
        assert_eq!("Crit".parse::<Severity>(), Ok(Severity::Critical));
        assert!(
            "loud"
                .parse::<Severity>()
                .unwrap_err()
                .contains("debug, info")
        );
    }

    #[test]
    fn an_unknown_severity_is_quoted_without_the_space_around_it() {
        assert_eq!(
            " eror ".parse::<Severity>().unwrap_err(),
            "unknown severity \"eror\": use one of debug, info, warning, error, critical"
        );
    }

    #[test]
    fn reserved_keys_are_taken_out_and_data_stays() {
        let e = parse(json!({
            "type": "disk_full", "severity": "Warning", "time": "2025-11-03T14:30:00Z",
            "id": "abc", "source": "host-1", "labels": {"env": "prod", "n": 3}, "used_pct": 97
        }))
        .unwrap();
        assert_eq!(e.kind, "disk_full");
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!((e.id.as_str(), e.id_given), ("abc", true));
        assert_eq!(e.labels["n"], "3");
        assert_eq!(e.data.len(), 1);
        let j = e.to_json();
        assert_eq!(j["time"], "2025-11-03T14:30:00Z");
        assert_eq!(j["used_pct"], 97);
        assert_eq!(j["severity"], "warning");
    }

    /// `to_json` as it was written before the field walker: the reference it must match.
    fn to_json_reference(e: &Event) -> Value {
        let mut map = Map::new();
        for (k, v) in &e.data {
            map.insert(k.clone(), v.clone());
        }
        map.insert("type".into(), Value::String(e.kind.clone()));
        map.insert("severity".into(), Value::String(e.severity.as_str().into()));
        map.insert("time".into(), Value::String(format_time(e.time)));
        map.insert("id".into(), Value::String(e.id.clone()));
        if let Some(source) = &e.source {
            map.insert("source".into(), Value::String(source.clone()));
        }
        map.insert(
            "labels".into(),
            Value::Object(
                e.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
        Value::Object(map)
    }

    #[test]
    fn json_and_text_match_the_reference_in_order() {
        let mut events = vec![
            parse(json!({"type": "ping"})).unwrap(),
            parse(json!({
                "type": "trade_closed", "severity": "warning", "time": "2025-11-03T14:30:00.5+02:00",
                "id": "x\"y", "source": "bot", "labels": {"b": "2", "a": "1"},
                "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600.5,
                "quantity": -2, "pnl": 18446744073709551615u64, "pnl_pct": 4.0,
                "reason": "caf\u{e9} \n\u{1}", "nested": {"z": [1, null, true], "a": {}}
            }))
            .unwrap(),
        ];
        // A rule's `set` can put reserved names among the data, with or without a source.
        let mut set = events[1].clone();
        for k in ["source", "type", "labels", "id", "zz"] {
            set.data.insert(k.into(), json!(k));
        }
        events.push(set.clone());
        set.source = None;
        events.push(set);
        let mut many = parse(json!({"type": "x", "source": "s"})).unwrap();
        for i in 0..40 {
            many.data.insert(format!("k{i}"), json!(i));
        }
        many.data.insert("time".into(), json!(1));
        events.push(many);
        for e in &events {
            let want = to_json_reference(e);
            let got = e.to_json();
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&got), keys(&want));
            assert_eq!(got, want);
            assert_eq!(e.to_json_string(), want.to_string());
            assert_eq!(e.field_count(), want.as_object().unwrap().len());
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(e.field(k).map(FieldRef::to_json).as_ref(), Some(v), "{k}");
            }
            assert!(e.field("nope").is_none());
        }
    }

    #[test]
    fn defaults_fill_what_is_missing() {
        let e = parse(json!({"type": "ping"})).unwrap();
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(e.time, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(
            (e.id.len(), e.id_given),
            (36, false),
            "a made-up id is not remembered"
        );
        assert_eq!(
            parse(json!({"type": "error", "message": "x"}))
                .unwrap()
                .severity,
            Severity::Error
        );
    }

    #[test]
    fn bad_reserved_keys_name_the_field() {
        let cases = [
            (json!({"severity": "info"}), "type"),
            (json!({"type": 3}), "type"),
            (json!({"type": "Trade Opened"}), "type"),
            (json!({"type": "x", "severity": "loud"}), "severity"),
            (json!({"type": "x", "time": "yesterday"}), "time"),
            (json!({"type": "x", "labels": ["a"]}), "labels"),
            (json!({"type": "x", "labels": {"a": {"b": 1}}}), "labels.a"),
        ];
        for (input, field) in cases {
            let err = parse(input.clone()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{input} -> {err}");
        }
        assert!(
            parse(json!([1]))
                .unwrap_err()
                .to_string()
                .contains("must be a JSON object")
        );
    }

    #[test]
    fn ids_are_printable_and_counted_in_characters() {
        for bad in ["a\nb", "tab\t", "\u{7f}", "nul\u{0}", "c1\u{85}"] {
            let err = parse(json!({"type": "x", "id": bad})).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("id"), "{bad:?}");
            assert!(err.message.contains("control character"), "{err}");
        }
        let err = parse(json!({"type": "x", "id": "ok\nno"})).unwrap_err();
        assert!(err.message.contains("U+000A at character 3"), "{err}");
        let e = parse(json!({"type": "x", "id": "é".repeat(100)})).unwrap();
        assert_eq!(e.id.chars().count(), 100);
        assert!(parse(json!({"type": "x", "id": "é".repeat(128)})).is_ok());
        let err = parse(json!({"type": "x", "id": "é".repeat(129)})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("id"));
        assert!(err.message.contains("129 characters"), "{err}");
        assert!(parse(json!({"type": "x", "id": ""})).is_err());
        assert!(parse(json!({"type": "x", "id": "ünï ✓ 日本"})).is_ok());
    }

    #[test]
    fn times_are_years_1_to_9999_in_utc() {
        for bad in [
            "0000-01-01T00:00:00+23:59",
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:30:00-00:31",
        ] {
            let err = parse(json!({"type": "x", "time": bad})).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("time"), "{bad}");
            assert!(
                err.message.contains("0001-01-01T00:00:00Z")
                    && err.message.contains("9999-12-31T23:59:59Z"),
                "{err}"
            );
        }
        for good in [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:30:00-01:00",
            "9999-12-31T23:59:59.999999999Z",
            "9999-12-31T23:59:59+23:59",
        ] {
            let e = parse(json!({"type": "x", "time": good})).unwrap();
            // Every accepted time can be written back.
            assert!(format_time(e.time).len() >= 20, "{good}");
        }
    }

    #[test]
    fn the_time_bounds_are_years_1_and_10000() {
        use time::macros::datetime;
        assert_eq!(datetime!(0001-01-01 0:00 UTC).unix_timestamp(), EARLIEST);
        assert_eq!(
            datetime!(9999-12-31 23:59:59 UTC).unix_timestamp() + 1,
            AFTER_LATEST
        );
    }

    #[test]
    fn fields_labels_and_type_have_limits() {
        let mut wide = json!({"type": "x"});
        for i in 0..256 {
            wide[format!("f{i}")] = json!(i);
        }
        assert!(parse(wide.clone()).is_ok());
        wide["one_more"] = json!(1);
        let err = parse(wide).unwrap_err();
        assert!(
            err.message.contains("257 fields") && err.message.contains("256"),
            "{err}"
        );
        let labels: Map<String, Value> = (0..65).map(|i| (format!("l{i}"), json!("v"))).collect();
        let err = parse(json!({"type": "x", "labels": labels})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("labels"));
        assert!(
            err.message.contains("65 labels") && err.message.contains("64"),
            "{err}"
        );
        assert!(parse(json!({"type": "t".repeat(128)})).is_ok());
        let err = parse(json!({"type": "t".repeat(129)})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("type"));
        assert!(err.message.contains("129 characters"), "{err}");
    }

    #[test]
    fn trading_types_are_validated() {
        let ok = json!({"type": "trade_opened", "symbol": "BTC/USDT", "side": "BUY",
                        "entry_price": 45000, "quantity": 0.5, "strategy": "RSI_MACD"});
        assert!(parse(ok).is_ok());
        let err = parse(
            json!({"type": "trade_opened", "symbol": "BTC/USDT", "side": "BUY",
                               "entry_price": "45000", "quantity": 0.5}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `entry_price`: expected a number, got the string \"45000\""
        );
        let err = parse(json!({"type": "trade_closed", "symbol": "ETH/USDT"})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("side"));
        let err = parse(json!({"type": "portfolio_update", "total_value": 1,
                               "positions": [{"symbol": "BTC", "side": "LONG", "quantity": 1,
                                              "entry_price": 1, "current_price": "x"}]}))
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("positions[0].current_price"));
        // custom types pass through with any fields
        assert!(parse(json!({"type": "my.custom-event", "anything": [1, {"x": null}]})).is_ok());
        // durations may be text, as the original module sent them
        assert!(
            parse(
                json!({"type": "trade_closed", "symbol": "E", "side": "SELL", "entry_price": 1,
                             "exit_price": 2, "quantity": 1, "pnl": 1, "pnl_pct": 1,
                             "duration": "3 hours"})
            )
            .is_ok()
        );
    }
}
