//! The settings an operator writes for a Discord sink, their defaults, and the one
//! `validate()` that turns them into a [`Config`] or an error naming the field.

use std::fmt;
use std::net::IpAddr;

use alert_router_plugin::Secret;
use alert_router_plugin::http::Endpoint;
use reqwest::Url;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Longest `username` Discord accepts.
/// <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub(crate) const USERNAME_MAX: usize = 80;

/// Words Discord refuses inside a webhook username.
/// <https://discord.com/developers/docs/resources/webhook#create-webhook>
pub(crate) const USERNAME_FORBIDDEN: [&str; 2] = ["discord", "clyde"];

/// A Discord sink's `settings` in router.yaml.
///
/// ```yaml
/// settings:
///   webhook_url: ${DISCORD_WEBHOOK_URL}
///   username: Trading Bot
///   mentions: []          # the default: an `@everyone` in an event pings nobody
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The URL Discord shows under Server Settings → Integrations → Webhooks → Copy
    /// Webhook URL (`https://discord.com/api/webhooks/{id}/{token}`). The token in it is
    /// a secret: it is never logged or shown. The sink always posts to the versioned API
    /// (`/api/v10/...?wait=true`), whatever version the URL names.
    webhook_url: Secret,
    /// Overrides the webhook's display name (1–80 characters, without "discord" or
    /// "clyde"). A template's own `username` wins over it.
    #[serde(default)]
    username: Option<String>,
    /// Overrides the webhook's avatar (an http(s) image URL). A template's own
    /// `avatar_url` wins over it.
    #[serde(default)]
    avatar_url: Option<String>,
    /// Posts into this thread of the webhook's channel (a snowflake id; quote it in YAML).
    #[serde(default)]
    #[schemars(schema_with = "snowflake")]
    thread_id: Option<Snowflake>,
    /// Which mentions in a message's `content` may ping: any of `users`, `roles`,
    /// `everyone` (which covers `@here` too). Default `[]`: nobody is ever pinged.
    #[serde(default, deserialize_with = "mention_kinds")]
    mentions: Vec<MentionKind>,
}

/// A Discord id, written as a string or a number.
#[derive(Debug, Clone)]
struct Snowflake(String);

/// A [`Snowflake`]'s schema: a string or an integer, as its `Deserialize` takes it.
fn snowflake(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "integer"]})
}

impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Id;
        impl Visitor<'_> for Id {
            type Value = Snowflake;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Discord id such as \"1234567890123456789\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Snowflake, E> {
                Ok(Snowflake(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Snowflake, E> {
                Ok(Snowflake(v.trim().to_owned()))
            }
        }
        deserializer.deserialize_any(Id)
    }
}

/// A kind of mention Discord may turn into a ping (`allowed_mentions.parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MentionKind {
    Users,
    Roles,
    Everyone,
}

fn mention_kinds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<MentionKind>, D::Error> {
    struct Kinds;
    const HINT: &str = "a list of users, roles, everyone (e.g. [users]); [] pings nobody";
    impl<'de> Visitor<'de> for Kinds {
        type Value = Vec<MentionKind>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(HINT)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom(format!(
                "mentions: expected {HINT}, not true/false"
            )))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut kinds = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                let kind = match name.trim().to_ascii_lowercase().as_str() {
                    "users" => MentionKind::Users,
                    "roles" => MentionKind::Roles,
                    "everyone" | "here" => MentionKind::Everyone,
                    _ => {
                        return Err(de::Error::custom(format!(
                            "mentions: unknown kind {name:?}; expected {HINT}"
                        )));
                    }
                };
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            kinds.sort();
            Ok(kinds)
        }
    }
    deserializer.deserialize_any(Kinds)
}

/// Validated settings.
#[derive(Debug)]
pub(crate) struct Config {
    /// Where to post: `.../api/v10/webhooks/{id}/{token}?wait=true[&thread_id=..]`,
    /// named with the token as `***`, which every reason and log line hides.
    pub(crate) endpoint: Endpoint,
    /// Scheme, host and port: Discord's global rate limit applies per host.
    pub(crate) host: String,
    pub(crate) username: Option<String>,
    pub(crate) avatar_url: Option<String>,
    pub(crate) mentions: Vec<MentionKind>,
}

impl Settings {
    /// Checks every setting and builds the [`Config`]; an error names the field and says
    /// what is expected, and never contains the webhook token.
    pub(crate) fn validate(self) -> Result<Config, String> {
        let thread_id = match self.thread_id {
            Some(Snowflake(id)) if !is_snowflake(&id) => {
                return Err(format!(
                    "settings.thread_id: {id:?} is not a Discord id (digits only, e.g. \"1234567890123456789\")"
                ));
            }
            Some(Snowflake(id)) => Some(id),
            None => None,
        };
        let (endpoint, host) = parse_webhook_url(self.webhook_url.expose(), thread_id)?;
        let username = match self.username.as_deref().map(str::trim) {
            None => None,
            Some(name) => {
                Some(check_username(name).map_err(|e| format!("settings.username: {e}"))?)
            }
        };
        let avatar_url = match self.avatar_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => match Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Some(url.to_owned()),
                _ => {
                    return Err(format!(
                        "settings.avatar_url: {url:?} is not an http(s) URL of an image"
                    ));
                }
            },
        };
        Ok(Config {
            endpoint,
            host,
            username,
            avatar_url,
            mentions: self.mentions,
        })
    }
}

/// Checks a webhook username as Discord does; returns it trimmed.
pub(crate) fn check_username(name: &str) -> Result<String, String> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 || len > USERNAME_MAX {
        return Err(format!(
            "must be 1 to {USERNAME_MAX} characters long, not {len}"
        ));
    }
    let lower = name.to_lowercase();
    if let Some(word) = USERNAME_FORBIDDEN.iter().find(|w| lower.contains(*w)) {
        return Err(format!(
            "{name:?} contains {word:?}, which Discord refuses in webhook names"
        ));
    }
    Ok(name.to_owned())
}

fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

const URL_SHAPE: &str = "expected the URL Discord's \"Copy Webhook URL\" gives, https://discord.com/api/webhooks/ID/TOKEN";

/// Parses and normalises the webhook URL into where to post and the host whose global
/// rate limit applies. Never echoes the URL: it holds the token.
fn parse_webhook_url(raw: &str, thread_id: Option<String>) -> Result<(Endpoint, String), String> {
    let field = "settings.webhook_url";
    let url =
        Url::parse(raw.trim()).map_err(|e| format!("{field}: not a URL ({e}); {URL_SHAPE}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("{field}: has no host; {URL_SHAPE}"))?
        .to_owned();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        other => {
            return Err(format!(
                "{field}: must use https (http only for 127.0.0.1 or localhost), not {other}"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{field}: must not contain a user name or password; {URL_SHAPE}"
        ));
    }

    // `[prefix]/api[/vN]/webhooks/{id}/{token}`; a prefix is kept for proxies.
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let api = segments
        .iter()
        .rposition(|s| *s == "api")
        .ok_or_else(|| format!("{field}: the path has no /api/webhooks/ID/TOKEN; {URL_SHAPE}"))?;
    let mut rest = &segments[api + 1..];
    if let Some(version) = rest.first()
        && version.len() > 1
        && version.starts_with('v')
        && version[1..].bytes().all(|b| b.is_ascii_digit())
    {
        rest = &rest[1..];
    }
    let (id, token) = match rest {
        ["webhooks", id, token] => (*id, *token),
        ["webhooks", _, _, kind, ..] => {
            return Err(format!(
                "{field}: ends in /{kind}, a {kind}-compatible endpoint; use the plain webhook URL, {URL_SHAPE}"
            ));
        }
        _ => {
            return Err(format!(
                "{field}: the path is not /api/webhooks/ID/TOKEN; {URL_SHAPE}"
            ));
        }
    };
    if !is_snowflake(id) {
        return Err(format!(
            "{field}: the webhook id {id:?} is not a Discord id (digits only); {URL_SHAPE}"
        ));
    }
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(format!(
            "{field}: the token (after the webhook id) has characters Discord tokens never have; copy the URL again"
        ));
    }

    let mut url_thread = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "wait" => {} // always sent as wait=true
            "thread_id" => url_thread = Some(value.into_owned()),
            other => {
                return Err(format!(
                    "{field}: unsupported query parameter {other:?} (only thread_id is understood)"
                ));
            }
        }
    }
    let thread_id = match (url_thread, thread_id) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "settings.thread_id ({b}) contradicts thread_id={a} in settings.webhook_url; keep one of them"
            ));
        }
        (Some(a), _) if !is_snowflake(&a) => {
            return Err(format!(
                "{field}: thread_id={a:?} is not a Discord id (digits only)"
            ));
        }
        (a, b) => a.or(b),
    };

    let prefix: String = segments[..api].iter().map(|s| format!("/{s}")).collect();
    let mut normalised = url.clone();
    normalised.set_fragment(None);
    normalised.set_path(&format!("{prefix}/api/v10/webhooks/{id}/{token}"));
    let mut query = String::from("wait=true");
    if let Some(thread) = &thread_id {
        query.push_str("&thread_id=");
        query.push_str(thread);
    }
    normalised.set_query(Some(&query));

    let mut redacted = normalised.clone();
    redacted.set_path(&format!("{prefix}/api/v10/webhooks/{id}/***"));
    redacted.set_query(
        thread_id
            .as_deref()
            .map(|t| format!("thread_id={t}"))
            .as_deref(),
    );
    let redacted = redacted.to_string().replace("%2A", "*");
    let host = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    Ok((
        Endpoint::new(normalised, redacted, vec![token.to_owned()]),
        host,
    ))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AbC-123_xyzSECRET";

    fn settings(json: serde_json::Value) -> Result<Config, String> {
        serde_json::from_value::<Settings>(json)
            .map_err(|e| e.to_string())?
            .validate()
    }

    fn url(raw: &str) -> Result<Config, String> {
        settings(serde_json::json!({ "webhook_url": raw }))
    }

    #[test]
    fn discord_urls_are_normalised_to_v10_with_wait() {
        for raw in [
            format!("https://discord.com/api/webhooks/123456/{TOKEN}"),
            format!("https://discord.com/api/webhooks/123456/{TOKEN}/"),
            format!("https://discord.com/api/v6/webhooks/123456/{TOKEN}"),
            format!("https://discord.com/api/v10/webhooks/123456/{TOKEN}?wait=false"),
            format!("  https://discord.com/api/webhooks/123456/{TOKEN}  "),
        ] {
            let config = url(&raw).unwrap();
            assert_eq!(
                config.endpoint.url().as_str(),
                format!("https://discord.com/api/v10/webhooks/123456/{TOKEN}?wait=true"),
                "from {raw}"
            );
            assert_eq!(
                config.endpoint.redacted(),
                "https://discord.com/api/v10/webhooks/123456/***"
            );
            assert_eq!(config.host, "https://discord.com");
        }
    }

    #[test]
    fn thread_id_comes_from_the_setting_or_the_url() {
        let config = settings(serde_json::json!({
            "webhook_url": format!("http://127.0.0.1:8080/api/webhooks/1/{TOKEN}"),
            "thread_id": 987654321u64,
        }))
        .unwrap();
        assert_eq!(
            config.endpoint.url().as_str(),
            format!(
                "http://127.0.0.1:8080/api/v10/webhooks/1/{TOKEN}?wait=true&thread_id=987654321"
            )
        );
        assert_eq!(
            config.endpoint.redacted(),
            "http://127.0.0.1:8080/api/v10/webhooks/1/***?thread_id=987654321"
        );
        assert_eq!(config.host, "http://127.0.0.1:8080");

        let config = url(&format!(
            "https://discord.com/api/webhooks/1/{TOKEN}?thread_id=42"
        ))
        .unwrap();
        assert!(
            config
                .endpoint
                .url()
                .as_str()
                .ends_with("?wait=true&thread_id=42")
        );

        let err = settings(serde_json::json!({
            "webhook_url": format!("https://discord.com/api/webhooks/1/{TOKEN}?thread_id=42"),
            "thread_id": "43",
        }))
        .unwrap_err();
        assert!(
            err.contains("settings.thread_id (43) contradicts thread_id=42"),
            "{err}"
        );

        let err = settings(serde_json::json!({
            "webhook_url": format!("https://discord.com/api/webhooks/1/{TOKEN}"),
            "thread_id": "general",
        }))
        .unwrap_err();
        assert!(err.starts_with("settings.thread_id:"), "{err}");
    }

    #[test]
    fn a_proxy_prefix_is_kept() {
        let config = url(&format!(
            "https://proxy.example/discord/api/webhooks/1/{TOKEN}"
        ))
        .unwrap();
        assert_eq!(
            config.endpoint.url().path(),
            format!("/discord/api/v10/webhooks/1/{TOKEN}")
        );
    }

    #[test]
    fn bad_urls_are_refused_naming_the_field_without_the_token() {
        let cases = [
            (format!("discord.com/api/webhooks/1/{TOKEN}"), "not a URL"),
            (
                format!("http://discord.com/api/webhooks/1/{TOKEN}"),
                "must use https",
            ),
            (
                format!("https://discord.com/webhooks/1/{TOKEN}"),
                "no /api/webhooks",
            ),
            (
                format!("https://discord.com/api/webhooks/abc/{TOKEN}"),
                "\"abc\" is not a Discord id",
            ),
            (
                format!("https://discord.com/api/webhooks/1/{TOKEN}/slack"),
                "slack-compatible",
            ),
            (
                format!("https://discord.com/api/webhooks/1/{TOKEN}?x=1"),
                "unsupported query parameter \"x\"",
            ),
            (
                format!("https://me:pw@discord.com/api/webhooks/1/{TOKEN}"),
                "user name or password",
            ),
            (
                "https://discord.com/api/webhooks/1/to%20ken".to_owned(),
                "copy the URL again",
            ),
            (
                "https://discord.com/api/webhooks/1".to_owned(),
                "not /api/webhooks/ID/TOKEN",
            ),
        ];
        for (raw, expected) in cases {
            let err = url(&raw).unwrap_err();
            assert!(err.starts_with("settings.webhook_url: "), "{raw}: {err}");
            assert!(err.contains(expected), "{raw}: {err}");
            assert!(!err.contains(TOKEN), "{raw}: token leaked in {err}");
        }
    }

    #[test]
    fn http_is_allowed_for_loopback_only() {
        for host in ["127.0.0.1:9", "localhost", "[::1]:9"] {
            url(&format!("http://{host}/api/webhooks/1/{TOKEN}")).unwrap();
        }
    }

    #[test]
    fn other_settings_are_checked() {
        let base = format!("https://discord.com/api/webhooks/1/{TOKEN}");
        let config = settings(serde_json::json!({
            "webhook_url": base, "username": " Trading Bot ",
            "avatar_url": "https://example.com/a.png", "mentions": ["everyone", "Users", "here"],
        }))
        .unwrap();
        assert_eq!(config.username.as_deref(), Some("Trading Bot"));
        assert_eq!(
            config.avatar_url.as_deref(),
            Some("https://example.com/a.png")
        );
        assert_eq!(config.mentions, [MentionKind::Users, MentionKind::Everyone]);
        assert!(
            url(&base).unwrap().mentions.is_empty(),
            "mentions are off by default"
        );

        let refused = [
            (
                serde_json::json!({"webhook_url": base, "username": "My Discord Bot"}),
                "settings.username: \"My Discord Bot\" contains \"discord\"",
            ),
            (
                serde_json::json!({"webhook_url": base, "username": "x".repeat(81)}),
                "settings.username: must be 1 to 80 characters long, not 81",
            ),
            (
                serde_json::json!({"webhook_url": base, "avatar_url": "ftp://x/y.png"}),
                "settings.avatar_url:",
            ),
            (
                serde_json::json!({"webhook_url": base, "mentions": true}),
                "mentions: expected a list of users, roles, everyone",
            ),
            (
                serde_json::json!({"webhook_url": base, "mentions": ["all"]}),
                "mentions: unknown kind \"all\"",
            ),
            (
                serde_json::json!({"webhook_url": base, "webhook": base}),
                "unknown field `webhook`",
            ),
            (
                serde_json::json!({"username": "x"}),
                "missing field `webhook_url`",
            ),
        ];
        for (json, expected) in refused {
            let err = settings(json).unwrap_err();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
            assert!(!err.contains(TOKEN), "token leaked in {err}");
        }
    }

    #[test]
    fn debug_output_hides_the_url() {
        let raw = format!("https://discord.com/api/webhooks/1/{TOKEN}");
        let parsed: Settings =
            serde_json::from_value(serde_json::json!({ "webhook_url": raw })).unwrap();
        assert!(!format!("{parsed:?}").contains(TOKEN));
        let config = parsed.validate().unwrap();
        assert!(!format!("{config:?}").contains(TOKEN));
        assert_eq!(
            config.endpoint.redact(&format!("GET {raw} failed")),
            "GET https://discord.com/api/webhooks/1/*** failed"
        );
    }
}
