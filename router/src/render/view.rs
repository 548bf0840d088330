//! A JSON document as a template value, read in place: the event is cloned once per
//! context, not converted field by field, and a template reads only the fields it uses.
//!
//! [`event`] goes one step further for the hot path: the [`Event`] itself as the value
//! `event.to_json()` would give, shared (an `Arc`), not copied at all.

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::Value as Json;

use crate::event::{Event, FieldRef, format_time};

/// `json` as a template value: scalars as they are, objects and arrays as views.
pub(super) fn value(json: &Json) -> Value {
    value_in(json, false)
}

/// [`value`]; with `sorted`, maps list their keys in sorted order, as minijinja's own
/// conversion (`Value::from(Serde(..))`) gives them.
fn value_in(json: &Json, sorted: bool) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => number(n),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(_) | Json::Object(_) => Value::from_object(JsonView {
            json: json.clone(),
            sorted,
        }),
    }
}

fn number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::from(i)
    } else if let Some(u) = n.as_u64() {
        Value::from(u)
    } else {
        Value::from(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// A JSON object (a map to templates) or array (a list).
#[derive(Debug)]
struct JsonView {
    json: Json,
    /// Keys listed in sorted order rather than the document's.
    sorted: bool,
}

/// Below this many keys a linear scan beats hashing the key.
const SCAN: usize = 16;

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.json {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match &self.json {
            Json::Object(_) => self.get_value_by_str(key.as_str()?),
            Json::Array(items) => items.get(key.as_usize()?).map(|v| value_in(v, self.sorted)),
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let Json::Object(map) = &self.json else {
            return None;
        };
        let found = if map.len() <= SCAN {
            map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
        } else {
            map.get(key)
        };
        found.map(|v| value_in(v, self.sorted))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.json {
            Json::Object(map) => {
                let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                if self.sorted {
                    keys.sort_unstable();
                }
                Enumerator::Values(keys.into_iter().map(Value::from).collect())
            }
            Json::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match &self.json {
            Json::Object(map) => Some(map.len()),
            Json::Array(items) => Some(items.len()),
            _ => Some(0),
        }
    }
}

/// `event` as a template value: exactly what [`value`] makes of `event.to_json()` (the
/// same keys in the same order, the same values), read from the shared event instead of
/// a copy of it. Rules and templates read a handful of fields of each event, so copying
/// all of them for every route and every sink was most of the cost of a context.
pub(crate) fn event(event: &Arc<Event>) -> Value {
    Value::from_object(EventView {
        event: event.clone(),
        sorted: false,
    })
}

/// [`event`] as rule expressions have always seen it: `Value::from(Serde(event.to_json()))`,
/// whose maps list their keys sorted.
pub(crate) fn event_sorted(event: &Arc<Event>) -> Value {
    Value::from_object(EventView {
        event: event.clone(),
        sorted: true,
    })
}

/// An event as a map: [`Event::to_json`]'s keys, borrowed.
#[derive(Debug)]
struct EventView {
    event: Arc<Event>,
    /// Keys (here and in nested maps) listed sorted rather than in `to_json`'s order.
    sorted: bool,
}

impl EventView {
    fn field_value(self: &Arc<Self>, field: FieldRef<'_>) -> Value {
        match field {
            FieldRef::Data(v) => value_in(v, self.sorted),
            FieldRef::Str(s) => Value::from(s),
            FieldRef::Time(t) => Value::from(format_time(t)),
            // Labels are kept sorted: both orders are the same.
            FieldRef::Labels(_) => Value::from_object(LabelsView(self.event.clone())),
        }
    }
}

impl Object for EventView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let field = self.event.field(key)?;
        Some(self.field_value(field))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys = Vec::with_capacity(self.event.data.len() + 6);
        let _ = self.event.try_for_each_field(|k, _| {
            keys.push(k);
            Ok::<(), std::convert::Infallible>(())
        });
        if self.sorted {
            keys.sort_unstable();
        }
        Enumerator::Values(keys.into_iter().map(Value::from).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.event.field_count())
    }
}

/// An event's labels as a map of strings, in key order (as `to_json` writes them).
#[derive(Debug)]
struct LabelsView(Arc<Event>);

impl Object for LabelsView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.0.labels.get(key).map(|v| Value::from(v.as_str()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.0
                .labels
                .keys()
                .map(|k| Value::from(k.as_str()))
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.labels.len())
    }
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, UndefinedBehavior, context};
    use serde_json::json;

    use super::*;

    /// Renders `src` with `event` as a view and as minijinja's own conversion; both must
    /// agree.
    fn both(src: &str, event: &Json) -> (String, String) {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let render = |v: Value| {
            env.render_str(src, context!(event => v))
                .unwrap_or_else(|e| format!("error: {e}"))
        };
        (
            render(value(event)),
            render(Value::from(minijinja::value::Serde(event))),
        )
    }

    #[test]
    fn maps_keep_the_event_key_order() {
        let event = json!({"z": 1, "a": 2});
        let (view, _) = both(
            "{% for k in event %}{{ k }}{% endfor %} {{ event }}",
            &event,
        );
        assert_eq!(view, "za {'z': 1, 'a': 2}");
    }

    #[test]
    fn templates_see_the_same_event_as_with_a_converted_one() {
        let event = json!({
            "type": "portfolio_update", "n": -3, "big": u64::MAX, "f": 2.5, "ok": true, "none": null,
            "labels": {"env": "prod", "team": "a"},
            "positions": [{"symbol": "BTC", "pnl": 5}, {"symbol": "ETH", "pnl": -2}],
        });
        for src in [
            "{{ event.type }} {{ event.n }} {{ event.big }} {{ event.f }} {{ event.ok }} {{ event.none }}",
            "{{ event.labels.env }} {{ event['labels']['team'] }} {{ 'env' in event.labels }}",
            "{% for k, v in event.labels|items %}{{ k }}={{ v }};{% endfor %}",
            "{{ event.positions|length }} {{ event.positions[1].symbol }} {{ event.positions|map(attribute='pnl')|sum }}",
            "{% for p in event.positions %}{{ loop.index }}:{{ p.symbol }} {% endfor %}",
            "{{ event.labels is mapping }} {{ event.positions is sequence }} {{ event.nope is defined }}",
            "{{ event.labels|tojson }} {{ (event.positions|first).symbol }}",
            "{{ event.labels }}",
            "{{ event.missing }}",
            "{{ event.positions[0].missing }}",
        ] {
            let (view, converted) = both(src, &event);
            assert_eq!(view, converted, "{src}");
        }
    }

    /// Events with everything an event can have, and a rule's `set` putting reserved
    /// names among the data.
    fn events() -> Vec<Arc<Event>> {
        let raw = json!({
            "type": "portfolio_update", "severity": "Warning", "time": "2025-11-03T14:30:00Z",
            "id": "e-1", "source": "bot", "labels": {"team": "a", "env": "prod"},
            "total_value": 10, "n": -3, "big": u64::MAX, "f": 2.5, "ok": true, "none": null,
            "positions": [{"symbol": "BTC", "side": "LONG", "quantity": 1, "entry_price": 1,
                           "current_price": 2, "pnl": 5}],
        });
        let plain = Event::from_json(raw, time::OffsetDateTime::UNIX_EPOCH).unwrap();
        let mut set = plain.clone();
        for k in ["type", "source", "zz"] {
            set.data.insert(k.into(), json!(format!("set-{k}")));
        }
        let mut no_source = set.clone();
        no_source.source = None;
        let bare =
            Event::from_json(json!({"type": "x"}), time::OffsetDateTime::UNIX_EPOCH).unwrap();
        [plain, set, no_source, bare]
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    #[test]
    fn an_event_view_is_its_json_to_templates() {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for e in events() {
            let json = e.to_json();
            for src in [
                "{{ event }}",
                "{{ event|pprint }}",
                "{{ event|tojson }}",
                "{{ event|length }} {{ event is mapping }} {{ event|list }}",
                "{% for k, v in event|items %}{{ k }}={{ v }};{% endfor %}",
                "{% for k in event %}{{ k }},{% endfor %} {{ event|dictsort }}",
                "{{ event.type }} {{ event['severity'] }} {{ event.time }} {{ event.id }}",
                "{{ event.source is defined }} {{ event.zz|default('-') }} {{ event.big }}",
                "{{ event.labels }} {{ event.labels|length }} {{ event.labels.env }} {{ 'env' in event.labels }}",
                "{% for k, v in event.labels|items %}{{ k }}={{ v }};{% endfor %} {{ event.labels|tojson }}",
                "{{ event.labels == {'env': 'prod', 'team': 'a'} }} {{ event == event }}",
                "{{ event.positions[0].symbol|default('') }} {{ event.n + 1 }} {{ event.f * 2 }}",
                "{{ event.missing }}",
                "{{ event.labels.missing }}",
                "{{ event[3] }}",
            ] {
                let render = |v: Value| {
                    env.render_str(src, context!(event => v))
                        .unwrap_or_else(|e| format!("error: {e}"))
                };
                assert_eq!(render(event(&e)), render(value(&json)), "{src}");
            }
        }
    }

    #[test]
    fn an_event_view_is_its_json_to_rule_expressions() {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for e in events() {
            let json = e.to_json();
            for src in [
                "event.type == 'portfolio_update'",
                "event.total_value > 5 and event.severity in ['warning', 'error']",
                "event.labels.env == 'prod'",
                "event.positions|length > 0",
                "event.big > 1",
                "event.missing < 3",
                "event",
            ] {
                let expr = env.compile_expression(src).unwrap();
                let eval = |v: Value| match expr.eval(context!(event => v)) {
                    Ok(v) => format!("{} {v:?}", v.is_true()),
                    Err(e) => format!("error: {e}"),
                };
                let want = eval(Value::from(minijinja::value::Serde(&json)));
                assert_eq!(eval(event_sorted(&e)), want, "{src}");
            }
        }
    }
}
