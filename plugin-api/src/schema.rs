//! A plugin's settings described once, by its serde `Settings` type: the manifest's
//! `settings` object (the header's `{type, required, secret, description}` per key) is
//! generated from the type's JSON Schema, as `schemars` derives it.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The schema keyword that marks a value secret. [`Secret`](crate::Secret) puts it in its
/// own schema; a field whose schema has it, directly or in its map values or list items,
/// is a `secret` setting.
pub const SECRET_KEYWORD: &str = "x-secret";

/// What a setting of any JSON type is declared as (a `serde_json::Value` field).
const ANY: [&str; 5] = ["string", "number", "boolean", "array", "object"];

/// The whole manifest JSON for a plugin whose settings are `S`: `markup`, `description`,
/// and `settings` generated from `S`.
pub fn manifest<S: JsonSchema>(markup: &str, description: &str) -> String {
    let mut manifest = Map::new();
    manifest.insert("markup".to_owned(), markup.into());
    manifest.insert("description".to_owned(), description.into());
    if let Some(settings) = settings::<S>() {
        manifest.insert("settings".to_owned(), Value::Object(settings));
    }
    Value::Object(manifest).to_string()
}

/// The manifest's `settings` object for `S`, or `None` when `S` is not a struct of named
/// fields (say `serde_json::Value`): then the manifest declares no settings and only the
/// plugin's `create` judges them.
pub fn settings<S: JsonSchema>() -> Option<Map<String, Value>> {
    // Inlined subschemas: a nested struct or enum is described in place, not behind a
    // `$ref` (only a recursive type still needs one).
    let schema: Value = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<S>()
        .into();
    let properties = schema.get("properties")?.as_object()?;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let settings = properties
        .iter()
        .map(|(name, field)| {
            let setting = setting(&schema, field, required.contains(&name.as_str()));
            (name.clone(), setting)
        })
        .collect();
    Some(settings)
}

/// One setting's `{type, required, secret, description}`; `false` entries are left out,
/// as in a hand-written manifest.
fn setting(root: &Value, field: &Value, required: bool) -> Value {
    let mut setting = Map::new();
    let types = match types(root, field).as_slice() {
        [] => ANY.iter().map(|t| Value::from(*t)).collect(),
        [one] => Value::from(*one),
        many => many.iter().map(|t| Value::from(*t)).collect(),
    };
    setting.insert("type".to_owned(), types);
    if required {
        setting.insert("required".to_owned(), true.into());
    }
    if is_secret(field) {
        setting.insert("secret".to_owned(), true.into());
    }
    if let Some(text) = field.get("description").and_then(Value::as_str) {
        setting.insert("description".to_owned(), first_sentence(text).into());
    }
    Value::Object(setting)
}

/// The JSON types a value of `schema` may have, `null` left out (an absent or null
/// setting is its default, not a type of its own); empty when any type will do.
fn types<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a str> {
    let mut found = Vec::new();
    collect_types(root, schema, &mut found);
    found.retain(|t| *t != "null");
    found
}

fn collect_types<'a>(root: &'a Value, schema: &'a Value, found: &mut Vec<&'a str>) {
    let mut add = |t: &'a str| {
        if !found.contains(&t) {
            found.push(t);
        }
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        // Only a recursive type keeps a `$ref`; `#` and anything unresolved is an object.
        match resolve(root, reference) {
            Some(target) if !std::ptr::eq(target, schema) => collect_types(root, target, found),
            _ => add("object"),
        }
        return;
    }
    match schema.get("type") {
        Some(Value::String(t)) => add(t),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).for_each(add),
        _ => {
            let alternatives = ["anyOf", "oneOf"]
                .iter()
                .filter_map(|k| schema.get(*k).and_then(Value::as_array))
                .flatten();
            for alternative in alternatives {
                collect_types(root, alternative, found);
            }
        }
    }
}

/// The schema a `$ref` such as `#/$defs/Name` points to.
fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    root.pointer(reference.strip_prefix('#')?)
}

/// Whether `schema` holds secrets: it is marked so, or its map values, list items or an
/// alternative (`Option<Secret>`) are.
fn is_secret(schema: &Value) -> bool {
    if schema.get(SECRET_KEYWORD) == Some(&Value::Bool(true)) {
        return true;
    }
    let nested = ["additionalProperties", "items"]
        .iter()
        .filter_map(|k| schema.get(*k))
        .any(is_secret);
    nested
        || ["anyOf", "oneOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_array))
            .flatten()
            .any(is_secret)
}

/// A doc comment's first sentence, on one line and without Markdown backticks: a
/// manifest's description is a short plain-text hint (`missing required setting `x`
/// (<description>)`).
fn first_sentence(doc: &str) -> String {
    let paragraph = doc.split("\n\n").next().unwrap_or_default();
    let line = paragraph
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('`', "");
    // A full stop ends the sentence, unless it ends an abbreviation such as "e.g.".
    let end = line
        .match_indices(". ")
        .map(|(at, _)| at)
        .find(|at| !["e.g", "i.e"].iter().any(|a| line[..*at].ends_with(a)))
        .unwrap_or(line.len());
    line[..end].trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::{DurationSetting, Secret};

    #[derive(Deserialize, JsonSchema, Default)]
    #[allow(dead_code)]
    struct Nested {
        #[serde(default)]
        every: Option<u32>,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        /// The token. Never logged.
        token: Secret,
        /// Where to send, e.g. a URL.
        /// Continues here.
        #[serde(default)]
        url: Option<String>,
        /// `a`, `b` or `c`.
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        headers: BTreeMap<String, Secret>,
        #[serde(default)]
        password: Option<Secret>,
        #[serde(default)]
        timeout: Option<DurationSetting>,
        #[serde(default)]
        pace: Nested,
        mode: Mode,
        #[serde(default)]
        anything: Option<Value>,
        #[serde(default = "yes")]
        on: bool,
        count: Option<i64>,
    }

    fn yes() -> bool {
        true
    }

    #[test]
    fn the_settings_type_gives_types_required_secrets_and_descriptions() {
        let settings = Value::Object(settings::<Settings>().expect("a struct"));
        assert_eq!(
            settings,
            json!({
                "token": {"type": "string", "required": true, "secret": true,
                          "description": "The token"},
                "url": {"type": "string", "description": "Where to send, e.g. a URL"},
                "names": {"type": "array", "description": "a, b or c"},
                "headers": {"type": "object", "secret": true},
                "password": {"type": "string", "secret": true},
                "timeout": {"type": ["string", "number"]},
                "pace": {"type": "object"},
                "mode": {"type": "string", "required": true},
                "anything": {"type": ANY},
                "on": {"type": "boolean"},
                "count": {"type": "integer"},
            })
        );
    }

    #[test]
    fn a_type_without_named_fields_declares_no_settings() {
        assert_eq!(settings::<Value>(), None);
        let manifest: Value = serde_json::from_str(&manifest::<Value>("none", "Quiet"))
            .expect("the manifest is JSON");
        assert_eq!(manifest, json!({"markup": "none", "description": "Quiet"}));
    }

    #[test]
    fn the_first_sentence_ends_at_a_full_stop_and_spans_lines() {
        assert_eq!(first_sentence("One line"), "One line");
        assert_eq!(
            first_sentence("Wraps\n  here. Then more.\n\nSecond."),
            "Wraps here"
        );
        assert_eq!(first_sentence("`x` is set."), "x is set");
    }
}
