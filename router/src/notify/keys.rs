//! Keys that name a part of an event, as `group_by`, `key`, `throttle.key` and an
//! inhibition's `equal` write them: `type`, `severity`, `source`, `labels.<name>`,
//! `labels.*` (every label together, Alertmanager's `group_by: ['...']`), or a top-level
//! field (`component`). Their values, as text, identify groups, alerts and
//! throttle series.

use serde_json::Value;

use crate::event::Event;

/// One key, parsed once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Type,
    Severity,
    Source,
    Label(String),
    /// Every label, as one value.
    Labels,
    Field(String),
}

impl Key {
    /// `type`, `severity`, `source`, `labels.<name>` or a field's name.
    pub fn parse(text: &str) -> Result<Key, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(
                "an empty key: write `type`, `severity`, `labels.<name>` or a field's name".into(),
            );
        }
        Ok(match text {
            "type" => Key::Type,
            "severity" => Key::Severity,
            "source" => Key::Source,
            "labels.*" => Key::Labels,
            "labels" | "labels." => {
                return Err(format!(
                    "`{text}`: name one label, e.g. labels.exchange, or every one: labels.*"
                ));
            }
            _ => match text.strip_prefix("labels.") {
                Some(name) => Key::Label(name.to_owned()),
                None => Key::Field(text.to_owned()),
            },
        })
    }

    /// The key's value in `event` as text; `None` when the event has no such part (a
    /// missing key groups with the others that miss it, as an empty label does in
    /// Alertmanager).
    pub fn value(&self, event: &Event) -> Option<String> {
        match self {
            Key::Type => Some(event.kind.clone()),
            Key::Severity => Some(event.severity.as_str().to_owned()),
            Key::Source => event.source.clone(),
            Key::Label(name) => event.labels.get(name).cloned(),
            Key::Labels => Some(all_labels(event)),
            Key::Field(name) => event.data.get(name).map(text_of),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Type => f.write_str("type"),
            Key::Severity => f.write_str("severity"),
            Key::Source => f.write_str("source"),
            Key::Label(name) => write!(f, "labels.{name}"),
            Key::Labels => f.write_str("labels.*"),
            Key::Field(name) => f.write_str(name),
        }
    }
}

/// Every label of `event` as one text, `a=1,b=x` in name order.
fn all_labels(event: &Event) -> String {
    let labels: Vec<(String, String)> = event
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    joined(&labels)
}

/// A JSON value as text: strings as they are, anything else as JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values of `keys` in `event`, in order, as one map (missing ones as empty text).
pub fn values(keys: &[Key], event: &Event) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| (k.to_string(), k.value(event).unwrap_or_default()))
        .collect()
}

/// FNV-1a, 64 bits, as hex: the hash Alertmanager's fingerprints use, for short stable
/// ids of alerts and series.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(PRIME);
    }
    format!("{hash:016x}")
}

/// [`joined`] of `keys`' values in `event`, made in one string.
pub fn joined_values(keys: &[Key], event: &Event) -> String {
    let mut out = String::new();
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let value = match k {
            Key::Type => Some(std::borrow::Cow::Borrowed(event.kind.as_str())),
            Key::Severity => Some(std::borrow::Cow::Borrowed(event.severity.as_str())),
            Key::Source => event.source.as_deref().map(std::borrow::Cow::Borrowed),
            Key::Label(name) => event
                .labels
                .get(name)
                .map(|v| std::borrow::Cow::Borrowed(v.as_str())),
            Key::Labels => Some(std::borrow::Cow::Owned(all_labels(event))),
            Key::Field(name) => event.data.get(name).map(|v| match v {
                Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                other => std::borrow::Cow::Owned(other.to_string()),
            }),
        };
        let value = value.unwrap_or_default();
        out.push_str(&k.to_string());
        out.push('=');
        if value.contains([',', '=', '"']) {
            out.push_str(&Value::String(value.into_owned()).to_string());
        } else {
            out.push_str(&value);
        }
    }
    out
}

/// `a=1,b=x`: a readable, unique text for a set of key values.
pub fn joined(values: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        // A value holding the separators is quoted, so two different sets never join
        // into the same text.
        if v.contains([',', '=', '"']) {
            out.push_str(&Value::String(v.clone()).to_string());
        } else {
            out.push_str(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: Value) -> Event {
        Event::from_json(json, time::OffsetDateTime::UNIX_EPOCH).expect("a valid event")
    }

    #[test]
    fn keys_read_reserved_keys_labels_and_fields() {
        let e = event(
            serde_json::json!({"type": "failure", "severity": "error", "source": "bot",
            "labels": {"exchange": "binance"}, "component": "api", "code": 502}),
        );
        let keys: Vec<Key> = [
            "type",
            "severity",
            "source",
            "labels.exchange",
            "component",
            "code",
            "labels.none",
        ]
        .iter()
        .map(|k| Key::parse(k).expect("a key"))
        .collect();
        let got: Vec<Option<String>> = keys.iter().map(|k| k.value(&e)).collect();
        assert_eq!(
            got,
            [
                Some("failure"),
                Some("error"),
                Some("bot"),
                Some("binance"),
                Some("api"),
                Some("502"),
                None
            ]
            .map(|v| v.map(str::to_owned))
        );
        assert_eq!(keys[3].to_string(), "labels.exchange");
        assert!(
            Key::parse("labels.")
                .unwrap_err()
                .contains("labels.exchange")
        );
        assert!(Key::parse(" ").is_err());
    }

    #[test]
    fn joined_values_in_one_go_are_the_joined_values() {
        let e = event(serde_json::json!({"type": "t", "labels": {"a": "x,y"}, "n": 2}));
        let keys: Vec<Key> = ["labels.a", "n", "source", "type", "labels.*"]
            .iter()
            .map(|k| Key::parse(k).expect("a key"))
            .collect();
        assert_eq!(joined_values(&keys, &e), joined(&values(&keys, &e)));
    }

    /// Alertmanager's `group_by: ['...']`: one group per set of labels.
    #[test]
    fn every_label_is_one_key() {
        let all = Key::parse("labels.*").expect("a key");
        let a = event(serde_json::json!({"type": "t", "labels": {"b": "2", "a": "1"}}));
        let b = event(serde_json::json!({"type": "u", "labels": {"a": "1", "b": "2"}}));
        let c = event(serde_json::json!({"type": "t", "labels": {"a": "1"}}));
        assert_eq!(all.value(&a).as_deref(), Some("a=1,b=2"));
        assert_eq!(all.value(&a), all.value(&b), "labels only, in name order");
        assert_ne!(all.value(&a), all.value(&c));
        assert_eq!(all.to_string(), "labels.*");
    }

    #[test]
    fn joined_values_never_collide() {
        let a = joined(&[("a".into(), "1,b=2".into())]);
        let b = joined(&[("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_ne!(a, b);
        assert_eq!(b, "a=1,b=2");
    }
}
