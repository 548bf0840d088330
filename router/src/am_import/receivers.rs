//! Receivers as sinks: one sink per integration the router has a plugin for (webhook,
//! Slack, email, Telegram, Discord), its secrets as `${VARIABLE}`s whose values go to
//! `.env`, and the templates they render.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_saphyr::{Location, Spanned};

use super::Notes;
use super::model::{Global, HttpConfig, Receiver, Unconverted};
use super::yaml::{self, q};

/// One sink to write under `sinks:`.
#[derive(Debug)]
pub struct Sink {
    pub name: String,
    pub plugin: &'static str,
    /// `key: value` lines of its settings, values already YAML.
    pub settings: Vec<(String, String)>,
    /// (variable, value) for `.env`.
    pub secrets: Vec<(String, String)>,
    /// The receiver it came from.
    pub receiver: String,
}

/// Every sink, and each receiver's sinks and whether it sends resolved notifications.
#[derive(Debug, Default)]
pub struct Sinks {
    pub list: Vec<Sink>,
    by_receiver: BTreeMap<String, (Vec<String>, bool)>,
}

impl Sinks {
    /// A receiver's sinks (none for a receiver without integrations, which Alertmanager
    /// accepts as a way to drop), and its `send_resolved`; `None`: no such receiver.
    pub fn of_receiver(&self, receiver: &str) -> Option<(Vec<String>, bool)> {
        self.by_receiver.get(receiver).cloned()
    }
}

/// An integration on its way to being a sink.
struct Integration {
    plugin: &'static str,
    settings: Vec<(String, String)>,
    /// (setting, value) of secrets: written as `${VAR}` once the sink is named.
    secret_settings: Vec<(String, String)>,
    send_resolved: bool,
}

impl Integration {
    fn new(plugin: &'static str, send_resolved: bool) -> Integration {
        Integration {
            plugin,
            settings: Vec::new(),
            secret_settings: Vec::new(),
            send_resolved,
        }
    }

    fn set(&mut self, key: &str, yaml_value: String) {
        self.settings.push((key.to_owned(), yaml_value));
    }

    fn secret(&mut self, key: &str, value: &str) {
        self.secret_settings
            .push((key.to_owned(), value.to_owned()));
    }
}

pub fn convert(receivers: &[Spanned<Receiver>], global: &Global, notes: &mut Notes) -> Sinks {
    let mut sinks = Sinks::default();
    let mut names = BTreeSet::new();
    for spanned in receivers {
        let r = &spanned.value;
        let what = format!("receiver `{}`", r.name);
        for (key, place) in r.unconverted() {
            notes.add(
                &place.referenced,
                &format!("{what}: {key}"),
                "not converted: the router has no plugin for it (write one, README \"Plugins\")",
            );
        }
        let mut found: Vec<Integration> = Vec::new();
        for w in &r.webhook_configs {
            found.extend(webhook(&w.value, &w.referenced, &what, notes));
        }
        for s in &r.slack_configs {
            let c = &s.value;
            let mut i = Integration::new("slack", c.send_resolved.unwrap_or(false));
            let here = format!("{what}: slack_configs");
            unconverted(
                notes,
                &here,
                "api_url_file",
                &c.api_url_file,
                "set webhook_url in .env",
            );
            unconverted(
                notes,
                &here,
                "http_config",
                &c.http_config,
                "not needed by incoming webhooks",
            );
            unconverted(
                notes,
                &here,
                "channel",
                &c.channel,
                "an incoming webhook posts to the channel it was made for",
            );
            for (key, v) in [("title", &c.title), ("text", &c.text)] {
                unconverted(
                    notes,
                    &here,
                    key,
                    v,
                    "Go templates are not converted: templates/slack/ words the messages",
                );
            }
            match c.api_url.as_ref().or(global.slack_api_url.as_ref()) {
                Some(url) if url.contains("chat.postMessage") => notes.add(
                    &s.referenced,
                    &here,
                    "not converted: the router's Slack plugin posts to incoming webhooks, not with a bot token",
                ),
                Some(url) => {
                    i.secret("webhook_url", url);
                    found.push(i);
                }
                None => notes.add(&s.referenced, &here, "not converted: no api_url"),
            }
        }
        for e in &r.email_configs {
            found.extend(email(&e.value, &e.referenced, global, &what, notes));
        }
        for t in &r.telegram_configs {
            let c = &t.value;
            let here = format!("{what}: telegram_configs");
            unconverted(
                notes,
                &here,
                "bot_token_file",
                &c.bot_token_file,
                "set bot_token in .env",
            );
            unconverted(
                notes,
                &here,
                "message",
                &c.message,
                "Go templates are not converted: templates/telegram/ words the messages",
            );
            unconverted(
                notes,
                &here,
                "disable_notifications",
                &c.disable_notifications,
                "use the plugin's silent_below setting",
            );
            unconverted(notes, &here, "http_config", &c.http_config, "not converted");
            let (Some(token), Some(chat)) = (&c.bot_token, c.chat_id) else {
                notes.add(
                    &t.referenced,
                    &here,
                    "not converted: bot_token and chat_id are needed",
                );
                continue;
            };
            let mut i = Integration::new("telegram", c.send_resolved.unwrap_or(true));
            i.secret("bot_token", token);
            i.set("chat_ids", format!("[{chat}]"));
            // Alertmanager's bot only notifies; two sinks polling one bot for commands
            // would take each other's updates.
            i.set("commands", "false".to_owned());
            if let Some(api) = c.api_url.as_ref().or(global.telegram_api_url.as_ref())
                && api.trim_end_matches('/') != "https://api.telegram.org"
            {
                i.set("api_url", q(api));
            }
            match c.parse_mode.as_deref() {
                None | Some("HTML") => {}
                Some("MarkdownV2") => i.set("parse_mode", q("MarkdownV2")),
                Some("") => i.set("parse_mode", q("none")),
                Some(other) => notes.add(
                    &t.referenced,
                    &format!("{here}: parse_mode"),
                    &format!("`{other}` is not converted: the router sends HTML, MarkdownV2 or none; HTML is kept"),
                ),
            }
            found.push(i);
        }
        for d in &r.discord_configs {
            let c = &d.value;
            let here = format!("{what}: discord_configs");
            unconverted(
                notes,
                &here,
                "webhook_url_file",
                &c.webhook_url_file,
                "set webhook_url in .env",
            );
            for (key, v) in [("title", &c.title), ("message", &c.message)] {
                unconverted(
                    notes,
                    &here,
                    key,
                    v,
                    "Go templates are not converted: templates/discord/ words the messages",
                );
            }
            unconverted(notes, &here, "http_config", &c.http_config, "not converted");
            let Some(url) = &c.webhook_url else {
                notes.add(&d.referenced, &here, "not converted: no webhook_url");
                continue;
            };
            let mut i = Integration::new("discord", c.send_resolved.unwrap_or(true));
            i.secret("webhook_url", url);
            found.push(i);
        }

        let send_resolved = found.iter().any(|i| i.send_resolved);
        if found.iter().any(|i| i.send_resolved != send_resolved) {
            notes.add(
                &spanned.referenced,
                &format!("{what}: send_resolved"),
                "its integrations differ: the router decides per route, and its routes send resolved notifications to all of them",
            );
        }
        let single = found.len() == 1;
        let mut sink_names = Vec::new();
        for i in found {
            let base = if single {
                yaml::valid_name(&r.name, "receiver")
            } else {
                format!("{}-{}", yaml::valid_name(&r.name, "receiver"), i.plugin)
            };
            let mut name = base.clone();
            let mut n = 1;
            while !names.insert(name.clone()) {
                n += 1;
                name = format!("{base}-{n}");
            }
            let mut settings = i.settings;
            let mut secrets = Vec::new();
            for (key, value) in i.secret_settings {
                let var = env_var(&name, &key);
                match key.split_once('.') {
                    // A header: `headers.<name>`, written as a map.
                    Some(("headers", header)) => settings.push((
                        "headers".to_owned(),
                        format!("{{{}: {}}}", q(header), q(&format!("${{{var}}}"))),
                    )),
                    _ => settings.push((key.clone(), q(&format!("${{{var}}}")))),
                }
                secrets.push((var, value));
            }
            settings.sort_by(|a, b| a.0.cmp(&b.0));
            sink_names.push(name.clone());
            sinks.list.push(Sink {
                name,
                plugin: i.plugin,
                settings,
                secrets,
                receiver: r.name.clone(),
            });
        }
        sinks
            .by_receiver
            .insert(r.name.clone(), (sink_names, send_resolved));
    }
    sinks
}

fn webhook(
    c: &super::model::WebhookConfig,
    at: &Location,
    what: &str,
    notes: &mut Notes,
) -> Option<Integration> {
    let here = format!("{what}: webhook_configs");
    unconverted(notes, &here, "url_file", &c.url_file, "set url in .env");
    if let Some(max) = &c.max_alerts
        && max.value > 0
    {
        notes.add(
            &max.referenced,
            &format!("{here}: max_alerts"),
            "not converted: a group's notification lists at most 200 alerts, and says how many it left out (truncatedAlerts)",
        );
    }
    let Some(url) = &c.url else {
        notes.add(at, &here, "not converted: no url");
        return None;
    };
    let mut i = Integration::new("webhook", c.send_resolved.unwrap_or(true));
    i.secret("url", url);
    if let Some(t) = &c.timeout {
        match super::yaml::am_duration(t) {
            Ok(d) if !d.is_zero() => i.set("timeout", q(&yaml::duration(d))),
            Ok(_) => {}
            Err(e) => notes.add(at, &format!("{here}: timeout"), &e),
        }
    }
    if let Some(h) = &c.http_config
        && let Some(header) = authorization(&h.value, &here, notes)
    {
        i.secret("headers.Authorization", &header);
    }
    Some(i)
}

/// The `Authorization` header an `http_config` asks for, if any.
fn authorization(h: &HttpConfig, here: &str, notes: &mut Notes) -> Option<String> {
    let here = format!("{here}: http_config");
    unconverted(
        notes,
        &here,
        "bearer_token_file",
        &h.bearer_token_file,
        "set the header in .env",
    );
    unconverted(notes, &here, "oauth2", &h.oauth2, "not converted");
    unconverted(
        notes,
        &here,
        "tls_config",
        &h.tls_config,
        "not converted: the system's CAs are trusted",
    );
    unconverted(
        notes,
        &here,
        "proxy_url",
        &h.proxy_url,
        "not converted: set HTTPS_PROXY for the router",
    );
    if let Some(a) = &h.authorization {
        unconverted(
            notes,
            &here,
            "authorization.credentials_file",
            &a.credentials_file,
            "set the header in .env",
        );
        if let Some(credentials) = &a.credentials {
            return Some(format!(
                "{} {credentials}",
                a.kind.as_deref().unwrap_or("Bearer")
            ));
        }
    }
    if let Some(token) = &h.bearer_token {
        return Some(format!("Bearer {token}"));
    }
    if let Some(b) = &h.basic_auth {
        unconverted(
            notes,
            &here,
            "basic_auth.password_file",
            &b.password_file,
            "set the header in .env",
        );
        let pair = format!(
            "{}:{}",
            b.username.as_deref().unwrap_or_default(),
            b.password.as_deref().unwrap_or_default()
        );
        return Some(format!("Basic {}", STANDARD.encode(pair)));
    }
    None
}

fn email(
    c: &super::model::EmailConfig,
    at: &Location,
    global: &Global,
    what: &str,
    notes: &mut Notes,
) -> Option<Integration> {
    let here = format!("{what}: email_configs");
    unconverted(
        notes,
        &here,
        "auth_password_file",
        &c.auth_password_file,
        "set password in .env",
    );
    unconverted(
        notes,
        &here,
        "auth_secret",
        &c.auth_secret,
        "CRAM-MD5 is not supported: use a password",
    );
    unconverted(
        notes,
        &here,
        "auth_identity",
        &c.auth_identity,
        "not converted",
    );
    unconverted(
        notes,
        &here,
        "tls_config",
        &c.tls_config,
        "not converted: the system's CAs are trusted",
    );
    unconverted(
        notes,
        &here,
        "headers",
        &c.headers,
        "not converted: templates/email/ writes the subject",
    );
    for (key, v) in [("html", &c.html), ("text", &c.text)] {
        unconverted(
            notes,
            &here,
            key,
            v,
            "Go templates are not converted: templates/email/ words the messages",
        );
    }
    let from = c.from.as_ref().or(global.smtp_from.as_ref());
    let smarthost = c.smarthost.as_ref().or(global.smtp_smarthost.as_ref());
    let (Some(to), Some(from), Some(smarthost)) = (&c.to, from, smarthost) else {
        notes.add(
            at,
            &here,
            "not converted: to, from and smarthost are needed",
        );
        return None;
    };
    let Some((host, port)) = smarthost
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
    else {
        notes.add(
            at,
            &format!("{here}: smarthost"),
            &format!("`{smarthost}` is not host:port"),
        );
        return None;
    };
    let mut i = Integration::new("email", c.send_resolved.unwrap_or(false));
    let to: Vec<String> = to
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    i.set("to", yaml::list(&to));
    i.set("from", q(from));
    i.set("host", q(host));
    i.set("port", port.to_string());
    let require_tls = c.require_tls.or(global.smtp_require_tls).unwrap_or(true);
    // Port 465 speaks TLS from the first byte; elsewhere Alertmanager upgrades with
    // STARTTLS when it requires TLS.
    let tls = match (port, require_tls) {
        (465, _) => "tls",
        (_, true) => "starttls",
        (_, false) => "none",
    };
    i.set("tls", q(tls));
    if let Some(user) = c
        .auth_username
        .as_ref()
        .or(global.smtp_auth_username.as_ref())
    {
        i.set("username", q(user));
    }
    if let Some(password) = c
        .auth_password
        .as_ref()
        .or(global.smtp_auth_password.as_ref())
    {
        i.secret("password", password);
    }
    Some(i)
}

/// Notes `key` of an integration when it is set.
fn unconverted(notes: &mut Notes, here: &str, key: &str, value: &Unconverted, why: &str) {
    if let Some(v) = value {
        notes.add(&v.referenced, &format!("{here}: {key}"), why);
    }
}

/// `.env` variable for a sink's secret setting: `TEAM_DB_URL`.
fn env_var(sink: &str, setting: &str) -> String {
    format!("{sink}_{}", setting.replace("headers.", ""))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The shipped templates of the chat plugins, as the router's `templates/` has them.
const SHIPPED: [(&str, &str, &str); 12] = [
    (
        "telegram",
        "alert",
        include_str!("../../../templates/telegram/alert.yaml"),
    ),
    (
        "telegram",
        "group",
        include_str!("../../../templates/telegram/group.yaml"),
    ),
    (
        "telegram",
        "default",
        include_str!("../../../templates/telegram/default.yaml"),
    ),
    (
        "discord",
        "alert",
        include_str!("../../../templates/discord/alert.yaml"),
    ),
    (
        "discord",
        "group",
        include_str!("../../../templates/discord/group.yaml"),
    ),
    (
        "discord",
        "default",
        include_str!("../../../templates/discord/default.yaml"),
    ),
    (
        "slack",
        "alert",
        include_str!("../../../templates/slack/alert.yaml"),
    ),
    (
        "slack",
        "group",
        include_str!("../../../templates/slack/group.yaml"),
    ),
    (
        "slack",
        "default",
        include_str!("../../../templates/slack/default.yaml"),
    ),
    (
        "email",
        "alert",
        include_str!("../../../templates/email/alert.yaml"),
    ),
    (
        "email",
        "group",
        include_str!("../../../templates/email/group.yaml"),
    ),
    (
        "email",
        "default",
        include_str!("../../../templates/email/default.yaml"),
    ),
];

/// The templates the sinks render: the shipped ones of each chat plugin used, and for
/// each webhook Alertmanager's own body, so its receiver reads what it always read.
pub fn templates(sinks: &Sinks) -> Vec<(PathBuf, String)> {
    let plugins: BTreeSet<&str> = sinks.list.iter().map(|s| s.plugin).collect();
    let mut files: Vec<(PathBuf, String)> = SHIPPED
        .iter()
        .filter(|(plugin, _, _)| plugins.contains(plugin))
        .map(|(plugin, name, text)| {
            (
                PathBuf::from(format!("templates/{plugin}/{name}.yaml")),
                (*text).to_owned(),
            )
        })
        .collect();
    for sink in sinks.list.iter().filter(|s| s.plugin == "webhook") {
        files.push((
            PathBuf::from(format!("templates/{}/group.yaml", sink.name)),
            webhook_body(&sink.receiver),
        ));
    }
    files
}

/// Alertmanager's webhook body (version 4) for `receiver`'s groups.
fn webhook_body(receiver: &str) -> String {
    format!(
        r#"# Alertmanager's webhook body (version 4), as its receiver read it before the import.
# The filters that shape it are in README, "Templates".
version: "4"
groupKey: "{{{{ rule }}}}:{{% for k, v in group|items %}}{{{{ k }}}}={{{{ v }}}};{{% endfor %}}"
truncatedAlerts: "{{{{ counts.total - (alerts|length) }}}}"
status: "{{{{ 'firing' if counts.firing else 'resolved' }}}}"
receiver: {receiver}
groupLabels: "{{{{ group|group_labels }}}}"
commonLabels: "{{{{ alerts|common_labels }}}}"
commonAnnotations: "{{{{ alerts|common_annotations }}}}"
externalURL: ""
alerts: "{{{{ alerts|alertmanager_alerts }}}}"
"#,
        receiver = q(receiver)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_variables_are_named_after_the_sink() {
        assert_eq!(env_var("team-db", "url"), "TEAM_DB_URL");
        assert_eq!(
            env_var("ops-webhook-2", "headers.Authorization"),
            "OPS_WEBHOOK_2_AUTHORIZATION"
        );
    }
}
