//! Matchers: `name op value`, as Alertmanager's silences write them, over the router's
//! events. `op` is `=`, `!=`, `=~` or `!~`; a regex is anchored at both ends
//! (`^(?:re)$`), as Alertmanager anchors it. The name says what is compared:
//!
//! - `type`, `severity`, `source`, `id`: the event's reserved keys;
//! - `labels.<key>`: one label;
//! - any other name: the top-level field of that name (the event's data), as text:
//!   strings as they are, numbers and booleans as their JSON text.
//!
//! What an event does not have (no such label, no such field, no source, a `null`) is the
//! empty string, as Alertmanager treats a missing label: `x!=""` means "x is present",
//! `x=""` means "x is absent".
//!
//! Text forms: [`Matcher::parse`] reads one (`component="exchange api"`), [`parse_list`]
//! a comma-separated list (`a=b,c=~d.*`), [`split_words`] + [`parse_words`] command
//! arguments (`/silence type=error labels.exchange=binance 2h`). JSON forms:
//! [`Matcher::from_json`] reads text, `{"name","op","value"}`, and Alertmanager API v2's
//! `{"name","value","isRegex","isEqual"}`; serialization writes `{"name","op","value"}`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::event::{Event, Severity};

/// A matcher's name is at most this many characters.
pub const MAX_NAME_CHARS: usize = 256;
/// A matcher's value (or regex) is at most this many characters.
pub const MAX_VALUE_CHARS: usize = 1024;
/// The compiled size a regex may take: far above any real pattern, low enough that a
/// pathological one (`(a{100}){100}`) is refused rather than built.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Equal, Op::NotEqual, Op::Regex, Op::NotRegex];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Regex => "=~",
            Op::NotRegex => "!~",
        }
    }

    pub fn is_regex(self) -> bool {
        matches!(self, Op::Regex | Op::NotRegex)
    }

    pub fn is_negative(self) -> bool {
        matches!(self, Op::NotEqual | Op::NotRegex)
    }

    fn from_flags(is_regex: bool, is_equal: bool) -> Op {
        match (is_regex, is_equal) {
            (false, true) => Op::Equal,
            (false, false) => Op::NotEqual,
            (true, true) => Op::Regex,
            (true, false) => Op::NotRegex,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Op, String> {
        Op::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| format!("unknown operator {s:?}: use =, !=, =~ or !~"))
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What a name compares, decided once at parse so matching does no string work on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Type,
    Severity,
    Source,
    Id,
    /// `labels.<key>`: the key is the name after the prefix.
    Label,
    /// A top-level field of the event's data, named by the whole name.
    Field,
}

const LABELS: &str = "labels.";

/// One matcher. Two are equal when name, operator and value are.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: Op,
    value: String,
    target: Target,
    /// The anchored regex, for `=~` and `!~`.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// Why a matcher was refused: the matcher as written and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matcher `{text}`: {message}")]
pub struct MatcherError {
    /// The matcher as given (cut short when long).
    pub text: String,
    pub message: String,
}

impl MatcherError {
    fn new(text: &str, message: impl Into<String>) -> MatcherError {
        const SHOWN: usize = 80;
        let text = match text.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        };
        MatcherError {
            text,
            message: message.into(),
        }
    }
}

impl Matcher {
    /// A matcher from its parts. The value of `severity` with `=` or `!=` must be a
    /// severity (`warn` is read as `warning`: the event holds the full name, so the short
    /// form would otherwise never match).
    pub fn new(name: &str, op: Op, value: &str) -> Result<Matcher, MatcherError> {
        let shown = || format!("{name}{op}{}", quote(value));
        let fail = |message: String| Err(MatcherError::new(&shown(), message));
        if name.is_empty() {
            return fail(format!(
                "no name before `{op}`: write name{op}value, e.g. type{op}error or labels.exchange{op}binance"
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| c.is_whitespace() || "=!~\"'“”,{}".contains(*c))
        {
            // They would not read back from the text form.
            return fail(format!(
                "the name holds {c:?}: a name has no space, quote, comma, brace, =, ! or ~"
            ));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return fail(format!(
                "the name is longer than {MAX_NAME_CHARS} characters"
            ));
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return fail(format!(
                "the value is longer than {MAX_VALUE_CHARS} characters"
            ));
        }
        let target = match name {
            "type" => Target::Type,
            "severity" => Target::Severity,
            "source" => Target::Source,
            "id" => Target::Id,
            "labels" => {
                return fail(
                    "`labels` is an object: match one label with labels.<key>, e.g. labels.exchange=binance"
                        .into(),
                );
            }
            "time" => {
                return fail(
                    "matchers compare what an event is, not when it happened: leave `time` out (a silence has its own start and end)"
                        .into(),
                );
            }
            _ if name.starts_with(LABELS) && name.len() == LABELS.len() => {
                return fail(format!(
                    "no label key after `{LABELS}`: write e.g. labels.exchange{op}binance"
                ));
            }
            _ if name.starts_with(LABELS) => Target::Label,
            _ => Target::Field,
        };
        let mut value = value.to_owned();
        if target == Target::Severity && !op.is_regex() && !value.is_empty() {
            match value.parse::<Severity>() {
                Ok(s) => value = s.as_str().to_owned(),
                Err(e) => return fail(format!("{e} (or =~ for a pattern)")),
            }
        }
        let regex = if op.is_regex() {
            Some(compile(&value).map_err(|e| MatcherError::new(&shown(), e))?)
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value,
            target,
            regex,
        })
    }

    /// One matcher as text: `name=value`, `name!=value`, `name=~regex`, `name!~regex`,
    /// with space around the operator allowed. The value may be in double quotes (needed
    /// for a space or a comma in a list; `\"` is a quote and `\\` a backslash in them,
    /// any other backslash stays as it is, so `"\d+"` is the regex `\d+`), or in single
    /// quotes (taken as they are).
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let t = text.trim();
        let Some(at) = t.find(['=', '!', '~']) else {
            return Err(MatcherError::new(
                text,
                "no operator: write name=value, name!=value, name=~regex or name!~regex",
            ));
        };
        let (name, rest) = t.split_at(at);
        let (op, raw) = if let Some(r) = rest.strip_prefix("=~") {
            (Op::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (Op::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (Op::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (Op::Equal, r)
        } else {
            let shown: String = rest.chars().take(2).collect();
            return Err(MatcherError::new(
                text,
                format!("unknown operator `{shown}`: use =, !=, =~ or !~"),
            ));
        };
        let raw = raw.trim();
        if op == Op::Equal && raw.starts_with('=') {
            return Err(MatcherError::new(
                text,
                format!(
                    "`==` is not an operator: write {}=value (a value that starts with `=` goes in quotes)",
                    name.trim()
                ),
            ));
        }
        let value = unquote(raw).map_err(|e| MatcherError::new(text, e))?;
        Matcher::new(name.trim(), op, &value).map_err(|e| MatcherError::new(text, e.message))
    }

    /// A matcher from JSON: text (as [`Matcher::parse`] reads it), `{"name", "value",
    /// "op"}` (`op` defaults to `=`), or Alertmanager API v2's `{"name", "value",
    /// "isRegex", "isEqual"}` (`isEqual` defaults to true).
    pub fn from_json(value: &Value) -> Result<Matcher, MatcherError> {
        const KEYS: [&str; 5] = ["name", "value", "op", "isRegex", "isEqual"];
        let shown = || value.to_string();
        let map = match value {
            Value::String(text) => return Matcher::parse(text),
            Value::Object(map) => map,
            _ => {
                return Err(MatcherError::new(
                    &shown(),
                    "a matcher is text such as \"type=error\", or an object {\"name\": ..., \"op\": \"=\", \"value\": ...}",
                ));
            }
        };
        if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            let hint = match crate::diag::closest(key, KEYS) {
                Some(k) => format!(" (did you mean `{k}`?)"),
                None => String::new(),
            };
            return Err(MatcherError::new(
                &shown(),
                format!(
                    "unknown key `{key}`{hint}: a matcher has name, value and op (or Alertmanager's isRegex and isEqual)"
                ),
            ));
        }
        let text = |key: &str| match map.get(key) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(MatcherError::new(
                &shown(),
                format!(
                    "`{key}` must be a string, got {}",
                    alert_router_domain::describe_value(other)
                ),
            )),
            None => Err(MatcherError::new(&shown(), format!("missing `{key}`"))),
        };
        let flag = |key: &str, default: bool| match map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(MatcherError::new(
                &shown(),
                format!(
                    "`{key}` must be true or false, got {}",
                    alert_router_domain::describe_value(other)
                ),
            )),
        };
        let name = text("name")?;
        let value_text = text("value")?;
        let has_flags = ["isRegex", "isEqual"].iter().any(|k| map.contains_key(*k));
        let op = match map.get("op") {
            Some(_) if has_flags => {
                return Err(MatcherError::new(
                    &shown(),
                    "give `op`, or Alertmanager's `isRegex` and `isEqual`, not both",
                ));
            }
            Some(_) => text("op")?
                .parse::<Op>()
                .map_err(|e| MatcherError::new(&shown(), e))?,
            None => Op::from_flags(flag("isRegex", false)?, flag("isEqual", true)?),
        };
        Matcher::new(name, op, value_text).map_err(|e| MatcherError::new(&shown(), e.message))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> Op {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Event) -> bool {
        let text: Cow<'_, str> = match self.target {
            Target::Type => Cow::Borrowed(&event.kind),
            Target::Severity => Cow::Borrowed(event.severity.as_str()),
            Target::Source => Cow::Borrowed(event.source.as_deref().unwrap_or("")),
            Target::Id => Cow::Borrowed(&event.id),
            Target::Label => Cow::Borrowed(
                event
                    .labels
                    .get(&self.name[LABELS.len()..])
                    .map_or("", String::as_str),
            ),
            Target::Field => field_text(event.data.get(&self.name)),
        };
        self.matches_text(&text)
    }

    /// Whether an event without this name (the empty string) matches: Alertmanager
    /// refuses a silence whose every matcher does, as it would silence everything.
    pub fn matches_empty(&self) -> bool {
        self.matches_text("")
    }

    /// Whether `text` (what the name gives) matches.
    pub fn matches_text(&self, text: &str) -> bool {
        let found = match &self.regex {
            Some(re) => re.is_match(text),
            None => text == self.value,
        };
        found != self.op.is_negative()
    }
}

/// A data field as matchers compare it.
fn field_text(value: Option<&Value>) -> Cow<'_, str> {
    match value {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(Value::Bool(true)) => Cow::Borrowed("true"),
        Some(Value::Bool(false)) => Cow::Borrowed("false"),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// `re` anchored at both ends. It is first compiled alone, so an error points into the
/// pattern as written, and so a pattern such as `a)|(b` cannot escape the anchoring group.
fn compile(re: &str) -> Result<Regex, String> {
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    build(re).map_err(|e| {
        format!(
            "bad regex: {e}\ncheck the pattern (regex syntax), or use = / != to compare plain text"
        )
    })?;
    build(&format!("^(?:{re})$")).map_err(|e| format!("bad regex: {e}"))
}

impl fmt::Display for Matcher {
    /// `name op "value"`, the value always quoted, so it reads back with [`Matcher::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op, quote(&self.value))
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;

    fn from_str(s: &str) -> Result<Matcher, MatcherError> {
        Matcher::parse(s)
    }
}

impl Serialize for Matcher {
    /// `{"name", "op", "value"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Matcher", 3)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("op", &self.op)?;
        s.serialize_field("value", &self.value)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Matcher {
    /// Every form [`Matcher::from_json`] reads.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Matcher, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Matcher::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// Whether `event` matches every matcher (true for none).
pub fn matches_all(matchers: &[Matcher], event: &Event) -> bool {
    matchers.iter().all(|m| m.matches(event))
}

/// The matchers as text, separated by spaces: what [`split_words`] and [`parse_words`]
/// read back, and what `silence add` and Telegram's `/silence` take.
pub fn format_list(matchers: &[Matcher]) -> String {
    matchers
        .iter()
        .map(Matcher::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A comma-separated list, `a=b,c=~"d.*"`, optionally in braces as Alertmanager writes
/// it (`{a="b", c=~"d.*"}`). A comma inside quotes or brackets (`x=~a{1,3}`) does not
/// separate; empty items are skipped.
pub fn parse_list(text: &str) -> Result<Vec<Matcher>, MatcherError> {
    let mut t = text.trim();
    if let Some(inner) = t.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        t = inner;
    }
    split(t, |c| c == ',', true)
        .map_err(|e| MatcherError::new(text, e))?
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .map(Matcher::parse)
        .collect()
}

/// Command arguments, each a matcher or a comma-separated list of them (as
/// [`parse_list`] reads it).
pub fn parse_words<S: AsRef<str>>(
    words: impl IntoIterator<Item = S>,
) -> Result<Vec<Matcher>, MatcherError> {
    let mut all = Vec::new();
    for word in words {
        all.extend(parse_list(word.as_ref())?);
    }
    Ok(all)
}

/// A line of text split at white space outside quotes (`a="x y" 2h` is two words), for a
/// command typed in one line (Telegram's `/silence`); the words keep their quotes, for
/// [`parse_words`]. An unclosed quote is an error.
pub fn split_words(text: &str) -> Result<Vec<String>, MatcherError> {
    Ok(split(text, char::is_whitespace, false)
        .map_err(|e| MatcherError::new(text, e))?
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `text` cut at every `sep` outside quotes (and, with `brackets`, outside `()`, `[]`
/// and `{}`). A quote opens only where a value can start (after the operator, a space, or
/// at the start), so `note=bob's` is a value with an apostrophe. Phones type “curly”
/// quotes: they count as double quotes.
fn split(text: &str, sep: impl Fn(char) -> bool, brackets: bool) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut escaped = false;
    // The character before, outside quotes; `None` at the start of a part.
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        if let Some(close) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && close == '"' {
                escaped = true;
            } else if c == close {
                quote = None;
            }
            continue;
        }
        let value_starts = prev.is_none_or(|p| p == '=' || p == '~' || p.is_whitespace());
        prev = Some(c);
        match c {
            '"' if value_starts => quote = Some('"'),
            '\'' if value_starts => quote = Some('\''),
            '“' if value_starts => quote = Some('”'),
            '(' | '[' | '{' if brackets => depth += 1,
            ')' | ']' | '}' if brackets => depth = depth.saturating_sub(1),
            c if depth == 0 && sep(c) => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
                prev = None;
            }
            _ => {}
        }
    }
    if let Some(close) = quote {
        return Err(format!("a quote is not closed: end the value with {close}"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// A value as written: in double quotes (`\"` a quote, `\\` a backslash, any other
/// backslash kept), in single or curly quotes (as they are), or bare.
fn unquote(raw: &str) -> Result<String, String> {
    let (body, escapes) = if let Some(inner) = raw.strip_prefix('"') {
        (inner.strip_suffix('"'), true)
    } else if let Some(inner) = raw.strip_prefix('\'') {
        (inner.strip_suffix('\''), false)
    } else if let Some(inner) = raw.strip_prefix('“') {
        (inner.strip_suffix('”'), false)
    } else {
        return Ok(raw.to_owned());
    };
    let bad = "the value starts with a quote but is not one quoted text: close the quote at its end, and write a quote inside as \\\"";
    let Some(body) = body else {
        return Err(bad.into());
    };
    if !escapes {
        return Ok(body.to_owned());
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('"' | '\\')) => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            // An unescaped quote inside: `"a"b"` is not one quoted text.
            '"' => return Err(bad.into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `value` in double quotes as [`unquote`] reads it: a quote as `\"`, and a backslash
/// as `\\` only where it would otherwise be read as an escape (before a quote, another
/// backslash or the closing quote), so regexes stay readable (`"\d+"`).
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' if matches!(chars.peek(), None | Some('"' | '\\')) => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;

    /// An event; `error` events need a message (the trading domain documents them).
    fn event(mut v: Value) -> Event {
        v["message"] = json!("boom");
        Event::from_json(v, OffsetDateTime::UNIX_EPOCH).unwrap()
    }

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn sample() -> Event {
        event(json!({
            "type": "error", "severity": "critical", "id": "e-1", "source": "bot-7",
            "labels": {"exchange": "binance", "env": "prod"},
            "component": "exchange api", "attempts": 3, "retry": false, "ratio": 0.5,
            "gone": null, "detail": {"code": 7}
        }))
    }

    #[test]
    fn reserved_keys_labels_and_fields_are_compared_as_text() {
        let e = sample();
        for yes in [
            "type=error",
            "severity=critical",
            "severity=crit",
            "source=bot-7",
            "id=e-1",
            "labels.exchange=binance",
            "component=\"exchange api\"",
            "attempts=3",
            "retry=false",
            "ratio=0.5",
            r#"detail={"code":7}"#,
            "type!=trade_opened",
            "labels.exchange=~bin.*",
            "labels.exchange!~kraken|bybit",
            "attempts=~[0-9]+",
        ] {
            assert!(m(yes).matches(&e), "{yes} should match");
        }
        for no in [
            "type=err",
            "severity=error",
            "labels.exchange=Binance",
            "labels.exchange!=binance",
            "attempts=3.0",
            "retry=0",
            "component=exchange",
        ] {
            assert!(!m(no).matches(&e), "{no} should not match");
        }
    }

    #[test]
    fn an_absent_label_or_field_is_the_empty_string() {
        let e = sample();
        // Absent: a missing label, a missing field, a null field.
        for name in ["labels.region", "nothing", "gone"] {
            assert!(m(&format!("{name}=\"\"")).matches(&e), "{name} absent");
            assert!(!m(&format!("{name}!=\"\"")).matches(&e), "{name} absent");
            assert!(m(&format!("{name}!=x")).matches(&e), "{name} != anything");
            assert!(m(&format!("{name}=~.*")).matches(&e), "{name}");
            assert!(!m(&format!("{name}=~.+")).matches(&e), "{name}");
        }
        // Present: `!=""` means "has it".
        assert!(m("labels.env!=\"\"").matches(&e));
        assert!(!m("labels.env=\"\"").matches(&e));
        // No source: empty too.
        let bare = event(json!({"type": "ping"}));
        assert!(m("source=''").matches(&bare));
        assert!(!m("source=~.+").matches(&bare));
    }

    #[test]
    fn regexes_are_anchored_at_both_ends() {
        let e = sample();
        assert!(
            !m("labels.exchange=~bin").matches(&e),
            "a prefix is not all"
        );
        assert!(!m("labels.exchange=~nanc").matches(&e), "nor a middle");
        assert!(m("labels.exchange=~bin.*").matches(&e));
        assert!(m("labels.exchange!~bin").matches(&e));
        // An alternation stays inside the anchors: `a|b` is ^(?:a|b)$, not ^a|b$.
        assert!(!m("type=~err|xyz").matches(&e));
        assert!(m("type=~xyz|error").matches(&e));
        assert!(!m("type=~xyz|rror").matches(&e));
    }

    #[test]
    fn bad_regexes_say_so_and_cannot_escape_the_anchors() {
        let err = Matcher::parse("labels.exchange=~bin(").unwrap_err();
        assert_eq!(err.text, "labels.exchange=~bin(");
        assert!(err.message.starts_with("bad regex: "), "{err}");
        assert!(err.message.contains("unclosed group"), "{err}");
        // Compiled anchored alone, this would be the valid ^(?:a)|(b)$.
        let err = Matcher::parse("type=~a)|(b").unwrap_err();
        assert!(err.message.contains("bad regex"), "{err}");
        let err = Matcher::parse("type=~(a{100}){100}{100}").unwrap_err();
        assert!(err.message.contains("bad regex"), "{err}");
    }

    #[test]
    fn text_forms_parse_with_quotes_and_space() {
        let parts = |t: &str| {
            let x = m(t);
            (x.name().to_owned(), x.op(), x.value().to_owned())
        };
        assert_eq!(
            parts("component=\"exchange api\""),
            ("component".into(), Op::Equal, "exchange api".into())
        );
        assert_eq!(parts(" a != b "), ("a".into(), Op::NotEqual, "b".into()));
        assert_eq!(parts("a=~'x y'"), ("a".into(), Op::Regex, "x y".into()));
        assert_eq!(parts("a!~“x”"), ("a".into(), Op::NotRegex, "x".into()));
        assert_eq!(parts("a=b=c"), ("a".into(), Op::Equal, "b=c".into()));
        assert_eq!(parts("a="), ("a".into(), Op::Equal, "".into()));
        assert_eq!(parts(r#"a="say \"hi\"""#).2, r#"say "hi""#);
        assert_eq!(parts(r#"a=~"\d+""#).2, r"\d+", "a regex escape is kept");
        assert_eq!(parts(r#"a="\\""#).2, r"\");
        assert_eq!(parts("severity!=warn").2, "warning", "the full name");
        assert_eq!(parts("severity=~warn.*").2, "warn.*", "a pattern as is");
        assert_eq!(parts("note=bob's").2, "bob's", "an apostrophe inside");
        assert_eq!(parts(r#"note=say"hi""#).2, r#"say"hi""#, "a quote inside");
    }

    #[test]
    fn text_errors_say_what_is_wrong() {
        let cases = [
            ("typeerror", "no operator"),
            ("=error", "no name before `=`"),
            ("a~b", "unknown operator `~b`"),
            ("a!b", "unknown operator `!b`"),
            ("a==b", "`==` is not an operator"),
            ("a=\"b", "not one quoted text"),
            ("a=\"b\"c\"", "not one quoted text"),
            ("labels.=x", "no label key"),
            ("labels=x", "match one label with labels.<key>"),
            ("time=x", "not when"),
            ("severity=loud", "unknown severity"),
            ("a b=c", "the name holds ' '"),
        ];
        for (text, want) in cases {
            let err = Matcher::parse(text).unwrap_err();
            assert!(err.message.contains(want), "{text}: {err}");
            assert_eq!(err.text, text);
        }
        let long = format!("a={}", "x".repeat(MAX_VALUE_CHARS + 1));
        let err = Matcher::parse(&long).unwrap_err();
        assert!(err.message.contains("longer than 1024"), "{err}");
        assert!(err.text.ends_with('…') && err.text.chars().count() == 81);
    }

    #[test]
    fn display_reads_back_the_same_matcher() {
        for (name, op, value) in [
            ("labels.exchange", Op::Regex, "bin.*"),
            ("component", Op::Equal, "exchange api, v2"),
            ("a", Op::NotEqual, r#"say "hi""#),
            ("a", Op::Regex, r"\d+\\"),
            ("a", Op::Equal, r#"\"#),
            ("a", Op::Equal, r#"\\""#),
            ("a", Op::NotRegex, ""),
            ("a", Op::Equal, "‘’“”'"),
        ] {
            let x = Matcher::new(name, op, value).unwrap();
            let text = x.to_string();
            assert_eq!(m(&text), x, "{text}");
            assert_eq!(
                parse_list(&format!("{text},{text}")).unwrap(),
                [x.clone(), x.clone()],
                "{text}"
            );
            let words = split_words(&format!("{text} {text}")).unwrap();
            assert_eq!(parse_words(&words).unwrap(), [x.clone(), x], "{text}");
        }
        assert_eq!(
            m("labels.exchange=~bin.*").to_string(),
            r#"labels.exchange=~"bin.*""#
        );
        assert_eq!(m(r"a=~\d+").to_string(), r#"a=~"\d+""#);
    }

    #[test]
    fn lists_split_at_commas_outside_quotes_and_brackets() {
        let list = parse_list(r#"a=b, c=~d.*,e="x,y",f=~a{1,3},,"#).unwrap();
        let shown: Vec<String> = list.iter().map(Matcher::to_string).collect();
        assert_eq!(
            shown,
            [r#"a="b""#, r#"c=~"d.*""#, r#"e="x,y""#, r#"f=~"a{1,3}""#]
        );
        let braces = parse_list(r#"{type="error", labels.exchange=~"bin.*"}"#).unwrap();
        assert_eq!(braces, [m("type=error"), m("labels.exchange=~bin.*")]);
        assert_eq!(parse_list("  ").unwrap(), []);
        let err = parse_list("a=b,c").unwrap_err();
        assert_eq!(err.text, "c");
        assert!(
            parse_list("a=\"b,c")
                .unwrap_err()
                .message
                .contains("not closed")
        );
    }

    #[test]
    fn command_words_split_at_space_outside_quotes() {
        let words = split_words("/silence type=error labels.x=“a b”  component='c d' 2h").unwrap();
        assert_eq!(
            words,
            [
                "/silence",
                "type=error",
                "labels.x=“a b”",
                "component='c d'",
                "2h"
            ]
        );
        let matchers = parse_words(&words[1..4]).unwrap();
        assert_eq!(
            matchers,
            [
                m("type=error"),
                Matcher::new("labels.x", Op::Equal, "a b").unwrap(),
                Matcher::new("component", Op::Equal, "c d").unwrap()
            ]
        );
        assert_eq!(
            parse_words(["type=error,source=x", "id=1"]).unwrap().len(),
            3
        );
        assert!(
            split_words("a=\"b")
                .unwrap_err()
                .message
                .contains("not closed")
        );
        assert!(parse_words(["type=error", "2h"]).unwrap_err().text == "2h");
        assert_eq!(
            split_words("note=bob's x=\"it's\" 2h").unwrap(),
            ["note=bob's", "x=\"it's\"", "2h"]
        );
        assert_eq!(
            parse_list("note=bob's,x=y").unwrap(),
            [m("note=bob's"), m("x=y")]
        );
    }

    #[test]
    fn json_takes_text_our_object_and_alertmanagers() {
        let from = |v: Value| Matcher::from_json(&v);
        assert_eq!(from(json!("a=~b.*")).unwrap(), m("a=~b.*"));
        assert_eq!(from(json!({"name": "a", "value": "b"})).unwrap(), m("a=b"));
        assert_eq!(
            from(json!({"name": "a", "op": "!~", "value": "b"})).unwrap(),
            m("a!~b")
        );
        for (is_regex, is_equal, want) in [
            (false, true, "a=b"),
            (false, false, "a!=b"),
            (true, true, "a=~b"),
            (true, false, "a!~b"),
        ] {
            let v = json!({"name": "a", "value": "b", "isRegex": is_regex, "isEqual": is_equal});
            assert_eq!(from(v).unwrap(), m(want), "{want}");
        }
        assert_eq!(
            from(json!({"name": "a", "value": "b", "isRegex": true})).unwrap(),
            m("a=~b"),
            "isEqual defaults to true"
        );
        // Deserialize is the same reader.
        let list: Vec<Matcher> =
            serde_json::from_value(json!(["a=b", {"name": "c", "op": "=~", "value": "d"}]))
                .unwrap();
        assert_eq!(list, [m("a=b"), m("c=~d")]);
    }

    #[test]
    fn json_errors_name_the_problem() {
        let err = |v: Value| Matcher::from_json(&v).unwrap_err().message;
        assert!(err(json!(3)).contains("a matcher is text"));
        assert!(err(json!({"name": "a", "valeu": "b"})).contains("did you mean `value`"));
        assert!(err(json!({"name": "a"})).contains("missing `value`"));
        assert!(err(json!({"name": 1, "value": "b"})).contains("`name` must be a string"));
        assert!(
            err(json!({"name": "a", "value": "b", "op": "=="})).contains("unknown operator \"==\"")
        );
        assert!(
            err(json!({"name": "a", "value": "b", "op": "=", "isRegex": false}))
                .contains("not both")
        );
        assert!(
            err(json!({"name": "a", "value": "b", "isRegex": "yes"})).contains("true or false")
        );
        assert!(err(json!({"name": "", "value": "b"})).contains("no name"));
        assert!(err(json!({"name": "a=b", "value": "c"})).contains("the name holds '='"));
        assert!(err(json!({"name": "a", "value": "(", "op": "=~"})).contains("bad regex"));
        let e: Result<Matcher, _> = serde_json::from_value(json!("nope"));
        assert!(e.unwrap_err().to_string().contains("no operator"));
    }

    #[test]
    fn serializes_as_name_op_value() {
        assert_eq!(
            serde_json::to_value(m("labels.exchange=~bin.*")).unwrap(),
            json!({"name": "labels.exchange", "op": "=~", "value": "bin.*"})
        );
        let back: Matcher =
            serde_json::from_value(serde_json::to_value(m("a!=b")).unwrap()).unwrap();
        assert_eq!(back, m("a!=b"));
    }

    #[test]
    fn matches_empty_and_all() {
        assert!(m("a=\"\"").matches_empty());
        assert!(m("a!=b").matches_empty());
        assert!(m("a=~.*").matches_empty());
        assert!(!m("a!=\"\"").matches_empty());
        assert!(!m("a=~.+").matches_empty());
        let e = sample();
        assert!(matches_all(&[], &e));
        assert!(matches_all(&[m("type=error"), m("labels.env=prod")], &e));
        assert!(!matches_all(&[m("type=error"), m("labels.env=dev")], &e));
        assert_eq!(
            format_list(&[m("type=error"), m("labels.x=~a b")]),
            r#"type="error" labels.x=~"a b""#
        );
    }
}
