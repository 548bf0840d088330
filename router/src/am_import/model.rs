//! Alertmanager's configuration file as the importer reads it: what it converts, typed,
//! and what it cannot, kept only for its place. Keys Alertmanager itself would refuse
//! are ignored (its own `amtool check-config` says so first).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

/// A key the importer cannot convert: only where it is matters.
pub type Unconverted = Option<Spanned<IgnoredAny>>;

#[derive(Debug, Deserialize)]
pub struct AmConfig {
    #[serde(default)]
    pub global: Global,
    pub route: Option<Spanned<AmRoute>>,
    #[serde(default)]
    pub receivers: Vec<Spanned<Receiver>>,
    #[serde(default)]
    pub inhibit_rules: Vec<Spanned<InhibitRule>>,
    /// Both forms hold named intervals; `mute_time_intervals` is the older name.
    #[serde(default)]
    pub time_intervals: Vec<Spanned<serde_json::Value>>,
    #[serde(default)]
    pub mute_time_intervals: Vec<Spanned<serde_json::Value>>,
    pub templates: Unconverted,
}

#[derive(Debug, Default, Deserialize)]
pub struct Global {
    pub resolve_timeout: Option<Spanned<String>>,
    pub smtp_from: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_require_tls: Option<bool>,
    pub slack_api_url: Option<String>,
    pub telegram_api_url: Option<String>,
    pub http_config: Unconverted,
    pub smtp_auth_password_file: Unconverted,
    pub slack_api_url_file: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct AmRoute {
    pub receiver: Option<Spanned<String>>,
    pub group_by: Option<Vec<String>>,
    #[serde(rename = "continue", default)]
    pub continue_: bool,
    #[serde(rename = "match", default)]
    pub match_equal: BTreeMap<String, String>,
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub matchers: Vec<Spanned<String>>,
    pub group_wait: Option<Spanned<String>>,
    pub group_interval: Option<Spanned<String>>,
    pub repeat_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub mute_time_intervals: Vec<Spanned<String>>,
    #[serde(default)]
    pub active_time_intervals: Vec<Spanned<String>>,
    #[serde(default)]
    pub routes: Vec<Spanned<AmRoute>>,
}

#[derive(Debug, Deserialize)]
pub struct Receiver {
    pub name: String,
    #[serde(default)]
    pub webhook_configs: Vec<Spanned<WebhookConfig>>,
    #[serde(default)]
    pub slack_configs: Vec<Spanned<SlackConfig>>,
    #[serde(default)]
    pub email_configs: Vec<Spanned<EmailConfig>>,
    #[serde(default)]
    pub telegram_configs: Vec<Spanned<TelegramConfig>>,
    #[serde(default)]
    pub discord_configs: Vec<Spanned<DiscordConfig>>,
    // Integrations the router has no plugin for.
    pub pagerduty_configs: Unconverted,
    pub opsgenie_configs: Unconverted,
    pub pushover_configs: Unconverted,
    pub victorops_configs: Unconverted,
    pub wechat_configs: Unconverted,
    pub sns_configs: Unconverted,
    pub webex_configs: Unconverted,
    pub msteams_configs: Unconverted,
    pub msteamsv2_configs: Unconverted,
    pub jira_configs: Unconverted,
    pub rocketchat_configs: Unconverted,
    pub incidentio_configs: Unconverted,
}

impl Receiver {
    /// The integrations the router has no plugin for, by key, with their places.
    pub fn unconverted(&self) -> Vec<(&'static str, &Spanned<IgnoredAny>)> {
        [
            ("pagerduty_configs", &self.pagerduty_configs),
            ("opsgenie_configs", &self.opsgenie_configs),
            ("pushover_configs", &self.pushover_configs),
            ("victorops_configs", &self.victorops_configs),
            ("wechat_configs", &self.wechat_configs),
            ("sns_configs", &self.sns_configs),
            ("webex_configs", &self.webex_configs),
            ("msteams_configs", &self.msteams_configs),
            ("msteamsv2_configs", &self.msteamsv2_configs),
            ("jira_configs", &self.jira_configs),
            ("rocketchat_configs", &self.rocketchat_configs),
            ("incidentio_configs", &self.incidentio_configs),
        ]
        .into_iter()
        .filter_map(|(key, v)| v.as_ref().map(|v| (key, v)))
        .collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct HttpConfig {
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token_file: Unconverted,
    pub oauth2: Unconverted,
    pub tls_config: Unconverted,
    pub proxy_url: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct BasicAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct WebhookConfig {
    pub url: Option<String>,
    pub send_resolved: Option<bool>,
    pub http_config: Option<Spanned<HttpConfig>>,
    pub timeout: Option<String>,
    pub url_file: Unconverted,
    pub max_alerts: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
pub struct SlackConfig {
    pub api_url: Option<String>,
    pub send_resolved: Option<bool>,
    pub api_url_file: Unconverted,
    pub http_config: Unconverted,
    pub channel: Unconverted,
    pub title: Unconverted,
    pub text: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct EmailConfig {
    pub to: Option<String>,
    pub from: Option<String>,
    pub smarthost: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub require_tls: Option<bool>,
    pub send_resolved: Option<bool>,
    pub auth_password_file: Unconverted,
    pub auth_secret: Unconverted,
    pub auth_identity: Unconverted,
    pub tls_config: Unconverted,
    pub headers: Unconverted,
    pub html: Unconverted,
    pub text: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct TelegramConfig {
    pub bot_token: Option<String>,
    pub chat_id: Option<i64>,
    pub api_url: Option<String>,
    pub parse_mode: Option<String>,
    pub send_resolved: Option<bool>,
    pub bot_token_file: Unconverted,
    pub message: Unconverted,
    pub disable_notifications: Unconverted,
    pub http_config: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct DiscordConfig {
    pub webhook_url: Option<String>,
    pub send_resolved: Option<bool>,
    pub webhook_url_file: Unconverted,
    pub title: Unconverted,
    pub message: Unconverted,
    pub http_config: Unconverted,
}

#[derive(Debug, Deserialize)]
pub struct InhibitRule {
    #[serde(default)]
    pub source_matchers: Vec<Spanned<String>>,
    #[serde(default)]
    pub target_matchers: Vec<Spanned<String>>,
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub equal: Vec<String>,
}
