//! The bot's answers: the commands it knows, each command's data (from `host.query`)
//! and its wording (the operator's `templates/telegram/commands/*.yaml`, through
//! `host.render`), sent to the chat that asked; and the line posted to every chat when a
//! mute ends. The silence commands' answers are in `silences.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alert_router_plugin::{HostError, HostErrorKind};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::client::{SendOptions, Verdict};
use crate::commands::{Invocation, render, usage, with};
use crate::config::ChatRef;
use crate::format::{self, Limits, Payload};
use crate::mute::{Ended, parse_duration, unix_now, unix_now_ceil};
use crate::notify::send_part;
use crate::{Shared, rfc3339, silences};

/// One command the bot knows.
pub(crate) struct Command {
    pub name: &'static str,
    /// The line Telegram's command menu shows (`setMyCommands`).
    pub description: &'static str,
    /// Changes something: only `admin_user_ids` may use it, when set.
    pub changes: bool,
}

pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "start",
        description: "What this bot does",
        changes: false,
    },
    Command {
        name: "help",
        description: "List the commands",
        changes: false,
    },
    Command {
        name: "status",
        description: "Router and sinks: healthy, queued, sent, failed",
        changes: false,
    },
    Command {
        name: "portfolio",
        description: "Portfolio value, cash and P&L",
        changes: false,
    },
    Command {
        name: "performance",
        description: "Performance metrics",
        changes: false,
    },
    Command {
        name: "positions",
        description: "Open positions",
        changes: false,
    },
    Command {
        name: "trades",
        description: "Recent trades: /trades [n]",
        changes: false,
    },
    Command {
        name: "daily",
        description: "Today's trades and P&L",
        changes: false,
    },
    Command {
        name: "stats",
        description: "Bot statistics: messages sent, commands, errors",
        changes: false,
    },
    Command {
        name: "mute",
        description: "Hold this bot's notifications below critical: /mute 30m [type]",
        changes: true,
    },
    Command {
        name: "unmute",
        description: "Resume this bot's notifications",
        changes: true,
    },
    Command {
        name: "silence",
        description: "Hold back matching events from every sink: /silence type=error 2h [comment]",
        changes: true,
    },
    Command {
        name: "silences",
        description: "Active and pending silences",
        changes: false,
    },
    Command {
        name: "unsilence",
        description: "End a silence: /unsilence <id>",
        changes: true,
    },
];

/// `/trades` without a number shows this many; it shows at most `MAX_TRADES`.
const DEFAULT_TRADES: u32 = 10;
const MAX_TRADES: u32 = 100;

/// The longest an answer waits for Telegram's pace (answers are not queued by the
/// router; the polling loop waits for them).
const ANSWER_MAX_WAIT: Duration = Duration::from_secs(60);

/// The answer to a command from an allowed user, as a rendered payload.
pub(crate) fn answer(
    shared: &Shared,
    invocation: &Invocation,
    context: Value,
    user_id: Option<i64>,
) -> Value {
    let name = invocation.name.as_str();
    match name {
        "start" | "help" => {
            let commands: Vec<Value> = COMMANDS
                .iter()
                .map(|c| json!({"command": c.name, "description": c.description}))
                .collect();
            render(shared, name, with(context, json!({"commands": commands})))
        }
        "status" => with_object(
            shared,
            name,
            "status",
            context,
            |data| json!({"sinks": sinks(data)}),
        ),
        "portfolio" => with_object(shared, name, "state/portfolio", context, |_| json!({})),
        "performance" => with_object(shared, name, "state/performance", context, |_| json!({})),
        "positions" => with_data(
            shared,
            name,
            "state/positions",
            context,
            |data| json!({"items": items(data, "positions")}),
        ),
        "trades" => {
            let limit = match invocation.args.first() {
                None => DEFAULT_TRADES,
                Some(n) => match n.parse::<u32>() {
                    Ok(n) if (1..=MAX_TRADES).contains(&n) => n,
                    _ => {
                        return usage(
                            shared,
                            context,
                            "/trades [n]",
                            &format!("n must be a number from 1 to {MAX_TRADES}, not {n:?}"),
                        );
                    }
                },
            };
            let path = format!("state/trades?limit={limit}");
            with_data(
                shared,
                name,
                &path,
                context,
                |data| json!({"items": items(data, "trades"), "limit": limit}),
            )
        }
        // The router's day: its figures from the trades it saw, and apart, the bot's
        // own daily summary.
        "daily" => with_object(
            shared,
            name,
            "state/daily",
            context,
            |data| json!({"items": items(data, "trades")}),
        ),
        "stats" => {
            // Router totals when the router has them; the bot's own always.
            let router = shared
                .host
                .query("status")
                .ok()
                .filter(Value::is_object)
                .map(|status| router_totals(&sinks(&status)));
            let extra = json!({"router": router, "bot": shared.stats.snapshot()});
            render(shared, name, with(context, extra))
        }
        "mute" => mute(shared, invocation, context, user_id),
        "unmute" => {
            let ended = shared.state.with_mute(|m| m.stop(unix_now()));
            shared.mute_changed.notify_one();
            render(shared, "unmute", with(context, ended_json(ended.as_ref())))
        }
        "silence" => silences::silence(shared, invocation, context, user_id),
        "silences" => silences::list(shared, context),
        "unsilence" => silences::unsilence(shared, invocation, context),
        _ => render(shared, "unknown", context),
    }
}

/// Queries `path` and renders `commands/<name>` with the answer as `data` (plus what
/// `extra` derives from it), or `commands/no_data` when the router has none.
fn with_data(
    shared: &Shared,
    name: &str,
    path: &str,
    context: Value,
    extra: impl FnOnce(&Value) -> Value,
) -> Value {
    match shared.host.query(path) {
        Ok(data) => {
            let more = extra(&data);
            let context = with(with(context, json!({"data": data})), more);
            render(shared, name, context)
        }
        Err(e) => no_data(shared, name, path, context, &e),
    }
}

/// Like [`with_data`] for answers that must be an object (a portfolio, the status):
/// anything else means there is nothing to show yet.
fn with_object(
    shared: &Shared,
    name: &str,
    path: &str,
    context: Value,
    extra: impl FnOnce(&Value) -> Value,
) -> Value {
    match shared.host.query(path) {
        Ok(data) if data.as_object().is_some_and(|o| !o.is_empty()) => {
            let more = extra(&data);
            render(
                shared,
                name,
                with(with(context, json!({"data": data})), more),
            )
        }
        Ok(_) => render(
            shared,
            "no_data",
            with(context, json!({"reason": "nothing recorded yet"})),
        ),
        Err(e) => no_data(shared, name, path, context, &e),
    }
}

/// Renders `commands/no_data` for a query the router refused, with its message as
/// `reason`. A router that cannot answer yet (starting) is logged at debug: asking again
/// later works. Any other refusal is a warning: this plugin asked for something the
/// router does not take (a plugin and router of different versions) or the router
/// failed.
fn no_data(shared: &Shared, name: &str, path: &str, context: Value, e: &HostError) -> Value {
    let line = format!("/{name}: no data from {path}: {e}");
    if e.kind() == HostErrorKind::Unavailable {
        shared.debug(&line);
    } else {
        shared.warn(&line);
    }
    render(
        shared,
        "no_data",
        with(context, json!({"reason": e.message()})),
    )
}

/// The sinks of a status answer as a list of objects with a `name`, whether the
/// router lists them or maps names to them.
fn sinks(status: &Value) -> Vec<Value> {
    match status.get("sinks") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, sink)| {
                let mut sink = sink.clone();
                if let Some(fields) = sink.as_object_mut() {
                    fields
                        .entry("name")
                        .or_insert_with(|| Value::String(name.clone()));
                }
                sink
            })
            .collect(),
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    }
}

/// Sums of the sinks' counters, for `/stats`.
fn router_totals(sinks: &[Value]) -> Value {
    let sum = |key: &str| -> u64 {
        sinks
            .iter()
            .filter_map(|s| s.get(key).and_then(Value::as_u64))
            .sum()
    };
    let healthy = sinks
        .iter()
        .filter(|s| s.get("healthy").and_then(Value::as_bool).unwrap_or(true))
        .count();
    json!({
        "sinks": sinks.len(),
        "healthy": healthy,
        "queued": sum("queued"),
        "sent": sum("sent"),
        "failed": sum("failed"),
        "retried": sum("retried"),
    })
}

/// The list in a state answer: the answer itself if it is an array, else its `key`.
fn items(data: &Value, key: &str) -> Vec<Value> {
    match data {
        Value::Array(items) => items.clone(),
        Value::Object(map) => match map.get(key) {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn mute(shared: &Shared, invocation: &Invocation, context: Value, user_id: Option<i64>) -> Value {
    const USAGE: &str = "/mute <duration> [event type], e.g. /mute 30m or /mute 2h trade_opened";
    let Some(length) = invocation.args.first() else {
        return usage(shared, context, USAGE, "say for how long");
    };
    let length = match parse_duration(length) {
        Ok(length) => length,
        Err(problem) => return usage(shared, context, USAGE, &problem),
    };
    let event_type = invocation.args.get(1).cloned();
    if let Some(t) = &event_type
        && !t
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    {
        return usage(
            shared,
            context,
            USAGE,
            &format!("{t:?} is not an event type (lower-case letters, digits, _ . -)"),
        );
    }
    let mute = shared
        .state
        .with_mute(|m| m.start(length, event_type, user_id, unix_now_ceil()));
    shared.mute_changed.notify_one();
    shared.info(&format!(
        "muted until {} by user {}{}",
        rfc3339(mute.until),
        user_id.map_or_else(|| "unknown".to_owned(), |u| u.to_string()),
        mute.event_type
            .as_deref()
            .map(|t| format!(" (only {t})"))
            .unwrap_or_default()
    ));
    let extra = json!({"mute": {
        "until": rfc3339(mute.until),
        "seconds": length.as_secs(),
        "event_type": mute.event_type,
        "held": mute.held,
    }});
    render(shared, "mute", with(context, extra))
}

fn ended_json(ended: Option<&Ended>) -> Value {
    match ended {
        Some(e) => json!({
            "was_muted": true,
            "held": e.held,
            "seconds": e.lasted.as_secs(),
            "event_type": e.event_type,
            "expired": e.expired,
        }),
        None => {
            json!({"was_muted": false, "held": 0, "seconds": 0, "event_type": null, "expired": false})
        }
    }
}

/// Sends a rendered answer to one chat, in parts if long. Flood control is waited out
/// once; other failures are logged.
pub(crate) async fn reply(shared: &Shared, chat: &ChatRef, payload: Value) {
    let payload = match Payload::from_json(&payload) {
        Ok(payload) => payload,
        Err(e) => {
            shared.error(&format!("cannot send an answer to chat {chat}: {e}"));
            return;
        }
    };
    let markup = payload
        .markup(shared.config.markup)
        .unwrap_or(shared.config.markup);
    if payload.text.trim().is_empty() {
        shared.debug(&format!(
            "the answer for chat {chat} rendered empty; nothing sent"
        ));
        return;
    }
    let options = SendOptions {
        markup: Some(markup),
        disable_notification: payload.disable_notification.unwrap_or(false),
        protect_content: payload.protect_content.unwrap_or(false),
        message_thread_id: payload.message_thread_id,
        link_preview_options: payload.link_preview_options.clone(),
        reply_markup: payload.reply_markup.clone(),
    };
    for part in format::split(&payload.text, markup, Limits::TELEGRAM) {
        let mut outcome = send_part(shared, chat, &part, &options, ANSWER_MAX_WAIT).await;
        if let Err(Verdict::Retry {
            after: Some(after), ..
        }) = &outcome
            && *after <= ANSWER_MAX_WAIT
        {
            tokio::time::sleep(*after).await;
            outcome = send_part(shared, chat, &part, &options, ANSWER_MAX_WAIT).await;
        }
        if let Err(v) = outcome {
            shared.warn(&format!(
                "cannot send an answer to chat {chat}: {}",
                v.reason()
            ));
            return;
        }
    }
}

/// Posts the end-of-mute line to every chat when a mute runs out, and keeps watching
/// for the next one until `stop`.
pub(crate) async fn watch_mute(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let until = shared.state.with_mute(|m| m.until());
        // Looks again at least daily; a far-off `until` (a hand-edited state file)
        // just means "not today".
        const DAY: Duration = Duration::from_secs(86_400);
        let wait = until.map(
            |until| match UNIX_EPOCH.checked_add(Duration::from_secs(until)) {
                Some(end) => end
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
                    .min(DAY),
                None => DAY,
            },
        );
        tokio::select! {
            _ = stop.changed() => return,
            _ = shared.mute_changed.notified() => continue,
            _ = tokio::time::sleep(wait.unwrap_or(DAY)), if wait.is_some() => {}
        }
        if let Some(ended) = shared.state.with_mute(|m| m.expire(unix_now())) {
            shared.info(&format!(
                "mute ended: {} notifications were held back",
                ended.held
            ));
            let context = with(
                json!({"command": "unmute", "args": []}),
                ended_json(Some(&ended)),
            );
            let payload = render(&shared, "unmute", context);
            for chat in &shared.config.chats {
                reply(&shared, chat, payload.clone()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_fits_telegrams_menu_rules() {
        for c in COMMANDS {
            assert!(
                (1..=32).contains(&c.name.len())
                    && c.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                c.name
            );
            assert!(
                (1..=256).contains(&c.description.chars().count()),
                "{}",
                c.name
            );
        }
        let changing: Vec<_> = COMMANDS
            .iter()
            .filter(|c| c.changes)
            .map(|c| c.name)
            .collect();
        assert_eq!(changing, ["mute", "unmute", "silence", "unsilence"]);
    }

    #[test]
    fn state_answers_may_be_lists_or_objects() {
        let list = json!([{"symbol": "BTC/USDT"}]);
        assert_eq!(items(&list, "positions").len(), 1);
        let object = json!({"positions": [{"symbol": "A"}, {"symbol": "B"}]});
        assert_eq!(items(&object, "positions").len(), 2);
        assert!(items(&json!({"total": 1}), "positions").is_empty());
    }

    #[test]
    fn status_sinks_become_a_named_list() {
        let mapped = json!({"sinks": {"tg": {"sent": 3, "healthy": true}, "dc": {"sent": 1, "failed": 2, "healthy": false}}});
        let list = sinks(&mapped);
        assert_eq!(list.len(), 2);
        assert!(list.iter().any(|s| s["name"] == "tg" && s["sent"] == 3));
        let totals = router_totals(&list);
        assert_eq!(
            totals,
            json!({"sinks": 2, "healthy": 1, "queued": 0, "sent": 4, "failed": 2, "retried": 0})
        );
        let listed = json!({"sinks": [{"name": "a", "queued": 5}]});
        assert_eq!(sinks(&listed), vec![json!({"name": "a", "queued": 5})]);
        assert!(sinks(&json!({})).is_empty());
    }
}
