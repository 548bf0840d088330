//! The settings an operator writes for an email sink, their defaults, and the one
//! `validate()` that turns them into a [`Config`] or an error naming the field.

use std::fmt;
use std::time::Duration;

use alert_router_plugin::{DurationSetting, Secret};
use lettre::message::Mailbox;
use schemars::JsonSchema;
use serde::Deserialize;

/// How long to wait for any one answer from the server when `timeout` is not set.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The shortest `timeout` accepted.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// The longest `timeout` accepted: the sink's thread waits this long at most per step.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// An email sink's `settings` in router.yaml.
///
/// ```yaml
/// settings:
///   host: smtp.example.com
///   port: 587                  # default: 587 for starttls, 465 for tls, 25 for none
///   tls: starttls              # starttls (default) | tls | none
///   username: alerts@example.com
///   password: ${SMTP_PASSWORD} # secret
///   from: "Alert Router <alerts@example.com>"
///   to: [ops@example.com, "Trader <trader@example.com>"]
///   timeout: 30s
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The SMTP server's host name or IP address.
    host: String,
    /// The server's port; the default follows `tls`.
    #[serde(default)]
    port: Option<u16>,
    /// starttls (default), tls or none. `starttls`: a plain connection upgraded with
    /// STARTTLS, which the server must offer; `tls`: TLS from the first byte, usually
    /// port 465; `none`: no encryption, only for a relay on the same host or network.
    #[serde(default)]
    tls: Option<String>,
    /// The login, when the server wants one; set together with `password`.
    #[serde(default)]
    username: Option<String>,
    /// The password for `username`. A secret: never logged or shown.
    #[serde(default)]
    password: Option<Secret>,
    /// The sender: `alerts@example.com` or `Name <alerts@example.com>`.
    from: String,
    /// The recipients, in the same forms as `from`; at least one.
    to: Vec<String>,
    /// Longest wait for any one answer from the server: `"30s"` (the default),
    /// `"500ms"`, `"1m"`, or a number of seconds. A send that times out is retried.
    #[serde(default)]
    timeout: Option<DurationSetting>,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    StartTls,
    Tls,
    None,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }
}

/// Validated settings.
pub(crate) struct Config {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) security: Security,
    /// `(username, password)`; the password is a secret.
    pub(crate) login: Option<(String, String)>,
    pub(crate) from: Mailbox,
    pub(crate) to: Vec<Mailbox>,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.login.as_ref().map(|(user, _)| user))
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Config {
    /// `host:port (tls)`: what may be said about the server.
    pub(crate) fn server(&self) -> String {
        format!("{}:{} ({})", self.host, self.port, self.security.as_str())
    }

    /// `text` with the password replaced by `***`; applied to every reason, whatever
    /// produced it (a server may echo what it was sent).
    pub(crate) fn redact(&self, text: &str) -> String {
        alert_router_plugin::redact(text, self.login.iter().map(|(_, p)| p.as_str()))
    }
}

impl Settings {
    /// Checks every setting and builds the [`Config`]; an error names the field and says
    /// what is expected, and never contains the password.
    pub(crate) fn validate(self) -> Result<Config, String> {
        let host = self.host.trim();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(format!(
                "settings.host: {host:?} is not a host name; give the SMTP server's name or IP address, e.g. smtp.example.com"
            ));
        }
        let security = match self.tls.as_deref().map(str::trim) {
            None => Security::StartTls,
            Some(t) if t.eq_ignore_ascii_case("starttls") => Security::StartTls,
            Some(t) if t.eq_ignore_ascii_case("tls") => Security::Tls,
            Some(t) if t.eq_ignore_ascii_case("none") => Security::None,
            Some(t) => {
                return Err(format!(
                    "settings.tls: {t:?} is not supported; use starttls (the default), tls or none"
                ));
            }
        };
        let port = match self.port {
            Some(0) => return Err("settings.port: 0 is not a port; use 1 to 65535".to_owned()),
            Some(port) => port,
            None => security.default_port(),
        };
        let login = match (self.username, self.password) {
            (None, None) => None,
            (Some(user), Some(password)) => {
                let user = user.trim().to_owned();
                if user.is_empty() {
                    return Err(
                        "settings.username: is empty; give the login or remove both username and password"
                            .to_owned(),
                    );
                }
                if password.expose().is_empty() {
                    return Err(
                        "settings.password: is empty; set the password or remove both username and password"
                            .to_owned(),
                    );
                }
                Some((user, password.expose().to_owned()))
            }
            (Some(_), None) => {
                return Err(
                    "settings.password: missing; username and password go together".to_owned(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "settings.username: missing; username and password go together".to_owned(),
                );
            }
        };
        let from = mailbox(&self.from).map_err(|e| format!("settings.from: {e}"))?;
        if self.to.is_empty() {
            return Err("settings.to: is empty; list at least one recipient address".to_owned());
        }
        let to = self
            .to
            .iter()
            .enumerate()
            .map(|(i, address)| mailbox(address).map_err(|e| format!("settings.to[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = self
            .timeout
            .map_or(Ok(DEFAULT_TIMEOUT), |t| t.within(MIN_TIMEOUT, MAX_TIMEOUT))
            .map_err(|e| format!("settings.timeout: {e}"))?;
        Ok(Config {
            host: host.to_owned(),
            port,
            security,
            login,
            from,
            to,
            timeout,
        })
    }
}

/// Parses `address` (`a@b.c` or `Name <a@b.c>`).
fn mailbox(address: &str) -> Result<Mailbox, String> {
    let address = address.trim();
    if address.is_empty() {
        return Err("is empty; give an address such as alerts@example.com".to_owned());
    }
    address.parse::<Mailbox>().map_err(|e| {
        format!("{address:?} is not an email address ({e}); write alerts@example.com or \"Name <alerts@example.com>\"")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const PASSWORD: &str = "pw-Secret-9431";

    fn validate(settings: Value) -> Result<Config, String> {
        serde_json::from_value::<Settings>(settings)
            .map_err(|e| e.to_string())?
            .validate()
    }

    fn base() -> Value {
        json!({"host": "smtp.example.com", "from": "Alerts <alerts@example.com>",
               "to": ["ops@example.com"]})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut settings = base();
        settings[key] = value;
        settings
    }

    #[test]
    fn defaults_follow_the_tls_mode() {
        let config = validate(base()).unwrap();
        assert_eq!((config.security, config.port), (Security::StartTls, 587));
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert!(config.login.is_none());
        let config = validate(with("tls", json!("TLS"))).unwrap();
        assert_eq!((config.security, config.port), (Security::Tls, 465));
        let config = validate(with("tls", json!("none"))).unwrap();
        assert_eq!((config.security, config.port), (Security::None, 25));
        let config = validate(with("port", json!(2525))).unwrap();
        assert_eq!(config.port, 2525);
        assert_eq!(config.server(), "smtp.example.com:2525 (starttls)");
        let config = validate(with("timeout", json!("1.5s"))).unwrap();
        assert_eq!(config.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn every_bad_setting_is_named_and_the_password_never_shown() {
        let mut login = base();
        login["username"] = json!("alerts");
        login["password"] = json!(PASSWORD);
        let config = validate(login.clone()).unwrap();
        assert!(!format!("{config:?}").contains(PASSWORD));
        assert_eq!(
            config.redact(&format!("server said {PASSWORD}")),
            "server said ***"
        );

        let mut bad_from = login.clone();
        bad_from["from"] = json!("not an address");
        let mut bad_to = login.clone();
        bad_to["to"] = json!(["ok@example.com", "nobody@"]);
        let mut no_password = base();
        no_password["username"] = json!("alerts");
        let mut no_user = base();
        no_user["password"] = json!(PASSWORD);
        let cases = [
            (
                bad_from,
                "settings.from: \"not an address\" is not an email address",
            ),
            (bad_to, "settings.to[1]: \"nobody@\""),
            (with("to", json!([])), "settings.to: is empty"),
            (
                with("tls", json!("ssl")),
                "settings.tls: \"ssl\" is not supported",
            ),
            (with("host", json!(" ")), "settings.host:"),
            (with("port", json!(0)), "settings.port:"),
            (
                with("timeout", json!("5 hours")),
                "settings.timeout: unknown unit",
            ),
            (
                with("timeout", json!(0)),
                "settings.timeout: must be between",
            ),
            (no_password, "settings.password: missing"),
            (no_user, "settings.username: missing"),
            (with("smtp", json!("x")), "unknown field `smtp`"),
        ];
        for (settings, expected) in cases {
            let error = validate(settings).unwrap_err();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
            assert!(!error.contains(PASSWORD), "{error}");
        }
    }
}
