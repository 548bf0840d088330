//! One notification: the rendered payload sent to every chat in `chat_ids`, split into
//! parts when long, with `parse_mode` and `silent_below` applied, held back while
//! muted. Which chat got which part is remembered per message id, so a retry after a
//! partial success sends only what is missing.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alert_router_plugin::{Message, Outcome};

use crate::client::{SendOptions, Verdict, verdict};
use crate::config::{ChatRef, Markup, Severity};
use crate::format::{self, Limits, Payload};
use crate::mute::unix_now;
use crate::{Shared, Stats};

/// How long a delivery waits for Telegram's pace: not at all. `deliver` makes one attempt
/// and returns (the header's rule); when the next slot is later, the wait goes back to
/// the router as a retry-after, which pauses the whole sink that long, interruptibly.
/// (Command answers, sent off the delivery path, may wait: `answers.rs`.)
const MAX_PACING_WAIT: Duration = Duration::ZERO;

/// How many messages' progress is remembered. A message the router gave up on never
/// comes back; the oldest entries make room.
const MAX_TRACKED: usize = 1024;

/// Which (chat, part) pairs each message already reached.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    messages: HashMap<String, Track>,
    order: VecDeque<String>,
}

#[derive(Debug, Default)]
struct Track {
    sent: HashSet<(usize, usize)>,
    /// Chats that refused the message for good in this attempt, with the reason.
    failed: BTreeMap<usize, String>,
}

impl Progress {
    fn track(&mut self, id: &str) -> &mut Track {
        if !self.messages.contains_key(id) {
            while self.order.len() >= MAX_TRACKED {
                if let Some(old) = self.order.pop_front() {
                    self.messages.remove(&old);
                }
            }
            self.order.push_back(id.to_owned());
        }
        self.messages.entry(id.to_owned()).or_default()
    }

    fn is_sent(&self, id: &str, chat: usize, part: usize) -> bool {
        self.messages
            .get(id)
            .is_some_and(|t| t.sent.contains(&(chat, part)))
    }

    fn forget(&mut self, id: &str) {
        if self.messages.remove(id).is_some() {
            self.order.retain(|m| m != id);
        }
    }
}

/// Delivers one message: one attempt at every chat that has not got it yet.
pub(crate) async fn deliver(shared: Arc<Shared>, message: Message) -> Outcome {
    let payload = match Payload::from_json(&message.payload) {
        Ok(payload) => payload,
        Err(reason) => return Outcome::fail(reason),
    };
    let markup = match payload.markup(shared.config.markup) {
        Ok(markup) => markup,
        Err(reason) => return Outcome::fail(reason),
    };
    if payload.text.trim().is_empty() {
        return Outcome::fail(
            "the rendered text is empty: the template produced nothing to send (Telegram \
             refuses empty messages)",
        );
    }
    let severity = Severity::of_event(&message.event);
    let event_type = message
        .event
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    if shared
        .state
        .with_mute(|m| m.hold(event_type, severity, unix_now()))
    {
        Stats::bump(&shared.stats.held);
        shared.debug(&format!("muted: held back message {}", message.id));
        lock(&shared.progress).forget(&message.id);
        return Outcome::Ok;
    }

    let silent = payload.disable_notification.unwrap_or(false)
        || shared.config.silent_below.is_some_and(|min| severity < min);
    let link_preview_options = payload.link_preview_options.clone().or_else(|| {
        payload
            .disable_web_page_preview
            .filter(|off| *off)
            .map(|_| teloxide::types::LinkPreviewOptions {
                is_disabled: true,
                url: None,
                prefer_small_media: false,
                prefer_large_media: false,
                show_above_text: false,
            })
    });
    let options = SendOptions {
        markup: Some(markup),
        disable_notification: silent,
        protect_content: payload.protect_content.unwrap_or(false),
        message_thread_id: payload.message_thread_id,
        link_preview_options,
        reply_markup: None,
    };
    let parts = format::split(&payload.text, markup, Limits::TELEGRAM);
    if parts.len() > 1 {
        shared.debug(&format!(
            "message {} has {} characters, over Telegram's {}: sending it in {} parts",
            message.id,
            format::visible_len(&payload.text, markup),
            format::MESSAGE_TEXT_LIMIT,
            parts.len()
        ));
    }

    let id = message.id.as_str();
    for (c, chat) in shared.config.chats.iter().enumerate() {
        for (p, part) in parts.iter().enumerate() {
            if lock(&shared.progress).is_sent(id, c, p) {
                continue;
            }
            let mut options = options.clone();
            if p + 1 == parts.len() {
                // Buttons go under the last part, where the message ends.
                options.reply_markup = payload.reply_markup.clone();
            }
            match send_part(&shared, chat, part, &options, MAX_PACING_WAIT).await {
                Ok(()) => {
                    lock(&shared.progress).track(id).sent.insert((c, p));
                }
                Err(Verdict::Retry { after, reason }) => {
                    return Outcome::Retry {
                        after,
                        reason: format!("chat {chat}: {reason}"),
                    };
                }
                Err(Verdict::Fail { reason } | Verdict::PlainText { reason }) => {
                    lock(&shared.progress)
                        .track(id)
                        .failed
                        .insert(c, format!("chat {chat}: {reason}"));
                    break;
                }
            }
        }
    }

    let mut progress = lock(&shared.progress);
    let failures: Vec<String> = progress
        .messages
        .get_mut(id)
        .map(|t| std::mem::take(&mut t.failed).into_values().collect())
        .unwrap_or_default();
    if failures.is_empty() {
        progress.forget(id);
        Outcome::Ok
    } else {
        // What was sent stays remembered: re-driving the dead letter reaches only the
        // chats that refused it.
        Outcome::fail(failures.join("; "))
    }
}

/// Sends one part to one chat: waits for Telegram's pace (up to `max_wait`), sends,
/// and when Telegram cannot parse the markup sends it once more as plain text.
pub(crate) async fn send_part(
    shared: &Shared,
    chat: &ChatRef,
    text: &str,
    options: &SendOptions,
    max_wait: Duration,
) -> Result<(), Verdict> {
    let booked = lock(&shared.pacer).reserve(chat, Instant::now(), max_wait);
    match booked {
        Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
        Ok(_) => {}
        Err(wait) => {
            return Err(Verdict::Retry {
                after: Some(wait),
                reason: format!(
                    "holding back to keep Telegram's rate limits (settings.rate_limits); next \
                     slot in {} ms",
                    wait.as_millis()
                ),
            });
        }
    }
    let error = match shared
        .client
        .send_message(chat, text.to_owned(), options)
        .await
    {
        Ok(()) => {
            Stats::bump(&shared.stats.sent);
            return Ok(());
        }
        Err(error) => error,
    };
    Stats::bump(&shared.stats.errors);
    match verdict(&error, shared.client.token()) {
        Verdict::PlainText { reason } => {
            shared.error(&format!(
                "Telegram could not parse a message for chat {chat} ({reason}); sending it \
                 once more as plain text. Check the template's markup."
            ));
            let plain = match options.markup {
                Some(Markup::Html) => format::html_to_plain(text),
                _ => text.to_owned(),
            };
            let plain_options = SendOptions {
                markup: None,
                ..options.clone()
            };
            match shared
                .client
                .send_message(chat, plain, &plain_options)
                .await
            {
                Ok(()) => {
                    Stats::bump(&shared.stats.sent);
                    Ok(())
                }
                Err(error) => {
                    Stats::bump(&shared.stats.errors);
                    Err(match verdict(&error, shared.client.token()) {
                        Verdict::PlainText { reason } => Verdict::Fail { reason },
                        other => other,
                    })
                }
            }
        }
        other => Err(other),
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_bounded() {
        let mut progress = Progress::default();
        for i in 0..(MAX_TRACKED + 10) {
            progress.track(&i.to_string()).sent.insert((0, 0));
        }
        assert_eq!(progress.messages.len(), MAX_TRACKED);
        assert!(!progress.is_sent("0", 0, 0), "the oldest made room");
        assert!(progress.is_sent(&(MAX_TRACKED + 9).to_string(), 0, 0));
        progress.forget("1030");
        assert_eq!(progress.messages.len(), MAX_TRACKED - 1);
        assert_eq!(progress.order.len(), MAX_TRACKED - 1);
    }
}
