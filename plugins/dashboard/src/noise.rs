//! The noise-control section: what the router is holding back and why. Firing alerts
//! (and what holds each back), the silences in force or to come (and how many messages
//! each held back), and the messages held back by reason, router-wide and per sink.
//! Shaped from the router's `status`, `alerts` and `silences` answers; resolved alerts
//! and expired silences are only counted, since nothing is held back by them any more.
//!
//! Values are passed on as the router gave them, never escaped here: the page writes
//! every one as text.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Firing alerts and current silences listed at most, each list: the page is refreshed
/// every few seconds, and a storm of alerts must not make every refresh huge.
pub const MAX_SHOWN: usize = 100;

/// `GET /api/noise` (and the event stream's `noise` event) from the router's answers to
/// `status`, `alerts` and `silences`, at `now` (for "since" and "ends in"):
///
/// ```json
/// {"held_back": {"router": {"silenced": 1, ...}, "sinks": {"<sink>": {"silenced": 1, ...}}},
///  "alerts": {"firing": [{"fingerprint", "type", "severity", "labels", "starts_at",
///                         "since_seconds", "count", "route", "held_back"}],
///             "counts": {"firing": 1, "resolved": 0}},
///  "silences": {"current": [{"id", "state", "matchers", "starts_at", "ends_at",
///                            "starts_in_seconds", "ends_in_seconds", "created_by",
///                            "comment", "held_back"}],
///               "counts": {"active": 1, "pending": 0, "expired": 0}},
///  "groups": {"open": 0, "held_entries": 0},
///  "max_shown": 100}
/// ```
///
/// Active silences come first, the soonest to end first; then pending ones, the soonest
/// to start first. Alerts keep the router's order (the newest first).
pub fn section(status: &Value, alerts: &Value, silences: &Value, now: OffsetDateTime) -> Value {
    let notify = &status["notify"];
    json!({
        "held_back": {
            "router": counts_or_empty(&notify["held_back"]),
            "sinks": per_sink(status),
        },
        "alerts": firing(alerts, now),
        "silences": current(silences, now),
        "groups": {
            "open": notify["open"]["groups"],
            "held_entries": notify["open"]["held_entries"],
        },
        "max_shown": MAX_SHOWN,
    })
}

/// A `held_back` object of counts by reason, or `{}` from a router that has none.
fn counts_or_empty(held: &Value) -> Value {
    match held {
        Value::Object(map) => Value::Object(map.clone()),
        _ => Value::Object(Map::new()),
    }
}

/// Each sink's messages held back, by reason.
fn per_sink(status: &Value) -> Value {
    let mut sinks = Map::new();
    if let Some(all) = status["sinks"].as_object() {
        for (name, sink) in all {
            sinks.insert(name.clone(), counts_or_empty(&sink["held_back"]));
        }
    }
    Value::Object(sinks)
}

fn list<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer[key].as_array().map_or(&[], Vec::as_slice)
}

fn firing(alerts: &Value, now: OffsetDateTime) -> Value {
    let all = list(alerts, "alerts");
    let is_firing = |a: &&Value| a["status"] == "firing";
    let firing_count = all.iter().filter(is_firing).count();
    let shown: Vec<Value> = all
        .iter()
        .filter(is_firing)
        .take(MAX_SHOWN)
        .map(|a| {
            json!({
                "fingerprint": a["fingerprint"],
                "type": a["type"],
                "severity": a["severity"],
                "labels": a["labels"],
                "starts_at": a["starts_at"],
                "since_seconds": seconds_between(time_of(&a["starts_at"]), Some(now)),
                "count": a["count"],
                "route": a["route"],
                "held_back": a["held_back"],
            })
        })
        .collect();
    json!({
        "firing": shown,
        "counts": {"firing": firing_count, "resolved": all.len() - firing_count},
    })
}

fn current(silences: &Value, now: OffsetDateTime) -> Value {
    let all = list(silences, "silences");
    let state_count = |state: &str| all.iter().filter(|s| s["state"] == state).count();
    let mut current: Vec<(u8, Option<OffsetDateTime>, &Value)> = all
        .iter()
        .filter_map(|s| match s["state"].as_str() {
            Some("active") => Some((0, time_of(&s["ends_at"]), s)),
            Some("pending") => Some((1, time_of(&s["starts_at"]), s)),
            _ => None,
        })
        .collect();
    // A time the router wrote badly sorts last in its state rather than first.
    current.sort_by_key(|(state, at, _)| (*state, at.is_none(), *at));
    let shown: Vec<Value> = current
        .into_iter()
        .take(MAX_SHOWN)
        .map(|(_, _, s)| {
            let pending = s["state"] == "pending";
            json!({
                "id": s["id"],
                "state": s["state"],
                "matchers": s["matchers"],
                "starts_at": s["starts_at"],
                "ends_at": s["ends_at"],
                "starts_in_seconds": if pending {
                    seconds_between(Some(now), time_of(&s["starts_at"]))
                } else {
                    None
                },
                "ends_in_seconds": seconds_between(Some(now), time_of(&s["ends_at"])),
                "created_by": s["created_by"],
                "comment": s["comment"],
                "held_back": s["held_back"],
            })
        })
        .collect();
    json!({
        "current": shown,
        "counts": {
            "active": state_count("active"),
            "pending": state_count("pending"),
            "expired": state_count("expired"),
        },
    })
}

fn time_of(v: &Value) -> Option<OffsetDateTime> {
    v.as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// Whole seconds from `from` to `to`, never negative (a refresh may come a moment after
/// a silence ended); `None` when either time is unknown.
fn seconds_between(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> Option<i64> {
    Some((to? - from?).whole_seconds().max(0))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-04 12:00:00 UTC);

    fn silence(id: &str, state: &str, starts_at: &str, ends_at: &str) -> Value {
        json!({"id": id, "state": state, "matchers": ["labels.exchange=\"binance\""],
               "starts_at": starts_at, "ends_at": ends_at, "created_by": "ana",
               "comment": "maintenance", "updated_at": starts_at, "held_back": 2})
    }

    #[test]
    fn current_silences_come_active_first_soonest_ending_first_then_pending() {
        let silences = json!({"silences": [
            silence("late", "active", "2026-12-04T11:00:00Z", "2026-12-04T15:00:00Z"),
            silence("gone", "expired", "2026-12-04T09:00:00Z", "2026-12-04T10:00:00Z"),
            silence("later", "pending", "2026-12-04T14:00:00Z", "2026-12-04T16:00:00Z"),
            silence("soon", "active", "2026-12-04T11:00:00Z", "2026-12-04T12:30:00Z"),
            silence("next", "pending", "2026-12-04T13:00:00Z", "2026-12-04T18:00:00Z"),
        ]});
        let out = current(&silences, NOW);
        let ids: Vec<&str> = out["current"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["soon", "late", "next", "later"]);
        assert_eq!(
            out["counts"],
            json!({"active": 2, "pending": 2, "expired": 1})
        );
        let soon = &out["current"][0];
        assert_eq!(soon["ends_in_seconds"], 1800);
        assert_eq!(soon["starts_in_seconds"], Value::Null, "it has started");
        assert_eq!(soon["held_back"], 2);
        let next = &out["current"][2];
        assert_eq!(next["starts_in_seconds"], 3600);
        assert_eq!(next["ends_in_seconds"], 6 * 3600);
    }

    #[test]
    fn only_firing_alerts_are_listed_without_their_event() {
        let alerts = json!({"alerts": [
            {"fingerprint": "f2", "status": "firing", "type": "exchange_down", "severity": "error",
             "labels": {"exchange": "binance"}, "starts_at": "2026-12-04T11:58:00Z", "ends_at": null,
             "updated_at": "2026-12-04T11:59:00Z", "count": 3, "route": "r",
             "held_back": "silenced by s1", "event": {"big": "payload"}},
            {"fingerprint": "f1", "status": "resolved", "type": "cpu_high", "severity": "warning",
             "labels": {}, "starts_at": "2026-12-04T10:00:00Z"},
        ]});
        let out = firing(&alerts, NOW);
        assert_eq!(out["counts"], json!({"firing": 1, "resolved": 1}));
        let shown = out["firing"].as_array().unwrap();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0]["fingerprint"], "f2");
        assert_eq!(shown[0]["since_seconds"], 120);
        assert_eq!(shown[0]["held_back"], "silenced by s1");
        assert!(shown[0].get("event").is_none(), "the event can be large");
    }

    #[test]
    fn a_storm_of_alerts_is_cut_to_the_newest_and_still_counted() {
        let many: Vec<Value> = (0..MAX_SHOWN + 5)
            .map(|i| json!({"fingerprint": format!("f{i}"), "status": "firing"}))
            .collect();
        let out = firing(&json!({"alerts": many}), NOW);
        assert_eq!(out["firing"].as_array().unwrap().len(), MAX_SHOWN);
        assert_eq!(out["firing"][0]["fingerprint"], "f0", "the router's order");
        assert_eq!(out["counts"]["firing"], MAX_SHOWN + 5);
    }

    #[test]
    fn answers_of_another_shape_give_an_empty_section_not_an_error() {
        let out = section(&json!({}), &json!({"alerts": "no"}), &json!(null), NOW);
        assert_eq!(out["held_back"], json!({"router": {}, "sinks": {}}));
        assert_eq!(out["alerts"]["firing"], json!([]));
        assert_eq!(out["silences"]["current"], json!([]));
        let odd = current(
            &json!({"silences": [silence("x", "active", "yesterday", "tomorrow")]}),
            NOW,
        );
        assert_eq!(odd["current"][0]["ends_in_seconds"], Value::Null);
    }
}
