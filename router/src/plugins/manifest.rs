//! [`Manifest`]: what a plugin declares about itself (markup, description, settings
//! schema), parsed from its descriptor, and the settings checks and redaction built on it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// How the router escapes values interpolated into a plugin's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Markup {
    /// No escaping (JSON webhooks, console).
    None,
    /// HTML (Telegram).
    Html,
    /// Markdown (Discord).
    Markdown,
    /// Slack's mrkdwn.
    Mrkdwn,
}

impl Markup {
    /// The name used in manifests: `none`, `html`, `markdown` or `mrkdwn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Markup::None => "none",
            Markup::Html => "html",
            Markup::Markdown => "markdown",
            Markup::Mrkdwn => "mrkdwn",
        }
    }
}

impl fmt::Display for Markup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A markup name that is not one of `none`, `html`, `markdown`, `mrkdwn`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown markup `{0}`: expected none, html, markdown or mrkdwn")]
pub struct UnknownMarkup(pub String);

impl FromStr for Markup {
    type Err = UnknownMarkup;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Markup::None),
            "html" => Ok(Markup::Html),
            "markdown" => Ok(Markup::Markdown),
            "mrkdwn" => Ok(Markup::Mrkdwn),
            other => Err(UnknownMarkup(other.to_owned())),
        }
    }
}

/// The JSON type a setting must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
}

const SETTING_TYPES: &str = "string, number, integer, boolean, array or object";

impl SettingType {
    /// The name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            SettingType::String => "string",
            SettingType::Number => "number",
            SettingType::Integer => "integer",
            SettingType::Boolean => "boolean",
            SettingType::Array => "array",
            SettingType::Object => "object",
        }
    }

    fn parse(s: &str) -> Option<SettingType> {
        Some(match s {
            "string" => SettingType::String,
            "number" => SettingType::Number,
            "integer" => SettingType::Integer,
            "boolean" => SettingType::Boolean,
            "array" => SettingType::Array,
            "object" => SettingType::Object,
            _ => return None,
        })
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            SettingType::String => value.is_string(),
            SettingType::Number => value.is_number(),
            SettingType::Integer => value.is_i64() || value.is_u64(),
            SettingType::Boolean => value.is_boolean(),
            SettingType::Array => value.is_array(),
            SettingType::Object => value.is_object(),
        }
    }
}

/// One entry of a manifest's `settings` schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The JSON types the setting may have: one (`"type": "string"`) or several
    /// (`"type": ["string", "number"]`, e.g. `30s` or a number of seconds).
    pub types: Vec<SettingType>,
    pub required: bool,
    /// Never logged or shown: [`Manifest::redact`] replaces it with `***`.
    pub secret: bool,
    pub description: Option<String>,
}

/// What a plugin declares in its descriptor's `manifest` JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub markup: Markup,
    pub description: Option<String>,
    /// Setting name → schema.
    pub settings: BTreeMap<String, Setting>,
    /// Whether the manifest has a `settings` object: then it lists every setting the
    /// plugin takes, and any other is refused. Without one, only the plugin's `create`
    /// judges the settings.
    pub declares_settings: bool,
}

/// A sink's setting that does not fit the plugin's manifest. Never holds a value, which
/// may be secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingProblem {
    /// The settings are not a mapping at all.
    NotAMapping { got: &'static str },
    /// A setting the plugin does not take.
    Unknown {
        name: String,
        /// The plugin's setting the name most likely meant.
        suggestion: Option<String>,
    },
    /// A setting whose value has the wrong JSON type.
    WrongType { name: String, message: String },
    /// A required setting that is absent or null.
    Missing {
        name: String,
        description: Option<String>,
    },
}

impl SettingProblem {
    /// The setting it is about, if it is about one that is written.
    pub fn written_setting(&self) -> Option<&str> {
        match self {
            SettingProblem::Unknown { name, .. } | SettingProblem::WrongType { name, .. } => {
                Some(name)
            }
            SettingProblem::NotAMapping { .. } | SettingProblem::Missing { .. } => None,
        }
    }

    /// What is wrong, for a line such as `sinks.<sink>.settings.<name>: <message>`:
    /// `plugin` is the plugin's name and `takes` lists its settings.
    pub fn message(&self, plugin: &str, takes: &[&str]) -> String {
        match self {
            SettingProblem::NotAMapping { got } => {
                format!("must be a mapping of setting: value, got {got}")
            }
            SettingProblem::Unknown { suggestion, .. } => {
                let takes = if takes.is_empty() {
                    format!("{plugin} takes no settings")
                } else {
                    format!("{plugin} takes: {}", takes.join(", "))
                };
                match suggestion {
                    Some(s) => format!("unknown setting; {takes} (did you mean `{s}`?)"),
                    None => format!("unknown setting; {takes}"),
                }
            }
            SettingProblem::WrongType { message, .. } => message.clone(),
            SettingProblem::Missing { name, description } => match description {
                Some(d) => format!("missing required setting `{name}` ({d})"),
                None => format!("missing required setting `{name}`"),
            },
        }
    }
}

/// Key fragments that mark a setting as secret even when the manifest forgets to.
const SECRET_KEY_PARTS: [&str; 5] = ["token", "password", "secret", "webhook_url", "api_key"];

const REDACTED: &str = "***";

impl Manifest {
    /// Parses a manifest. Top-level keys the router does not know are ignored, so a plugin
    /// may declare more for later routers; inside a setting's schema an unknown key is an
    /// error, because a typo there (`requried`) would silently change what is checked.
    /// The error says what is wrong, naming the key.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(top) = value else {
            return Err(format!("must be a JSON object, got {}", type_name(&value)));
        };
        let markup = match top.get("markup") {
            None => {
                return Err("`markup` is required: one of none, html, markdown, mrkdwn".to_owned());
            }
            Some(Value::String(s)) => s.parse::<Markup>().map_err(|e| format!("`markup`: {e}"))?,
            Some(other) => {
                return Err(format!(
                    "`markup` must be a string (none, html, markdown or mrkdwn), got {}",
                    type_name(other)
                ));
            }
        };
        let description = match top.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "`description` must be a string, got {}",
                    type_name(other)
                ));
            }
        };
        let declares_settings = matches!(top.get("settings"), Some(Value::Object(_)));
        let settings = match top.get("settings") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => parse_settings(map)?,
            Some(other) => {
                return Err(format!(
                    "`settings` must be an object mapping each setting's name to \
                     {{type, required, secret, description}}, got {}",
                    type_name(other)
                ));
            }
        };
        Ok(Manifest {
            markup,
            description,
            settings,
            declares_settings,
        })
    }

    /// Checks a sink's settings against the schema: every problem, in setting-name order.
    /// Reports settings the manifest does not list (when it declares its settings), values
    /// of the wrong type, and missing required settings (null counts as missing); never
    /// includes a value, which may be secret.
    pub fn check_settings(&self, settings: &Value) -> Vec<SettingProblem> {
        let empty = Map::new();
        let given = match settings {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                return vec![SettingProblem::NotAMapping {
                    got: type_name(other),
                }];
            }
        };
        let mut problems = Vec::new();
        let mut names: Vec<&String> = given.keys().chain(self.settings.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            match (self.settings.get(name), given.get(name)) {
                (None, _) if self.declares_settings => problems.push(SettingProblem::Unknown {
                    name: name.clone(),
                    suggestion: crate::diag::closest(
                        name,
                        self.settings.keys().map(String::as_str),
                    )
                    .map(str::to_owned),
                }),
                (None, _) => {}
                (Some(setting), None | Some(Value::Null)) => {
                    if setting.required {
                        problems.push(SettingProblem::Missing {
                            name: name.clone(),
                            description: setting.description.clone(),
                        });
                    }
                }
                (Some(setting), Some(value)) if !setting.types.iter().any(|t| t.accepts(value)) => {
                    let expected: Vec<String> = setting
                        .types
                        .iter()
                        .map(|t| format!("{} {}", article(t.as_str()), t.as_str()))
                        .collect();
                    problems.push(SettingProblem::WrongType {
                        name: name.clone(),
                        message: format!(
                            "must be {}, got {}",
                            expected.join(" or "),
                            type_name(value)
                        ),
                    });
                }
                (Some(_), Some(_)) => {}
            }
        }
        problems
    }

    /// A copy of `settings` fit to log or show: every setting the manifest marks `secret`,
    /// and, at any depth, every key containing `token`, `password`, `secret`, `webhook_url`
    /// or `api_key` (case-insensitive), has its value replaced with `"***"`. A secret that
    /// is unset stays as written (`""`, `null`, `{}`, `[]`): `***` always means a secret is
    /// set, so an empty token never reads as authentication being on.
    pub fn redact(&self, settings: &Value) -> Value {
        let mut out = settings.clone();
        if let Value::Object(map) = &mut out {
            for (key, value) in map.iter_mut() {
                if self.is_secret(key) {
                    hide(value);
                } else {
                    redact_by_name(value);
                }
            }
        }
        out
    }

    /// The string values `redact` would hide, so text a plugin wrote (a refusal) can be
    /// scrubbed of any it echoed.
    pub(super) fn secret_values(&self, settings: &Value) -> Vec<String> {
        let mut found = Vec::new();
        if let Value::Object(map) = settings {
            for (key, value) in map {
                if self.is_secret(key) {
                    collect_strings(value, &mut found);
                } else {
                    collect_secrets_by_name(value, &mut found);
                }
            }
        }
        found
    }

    fn is_secret(&self, key: &str) -> bool {
        self.settings.get(key).is_some_and(|s| s.secret) || looks_secret(key)
    }
}

fn parse_settings(map: &Map<String, Value>) -> Result<BTreeMap<String, Setting>, String> {
    let mut settings = BTreeMap::new();
    for (name, spec) in map {
        let Value::Object(spec) = spec else {
            return Err(format!(
                "`settings.{name}` must be an object {{type, required, secret, description}}, got {}",
                type_name(spec)
            ));
        };
        if let Some(unknown) = spec
            .keys()
            .find(|k| !matches!(k.as_str(), "type" | "required" | "secret" | "description"))
        {
            return Err(format!(
                "`settings.{name}`: unknown key `{unknown}` (expected type, required, secret, description)"
            ));
        }
        let one = |t: &Value| match t {
            Value::String(t) => SettingType::parse(t).ok_or_else(|| {
                format!("`settings.{name}.type`: unknown type `{t}`: expected {SETTING_TYPES}")
            }),
            other => Err(format!(
                "`settings.{name}.type` must be a type name ({SETTING_TYPES}) or a list of them, got {}",
                type_name(other)
            )),
        };
        let types = match spec.get("type") {
            None => {
                return Err(format!(
                    "`settings.{name}.type` is required: one of {SETTING_TYPES}, or a list of them"
                ));
            }
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(format!(
                    "`settings.{name}.type` is an empty list: name at least one of {SETTING_TYPES}"
                ));
            }
            Some(Value::Array(list)) => list.iter().map(one).collect::<Result<Vec<_>, _>>()?,
            Some(t) => vec![one(t)?],
        };
        let flag = |key: &str| match spec.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!(
                "`settings.{name}.{key}` must be true or false, got {}",
                type_name(other)
            )),
        };
        let description = match spec.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "`settings.{name}.description` must be a string, got {}",
                    type_name(other)
                ));
            }
        };
        settings.insert(
            name.clone(),
            Setting {
                types,
                required: flag("required")?,
                secret: flag("secret")?,
                description,
            },
        );
    }
    Ok(settings)
}

fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// Replaces a secret's value with `"***"`, unless it is unset (empty or null).
fn hide(value: &mut Value) {
    let unset = match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    };
    if !unset {
        *value = Value::String(REDACTED.to_owned());
    }
}

fn redact_by_name(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if looks_secret(key) {
                    hide(v);
                } else {
                    redact_by_name(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_by_name),
        _ => {}
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn collect_secrets_by_name(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if looks_secret(key) {
                    collect_strings(v, out);
                } else {
                    collect_secrets_by_name(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets_by_name(v, out)),
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a non-integer number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TELEGRAM: &str = r#"{
        "markup": "html",
        "description": "Telegram bot",
        "capabilities": ["commands"],
        "settings": {
            "bot": {"type": "string", "required": true, "secret": true, "description": "bot token"},
            "chat_id": {"type": "integer", "required": true},
            "silent": {"type": "boolean"},
            "ratio": {"type": "number"}
        }
    }"#;

    #[test]
    fn parses_markup_description_and_schema() {
        let m = Manifest::parse(TELEGRAM).unwrap();
        assert_eq!(m.markup, Markup::Html);
        assert_eq!(m.description.as_deref(), Some("Telegram bot"));
        assert_eq!(
            m.settings["bot"],
            Setting {
                types: vec![SettingType::String],
                required: true,
                secret: true,
                description: Some("bot token".into()),
            }
        );
        assert!(!m.settings["silent"].required);
        assert_eq!(
            Manifest::parse(r#"{"markup":"none"}"#)
                .unwrap()
                .settings
                .len(),
            0
        );
    }

    #[test]
    fn markup_round_trips() {
        for m in [Markup::None, Markup::Html, Markup::Markdown, Markup::Mrkdwn] {
            assert_eq!(m.as_str().parse::<Markup>(), Ok(m));
        }
        assert_eq!(
            "HTML".parse::<Markup>().unwrap_err().to_string(),
            "unknown markup `HTML`: expected none, html, markdown or mrkdwn"
        );
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let cases = [
            ("{", "not valid JSON"),
            ("[1]", "must be a JSON object, got an array"),
            ("{}", "`markup` is required"),
            (r#"{"markup":"bbcode"}"#, "unknown markup `bbcode`"),
            (r#"{"markup":1}"#, "`markup` must be a string"),
            (
                r#"{"markup":"none","description":3}"#,
                "`description` must be a string",
            ),
            (
                r#"{"markup":"none","settings":[]}"#,
                "`settings` must be an object",
            ),
            (
                r#"{"markup":"none","settings":{"a":1}}"#,
                "`settings.a` must be an object",
            ),
            (
                r#"{"markup":"none","settings":{"a":{"type":"string","requried":true}}}"#,
                "`settings.a`: unknown key `requried`",
            ),
            (
                r#"{"markup":"none","settings":{"a":{}}}"#,
                "`settings.a.type` is required",
            ),
            (
                r#"{"markup":"none","settings":{"a":{"type":"str"}}}"#,
                "`settings.a.type`: unknown type `str`",
            ),
            (
                r#"{"markup":"none","settings":{"a":{"type":"string","secret":"yes"}}}"#,
                "`settings.a.secret` must be true or false, got a string",
            ),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    /// The problems as `setting: message` lines (`-` for the settings as a whole).
    fn problems(m: &Manifest, settings: Value) -> Vec<String> {
        let takes: Vec<&str> = m.settings.keys().map(String::as_str).collect();
        m.check_settings(&settings)
            .iter()
            .map(|p| {
                let name = p.written_setting().unwrap_or("-");
                format!("{name}: {}", p.message("tg", &takes))
            })
            .collect()
    }

    #[test]
    fn check_settings_reports_missing_and_mistyped() {
        let m = Manifest::parse(TELEGRAM).unwrap();
        assert_eq!(
            problems(&m, json!({"silent": "yes", "chat_id": 1.5, "ratio": 2})),
            [
                "-: missing required setting `bot` (bot token)",
                "chat_id: must be an integer, got a non-integer number",
                "silent: must be a boolean, got a string",
            ]
        );
        assert_eq!(
            problems(&m, json!({"bot": null, "chat_id": -100})),
            ["-: missing required setting `bot` (bot token)"]
        );
        assert!(problems(&m, json!({"bot": "123:abc", "chat_id": -100, "ratio": 0.5})).is_empty());
        assert_eq!(
            problems(&m, json!(["bot"])),
            ["-: must be a mapping of setting: value, got an array"]
        );
        // A plugin with nothing required accepts absent settings.
        let none = Manifest::parse(r#"{"markup":"none"}"#).unwrap();
        assert!(none.check_settings(&Value::Null).is_empty());
    }

    #[test]
    fn a_setting_the_manifest_does_not_list_is_refused_with_the_closest_name() {
        let m = Manifest::parse(TELEGRAM).unwrap();
        assert_eq!(
            problems(
                &m,
                json!({"bot": "1:a", "chat_id": 1, "silnet": true, "colour": "red"})
            ),
            [
                "colour: unknown setting; tg takes: bot, chat_id, ratio, silent",
                "silnet: unknown setting; tg takes: bot, chat_id, ratio, silent (did you mean `silent`?)",
            ]
        );
        // An empty `settings` object: the plugin takes none.
        let nothing = Manifest::parse(r#"{"markup":"none","settings":{}}"#).unwrap();
        assert_eq!(
            problems(&nothing, json!({"path": "x"})),
            ["path: unknown setting; tg takes no settings"]
        );
        // No `settings` at all: the manifest says nothing, so the plugin's `create` judges.
        let silent = Manifest::parse(r#"{"markup":"none"}"#).unwrap();
        assert!(problems(&silent, json!({"anything": 1})).is_empty());
    }

    #[test]
    fn a_setting_may_take_several_types() {
        let m = Manifest::parse(
            r#"{"markup":"none","settings":{"timeout":{"type":["string","number"]}}}"#,
        )
        .unwrap();
        assert_eq!(
            m.settings["timeout"].types,
            [SettingType::String, SettingType::Number]
        );
        assert!(problems(&m, json!({"timeout": "30s"})).is_empty());
        assert!(problems(&m, json!({"timeout": 30})).is_empty());
        assert_eq!(
            problems(&m, json!({"timeout": true})),
            ["timeout: must be a string or a number, got a boolean"]
        );
        for (text, expected) in [
            (
                r#"{"markup":"none","settings":{"a":{"type":[]}}}"#,
                "`settings.a.type` is an empty list",
            ),
            (
                r#"{"markup":"none","settings":{"a":{"type":["string","text"]}}}"#,
                "`settings.a.type`: unknown type `text`",
            ),
            (
                r#"{"markup":"none","settings":{"a":{"type":3}}}"#,
                "`settings.a.type` must be a type name",
            ),
        ] {
            let err = Manifest::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn mistyped_secret_is_reported_without_its_value() {
        let m = Manifest::parse(TELEGRAM).unwrap();
        assert_eq!(
            problems(&m, json!({"bot": 123456789, "chat_id": 1})),
            ["bot: must be a string, got a number"]
        );
    }

    #[test]
    fn redact_hides_declared_and_likely_secrets() {
        let m = Manifest::parse(TELEGRAM).unwrap();
        let settings = json!({
            "bot": "123:abc",
            "chat_id": -100,
            "Discord_Webhook_URL": "https://discord.com/api/webhooks/1/x",
            "routes": [{"name": "ops", "api_key": "k-1"}],
            "auth": {"password": "hunter2", "user": "ops"}
        });
        assert_eq!(
            m.redact(&settings),
            json!({
                "bot": "***",
                "chat_id": -100,
                "Discord_Webhook_URL": "***",
                "routes": [{"name": "ops", "api_key": "***"}],
                "auth": {"password": "***", "user": "ops"}
            })
        );
        // Unset secrets stay as written: `***` means one is set.
        assert_eq!(
            m.redact(&json!({"bot": "", "auth": {"password": null}, "api_key": {}, "chat_id": 1})),
            json!({"bot": "", "auth": {"password": null}, "api_key": {}, "chat_id": 1})
        );
        let mut secrets = m.secret_values(&settings);
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "123:abc",
                "https://discord.com/api/webhooks/1/x",
                "hunter2",
                "k-1"
            ]
        );
    }
}
