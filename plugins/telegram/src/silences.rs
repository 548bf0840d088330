//! `/silence`, `/silences` and `/unsilence`: the router's silences from the chat. A
//! silence holds the events it matches back from every sink; `/mute` (see `mute.rs`)
//! quiets this bot only. The bot reads the command's words (quotes kept) into the body
//! of `POST /v1/silences` and leaves the matchers to the router, which parses them and
//! says what is wrong with one; it lists silences from `query("silences")` and finds the
//! silence an id prefix names there. Changes go through `host.request`, which routers
//! built before it lack: then the bot says the router is too old.

use std::time::Duration;

use alert_router_plugin::{HostError, HostErrorKind};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::commands::{Invocation, render, usage, with};
use crate::mute::unix_now;
use crate::{Shared, rfc3339};

/// The longest silence `/silence` sets: a forgotten one holds back every sink's events.
/// `alert-router silence add` and the HTTP API set longer ones.
pub const MAX_SILENCE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The fewest characters of an id `/unsilence` takes. Ids are UUID v7, whose first
/// characters are the time they were made: silences made the same minute share them,
/// so the list shows each id as long as it takes to tell it apart.
const MIN_ID_PREFIX: usize = 8;

const SILENCE_USAGE: &str = "/silence <matchers> <duration> [comment], e.g. /silence type=error labels.exchange=binance 2h exchange maintenance";
const UNSILENCE_USAGE: &str = "/unsilence <id>, e.g. /unsilence 0193a1b2 (/silences lists the ids)";

/// What `/silence` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    /// As typed, quotes kept: the router reads them.
    pub matchers: Vec<String>,
    pub length: Duration,
    pub comment: String,
}

/// Reads `/silence`'s arguments: matchers (words with `=` or `~`: every operator has
/// one), then a duration, then an optional comment (the rest of the line, as typed).
pub(crate) fn parse(text: &str) -> Result<Asked, String> {
    let mut matchers = Vec::new();
    let mut at = 0;
    loop {
        let Some((start, end)) = next_word(text, at)? else {
            return Err(if matchers.is_empty() {
                "say what to silence and for how long".to_owned()
            } else {
                "say for how long, after the matchers: e.g. 2h".to_owned()
            });
        };
        at = end;
        let word = &text[start..end];
        if word.contains(['=', '~']) {
            matchers.push(word.to_owned());
            continue;
        }
        if matchers.is_empty() {
            return Err(format!(
                "{word:?} is not a matcher: start with what to silence, such as type=error or labels.exchange=binance (=, !=, =~ or !~)"
            ));
        }
        let length = crate::duration::parse(word).ok_or_else(|| {
            format!(
                "{word:?} is neither a matcher (name=value, name!=value, name=~regex, name!~regex) nor a duration (30m, 2h, 1h30m, 1d)"
            )
        })?;
        if length.is_zero() {
            return Err(format!("{word:?} is no time at all"));
        }
        if length > MAX_SILENCE {
            return Err(format!(
                "{word:?} is longer than the longest silence set from a chat, {} days (alert-router silence add sets longer ones)",
                MAX_SILENCE.as_secs() / 86400
            ));
        }
        return Ok(Asked {
            matchers,
            length,
            comment: text[end..].trim().to_owned(),
        });
    }
}

/// The next word of `text` from byte `from`: its start and end. White space separates
/// words outside quotes, as the router's `split_words` reads a command: a quote opens
/// only where a value starts (a word's start, after `=` or `~`), so `bob's` is one word;
/// `\"` is a quote inside double quotes; phones' “curly” quotes count.
fn next_word(text: &str, from: usize) -> Result<Option<(usize, usize)>, String> {
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prev: Option<char> = None;
    for (i, c) in text[from..].char_indices() {
        let i = from + i;
        if let Some(close) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && close == '"' {
                escaped = true;
            } else if c == close {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            match start {
                Some(s) => return Ok(Some((s, i))),
                None => continue,
            }
        }
        start.get_or_insert(i);
        let value_starts = prev.is_none_or(|p| p == '=' || p == '~');
        prev = Some(c);
        match c {
            '"' if value_starts => quote = Some('"'),
            '\'' if value_starts => quote = Some('\''),
            '“' if value_starts => quote = Some('”'),
            _ => {}
        }
    }
    if let Some(close) = quote {
        return Err(format!("a quote is not closed: end the value with {close}"));
    }
    Ok(start.map(|s| (s, text.len())))
}

/// Who set a silence, as the router records it: `@username`, else the user's id.
fn author(context: &Value, user_id: Option<i64>) -> String {
    match context["user"]["username"].as_str() {
        Some(name) if !name.is_empty() => format!("@{name}"),
        _ => match user_id {
            Some(id) => format!("Telegram user {id}"),
            None => "a Telegram user".to_owned(),
        },
    }
}

/// `/silence <matchers> <duration> [comment]`.
pub(crate) fn silence(
    shared: &Shared,
    invocation: &Invocation,
    context: Value,
    user_id: Option<i64>,
) -> Value {
    if !shared.host.can_request() {
        return render(shared, "too_old", context);
    }
    let asked = match parse(&invocation.text) {
        Ok(asked) => asked,
        Err(problem) => return usage(shared, context, SILENCE_USAGE, &problem),
    };
    // One list: the router splits it at commas outside quotes, so a word may be a list
    // itself (`type=error,source=bot`), as the router's own command line takes it. No
    // space after the commas: the router's reason quotes a matcher as it got it.
    let body = json!({
        "matchers": asked.matchers.join(","),
        "duration": asked.length.as_secs(),
        "created_by": author(&context, user_id),
        "comment": asked.comment,
    });
    match shared.host.request("POST", "silences", Some(&body)) {
        Ok(silence) => {
            let others = listed(shared).unwrap_or_default();
            let silence = shown(&silence, &others, OffsetDateTime::now_utc());
            let extra = json!({"silence": silence, "seconds": asked.length.as_secs()});
            render(shared, "silence", with(context, extra))
        }
        Err(e) => refused(shared, context, SILENCE_USAGE, &e),
    }
}

/// `/silences`: the active and pending ones, and this bot's own mute.
pub(crate) fn list(shared: &Shared, context: Value) -> Value {
    let silences = match listed(shared) {
        Ok(silences) => silences,
        Err(e) => return not_listed(shared, context, &e),
    };
    let now = OffsetDateTime::now_utc();
    let live: Vec<Value> = silences
        .iter()
        .filter(|s| s["state"] != "expired")
        .map(|s| shown(s, &silences, now))
        .collect();
    let mute = shared
        .state
        .with_mute(|m| m.current.clone())
        .filter(|m| m.until > unix_now())
        .map(|m| json!({"until": rfc3339(m.until), "event_type": m.event_type, "held": m.held}));
    render(
        shared,
        "silences",
        with(context, json!({"silences": live, "mute": mute})),
    )
}

/// `/unsilence <id>`: a unique prefix of the id is enough.
pub(crate) fn unsilence(shared: &Shared, invocation: &Invocation, context: Value) -> Value {
    if !shared.host.can_request() {
        return render(shared, "too_old", context);
    }
    let prefix = match invocation.args.as_slice() {
        [prefix] => prefix,
        [] => return usage(shared, context, UNSILENCE_USAGE, "say which silence"),
        _ => return usage(shared, context, UNSILENCE_USAGE, "one id at a time"),
    };
    let silences = match listed(shared) {
        Ok(silences) => silences,
        Err(e) => return not_listed(shared, context, &e),
    };
    let id = match resolve(prefix, &silences) {
        Ok(id) => id,
        Err(problem) => return usage(shared, context, UNSILENCE_USAGE, &problem),
    };
    match shared
        .host
        .request("DELETE", &format!("silences/{id}"), None)
    {
        Ok(silence) => {
            let silence = shown(&silence, &silences, OffsetDateTime::now_utc());
            render(
                shared,
                "unsilence",
                with(context, json!({"silence": silence})),
            )
        }
        Err(e) => refused(shared, context, UNSILENCE_USAGE, &e),
    }
}

/// Every silence the router keeps (expired ones too), newest first.
fn listed(shared: &Shared) -> Result<Vec<Value>, HostError> {
    let answer = shared.host.query("silences")?;
    Ok(answer["silences"].as_array().cloned().unwrap_or_default())
}

/// A silence as the answers show it: the router's view, plus `short_id` (unique among
/// `all`), and `starts_in` and `ends_in`, seconds from `now` (0 once passed).
fn shown(silence: &Value, all: &[Value], now: OffsetDateTime) -> Value {
    let id = silence["id"].as_str().unwrap_or_default();
    let ids: Vec<&str> = all.iter().filter_map(|s| s["id"].as_str()).collect();
    // Whole seconds, cut short: "ends in 1h 59m" just after a 2h silence was set.
    let from_now = |key: &str| -> u64 {
        silence[key]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .and_then(|t| u64::try_from((t - now).whole_seconds()).ok())
            .unwrap_or(0)
    };
    with(
        silence.clone(),
        json!({
            "short_id": short_id(id, &ids),
            "starts_in": from_now("starts_at"),
            "ends_in": from_now("ends_at"),
        }),
    )
}

/// The shortest prefix of `id`, at least [`MIN_ID_PREFIX`] characters and not ending in
/// a dash, that no other of `ids` starts with.
fn short_id(id: &str, ids: &[&str]) -> String {
    (MIN_ID_PREFIX..id.len())
        .filter(|&n| id.is_char_boundary(n))
        .map(|n| &id[..n])
        .filter(|prefix| !prefix.ends_with('-'))
        .find(|prefix| ids.iter().all(|o| *o == id || !o.starts_with(prefix)))
        .unwrap_or(id)
        .to_owned()
}

/// The id of the silence `prefix` names among `silences`: the one active or pending
/// silence whose id starts with it, else the one of any state (the router then says it
/// has expired already).
fn resolve(prefix: &str, silences: &[Value]) -> Result<String, String> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.chars().count() < MIN_ID_PREFIX {
        return Err(format!(
            "give at least {MIN_ID_PREFIX} characters of the id; /silences shows them"
        ));
    }
    let starting: Vec<&Value> = silences
        .iter()
        .filter(|s| s["id"].as_str().is_some_and(|id| id.starts_with(&prefix)))
        .collect();
    let live: Vec<&Value> = starting
        .iter()
        .copied()
        .filter(|s| s["state"] != "expired")
        .collect();
    let one = match (live.as_slice(), starting.as_slice()) {
        ([one], _) | ([], [one]) => one,
        (_, []) => {
            return Err(format!(
                "no silence has an id starting with {prefix}; /silences lists them"
            ));
        }
        (live, all) => {
            let n = if live.is_empty() {
                all.len()
            } else {
                live.len()
            };
            return Err(format!(
                "{prefix} starts the ids of {n} silences: give more of the id"
            ));
        }
    };
    Ok(one["id"].as_str().unwrap_or_default().to_owned())
}

/// The answer when the router did not take a change: what it said is wrong with the
/// command (shown with the usage), or that it could not do it now.
fn refused(shared: &Shared, context: Value, usage_line: &str, e: &HostError) -> Value {
    match e.kind() {
        HostErrorKind::BadRequest | HostErrorKind::NotFound => {
            usage(shared, context, usage_line, e.message())
        }
        _ => not_done(shared, context, e),
    }
}

/// The answer when the list could not be read: a router without silences is too old.
fn not_listed(shared: &Shared, context: Value, e: &HostError) -> Value {
    if e.kind() == HostErrorKind::NotFound {
        return render(shared, "too_old", context);
    }
    not_done(shared, context, e)
}

/// Renders `commands/not_done` for a router that could not do it: not now (starting or
/// stopping: logged at debug, asking again works) or failing (a warning).
fn not_done(shared: &Shared, context: Value, e: &HostError) -> Value {
    let command = context["command"].as_str().unwrap_or_default().to_owned();
    let later = e.kind() == HostErrorKind::Unavailable;
    let line = format!("/{command}: the router did not do it: {e}");
    if later {
        shared.debug(&line);
    } else {
        shared.warn(&line);
    }
    render(
        shared,
        "not_done",
        with(context, json!({"reason": e.message(), "later": later})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(matchers: &[&str], secs: u64, comment: &str) -> Result<Asked, String> {
        Ok(Asked {
            matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
            length: Duration::from_secs(secs),
            comment: comment.to_owned(),
        })
    }

    #[test]
    fn matchers_then_a_duration_then_a_comment_as_typed() {
        assert_eq!(
            parse("type=error labels.exchange=binance 2h exchange maintenance"),
            asked(
                &["type=error", "labels.exchange=binance"],
                7200,
                "exchange maintenance"
            )
        );
        // Quotes keep spaces in a value and are passed on for the router to read;
        // a comment keeps its own spacing and may hold anything.
        assert_eq!(
            parse(r#"labels.x=“a b”  component='c d' msg=~"x \" y" 1h30m  it's  = fine"#),
            asked(
                &["labels.x=“a b”", "component='c d'", r#"msg=~"x \" y""#],
                5400,
                "it's  = fine"
            )
        );
        assert_eq!(
            parse("note=bob's type!=heartbeat 30"),
            asked(&["note=bob's", "type!=heartbeat"], 1800, "")
        );
        assert_eq!(
            parse("type=error,source=bot 1d"),
            asked(&["type=error,source=bot"], 86400, "")
        );
    }

    #[test]
    fn what_is_missing_or_wrong_is_said() {
        let problem = |text: &str| parse(text).expect_err(text);
        assert_eq!(problem(""), "say what to silence and for how long");
        assert_eq!(
            problem("type=error"),
            "say for how long, after the matchers: e.g. 2h"
        );
        assert!(problem("2h type=error").starts_with("\"2h\" is not a matcher"));
        assert!(problem("type:error 2h").starts_with("\"type:error\" is not a matcher"));
        assert!(
            problem("type=error exchange:binance 2h")
                .starts_with("\"exchange:binance\" is neither a matcher (name=value")
        );
        assert_eq!(problem("type=error 0m"), "\"0m\" is no time at all");
        assert!(problem("type=error 8d").contains("longest silence set from a chat, 7 days"));
        assert_eq!(
            problem(r#"labels.x="a b 2h"#),
            "a quote is not closed: end the value with \""
        );
    }

    #[test]
    fn the_author_is_the_username_or_the_id() {
        let user = json!({"user": {"id": 7, "username": "ana"}});
        assert_eq!(author(&user, Some(7)), "@ana");
        let nameless = json!({"user": {"id": 7, "username": null}});
        assert_eq!(author(&nameless, Some(7)), "Telegram user 7");
        assert_eq!(author(&json!({}), None), "a Telegram user");
    }

    const A: &str = "0193a1b2-c3d4-7aaa-8bbb-000000000001";
    const B: &str = "0193a1b2-c3d4-7aaa-8bbb-000000000002";
    const C: &str = "0193a1b2-ffff-7ccc-8ddd-000000000003";
    const D: &str = "0194ffff-0000-7eee-8fff-000000000004";

    #[test]
    fn short_ids_are_as_long_as_it_takes_to_tell_them_apart() {
        let ids = [A, B, C, D];
        assert_eq!(short_id(D, &ids), "0194ffff");
        // Skips the dash: a prefix never ends in one.
        assert_eq!(short_id(C, &ids), "0193a1b2-f");
        assert_eq!(short_id(A, &ids), "0193a1b2-c3d4-7aaa-8bbb-000000000001");
        assert_eq!(short_id(A, &[A]), "0193a1b2");
    }

    #[test]
    fn a_prefix_names_one_silence_preferring_live_ones() {
        let list = json!([
            {"id": A, "state": "active"},
            {"id": B, "state": "expired"},
            {"id": C, "state": "pending"},
            {"id": D, "state": "expired"},
        ]);
        let list = list.as_array().unwrap();
        assert_eq!(resolve("0193A1B2-C3D4", list), Ok(A.to_owned()));
        assert_eq!(resolve("0193a1b2-f", list), Ok(C.to_owned()));
        // Only an expired one: the router will say so.
        assert_eq!(resolve("0194ffff", list), Ok(D.to_owned()));
        assert_eq!(
            resolve("0193a1b2", list),
            Err("0193a1b2 starts the ids of 2 silences: give more of the id".to_owned())
        );
        assert!(
            resolve("0193a1", list)
                .unwrap_err()
                .contains("at least 8 characters")
        );
        assert!(
            resolve("ffffffff", list)
                .unwrap_err()
                .starts_with("no silence has an id starting with ffffffff")
        );
    }

    #[test]
    fn a_shown_silence_says_how_far_off_its_start_and_end_are() {
        let silence = json!({"id": D, "state": "pending",
            "starts_at": "1970-01-01T00:10:00Z", "ends_at": "1970-01-01T01:00:00Z"});
        let at = |secs| OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let shown = shown(&silence, std::slice::from_ref(&silence), at(300));
        assert_eq!(
            (&shown["short_id"], &shown["starts_in"], &shown["ends_in"]),
            (&json!("0194ffff"), &json!(300), &json!(3300))
        );
        assert_eq!(shown["state"], "pending");
        let past = super::shown(&silence, &[], at(10_000));
        assert_eq!(
            (&past["starts_in"], &past["ends_in"]),
            (&json!(0), &json!(0))
        );
    }
}
