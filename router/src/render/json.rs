//! A native value (the result of a string that is exactly one `{{ expr }}`) as payload
//! JSON: strings escaped for the sink's markup unless marked `|safe`, at any depth.

use minijinja::Value;
use minijinja::value::ValueKind;
use serde_json::Value as Json;

use super::Markup;
use super::escape::escape;

/// Most items one value may turn into: a lazy `range(..)` is not bounded by fuel here.
const MAX_ITEMS: usize = 10_000;
/// Deepest nesting converted.
const MAX_DEPTH: usize = 64;

/// Why a value has no payload form.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Unconvertible {
    /// The value (or something inside it) is undefined.
    Undefined,
    /// Anything else, with the reason.
    Other(String),
}

/// `value` as JSON, its strings escaped for `markup`.
pub(super) fn to_json(value: &Value, markup: Markup) -> Result<Json, Unconvertible> {
    let mut budget = MAX_ITEMS;
    convert(value, markup, &mut budget, 0)
}

fn convert(
    value: &Value,
    markup: Markup,
    budget: &mut usize,
    depth: usize,
) -> Result<Json, Unconvertible> {
    *budget = budget.checked_sub(1).ok_or_else(|| {
        Unconvertible::Other(format!(
            "the value is too large (more than {MAX_ITEMS} items)"
        ))
    })?;
    if depth > MAX_DEPTH {
        return Err(Unconvertible::Other(format!(
            "the value is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    let json = match value.kind() {
        ValueKind::Undefined => return Err(Unconvertible::Undefined),
        ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(value.is_true()),
        ValueKind::Number => number(value)?,
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            if value.is_safe() {
                Json::String(s.to_owned())
            } else {
                Json::String(escape(markup, s))
            }
        }
        ValueKind::Bytes => {
            let bytes = value.as_bytes().unwrap_or_default();
            Json::String(escape(markup, &String::from_utf8_lossy(bytes)))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = value
                .try_iter()
                .map_err(|e| Unconvertible::Other(e.to_string()))?;
            let mut out = Vec::new();
            for item in items {
                out.push(convert(&item, markup, budget, depth + 1)?);
            }
            Json::Array(out)
        }
        ValueKind::Map => {
            let keys = value
                .try_iter()
                .map_err(|e| Unconvertible::Other(e.to_string()))?;
            let mut out = serde_json::Map::new();
            for key in keys {
                let item = value
                    .get_item(&key)
                    .map_err(|e| Unconvertible::Other(e.to_string()))?;
                let key = match key.as_str() {
                    Some(s) => s.to_owned(),
                    None => key.to_string(),
                };
                out.insert(key, convert(&item, markup, budget, depth + 1)?);
            }
            Json::Object(out)
        }
        kind => {
            return Err(Unconvertible::Other(format!("a {kind} has no JSON form")));
        }
    };
    Ok(json)
}

/// Appends `s` as a JSON string literal (quotes included), as serde_json writes it.
pub(super) fn write_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn number(value: &Value) -> Result<Json, Unconvertible> {
    if value.is_integer() {
        if let Ok(i) = i64::try_from(value.clone()) {
            return Ok(Json::from(i));
        }
        if let Ok(u) = u64::try_from(value.clone()) {
            return Ok(Json::from(u));
        }
    }
    f64::try_from(value.clone())
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Json::Number)
        .ok_or_else(|| Unconvertible::Other(format!("{value} has no JSON form")))
}

#[cfg(test)]
mod tests {
    use minijinja::context;
    use serde_json::json;

    use super::*;

    fn eval(expr: &str) -> Value {
        let env = minijinja::Environment::new();
        env.compile_expression(expr)
            .unwrap()
            .eval(context!(s => "<b>&</b>"))
            .unwrap()
    }

    #[test]
    fn keeps_native_types() {
        assert_eq!(to_json(&eval("1 + 1"), Markup::Html), Ok(json!(2)));
        assert_eq!(to_json(&eval("1.5"), Markup::Html), Ok(json!(1.5)));
        assert_eq!(
            to_json(&eval("18446744073709551615"), Markup::Html),
            Ok(json!(u64::MAX))
        );
        assert_eq!(to_json(&eval("1 == 1"), Markup::Html), Ok(json!(true)));
        assert_eq!(to_json(&eval("none"), Markup::Html), Ok(json!(null)));
        assert_eq!(
            to_json(&eval("{'a': [1, 'x'], 'b': {'c': none}}"), Markup::None),
            Ok(json!({"a": [1, "x"], "b": {"c": null}}))
        );
        assert_eq!(
            to_json(&eval("range(3)"), Markup::None),
            Ok(json!([0, 1, 2]))
        );
    }

    #[test]
    fn escapes_strings_at_any_depth_unless_safe() {
        assert_eq!(
            to_json(&eval("s"), Markup::Html),
            Ok(json!("&lt;b&gt;&amp;&lt;/b&gt;"))
        );
        assert_eq!(
            to_json(&eval("s|safe"), Markup::Html),
            Ok(json!("<b>&</b>"))
        );
        assert_eq!(
            to_json(&eval("[s, {'k': s}]"), Markup::Mrkdwn),
            Ok(json!(["&lt;b&gt;&amp;&lt;/b&gt;", {"k": "&lt;b&gt;&amp;&lt;/b&gt;"}]))
        );
        assert_eq!(to_json(&eval("s"), Markup::None), Ok(json!("<b>&</b>")));
    }

    #[test]
    fn writes_json_strings_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "q\"uote\\back",
            "line\nfeed\r\t",
            "\u{0}\u{1}\u{1f}\u{7f}\u{8}\u{c}",
            "🚀 é ✓",
        ] {
            let mut out = String::new();
            write_json_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn refuses_what_json_cannot_hold() {
        assert_eq!(
            to_json(&eval("nope"), Markup::None),
            Err(Unconvertible::Undefined)
        );
        assert_eq!(
            to_json(&eval("[1, nope]"), Markup::None),
            Err(Unconvertible::Undefined)
        );
        assert!(matches!(
            to_json(&eval("range(100000)"), Markup::None),
            Err(Unconvertible::Other(m)) if m.contains("too large")
        ));
        assert!(matches!(
            to_json(&Value::from(f64::NAN), Markup::None),
            Err(Unconvertible::Other(m)) if m.contains("no JSON form")
        ));
    }
}
