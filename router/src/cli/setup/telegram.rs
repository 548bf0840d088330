//! `setup telegram`: the token is checked with `getMe`; then the person sends `/start` to
//! the bot in the chat that should get the notifications, and `getUpdates` (long
//! polling) finds that chat's id. The bot answers there, so the person sees it works.
//! <https://core.telegram.org/bots/api#getme>, <https://core.telegram.org/bots/api#getupdates>

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{EnvLine, transport};
use crate::config::format_duration;
use alert_router_plugin::Secret;

pub(super) const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// The longest single long poll: the Bot API allows 50 s; shorter keeps Ctrl-C and the
/// deadline prompt.
const POLL: Duration = Duration::from_secs(25);

/// How long a request may take beyond its long-poll time.
const SLACK: Duration = Duration::from_secs(10);

pub(super) const HOW_TO: &str =
    "How to get a token: in Telegram, talk to @BotFather, send /newbot, give the bot a
name and a username ending in `bot`; BotFather answers with the token (123456789:AAE...).
Run this command with it, then send /start to your bot (for a group: add the bot to the
group and send /start@<bot username> there). The chat id of that chat is what the router
needs.

Examples:
  alert-router setup telegram --token 123456789:AAE... --write-env
  TELEGRAM_BOT_TOKEN=123456789:AAE... alert-router setup telegram";

/// Checks the token, waits up to `wait` for `/start`, and returns the `.env` lines.
pub(super) fn run(token: &Secret, api_url: &str, wait: Duration) -> Result<Vec<EnvLine>> {
    let api = BotApi::new(token, api_url)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let me = api.call("getMe", json!({}), SLACK).await.map_err(|e| match e {
            ApiError::Refused { status: 401, .. } => anyhow::anyhow!(
                "Telegram refused the token ({}): copy it again from @BotFather (/mybots, your bot, API Token); a token that was revoked stops working",
                e
            ),
            ApiError::Refused { status: 404, .. } => anyhow::anyhow!(
                "{} answered 404 Not Found: is --api-url the Bot API's base URL, such as {DEFAULT_API_URL}?",
                api.base
            ),
            e => anyhow::anyhow!("{e}"),
        })?;
        let username = me["username"].as_str().unwrap_or_default().to_owned();
        println!(
            "The token works: bot @{username} ({}, id {}).",
            me["first_name"].as_str().unwrap_or_default(),
            me["id"]
        );
        println!(
            "Now send /start to the bot in the chat that should get the notifications: \
             https://t.me/{username} for a private chat; in a group, add the bot and send \
             /start@{username}."
        );
        println!("Waiting up to {} for it...", format_duration(wait));
        let chat = wait_for_start(&api, &username, wait).await?;
        println!("Found: {}, chat id {}.", describe(&chat), chat["id"]);
        let text = format!(
            "alert-router will send its notifications to this chat (chat id {}).",
            chat["id"]
        );
        api.call("sendMessage", json!({"chat_id": chat["id"], "text": text}), SLACK)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the bot cannot write to {} ({e}): it must be a member of the chat, with the right to post",
                    describe(&chat)
                )
            })?;
        println!("The bot said so in that chat.");
        let mut lines = vec![
            EnvLine::plain("TELEGRAM_ENABLED", "true"),
            EnvLine::secret("TELEGRAM_BOT_TOKEN", token, masked(token.expose())),
            EnvLine::plain("TELEGRAM_CHAT_ID", chat["id"].to_string()),
        ];
        if api.base != DEFAULT_API_URL {
            lines.push(EnvLine::plain("TELEGRAM_API_URL", api.base.clone()));
        }
        anyhow::Ok(lines)
    })
}

/// Polls `getUpdates` until a `/start` (or `/start@username`) arrives, and returns its
/// chat; a `/start` sent before the command ran counts too. The updates read are
/// confirmed, so the router's bot does not answer that `/start` again.
async fn wait_for_start(api: &BotApi, username: &str, wait: Duration) -> Result<Value> {
    let deadline = Instant::now() + wait;
    let mut offset: i64 = 0;
    loop {
        // Whole seconds, rounded up: a poll of 0 s would spin until the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        let poll = Duration::from_secs(left.as_secs_f64().ceil() as u64).min(POLL);
        let updates = api
            .call(
                "getUpdates",
                json!({"offset": offset, "timeout": poll.as_secs()}),
                poll + SLACK,
            )
            .await
            .map_err(|e| match &e {
                ApiError::Refused { status: 409, description } if description.contains("webhook") => anyhow::anyhow!(
                    "this bot has a webhook set, so its messages go there and not to getUpdates ({e}): \
                     delete it with the Bot API's deleteWebhook, then run setup again"
                ),
                ApiError::Refused { status: 409, .. } => anyhow::anyhow!(
                    "another program reads this bot's messages ({e}): stop it while setup runs \
                     (an alert-router with Telegram enabled does that too)"
                ),
                _ => anyhow::anyhow!("{e}"),
            })?;
        let mut found = None;
        for update in updates.as_array().into_iter().flatten() {
            if let Some(id) = update["update_id"].as_i64() {
                offset = offset.max(id + 1);
            }
            if found.is_none() {
                found = start_chat(update, username);
            }
        }
        if let Some(chat) = found {
            // Confirms everything read so far; nothing is waited for.
            let _ = api
                .call(
                    "getUpdates",
                    json!({"offset": offset, "limit": 1, "timeout": 0}),
                    SLACK,
                )
                .await;
            return Ok(chat);
        }
        if Instant::now() >= deadline {
            bail!(
                "no /start reached @{username} within {}: open https://t.me/{username}, press Start \
                 (or send /start), and run setup again; for a group, add the bot first and send \
                 /start@{username} there (--wait gives more time)",
                format_duration(wait)
            );
        }
    }
}

/// The chat of a `/start` for this bot in `update`, if it is one.
fn start_chat(update: &Value, username: &str) -> Option<Value> {
    let message = update
        .get("message")
        .or_else(|| update.get("channel_post"))?;
    let command = message["text"].as_str()?.split_whitespace().next()?;
    let for_us = match command.split_once('@') {
        Some((cmd, bot)) => cmd == "/start" && bot.eq_ignore_ascii_case(username),
        None => command == "/start",
    };
    (for_us && message["chat"]["id"].is_i64()).then(|| message["chat"].clone())
}

/// "Alice (@alice), a private chat" or "the group Ops".
fn describe(chat: &Value) -> String {
    let text = |k: &str| chat[k].as_str().unwrap_or_default();
    match text("type") {
        "private" => {
            let name = [text("first_name"), text("last_name")]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            match text("username") {
                "" => format!("the private chat with {name}"),
                user => format!("the private chat with {name} (@{user})"),
            }
        }
        "channel" => format!("the channel {}", text("title")),
        _ => format!("the group {}", text("title")),
    }
}

/// `123456789:***`: the bot's id (public: it is the bot's user id) and no more.
fn masked(token: &str) -> String {
    match token.split_once(':') {
        Some((id, _)) => format!("{id}:***"),
        None => "***".to_owned(),
    }
}

/// A Bot API answer other than `ok: true`, or no answer.
#[derive(Debug)]
enum ApiError {
    /// `{"ok": false, "error_code", "description"}`, with the HTTP status.
    Refused { status: u16, description: String },
    /// No HTTP answer (the URL is never in it).
    Transport(String),
    /// An answer that is not the Bot API's JSON.
    NotBotApi { status: u16, base: String },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Refused {
                status,
                description,
            } => write!(f, "{status} {description}"),
            ApiError::Transport(e) => write!(f, "cannot reach the Bot API: {e}"),
            ApiError::NotBotApi { status, base } => write!(
                f,
                "{base} answered {status} with something that is not the Bot API's JSON: is --api-url right?"
            ),
        }
    }
}

/// The Bot API at `base` for one bot. The token is only ever in the request path.
struct BotApi {
    base: String,
    token: Secret,
    client: reqwest::Client,
}

impl BotApi {
    fn new(token: &Secret, api_url: &str) -> Result<BotApi> {
        let token_ok = !token.expose().is_empty()
            && token
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'-');
        if !token_ok {
            bail!(
                "that is not a bot token: @BotFather gives one like 123456789:AAE... (digits, a colon, then letters, digits, _ and -); copy it again"
            );
        }
        let base = api_url.trim().trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {}
            _ => bail!(
                "--api-url {base:?}: give the Bot API's base URL, such as {DEFAULT_API_URL} (the command adds /bot<token>/<method>)"
            ),
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(BotApi {
            base,
            token: token.clone(),
            client,
        })
    }

    /// Calls `method` with JSON `params`; the `result` of an `ok` answer.
    async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token.expose());
        let resp = self
            .client
            .post(url)
            .json(&params)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| ApiError::Transport(transport(e)))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.map_err(|_| ApiError::NotBotApi {
            status,
            base: self.base.clone(),
        })?;
        match body["ok"].as_bool() {
            Some(true) => Ok(body["result"].clone()),
            Some(false) => Err(ApiError::Refused {
                status,
                description: body["description"]
                    .as_str()
                    .unwrap_or("(no description)")
                    .to_owned(),
            }),
            None => Err(ApiError::NotBotApi {
                status,
                base: self.base.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(text: &str, chat: Value) -> Value {
        json!({"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": chat, "text": text}})
    }

    #[test]
    fn only_a_start_for_this_bot_names_the_chat() {
        let private =
            json!({"id": 42, "type": "private", "first_name": "Alice", "username": "alice"});
        let group = json!({"id": -100123, "type": "supergroup", "title": "Ops"});
        assert_eq!(
            start_chat(&update("/start", private.clone()), "my_bot"),
            Some(private.clone())
        );
        assert_eq!(
            start_chat(&update("/start@My_Bot hi", group.clone()), "my_bot"),
            Some(group.clone())
        );
        assert_eq!(
            start_chat(&update("/start@other_bot", group.clone()), "my_bot"),
            None
        );
        assert_eq!(
            start_chat(&update("hello", private.clone()), "my_bot"),
            None
        );
        assert_eq!(start_chat(&update("/started", private), "my_bot"), None);
        assert_eq!(
            start_chat(&json!({"update_id": 2, "my_chat_member": {}}), "my_bot"),
            None
        );
    }

    #[test]
    fn chats_are_described_as_people_see_them() {
        assert_eq!(
            describe(
                &json!({"type": "private", "first_name": "Alice", "last_name": "B", "username": "alice"})
            ),
            "the private chat with Alice B (@alice)"
        );
        assert_eq!(
            describe(&json!({"type": "supergroup", "title": "Ops"})),
            "the group Ops"
        );
    }

    #[test]
    fn the_token_is_masked_to_the_bot_id_and_a_bad_one_is_refused_before_any_request() {
        assert_eq!(masked("123456:AAE-secret"), "123456:***");
        let err = BotApi::new(&Secret::new("12345/../x"), DEFAULT_API_URL)
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a bot token"), "{err}");
        assert!(!err.to_string().contains("12345/"), "{err}");
        let err = BotApi::new(&Secret::new("1:a"), "api.telegram.org")
            .err()
            .unwrap();
        assert!(err.to_string().contains("--api-url"), "{err}");
    }

    #[test]
    fn waits_read_as_people_write_them() {
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(93_600)), "1d2h");
    }
}
