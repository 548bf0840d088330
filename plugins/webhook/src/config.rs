//! The settings an operator writes for a webhook sink, their defaults, and the one
//! `validate()` that turns them into a [`Config`] or an error naming the field.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use alert_router_plugin::http::Endpoint;
use alert_router_plugin::{DurationSetting, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use schemars::JsonSchema;
use serde::Deserialize;

/// How long a request may take when `timeout` is not set.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest `timeout` accepted.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// The longest `timeout` accepted: the sink's thread waits this long at most.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Secrets shorter than this are not searched for in reasons: replacing every `1` in a
/// reason would hide more than it protects.
const MIN_REDACTED: usize = 4;

/// Headers the sink sets itself; a static header may not replace them.
const RESERVED_HEADERS: [&str; 6] = [
    "content-length",
    "host",
    "transfer-encoding",
    "idempotency-key",
    "x-alert-router-timestamp",
    "x-alert-router-signature",
];

/// A webhook sink's `settings` in router.yaml.
///
/// ```yaml
/// settings:
///   url: ${ORDERS_WEBHOOK_URL}       # secret: it may carry a token
///   method: POST                     # or PUT
///   headers: {Authorization: "Bearer ${ORDERS_TOKEN}"}
///   timeout: 10s
///   secret: ${ORDERS_SIGNING_SECRET} # signs each body (HMAC-SHA256)
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where to send each message: an `http://` or `https://` URL. It is a secret (it
    /// may carry a token in its path or query): only its scheme, host and port are ever
    /// logged or shown.
    url: Secret,
    /// `POST` (the default) or `PUT`.
    #[serde(default)]
    method: Option<String>,
    /// Static headers sent with every request, such as `Authorization`. Values are
    /// secrets. They may not replace the headers the sink sets itself.
    #[serde(default)]
    headers: BTreeMap<String, Secret>,
    /// Longest wait for the whole answer: `"10s"` (the default), `"500ms"`, `"1m"`, or a
    /// number of seconds. A request that takes longer is retried.
    #[serde(default)]
    timeout: Option<DurationSetting>,
    /// Signs every request with HMAC-SHA256 when set. Each request then carries
    /// `X-Alert-Router-Timestamp: <unix seconds>` and
    /// `X-Alert-Router-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
    #[serde(default)]
    secret: Option<Secret>,
}

/// Validated settings.
pub(crate) struct Config {
    pub(crate) endpoint: Endpoint,
    pub(crate) method: Method,
    /// The static headers, marked sensitive.
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Duration,
    /// The signing key, when `secret` is set.
    pub(crate) secret: Option<Vec<u8>>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl Settings {
    /// Checks every setting and builds the [`Config`]; an error names the field and says
    /// what is expected, and never contains a secret.
    pub(crate) fn validate(self) -> Result<Config, String> {
        let url = parse_url(self.url.expose().trim())?;
        let method = match self.method.as_deref().map(str::trim) {
            None => Method::POST,
            Some(m) if m.eq_ignore_ascii_case("post") => Method::POST,
            Some(m) if m.eq_ignore_ascii_case("put") => Method::PUT,
            Some(m) => {
                return Err(format!(
                    "settings.method: {m:?} is not supported; use POST (the default) or PUT"
                ));
            }
        };
        let mut secrets = url_secrets(&url, self.url.expose().trim());
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("settings.headers: {name:?} is not a valid header name"))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(format!(
                    "settings.headers.{name}: the sink sets this header itself; remove it"
                ));
            }
            let mut header_value = HeaderValue::from_str(value.expose().trim()).map_err(|_| {
                format!(
                    "settings.headers.{name}: the value has characters a header cannot carry (line breaks, control characters)"
                )
            })?;
            header_value.set_sensitive(true);
            headers.insert(header, header_value);
            secrets.push(value.expose().trim().to_owned());
        }
        let timeout = self
            .timeout
            .map_or(Ok(DEFAULT_TIMEOUT), |t| t.within(MIN_TIMEOUT, MAX_TIMEOUT))
            .map_err(|e| format!("settings.timeout: {e}"))?;
        let secret = match self.secret {
            None => None,
            Some(s) if s.expose().is_empty() => {
                return Err(
                    "settings.secret: is empty; set a signing secret or remove the setting"
                        .to_owned(),
                );
            }
            Some(s) => {
                secrets.push(s.expose().to_owned());
                Some(s.expose().as_bytes().to_vec())
            }
        };
        secrets.retain(|s| s.chars().count() >= MIN_REDACTED);
        let redacted = redact_url(&url);
        Ok(Config {
            endpoint: Endpoint::new(url, redacted, secrets),
            method,
            headers,
            timeout,
            secret,
        })
    }
}

/// Parses `url`; errors describe it without quoting it (it is a secret).
fn parse_url(url: &str) -> Result<Url, String> {
    if url.is_empty() {
        return Err("settings.url: is empty; give the endpoint's http(s) URL".to_owned());
    }
    let parsed = Url::parse(url).map_err(|e| {
        format!("settings.url: not a URL ({e}); give the endpoint's full http(s) URL")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "settings.url: the scheme is {:?}; only http and https are supported",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("settings.url: has no host".to_owned());
    }
    Ok(parsed)
}

/// The parts of a URL that may carry a token.
fn url_secrets(url: &Url, written: &str) -> Vec<String> {
    let mut secrets = vec![written.to_owned(), url.as_str().to_owned()];
    if url.path() != "/" {
        secrets.push(url.path().to_owned());
    }
    secrets.extend(url.query().map(str::to_owned));
    secrets.extend(url.password().map(str::to_owned));
    if !url.username().is_empty() {
        secrets.push(url.username().to_owned());
    }
    // A token is usually one long path segment or query value; an echo may show it
    // alone.
    for segment in url.path_segments().into_iter().flatten() {
        if segment.len() >= 16 {
            secrets.push(segment.to_owned());
        }
    }
    for (_, value) in url.query_pairs() {
        secrets.push(value.into_owned());
    }
    secrets
}

/// `scheme://host[:port]/…`: what may be said about the endpoint.
fn redact_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = if url.path() == "/" && url.query().is_none() {
        "/"
    } else {
        "/…"
    };
    format!("{}://{host}{port}{rest}", url.scheme())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn validate(settings: Value) -> Result<Config, String> {
        serde_json::from_value::<Settings>(settings)
            .map_err(|e| e.to_string())?
            .validate()
    }

    const URL: &str = "https://hooks.example.com/in/tok_3f9a8b7c6d5e4f3a2b1c?key=qsecret123";

    #[test]
    fn defaults_are_post_and_ten_seconds_unsigned() {
        let config = validate(json!({"url": URL})).unwrap();
        assert_eq!(config.method, Method::POST);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert!(config.secret.is_none());
        assert_eq!(config.endpoint.redacted(), "https://hooks.example.com/…");
    }

    #[test]
    fn every_setting_is_read() {
        let config = validate(json!({"url": URL, "method": "put", "timeout": "1.5s",
            "headers": {"Authorization": "Bearer abcdefgh"}, "secret": "s3cr3t-key"}))
        .unwrap();
        assert_eq!(config.method, Method::PUT);
        assert_eq!(config.timeout, Duration::from_millis(1500));
        assert_eq!(config.secret.as_deref(), Some(&b"s3cr3t-key"[..]));
        assert!(config.headers["authorization"].is_sensitive());
        for (written, want) in [("500ms", 500), ("1m", 60_000), ("2", 2000)] {
            let config = validate(json!({"url": URL, "timeout": written})).unwrap();
            assert_eq!(config.timeout, Duration::from_millis(want), "{written}");
        }
        let config = validate(json!({"url": URL, "timeout": 3})).unwrap();
        assert_eq!(config.timeout, Duration::from_secs(3));
    }

    #[test]
    fn bad_settings_name_the_field_and_never_the_secret() {
        let cases = [
            (
                json!({"url": "ftp://files.example.com/tok_secret_value_1"}),
                "settings.url: the scheme is \"ftp\"",
            ),
            (
                json!({"url": "not a url tok_secret_value_1"}),
                "settings.url: not a URL",
            ),
            (json!({"url": ""}), "settings.url: is empty"),
            (
                json!({"url": URL, "method": "PATCH"}),
                "settings.method: \"PATCH\" is not supported",
            ),
            (
                json!({"url": URL, "timeout": "10 parsecs"}),
                "settings.timeout: unknown unit",
            ),
            (
                json!({"url": URL, "timeout": "0s"}),
                "settings.timeout: must be between",
            ),
            (
                json!({"url": URL, "timeout": "1h"}),
                "settings.timeout: must be between 1ms and 300s",
            ),
            (
                json!({"url": URL, "headers": {"Idempotency-Key": "x"}}),
                "settings.headers.Idempotency-Key: the sink sets this header itself",
            ),
            (
                json!({"url": URL, "headers": {"bad name": "x"}}),
                "settings.headers: \"bad name\" is not a valid header name",
            ),
            (
                json!({"url": URL, "headers": {"X-Token": "a\nb"}}),
                "settings.headers.X-Token: the value has characters",
            ),
            (
                json!({"url": URL, "secret": ""}),
                "settings.secret: is empty",
            ),
            (json!({"url": URL, "retries": 3}), "unknown field `retries`"),
        ];
        for (settings, want) in cases {
            let error = validate(settings.clone()).unwrap_err();
            assert!(error.contains(want), "{settings}: {error}");
            assert!(!error.contains("tok_"), "{error}");
        }
    }

    #[test]
    fn redact_hides_every_secret_part() {
        let config = validate(
            json!({"url": URL, "headers": {"Authorization": "Bearer abcdefgh"},
            "secret": "s3cr3t-key"}),
        )
        .unwrap();
        let endpoint = &config.endpoint;
        let text =
            format!("{URL} / tok_3f9a8b7c6d5e4f3a2b1c / qsecret123 / Bearer abcdefgh / s3cr3t-key");
        let redacted = endpoint.redact(&text);
        for secret in ["tok_", "qsecret", "abcdefgh", "s3cr3t"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert!(!format!("{config:?}").contains("tok_"));
        assert_eq!(
            endpoint.redact("connection refused"),
            "connection refused",
            "plain text is left alone"
        );
    }
}
