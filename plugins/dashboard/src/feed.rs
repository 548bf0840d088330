//! The live feed: what each delivered message becomes on the page ([`FeedItem`]), and
//! the bounded, in-memory history of them ([`Feed`]) a page receives on load.

use std::collections::VecDeque;

use alert_router_plugin::Message;
use serde::Serialize;
use serde_json::Value;

/// Longest title and text kept per item (characters); longer ones end in `…`.
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 2_000;

/// Severities in order, as the router writes them.
pub const SEVERITIES: [&str; 5] = ["debug", "info", "warning", "error", "critical"];

/// The rank of a severity (`debug` 0 .. `critical` 4); unknown ones rank as `info`.
pub fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| s.eq_ignore_ascii_case(severity))
        .unwrap_or(1)
}

/// One routed event as the feed shows it: the template's `title`, `text` and `tone`,
/// and the event's identity.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedItem {
    /// Increases by one per item this process delivered (an SSE event id).
    pub seq: u64,
    /// The message id (stable across attempts).
    pub id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub severity: String,
    /// The event's time, RFC 3339.
    pub time: String,
    pub title: String,
    pub text: String,
    /// `positive`, `negative` or `neutral`: how the page colors the item's figures.
    pub tone: String,
    pub source: Option<String>,
}

impl FeedItem {
    /// The feed item for `message`. The payload is the rendered
    /// `templates/dashboard/<type>.yaml` (`title`, `text`, optionally `tone` and
    /// `severity`); a payload without them falls back to the event's type and fields,
    /// so any template (or none) gives a readable item.
    pub fn from_message(seq: u64, message: &Message) -> FeedItem {
        let event = &message.event;
        let payload = &message.payload;
        let field = |v: &Value, k: &str| -> Option<String> {
            match v.get(k)? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let event_type = field(event, "type").unwrap_or_else(|| "event".to_owned());
        let severity = field(payload, "severity")
            .or_else(|| field(event, "severity"))
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| SEVERITIES.contains(&s.as_str()))
            .unwrap_or_else(|| "info".to_owned());
        let title = field(payload, "title").unwrap_or_else(|| event_type.clone());
        // A template's `text` is kept even when it renders empty (nothing more to say);
        // only a payload without one falls back to the event's fields.
        let text = match (payload.get("text"), payload) {
            (Some(Value::String(s)), _) => s.trim().to_owned(),
            (_, Value::String(s)) => s.clone(),
            _ => summary(event),
        };
        let tone = field(payload, "tone")
            .map(|t| t.to_ascii_lowercase())
            .filter(|t| matches!(t.as_str(), "positive" | "negative" | "neutral"))
            .unwrap_or_else(|| "neutral".to_owned());
        FeedItem {
            seq,
            id: message.id.clone(),
            event_id: field(event, "id").unwrap_or_default(),
            event_type,
            severity,
            time: field(event, "time").unwrap_or_default(),
            title: cut(&title, MAX_TITLE),
            text: cut(&text, MAX_TEXT),
            tone,
            source: field(event, "source"),
        }
    }
}

/// `key: value` for the event's data fields, for a payload that has no `text`.
fn summary(event: &Value) -> String {
    let Some(map) = event.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "type" | "severity" | "time" | "id" | "labels" | "source"
            )
        })
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `text` cut to `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((i, _)) => format!("{}…", &text[..i]),
    }
}

/// The newest items, oldest first, at most `limit`.
#[derive(Debug)]
pub struct Feed {
    items: VecDeque<FeedItem>,
    limit: usize,
    next_seq: u64,
}

impl Feed {
    pub fn new(limit: usize) -> Feed {
        Feed {
            items: VecDeque::new(),
            limit: limit.max(1),
            next_seq: 1,
        }
    }

    /// Changes how many items are kept (a reload changed `max_events`).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
        while self.items.len() > self.limit {
            self.items.pop_front();
        }
    }

    /// Adds the item for `message`; `None` when the message is already in the feed (a
    /// message delivered again, e.g. after a reload).
    pub fn push(&mut self, message: &Message) -> Option<FeedItem> {
        if self.items.iter().rev().any(|i| i.id == message.id) {
            return None;
        }
        let item = FeedItem::from_message(self.next_seq, message);
        self.next_seq += 1;
        self.items.push_back(item.clone());
        if self.items.len() > self.limit {
            self.items.pop_front();
        }
        Some(item)
    }

    /// Up to `limit` items at or above `min_severity`, newest first.
    pub fn recent(&self, min_severity: usize, limit: usize) -> Vec<FeedItem> {
        self.items
            .iter()
            .rev()
            .filter(|i| rank(&i.severity) >= min_severity)
            .take(limit)
            .cloned()
            .collect()
    }

    /// How many items are kept at most.
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(id: &str, payload: Value, event: Value) -> Message {
        serde_json::from_value(
            json!({"id": id, "sink": "dashboard", "payload": payload, "event": event}),
        )
        .unwrap()
    }

    #[test]
    fn an_item_takes_the_templates_words_and_the_events_identity() {
        let m = message(
            "m1",
            json!({"title": "✅ Trade Closed", "text": "ETH/USDT +$200.00", "tone": "positive"}),
            json!({"type": "trade_closed", "severity": "info", "time": "2025-11-03T17:30:00Z", "id": "e1", "source": "bot"}),
        );
        let item = FeedItem::from_message(7, &m);
        assert_eq!(item.seq, 7);
        assert_eq!((item.id.as_str(), item.event_id.as_str()), ("m1", "e1"));
        assert_eq!(item.event_type, "trade_closed");
        assert_eq!(item.title, "✅ Trade Closed");
        assert_eq!(item.text, "ETH/USDT +$200.00");
        assert_eq!(item.tone, "positive");
        assert_eq!(item.source.as_deref(), Some("bot"));
    }

    #[test]
    fn a_payload_without_words_falls_back_to_the_event() {
        let m = message(
            "m2",
            json!({}),
            json!({"type": "heartbeat", "severity": "WARNING", "time": "t", "id": "e2", "labels": {}, "cpu": 93}),
        );
        let item = FeedItem::from_message(1, &m);
        assert_eq!(item.title, "heartbeat");
        assert_eq!(item.text, "cpu: 93");
        assert_eq!(item.severity, "warning");
        assert_eq!(item.tone, "neutral");
        let said_nothing = message(
            "m4",
            json!({"title": "t", "text": " "}),
            json!({"type": "t", "x": 1}),
        );
        assert_eq!(FeedItem::from_message(1, &said_nothing).text, "");
        let long = message(
            "m3",
            json!({"text": "x".repeat(5000)}),
            json!({"type": "t"}),
        );
        assert_eq!(
            FeedItem::from_message(1, &long).text.chars().count(),
            MAX_TEXT + 1
        );
    }

    #[test]
    fn the_feed_keeps_the_newest_once_each_and_filters_by_severity() {
        let mut feed = Feed::new(3);
        for (i, sev) in ["info", "error", "debug", "critical"].iter().enumerate() {
            let m = message(
                &format!("m{i}"),
                json!({}),
                json!({"type": "x", "severity": sev}),
            );
            assert!(feed.push(&m).is_some());
        }
        assert_eq!(feed.len(), 3);
        let again = message("m3", json!({}), json!({"type": "x"}));
        assert!(
            feed.push(&again).is_none(),
            "a message already shown is not shown twice"
        );
        let ids: Vec<String> = feed.recent(0, 10).into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["m3", "m2", "m1"]);
        let errors: Vec<u64> = feed
            .recent(rank("error"), 10)
            .into_iter()
            .map(|i| i.seq)
            .collect();
        assert_eq!(errors, [4, 2]);
        feed.set_limit(1);
        assert_eq!(feed.recent(0, 10).len(), 1);
    }
}
