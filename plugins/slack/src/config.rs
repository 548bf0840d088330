//! The settings an operator writes for a Slack sink, and the one `validate()` that turns
//! them into an [`Endpoint`] or an error naming the field.

use alert_router_plugin::Secret;
use alert_router_plugin::http::Endpoint;
use reqwest::Url;
use schemars::JsonSchema;
use serde::Deserialize;

/// A Slack sink's `settings` in router.yaml.
///
/// ```yaml
/// settings:
///   webhook_url: ${SLACK_WEBHOOK_URL}   # https://hooks.slack.com/services/T…/B…/…
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The incoming webhook URL Slack shows under the app's Incoming Webhooks page
    /// (`https://hooks.slack.com/services/T…/B…/…`). The whole URL is the secret: it
    /// is never logged or shown. The channel, name and icon are the webhook's own;
    /// Slack does not let a message change them.
    webhook_url: Secret,
}

impl Settings {
    /// Checks the webhook URL; an error says what is wrong without quoting it.
    pub(crate) fn validate(self) -> Result<Endpoint, String> {
        let written = self.webhook_url.expose().trim();
        if written.is_empty() {
            return Err(
                "settings.webhook_url: is empty; copy the incoming webhook URL from Slack"
                    .to_owned(),
            );
        }
        let url = Url::parse(written).map_err(|e| {
            format!(
                "settings.webhook_url: not a URL ({e}); copy the incoming webhook URL from Slack (https://hooks.slack.com/services/...)"
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "settings.webhook_url: the scheme is {:?}; Slack webhooks are https URLs",
                url.scheme()
            ));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err("settings.webhook_url: has no host".to_owned());
        };
        if url.path().trim_matches('/').is_empty() {
            return Err(
                "settings.webhook_url: has no path; the URL Slack gives ends in /services/T…/B…/…"
                    .to_owned(),
            );
        }
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let redacted = format!("{}://{host}{port}/…", url.scheme());
        let mut secrets = vec![
            written.to_owned(),
            url.as_str().to_owned(),
            url.path().to_owned(),
        ];
        secrets.extend(url.query().map(str::to_owned));
        // The last segment is the webhook's secret; an echo may show it alone.
        if let Some(last) = url.path_segments().and_then(|mut s| s.next_back())
            && last.len() >= 8
        {
            secrets.push(last.to_owned());
        }
        Ok(Endpoint::new(url, redacted, secrets))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const URL: &str = "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/xOxOsecretsecret1234";

    fn validate(settings: Value) -> Result<Endpoint, String> {
        serde_json::from_value::<Settings>(settings)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn the_url_is_only_ever_shown_redacted() {
        let endpoint = validate(json!({"webhook_url": URL})).unwrap();
        assert_eq!(endpoint.redacted(), "https://hooks.slack.com/…");
        assert_eq!(format!("{endpoint:?}"), "https://hooks.slack.com/…");
        let text = endpoint.redact(&format!("posting to {URL}: xOxOsecretsecret1234 said no"));
        assert!(!text.contains("xOxOsecret"), "{text}");
        assert_eq!(endpoint.url().as_str(), URL);
    }

    #[test]
    fn bad_settings_name_the_field_and_never_the_secret() {
        let cases = [
            (json!({"webhook_url": ""}), "settings.webhook_url: is empty"),
            (
                json!({"webhook_url": "hooks.slack.com/services/xOxOsecret"}),
                "settings.webhook_url: not a URL",
            ),
            (
                json!({"webhook_url": "ftp://hooks.slack.com/services/xOxOsecret"}),
                "the scheme is \"ftp\"",
            ),
            (
                json!({"webhook_url": "https://hooks.slack.com/"}),
                "has no path",
            ),
            (
                json!({"webhook_url": URL, "channel": "#alerts"}),
                "unknown field `channel`",
            ),
            (json!({}), "missing field `webhook_url`"),
        ];
        for (settings, want) in cases {
            let error = validate(settings.clone()).unwrap_err();
            assert!(error.contains(want), "{settings}: {error}");
            assert!(!error.contains("xOxOsecret"), "{error}");
        }
    }
}
