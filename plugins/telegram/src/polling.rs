//! The long-poll loop: gets the bot ready (who it is, no webhook, the command menu),
//! reads updates with `getUpdates` from the saved offset, decides who may ask what, and
//! hands each allowed command to [`answers`](crate::answers).
//!
//! Only chats in `chat_ids` get answers. A command from any other chat gets nothing:
//! it is logged with chat and user id, counted, and emitted as a `telegram_command`
//! event with `allowed: false`. A command that changes something (`/mute`, `/silence`)
//! from a user not in `admin_user_ids` (when set) gets the `not_allowed` answer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use teloxide::types::{BotCommand, Chat, Message, Update, UpdateKind, User};
use tokio::sync::watch;

use crate::answers::{self, COMMANDS};
use crate::client::{POLL_TIMEOUT_SECS, Verdict, verdict};
use crate::commands::{self, Invocation};
use crate::config::ChatRef;
use crate::{Shared, Stats};

/// The last `getUpdates` on shutdown, which tells Telegram what was handled.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads a command from a message's text. `None` for text that is not a command, or a
/// command addressed to another bot (`/status@other_bot` in a group).
fn parse_command(text: &str, bot_username: Option<&str>) -> Option<Invocation> {
    let rest = text.trim_start().strip_prefix('/')?;
    let mut words = rest.split_whitespace();
    let head = words.next()?;
    // `rest` starts with `head` unless white space follows the slash.
    let after = rest
        .trim_start()
        .get(head.len()..)
        .unwrap_or_default()
        .trim();
    let (name, addressee) = match head.split_once('@') {
        Some((name, to)) => (name, Some(to)),
        None => (head, None),
    };
    if let Some(to) = addressee
        && !bot_username.is_some_and(|me| me.eq_ignore_ascii_case(to))
    {
        return None;
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    Some(Invocation {
        name: name.to_ascii_lowercase(),
        args: words.map(str::to_owned).collect(),
        text: after.to_owned(),
    })
}

/// Doubling waits after failures, up to a minute.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The wait before the next try: Telegram's `retry_after` if it gave one.
    fn wait(&mut self, asked: Option<Duration>) -> Duration {
        let wait = asked.unwrap_or(self.next);
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Sleeps for `wait` unless shutdown comes first; `true` means shut down.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => true,
        _ = tokio::time::sleep(wait) => *stop.borrow(),
    }
}

/// Why polling could not start.
enum StartError {
    /// Try again after the wait.
    Again(String, Option<Duration>),
    /// Never going to work with these settings (the token was refused).
    Stop(String),
}

/// Gets ready to poll: who the bot is (to recognise `/cmd@bot`), no webhook (Telegram
/// refuses `getUpdates` while one is set), and the command menu.
async fn start(shared: &Shared) -> Result<Option<String>, StartError> {
    let token = shared.client.token();
    let failed = |step: &str, error: &teloxide::RequestError| {
        let verdict = verdict(error, token);
        let reason = format!("{step}: {}", verdict.reason());
        match verdict {
            Verdict::Retry { after, .. } => StartError::Again(reason, after),
            v if v.is_unauthorized() => StartError::Stop(reason),
            Verdict::Fail { .. } | Verdict::PlainText { .. } => StartError::Again(reason, None),
        }
    };
    let me = shared
        .client
        .get_me()
        .await
        .map_err(|e| failed("getMe", &e))?;
    shared
        .client
        .delete_webhook()
        .await
        .map_err(|e| failed("deleteWebhook", &e))?;
    let menu = COMMANDS
        .iter()
        .map(|c| BotCommand::new(c.name, c.description))
        .collect();
    if let Err(error) = shared.client.set_my_commands(menu).await {
        // Without the menu commands still work; not worth holding polling back.
        shared.warn(&format!(
            "setMyCommands failed, so Telegram's command menu may be out of date: {}",
            verdict(&error, token).reason()
        ));
    }
    Ok(me.user.username)
}

/// The polling loop: runs until `stop` says so, surviving network errors with backoff.
pub(crate) async fn poll(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    let username = loop {
        match start(&shared).await {
            Ok(username) => break username,
            Err(StartError::Stop(reason)) => {
                shared.error(&format!(
                    "commands are off: Telegram refused the bot ({reason}); notifications \
                     will fail the same way until settings.bot_token is fixed"
                ));
                return;
            }
            Err(StartError::Again(reason, asked)) => {
                let wait = backoff.wait(asked);
                shared.warn(&format!(
                    "cannot start answering commands yet ({reason}); trying again in {}s",
                    wait.as_secs()
                ));
                if sleep_or_stop(wait, &mut stop).await {
                    return;
                }
            }
        }
    };
    backoff.reset();
    shared.info(&format!(
        "answering commands for @{}",
        username.as_deref().unwrap_or("(bot without a username)")
    ));

    while !*stop.borrow() {
        let offset = i32::try_from(shared.state.offset()).unwrap_or(i32::MAX);
        let answer = tokio::select! {
            _ = stop.changed() => break,
            answer = shared.client.get_updates(offset, POLL_TIMEOUT_SECS) => answer,
        };
        match answer {
            Ok(updates) => {
                backoff.reset();
                for update in updates {
                    handle_update(&shared, update, username.as_deref()).await;
                }
            }
            Err(error) => {
                let v = verdict(&error, shared.client.token());
                if let Verdict::Fail { reason } = &v {
                    if v.is_unauthorized() {
                        shared.error(&format!("commands are off: getUpdates: {reason}"));
                        return;
                    }
                    if reason.contains("webhook") {
                        // Someone set a webhook since start-up; polling needs it gone.
                        let _ = shared.client.delete_webhook().await;
                    }
                }
                let asked = match &v {
                    Verdict::Retry { after, .. } => *after,
                    _ => None,
                };
                let wait = backoff.wait(asked);
                shared.warn(&format!(
                    "getUpdates failed ({}); polling again in {}s",
                    v.reason(),
                    wait.as_secs()
                ));
                if sleep_or_stop(wait, &mut stop).await {
                    break;
                }
            }
        }
    }

    // Confirm what was handled, so whoever polls next does not get it again.
    let offset = shared.state.offset();
    if offset > 0 {
        let offset = i32::try_from(offset).unwrap_or(i32::MAX);
        let _ = tokio::time::timeout(CONFIRM_TIMEOUT, shared.client.confirm(offset)).await;
    }
}

async fn handle_update(shared: &Shared, update: Update, username: Option<&str>) {
    let id = i64::from(update.id.0);
    match shared.state.claim(id) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => shared.error(&format!(
            "cannot save the polling offset ({e}); after a restart update {id} could be \
             answered again"
        )),
    }
    let UpdateKind::Message(message) = update.kind else {
        return;
    };
    let Some(text) = message.text() else {
        return;
    };
    let Some(invocation) = parse_command(text, username) else {
        return;
    };
    handle_command(shared, &message, invocation).await;
}

async fn handle_command(shared: &Shared, message: &Message, invocation: Invocation) {
    Stats::bump(&shared.stats.commands);
    let chat_id = message.chat.id.0;
    let user_id = message
        .from
        .as_ref()
        .and_then(|u| i64::try_from(u.id.0).ok());
    let shown_user = user_id.map_or_else(|| "unknown".to_owned(), |u| u.to_string());
    // A stranger picks the name; keep what reaches the log short.
    let shown_name: String = invocation.name.chars().take(32).collect();
    let changes = COMMANDS
        .iter()
        .any(|c| c.name == invocation.name && c.changes);

    if !shared.config.allows_chat(chat_id) {
        Stats::bump(&shared.stats.refused);
        shared.warn(&format!(
            "ignored /{shown_name} from chat {chat_id} (user {shown_user}): the chat is not in \
             settings.chat_ids"
        ));
        emit(shared, &invocation.name, chat_id, user_id, false);
        return;
    }
    let context = json!({
        "command": invocation.name,
        "args": invocation.args,
        "user": message.from.as_ref().map(user_json),
        "chat": chat_json(&message.chat),
    });
    if changes && !shared.config.allows_admin(user_id) {
        Stats::bump(&shared.stats.refused);
        shared.warn(&format!(
            "refused /{shown_name} from user {shown_user} in chat {chat_id}: the user is not in \
             settings.admin_user_ids"
        ));
        emit(shared, &invocation.name, chat_id, user_id, false);
        let payload = commands::render(shared, "not_allowed", context);
        answers::reply(shared, &ChatRef::Id(chat_id), payload).await;
        return;
    }
    emit(shared, &invocation.name, chat_id, user_id, true);
    let payload = answers::answer(shared, &invocation, context, user_id);
    answers::reply(shared, &ChatRef::Id(chat_id), payload).await;
}

/// Tells the router about a command, for its stats and dashboard.
fn emit(shared: &Shared, command: &str, chat_id: i64, user_id: Option<i64>, allowed: bool) {
    let event = json!({
        "type": "telegram_command",
        "command": command,
        "chat_id": chat_id,
        "user_id": user_id,
        "allowed": allowed,
    });
    if let Err(e) = shared.host.emit(&event) {
        shared.debug(&format!(
            "the router did not take the telegram_command event: {e}"
        ));
    }
}

fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.0,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
    })
}

fn chat_json(chat: &Chat) -> Value {
    let kind = if chat.is_private() {
        "private"
    } else if chat.is_group() {
        "group"
    } else if chat.is_supergroup() {
        "supergroup"
    } else {
        "channel"
    };
    json!({"id": chat.id.0, "type": kind, "title": chat.title(), "username": chat.username()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(name: &str, args: &[&str]) -> Option<Invocation> {
        Some(Invocation {
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            text: args.join(" "),
        })
    }

    #[test]
    fn commands_are_read_like_telegram_clients_send_them() {
        let me = Some("alert_bot");
        assert_eq!(parse_command("/status", me), inv("status", &[]));
        assert_eq!(parse_command("  /Trades 5", me), inv("trades", &["5"]));
        assert_eq!(
            parse_command("/mute@Alert_Bot 30m trade_opened", me),
            inv("mute", &["30m", "trade_opened"])
        );
        assert_eq!(parse_command("/status@other_bot", me), None);
        assert_eq!(parse_command("status", me), None);
        assert_eq!(parse_command("/", me), None);
        assert_eq!(parse_command("/st-atus", me), None);
        assert_eq!(parse_command("/status@bot", None), None);
        // The words split at every space; the text keeps the line as typed.
        let typed =
            parse_command("/silence@alert_bot  labels.x=\"a  b\" 2h ", me).expect("a command");
        assert_eq!(typed.args, ["labels.x=\"a", "b\"", "2h"]);
        assert_eq!(typed.text, "labels.x=\"a  b\" 2h");
    }

    #[test]
    fn backoff_doubles_up_to_a_minute_and_honours_retry_after() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..8).map(|_| b.wait(None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.wait(Some(Duration::from_secs(3))), Duration::from_secs(3));
        b.reset();
        assert_eq!(b.wait(None), Duration::from_secs(1));
    }
}
