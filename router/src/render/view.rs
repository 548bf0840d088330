//! A JSON document as a template value, read in place: the event is cloned once per
//! context, not converted field by field, and a template reads only the fields it uses.

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::Value as Json;

/// `json` as a template value: scalars as they are, objects and arrays as views.
pub(super) fn value(json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => number(n),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(_) | Json::Object(_) => Value::from_object(JsonView(json.clone())),
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
struct JsonView(Json);

/// Below this many keys a linear scan beats hashing the key.
const SCAN: usize = 16;

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.0 {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match &self.0 {
            Json::Object(_) => self.get_value_by_str(key.as_str()?),
            Json::Array(items) => items.get(key.as_usize()?).map(value),
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let Json::Object(map) = &self.0 else {
            return None;
        };
        let found = if map.len() <= SCAN {
            map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
        } else {
            map.get(key)
        };
        found.map(value)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.0 {
            Json::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Value::from(k.as_str())).collect())
            }
            Json::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match &self.0 {
            Json::Object(map) => Some(map.len()),
            Json::Array(items) => Some(items.len()),
            _ => Some(0),
        }
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
}
