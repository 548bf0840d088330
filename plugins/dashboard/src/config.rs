//! The sink's settings as the operator writes them in router.yaml, their defaults and
//! their validation into a [`Config`]. Every error names the field it is about and never
//! repeats the token.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use schemars::JsonSchema;
use serde::Deserialize;

/// Where the dashboard listens unless `listen` says otherwise: the port the original
/// Streamlit dashboard used, on loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8501";
/// The page's title unless `title` says otherwise.
pub const DEFAULT_TITLE: &str = "Trading Dashboard";
/// Routed events the live feed keeps (and a page receives on load) by default.
pub const DEFAULT_MAX_EVENTS: usize = 200;
/// The most events `max_events` may keep: the feed lives in memory.
pub const MAX_EVENTS_LIMIT: usize = 10_000;
/// Closed trades the "recent trades" table shows by default.
pub const DEFAULT_MAX_TRADES: usize = 50;
/// The router's state store keeps (and answers with) at most this many trades.
pub const MAX_TRADES_LIMIT: usize = 10_000;

/// `settings` of a sink with `plugin: dashboard`, exactly as written in router.yaml.
///
/// ```yaml
/// settings:
///   listen: ${DASHBOARD_LISTEN:-127.0.0.1:8501}
///   title: Trading Dashboard
///   theme: dark                 # or light
///   token: "${DASHBOARD_TOKEN:-}"   # required when listen is not a loopback address
///   max_events: 200             # routed events kept in the live feed
///   max_trades: 50              # closed trades in the recent-trades table
/// ```
#[derive(Deserialize, JsonSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `host:port` to serve the dashboard on; port 0 picks a free port, which the sink
    /// logs. Default `127.0.0.1:8501`.
    #[serde(default)]
    pub listen: Option<String>,
    /// The page's title and heading. Default "Trading Dashboard".
    #[serde(default)]
    pub title: Option<String>,
    /// `dark` (default) or `light`.
    #[serde(default)]
    pub theme: Option<String>,
    /// Required on every route when set: Bearer, ?token= or the cookie it sets. When set
    /// (non-empty), a request carries `Authorization: Bearer <token>`, `?token=<token>`
    /// (the page then keeps it in a cookie), or that cookie. Required when `listen` is
    /// not a loopback address. Secret: never logged or shown.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Routed events the live feed keeps in memory (1 to 10000, default 200).
    #[serde(default)]
    pub max_events: Option<usize>,
    /// Closed trades the recent-trades table shows (1 to 10000, default 50).
    #[serde(default)]
    pub max_trades: Option<usize>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("title", &self.title)
            .field("theme", &self.theme)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("max_events", &self.max_events)
            .field("max_trades", &self.max_trades)
            .finish()
    }
}

/// The page's colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Dark,
    Light,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Dark => "dark",
            Theme::Light => "light",
        }
    }

    /// `dark` or `light`, case-insensitively.
    pub fn parse(s: &str) -> Option<Theme> {
        if s.eq_ignore_ascii_case("dark") {
            Some(Theme::Dark)
        } else if s.eq_ignore_ascii_case("light") {
            Some(Theme::Light)
        } else {
            None
        }
    }
}

/// A settings error: which field, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("settings.{field}: {problem}")]
pub struct ConfigError {
    field: &'static str,
    problem: String,
}

impl ConfigError {
    fn new(field: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            field,
            problem: problem.into(),
        }
    }
}

pub use alert_router_plugin::Secret;

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address as configured (port 0 stays 0 here; the server knows the bound one).
    pub listen: SocketAddr,
    pub title: String,
    pub theme: Theme,
    pub token: Option<Secret>,
    pub max_events: usize,
    pub max_trades: usize,
}

impl Config {
    /// Applies the defaults and checks every setting; the first problem found is the
    /// error.
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let listen = parse_listen(s.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?;
        let title = match s.title {
            None => DEFAULT_TITLE.to_owned(),
            Some(t) if t.trim().is_empty() => {
                return Err(ConfigError::new(
                    "title",
                    "is empty: leave it out for \"Trading Dashboard\"",
                ));
            }
            Some(t) if t.chars().count() > 200 => {
                return Err(ConfigError::new("title", "is longer than 200 characters"));
            }
            Some(t) => t.trim().to_owned(),
        };
        let theme = match s.theme.as_deref() {
            None => Theme::Dark,
            Some(t) => Theme::parse(t)
                .ok_or_else(|| ConfigError::new("theme", format!("{t:?}: write dark or light")))?,
        };
        let token = s
            .token
            .filter(|t| !t.expose().is_empty())
            .map(|t| {
                if t.expose().chars().any(|c| c.is_control() || c.is_whitespace()) {
                    Err(ConfigError::new(
                        "token",
                        "contains spaces or control characters: use letters, digits and punctuation",
                    ))
                } else {
                    Ok(t)
                }
            })
            .transpose()?;
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(ConfigError::new(
                "token",
                format!(
                    "required because listen ({listen}) is not a loopback address: anyone who \
                     can reach that port would see the trading data. Set a token (e.g. \
                     token: \"${{DASHBOARD_TOKEN}}\"), or listen on 127.0.0.1"
                ),
            ));
        }
        let max_events = bounded(
            "max_events",
            s.max_events,
            DEFAULT_MAX_EVENTS,
            MAX_EVENTS_LIMIT,
        )?;
        let max_trades = bounded(
            "max_trades",
            s.max_trades,
            DEFAULT_MAX_TRADES,
            MAX_TRADES_LIMIT,
        )?;
        Ok(Config {
            listen,
            title,
            theme,
            token,
            max_events,
            max_trades,
        })
    }
}

fn bounded(
    field: &'static str,
    value: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ConfigError::new(
            field,
            format!("{n}: give a number from 1 to {max}"),
        )),
    }
}

/// `host:port` with an IP address, or `localhost:port`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, ConfigError> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = text.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err(ConfigError::new(
        "listen",
        format!("{text:?}: write an address and port, e.g. 127.0.0.1:8501 or 0.0.0.0:8501"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> Result<Config, String> {
        let s: Settings = serde_json::from_value(json).map_err(|e| e.to_string())?;
        Config::from_settings(s).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_serve_the_dark_page_on_loopback_8501() {
        let c = settings(serde_json::json!({})).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8501");
        assert_eq!(c.title, "Trading Dashboard");
        assert_eq!(c.theme, Theme::Dark);
        assert!(c.token.is_none());
        assert_eq!((c.max_events, c.max_trades), (200, 50));
    }

    #[test]
    fn a_non_loopback_listener_needs_a_token() {
        let e = settings(serde_json::json!({"listen": "0.0.0.0:8501"})).unwrap_err();
        assert!(
            e.starts_with(
                "settings.token: required because listen (0.0.0.0:8501) is not a loopback address"
            ),
            "{e}"
        );
        // An empty token (an unset ${DASHBOARD_TOKEN:-}) is no token.
        let e = settings(serde_json::json!({"listen": "0.0.0.0:8501", "token": ""})).unwrap_err();
        assert!(e.starts_with("settings.token: required"), "{e}");
        let c = settings(serde_json::json!({"listen": "0.0.0.0:8501", "token": "s3cret"})).unwrap();
        assert!(c.token.as_ref().unwrap().matches("s3cret"));
        assert_eq!(
            format!("{c:?}").matches("s3cret").count(),
            0,
            "the token never prints"
        );
        // Loopback, IPv6 loopback and localhost need none.
        for listen in ["127.0.0.1:0", "[::1]:8501", "localhost:9000"] {
            assert!(
                settings(serde_json::json!({"listen": listen})).is_ok(),
                "{listen}"
            );
        }
    }

    #[test]
    fn each_bad_setting_is_named() {
        for (json, want) in [
            (
                serde_json::json!({"listen": "nowhere"}),
                "settings.listen: \"nowhere\"",
            ),
            (
                serde_json::json!({"theme": "blue"}),
                "settings.theme: \"blue\": write dark or light",
            ),
            (
                serde_json::json!({"title": " "}),
                "settings.title: is empty",
            ),
            (
                serde_json::json!({"max_events": 0}),
                "settings.max_events: 0: give a number from 1 to 10000",
            ),
            (
                serde_json::json!({"max_trades": 20000}),
                "settings.max_trades: 20000",
            ),
            (
                serde_json::json!({"token": "a b"}),
                "settings.token: contains spaces",
            ),
            (
                serde_json::json!({"colour": "red"}),
                "unknown field `colour`",
            ),
        ] {
            let e = settings(json.clone()).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
        assert_eq!(
            settings(serde_json::json!({"theme": "Light"}))
                .unwrap()
                .theme,
            Theme::Light
        );
    }
}
