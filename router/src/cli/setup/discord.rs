//! `setup discord`: the webhook URL is checked with Discord's "Get Webhook with Token"
//! (a GET on the URL itself, which posts nothing), and the webhook's name and channel
//! are shown. <https://discord.com/developers/docs/resources/webhook#get-webhook-with-token>

use std::time::Duration;

use anyhow::{Result, bail};
use reqwest::Url;
use serde_json::Value;

use super::{EnvLine, transport};
use alert_router_plugin::Secret;

pub(super) const HOW_TO: &str =
    "How to get a webhook URL: in Discord, open the channel's settings (the gear beside its
name), Integrations, Webhooks, New Webhook; name it, then Copy Webhook URL. It looks like
https://discord.com/api/webhooks/123456789012345678/AbC...; whoever has it can post to the
channel, so keep it secret.

Example:
  alert-router setup discord --webhook-url https://discord.com/api/webhooks/ID/TOKEN --write-env";

const URL_SHAPE: &str = "expected the URL Discord's \"Copy Webhook URL\" gives, https://discord.com/api/webhooks/ID/TOKEN";

/// A webhook type that can post messages: an Incoming Webhook.
const INCOMING: u64 = 1;

/// Checks the webhook URL with Discord and returns the `.env` lines.
pub(super) fn run(url: &Secret) -> Result<Vec<EnvLine>> {
    let webhook = Webhook::parse(url.expose())?;
    let runtime = super::runtime()?;
    let (status, body) = runtime.block_on(async {
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?
            .get(webhook.api.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {}", webhook.host, transport(e)))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::Ok((status, body))
    })?;
    let message = body["message"].as_str().unwrap_or("(no message)");
    match status {
        200 => {}
        404 => bail!(
            "Discord does not know this webhook ({status} {message}): it was deleted, or the URL is incomplete; copy it again (channel settings, Integrations, Webhooks, Copy Webhook URL)"
        ),
        401 => bail!(
            "Discord refused the webhook's token ({status} {message}): the part after the webhook id is wrong; copy the URL again (channel settings, Integrations, Webhooks, Copy Webhook URL)"
        ),
        429 => bail!(
            "Discord asks to slow down ({status} {message}): try again in {} s",
            body["retry_after"].as_f64().unwrap_or(1.0).ceil()
        ),
        _ => bail!("{} answered {status} {message}", webhook.host),
    }
    let kind = body["type"].as_u64().unwrap_or(0);
    if kind != INCOMING {
        bail!(
            "this webhook (type {kind}) is not an incoming webhook, so it cannot post messages: make a new one in the channel's settings (Integrations, Webhooks, New Webhook)"
        );
    }
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    let (name, channel, guild) = (text("name"), text("channel_id"), text("guild_id"));
    println!(
        "The webhook works: \"{name}\" posts to channel {channel}{}.",
        if guild.is_empty() {
            String::new()
        } else {
            format!(" of server {guild} (https://discord.com/channels/{guild}/{channel})")
        }
    );
    println!(
        "Messages show \"{name}\" as their author unless the sink's `username` setting says otherwise."
    );
    Ok(vec![
        EnvLine::plain("DISCORD_ENABLED", "true"),
        EnvLine::secret("DISCORD_WEBHOOK_URL", url, webhook.shown),
    ])
}

/// A webhook URL, taken apart.
#[derive(Debug)]
struct Webhook {
    /// `[prefix]/api/v10/webhooks/{id}/{token}` on the URL's host: what the GET asks.
    api: Url,
    /// `scheme://host[:port]`, for messages.
    host: String,
    /// The URL with the token as `***`.
    shown: String,
}

impl Webhook {
    /// Parses `[prefix]/api[/vN]/webhooks/{id}/{token}`, as the Discord sink does. No
    /// error repeats the URL: it holds the token.
    fn parse(raw: &str) -> Result<Webhook> {
        let url =
            Url::parse(raw.trim()).map_err(|e| anyhow::anyhow!("not a URL ({e}); {URL_SHAPE}"))?;
        let Some(host) = url.host_str().map(str::to_owned) else {
            bail!("the URL has no host; {URL_SHAPE}");
        };
        let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                bail!("the URL must use https (http only for 127.0.0.1 or localhost), not {other}")
            }
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let Some(api) = segments.iter().rposition(|s| *s == "api") else {
            bail!("the path has no /api/webhooks/ID/TOKEN; {URL_SHAPE}");
        };
        let mut rest = &segments[api + 1..];
        if rest.first().is_some_and(|v| {
            v.len() > 1 && v.starts_with('v') && v[1..].bytes().all(|b| b.is_ascii_digit())
        }) {
            rest = &rest[1..];
        }
        let ["webhooks", id, token] = rest else {
            bail!("the path is not /api/webhooks/ID/TOKEN; {URL_SHAPE}");
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("the webhook id {id:?} is not a Discord id (digits only); {URL_SHAPE}");
        }
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            bail!(
                "the token (after the webhook id) has characters Discord tokens never have; copy the URL again"
            );
        }
        let prefix: String = segments[..api].iter().map(|s| format!("/{s}")).collect();
        let origin = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        let mut get = url.clone();
        get.set_path(&format!("{prefix}/api/v10/webhooks/{id}/{token}"));
        get.set_query(None);
        get.set_fragment(None);
        let shown = raw.trim().replace(token, "***");
        Ok(Webhook {
            api: get,
            host: origin,
            shown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AbC-dEf_123.456";

    #[test]
    fn the_get_goes_to_v10_on_the_same_host_and_the_token_is_never_shown() {
        let w = Webhook::parse(&format!("https://discord.com/api/webhooks/123/{TOKEN}")).unwrap();
        assert_eq!(
            w.api.as_str(),
            format!("https://discord.com/api/v10/webhooks/123/{TOKEN}")
        );
        assert_eq!(w.shown, "https://discord.com/api/webhooks/123/***");
        let w = Webhook::parse(&format!(
            "http://127.0.0.1:8080/proxy/api/v9/webhooks/1/{TOKEN}?wait=true"
        ))
        .unwrap();
        assert_eq!(
            w.api.as_str(),
            format!("http://127.0.0.1:8080/proxy/api/v10/webhooks/1/{TOKEN}")
        );
        assert_eq!(w.host, "http://127.0.0.1:8080");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_token() {
        for (url, want) in [
            ("discord.com/api/webhooks/1/T0KEN", "not a URL"),
            ("http://discord.com/api/webhooks/1/T0KEN", "must use https"),
            ("https://discord.com/channels/1/T0KEN", "no /api/webhooks"),
            (
                "https://discord.com/api/webhooks/1/T0KEN/slack",
                "is not /api/webhooks/ID/TOKEN",
            ),
            (
                "https://discord.com/api/webhooks/abc/T0KEN",
                "not a Discord id",
            ),
            (
                "https://discord.com/api/webhooks/1/T0K%20EN",
                "characters Discord tokens never have",
            ),
        ] {
            let err = Webhook::parse(url).unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("T0K"), "{url}: {err}");
        }
    }
}
