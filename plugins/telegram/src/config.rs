//! The sink's settings as the operator writes them in router.yaml, their defaults and
//! their validation into a [`Config`]. Every error names the field it is about and never
//! repeats the bot token.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// Where the Bot API lives unless `api_url` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// `settings` of a sink with `plugin: telegram`, exactly as written in router.yaml.
///
/// ```yaml
/// settings:
///   bot_token: ${TELEGRAM_BOT_TOKEN}
///   chat_ids: [123456789, -1001234567890, "@alerts_channel"]
///   admin_user_ids: [123456789]   # optional: who may /mute and /unmute
///   silent_below: warning         # optional: quieter notifications for debug and info
///   state_dir: /var/lib/alert-router   # optional: keeps offset and mute across restarts
/// ```
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The token @BotFather gave, `<bot id>:<secret>`. Secret: never logged.
    pub bot_token: Secret,
    /// Chats that get every notification and whose members may use commands: numeric
    /// ids (negative for groups) or `@channel` usernames.
    pub chat_ids: Vec<serde_json::Value>,
    /// When set, only these users may use commands that change something (`/mute`,
    /// `/unmute`); reading commands stay open to everyone in `chat_ids`.
    #[serde(default)]
    pub admin_user_ids: Option<Vec<i64>>,
    /// The Bot API base URL; tests and self-hosted Bot API servers point it elsewhere.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Whether the bot answers commands (long polling). On by default.
    #[serde(default = "enabled")]
    pub commands: bool,
    /// `HTML` (default), `MarkdownV2`, `Markdown` or `none`. A payload's own
    /// `parse_mode` wins over it.
    #[serde(default)]
    pub parse_mode: Option<String>,
    /// Events below this severity go out with `disable_notification` (no sound).
    #[serde(default)]
    pub silent_below: Option<String>,
    /// A directory for `telegram-<bot id>.json` (polling offset and mute). Without it
    /// they live in memory only, which survives a reload but not a restart.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The pace at which this sink talks to Telegram; defaults are Telegram's limits.
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("bot_token", &"***")
            .field("chat_ids", &self.chat_ids)
            .field("admin_user_ids", &self.admin_user_ids)
            .field("api_url", &self.api_url)
            .field("commands", &self.commands)
            .field("parse_mode", &self.parse_mode)
            .field("silent_below", &self.silent_below)
            .field("state_dir", &self.state_dir)
            .field("rate_limits", &self.rate_limits)
            .finish()
    }
}

fn enabled() -> bool {
    true
}

/// `rate_limits`: rates written `N/s`, `N/min` or `N/h`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Messages to one chat. Telegram: "avoid more than one message per second".
    #[serde(default = "per_chat")]
    pub chat: String,
    /// Messages to one group or channel. Telegram: "no more than 20 messages per minute".
    #[serde(default = "per_group")]
    pub group: String,
    /// Messages to all chats together. Telegram: "about 30 messages per second".
    #[serde(default = "overall")]
    pub overall: String,
    /// Messages one chat may get back to back before the pace applies (Telegram
    /// tolerates short bursts; a long message split in parts is one).
    #[serde(default = "burst")]
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            chat: per_chat(),
            group: per_group(),
            overall: overall(),
            burst: burst(),
        }
    }
}

fn per_chat() -> String {
    "1/s".to_owned()
}

fn per_group() -> String {
    "20/min".to_owned()
}

fn overall() -> String {
    "30/s".to_owned()
}

fn burst() -> u32 {
    3
}

/// A settings error: which field, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("settings.{field}: {problem}")]
pub struct ConfigError {
    field: String,
    problem: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

pub use alert_router_plugin::Secret;

/// `text` with every occurrence of the bot `token` (whole, percent-encoded, or just its
/// secret half) replaced by `***`, before that text reaches a log line or a delivery
/// reason. Request errors quote the URL, and the URL holds `bot<token>`.
pub fn redact(token: &Secret, text: &str) -> String {
    let token = token.expose();
    let encoded = token.replace(':', "%3A");
    // The half after `:` alone only when it is long enough not to match ordinary text.
    let secret_half = token
        .split_once(':')
        .map(|(_, s)| s)
        .filter(|s| s.len() >= 8);
    alert_router_plugin::redact(text, [token, &encoded].into_iter().chain(secret_half))
}

/// A destination: a numeric chat id or a public `@username` (channels).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatRef {
    Id(i64),
    Username(String),
}

impl ChatRef {
    /// Groups, supergroups and channels have negative ids; usernames are channels.
    pub fn is_group(&self) -> bool {
        match self {
            ChatRef::Id(id) => *id < 0,
            ChatRef::Username(_) => true,
        }
    }
}

impl fmt::Display for ChatRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatRef::Id(id) => write!(f, "{id}"),
            ChatRef::Username(name) => f.write_str(name),
        }
    }
}

/// Event severities, in order (`debug < info < warning < error < critical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    /// Parses a severity case-insensitively.
    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "debug" => Severity::Debug,
            "info" => Severity::Info,
            "warning" | "warn" => Severity::Warning,
            "error" => Severity::Error,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// The severity of an event as the router hands it over; `info` when absent.
    pub fn of_event(event: &serde_json::Value) -> Severity {
        event
            .get("severity")
            .and_then(|s| s.as_str())
            .and_then(Severity::parse)
            .unwrap_or(Severity::Info)
    }
}

/// How Telegram should read a message's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Html,
    MarkdownV2,
    Markdown,
    /// Plain text: no `parse_mode` is sent.
    Plain,
}

impl Markup {
    /// Parses a `parse_mode` value as Telegram does: case-insensitively.
    pub fn parse(text: &str) -> Option<Markup> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "html" => Markup::Html,
            "markdownv2" => Markup::MarkdownV2,
            "markdown" => Markup::Markdown,
            "" | "none" | "plain" => Markup::Plain,
            _ => return None,
        })
    }
}

/// A rate: `count` messages per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/sec`, `N/second`, `N/min`, `N/minute`, `N/h` or `N/hour`.
    pub fn parse(text: &str) -> Option<Rate> {
        let (count, unit) = text.trim().split_once('/')?;
        let count: u32 = count.trim().parse().ok().filter(|n| *n > 0)?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Rate { count, per })
    }

    /// The time between two messages at this rate.
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

/// Telegram's pace, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub chat: Rate,
    pub group: Rate,
    pub overall: Rate,
    pub burst: u32,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub token: Secret,
    /// The public half of the token: names the state file and the bot in logs.
    pub bot_id: u64,
    pub chats: Vec<ChatRef>,
    pub admins: Option<Vec<i64>>,
    pub api_url: reqwest::Url,
    pub commands: bool,
    pub markup: Markup,
    pub silent_below: Option<Severity>,
    pub state_dir: Option<PathBuf>,
    pub rate_limits: RateLimits,
}

impl Config {
    /// Applies defaults and checks every field; the first problem found is the error.
    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let bot_id = validate_token(settings.bot_token.expose())?;
        let chats = validate_chats(&settings.chat_ids)?;
        let admins = match settings.admin_user_ids {
            Some(ids) if ids.is_empty() => {
                return Err(ConfigError::new(
                    "admin_user_ids",
                    "is empty, which would let nobody use /mute; remove it to let everyone \
                     in chat_ids use it, or list the user ids allowed to",
                ));
            }
            other => other,
        };
        let api_url = validate_api_url(settings.api_url.as_deref())?;
        let markup = match settings.parse_mode.as_deref() {
            None => Markup::Html,
            Some(mode) => Markup::parse(mode).ok_or_else(|| {
                ConfigError::new(
                    "parse_mode",
                    format!("{mode:?} is not one of HTML, MarkdownV2, Markdown, none"),
                )
            })?,
        };
        let silent_below = match settings.silent_below.as_deref() {
            None => None,
            Some(level) => Some(Severity::parse(level).ok_or_else(|| {
                ConfigError::new(
                    "silent_below",
                    format!("{level:?} is not one of debug, info, warning, error, critical"),
                )
            })?),
        };
        if let Some(dir) = &settings.state_dir
            && dir.as_os_str().is_empty()
        {
            return Err(ConfigError::new(
                "state_dir",
                "is empty; remove it to keep state in memory",
            ));
        }
        let rate_limits = validate_rate_limits(&settings.rate_limits)?;
        Ok(Config {
            token: settings.bot_token,
            bot_id,
            chats,
            admins,
            api_url,
            commands: settings.commands,
            markup,
            silent_below,
            state_dir: settings.state_dir,
            rate_limits,
        })
    }

    /// Whether commands from `chat_id` get answers.
    pub fn allows_chat(&self, chat_id: i64) -> bool {
        self.chats.contains(&ChatRef::Id(chat_id))
    }

    /// Whether `user_id` may use commands that change something.
    pub fn allows_admin(&self, user_id: Option<i64>) -> bool {
        match (&self.admins, user_id) {
            (None, _) => true,
            (Some(admins), Some(user)) => admins.contains(&user),
            (Some(_), None) => false,
        }
    }
}

/// Checks the token's shape (`<digits>:<secret>`) and returns the bot id.
pub(crate) fn validate_token(token: &str) -> Result<u64, ConfigError> {
    const FIELD: &str = "bot_token";
    if token.trim().is_empty() {
        return Err(ConfigError::new(
            FIELD,
            "is empty; set it to the token @BotFather gave (e.g. bot_token: ${TELEGRAM_BOT_TOKEN})",
        ));
    }
    let shape = "is not a Telegram bot token: expected <bot id>:<secret> as @BotFather \
                 gives it (the value is not shown because it is secret)";
    let (id, secret) = token
        .split_once(':')
        .ok_or_else(|| ConfigError::new(FIELD, shape))?;
    let id: u64 = id
        .parse()
        .ok()
        .filter(|_| !id.starts_with('+'))
        .ok_or_else(|| ConfigError::new(FIELD, shape))?;
    let secret_ok = !secret.is_empty()
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !secret_ok {
        return Err(ConfigError::new(FIELD, shape));
    }
    Ok(id)
}

pub(crate) fn validate_chats(values: &[serde_json::Value]) -> Result<Vec<ChatRef>, ConfigError> {
    if values.is_empty() {
        return Err(ConfigError::new(
            "chat_ids",
            "is empty: list at least one chat id to send notifications to",
        ));
    }
    let mut chats = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let field = format!("chat_ids[{index}]");
        let chat = match value {
            serde_json::Value::Number(n) => n.as_i64().map(ChatRef::Id).ok_or_else(|| {
                ConfigError::new(&field, format!("{n} is not a whole-number chat id"))
            })?,
            serde_json::Value::String(s) => {
                let s = s.trim();
                if let Ok(id) = s.parse::<i64>() {
                    ChatRef::Id(id)
                } else if let Some(name) = s.strip_prefix('@')
                    && !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    ChatRef::Username(s.to_owned())
                } else {
                    return Err(ConfigError::new(
                        &field,
                        format!("{s:?} is neither a numeric chat id nor an @channel username"),
                    ));
                }
            }
            other => {
                return Err(ConfigError::new(
                    &field,
                    format!("expected a chat id (number) or an @channel username, got {other}"),
                ));
            }
        };
        if chats.contains(&chat) {
            return Err(ConfigError::new(
                &field,
                format!("{chat} is listed twice; it would get every message twice"),
            ));
        }
        chats.push(chat);
    }
    Ok(chats)
}

pub(crate) fn validate_api_url(url: Option<&str>) -> Result<reqwest::Url, ConfigError> {
    const FIELD: &str = "api_url";
    // A trailing slash would make the client build `<base>//bot<token>/...`.
    let text = url.unwrap_or(DEFAULT_API_URL).trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(text).map_err(|e| {
        ConfigError::new(
            FIELD,
            format!("is not a URL ({e}); expected e.g. {DEFAULT_API_URL}"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            FIELD,
            format!("must be an http or https URL, not {}:", parsed.scheme()),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::new(
            FIELD,
            "must not have a query or fragment: the client appends /bot<token>/<method>",
        ));
    }
    Ok(parsed)
}

pub(crate) fn validate_rate_limits(limits: &RateLimitSettings) -> Result<RateLimits, ConfigError> {
    let rate = |name: &str, text: &str| {
        Rate::parse(text).ok_or_else(|| {
            ConfigError::new(
                format!("rate_limits.{name}"),
                format!("{text:?} is not a rate; write it like 1/s, 20/min or 100/h"),
            )
        })
    };
    if limits.burst == 0 {
        return Err(ConfigError::new(
            "rate_limits.burst",
            "must be at least 1 (one message at a time)",
        ));
    }
    Ok(RateLimits {
        chat: rate("chat", &limits.chat)?,
        group: rate("group", &limits.group)?,
        overall: rate("overall", &limits.overall)?,
        burst: limits.burst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    fn settings(value: serde_json::Value) -> Settings {
        serde_json::from_value(value).expect("test settings deserialize")
    }

    fn config(value: serde_json::Value) -> Result<Config, String> {
        Config::from_settings(settings(value)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_telegrams() {
        let c = config(json!({"bot_token": TOKEN, "chat_ids": [42]})).expect("valid");
        assert_eq!(c.bot_id, 123456);
        assert_eq!(c.chats, vec![ChatRef::Id(42)]);
        assert_eq!(c.api_url.as_str(), "https://api.telegram.org/");
        assert!(c.commands);
        assert_eq!(c.markup, Markup::Html);
        assert_eq!(c.silent_below, None);
        assert_eq!(c.rate_limits.chat, Rate::parse("1/s").expect("rate"));
        assert_eq!(c.rate_limits.group.interval(), Duration::from_secs(3));
        assert_eq!(
            c.rate_limits.overall.interval(),
            Duration::from_secs(1) / 30
        );
    }

    #[test]
    fn chat_ids_accept_numbers_numeric_strings_and_channels() {
        let c = config(json!({"bot_token": TOKEN, "chat_ids": [42, "-1001234567890", "@ops"]}))
            .expect("valid");
        assert_eq!(
            c.chats,
            vec![
                ChatRef::Id(42),
                ChatRef::Id(-1001234567890),
                ChatRef::Username("@ops".into())
            ]
        );
        assert!(c.allows_chat(-1001234567890));
        assert!(!c.allows_chat(7));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"bot_token": TOKEN, "chat_ids": []}),
                "settings.chat_ids: is empty",
            ),
            (
                json!({"bot_token": TOKEN, "chat_ids": ["ops"]}),
                "settings.chat_ids[0]: \"ops\" is neither",
            ),
            (
                json!({"bot_token": TOKEN, "chat_ids": [1, 1]}),
                "settings.chat_ids[1]: 1 is listed twice",
            ),
            (
                json!({"bot_token": TOKEN, "chat_ids": [1], "parse_mode": "rst"}),
                "settings.parse_mode: \"rst\" is not one of",
            ),
            (
                json!({"bot_token": TOKEN, "chat_ids": [1], "silent_below": "loud"}),
                "settings.silent_below: \"loud\"",
            ),
            (
                json!({"bot_token": TOKEN, "chat_ids": [1], "api_url": "ftp://x"}),
                "settings.api_url: must be an http or https URL",
            ),
            (
                json!({"bot_token": TOKEN, "chat_ids": [1], "admin_user_ids": []}),
                "settings.admin_user_ids: is empty",
            ),
            (
                json!({"bot_token": TOKEN, "chat_ids": [1], "rate_limits": {"chat": "fast"}}),
                "settings.rate_limits.chat: \"fast\" is not a rate",
            ),
            (
                json!({"bot_token": "", "chat_ids": [1]}),
                "settings.bot_token: is empty",
            ),
        ];
        for (value, expected) in cases {
            let err = config(value.clone()).expect_err("invalid");
            assert!(err.starts_with(expected), "{value}: got {err:?}");
        }
    }

    #[test]
    fn a_malformed_token_is_refused_without_repeating_it() {
        for token in [
            "no-colon-here",
            "abc:def",
            "123:",
            "123:has space",
            "+1:abcdef",
        ] {
            let err = config(json!({"bot_token": token, "chat_ids": [1]})).expect_err(token);
            assert!(err.starts_with("settings.bot_token: is not a Telegram bot token"));
            assert!(!err.contains(token), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_value::<Settings>(
            json!({"bot_token": TOKEN, "chat_ids": [1], "chat_id": 1}),
        )
        .map(|_| ())
        .expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `chat_id`"), "{err}");
    }

    #[test]
    fn a_trailing_slash_in_api_url_is_dropped() {
        let c = config(
            json!({"bot_token": TOKEN, "chat_ids": [1], "api_url": "http://127.0.0.1:9/tg/"}),
        )
        .expect("valid");
        assert_eq!(c.api_url.as_str(), "http://127.0.0.1:9/tg");
    }

    #[test]
    fn secrets_never_print() {
        let s = settings(json!({"bot_token": TOKEN, "chat_ids": [1]}));
        assert!(!format!("{s:?}").contains(TOKEN));
        let c = Config::from_settings(s).expect("valid");
        assert!(!format!("{c:?}").contains("AAHdqTcv"));
        assert_eq!(c.token.to_string(), "***");
    }

    #[test]
    fn redact_removes_every_form_of_the_token() {
        let secret = Secret::new(TOKEN);
        let text = format!(
            "error sending request for url (http://x/bot{TOKEN}/SendMessage) \
             bot123456%3AAAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw and AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
        );
        let redacted = redact(&secret, &text);
        assert!(!redacted.contains("AAHdqTcv"), "{redacted}");
        assert!(
            redacted.contains("http://x/bot***/SendMessage"),
            "{redacted}"
        );
    }

    #[test]
    fn admins_gate_only_when_set() {
        let open = config(json!({"bot_token": TOKEN, "chat_ids": [1]})).expect("valid");
        assert!(open.allows_admin(None));
        let gated = config(json!({"bot_token": TOKEN, "chat_ids": [1], "admin_user_ids": [7]}))
            .expect("valid");
        assert!(gated.allows_admin(Some(7)));
        assert!(!gated.allows_admin(Some(8)));
        assert!(!gated.allows_admin(None));
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Debug < Severity::Info);
        assert!(Severity::Error < Severity::Critical);
        assert_eq!(Severity::parse("WARNING"), Some(Severity::Warning));
        assert_eq!(Severity::of_event(&json!({})), Severity::Info);
        assert_eq!(
            Severity::of_event(&json!({"severity": "Critical"})),
            Severity::Critical
        );
    }
}
